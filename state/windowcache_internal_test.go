package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// recount is what the fetch cache should count: its keys and entries. It
// fails t if a key counts other than its entries.
func recount(t *testing.T, c *fetchCache) int64 {
	t.Helper()
	var n int64
	for s, k := range c.keys {
		size := keySize([]byte(s))
		for i := range k.entries {
			size += entryCost(&k.entries[i])
		}
		if size != k.size {
			t.Fatalf("key %q counts %d bytes, its entries %d", s, k.size, size)
		}
		n += size
	}
	return n
}

// fk renders FetchKey(key, from, to) as "start=value ...".
func fk(s *WindowStore, key string, from, to int64) string {
	var b strings.Builder
	for st, v := range s.FetchKey([]byte(key), from, to) {
		fmt.Fprintf(&b, "%d=%s ", st, v)
	}
	return b.String()
}

// TestFetchCacheAccountingAndNested runs random writes and restores, some
// inside the loop bodies of cached fetches (nested), with seqs over the
// whole uint32 range, over budgets small enough to evict. After every
// operation the cache counts what it holds and is within its budget; every
// cached fetch yields what an uncached store's does at its start.
func TestFetchCacheAccountingAndNested(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		o := WindowStoreOptions{Retention: 300 * time.Millisecond, SegmentInterval: 50 * time.Millisecond, RetainDuplicates: seed%2 == 0}
		var pb, cb KeyValueStore = NewInMemoryKeyValueStore("p"), NewInMemoryKeyValueStore("c")
		if seed%4 < 2 {
			db, err := OpenPebble("db", PebbleOptions{FS: vfs.NewMem()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			pb, cb = db.KeyValueStore("p"), db.KeyValueStore("c")
		}
		plain, _ := NewWindowStore(pb, o)
		oc := o
		oc.FetchCacheBytes = int64(4000 + rng.IntN(30000))
		cached, _ := NewWindowStore(cb, oc)
		keys := []string{"a", "ab", "b", "c", "d", "e", "f", "g"}
		now := int64(0)
		var op func(depth int)
		op = func(depth int) {
			key := keys[rng.IntN(len(keys))]
			switch r := rng.IntN(100); {
			case r < 40:
				start := max(0, now-int64(rng.IntN(350))+int64(rng.IntN(60)))
				now = max(now, start)
				v := []byte(strings.Repeat("v", rng.IntN(30)))
				if rng.IntN(10) == 0 {
					v = nil
				}
				e1, e2 := plain.Put([]byte(key), start, v), cached.Put([]byte(key), start, v)
				if e1 != e2 {
					t.Fatalf("put errs %v %v", e1, e2)
				}
			case r < 55:
				start := max(0, now-int64(rng.IntN(350)))
				seq := int32(rng.Uint32() | 0x80000000)
				if rng.IntN(2) == 0 {
					seq = int32(rng.IntN(4))
				}
				ck := AppendWindowKey(nil, []byte(key), start, seq)
				v := []byte(fmt.Sprintf("r%d", rng.IntN(100)))
				if rng.IntN(6) == 0 {
					v = nil
				}
				if e1, e2 := plain.Restore(ck, v), cached.Restore(ck, v); e1 != nil || e2 != nil {
					t.Fatal(e1, e2)
				}
				now = max(now, start)
			default:
				from := now - int64(rng.IntN(400))
				to := from + int64(rng.IntN(500))
				want := fk(plain, key, from, to)
				// A fetch of a key the cache holds (after this one, which
				// loads it or finds it too big) yields what the key had at
				// its start; one the cache refused reads the base, whose
				// iterations may see the loop body's writes.
				if got := fk(cached, key, from, to); got != want {
					t.Fatalf("seed %d depth %d FetchKey(%s,%d,%d):\n got %s\nwant %s", seed, depth, key, from, to, got, want)
				}
				_, snapshot := cached.cache.keys[key]
				var got strings.Builder
				nested := false
				for st, v := range cached.FetchKey([]byte(key), from, to) {
					fmt.Fprintf(&got, "%d=%s ", st, v)
					if depth < 3 && rng.IntN(3) == 0 {
						nested = true
						op(depth + 1)
					}
				}
				if (snapshot || !nested) && got.String() != want {
					t.Fatalf("seed %d depth %d FetchKey(%s,%d,%d):\n got %s\nwant %s", seed, depth, key, from, to, got.String(), want)
				}
			}
			if c := recount(t, cached.cache); c != cached.cache.bytes {
				t.Fatalf("seed %d: counted %d, actual %d", seed, cached.cache.bytes, c)
			}
			if cached.cache.bytes > cached.cache.max {
				t.Fatalf("seed %d: over budget %d > %d", seed, cached.cache.bytes, cached.cache.max)
			}
		}
		for range 2000 {
			op(0)
		}
		for _, k := range keys {
			if a, b := fk(cached, k, 0, 1<<40), fk(plain, k, 0, 1<<40); a != b {
				t.Fatalf("seed %d final %s:\n%s\n%s", seed, k, a, b)
			}
		}
	}
}

// TestFetchCacheHoldsWhatItCounts: the memory the cache holds stays within
// a small factor of what it counts, after keys' bursts expire (trimmed
// entries must not stay in their arrays for good).
func TestFetchCacheHoldsWhatItCounts(t *testing.T) {
	base := NewInMemoryKeyValueStore("win")
	s, _ := NewWindowStore(base, WindowStoreOptions{Retention: time.Second, SegmentInterval: 100 * time.Millisecond,
		RetainDuplicates: true, FetchCacheBytes: 4 << 20})
	value := bytes.Repeat([]byte("v"), 1000)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	now := int64(0)
	const keys = 200
	for i := range keys {
		key := []byte(fmt.Sprintf("key-%04d", i))
		for range s.FetchKey(key, 0, 0) {
		}
		// A burst of 500 records in one second (about 520 KB, under a
		// quarter of the budget)...
		for j := range 500 {
			_ = s.Put(key, now+int64(j)*2, value)
		}
		now += 2000
		// ...then one more record two seconds later: the burst expires.
		_ = s.Put(key, now, value)
		if k := s.cache.keys[string(key)]; k == nil || len(k.entries) < 500 {
			t.Fatalf("%s is not cached with its burst before the fetch that trims it", key)
		}
		for range s.FetchKey(key, 0, now) { // trims the key
		}
		now += 10
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	with := ms.HeapAlloc
	counted := s.cache.bytes
	s.cache.keys = nil
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(with) - int64(ms.HeapAlloc)
	t.Logf("before %d; cache counts %d KiB, holds %d KiB (%d keys)", before>>10, counted>>10, held>>10, keys)
	if held > 3*counted+(1<<20) {
		t.Errorf("the cache holds %d KiB but counts %d KiB (budget %d KiB)", held>>10, counted>>10, int64(4<<20)>>10)
	}
}

// A base whose Put applies the write and then fails, as task.loggedStore
// does when the changelog send fails (the producer's sticky error).
type writeThenFail struct {
	KeyValueStore
	fail bool
}

func (b *writeThenFail) Put(k, v []byte) error {
	if err := b.KeyValueStore.Put(k, v); err != nil {
		return err
	}
	if b.fail {
		return fmt.Errorf("changelog send failed")
	}
	return nil
}

// TestFetchCacheWriteAppliedThenFailed: a write the base applied but
// reported as failed leaves no stale copy of its key.
func TestFetchCacheWriteAppliedThenFailed(t *testing.T) {
	for _, cacheBytes := range []int64{0, 1 << 20} {
		base := &writeThenFail{KeyValueStore: NewInMemoryKeyValueStore("w")}
		s, _ := NewWindowStore(base, WindowStoreOptions{Retention: time.Hour, RetainDuplicates: true, FetchCacheBytes: cacheBytes})
		_ = s.Put([]byte("k"), 10, []byte("a"))
		_ = fk(s, "k", 0, 100) // loads k into the cache
		base.fail = true
		if err := s.Put([]byte("k"), 20, []byte("b")); err == nil {
			t.Fatal("no error")
		}
		base.fail = false
		if got := fk(s, "k", 0, 100); got != "10=a 20=b " {
			t.Errorf("cache=%d: FetchKey = %q, the base holds 10=a 20=b", cacheBytes, got)
		}
	}
}

// TestFetchCacheOversizedKey: a key that would take more than a quarter of
// the budget is read from the base each time, not cached at the cost of
// the other keys, nor read whole on each fetch.
func TestFetchCacheOversizedKey(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 1000)
	open := func(cache int64) *WindowStore {
		s, _ := NewWindowStore(NewInMemoryKeyValueStore("w"), WindowStoreOptions{Retention: time.Hour, RetainDuplicates: true, FetchCacheBytes: cache})
		for i := range 100 {
			_ = s.Put([]byte("hot"), int64(i), big)
		}
		return s
	}
	s := open(64 << 10)
	for i := range 50 {
		k := fmt.Sprintf("small-%d", i)
		_ = s.Put([]byte(k), 1, []byte("x"))
		_ = fk(s, k, 0, 10)
	}
	if got := fk(s, "hot", 98, 99); got != "98="+string(big)+" 99="+string(big)+" " {
		t.Errorf("FetchKey(hot, 98, 99) = %.40q...", got)
	}
	if s.cache.keys["hot"] != nil {
		t.Error("the hot key, 100 KB, is in a cache of 64 KiB")
	}
	if n := len(s.cache.keys); n != 50 {
		t.Errorf("%d keys cached after a fetch of the hot key, want the 50 small ones", n)
	}
	perFetch := func(s *WindowStore) uint64 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		for range 100 {
			for range s.FetchKey([]byte("hot"), 98, 99) {
			}
		}
		runtime.ReadMemStats(&b)
		return (b.TotalAlloc - a.TotalAlloc) / 100
	}
	if p, c := perFetch(open(0)), perFetch(s); c > 2*p+1024 {
		t.Errorf("a fetch of the refused key allocates %d bytes, %d without a cache", c, p)
	}
}

