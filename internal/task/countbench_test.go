package task_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// discard is a Collector and a ChangelogWriter that drops what it gets.
type discard struct{ n int }

func (d *discard) Send(string, int32, []byte, []byte, []operators.Header, int64) error {
	d.n++
	return nil
}

func (d *discard) WriteChangelog(string, int32, []byte, []byte, []operators.Header, int64) error {
	d.n++
	return nil
}

// BenchmarkTaskCountPerKey is the task's per-record path of count per key
// (bench's "count" workload) without Kafka: Process decodes a record of
// 10,000 keys, counts it in the store and, with the record cache off,
// forwards the count to the sink and logs each key's latest count at the
// flush (the changelog buffer, as the runtime; both
// discarded here, the runtime's producer is runtime's
// BenchmarkSinkSend); with a 10 MiB cache the task is flushed every
// 10,000 records, as a commit would. The base store is the in-memory one,
// or Pebble with buffered writes committed at each flush, as the runtime
// opens it. One op is one input record: allocs/op is allocations per
// record.
func BenchmarkTaskCountPerKey(b *testing.B) {
	b2 := dsl.NewBuilder()
	dsl.FromTopic(b2, "in", serde.String, serde.Bytes).GroupByKey().Count(dsl.Named("counts")).
		ToStream().To("out", serde.String, serde.Int64)
	topo, err := b2.Build()
	if err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 10_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%05d", (i*7919)%len(keys))
	}
	value := make([]byte, 90)
	for _, base := range []string{"memory", "pebble"} {
		for _, cached := range []bool{false, true} {
			name := base + map[bool]string{false: "/cache-off", true: "/cache-on"}[cached]
			b.Run(name, func(b *testing.B) {
				out := &discard{}
				// The changelog buffer as the runtime sets it.
				cfg := task.Config{ApplicationID: "bench", SubTopology: topo.SubTopologies()[0], Collector: out, Changelog: out,
					ChangelogBuffer: 1 << 20}
				if cached {
					cfg.Cache = state.NewCache(10 << 20)
				}
				var db *state.PebbleDB
				if base == "pebble" {
					db, err = state.OpenPebble(b.TempDir(), state.PebbleOptions{BufferWrites: true, MemTableSize: 1 << 20})
					if err != nil {
						b.Fatal(err)
					}
					defer db.Close()
					cfg.OpenBase = func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
						return db.KeyValueStore(spec.Name), nil
					}
				}
				tk, err := task.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer tk.Close()
				flush := func() {
					if err := tk.Flush(); err != nil {
						b.Fatal(err)
					}
					if db != nil {
						if err := db.Commit(false); err != nil {
							b.Fatal(err)
						}
					}
				}
				rec := operators.RawRecord{Topic: "in", Value: value}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					rec.Offset, rec.Timestamp, rec.Key = int64(i), int64(i), keys[i%len(keys)]
					if err := tk.Process(&rec); err != nil {
						b.Fatal(err)
					}
					if i%10_000 == 9_999 {
						flush()
					}
				}
				flush()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				if !cached && out.n < b.N+min(b.N, len(keys)) {
					b.Fatalf("%d records written to the sink and the changelog for %d inputs, want at least %d", out.n, b.N, b.N+min(b.N, len(keys)))
				}
			})
		}
	}
}
