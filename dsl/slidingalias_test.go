package dsl_test

import (
	"maps"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// serde.Bytes decodes without copying: sliding windows read their
// aggregates with a range scan (FetchKey), which does not mark the
// in-memory store's values as lent, so updating a window overwrites the
// aggregate that a new right window is then seeded from.
func TestSlidingBytesAggregateAliasing(t *testing.T) {
	run := func(bytesSerde bool) map[string]int64 {
		b := dsl.NewBuilder()
		g := dsl.FromTopic(b, "in", serde.String, serde.Int64).GroupByKey()
		sw := dsl.WindowedBySliding(g, window.Sliding{TimeDifference: 10 * time.Millisecond, Grace: time.Hour})
		out := map[string]int64{}
		if bytesSerde {
			tbl := dsl.SlidingAggregate(sw, func() []byte { return []byte{0} },
				func(_ string, v int64, agg []byte) []byte { return []byte{agg[0] + byte(v)} }, serde.Bytes)
			tbl.ToStream().Foreach(func(k window.Windowed[string], v []byte) {
				out[k.Window.String()] = int64(v[0])
			})
		} else {
			tbl := dsl.SlidingAggregate(sw, func() int64 { return 0 },
				func(_ string, v int64, agg int64) int64 { return agg + v }, serde.Int64)
			tbl.ToStream().Foreach(func(k window.Windowed[string], v int64) {
				out[k.Window.String()] = v
			})
		}
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := testdriver.New(topo)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		for _, r := range []struct{ v, ts int64 }{{1, 100}, {2, 105}, {4, 103}} {
			if err := in.PipeAt("k", r.v, r.ts); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	want, got := run(false), run(true)
	if !maps.Equal(got, want) {
		t.Errorf("Bytes aggregates = %v, want %v (as with Int64)", got, want)
	}
}
