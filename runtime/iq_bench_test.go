package runtime

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
)

// BenchmarkInteractiveQueries measures what interactive queries cost the
// processing: one instance counts 200,000 records of 1,000 keys on 4
// partitions (an embedded kfake broker, or KAFKA_BROKERS), with no query
// ("idle"), with a goroutine getting keys through a KeyValueView once a
// millisecond ("1k-per-s"), or as fast as it can ("flat-out"). It reports
// the processing rate and the queries' rate and latency. One op is one
// full run, start-up included.
//
//	go test -run '^$' -bench InteractiveQueries -benchtime 1x ./runtime/
func BenchmarkInteractiveQueries(b *testing.B) {
	for _, mode := range []struct {
		name  string
		every time.Duration // -1: no queries
	}{{"idle", -1}, {"1k-per-s", time.Millisecond}, {"flat-out", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				benchIQ(b, mode.every)
			}
		})
	}
}

func benchIQ(b *testing.B, every time.Duration) {
	const records, keys = 200_000, 1000
	ctx := context.Background()
	brokers := []string{os.Getenv("KAFKA_BROKERS")}
	if brokers[0] == "" {
		e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		brokers = e.Brokers()
	}
	in := fmt.Sprintf("bench-iq-%d", time.Now().UnixNano())
	if err := connectors.CreateTopics(ctx, brokers, 4, in); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(in), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	for i := range records {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", i%keys), Value: []byte("v")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cl.Close()

	bd := dsl.NewBuilder()
	dsl.FromTopic(bd, in, serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	topo, err := bd.Build()
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(topo, ApplicationID(in+"-app"), Brokers(brokers...), StateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	view, err := KeyValueStoreView[string, int64](a, "counts")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- a.Run(ctx) }()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lat []time.Duration
	if every >= 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_, _, err := view.Get(fmt.Sprintf("key-%d", i%keys))
				if err == nil {
					lat = append(lat, time.Since(t0))
				} else {
					time.Sleep(time.Millisecond) // not started yet
				}
				if every > 0 {
					time.Sleep(every)
				}
			}
		}()
	}
	// Processed: every partition's position at the end.
	for {
		var n int64
		a.mu.Lock()
		for _, r := range a.runners {
			for _, q := range r.queues {
				n += max(q.next, 0)
			}
		}
		a.mu.Unlock()
		if n >= records {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	_ = a.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "queries/s")
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
	}
}
