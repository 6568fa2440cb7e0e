package runtime

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/serde"
)

// BenchmarkProcessRound measures a task's processing rounds as the poll
// loop runs them, with their metrics: a round of n records of a stateless
// task (a no-op Foreach) through runner.process, then the round's metrics
// (taskRound: processed records, process time and latency, the lag
// gauges). One op is one record: what the metrics add per record is the
// round's fixed cost divided by n.
func BenchmarkProcessRound(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			bld := dsl.NewBuilder()
			dsl.FromTopic(bld, "in", serde.Bytes, serde.Bytes).Foreach(func(_, _ []byte) {})
			topo, err := bld.Build()
			if err != nil {
				b.Fatal(err)
			}
			tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: nopCollector{}})
			if err != nil {
				b.Fatal(err)
			}
			m, err := newMetrics("bench", prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			r := &runner{id: taskID{0, 0}, task: tk}
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(int64(i))}
			}
			b.ReportAllocs()
			b.ResetTimer()
			off := int64(0)
			for done := 0; done < b.N; done += n {
				for _, rec := range recs {
					rec.Offset = off
					off++
				}
				r.add("in", 0, recs, off+5)
				if err := r.process(time.Now()); err != nil {
					b.Fatal(err)
				}
				m.taskRound(r)
			}
		})
	}
}
