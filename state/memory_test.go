package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/state"
)

func mustPut(t testing.TB, s state.KeyValueStore, k, v string) {
	t.Helper()
	if err := s.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q, %q): %v", k, v, err)
	}
}

func mustDelete(t testing.TB, s state.KeyValueStore, k string) {
	t.Helper()
	if err := s.Delete([]byte(k)); err != nil {
		t.Fatalf("Delete(%q): %v", k, err)
	}
}

// wantGet checks Get(k); want "<absent>" for an absent key.
func wantGet(t testing.TB, s state.KeyValueStore, k, want string) {
	t.Helper()
	v, ok, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	got := string(v)
	if !ok {
		got = "<absent>"
	}
	if got != want {
		t.Errorf("Get(%q) = %q, want %q", k, got, want)
	}
}

// collect renders a sequence as "k=v k=v".
func collect(seq func(func([]byte, []byte) bool)) string {
	var out []string
	for k, v := range seq {
		out = append(out, string(k)+"="+string(v))
	}
	return strings.Join(out, " ")
}

func TestPutGetDelete(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	if s.Name() != "kv" {
		t.Errorf("Name() = %q", s.Name())
	}
	wantGet(t, s, "a", "<absent>")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	wantGet(t, s, "a", "1")
	wantGet(t, s, "b", "2")

	// Overwrite with values of the same, shorter and longer length.
	mustPut(t, s, "a", "x")
	wantGet(t, s, "a", "x")
	mustPut(t, s, "a", "")
	wantGet(t, s, "a", "")
	mustPut(t, s, "a", "a much longer value than before")
	wantGet(t, s, "a", "a much longer value than before")
	mustPut(t, s, "a", "short")
	wantGet(t, s, "a", "short")
	if n := s.ApproximateCount(); n != 2 {
		t.Errorf("ApproximateCount() = %d, want 2", n)
	}

	mustDelete(t, s, "a")
	wantGet(t, s, "a", "<absent>")
	mustDelete(t, s, "a") // absent: not an error
	mustDelete(t, s, "never")
	wantGet(t, s, "b", "2")
	if n := s.ApproximateCount(); n != 1 {
		t.Errorf("ApproximateCount() = %d, want 1", n)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("Flush: %v", err)
	}
}

func TestEmptyValuesAndKeys(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	// A nil value is stored as an empty value, not a deletion.
	if err := s.Put([]byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	v, ok, err := s.Get([]byte("k"))
	if err != nil || !ok || v == nil || len(v) != 0 {
		t.Errorf("Get after Put(k, nil) = %#v, %v, %v; want empty non-nil value, true, nil", v, ok, err)
	}
	// The empty key is a key like any other, and sorts first.
	mustPut(t, s, "", "empty")
	wantGet(t, s, "", "empty")
	if got := collect(s.Range(nil, nil)); got != "=empty k=" {
		t.Errorf("Range(nil, nil) = %q", got)
	}
}

func TestPutCopies(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	k, v := []byte("key"), []byte("value")
	if err := s.Put(k, v); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X'
	wantGet(t, s, "key", "value")
	wantGet(t, s, "Xey", "<absent>")

	// Putting the store's own slice back is fine.
	got, _, _ := s.Get([]byte("key"))
	if err := s.Put([]byte("key"), got[1:]); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, "key", "alue")

	// Appending to a returned value does not change the stored value.
	got, _, _ = s.Get([]byte("key"))
	_ = append(got, "zzz"...)
	mustPut(t, s, "key", "ab")
	wantGet(t, s, "key", "ab")
}

func TestOrder(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	keys := []string{"b", "a", "ab", "\xff", "\x00", "", "aa", "a\x00", "B", "ä", "\xff\xff", "ba"}
	for _, k := range keys {
		mustPut(t, s, k, "")
	}
	var got []string
	for k := range s.Range(nil, nil) {
		got = append(got, string(k))
	}
	want := slices.Clone(keys)
	slices.Sort(want) // Go string order is bytes.Compare order
	if !slices.Equal(got, want) {
		t.Errorf("Range(nil, nil) keys = %q, want %q", got, want)
	}
}

