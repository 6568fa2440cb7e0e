package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// openMem opens a DB in dir of fs (a new MemFS if fs is nil) and closes it
// at the end of the test unless the test closed it.
func openMem(t testing.TB, fs vfs.FS, dir string, o state.PebbleOptions) *state.PebbleDB {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	o.FS = fs
	db, err := state.OpenPebble(dir, o)
	if err != nil {
		t.Fatalf("OpenPebble(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// pebbleStore returns the store named name of a new in-memory DB.
func pebbleStore(t testing.TB, name string) state.KeyValueStore {
	t.Helper()
	return openMem(t, nil, "db", state.PebbleOptions{}).KeyValueStore(name)
}

// The tests below check the Pebble store against the behaviour the
// in-memory store's tests check (memory_test.go), except for writes during
// an iteration, where the Pebble store reads a snapshot.

func TestPebblePutGetDelete(t *testing.T) {
	s := pebbleStore(t, "kv")
	if s.Name() != "kv" {
		t.Errorf("Name() = %q", s.Name())
	}
	wantGet(t, s, "a", "<absent>")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	wantGet(t, s, "a", "1")
	wantGet(t, s, "b", "2")

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
	wantGet(t, s, "b", "2")
}

func TestPebbleEmptyValuesAndKeys(t *testing.T) {
	s := pebbleStore(t, "kv")
	if err := s.Put([]byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	v, ok, err := s.Get([]byte("k"))
	if err != nil || !ok || v == nil || len(v) != 0 {
		t.Errorf("Get after Put(k, nil) = %#v, %v, %v; want empty non-nil value, true, nil", v, ok, err)
	}
	mustPut(t, s, "", "empty")
	wantGet(t, s, "", "empty")
	if got := collect(s.Range(nil, nil)); got != "=empty k=" {
		t.Errorf("Range(nil, nil) = %q", got)
	}
}

func TestPebblePutCopies(t *testing.T) {
	s := pebbleStore(t, "kv")
	k, v := []byte("key"), []byte("value")
	if err := s.Put(k, v); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X'
	wantGet(t, s, "key", "value")
	wantGet(t, s, "Xey", "<absent>")

	got, _, _ := s.Get([]byte("key"))
	if err := s.Put([]byte("key"), got[1:]); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, "key", "alue")

	got, _, _ = s.Get([]byte("key"))
	_ = append(got, "zzz"...)
	mustPut(t, s, "key", "ab")
	wantGet(t, s, "key", "ab")
}

// TestPebbleGetLifetime checks that a value returned by Get stays valid
// until the next write, however many Gets come in between, and with the
// memtable flushed (so that Pebble's value lives in a cache block).
func TestPebbleGetLifetime(t *testing.T) {
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprint("flush=", flush), func(t *testing.T) {
			s := pebbleStore(t, "kv")
			for i := range 1000 {
				mustPut(t, s, fmt.Sprintf("k%04d", i), fmt.Sprintf("value-%04d-%s", i, strings.Repeat("x", i%50)))
			}
			if flush {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			held := make([][]byte, 1000)
			for round := range 3 { // enough values to outgrow the buffer several times
				for i := range held {
					v, ok, err := s.Get(fmt.Appendf(nil, "k%04d", i))
					if err != nil || !ok {
						t.Fatalf("Get(k%04d) = %v, %v", i, ok, err)
					}
					if round == 0 {
						held[i] = v
					}
				}
			}
			for i, v := range held {
				if want := fmt.Sprintf("value-%04d-%s", i, strings.Repeat("x", i%50)); string(v) != want {
					t.Fatalf("value %d returned by Get = %q after more Gets, want %q", i, v, want)
				}
			}
		})
	}
}

func TestPebbleOrder(t *testing.T) {
	s := pebbleStore(t, "kv")
	keys := []string{"b", "a", "ab", "\xff", "\x00", "", "aa", "a\x00", "B", "ä", "\xff\xff", "ba"}
	for _, k := range keys {
		mustPut(t, s, k, "")
	}
	var got []string
	for k := range s.Range(nil, nil) {
		got = append(got, string(k))
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Range(nil, nil) keys = %q, want %q", got, want)
	}
}

func TestPebbleRange(t *testing.T) {
	s := pebbleStore(t, "kv")
	for _, k := range []string{"a", "b", "ba", "c", "d"} {
		mustPut(t, s, k, strings.ToUpper(k))
	}
	b := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		from, to []byte
		want     string
	}{
		{nil, nil, "a=A b=B ba=BA c=C d=D"},
		{b("b"), b("d"), "b=B ba=BA c=C"},
		{b("b"), nil, "b=B ba=BA c=C d=D"},
		{nil, b("c"), "a=A b=B ba=BA"},
		{b("bb"), b("cc"), "c=C"},
		{b(""), nil, "a=A b=B ba=BA c=C d=D"},
		{nil, b(""), ""},
		{b("b"), b("b"), ""},
		{b("c"), b("b"), ""},
		{b("e"), nil, ""},
		{nil, b("a"), ""},
		{b("\x00"), b("\xff"), "a=A b=B ba=BA c=C d=D"},
	} {
		if got := collect(s.Range(tc.from, tc.to)); got != tc.want {
			t.Errorf("Range(%q, %q) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}

	from, to := b("b"), b("c")
	seq := s.Range(from, to)
	from[0], to[0] = 'z', 'z'
	if got := collect(seq); got != "b=B ba=BA" {
		t.Errorf("Range after changing the bounds = %q", got)
	}
	if got := collect(seq); got != "b=B ba=BA" {
		t.Errorf("second run of the same Range = %q", got)
	}

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

func TestPebblePrefix(t *testing.T) {
	s := pebbleStore(t, "kv")
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

// TestPebbleWritesDuringIteration checks that an iteration reads the store
// as it was when the iteration started, whatever the loop body writes, and
// that the writes are applied all the same.
func TestPebbleWritesDuringIteration(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string)
		// after is the store's contents once the iteration is over.
		after string
	}{
		{"delete current", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			mustDelete(t, s, k)
		}, ""},
		{"delete next", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			if k == "b" {
				mustDelete(t, s, "c")
			}
		}, "a=1 b=2 d=4 e=5"},
		{"delete all ahead", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			if k == "a" {
				for _, k := range []string{"b", "c", "d", "e"} {
					mustDelete(t, s, k)
				}
			}
		}, "a=1"},
		{"delete range ahead", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			if k == "a" {
				if err := s.(state.RangeDeleter).DeleteRange([]byte("b"), []byte("d")); err != nil {
					t.Fatal(err)
				}
			}
		}, "a=1 d=4 e=5"},
		{"overwrite ahead", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			if k == "a" {
				mustPut(t, s, "d", "new")
			}
		}, "a=1 b=2 c=3 d=new e=5"},
		{"overwrite current", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			mustPut(t, s, k, "x"+k)
		}, "a=xa b=xb c=xc d=xd e=xe"},
		{"insert ahead", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			mustPut(t, s, k+"x", "new") // would make the loop endless if yielded
			wantGet(t, s, k+"x", "new") // the loop body sees its own writes
		}, "a=1 ax=new b=2 bx=new c=3 cx=new d=4 dx=new e=5 ex=new"},
		{"delete everything and refill", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			if k == "a" {
				for _, k := range []string{"a", "b", "c", "d", "e"} {
					mustDelete(t, s, k)
					mustPut(t, s, k, "new")
				}
			}
		}, "a=new b=new c=new d=new e=new"},
		{"batch", func(t *testing.T, db *state.PebbleDB, s state.KeyValueStore, k string) {
			if k == "a" {
				b := db.NewBatch()
				defer b.Close()
				if err := b.Delete(s, []byte("c")); err != nil {
					t.Fatal(err)
				}
				if err := b.Put(s, []byte("bb"), []byte("new")); err != nil {
					t.Fatal(err)
				}
				if err := b.Commit(false); err != nil {
					t.Fatal(err)
				}
			}
		}, "a=1 b=2 bb=new d=4 e=5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openMem(t, nil, "db", state.PebbleOptions{})
			s := db.KeyValueStore("kv")
			for i, k := range []string{"a", "b", "c", "d", "e"} {
				mustPut(t, s, k, fmt.Sprint(i+1))
			}
			var got []string
			for k, v := range s.Range(nil, nil) {
				got = append(got, string(k)+"="+string(v))
				tc.body(t, db, s, string(k))
			}
			if g := strings.Join(got, " "); g != "a=1 b=2 c=3 d=4 e=5" {
				t.Errorf("iteration yielded %q, want the store as it started", g)
			}
			if g := collect(s.Range(nil, nil)); g != tc.after {
				t.Errorf("after the iteration the store holds %q, want %q", g, tc.after)
			}
		})
	}
}

