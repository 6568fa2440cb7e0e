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

// An empty (not null) key with the Bytes serde: Bytes.Decode gives nil
// (NullKey stays false), Bytes.Encode(nil, nil) gives nil, so the count's
// store key is nil. Logged at once (the store's first write, and every
// write with ChangelogBuffer 0) or from the buffer, the changelog record's
// key is empty, never a Kafka null (refused on a compacted topic).
func TestEmptyBytesKeyFirstWriteIsNotNull(t *testing.T) {
	for _, buffer := range []int{0, 1 << 20} {
		t.Run(fmt.Sprintf("buffer=%d", buffer), func(t *testing.T) {
			b := dsl.NewBuilder()
			dsl.FromTopic(b, "in", serde.Bytes, serde.String).GroupByKey().Count(dsl.Named("counts"))
			topo, err := b.Build()
			ok(t, err)
			var logged changelogs
			tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: topo.SubTopologies()[0], Collector: &rig{},
				Changelog: &logged, ChangelogBuffer: buffer})
			ok(t, err)
			defer tk.Close()
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 0, Timestamp: 100, Key: []byte{}, Value: []byte("v")}))
			ok(t, tk.Flush())
			if len(logged) != 1 {
				t.Fatalf("%d changelog records, want 1", len(logged))
			}
			if logged[0].key == nil {
				t.Fatalf("the changelog record of an empty key has a null key (Kafka refuses it on a compacted topic)")
			}
		})
	}
}

// restoreAfterCrash runs ops on a fresh count task over a base holding
// k=5, flushes, then restores the logged records onto the same base state,
// skipping records at or past committed, and returns k.
func restoreAfterCrash(t *testing.T, buffer int, committed int64, ops func(tk *task.Task)) string {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	topo, err := b.Build()
	ok(t, err)
	spec := topo.SubTopologies()[0].Stores[0]
	old := []byte{0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 5}
	base := state.NewInMemoryKeyValueStore("counts")
	ok(t, base.Put([]byte("k"), old))
	var logged changelogs
	tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: topo.SubTopologies()[0], Collector: &rig{},
		OpenBase:  func(*topology.StoreSpec) (state.KeyValueStore, error) { return base, nil },
		Changelog: &logged, ChangelogBuffer: buffer})
	ok(t, err)
	ops(tk)
	ok(t, tk.Flush())
	tk.Close()
	rb := state.NewInMemoryKeyValueStore("counts")
	ok(t, rb.Put([]byte("k"), old))
	rs, err := task.NewChangelogRestorer(spec, rb, nil, nil)
	ok(t, err)
	for _, r := range logged {
		skip := false
		for _, h := range r.headers {
			if h.Key == task.InputHeader {
				_, _, off, _ := task.ParseInputPosition(h.Value)
				skip = off >= committed
			}
		}
		if !skip {
			ok(t, rs.Apply(r.key, r.value, r.ts))
		}
	}
	v, has, err := rb.Get([]byte("k"))
	ok(t, err)
	return fmt.Sprintf("present=%v %x", has, v)
}

// Writes without an input position, not the store's first (another
// key's is), before the task's first record, then a record's write of the
// same key: the restore after a crash before the commit is the same with
// and without the buffer.
func TestUnpositionedNotFirstWrite(t *testing.T) {
	ops := func(tk *task.Task) {
		kv := tk.Store("counts").(state.KeyValueStore)
		ok(t, kv.Delete([]byte("z")))
		ok(t, kv.Delete([]byte("k")))
		ok(t, kv.Delete([]byte("k")))
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 7, Timestamp: 100, Key: []byte("k"), Value: []byte("v")}))
	}
	a, b := restoreAfterCrash(t, 0, 7, ops), restoreAfterCrash(t, 1<<20, 7, ops)
	if a != b {
		t.Fatalf("restore differs: unbuffered %s, buffered %s", a, b)
	}
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
	ops := func(tk *task.Task) {
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 6, Timestamp: 100, Key: []byte("x"), Value: []byte("v")}))
		ok(t, tk.Flush()) // the commit of offset 7 (records <= 6)
		// wall-clock punctuator: Position offset -1, InputPosition 6
		ok(t, tk.Store("counts").(state.KeyValueStore).Delete([]byte("k")))
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 7, Timestamp: 100, Key: []byte("k"), Value: []byte("v")}))
		// crash before the next commit
	}
	a, b := restoreAfterCrash(t, 0, 7, ops), restoreAfterCrash(t, 1<<20, 7, ops)
	if a != b {
		t.Fatalf("restore differs: unbuffered %s, buffered %s", a, b)
	}
}
