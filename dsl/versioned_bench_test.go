package dsl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// BenchmarkVersionedJoin pipes, in the test driver, one table update for
// every nine stream records of 10,000 keys into a stream-table join on a
// versioned table (history one hour), without and with a grace period of
// 100 ms (each stream record then goes through the buffer: put, later
// released and deleted). Per record: the versioned store's write or
// as-of read, the join, the result written to a topic. One op is one input
// record; allocs/op is allocations per record.
func BenchmarkVersionedJoin(b *testing.B) {
	for _, grace := range []time.Duration{-1, 100 * time.Millisecond} {
		name := "grace=none"
		if grace >= 0 {
			name = fmt.Sprintf("grace=%v", grace)
		}
		b.Run(name, func(b *testing.B) {
			bld := dsl.NewBuilder()
			t := dsl.TableFromTopic(bld, "table", serde.String, serde.Int64,
				dsl.Materialized(dsl.StoreOptions{Name: "versions", HistoryRetention: time.Hour}))
			var opts []dsl.TableJoinOption
			if grace >= 0 {
				opts = append(opts, dsl.JoinGrace(grace))
			}
			dsl.JoinTable(dsl.FromTopic(bld, "stream", serde.String, serde.Int64), t,
				func(_ string, v, tv int64) int64 { return v + tv }, opts...).To("out", serde.String, serde.Int64)
			topo, err := bld.Build()
			if err != nil {
				b.Fatal(err)
			}
			d, err := testdriver.New(topo)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			table := testdriver.CreateInputTopic(d, "table", serde.String, serde.Int64)
			stream := testdriver.CreateInputTopic(d, "stream", serde.String, serde.Int64)
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
			keys := make([]string, 10000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%05d", i)
				if err := table.PipeAt(keys[i], 1, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				in := stream
				if i%10 == 9 {
					in = table
				}
				if err := in.PipeAt(keys[i%len(keys)], int64(i), int64(i)); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					if _, err := out.ReadRecords(); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportRate(b, b.N)
		})
	}
}