func TestPebbleClosed(t *testing.T) {
	db := openMem(t, nil, "db", state.PebbleOptions{})
	s := db.KeyValueStore("kv")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	seq := s.Range(nil, nil)
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
		"Put":         s.Put([]byte("a"), []byte("1")),
		"Delete":      s.Delete([]byte("a")),
		"DeleteRange": s.(state.RangeDeleter).DeleteRange(nil, nil),
		"Flush":       s.Flush(),
		"Close":       s.Close(),
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
	b := db.NewBatch()
	defer b.Close()
	if err := b.Put(s, []byte("a"), nil); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Batch.Put to a closed store: %v, want ErrClosed", err)
	}

	// Closing a store closes neither the DB nor other views of the store.
	s2 := db.KeyValueStore("kv")
	wantGet(t, s2, "a", "1")
	mustPut(t, s2, "c", "3")

	// Closing the DB closes its stores.
	if err := db.Close(); err != nil {
		t.Fatalf("DB Close: %v", err)
	}
	if _, _, err := s2.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get after DB Close: %v, want ErrClosed", err)
	}
	_, _, metaErr := db.GetMeta([]byte("m"))
	for name, err := range map[string]error{
		"Put":          s2.Put([]byte("a"), []byte("1")),
		"Delete":       s2.Delete([]byte("a")),
		"Flush":        s2.Flush(),
		"PutMeta":      db.PutMeta([]byte("m"), nil),
		"GetMeta":      metaErr,
		"DeleteMeta":   db.DeleteMeta([]byte("m")),
		"DB Flush":     db.Flush(),
		"DB Close":     db.Close(),
		"Batch Commit": b.Commit(false),
	} {
		if !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after DB Close: %v, want ErrClosed", name, err)
		}
	}
	if got := collect(s2.Range(nil, nil)); got != "" {
		t.Errorf("iteration after DB Close yielded %q", got)
	}
	if err := s2.Close(); err != nil {
		t.Errorf("Close of a store after DB Close: %v", err)
	}
}

