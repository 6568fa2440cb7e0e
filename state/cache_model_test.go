package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// Random Get, Put, Delete, Flush, DeleteRange and Range on a CachingStore
// with a small budget, against a map: reads and iterations (without writes
// in the loop body) see the latest writes, the store below holds exactly the
// model after a flush, each flushed entry's old value is what the store
// below held, and the cache's byte count is back to 0 once every entry left.
func TestCacheAgainstModel(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		inner := state.NewInMemoryKeyValueStore("s")
		cache := state.NewCache(int64(rng.IntN(2000)))
		c := state.NewCachingStore(inner, cache)
		below := map[string]string{} // what the listener says the store below held
		// shown are the keys of which GetShared returned a value the
		// listener had not been given: the next flush must forward them.
		shown := map[string]bool{}
		c.SetFlushListener(func(key, nv []byte, deleted bool, ov []byte, hasOld bool, _ state.RecordContext) error {
			delete(shown, string(key))
			old, ok := below[string(key)]
			if ok != hasOld || (ok && old != string(ov)) {
				t.Fatalf("seed %d: flush of %s: old %q/%v, store below held %q/%v", seed, key, ov, hasOld, old, ok)
			}
			if deleted {
				delete(below, string(key))
			} else {
				below[string(key)] = string(nv)
			}
			return nil
		})
		model := map[string]string{}
		key := func() []byte { return []byte(fmt.Sprintf("k%02d", rng.IntN(30))) }
		for step := range 3000 {
			switch op := rng.IntN(100); {
			case op < 35:
				k := key()
				shared := rng.IntN(2) == 0
				get := c.Get
				if shared {
					get = c.GetShared
				}
				v, ok, err := get(k)
				if err != nil {
					t.Fatal(err)
				}
				if b, held := below[string(k)]; shared && ok && (!held || b != string(v)) {
					shown[string(k)] = true
				}
				mv, mok := model[string(k)]
				if ok != mok || (ok && string(v) != mv) {
					t.Fatalf("seed %d step %d: Get(%s) = %q/%v, want %q/%v", seed, step, k, v, ok, mv, mok)
				}
				held := bytes.Clone(v)
				// A Put of the same key must not change the slice Get returned.
				if rng.IntN(2) == 0 {
					nv := bytes.Repeat([]byte{'x'}, rng.IntN(40))
					if err := c.Put(k, nv); err != nil {
						t.Fatal(err)
					}
					model[string(k)] = string(nv)
					if !bytes.Equal(v, held) {
						t.Fatalf("seed %d step %d: value returned by Get changed by a Put of its key", seed, step)
					}
				}
			case op < 65:
				k := key()
				v := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(60))
				if err := c.Put(k, v); err != nil {
					t.Fatal(err)
				}
				model[string(k)] = string(v)
			case op < 80:
				k := key()
				if err := c.Delete(k); err != nil {
					t.Fatal(err)
				}
				delete(model, string(k))
			case op < 85:
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				for k, v := range model {
					if g, ok, _ := inner.Get([]byte(k)); !ok || string(g) != v {
						t.Fatalf("seed %d step %d: after Flush the store below has %s=%q/%v, want %q", seed, step, k, g, ok, v)
					}
				}
				for k := range shown {
					t.Fatalf("seed %d step %d: a shared reader got a value of %s that the flush did not supersede", seed, step, k)
				}
			case op < 88:
				// Window stores drop whole ranges (expired segments) this way.
				a, b := key(), key()
				if bytes.Compare(a, b) > 0 {
					a, b = b, a
				}
				if err := c.DeleteRange(a, b); err != nil {
					t.Fatal(err)
				}
				for k := range model {
					if k >= string(a) && k < string(b) {
						delete(model, k)
					}
				}
				for k := range below {
					if k >= string(a) && k < string(b) {
						delete(below, k)
					}
				}
			default:
				a, b := key(), key()
				if bytes.Compare(a, b) > 0 {
					a, b = b, a
				}
				var got, want []string
				for k, v := range c.Range(a, b) {
					got = append(got, string(k)+"="+string(v))
				}
				for k, v := range model {
					if k >= string(a) && k < string(b) {
						want = append(want, k+"="+v)
					}
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: Range(%s, %s) = %v, want %v", seed, step, a, b, got, want)
				}
			}
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteRange(nil, nil); err != nil {
			t.Fatal(err)
		}
		if u := cache.Used(); u != 0 {
			t.Fatalf("seed %d: cache used = %d with no entry left, want 0", seed, u)
		}
	}
}

// Cache.used must come back to 0 once every entry is gone.
func TestCacheUsedReturnsToZero(t *testing.T) {
	inner := state.NewInMemoryKeyValueStore("s")
	cache := state.NewCache(1 << 20)
	c := state.NewCachingStore(inner, cache)
	for i := range 50 {
		k := []byte(fmt.Sprintf("k%02d", i%10))
		if _, _, err := c.Get(k); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := c.Delete(k); err != nil {
				t.Fatal(err)
			}
		} else if err := c.Put(k, make([]byte, i)); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	if u := cache.Used(); u != 0 {
		t.Errorf("cache used = %d after every entry left, want 0", u)
	}
}
