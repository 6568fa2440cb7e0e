package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

// A flush returns only after the promise of every record sent before it
// ran: those Kafka acknowledged, and one franz-go refused before buffering
// it (larger than the client's MaxBufferedBytes), whose promise franz-go calls
// after Produce returned and which its own Flush does not wait for. The
// refusal is the flush's error. That promise is made slow (a user's
// promise may be), so that it runs well after franz-go's Flush returned.
func TestFlushWaitsForEveryPromise(t *testing.T) {
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := connectors.CreateTopics(ctx, e.Brokers(), 2, "out"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.RecordPartitioner(partitioner{}),
		kgo.MaxBufferedBytes(3000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
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
			p.produceRecord(&kgo.Record{Topic: "out", Key: []byte{byte(i)}, Value: []byte("v")}, promise)
		}
		big := round%2 == 1
		if big {
			// The acknowledgements' promises first: they run in the
			// order they were queued, so queued after the slow one they
			// would hold franz-go's Flush until it ran.
			if err := p.flush(ctx); err != nil {
				t.Fatal(err)
			}
			p.produceRecord(&kgo.Record{Topic: "out", Key: []byte("big"), Value: make([]byte, 5000)}, promise)
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