func TestPebbleCloseDuringIteration(t *testing.T) {
	s := pebbleStore(t, "kv")
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

// TestPebbleModel checks the store against a map under random operations
// (see TestModel), with range deletions, and with small memtables and
// flushes (which without a WAL flush the memtable) so that reads merge
// memtables with sstables.
func TestPebbleModel(t *testing.T) {
	for _, disableWAL := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableWAL=", disableWAL), func(t *testing.T) {
			testPebbleModel(t, state.PebbleOptions{DisableWAL: disableWAL, MemTableSize: 64 << 10})
		})
	}
}

func testPebbleModel(t *testing.T, o state.PebbleOptions) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = "ab\x00\xff"[rng.IntN(4)]
		}
		return b
	}
	db := openMem(t, nil, "db", o)
	s := db.KeyValueStore("kv")
	other := db.KeyValueStore("kv\x00") // a neighbour whose entries must stay out
	mustPut(t, other, "", "x")
	mustPut(t, other, "\xff\xff\xff\xff", "x")
	model := map[string]string{}
	inRange := func(k string, from, to []byte) bool {
		return (from == nil || k >= string(from)) && (to == nil || k < string(to))
	}
	for i := range 10000 {
		switch op := rng.IntN(100); {
		case op < 50:
			k, v := key(), fmt.Sprint(rng.IntN(1000))
			if err := s.Put(k, []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[string(k)] = v
		case op < 78:
			k := key()
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			delete(model, string(k))
		case op < 80:
			from, to := key(), key()
			if rng.IntN(4) == 0 {
				from = nil
			}
			if rng.IntN(4) == 0 {
				to = nil
			}
			if err := s.(state.RangeDeleter).DeleteRange(from, to); err != nil {
				t.Fatal(err)
			}
			for k := range model {
				if inRange(k, from, to) {
					delete(model, k)
				}
			}
		case op < 81:
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		case op < 90:
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
				if inRange(k, from, to) {
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
	if got := collect(other.Range(nil, nil)); got != "=x \xff\xff\xff\xff=x" {
		t.Errorf("the neighbouring store holds %q", got)
	}
}

// TestPebbleStoresIsolated checks that stores of one DB, and its meta
// records, never see each other's keys, including stores whose names are
// prefixes of each other.
func TestPebbleStoresIsolated(t *testing.T) {
	db := openMem(t, nil, "db", state.PebbleOptions{})
	names := []string{"", "a", "ab", "a\x00", "b", "\x00", "\xff", strings.Repeat("n", 200), strings.Repeat("n", 201)}
	keys := []string{"", "\x00", "a", "b", "ab", "\xff", "\xff\xff", "\x01\x01a"}
	stores := make([]state.KeyValueStore, len(names))
	for i, name := range names {
		stores[i] = db.KeyValueStore(name)
		for _, k := range keys {
			mustPut(t, stores[i], k, fmt.Sprintf("%d", i))
		}
	}
	for _, k := range keys {
		if err := db.PutMeta([]byte(k), []byte("meta")); err != nil {
			t.Fatal(err)
		}
	}
	wantAll := func(i int) string {
		sorted := slices.Clone(keys)
		slices.Sort(sorted)
		var out []string
		for _, k := range sorted {
			out = append(out, fmt.Sprintf("%s=%d", k, i))
		}
		return strings.Join(out, " ")
	}
	check := func() {
		t.Helper()
		for i, s := range stores {
			if i == 2 {
				if got := collect(s.Range(nil, nil)); got != "" {
					t.Errorf("store %q after deleting its range holds %q", names[i], got)
				}
				continue
			}
			if got := collect(s.Range(nil, nil)); got != wantAll(i) {
				t.Errorf("store %q holds %q, want %q", names[i], got, wantAll(i))
			}
			if got := collect(s.Prefix([]byte("a"))); got != fmt.Sprintf("a=%d ab=%d", i, i) {
				t.Errorf("store %q: Prefix(a) = %q", names[i], got)
			}
			for _, k := range keys {
				wantGet(t, s, k, fmt.Sprint(i))
			}
			if n := s.ApproximateCount(); n != int64(len(keys)) {
				t.Errorf("store %q: ApproximateCount() = %d, want %d", names[i], n, len(keys))
			}
		}
		for _, k := range keys {
			v, ok, err := db.GetMeta([]byte(k))
			if err != nil || !ok || string(v) != "meta" {
				t.Errorf("GetMeta(%q) = %q, %v, %v", k, v, ok, err)
			}
		}
	}
	// Deleting everything of "ab" leaves "a" and every other store alone.
	if err := stores[2].(state.RangeDeleter).DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	check()
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	check()
}

func TestPebbleBatch(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs, "db", state.PebbleOptions{})
	a, b := db.KeyValueStore("a"), db.KeyValueStore("b")
	mustPut(t, a, "old", "1")
	mustPut(t, a, "gone", "1")

	// A batch not committed leaves nothing.
	batch := db.NewBatch()
	for _, err := range []error{
		batch.Put(a, []byte("k"), []byte("a1")),
		batch.Put(b, []byte("k"), []byte("b1")),
		batch.Delete(a, []byte("old")),
		batch.PutMeta([]byte("offsets"), []byte("42")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := batch.Len(); n != 4 {
		t.Errorf("Len() = %d, want 4", n)
	}
	wantGet(t, a, "k", "<absent>")
	wantGet(t, a, "old", "1")
	if err := batch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := batch.Commit(true); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
	wantGet(t, a, "k", "<absent>")
	wantGet(t, b, "k", "<absent>")
	wantGet(t, a, "old", "1")
	if _, ok, _ := db.GetMeta([]byte("offsets")); ok {
		t.Error("meta of a closed batch is visible")
	}

	// A committed batch is visible as a whole, meta included, and the batch
	// can be used again.
	batch = db.NewBatch()
	defer batch.Close()
	for _, err := range []error{
		batch.Put(a, []byte("k"), []byte("a1")),
		batch.Put(b, []byte("k"), []byte("b1")),
		batch.Put(b, []byte("empty"), nil),
		batch.Delete(a, []byte("old")),
		batch.PutMeta([]byte("offsets"), []byte("42")),
		batch.PutMeta([]byte("gone"), []byte("x")),
		batch.DeleteMeta([]byte("gone")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Commit(true); err != nil {
		t.Fatal(err)
	}
	if n := batch.Len(); n != 0 {
		t.Errorf("Len() after Commit = %d, want 0", n)
	}
	wantGet(t, a, "k", "a1")
	wantGet(t, b, "k", "b1")
	wantGet(t, b, "empty", "")
	wantGet(t, a, "old", "<absent>")
	wantGet(t, a, "gone", "1")
	wantMeta(t, db, "offsets", "42")
	wantMeta(t, db, "gone", "<absent>")

	if err := batch.Put(a, []byte("k"), []byte("a2")); err != nil {
		t.Fatal(err)
	}
	if err := batch.Delete(a, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	if err := batch.PutMeta([]byte("offsets"), []byte("43")); err != nil {
		t.Fatal(err)
	}
	if err := batch.Commit(false); err != nil {
		t.Fatal(err)
	}
	wantGet(t, a, "k", "a2")
	wantGet(t, a, "gone", "<absent>")
	wantMeta(t, db, "offsets", "43")
	if err := db.DeleteMeta([]byte("offsets")); err != nil {
		t.Fatal(err)
	}
	wantMeta(t, db, "offsets", "<absent>")

	// A store of another DB, or not a Pebble store at all, is refused.
	other := openMem(t, fs, "other", state.PebbleOptions{}).KeyValueStore("a")
	for _, s := range []state.KeyValueStore{other, state.NewInMemoryKeyValueStore("a"), nil} {
		if err := batch.Put(s, []byte("k"), nil); err == nil {
			t.Errorf("Batch.Put to %T succeeded", s)
		}
		if err := batch.Delete(s, []byte("k")); err == nil {
			t.Errorf("Batch.Delete to %T succeeded", s)
		}
	}
	if n := batch.Len(); n != 0 {
		t.Errorf("Len() after refused writes = %d", n)
	}
}

func wantMeta(t testing.TB, db *state.PebbleDB, k, want string) {
	t.Helper()
	v, ok, err := db.GetMeta([]byte(k))
	if err != nil {
		t.Fatalf("GetMeta(%q): %v", k, err)
	}
	got := string(v)
	if !ok {
		got = "<absent>"
	}
	if got != want {
		t.Errorf("GetMeta(%q) = %q, want %q", k, got, want)
	}
}

// TestPebbleReopen checks that a DB closed and opened again in the same
// file system holds what it held, with and without the WAL.
func TestPebbleReopen(t *testing.T) {
	for _, disableWAL := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableWAL=", disableWAL), func(t *testing.T) {
			fs := vfs.NewMem()
			o := state.PebbleOptions{DisableWAL: disableWAL}
			db := openMem(t, fs, "db", o)
			a, b := db.KeyValueStore("a"), db.KeyValueStore("b")
			for i := range 100 {
				mustPut(t, a, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
			}
			mustDelete(t, a, "k050")
			if err := db.Flush(); err != nil { // some in sstables, some not
				t.Fatal(err)
			}
			batch := db.NewBatch()
			if err := batch.Put(b, []byte("x"), []byte("y")); err != nil {
				t.Fatal(err)
			}
			if err := batch.PutMeta([]byte("offsets"), []byte("7")); err != nil {
				t.Fatal(err)
			}
			if err := batch.Commit(false); err != nil {
				t.Fatal(err)
			}
			if err := batch.Close(); err != nil {
				t.Fatal(err)
			}
			mustPut(t, a, "k100", "100")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db = openMem(t, fs, "db", o)
			a, b = db.KeyValueStore("a"), db.KeyValueStore("b")
			if n := a.ApproximateCount(); n != 100 {
				t.Errorf("store a holds %d entries after reopening, want 100", n)
			}
			wantGet(t, a, "k000", "0")
			wantGet(t, a, "k050", "<absent>")
			wantGet(t, a, "k100", "100")
			wantGet(t, b, "x", "y")
			wantMeta(t, db, "offsets", "7")
		})
	}
}

// TestPebbleCrash checks what a crash leaves, on a file system cloned as a
// crash would leave it: every batch committed with sync is there, and
// whatever else survives is a prefix of the batches, each whole, so the
// offsets in the meta record always match the stores.
func TestPebbleCrash(t *testing.T) {
	for _, disableWAL := range []bool{false, true} {
		for seed := range uint64(8) {
			t.Run(fmt.Sprintf("DisableWAL=%v/seed=%d", disableWAL, seed), func(t *testing.T) {
				testPebbleCrash(t, disableWAL, seed)
			})
		}
	}
}

func testPebbleCrash(t *testing.T, disableWAL bool, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	fs := vfs.NewCrashableMem()
	// Small memtables, so that some batches are flushed to sstables on
	// their own.
	o := state.PebbleOptions{DisableWAL: disableWAL, MemTableSize: 128 << 10}
	db := openMem(t, fs, "db", o)
	stores := []state.KeyValueStore{db.KeyValueStore("counts"), db.KeyValueStore("index")}
	batch := db.NewBatch()
	defer batch.Close()
	synced := 0
	const batches = 200
	// Values large enough that the batches after the last sync fill WAL
	// blocks (32 KiB), which Pebble then writes to the file unsynced, and
	// memtables, which it flushes: the crash keeps part of them.
	value := bytes.Repeat([]byte("v"), 2000)
	for n := 1; n <= batches; n++ {
		// Batch n writes key n and the offset n into both stores, deletes
		// key n-10 from the first and records n as the offset.
		for _, s := range stores {
			if err := batch.Put(s, fmt.Appendf(nil, "k%04d", n), value); err != nil {
				t.Fatal(err)
			}
			if err := batch.Put(s, []byte("offset"), fmt.Append(nil, n)); err != nil {
				t.Fatal(err)
			}
		}
		if n > 10 {
			if err := batch.Delete(stores[0], fmt.Appendf(nil, "k%04d", n-10)); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.PutMeta([]byte("offset"), fmt.Append(nil, n)); err != nil {
			t.Fatal(err)
		}
		sync := rng.IntN(40) == 0
		if err := batch.Commit(sync); err != nil {
			t.Fatal(err)
		}
		if sync {
			synced = n
		}
	}

	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, 1))})
	db = openMem(t, crashed, "db", o)
	stores = []state.KeyValueStore{db.KeyValueStore("counts"), db.KeyValueStore("index")}

	offset := 0
	if v, ok, err := db.GetMeta([]byte("offset")); err != nil {
		t.Fatal(err)
	} else if ok {
		if _, err := fmt.Sscan(string(v), &offset); err != nil {
			t.Fatal(err)
		}
	}
	if offset < synced {
		t.Fatalf("meta offset after the crash = %d, want at least %d, the last batch committed with sync", offset, synced)
	}
	t.Logf("last synced batch %d, recovered through batch %d", synced, offset)
	for i, s := range stores {
		var got []string
		for k := range s.Range(nil, nil) {
			got = append(got, string(k))
		}
		var want []string
		for n := 1; n <= offset; n++ {
			if i == 0 && n <= offset-10 {
				continue
			}
			want = append(want, fmt.Sprintf("k%04d", n))
		}
		if offset > 0 {
			want = append(want, "offset")
			wantGet(t, s, "offset", fmt.Sprint(offset))
		}
		if !slices.Equal(got, want) {
			t.Errorf("store %q after the crash holds %q, want %q (the batches through %d)", s.Name(), got, want, offset)
		}
	}
}

// TestPebbleIterationError checks that an I/O error during an iteration
// ends it and is reported by the store's IterErr and by a typed view's Err.
func TestPebbleIterationError(t *testing.T) {
	mem := vfs.NewMem()
	db := openMem(t, mem, "db", state.PebbleOptions{})
	s := db.KeyValueStore("kv")
	for i := range 1000 {
		mustPut(t, s, fmt.Sprintf("k%04d", i), "v")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	inject := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileReadAt && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})}
	db = openMem(t, errorfs.Wrap(mem, inject), "db", state.PebbleOptions{})
	s = db.KeyValueStore("kv")
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	inject.On()
	defer inject.Off() // let Close read what it needs
	n := 0
	for range s.Range(nil, nil) {
		n++
	}
	err := s.(state.IterErrReporter).IterErr()
	if !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("IterErr() after a failed iteration over %d entries = %v, want the injected error", n, err)
	}
	kv := state.NewKV(s, serde.String, serde.String)
	for range kv.All() {
	}
	if err := kv.Err(); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("KV.Err() after a failed iteration = %v, want the injected error", err)
	}
	if _, _, err := s.Get([]byte("k0001")); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("Get with failing reads: %v, want the injected error", err)
	}

	inject.Off()
	if got := collect(s.Prefix([]byte("k000"))); got != "k0000=v k0001=v k0002=v k0003=v k0004=v k0005=v k0006=v k0007=v k0008=v k0009=v" {
		t.Errorf("Prefix(k000) once reads work again = %q", got)
	}
	if err := s.(state.IterErrReporter).IterErr(); err != nil {
		t.Errorf("IterErr() after a good iteration = %v", err)
	}
}

