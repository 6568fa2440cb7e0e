package dsl_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// The stores of aggregations, tables and windowed aggregations carry
// their key and value serdes (for interactive queries), and window stores
// their window size.
func TestStoresCarryTheirSerdes(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	counts := g.Count(dsl.Named("counts"))
	counts.Filter(func(string, int64) bool { return true }, dsl.Materialized(dsl.StoreOptions{Name: "filtered"}))
	dsl.TableMapValues(counts, func(n int64) string { return "" }, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "mapped"}))
	dsl.WindowedBy(g, window.Tumbling(time.Minute, 0)).Count(dsl.Named("minutes"))
	dsl.WindowedBySession(g, window.Session{Gap: time.Second}).Count(dsl.Named("sessions"))
	dsl.TableFromTopic(b, "users", serde.Int64, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "users"}))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		store, keyFormat string
		value            any
		size             time.Duration
	}{
		{"counts", "string", serde.Int64, 0},
		{"filtered", "string", serde.Int64, 0},
		{"mapped", "string", serde.String, 0},
		{"minutes", "string", serde.Int64, time.Minute},
		{"sessions", "string", serde.Int64, 0},
		{"users", "int64", serde.String, 0},
	} {
		s := topo.Store(tc.store)
		if s == nil || s.Serdes == nil {
			t.Errorf("store %s: no serdes", tc.store)
			continue
		}
		if f := s.Serdes.KeyFormat(); f != tc.keyFormat {
			t.Errorf("store %s: key format %s, want %s", tc.store, f, tc.keyFormat)
		}
		if s.Serdes.ValueSerde() != tc.value {
			t.Errorf("store %s: value serde %T, want %T", tc.store, s.Serdes.ValueSerde(), tc.value)
		}
		if s.WindowSize != tc.size {
			t.Errorf("store %s: window size %v, want %v", tc.store, s.WindowSize, tc.size)
		}
	}
}
