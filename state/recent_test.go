package state_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// TestPebbleRecentWritesModel checks the recent writes' read cache of a
// DB that buffers its writes (PebbleOptions.RecentBytes) against a model:
// random puts, deletes, range deletions, batch writes, commits and
// discards on two stores of one DB, with a cache small enough to evict all
// the time, and every Get compared with the model and with the same DB
// read with the cache off. A stale entry (one a write path forgot to
// update or drop) fails it.
func TestPebbleRecentWritesModel(t *testing.T) {
	for _, recent := range []int{-1, 2048, 1 << 20} {
		t.Run(fmt.Sprintf("recent=%d", recent), func(t *testing.T) {
			fs := vfs.NewMem()
			db := openMem(t, fs, "db", state.PebbleOptions{BufferWrites: true, RecentBytes: recent})
			stores := []state.KeyValueStore{db.KeyValueStore("a"), db.KeyValueStore("b")}
			// committed and pending model each store's contents; pending
			// holds the writes since the last commit (nil value: deleted).
			committed := []map[string]string{{}, {}}
			pending := []map[string]*string{{}, {}}
			// ranges are the pending range deletions: they also delete
			// what a Batch commits under them before the pending writes
			// are committed (a pending write is newer than anything in
			// the DB).
			ranges := [][][2]string{nil, nil}
			rng := rand.New(rand.NewPCG(1, uint64(recent+2)))
			key := func() string { return fmt.Sprintf("k%02d", rng.IntN(40)) }
			wantGet := func(i int, k string) (string, bool) {
				if v, ok := pending[i][k]; ok {
					if v == nil {
						return "", false
					}
					return *v, true
				}
				for _, r := range ranges[i] {
					if k >= r[0] && k < r[1] {
						return "", false
					}
				}
				v, ok := committed[i][k]
				return v, ok
			}
			for step := range 20000 {
				i := rng.IntN(2)
				s := stores[i]
				switch op := rng.IntN(100); {
				case op < 40:
					// As an aggregation does: read the key, write it.
					k, v := key(), fmt.Sprintf("v%d-%s", step, string(make([]byte, rng.IntN(40))))
					got, ok, err := s.Get([]byte(k))
					if err != nil {
						t.Fatal(err)
					}
					if w, wok := wantGet(i, k); ok != wok || string(got) != w {
						t.Fatalf("step %d: store %s: Get(%s) = %q, %v; want %q, %v", step, s.Name(), k, got, ok, w, wok)
					}
					mustPut(t, s, k, v)
					pending[i][k] = &v
				case op < 50:
					k := key()
					if err := s.Delete([]byte(k)); err != nil {
						t.Fatal(err)
					}
					pending[i][k] = nil
				case op < 52:
					from, to := key(), key()
					if from > to {
						from, to = to, from
					}
					if err := s.(state.RangeDeleter).DeleteRange([]byte(from), []byte(to)); err != nil {
						t.Fatal(err)
					}
					ranges[i] = append(ranges[i], [2]string{from, to})
					for k := range pending[i] {
						if k >= from && k < to {
							pending[i][k] = nil
						}
					}
				case op < 54:
					// A batch applies to the DB at once, under the
					// pending writes (which still win on reads).
					b := db.NewBatch()
					k, v := key(), fmt.Sprintf("batch%d", step)
					if err := b.Put(s, []byte(k), []byte(v)); err != nil {
						t.Fatal(err)
					}
					if err := b.Commit(false); err != nil {
						t.Fatal(err)
					}
					_ = b.Close()
					committed[i][k] = v
				case op < 58:
					if err := db.Commit(false); err != nil {
						t.Fatal(err)
					}
					for j := range pending {
						for _, r := range ranges[j] {
							for k := range committed[j] {
								if k >= r[0] && k < r[1] {
									delete(committed[j], k)
								}
							}
						}
						ranges[j] = nil
						for k, v := range pending[j] {
							if v == nil {
								delete(committed[j], k)
							} else {
								committed[j][k] = *v
							}
						}
						clear(pending[j])
					}
				case op < 60:
					if err := db.Discard(); err != nil {
						t.Fatal(err)
					}
					for j := range pending {
						clear(pending[j])
						ranges[j] = nil
					}
				case op < 63:
					// An iteration sees the recent writes too.
					var want, got []string
					for j := range 40 {
						k := fmt.Sprintf("k%02d", j)
						if v, ok := wantGet(i, k); ok {
							want = append(want, k+"="+v)
						}
					}
					for k, v := range s.Range(nil, nil) {
						got = append(got, string(k)+"="+string(v))
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("step %d: store %s: Range = %v, want %v", step, s.Name(), got, want)
					}
				default:
					k := key()
					got, ok, err := s.Get([]byte(k))
					if err != nil {
						t.Fatal(err)
					}
					w, wok := wantGet(i, k)
					if ok != wok || string(got) != w {
						t.Fatalf("step %d: store %s: Get(%s) = %q, %v; want %q, %v", step, s.Name(), k, got, ok, w, wok)
					}
				}
			}
			// What the last Commit applied is on disk: the writes since
			// are lost with Close.
			mustPut(t, stores[0], "lost", "x")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openMem(t, fs, "db", state.PebbleOptions{RecentBytes: -1})
			for i, name := range []string{"a", "b"} {
				var got []string
				for k, v := range db.KeyValueStore(name).Range(nil, nil) {
					got = append(got, string(k)+"="+string(v))
				}
				var want []string
				for j := range 40 {
					k := fmt.Sprintf("k%02d", j)
					if v, ok := committed[i][k]; ok {
						want = append(want, k+"="+v)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("store %s after reopen = %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestPebbleRecentWritesEvictedThenWritten: a key read (a hit), then
// evicted by other writes, then read (a miss) and written again must read
// back its new value.
func TestPebbleRecentWritesEvictedThenWritten(t *testing.T) {
	db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{BufferWrites: true, RecentBytes: 1024})
	s := db.KeyValueStore("s")
	mustPut(t, s, "a", "old")
	if got := getString(t, s, "a"); got != "old" {
		t.Fatalf("Get(a) = %q, want old", got)
	}
	for i := range 100 {
		mustPut(t, s, fmt.Sprintf("other%03d", i), "x")
	}
	if got := getString(t, s, "a"); got != "old" {
		t.Fatalf("Get(a) after eviction = %q, want old", got)
	}
	mustPut(t, s, "a", "new")
	if got := getString(t, s, "a"); got != "new" {
		t.Fatalf("Get(a) after its update = %q, want new", got)
	}
}
