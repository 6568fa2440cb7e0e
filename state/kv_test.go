package state_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// pairs renders a typed sequence as "k=v k=v".
func pairs[K, V any](seq func(func(K, V) bool)) string {
	var out []string
	for k, v := range seq {
		out = append(out, fmt.Sprintf("%v=%v", k, v))
	}
	return strings.Join(out, " ")
}

func TestKV(t *testing.T) {
	store := state.NewInMemoryKeyValueStore("counts")
	kv := state.NewKV(store, serde.String, serde.Int64)
	if kv.Store() != store {
		t.Error("Store() is not the store given to NewKV")
	}

	if _, ok, err := kv.Get("a"); ok || err != nil {
		t.Errorf("Get(absent) = _, %v, %v", ok, err)
	}
	for k, v := range map[string]int64{"a": 1, "b": -2, "": 3, "ab": math.MaxInt64} {
		if err := kv.Put(k, v); err != nil {
			t.Fatalf("Put(%q, %d): %v", k, v, err)
		}
	}
	if err := kv.Put("a", 10); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"a": 10, "b": -2, "": 3, "ab": math.MaxInt64} {
		if v, ok, err := kv.Get(k); v != want || !ok || err != nil {
			t.Errorf("Get(%q) = %d, %v, %v; want %d, true, nil", k, v, ok, err, want)
		}
	}

	// The store holds the serdes' bytes.
	if b, ok, _ := store.Get([]byte("b")); !ok || string(b) != "\xff\xff\xff\xff\xff\xff\xff\xfe" {
		t.Errorf("store.Get(b) = % x, %v; want the Int64 encoding of -2", b, ok)
	}

	if err := kv.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := kv.Get("a"); ok {
		t.Error("Get after Delete: present")
	}
	if err := kv.Delete("a"); err != nil {
		t.Errorf("Delete(absent): %v", err)
	}
	if n := store.ApproximateCount(); n != 3 {
		t.Errorf("ApproximateCount() = %d, want 3", n)
	}
}

func TestKVIteration(t *testing.T) {
	kv := state.NewKV(state.NewInMemoryKeyValueStore("s"), serde.String, serde.Int32)
	for i, k := range []string{"b", "a", "ba", "bb", "c", ""} {
		if err := kv.Put(k, int32(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		seq  func(func(string, int32) bool)
		want string
	}{
		{"All", kv.All(), "=5 a=1 b=0 ba=2 bb=3 c=4"},
		{"Range(b, bb)", kv.Range("b", "bb"), "b=0 ba=2"},
		{"Range(a, c)", kv.Range("a", "c"), "a=1 b=0 ba=2 bb=3"},
		{"Range(, a)", kv.Range("", "a"), "=5"},
		{"Range(, )", kv.Range("", ""), ""}, // an empty to bound is a bound
		{"Range(c, a)", kv.Range("c", "a"), ""},
		{"Prefix(b)", kv.Prefix("b"), "b=0 ba=2 bb=3"},
		{"Prefix(ba)", kv.Prefix("ba"), "ba=2"},
		{"Prefix(x)", kv.Prefix("x"), ""},
		{"Prefix()", kv.Prefix(""), "=5 a=1 b=0 ba=2 bb=3 c=4"},
	} {
		if got := pairs(tc.seq); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, got, tc.want)
		}
		if err := kv.Err(); err != nil {
			t.Errorf("%s: Err() = %v", tc.name, err)
		}
	}
}

