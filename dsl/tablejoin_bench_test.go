package dsl_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// BenchmarkTableJoin pipes updates of 10,000 keys alternately into the two
// tables of an outer table-table join in the test driver: per record, the
// source table's store read and written, the other table's row read
// through its getter, the join, and the result written to a topic (and,
// materialized, to the result's store). One op is one input record;
// allocs/op is allocations per record.
func BenchmarkTableJoin(b *testing.B) {
	for _, materialized := range []bool{false, true} {
		b.Run(fmt.Sprintf("materialized=%v", materialized), func(b *testing.B) {
			bld := dsl.NewBuilder()
			l := dsl.TableFromTopic(bld, "left", serde.String, serde.Int64)
			r := dsl.TableFromTopic(bld, "right", serde.String, serde.Int64)
			var opts []dsl.StoreOption
			if materialized {
				opts = append(opts, dsl.Materialized(dsl.StoreOptions{Name: "joined", InMemory: true}))
			}
			dsl.TableOuterJoin(l, r, func(_ string, a, c dsl.Maybe[int64]) int64 { return a.Or(0) + c.Or(0) }, serde.Int64, opts...).
				ToStream().To("out", serde.String, serde.Int64)
			topo, err := bld.Build()
			if err != nil {
				b.Fatal(err)
			}
			d, err := testdriver.New(topo)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ins := []*testdriver.InputTopic[string, int64]{
				testdriver.CreateInputTopic(d, "left", serde.String, serde.Int64),
				testdriver.CreateInputTopic(d, "right", serde.String, serde.Int64),
			}
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
			keys := make([]string, 10000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%05d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := ins[i%2].PipeAt(keys[(i/2)%len(keys)], int64(i), int64(i)); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					if _, err := out.ReadRecords(); err != nil { // keep the captured output small
						b.Fatal(err)
					}
				}
			}
			reportRate(b, b.N)
		})
	}
}
