package runtime

import (
	"context"
	"sync"
	"testing"
	"time"
)

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
