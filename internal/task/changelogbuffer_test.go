package task_test

// Cases of the changelog buffer that reviews found (each failed before its
// fix): a buffered store written by what a record cache forwards during
// Task.Flush, when the buffered store comes before the cached one in the
// task's store order, kept those writes in its buffer after Flush
// returned (the commit that follows moved the offsets without them in the
// changelog); an empty key was logged as a null one; a write without an
// input position, or a punctuator's after a commit, was dropped with the
// positioned write that followed it.

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

// An empty store key is logged as an empty key, never a Kafka null
// (refused on a compacted topic): logged at once (the store's first
// write, every write with ChangelogBuffer 0) or from the buffer, after a
// string key "" following another key (the node's key buffer not nil) and
// a Bytes key (Bytes.Decode gives nil, NullKey stays false, and
// Bytes.Encode(nil, nil) gives nil) as the first write.
func TestBufferedEmptyKeyIsNotNull(t *testing.T) {
	for _, buffer := range []int{0, 1 << 20} {
		t.Run(fmt.Sprintf("string/buffer=%d", buffer), func(t *testing.T) {
			var logged changelogs
			tk := countTask(t, task.Config{ChangelogBuffer: buffer}, &logged)
			defer tk.Close()
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 0, Timestamp: 100, Key: []byte("x"), Value: []byte("v")}))
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 1, Timestamp: 100, Key: []byte{}, Value: []byte("v")}))
			ok(t, tk.Flush())
			checkOneNotNullKey(t, logged[1:])
		})
		t.Run(fmt.Sprintf("bytes-first/buffer=%d", buffer), func(t *testing.T) {
			var logged changelogs
			tk := loggedTask(t, func(b *dsl.Builder) {
				dsl.FromTopic(b, "in", serde.Bytes, serde.String).GroupByKey().Count(dsl.Named("counts"))
			}, task.Config{ChangelogBuffer: buffer}, &logged)
			defer tk.Close()
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 0, Timestamp: 100, Key: []byte{}, Value: []byte("v")}))
			ok(t, tk.Flush())
			checkOneNotNullKey(t, logged)
		})
	}
}

func checkOneNotNullKey(t *testing.T, logged changelogs) {
	t.Helper()
	if len(logged) != 1 {
		t.Fatalf("%d changelog records, want 1", len(logged))
	}
	if logged[0].key == nil {
		t.Fatalf("the changelog record of an empty key has a null key (Kafka refuses it on a compacted topic)")
	}
}

// restoreAfterCrash runs ops on a fresh count task over a base holding
// k=5, flushes, then restores the logged records onto the same base state,
// skipping records at or past committed, and returns k.
func restoreAfterCrash(t *testing.T, buffer int, committed int64, ops func(tk *task.Task)) string {
	t.Helper()
	old := []byte{0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 5}
	base := state.NewInMemoryKeyValueStore("counts")
	ok(t, base.Put([]byte("k"), old))
	var logged changelogs
	var spec *topology.StoreSpec
	tk := countTask(t, task.Config{ChangelogBuffer: buffer,
		OpenBase: func(s *topology.StoreSpec) (state.KeyValueStore, error) { spec = s; return base, nil }}, &logged)
	ops(tk)
	ok(t, tk.Flush())
	tk.Close()
	rb := state.NewInMemoryKeyValueStore("counts")
	ok(t, rb.Put([]byte("k"), old))
	rs, err := task.NewChangelogRestorer(spec, rb, nil, nil)
	ok(t, err)
	for _, r := range logged {
		if !r.unconfirmed(map[string]int64{"in": committed}) {
			ok(t, rs.Apply(r.key, r.value, r.ts))
		}
	}
	v, has, err := rb.Get([]byte("k"))
	ok(t, err)
	return fmt.Sprintf("present=%v %x", has, v)
}

// sameRestore checks that ops restore to the same state after a crash
// before the commit of offset committed with and without the buffer.
func sameRestore(t *testing.T, committed int64, ops func(tk *task.Task)) {
	t.Helper()
	if a, b := restoreAfterCrash(t, 0, committed, ops), restoreAfterCrash(t, 1<<20, committed, ops); a != b {
		t.Fatalf("restore after a crash differs: without the buffer %s, with it %s", a, b)
	}
}