func TestKVOrderIsEncodedKeyOrder(t *testing.T) {
	kv := state.NewKV(state.NewInMemoryKeyValueStore("s"), serde.Int64, serde.String)
	for _, k := range []int64{-1, 2, math.MinInt64, 0, 1, math.MaxInt64, -2} {
		if err := kv.Put(k, ""); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for k := range kv.All() {
		got = append(got, k)
	}
	// Big-endian two's complement: non-negative numbers first, then the
	// negative ones, each in numeric order.
	want := []int64{0, 1, 2, math.MaxInt64, math.MinInt64, -2, -1}
	if !slices.Equal(got, want) {
		t.Errorf("All() keys = %v, want %v", got, want)
	}
	if got := pairs(kv.Range(1, math.MaxInt64)); got != "1= 2=" {
		t.Errorf("Range(1, MaxInt64) = %q", got)
	}
}

func TestKVWritesDuringIteration(t *testing.T) {
	kv := state.NewKV(state.NewInMemoryKeyValueStore("s"), serde.String, serde.Int64)
	for i, k := range []string{"a", "b", "c", "d"} {
		if err := kv.Put(k, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The loop body uses the view (and so its buffers) while iterating.
	var got []string
	for k, v := range kv.Range("a", "d") {
		got = append(got, fmt.Sprintf("%s=%d", k, v))
		if err := kv.Put(k+"x", v); err != nil { // not yielded: added after the start
			t.Fatal(err)
		}
		if err := kv.Delete("c"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := kv.Get("zzzzzzzzzzzzzzzz"); err != nil { // longer than the bounds
			t.Fatal(err)
		}
	}
	if g := strings.Join(got, " "); g != "a=0 b=1" {
		t.Errorf("iteration yielded %q, want %q", g, "a=0 b=1")
	}
}

func TestKVDecodeErrors(t *testing.T) {
	store := state.NewInMemoryKeyValueStore("counts")
	kv := state.NewKV(store, serde.String, serde.Int64)
	for _, k := range []string{"a", "c"} {
		if err := kv.Put(k, 1); err != nil {
			t.Fatal(err)
		}
	}
	// A value another writer stored with the wrong width.
	if err := store.Put([]byte("b"), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}

	_, ok, err := kv.Get("b")
	var de *serde.DecodeError
	if ok || !errors.As(err, &de) || de.Serde != "int64" || de.Len != 3 {
		t.Errorf("Get(b) = _, %v, %v; want a *serde.DecodeError for int64, 3 bytes", ok, err)
	}
	const want = `sluice: store "counts": decode value: sluice: serde int64: cannot decode 3 bytes: want 8`
	if err == nil || err.Error() != want {
		t.Errorf("Get(b) error %q, want %q", err, want)
	}

	if got := pairs(kv.All()); got != "a=1" {
		t.Errorf("All() = %q, want it to stop before b", got)
	}
	if err := kv.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() after All() = %v, want %q", err, want)
	}
	// The next iteration clears the error.
	if got := pairs(kv.Range("c", "d")); got != "c=1" || kv.Err() != nil {
		t.Errorf("Range(c, d) = %q, Err() = %v", got, kv.Err())
	}

	// A key the key serde cannot decode.
	ikv := state.NewKV(store, serde.Int32, serde.Bytes)
	if got := pairs(ikv.All()); got != "" {
		t.Errorf("All() with Int32 keys over 1-byte keys = %q", got)
	}
	if err := ikv.Err(); err == nil || !strings.Contains(err.Error(), `store "counts": decode key: sluice: serde int32: cannot decode 1 byte`) {
		t.Errorf("Err() = %v, want a key decode error", err)
	}
}

func TestKVEncodeErrors(t *testing.T) {
	errOdd := errors.New("odd")
	even := serde.Func(
		func(dst []byte, v int64) ([]byte, error) {
			if v%2 != 0 {
				return dst, errOdd
			}
			return serde.Int64.Encode(dst, v)
		},
		serde.Int64.Decode,
	)
	store := state.NewInMemoryKeyValueStore("evens")
	kv := state.NewKV(store, even, even)
	if err := kv.Put(2, 4); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Put key":   kv.Put(1, 2),
		"Put value": kv.Put(2, 3),
		"Delete":    kv.Delete(1),
	} {
		if !errors.Is(err, errOdd) || !strings.Contains(err.Error(), `store "evens"`) {
			t.Errorf("%s: %v, want errOdd naming the store", name, err)
		}
	}
	if _, _, err := kv.Get(1); !errors.Is(err, errOdd) {
		t.Errorf("Get: %v, want errOdd", err)
	}
	if v, _, _ := kv.Get(2); v != 4 {
		t.Errorf("Get(2) = %d after failed Puts, want 4", v)
	}
	for name, seq := range map[string]func(func(int64, int64) bool){
		"Range from": kv.Range(1, 10),
		"Range to":   kv.Range(0, 11),
		"Prefix":     kv.Prefix(3),
	} {
		if got := pairs(seq); got != "" || !errors.Is(kv.Err(), errOdd) {
			t.Errorf("%s yielded %q, Err() = %v; want nothing and errOdd", name, got, kv.Err())
		}
	}
}

func TestKVClosed(t *testing.T) {
	store := state.NewInMemoryKeyValueStore("s")
	kv := state.NewKV(store, serde.String, serde.String)
	if err := kv.Put("a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kv.Get("a"); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get: %v, want ErrClosed", err)
	}
	if err := kv.Put("a", "1"); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put: %v, want ErrClosed", err)
	}
	if err := kv.Delete("a"); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Delete: %v, want ErrClosed", err)
	}
	if got := pairs(kv.All()); got != "" {
		t.Errorf("All() = %q", got)
	}
}

func TestKVAllocs(t *testing.T) {
	kv := state.NewKV(state.NewInMemoryKeyValueStore("s"), serde.Int64, serde.Int64)
	for i := range int64(100) {
		if err := kv.Put(i, i); err != nil {
			t.Fatal(err)
		}
	}
	skv := state.NewKV(state.NewInMemoryKeyValueStore("s"), serde.String, serde.Float64)
	if err := skv.Put("some-key", 1); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Int64 Get", func() { v, _, _ := kv.Get(42); sum += v }},
		{"Int64 Put existing key", func() { _ = kv.Put(42, sum) }},
		{"Int64 Get absent", func() { _, _, _ = kv.Get(1000) }},
		{"String key Get", func() { _, _, _ = skv.Get("some-key") }},
		{"String key Put existing key", func() { _ = skv.Put("some-key", 2) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}
