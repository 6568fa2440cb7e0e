package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// A flush returns only after the promise of every record sent before it
// ran: those Kafka acknowledged, and one franz-go refused before buffering
// it (larger than the client's MaxBufferedBytes), whose promise franz-go calls
// after Produce returned and which its own Flush does not wait for. The
// refusal is the flush's error. That promise is made slow (a user's
// promise may be), so that it runs well after franz-go's Flush returned.
func TestFlushWaitsForEveryPromise(t *testing.T) {
	kc := kafkatest.New(t)
	out := kafkatest.Topic(t, "out")
	kc.Create(t, 2, out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := kc.Client(t, kgo.RecordPartitioner(partitioner{}), kgo.MaxBufferedBytes(3000))
	for round := range 6 {
		p := newProducer(cl)
		var ran atomic.Int64
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				time.Sleep(100 * time.Millisecond) // a slow promise, not a synchronisation
			}
			ran.Add(1)
			p.promise(r, err)
		}
		n := int64(round * 50)
		for i := range n {
			p.produceRecord(&kgo.Record{Topic: out, Key: []byte{byte(i)}, Value: []byte("v")}, promise)
		}
		big := round%2 == 1
		if big {
			// The acknowledgements' promises first: they run in the
			// order they were queued, so queued after the slow one they
			// would hold franz-go's Flush until it ran.
			if err := p.flush(ctx); err != nil {
				t.Fatal(err)
			}
			p.produceRecord(&kgo.Record{Topic: out, Key: []byte("big"), Value: make([]byte, 5000)}, promise)
			n++
		}
		err := p.flush(ctx)
		if got := ran.Load(); got != n {
			t.Fatalf("round %d: flush returned after %d of %d promises", round, got, n)
		}
		var pe *ProduceError
		if big != errors.As(err, &pe) {
			t.Fatalf("round %d: flush error %v, want a ProduceError: %v", round, err, big)
		}
		if p.sentInTxn() != n {
			t.Fatalf("round %d: sentInTxn %d, want %d", round, p.sentInTxn(), n)
		}
		p.resetSent()
		if p.sentInTxn() != 0 {
			t.Fatalf("round %d: sentInTxn %d after resetSent, want 0", round, p.sentInTxn())
		}
	}
}

// producer.wait and finish (two counters, not a WaitGroup):
// promises finishing on many goroutines around a wait, which must return
// once every record counted before it finished, and never before.
func TestProducerWaitNoLostWakeup(t *testing.T) {
	p := newProducer(nil)
	for round := range 3000 {
		n := 1 + round%7
		p.produced.Add(int64(n))
		target := p.produced.Load()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if i%2 == 0 {
					time.Sleep(time.Duration(i) * time.Microsecond)
				}
				p.finish()
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.wait(ctx); err != nil {
			t.Fatalf("round %d: wait: %v (finished %d of %d)", round, err, p.finished.Load(), target)
		}
		cancel()
		if f := p.finished.Load(); f < target {
			t.Fatalf("round %d: wait returned with %d of %d promises run", round, f, target)
		}
		wg.Wait()
		if round%50 == 0 {
			// A wait that gives up leaves nothing behind for the next.
			p.produced.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			if err := p.wait(ctx); err == nil {
				t.Fatalf("round %d: wait returned with a promise outstanding", round)
			}
			cancel()
			p.finish()
		}
	}
}