// A write with no input position (a wall-clock punctuator before the
// task's first record: Task.InputPosition is -1) followed, before the
// commit, by a write of the same key caused by an input record: without
// the buffer the first is logged without an InputHeader, so a restore
// after a crash before the commit keeps it (and skips the second); the
// buffer must not merge them into one record the restore skips (a
// TTL-style delete undone, the replayed record counting on the old value).
func TestBufferedUnpositionedWriteSurvivesRestore(t *testing.T) {
	sameRestore(t, 7, func(tk *task.Task) {
		ok(t, tk.Store("counts").(state.KeyValueStore).Delete([]byte("k")))
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 7, Timestamp: 100, Key: []byte("k"), Value: []byte("v")}))
	})
}

// The same when the unpositioned writes are not the store's first (another
// key's is, and the first write is logged at once).
func TestUnpositionedNotFirstWrite(t *testing.T) {
	sameRestore(t, 7, func(tk *task.Task) {
		kv := tk.Store("counts").(state.KeyValueStore)
		ok(t, kv.Delete([]byte("z")))
		ok(t, kv.Delete([]byte("k")))
		ok(t, kv.Delete([]byte("k")))
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 7, Timestamp: 100, Key: []byte("k"), Value: []byte("v")}))
	})
}

// A wall-clock punctuator between a commit and the task's next record:
// its write carries InputPosition, the last (committed) record's offset 6.
// The next record (7) writes the same key before the next commit. Merged
// into one record tagged 7, a restore after a crash before that commit
// (committed = 7) would skip the punctuator's delete with it (k=6 after
// the replay of record 7, where the original run had 1): a write outside
// a record's processing is logged at once, so it is kept as without the
// buffer.
func TestPunctuatorAfterCommitMergedIntoNextRecord(t *testing.T) {
	sameRestore(t, 7, func(tk *task.Task) {
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 6, Timestamp: 100, Key: []byte("x"), Value: []byte("v")}))
		ok(t, tk.Flush()) // the commit of offset 7 (records <= 6)
		// wall-clock punctuator: Position offset -1, InputPosition 6
		ok(t, tk.Store("counts").(state.KeyValueStore).Delete([]byte("k")))
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 7, Timestamp: 100, Key: []byte("k"), Value: []byte("v")}))
		// crash before the next commit
	})
}

// Over a store that keeps a slot with each recent key (state.SlotPutter,
// a buffering Pebble DB), the buffer finds a key's entry through its slot.
// A write outside a record's processing takes the key's entry out of the
// buffer (logged at once); the key's next write in the same interval, its
// slot still naming the taken entry, must make a new one, logged at the
// flush.
func TestBufferedSlotOfTakenEntry(t *testing.T) {
	db, err := state.OpenPebble(t.TempDir(), state.PebbleOptions{BufferWrites: true})
	ok(t, err)
	defer db.Close()
	var logged changelogs
	tk := countTask(t, task.Config{ChangelogBuffer: 1 << 20,
		OpenBase: func(s *topology.StoreSpec) (state.KeyValueStore, error) { return db.KeyValueStore(s.Name), nil }}, &logged)
	defer tk.Close()
	rec := func(off int64, k string) *operators.RawRecord {
		return &operators.RawRecord{Topic: "in", Offset: off, Timestamp: 100, Key: []byte(k), Value: []byte("v")}
	}
	ok(t, tk.Process(rec(0, "z"))) // the store's first write: logged at once
	ok(t, tk.Process(rec(1, "k"))) // buffered
	// A punctuator's delete: logs k's buffered write, then the tombstone.
	ok(t, tk.Store("counts").(state.KeyValueStore).Delete([]byte("k")))
	ok(t, tk.Process(rec(2, "k"))) // buffered again, in a new entry
	ok(t, tk.Flush())
	want(t, "changelog", logged.counts(t), []string{"z=1@100 from offset 0", "k=1@100 from offset 1",
		"k=<tombstone>@100 from offset 1", "k=1@100 from offset 2"})
}