// TestFetchCacheGrownKey: a key cached while small and grown past a quarter
// of the budget by puts leaves the cache, not the other keys.
func TestFetchCacheGrownKey(t *testing.T) {
	s, _ := NewWindowStore(NewInMemoryKeyValueStore("w"), WindowStoreOptions{Retention: time.Hour, RetainDuplicates: true, FetchCacheBytes: 64 << 10})
	big := bytes.Repeat([]byte("v"), 1000)
	_ = s.Put([]byte("hot"), 0, big)
	_ = fk(s, "hot", 0, 0) // cached at 1 KB
	for i := range 50 {
		k := fmt.Sprintf("small-%02d", i)
		_ = s.Put([]byte(k), 1, []byte("x"))
		_ = fk(s, k, 0, 10)
	}
	for i := 1; i < 70; i++ {
		_ = s.Put([]byte("hot"), int64(i), big)
		if k := s.cache.keys["hot"]; k != nil && s.cache.tooBig(k.size) {
			t.Fatalf("the hot key is cached at %d bytes, more than a quarter of the budget", k.size)
		}
	}
	if s.cache.keys["hot"] != nil {
		t.Error("the hot key, 70 KB, is in a cache of 64 KiB")
	}
	if n := len(s.cache.keys); n != 50 {
		t.Errorf("%d keys cached, want the 50 small ones", n)
	}
	if got := strings.Count(fk(s, "hot", 0, 100), "="); got != 70 {
		t.Errorf("FetchKey(hot) yielded %d windows, want 70", got)
	}
}

// TestFetchCacheDeletesShrinkArray: a key whose entries were deleted does
// not keep the array they filled.
func TestFetchCacheDeletesShrinkArray(t *testing.T) {
	s, _ := NewWindowStore(NewInMemoryKeyValueStore("w"), WindowStoreOptions{Retention: time.Hour, RetainDuplicates: true, FetchCacheBytes: 4 << 20})
	for i := range 2000 {
		_ = s.Put([]byte("k"), int64(i), []byte("v"))
	}
	_ = fk(s, "k", 0, 0)
	for i := range 1999 {
		ck := AppendWindowKey(nil, []byte("k"), int64(i), int32(i+1))
		if err := s.Restore(ck, nil); err != nil {
			t.Fatal(err)
		}
	}
	k := s.cache.keys["k"]
	if len(k.entries) != 1 || cap(k.entries) > 16 {
		t.Errorf("after deleting 1999 of 2000 entries: len %d, cap %d", len(k.entries), cap(k.entries))
	}
	if got := fk(s, "k", 0, 5000); got != "1999=v " {
		t.Errorf("FetchKey = %q", got)
	}
}
