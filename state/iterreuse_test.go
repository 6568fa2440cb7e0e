package state_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

func kvs(t *testing.T, s state.KeyValueStore) string {
	t.Helper()
	var out string
	for k, v := range s.Range(nil, nil) {
		if out != "" {
			out += ","
		}
		out += string(k) + "=" + string(v)
	}
	if e, ok := s.(state.IterErrReporter); ok && e.IterErr() != nil {
		t.Fatal(e.IterErr())
	}
	return out
}

// Pooled iterators must see every later write to the pending batch: point
// writes through the recent map and straight to the batch, range deletions
// (first one and later ones), writes over a range deletion, other stores'
// writes, and the DB after Commit / Batch.Commit / memtable flush.
func TestIterReuseSeesWrites(t *testing.T) {
	for _, recent := range []int{0, -1} {
		t.Run(fmt.Sprintf("recent=%d", recent), func(t *testing.T) {
			db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{BufferWrites: true, RecentBytes: recent})
			s, o := db.KeyValueStore("s"), db.KeyValueStore("o")
			check := func(want string) {
				t.Helper()
				// several nested + sequential iterations to cycle the pool
				for i := 0; i < 3; i++ {
					for range o.Range(nil, nil) {
					}
					if got := kvs(t, s); got != want {
						t.Fatalf("pass %d: Range = %q, want %q", i, got, want)
					}
				}
			}
			check("")
			mustPut(t, s, "a", "1")
			check("a=1")
			mustPut(t, s, "b", "2")
			mustPut(t, o, "x", "9")
			check("a=1,b=2")
			mustPut(t, s, "a", "1b")
			check("a=1b,b=2")
			if err := db.Commit(false); err != nil {
				t.Fatal(err)
			}
			check("a=1b,b=2")
			mustPut(t, s, "c", "3")
			check("a=1b,b=2,c=3")
			// first range deletion in this batch: iterator stack rebuilt
			if err := s.(state.RangeDeleter).DeleteRange([]byte("a"), []byte("c")); err != nil {
				t.Fatal(err)
			}
			check("c=3")
			mustPut(t, s, "b", "new")
			check("b=new,c=3")
			// second range deletion: batch rangedel iterator refreshed in place
			if err := s.(state.RangeDeleter).DeleteRange([]byte("b"), []byte("d")); err != nil {
				t.Fatal(err)
			}
			check("")
			mustPut(t, s, "c", "4")
			mustDelete(t, s, "c")
			mustPut(t, s, "d", "5")
			check("d=5")
			if err := state.PebbleFlushMemTableForTest(db); err != nil {
				t.Fatal(err)
			}
			check("d=5")
			// Batch.Commit writes the DB around the pending batch.
			b := db.NewBatch()
			if err := b.Put(s, []byte("e"), []byte("6")); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			b.Close()
			check("d=5,e=6")
			if err := db.Commit(false); err != nil {
				t.Fatal(err)
			}
			check("d=5,e=6")
			if err := db.Discard(); err != nil {
				t.Fatal(err)
			}
			check("d=5,e=6")
		})
	}
}

// An iteration in progress across a Commit: the batch it was made over
// is closed and NewIndexedBatch hands back the same *pebble.Batch from
// Pebble's pool, so the batch's pointer does not tell that the iterator's
// DB view predates the commit: the DB's epoch does, and the iterator is
// not pooled (it was, and the next Range missed the committed writes).
func TestIterReusePoolABA(t *testing.T) {
	db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{BufferWrites: true, RecentBytes: -1})
	s := db.KeyValueStore("s")
	mustPut(t, s, "a", "1")
	for range s.Range(nil, nil) {
		mustPut(t, s, "b", "2")
		if err := db.Commit(false); err != nil {
			t.Fatal(err)
		}
		break
	}
	if got := kvs(t, s); got != "a=1,b=2" {
		t.Fatalf("Range after a commit made during an iteration = %q, want a=1,b=2", got)
	}
}

// A DB without BufferWrites is safe for concurrent use by tasks on
// different goroutines: it pools no iterators, and Batch.Commit and
// Commit leave the pool alone while another goroutine's Range reads it
// (a race before). Run with -race.
func TestIterReuseSharedDBRace(t *testing.T) {
	db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{})
	s1, s2 := db.KeyValueStore("one"), db.KeyValueStore("two")
	mustPut(t, s2, "k", "v")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b := db.NewBatch()
		defer b.Close()
		for i := 0; i < 200; i++ {
			_ = b.Put(s1, []byte("k"), []byte("v"))
			_ = b.Commit(false)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			for range s2.Range(nil, nil) {
			}
		}
	}()
	wg.Wait()
}

// Nested iterations and early breaks with pool reuse: the outer iteration
// keeps its snapshot while inner ones (which take and give back pooled
// iterators, and write back recent writes) see every write so far.
func TestIterReuseNested(t *testing.T) {
	db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{BufferWrites: true})
	s := db.KeyValueStore("s")
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		mustPut(t, s, k, "0")
	}
	// warm the pool with broken-off iterations
	for i := 0; i < 6; i++ {
		for range s.Range(nil, nil) {
			break
		}
	}
	var outer []string
	n := 0
	for k := range s.Range(nil, nil) {
		outer = append(outer, string(k))
		n++
		mustPut(t, s, fmt.Sprintf("z%d", n), "1")
		mustDelete(t, s, "f")
		want := 0
		for range s.Range(nil, nil) {
			want++
			for range s.Range([]byte("a"), []byte("c")) {
				break
			}
		}
		// a..e, z1..zn
		if want != 5+n {
			t.Fatalf("inner iteration %d saw %d keys, want %d", n, want, 5+n)
		}
	}
	if fmt.Sprint(outer) != "[a b c d e f]" {
		t.Fatalf("outer iteration = %v, want its snapshot a..f", outer)
	}
}