func TestRange(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	for _, k := range []string{"a", "b", "ba", "c", "d"} {
		mustPut(t, s, k, strings.ToUpper(k))
	}
	b := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		from, to []byte
		want     string
	}{
		{nil, nil, "a=A b=B ba=BA c=C d=D"},
		{b("b"), b("d"), "b=B ba=BA c=C"}, // from inclusive, to exclusive
		{b("b"), nil, "b=B ba=BA c=C d=D"},
		{nil, b("c"), "a=A b=B ba=BA"},
		{b("bb"), b("cc"), "c=C"}, // bounds need not be keys
		{b(""), nil, "a=A b=B ba=BA c=C d=D"},
		{nil, b(""), ""}, // an empty to is a bound, unlike nil
		{b("b"), b("b"), ""},
		{b("c"), b("b"), ""}, // from > to
		{b("e"), nil, ""},
		{nil, b("a"), ""},
		{b("\x00"), b("\xff"), "a=A b=B ba=BA c=C d=D"},
	} {
		if got := collect(s.Range(tc.from, tc.to)); got != tc.want {
			t.Errorf("Range(%q, %q) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}

	// Range copies its bounds when called.
	from, to := b("b"), b("c")
	seq := s.Range(from, to)
	from[0], to[0] = 'z', 'z'
	if got := collect(seq); got != "b=B ba=BA" {
		t.Errorf("Range after changing the bounds = %q", got)
	}

	// Breaking early.
	n := 0
	for range s.Range(nil, nil) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("broke after %d entries", n)
	}
}

func TestPrefix(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	for _, k := range []string{"a", "ab", "abc", "abd", "ac", "b", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\x01", "a\xff", "a\xff\xff", "b\x00"} {
		mustPut(t, s, k, "")
	}
	for _, tc := range []struct {
		prefix string
		want   string
	}{
		{"ab", "ab= abc= abd="},
		{"a", "a= ab= abc= abd= ac= a\xff= a\xff\xff="},
		{"abc", "abc="},
		{"abcd", ""},
		{"a\xff", "a\xff= a\xff\xff="},
		{"\xff", "\xff= \xff\x00= \xff\xff= \xff\xff\x01="},
		{"\xff\xff", "\xff\xff= \xff\xff\x01="},
		{"b", "b= b\x00="},
		{"c", ""},
		{"", "a= ab= abc= abd= ac= a\xff= a\xff\xff= b= b\x00= \xff= \xff\x00= \xff\xff= \xff\xff\x01="},
	} {
		if got := collect(s.Prefix([]byte(tc.prefix))); got != tc.want {
			t.Errorf("Prefix(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	if got, want := collect(s.Prefix(nil)), collect(s.Range(nil, nil)); got != want {
		t.Errorf("Prefix(nil) = %q, want everything: %q", got, want)
	}
}

func TestWritesDuringIteration(t *testing.T) {
	for _, tc := range []struct {
		name string
		// body runs after the iteration yielded key k.
		body func(t *testing.T, s state.KeyValueStore, k string)
		want string
	}{
		{"delete current", func(t *testing.T, s state.KeyValueStore, k string) {
			mustDelete(t, s, k)
		}, "a=1 b=2 c=3 d=4 e=5"},
		{"delete next", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "b" {
				mustDelete(t, s, "c")
			}
		}, "a=1 b=2 d=4 e=5"},
		{"delete current and next", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "b" {
				mustDelete(t, s, "b")
				mustDelete(t, s, "c")
			}
		}, "a=1 b=2 d=4 e=5"},
		{"delete all ahead", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "a" {
				for _, k := range []string{"b", "c", "d", "e"} {
					mustDelete(t, s, k)
				}
			}
		}, "a=1"},
		{"delete behind", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "c" {
				mustDelete(t, s, "a")
				mustDelete(t, s, "b")
			}
		}, "a=1 b=2 c=3 d=4 e=5"},
		{"overwrite ahead", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "a" {
				mustPut(t, s, "d", "new")
			}
		}, "a=1 b=2 c=3 d=new e=5"},
		{"overwrite current", func(t *testing.T, s state.KeyValueStore, k string) {
			mustPut(t, s, k, "x"+k)
		}, "a=1 b=2 c=3 d=4 e=5"},
		{"insert ahead is not yielded", func(t *testing.T, s state.KeyValueStore, k string) {
			mustPut(t, s, k+"x", "new") // would make the loop endless if yielded
		}, "a=1 b=2 c=3 d=4 e=5"},
		{"delete and re-add ahead is not yielded", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "a" {
				mustDelete(t, s, "c")
				mustPut(t, s, "c", "again")
			}
		}, "a=1 b=2 d=4 e=5"},
		{"delete current then re-add", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "b" {
				mustDelete(t, s, "b")
				mustPut(t, s, "b", "again")
				mustPut(t, s, "bb", "new")
			}
		}, "a=1 b=2 c=3 d=4 e=5"},
		{"delete everything and refill", func(t *testing.T, s state.KeyValueStore, k string) {
			if k == "a" {
				for _, k := range []string{"a", "b", "c", "d", "e"} {
					mustDelete(t, s, k)
					mustPut(t, s, k, "new")
				}
			}
		}, "a=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewInMemoryKeyValueStore("kv")
			for i, k := range []string{"a", "b", "c", "d", "e"} {
				mustPut(t, s, k, fmt.Sprint(i+1))
			}
			var got []string
			for k, v := range s.Range(nil, nil) {
				got = append(got, string(k)+"="+string(v))
				tc.body(t, s, string(k))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("iteration yielded %q, want %q", g, tc.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	seq := s.Range(nil, nil) // created before Close, run after
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s.Name() != "kv" {
		t.Errorf("Name() after Close = %q", s.Name())
	}
	if _, _, err := s.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	for name, err := range map[string]error{
		"Put":    s.Put([]byte("a"), []byte("1")),
		"Delete": s.Delete([]byte("a")),
		"Flush":  s.Flush(),
		"Close":  s.Close(),
	} {
		if !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if got := collect(seq) + collect(s.Range(nil, nil)) + collect(s.Prefix(nil)); got != "" {
		t.Errorf("iteration after Close yielded %q", got)
	}
	if n := s.ApproximateCount(); n != 0 {
		t.Errorf("ApproximateCount() after Close = %d", n)
	}
}

func TestCloseDuringIteration(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	var got []string
	for k := range s.Range(nil, nil) {
		got = append(got, string(k))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []string{"a"}) {
		t.Errorf("iteration closed at the first key yielded %q", got)
	}
}

// TestModel checks the store against a map under random operations, with
// keys drawn from a small alphabet so that puts, overwrites, deletes and
// ranges hit the same keys often.
func TestModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = "ab\x00\xff"[rng.IntN(4)]
		}
		return b
	}
	s := state.NewInMemoryKeyValueStore("kv")
	model := map[string]string{}
	for i := range 20000 {
		switch op := rng.IntN(10); {
		case op < 5:
			k, v := key(), fmt.Sprint(rng.IntN(1000))
			if err := s.Put(k, []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[string(k)] = v
		case op < 8:
			k := key()
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			delete(model, string(k))
		case op < 9:
			k := key()
			wantGet(t, s, string(k), cmpOr(model, string(k)))
		default:
			from, to := key(), key()
			if rng.IntN(4) == 0 {
				from = nil
			}
			if rng.IntN(4) == 0 {
				to = nil
			}
			var keys, want []string
			for k := range model {
				if (from == nil || k >= string(from)) && (to == nil || k < string(to)) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				want = append(want, k+"="+model[k])
			}
			if got := collect(s.Range(from, to)); got != strings.Join(want, " ") {
				t.Fatalf("op %d: Range(%q, %q) = %q, want %q", i, from, to, got, strings.Join(want, " "))
			}
		}
		if s.ApproximateCount() != int64(len(model)) {
			t.Fatalf("op %d: ApproximateCount() = %d, want %d", i, s.ApproximateCount(), len(model))
		}
	}
}

func cmpOr(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "<absent>"
}

func TestAllocs(t *testing.T) {
	s := state.NewInMemoryKeyValueStore("kv")
	for i := range 1000 {
		mustPut(t, s, fmt.Sprintf("key-%04d", i), fmt.Sprintf("value-%04d", i))
	}
	key, value, shorter := []byte("key-0500"), []byte("VALUE-0500"), []byte("v")
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Get", func() { _, _, _ = s.Get(key) }},
		{"Get absent", func() { _, _, _ = s.Get([]byte("absent")) }},
		{"Put existing key", func() { _ = s.Put(key, value) }},
		{"Put existing key, shorter value", func() { _ = s.Put(key, shorter) }},
		{"Delete absent", func() { _ = s.Delete([]byte("absent")) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
	v, _, _ := s.Get(key)
	if !bytes.Equal(v, shorter) {
		t.Errorf("Get after the runs = %q, want %q", v, shorter)
	}
}

func BenchmarkGet(b *testing.B) {
	s := state.NewInMemoryKeyValueStore("kv")
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%08d", i)
		_ = s.Put(keys[i], []byte("value"))
	}
	b.ReportAllocs()
	for i := range b.N {
		_, _, _ = s.Get(keys[i&(len(keys)-1)])
	}
}

func BenchmarkPutNew(b *testing.B) {
	s := state.NewInMemoryKeyValueStore("kv")
	var k []byte
	b.ReportAllocs()
	for range b.N {
		k = fmt.Appendf(k[:0], "key-%016x", rand.Uint64())
		_ = s.Put(k, []byte("value"))
	}
}

func BenchmarkRange100(b *testing.B) {
	s := state.NewInMemoryKeyValueStore("kv")
	for i := range 1 << 16 {
		_ = s.Put(fmt.Appendf(nil, "key-%08d", i), []byte("value"))
	}
	b.ReportAllocs()
	for i := range b.N {
		from := fmt.Appendf(nil, "key-%08d", (i*7919)&(1<<16-1))
		n := 0
		for range s.Range(from, nil) {
			n++
			if n == 100 {
				break
			}
		}
	}
}
