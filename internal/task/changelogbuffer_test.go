package task_test

// Cases of the changelog buffer a review found (each failed before its
// fix): a buffered store written by what a record cache forwards during
// Task.Flush, when the buffered store comes before the cached one in the
// task's store order, kept those writes in its buffer after Flush
// returned (the commit that follows moved the offsets without them in the
// changelog); an empty key was logged as a null one; a write without an
// input position was dropped with the positioned write that followed it.

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

func TestBufferedStoreWrittenByCacheFlushIsLoggedByFlush(t *testing.T) {
	for _, buffer := range []int{0, 1 << 20} {
		t.Run(fmt.Sprintf("buffer=%d", buffer), func(t *testing.T) {
			b := dsl.NewBuilder()
			// Processor API: the store is declared first (as with Kafka
			// Streams' addStateStore), then the DSL counts (cached), and
			// the processor downstream of the counts writes the store.
			ps := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "ps"}, serde.String, serde.Int64)
			counts := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
			var kv *state.KV[string, int64]
			dsl.Process(counts.ToStream(), func() operators.Processor[string, int64, string, int64] {
				return &operators.ProcessorFuncs[string, int64, string, int64]{
					InitFunc: func(ctx operators.ProcessorContext[string, int64]) (err error) {
						kv, err = ps.Open(ctx)
						return err
					},
					ProcessFunc: func(_ operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
						return kv.Put(r.Key, r.Value)
					},
				}
			}, dsl.Named("proc"), dsl.ConnectStores(ps))
			topo, err := b.Build()
			ok(t, err)
			st := topo.SubTopologies()[0]
			var order []string
			for _, s := range st.Stores {
				order = append(order, s.Name)
			}
			t.Logf("store order %v", order)
			var logged changelogs
			tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: st, Collector: &rig{},
				Changelog: &logged, ChangelogBuffer: buffer, Cache: state.NewCache(1 << 20)})
			ok(t, err)
			for i, k := range []string{"a", "b", "a"} {
				ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: int64(i), Timestamp: 100, Key: []byte(k), Value: []byte("v")}))
			}
			// The commit: the runtime flushes the task, flushes the
			// producer, then commits the offsets 0..2.
			ok(t, tk.Flush())
			psLogged := map[string]int64{}
			for _, r := range logged {
				if r.topic == "app-ps-changelog" {
					n, err := serde.Int64.Decode(r.value)
					ok(t, err)
					psLogged[string(r.key)] = n
				}
			}
			// Then a rebalance closes the task (revoke: commit, close).
			ok(t, tk.Close())
			if psLogged["a"] != 2 || psLogged["b"] != 1 {
				t.Fatalf("store ps logged %v by the flush of the commit, want a=2 b=1 (the local store has them, the offsets are committed)", psLogged)
			}
		})
	}
}

// An empty store key (a count of the empty-string key) is logged with an
// empty, not-null key without the buffer; with it the key goes through
// unsafe.StringData of an empty string, which is nil: the changelog
// record's key is null, which Kafka refuses on a compacted topic.
func TestBufferedEmptyKeyIsNotNull(t *testing.T) {
	for _, buffer := range []int{0, 1 << 20} {
		t.Run(fmt.Sprintf("buffer=%d", buffer), func(t *testing.T) {
			b := dsl.NewBuilder()
			dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
			topo, err := b.Build()
			ok(t, err)
			var logged changelogs
			tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: topo.SubTopologies()[0], Collector: &rig{},
				Changelog: &logged, ChangelogBuffer: buffer})
			ok(t, err)
			defer tk.Close()
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 0, Timestamp: 100, Key: []byte("x"), Value: []byte("v")}))
			// The count's key buffer is not nil after "x": key "" is
			// encoded as an empty, non-nil slice.
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 1, Timestamp: 100, Key: []byte{}, Value: []byte("v")}))
			ok(t, tk.Flush())
			logged = logged[1:]
			if len(logged) != 1 {
				t.Fatalf("%d changelog records, want 1", len(logged))
			}
			if logged[0].key == nil {
				t.Fatalf("the changelog record of key \"\" has a null key (Kafka refuses it on a compacted topic)")
			}
		})
	}
}

// A write with no input position (a wall-clock punctuator before the
// task's first record: Task.InputPosition is -1) followed, before the
// commit, by a write of the same key caused by an input record: without
// the buffer the first is logged without an InputHeader, so a restore after
// a crash before the commit keeps it (and skips the second); with the
// buffer the key's one record carries the record's position and the
// restore skips both: the restored state differs (here: a TTL-style
// delete is undone, and replaying the record counts on the old value).
func TestBufferedUnpositionedWriteSurvivesRestore(t *testing.T) {
	restored := map[int]string{}
	for _, buffer := range []int{0, 1 << 20} {
		b := dsl.NewBuilder()
		dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
		topo, err := b.Build()
		ok(t, err)
		spec := topo.SubTopologies()[0].Stores[0]
		// The state as of the last commit: k=5.
		old := []byte{0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 5}
		base := state.NewInMemoryKeyValueStore("counts")
		ok(t, base.Put([]byte("k"), old))
		var logged changelogs
		tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: topo.SubTopologies()[0], Collector: &rig{},
			OpenBase:  func(*topology.StoreSpec) (state.KeyValueStore, error) { return base, nil },
			Changelog: &logged, ChangelogBuffer: buffer})
		ok(t, err)
		// A punctuator-like write before any record: no input position.
		ok(t, tk.Store("counts").(state.KeyValueStore).Delete([]byte("k")))
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 7, Timestamp: 100, Key: []byte("k"), Value: []byte("v")}))
		ok(t, tk.Flush()) // records sent; then a crash before the offsets commit (committed: 7)
		tk.Close()
		// Restore onto the last commit's state, skipping unconfirmed records.
		rb := state.NewInMemoryKeyValueStore("counts")
		ok(t, rb.Put([]byte("k"), old))
		rs, err := task.NewChangelogRestorer(spec, rb, nil, nil)
		ok(t, err)
		for _, r := range logged {
			skip := false
			for _, h := range r.headers {
				if h.Key == task.InputHeader {
					_, _, off, _ := task.ParseInputPosition(h.Value)
					skip = off >= 7
				}
			}
			if !skip {
				ok(t, rs.Apply(r.key, r.value, r.ts))
			}
		}
		v, has, err := rb.Get([]byte("k"))
		ok(t, err)
		restored[buffer] = fmt.Sprintf("present=%v %x", has, v)
	}
	if restored[0] != restored[1<<20] {
		t.Fatalf("restore after a crash differs: without the buffer %s, with it %s", restored[0], restored[1<<20])
	}
}