// TestPebbleApproximateCountLarge checks the estimate of a store too large
// to count, once flushed to sstables (which Flush does without a WAL):
// within 10%.
func TestPebbleApproximateCountLarge(t *testing.T) {
	db := openMem(t, nil, "db", state.PebbleOptions{DisableWAL: true})
	small, large := db.KeyValueStore("small"), db.KeyValueStore("large")
	batch := db.NewBatch()
	defer batch.Close()
	const n = 50000
	for i := range n {
		if err := batch.Put(large, fmt.Appendf(nil, "key-%08d", i), []byte("value")); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			if err := batch.Put(small, fmt.Appendf(nil, "key-%08d", i), []byte("value")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Commit(false); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	l, sm := large.ApproximateCount(), small.ApproximateCount()
	if l < n*9/10 || l > n*11/10 || sm < n/4*9/10 || sm > n/4*11/10 {
		t.Errorf("ApproximateCount() = %d and %d, want within 10%% of %d and %d", l, sm, n, n/4)
	}
}

// TestPebbleSharedCache opens two DBs with one block cache.
func TestPebbleSharedCache(t *testing.T) {
	cache := pebble.NewCache(1 << 20)
	fs := vfs.NewMem()
	var stores []state.KeyValueStore
	for _, dir := range []string{"task-0", "task-1"} {
		db := openMem(t, fs, dir, state.PebbleOptions{Cache: cache})
		s := db.KeyValueStore("kv")
		mustPut(t, s, "k", dir)
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	cache.Unref() // the DBs hold their own references
	wantGet(t, stores[0], "k", "task-0")
	wantGet(t, stores[1], "k", "task-1")
}

func TestPebbleAllocs(t *testing.T) {
	s := pebbleStore(t, "kv")
	for i := range 1000 {
		mustPut(t, s, fmt.Sprintf("key-%04d", i), fmt.Sprintf("value-%04d", i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	key, absent := []byte("key-0500"), []byte("absent")
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Get", func() { _, _, _ = s.Get(key) }},
		{"Get absent", func() { _, _, _ = s.Get(absent) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n > allocSlack {
			t.Errorf("%s: %v allocations per run, want at most %d", tc.name, n, allocSlack)
		}
	}
}
