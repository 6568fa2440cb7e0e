package state_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
)

// TestWindowStoreFetchCacheModel runs random writes, restores, reopens and
// fetches against two window stores, one with a fetch cache (small enough
// to evict) and one without, each over its own base, and wants every fetch
// to read the same.
func TestWindowStoreFetchCacheModel(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		for _, dups := range []bool{true, false} {
			for _, budget := range []int64{1 << 20, 4096} {
				t.Run(fmt.Sprintf("dups=%v/budget=%d", dups, budget), func(t *testing.T) {
					for seed := range uint64(4) {
						fetchCacheModel(t, b, seed, dups, budget)
					}
				})
			}
		}
	})
}

func fetchCacheModel(t *testing.T, b segmentedBase, seed uint64, dups bool, budget int64) {
	rng := rand.New(rand.NewPCG(seed, 15))
	o := state.WindowStoreOptions{Retention: 500 * time.Millisecond, SegmentInterval: 100 * time.Millisecond, RetainDuplicates: dups}
	plainBase, _ := b.open(t, fmt.Sprintf("plain-%d", seed))
	cachedBase, _ := b.open(t, fmt.Sprintf("cached-%d", seed))
	open := func() (plain, cached *state.WindowStore) {
		plain = newWindowStore(t, plainBase, o)
		oc := o
		oc.FetchCacheBytes = budget
		return plain, newWindowStore(t, cachedBase, oc)
	}
	// Keys of which one is a prefix of others, as the base's ranges see.
	keys := []string{"k", "k1", "k12", "other", "x"}
	plain, cached := open()
	now, used := int64(0), false
	for step := range 3000 {
		key := []byte(keys[rng.IntN(len(keys))])
		switch op := rng.IntN(100); {
		case op < 45:
			// Mostly in time order, sometimes late, sometimes a jump.
			start := now + int64(rng.IntN(20))
			switch rng.IntN(10) {
			case 0:
				start = max(0, now-int64(rng.IntN(700)))
			case 1:
				start = now + int64(rng.IntN(400))
			}
			now = max(now, start)
			value := []byte(fmt.Sprintf("v%d", step))
			if rng.IntN(15) == 0 {
				value = nil
			}
			ep, ec := plain.Put(key, start, value), cached.Put(key, start, value)
			if ep != ec {
				t.Fatalf("seed %d step %d: Put(%q, %d): plain %v, cached %v", seed, step, key, start, ep, ec)
			}
		case op < 50:
			// A changelog record: the seq it carries, possibly one the
			// store already holds.
			start := max(0, now-int64(rng.IntN(300)))
			ck := state.AppendWindowKey(nil, key, start, int32(rng.IntN(4)))
			value := []byte(fmt.Sprintf("r%d", step))
			if rng.IntN(8) == 0 {
				value = nil
			}
			if ep, ec := plain.Restore(ck, value), cached.Restore(ck, value); ep != nil || ec != nil {
				t.Fatalf("seed %d step %d: Restore: plain %v, cached %v", seed, step, ep, ec)
			}
			now = max(now, start)
		case op < 52:
			// A reopen: the seqs start over, so duplicates' (start, seq)
			// meet again and overwrite.
			plain, cached = open()
		case op < 60:
			start := max(0, now-int64(rng.IntN(600)))
			vp, okp, ep := plain.Fetch(key, start)
			vc, okc, ec := cached.Fetch(key, start)
			if string(vp) != string(vc) || okp != okc || ep != nil || ec != nil {
				t.Fatalf("seed %d step %d: Fetch(%q, %d): plain %q %v %v, cached %q %v %v", seed, step, key, start, vp, okp, ep, vc, okc, ec)
			}
		default:
			from := now - int64(rng.IntN(700))
			to := from + int64(rng.IntN(800))
			if got, want := fetchKey(t, cached, string(key), from, to), fetchKey(t, plain, string(key), from, to); got != want {
				t.Fatalf("seed %d step %d: FetchKey(%q, %d, %d):\ncached %s\nplain  %s", seed, step, key, from, to, got, want)
			}
			used = used || state.FetchCacheBytesForTest(cached) > 0
		}
	}
	if !used {
		t.Fatalf("seed %d: the cache never held anything", seed)
	}
	if got, want := windowEntries(t, cached, cached.All()), windowEntries(t, plain, plain.All()); got != want {
		t.Fatalf("seed %d: All:\ncached %s\nplain  %s", seed, got, want)
	}
}

// A write in the loop body of a cached fetch changes what later fetches
// read, not the fetch in progress: it yields the entries the key had when
// it started, whole.
func TestWindowStoreFetchCacheWritesDuringFetch(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		for _, dups := range []bool{false, true} {
			base, _ := b.open(t, fmt.Sprintf("win-%v", dups))
			s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond,
				RetainDuplicates: dups, FetchCacheBytes: 1 << 20})
			for _, start := range []int64{10, 110, 210} {
				mustPutWindow(t, s, "k", start, "v")
			}
			var seen []string
			for start, v := range s.FetchKey([]byte("k"), 0, 1000) {
				seen = append(seen, fmt.Sprintf("%d=%s", start, v))
				mustPutWindow(t, s, "k", start, "w")   // a replacement, or a duplicate
				mustPutWindow(t, s, "k", start-5, "e") // before the entries yielded
				mustPutWindow(t, s, "k", 3000, "z")    // after them all
				if err := s.Put([]byte("k"), 210, nil); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := strings.Join(seen, " "), "10=v 110=v 210=v"; got != want {
				t.Errorf("dups=%v: FetchKey yielded %q, want %q", dups, got, want)
			}
			want := "5=e 10=w 105=e 110=w 205=e 3000=z"
			if dups {
				// A nil value puts nothing into a store of duplicates.
				want = "5=e 10=v 10=w 105=e 110=v 110=w 205=e 210=v 210=w 3000=z 3000=z 3000=z"
			}
			if got := fetchKey(t, s, "k", 0, 5000); got != want {
				t.Errorf("dups=%v: FetchKey after = %q, want %q", dups, got, want)
			}
		}
	})
}

// The cache keeps within its budget as keys come and windows expire, and
// a key evicted reads the same when fetched again.
func TestWindowStoreFetchCacheBudget(t *testing.T) {
	base := state.NewInMemoryKeyValueStore("win")
	const budget = 64 << 10
	s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Second, SegmentInterval: 100 * time.Millisecond,
		RetainDuplicates: true, FetchCacheBytes: budget})
	value := []byte(strings.Repeat("v", 100))
	var max int64
	for i := range 20000 {
		key := []byte(fmt.Sprintf("key-%03d", i%500))
		for range s.FetchKey(key, 0, int64(i)) {
		}
		if err := s.Put(key, int64(i), value); err != nil {
			t.Fatal(err)
		}
		max = slices.Max([]int64{max, state.FetchCacheBytesForTest(s)})
	}
	if max > budget {
		t.Errorf("the cache held %d bytes, more than its budget of %d", max, budget)
	}
	if max < budget/2 {
		t.Errorf("the cache held at most %d bytes of its budget of %d: it did not cache", max, budget)
	}
	// Every key's last second: two entries of each key in the last
	// thousand puts.
	if got := strings.Count(fetchKey(t, s, "key-123", 0, 1<<40), "="); got != 2 {
		t.Errorf("FetchKey(key-123) yielded %d windows, want 2", got)
	}
}
