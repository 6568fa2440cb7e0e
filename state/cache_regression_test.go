package state_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// The loop body of a CachingStore iteration may write the store (Range's
// own comment says so, and WindowStore promises it). A write that evicts a
// dirty entry the iteration has already collected must not recycle that
// entry under the iteration (the free list reuses removed entries for new
// keys), or the iteration would yield a key it never held, outside its
// range.
func TestCacheRangeWithEvictingWritesInLoop(t *testing.T) {
	inner := state.NewInMemoryKeyValueStore("s")
	// Room for about four entries of these sizes.
	c := state.NewCachingStore(inner, state.NewCache(4*(96+4)))
	var want []string
	for i := range 4 {
		k := fmt.Sprintf("a%d", i)
		want = append(want, k)
		if err := c.Put([]byte(k), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for k := range c.Range([]byte("a"), []byte("b")) {
		got = append(got, string(k))
		// A write of another key, outside the range, in the loop body.
		if err := c.Put([]byte("z"+string(k)), []byte("w")); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Range(a, b) with writes of other keys in the loop yielded %q, want %q", got, want)
	}
}
