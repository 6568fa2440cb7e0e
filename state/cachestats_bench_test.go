package state_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/state"
)

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
