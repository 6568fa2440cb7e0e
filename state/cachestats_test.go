package state_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// CacheStats counts each Get as a hit when the cache holds the key (a
// deleted entry too: the cache answers it) and as a miss when the store
// below is asked, whose answer then fills the cache.
func TestCacheStats(t *testing.T) {
	inner := state.NewInMemoryKeyValueStore("s")
	if err := inner.Put([]byte("below"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	c := state.NewCachingStore(inner, state.NewCache(1<<20))
	if err := c.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete([]byte("gone")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		key          string
		hits, misses uint64
	}{
		{"k", 1, 0},      // written: cached
		{"gone", 2, 0},   // deleted in the cache
		{"below", 2, 1},  // read from below, now cached
		{"below", 3, 1},  // from the cache
		{"absent", 3, 2}, // absent everywhere: not cached
		{"absent", 3, 3},
	} {
		if _, _, err := c.Get([]byte(step.key)); err != nil {
			t.Fatal(err)
		}
		if hits, misses := c.CacheStats(); hits != step.hits || misses != step.misses {
			t.Fatalf("after Get(%s): hits %d, misses %d; want %d, %d", step.key, hits, misses, step.hits, step.misses)
		}
	}
}

// BenchmarkCachingStoreGet reads keys the record cache holds (hits) and
// keys it does not (misses, answered by the in-memory store below, which
// holds none of them): the path the hit and miss counters are on.
func BenchmarkCachingStoreGet(b *testing.B) {
	c := state.NewCachingStore(state.NewInMemoryKeyValueStore("s"), state.NewCache(1<<20))
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%04d", i)
		if err := c.Put(keys[i], []byte("v")); err != nil {
			b.Fatal(err)
		}
	}
	absent := []byte("absent")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, ok, err := c.Get(keys[i%len(keys)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, ok, err := c.Get(absent); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
