package task_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// The slot path (state.SlotPutter): a random mix of puts of
// small and large values (the latter get no slot), deletes, writes
// outside a record's processing (take), recent-writes evictions (a tiny
// RecentBytes), clears (a Batch's commit on another store of the DB,
// Discard after a flush+commit), reads, flushes, and the task closed and
// reopened over the same DB. After every flush the changelog replayed
// must equal the store.
func TestChangelogBufferSlotsRandomOps(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { slotsRandom(t, seed) })
	}
}

func slotsRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	db, err := state.OpenPebble(t.TempDir(), state.PebbleOptions{BufferWrites: true, RecentBytes: 400 + rng.IntN(2000)})
	ok(t, err)
	defer db.Close()
	other := db.KeyValueStore("other")
	var logged changelogs
	open := func() (*task.Task, *state.KV[string, string]) {
		var kv *state.KV[string, string]
		tk := storeProcTask(t, serde.String, &kv, func(r operators.Record[string, string]) error {
			for _, op := range strings.Split(r.Value, ";") {
				k, v, _ := strings.Cut(op, "=")
				if _, _, err := kv.Get(k); err != nil {
					return err
				}
				if v == "-" {
					if err := kv.Delete(k); err != nil {
						return err
					}
				} else if err := kv.Put(k, v); err != nil {
					return err
				}
			}
			return nil
		}, task.Config{ChangelogBuffer: 200 + rng.IntN(4000),
			OpenBase: func(s *topology.StoreSpec) (state.KeyValueStore, error) { return db.KeyValueStore(s.Name), nil }}, &logged)
		return tk, kv
	}
	tk, _ := open()
	raw := func() state.KeyValueStore { return tk.Store("ps").(state.KeyValueStore) }
	model := map[string]string{}
	val := func() string {
		if rng.IntN(8) == 0 {
			return strings.Repeat("L", 100+rng.IntN(400)) // no slot (too large for the recent writes)
		}
		return fmt.Sprintf("v%d", rng.IntN(1000))
	}
	check := func(step int) {
		t.Helper()
		replay := map[string]string{}
		for _, r := range logged {
			if r.topic != "app-ps-changelog" {
				continue
			}
			if r.value == nil {
				delete(replay, string(r.key))
			} else {
				replay[string(r.key)] = string(r.value)
			}
		}
		if !maps.Equal(replay, model) {
			t.Fatalf("seed step %d: changelog replays to %v, want %v", step, replay, model)
		}
	}
	off := int64(0)
	for step := range 600 {
		switch n := rng.IntN(100); {
		case n < 70: // a record: 1..4 writes
			var ops []string
			for range 1 + rng.IntN(4) {
				k := fmt.Sprintf("k%d", rng.IntN(10))
				if rng.IntN(5) == 0 {
					ops = append(ops, k+"=-")
					delete(model, k)
				} else {
					v := val()
					ops = append(ops, k+"="+v)
					model[k] = v
				}
			}
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: off, Timestamp: 100, Key: []byte("x"), Value: []byte(strings.Join(ops, ";"))}))
			off++
		case n < 78: // a write outside a record's processing
			k := fmt.Sprintf("k%d", rng.IntN(10))
			enc := func(s string) []byte { b, _ := serde.String.Encode(nil, s); return b }
			kb := enc(k)
			if rng.IntN(3) == 0 {
				ok(t, raw().Delete(kb))
				delete(model, k)
			} else {
				v := val()
				ok(t, raw().Put(kb, enc(v)))
				model[k] = v
			}
		case n < 84: // another store's Batch commit: clears the recent writes
			bt := db.NewBatch()
			ok(t, bt.Put(other, []byte(fmt.Sprint(step)), []byte("x")))
			ok(t, bt.Commit(false))
			ok(t, bt.Close())
		case n < 88: // a read through an iteration: writes back
			for range raw().Range(nil, nil) {
			}
		case n < 96:
			ok(t, tk.Flush())
			ok(t, db.Commit(false))
			if rng.IntN(3) == 0 {
				ok(t, db.Discard()) // nothing pending: clears the recent writes
			}
			check(step)
		default: // commit and reopen the task over the same DB
			ok(t, tk.Flush())
			ok(t, db.Commit(false))
			check(step)
			ok(t, tk.Close())
			tk, _ = open()
		}
	}
	ok(t, tk.Flush())
	check(-1)
	ok(t, tk.Close())
}

