package task_test

import (
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// TestCachedStoresForwardOnFlush runs count → filter (materialized) →
// output with a record cache in front of both stores: updates of a key
// between two flushes reach the filter's store, and the output, as one, and
// only when the task flushes; the second store is flushed in the same
// Flush, after the first one's forwarded updates dirtied it.
func TestCachedStoresForwardOnFlush(t *testing.T) {
	b := dsl.NewBuilder()
	counts := dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src")).
		GroupByKey().
		Count(dsl.Materialized(dsl.StoreOptions{Name: "counts"}))
	counts.Filter(func(_ string, n int64) bool { return n != 2 }, dsl.Named("not-two"),
		dsl.Materialized(dsl.StoreOptions{Name: "filtered"})).
		ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{}
	tk, err := task.New(task.Config{
		ApplicationID: "app",
		SubTopology:   topo.SubTopologies()[0],
		Collector:     r,
		Cache:         state.NewCache(1 << 20),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	var caches []*state.CachingStore
	for _, spec := range topo.SubTopologies()[0].Stores {
		if c, ok := tk.Store(spec.Name).(*state.CachingStore); ok {
			caches = append(caches, c)
		}
	}
	if len(caches) != 2 {
		t.Fatalf("opened %d stores, want 2", len(caches))
	}
	r.task = tk
	for i, k := range []string{"a", "b", "a", "a"} {
		if err := r.pipe(k, 0, int64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	want(t, "sent before the flush", r.sent, nil)
	if err := tk.Flush(); err != nil {
		t.Fatal(err)
	}
	// Counts flushed in last-write order: b=1 (ts 101), a=3 (ts 103).
	want(t, "sent at the first flush", r.sent, []string{"out b=1@101", "out a=3@103"})
	for _, c := range caches {
		if c.Dirty() != 0 {
			t.Errorf("store %s has %d unflushed writes after Flush", c.Name(), c.Dirty())
		}
	}
	r.sent = nil
	// b goes 1 → 2: the filter hides 2, so the output gets a delete of b.
	if err := r.pipe("b", 0, 200); err != nil {
		t.Fatal(err)
	}
	if err := tk.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(r.sent) != 1 || r.sent[0] != "out b=<tombstone>@200" {
		t.Fatalf("sent at the second flush: %v, want [out b=<tombstone>@200]", r.sent)
	}
}

var _ operators.Collector = (*rig)(nil)