// hideSlots is a store wrapper that does not forward PutSlot (as the
// metered store of runtime/metrics.go): the buffer then finds its entries
// by key.
type hideSlots struct{ state.KeyValueStore }

// The changelog buffer finds its entries through their keys' slots in
// the DB's recent writes, but keeps no reference to those: an entry
// evicted from the recent writes (RecentBytes) is freed at the next write
// back, as without slots. (A pointer to the slot in each buffered entry
// kept the evicted entries, with their copies of the values, alive until
// the buffer's next reset, beyond both budgets.) Compared with the same
// writes through a store that offers no slot.
func TestChangelogBufferSlotsKeepNoDroppedEntry(t *testing.T) {
	const keys, size = 200, 100 << 10 // 20 MB of values; RecentBytes 1 MiB keeps ~10
	heap := func(hide bool) uint64 {
		db, err := state.OpenPebble(t.TempDir(), state.PebbleOptions{BufferWrites: true})
		ok(t, err)
		defer db.Close()
		var logged changelogs
		other := db.KeyValueStore("other")
		var kv *state.KV[string, []byte]
		value := make([]byte, size)
		tk := storeProcTask(t, serde.Bytes, &kv, func(r operators.Record[string, string]) error {
			if err := kv.Put(r.Key, value); err != nil {
				return err
			}
			// An iteration (a join's window fetch, a range query) writes
			// the recent writes back to the pending batch: they no longer
			// keep the evicted entries alive.
			for range other.Range(nil, nil) {
			}
			return nil
		}, task.Config{ChangelogBuffer: 1 << 30,
			OpenBase: func(s *topology.StoreSpec) (state.KeyValueStore, error) {
				if hide {
					return hideSlots{db.KeyValueStore(s.Name)}, nil
				}
				return db.KeyValueStore(s.Name), nil
			}}, &logged)
		defer tk.Close()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		for i := range keys {
			ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: int64(i), Timestamp: 100, Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")}))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc - before
	}
	without, with := heap(true), heap(false)
	t.Logf("heap after %d buffered writes of %d bytes: %d MB without slots, %d MB with", keys, size, without>>20, with>>20)
	if float64(with) > 1.2*float64(without) {
		t.Fatalf("the slot path holds %d MB more than the key path for the same buffered writes (evicted recent entries kept alive, counted by no budget)",
			(with-without)>>20)
	}
}

// storeProcTask is a logged task (loggedTask) whose processor "proc" reads
// topic "in" and runs process over the store "ps" (string keys, values of
// vs, no record cache), which *kv holds once the task has opened it.
func storeProcTask[V any](t *testing.T, vs serde.Serde[V], kv **state.KV[string, V], process func(operators.Record[string, string]) error,
	cfg task.Config, logged *changelogs) *task.Task {
	t.Helper()
	return loggedTask(t, func(b *dsl.Builder) {
		ps := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "ps", DisableCaching: true}, serde.String, vs)
		dsl.Process(dsl.FromTopic(b, "in", serde.String, serde.String), func() operators.Processor[string, string, string, string] {
			return &operators.ProcessorFuncs[string, string, string, string]{
				InitFunc: func(ctx operators.ProcessorContext[string, string]) (err error) {
					*kv, err = ps.Open(ctx)
					return err
				},
				ProcessFunc: func(_ operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
					return process(r)
				},
			}
		}, dsl.Named("proc"), dsl.ConnectStores(ps))
	}, cfg, logged)
}
