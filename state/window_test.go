package state_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// segmentedBase is a kind of base store for window and session stores.
type segmentedBase struct {
	name string
	// open returns an empty base store named name, and a reopen function
	// that returns a base holding the same entries: for the in-memory
	// store the same store (the store built over it is abandoned), for
	// Pebble the store of the same name after old (the store built over
	// it) and the DB are closed and the DB is opened again.
	open func(t *testing.T, name string) (base state.KeyValueStore, reopen func(old state.Store) state.KeyValueStore)
}

var segmentedBases = []segmentedBase{
	{"memory", func(t *testing.T, name string) (state.KeyValueStore, func(state.Store) state.KeyValueStore) {
		base := state.NewInMemoryKeyValueStore(name)
		return base, func(state.Store) state.KeyValueStore { return base }
	}},
	{"pebble", func(t *testing.T, name string) (state.KeyValueStore, func(state.Store) state.KeyValueStore) {
		fs := vfs.NewMem()
		db := openMem(t, fs, "db", state.PebbleOptions{})
		return db.KeyValueStore(name), func(old state.Store) state.KeyValueStore {
			t.Helper()
			if err := old.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("DB Close: %v", err)
			}
			db = openMem(t, fs, "db", state.PebbleOptions{})
			return db.KeyValueStore(name)
		}
	}},
}

// forEachBase runs f as a subtest for each kind of base store.
func forEachBase(t *testing.T, f func(t *testing.T, b segmentedBase)) {
	for _, b := range segmentedBases {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func newWindowStore(t testing.TB, base state.KeyValueStore, o state.WindowStoreOptions) *state.WindowStore {
	t.Helper()
	s, err := state.NewWindowStore(base, o)
	if err != nil {
		t.Fatalf("NewWindowStore: %v", err)
	}
	return s
}

func mustPutWindow(t testing.TB, s *state.WindowStore, key string, start int64, value string) {
	t.Helper()
	if err := s.Put([]byte(key), start, []byte(value)); err != nil {
		t.Fatalf("Put(%q, %d, %q): %v", key, start, value, err)
	}
}

// fetchKey renders FetchKey(key, from, to) as "start=value ...".
func fetchKey(t testing.TB, s *state.WindowStore, key string, from, to int64) string {
	t.Helper()
	var b strings.Builder
	for start, v := range s.FetchKey([]byte(key), from, to) {
		fmt.Fprintf(&b, "%d=%s ", start, v)
	}
	if err := s.IterErr(); err != nil {
		t.Fatalf("FetchKey(%q, %d, %d): %v", key, from, to, err)
	}
	return strings.TrimSpace(b.String())
}

// windowEntries renders an iteration of a window store as
// "key@start#seq=value ...", keys quoted.
func windowEntries(t testing.TB, s *state.WindowStore, seq iter.Seq2[state.WindowEntryKey, []byte]) string {
	t.Helper()
	var b strings.Builder
	for k, v := range seq {
		fmt.Fprintf(&b, "%q@%d#%d=%s ", k.Key, k.Start, k.Seq, v)
	}
	if err := s.IterErr(); err != nil {
		t.Fatalf("iteration: %v", err)
	}
	return strings.TrimSpace(b.String())
}

// baseKeys renders the keys of a base store in hex, one per line.
func baseKeys(t testing.TB, base state.KeyValueStore) string {
	t.Helper()
	var b strings.Builder
	for k := range base.Range(nil, nil) {
		fmt.Fprintf(&b, "%x\n", k)
	}
	return b.String()
}

func wantFetch(t testing.TB, s *state.WindowStore, key string, start int64, want string) {
	t.Helper()
	v, ok, err := s.Fetch([]byte(key), start)
	got := string(v)
	if !ok {
		got = "<absent>"
	}
	if err != nil || got != want {
		t.Errorf("Fetch(%q, %d) = %q, %v; want %q", key, start, got, err, want)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWindowKeyEncoding(t *testing.T) {
	for _, tc := range []struct {
		key   string
		start int64
		seq   int32
		want  string // hex: key, start, seq
	}{
		{"k", 1, 0, "6b 0000000000000001 00000000"},
		{"", 0, 0, "0000000000000000 00000000"},
		{"ab", 1700000000000, 7, "6162 0000018bcfe56800 00000007"},
		{"\x00\xff", 0x0102030405060708, math.MaxInt32, "00ff 0102030405060708 7fffffff"},
		{"k", math.MaxInt64, -1, "6b 7fffffffffffffff ffffffff"},
	} {
		want := unhex(t, tc.want)
		got := state.AppendWindowKey([]byte("prefix"), []byte(tc.key), tc.start, tc.seq)
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendWindowKey(%q, %d, %d) = %x, want prefix ‖ %x", tc.key, tc.start, tc.seq, got, want)
		}
		key, start, seq, err := state.SplitWindowKey(want)
		if err != nil || string(key) != tc.key || start != tc.start || seq != tc.seq {
			t.Errorf("SplitWindowKey(%x) = %q, %d, %d, %v; want %q, %d, %d", want, key, start, seq, err, tc.key, tc.start, tc.seq)
		}
		if cap(key) != len(key) {
			t.Errorf("SplitWindowKey(%x): key capacity %d, want %d", want, cap(key), len(key))
		}
	}
	for _, b := range [][]byte{nil, {}, make([]byte, 11)} {
		if _, _, _, err := state.SplitWindowKey(b); err == nil {
			t.Errorf("SplitWindowKey(%x): no error", b)
		}
	}
}

func FuzzSplitWindowKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(unhex(f, "6b 0000000000000001 00000000"))
	f.Add(unhex(f, "ffff 8000000000000000 ffffffff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, start, seq, err := state.SplitWindowKey(b)
		if len(b) < 12 {
			if err == nil {
				t.Fatalf("SplitWindowKey(%x): no error", b)
			}
			return
		}
		if err != nil {
			t.Fatalf("SplitWindowKey(%x): %v", b, err)
		}
		if got := state.AppendWindowKey(nil, key, start, seq); !bytes.Equal(got, b) {
			t.Fatalf("AppendWindowKey(SplitWindowKey(%x)) = %x", b, got)
		}
	})
}

func TestWindowStoreOptions(t *testing.T) {
	for _, tc := range []struct {
		o    state.WindowStoreOptions
		want string // in the error; "" for none
	}{
		{state.WindowStoreOptions{}, "Retention"},
		{state.WindowStoreOptions{Retention: time.Microsecond}, "Retention"},
		{state.WindowStoreOptions{Retention: -time.Hour}, "Retention"},
		{state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: -time.Second}, "SegmentInterval"},
		{state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: time.Microsecond}, "SegmentInterval"},
		{state.WindowStoreOptions{Retention: time.Millisecond}, ""},
		{state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: time.Millisecond, RetainDuplicates: true}, ""},
	} {
		s, err := state.NewWindowStore(state.NewInMemoryKeyValueStore("win"), tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("NewWindowStore(%+v): %v", tc.o, err)
		case tc.want == "":
			if s.Name() != "win" || s.ObservedStreamTime() != -1 {
				t.Errorf("NewWindowStore(%+v): Name() = %q, ObservedStreamTime() = %d", tc.o, s.Name(), s.ObservedStreamTime())
			}
		case err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"win"`):
			t.Errorf("NewWindowStore(%+v) error = %v, want one naming %q and the store", tc.o, err, tc.want)
		}
	}
}

// TestWindowStoreLayout checks the keys written to the base store, segment
// ids included, and so the default segment interval.
func TestWindowStoreLayout(t *testing.T) {
	for _, tc := range []struct {
		o     state.WindowStoreOptions
		start int64
		want  string // hex: segment, key, start, seq
	}{
		// Default interval: max(retention/2, 60s).
		{state.WindowStoreOptions{Retention: 10 * time.Minute}, 700000, // interval 300000
			"0000000000000002 6b 00000000000aae60 00000000"},
		{state.WindowStoreOptions{Retention: time.Minute}, 130000, // interval 60000
			"0000000000000002 6b 000000000001fbd0 00000000"},
		{state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond}, 130000,
			"0000000000000514 6b 000000000001fbd0 00000000"},
		{state.WindowStoreOptions{Retention: time.Hour, RetainDuplicates: true}, 130000,
			"0000000000000000 6b 000000000001fbd0 00000001"},
	} {
		forEachBase(t, func(t *testing.T, b segmentedBase) {
			base, _ := b.open(t, "win")
			s := newWindowStore(t, base, tc.o)
			mustPutWindow(t, s, "k", tc.start, "v")
			if got, want := baseKeys(t, base), hex.EncodeToString(unhex(t, tc.want))+"\n"; got != want {
				t.Errorf("%+v: base keys\n%s want\n%s", tc.o, got, want)
			}
		})
	}
}

func TestWindowStorePutFetchDelete(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: time.Second})
		wantFetch(t, s, "k", 0, "<absent>")
		mustPutWindow(t, s, "k", 0, "a")
		mustPutWindow(t, s, "k", 1000, "b")
		mustPutWindow(t, s, "j", 1000, "c")
		mustPutWindow(t, s, "k", 2500, "")
		wantFetch(t, s, "k", 0, "a")
		wantFetch(t, s, "k", 1000, "b")
		wantFetch(t, s, "j", 1000, "c")
		wantFetch(t, s, "k", 2500, "")
		wantFetch(t, s, "k", 1, "<absent>")
		wantFetch(t, s, "j", 0, "<absent>")
		wantFetch(t, s, "k", -1, "<absent>")
		if got := s.ObservedStreamTime(); got != 2500 {
			t.Errorf("ObservedStreamTime() = %d, want 2500", got)
		}

		mustPutWindow(t, s, "k", 1000, "B")
		wantFetch(t, s, "k", 1000, "B")
		if got, want := s.LastChangelogKey(), state.AppendWindowKey(nil, []byte("k"), 1000, 0); !bytes.Equal(got, want) {
			t.Errorf("LastChangelogKey() = %x, want %x", got, want)
		}
		if n := base.ApproximateCount(); n != 4 {
			t.Errorf("base ApproximateCount() = %d, want 4", n)
		}

		// A nil value deletes, and is logged as a tombstone.
		if err := s.Put([]byte("k"), 1000, nil); err != nil {
			t.Fatal(err)
		}
		if got, want := s.LastChangelogKey(), state.AppendWindowKey(nil, []byte("k"), 1000, 0); !bytes.Equal(got, want) {
			t.Errorf("LastChangelogKey() after delete = %x, want %x", got, want)
		}
		wantFetch(t, s, "k", 1000, "<absent>")
		if err := s.Put([]byte("never"), 5, nil); err != nil {
			t.Errorf("deleting an absent window: %v", err)
		}
		if n := base.ApproximateCount(); n != 3 {
			t.Errorf("base ApproximateCount() = %d, want 3", n)
		}
		if got, want := windowEntries(t, s, s.All()), `"k"@0#0=a "j"@1000#0=c "k"@2500#0=`; got != want {
			t.Errorf("All() = %s, want %s", got, want)
		}

		err := s.Put([]byte("k"), -1, []byte("v"))
		if err == nil || !strings.Contains(err.Error(), `"win"`) || !strings.Contains(err.Error(), "negative") {
			t.Errorf("Put at -1: %v, want an error naming the store", err)
		}
		if s.LastChangelogKey() != nil {
			t.Errorf("LastChangelogKey() after a failed Put = %x, want nil", s.LastChangelogKey())
		}
	})
}

func TestWindowStoreFetchKey(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		// Segments of 100ms: the starts below span segments 0, 1, 2 and 5.
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond})
		for _, start := range []int64{0, 5, 10, 99, 100, 150, 250, 500} {
			mustPutWindow(t, s, "k", start, fmt.Sprint("k", start))
			mustPutWindow(t, s, "j", start, fmt.Sprint("j", start))
			mustPutWindow(t, s, "l", start, fmt.Sprint("l", start))
		}
		for _, tc := range []struct {
			from, to int64
			want     string
		}{
			{0, 1000, "0=k0 5=k5 10=k10 99=k99 100=k100 150=k150 250=k250 500=k500"},
			{5, 10, "5=k5 10=k10"}, // both bounds inclusive
			{6, 9, ""},
			{10, 10, "10=k10"},
			{99, 100, "99=k99 100=k100"}, // across a segment boundary
			{100, 299, "100=k100 150=k150 250=k250"},
			{251, 499, ""}, // empty segments between
			{-100, 4, "0=k0"},
			{400, math.MaxInt64, "500=k500"},
			{math.MinInt64, math.MaxInt64, "0=k0 5=k5 10=k10 99=k99 100=k100 150=k150 250=k250 500=k500"},
			{10, 5, ""}, // from after to
			{501, 2000, ""},
		} {
			if got := fetchKey(t, s, "k", tc.from, tc.to); got != tc.want {
				t.Errorf("FetchKey(k, %d, %d) = %q, want %q", tc.from, tc.to, got, tc.want)
			}
		}
		if got := fetchKey(t, s, "absent", 0, 1000); got != "" {
			t.Errorf("FetchKey(absent) = %q", got)
		}

		// Stopping early.
		n := 0
		for range s.FetchKey([]byte("k"), 0, 1000) {
			n++
			if n == 3 {
				break
			}
		}
		if n != 3 {
			t.Errorf("stopped after %d windows, want 3", n)
		}
	})
}

func TestWindowStoreFetchAll(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond})
		for _, w := range []struct {
			key   string
			start int64
		}{{"b", 150}, {"a", 150}, {"b", 10}, {"a", 99}, {"c", 100}, {"a", 300}} {
			mustPutWindow(t, s, w.key, w.start, fmt.Sprint(w.key, w.start))
		}
		for _, tc := range []struct {
			from, to int64
			want     string
		}{
			// By segment, then by key and start within a segment.
			{0, 1000, `"a"@99#0=a99 "b"@10#0=b10 "a"@150#0=a150 "b"@150#0=b150 "c"@100#0=c100 "a"@300#0=a300`},
			{10, 150, `"a"@99#0=a99 "b"@10#0=b10 "a"@150#0=a150 "b"@150#0=b150 "c"@100#0=c100`},
			{11, 149, `"a"@99#0=a99 "c"@100#0=c100`},
			{200, 299, ``},
			{300, math.MaxInt64, `"a"@300#0=a300`},
			{151, 100, ``},
		} {
			if got := windowEntries(t, s, s.FetchAll(tc.from, tc.to)); got != tc.want {
				t.Errorf("FetchAll(%d, %d) =\n%s, want\n%s", tc.from, tc.to, got, tc.want)
			}
		}
		want := `"a"@99#0=a99 "b"@10#0=b10 "a"@150#0=a150 "b"@150#0=b150 "c"@100#0=c100 "a"@300#0=a300`
		if got := windowEntries(t, s, s.All()); got != want {
			t.Errorf("All() =\n%s, want\n%s", got, want)
		}
	})
}

func TestWindowStoreDuplicates(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "join")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, RetainDuplicates: true})
		for i, v := range []string{"x", "y", "x"} {
			mustPutWindow(t, s, "k", 10, v)
			want := state.AppendWindowKey(nil, []byte("k"), 10, int32(i+1))
			if got := s.LastChangelogKey(); !bytes.Equal(got, want) {
				t.Errorf("LastChangelogKey() after put %d = %x, want %x", i, got, want)
			}
		}
		mustPutWindow(t, s, "k", 20, "z")
		mustPutWindow(t, s, "j", 10, "w")

		// A nil value does nothing and logs nothing.
		if err := s.Put([]byte("k"), 10, nil); err != nil {
			t.Fatal(err)
		}
		if got := s.LastChangelogKey(); got != nil {
			t.Errorf("LastChangelogKey() after a nil Put = %x, want nil", got)
		}

		if got, want := fetchKey(t, s, "k", 0, 100), "10=x 10=y 10=x 20=z"; got != want {
			t.Errorf("FetchKey = %q, want %q", got, want)
		}
		if got, want := windowEntries(t, s, s.All()), `"j"@10#5=w "k"@10#1=x "k"@10#2=y "k"@10#3=x "k"@20#4=z`; got != want {
			t.Errorf("All() = %s, want %s", got, want)
		}
		wantFetch(t, s, "k", 10, "x") // the first in seq order
		wantFetch(t, s, "k", 11, "<absent>")
	})
}

// TestWindowStoreKeyPrefixes checks that a fetch of a key never returns
// the windows of a key it is a byte prefix of, including keys whose bytes
// after the prefix look like a start and seq.
func TestWindowStoreKeyPrefixes(t *testing.T) {
	keys := []string{
		"",
		"\x00",
		"a",
		"a\x00",
		"a\x00\x00\x00\x00\x00\x00\x00\x05", // "a" ‖ start 5
		"a\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00", // "a" ‖ start 5 ‖ seq 0
		"a\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00",
		"a\xff",
		"ab",
	}
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond})
		for i, k := range keys {
			for _, start := range []int64{5, 7, 105} {
				mustPutWindow(t, s, k, start, fmt.Sprintf("%d@%d", i, start))
			}
		}
		for i, k := range keys {
			want := fmt.Sprintf("5=%d@5 7=%d@7 105=%d@105", i, i, i)
			if got := fetchKey(t, s, k, 0, 1000); got != want {
				t.Errorf("FetchKey(%q) = %q, want %q", k, got, want)
			}
			want = fmt.Sprintf("7=%d@7", i)
			if got := fetchKey(t, s, k, 6, 7); got != want {
				t.Errorf("FetchKey(%q, 6, 7) = %q, want %q", k, got, want)
			}
			wantFetch(t, s, k, 5, fmt.Sprintf("%d@5", i))
			wantFetch(t, s, k, 6, "<absent>")
		}
		n := 0
		for range s.All() {
			n++
		}
		if n != 3*len(keys) {
			t.Errorf("All() yielded %d windows, want %d", n, 3*len(keys))
		}
	})
}

func TestWindowStoreRetention(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		// Windows live 100ms after their start, by segments of 50ms.
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond})
		for _, step := range []struct {
			key      string
			start    int64
			err      error
			observed int64
			windows  string // FetchKey(k, 0, MaxInt64) after the step
			base     int64  // base entries after the step
		}{
			{"k", 0, nil, 0, "0=v", 1},
			{"k", 49, nil, 49, "0=v 49=v", 2},
			{"j", 49, nil, 49, "0=v 49=v", 3},
			{"k", 50, nil, 50, "0=v 49=v 50=v", 4},
			// 0 expires (start <= 100-100), but its segment 0 (0..49)
			// lives on until the stream time reaches 150, when 150-100
			// is past the segment.
			{"k", 100, nil, 100, "49=v 50=v 100=v", 5},
			{"k", 0, state.ErrWindowExpired, 100, "49=v 50=v 100=v", 5},
			{"k", 120, nil, 120, "49=v 50=v 100=v 120=v", 6},
			{"k", 20, state.ErrWindowExpired, 120, "49=v 50=v 100=v 120=v", 6},
			{"k", 21, nil, 120, "21=v 49=v 50=v 100=v 120=v", 7},
			// 150-100 = 50 is in segment 1: segment 0 (0, 21, 49 and j's 49)
			// is dropped from the base.
			{"k", 150, nil, 150, "100=v 120=v 150=v", 4},
			{"k", 50, state.ErrWindowExpired, 150, "100=v 120=v 150=v", 4},
			// A jump drops every segment at once.
			{"k", 1700000000000, nil, 1700000000000, "1700000000000=v", 1},
		} {
			err := s.Put([]byte(step.key), step.start, []byte("v"))
			if !errors.Is(err, step.err) {
				t.Fatalf("Put(%s, %d) = %v, want %v", step.key, step.start, err, step.err)
			}
			if err != nil && s.LastChangelogKey() != nil {
				t.Errorf("Put(%s, %d): LastChangelogKey() = %x after %v, want nil", step.key, step.start, s.LastChangelogKey(), err)
			}
			if got := s.ObservedStreamTime(); got != step.observed {
				t.Errorf("after Put(%s, %d): ObservedStreamTime() = %d, want %d", step.key, step.start, got, step.observed)
			}
			if got := fetchKey(t, s, "k", 0, math.MaxInt64); got != step.windows {
				t.Errorf("after Put(%s, %d): FetchKey(k) = %q, want %q", step.key, step.start, got, step.windows)
			}
			if got := base.ApproximateCount(); got != step.base {
				t.Errorf("after Put(%s, %d): %d base entries, want %d:\n%s", step.key, step.start, got, step.base, baseKeys(t, base))
			}
		}
		wantFetch(t, s, "k", 150, "<absent>")
		if got, want := windowEntries(t, s, s.All()), `"k"@1700000000000#0=v`; got != want {
			t.Errorf("All() = %s, want %s", got, want)
		}
	})
}

// TestWindowStoreExpiredInLiveSegment checks that reads skip the windows
// that have expired while their segment lives on.
func TestWindowStoreExpiredInLiveSegment(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: 100 * time.Millisecond, SegmentInterval: 1000 * time.Millisecond})
		mustPutWindow(t, s, "k", 10, "a")
		mustPutWindow(t, s, "j", 60, "b")
		mustPutWindow(t, s, "k", 110, "c") // 10 expires
		wantFetch(t, s, "k", 10, "<absent>")
		if got := fetchKey(t, s, "k", 0, 1000); got != "110=c" {
			t.Errorf("FetchKey(k) = %q", got)
		}
		if got, want := windowEntries(t, s, s.FetchAll(0, 1000)), `"j"@60#0=b "k"@110#0=c`; got != want {
			t.Errorf("FetchAll = %s, want %s", got, want)
		}
		if n := base.ApproximateCount(); n != 3 {
			t.Errorf("%d base entries, want 3 (segment 0 lives)", n)
		}
	})
}

func TestWindowStoreReopen(t *testing.T) {
	o := state.WindowStoreOptions{Retention: 300 * time.Millisecond, SegmentInterval: 100 * time.Millisecond}
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, reopen := b.open(t, "win")
		s := newWindowStore(t, base, o)
		for _, w := range []struct {
			key   string
			start int64
		}{{"k", 50}, {"k", 150}, {"j", 250}, {"k", 320}, {"j", 30}} {
			mustPutWindow(t, s, w.key, w.start, fmt.Sprint(w.key, w.start))
		}
		all := windowEntries(t, s, s.All())

		base = reopen(s)
		s = newWindowStore(t, base, o)
		if got := windowEntries(t, s, s.All()); got != all {
			t.Errorf("All() after reopen =\n%s, want\n%s", got, all)
		}
		if got := s.ObservedStreamTime(); got != 320 {
			t.Errorf("ObservedStreamTime() after reopen = %d, want 320", got)
		}
		// The observed stream time still expires windows ...
		if err := s.Put([]byte("k"), 20, []byte("late")); !errors.Is(err, state.ErrWindowExpired) {
			t.Errorf("Put at 20 after reopen = %v, want ErrWindowExpired", err)
		}
		// ... and the segments found are dropped: 450-300 = 150 is in
		// segment 1, so segment 0 (j30, k50) goes, and k150 expires.
		mustPutWindow(t, s, "k", 450, "k450")
		want := `"j"@250#0=j250 "k"@320#0=k320 "k"@450#0=k450`
		if got := windowEntries(t, s, s.All()); got != want {
			t.Errorf("All() =\n%s, want\n%s", got, want)
		}
		if n := base.ApproximateCount(); n != 4 {
			t.Errorf("%d base entries, want 4:\n%s", n, baseKeys(t, base))
		}

		// A shorter retention drops at once what it no longer keeps.
		base = reopen(s)
		s = newWindowStore(t, base, state.WindowStoreOptions{Retention: 150 * time.Millisecond, SegmentInterval: 100 * time.Millisecond})
		want = `"k"@320#0=k320 "k"@450#0=k450`
		if got := windowEntries(t, s, s.All()); got != want {
			t.Errorf("All() with a shorter retention =\n%s, want\n%s", got, want)
		}
		if n := base.ApproximateCount(); n != 2 {
			t.Errorf("%d base entries, want 2:\n%s", n, baseKeys(t, base))
		}

		// Another segment interval is refused.
		base = reopen(s)
		_, err := state.NewWindowStore(base, state.WindowStoreOptions{Retention: time.Second, SegmentInterval: 200 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "segment interval") || !strings.Contains(err.Error(), `"win"`) {
			t.Errorf("reopen with another segment interval: %v, want an error", err)
		}
	})
}

func TestWindowStoreReopenEmpty(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, reopen := b.open(t, "win")
		o := state.WindowStoreOptions{Retention: time.Second}
		s := newWindowStore(t, base, o)
		mustPutWindow(t, s, "k", 5000, "v")
		if err := s.Put([]byte("k"), 5000, nil); err != nil {
			t.Fatal(err)
		}
		s = newWindowStore(t, reopen(s), o)
		if got := s.ObservedStreamTime(); got != -1 {
			t.Errorf("ObservedStreamTime() = %d, want -1", got)
		}
		mustPutWindow(t, s, "k", 10, "v")
		wantFetch(t, s, "k", 10, "v")
	})
}

func TestWindowStoreRestore(t *testing.T) {
	wk := func(key string, start int64, seq int32) []byte {
		return state.AppendWindowKey(nil, []byte(key), start, seq)
	}
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond})
		for _, r := range []struct {
			key   []byte
			value []byte
		}{
			{wk("k", 100, 0), []byte("a")},
			{wk("k", 100, 7), []byte("b")}, // seq kept
			{wk("j", 120, 0), []byte("c")},
			{wk("j", 130, 0), []byte("d")},
			{wk("j", 130, 0), nil}, // deletes
			{wk("k", 140, 0), []byte("e")},
			{wk("k", 40, 0), []byte("late")}, // expired (40 <= 140-100): skipped
		} {
			if err := s.Restore(r.key, r.value); err != nil {
				t.Fatalf("Restore(%x, %q): %v", r.key, r.value, err)
			}
			if s.LastChangelogKey() != nil {
				t.Errorf("LastChangelogKey() after Restore = %x, want nil", s.LastChangelogKey())
			}
		}
		if got := s.ObservedStreamTime(); got != 140 {
			t.Errorf("ObservedStreamTime() = %d, want 140", got)
		}
		if got, want := windowEntries(t, s, s.All()), `"j"@120#0=c "k"@100#0=a "k"@100#7=b "k"@140#0=e`; got != want {
			t.Errorf("All() = %s, want %s", got, want)
		}
		for _, bad := range [][]byte{[]byte("short"), wk("k", -5, 0)} {
			err := s.Restore(bad, []byte("v"))
			if err == nil || !strings.Contains(err.Error(), `"win"`) {
				t.Errorf("Restore(%x) = %v, want an error naming the store", bad, err)
			}
		}
	})
}

// TestWindowStoreChangelog checks that the records a changelog logger
// would write after each Put, (LastChangelogKey, value), restore a store
// with the same contents.
func TestWindowStoreChangelog(t *testing.T) {
	for _, dups := range []bool{false, true} {
		forEachBase(t, func(t *testing.T, b segmentedBase) {
			o := state.WindowStoreOptions{Retention: 200 * time.Millisecond, SegmentInterval: 50 * time.Millisecond, RetainDuplicates: dups}
			base, _ := b.open(t, "win")
			s := newWindowStore(t, base, o)
			type record struct{ key, value []byte }
			var changelog []record
			for i := range 300 {
				key := []byte{"abc"[i%3]}
				start := int64(i * 7 % 400)
				var value []byte
				if i%5 != 0 {
					value = fmt.Appendf(nil, "v%d", i)
				}
				err := s.Put(key, start, value)
				if errors.Is(err, state.ErrWindowExpired) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if k := s.LastChangelogKey(); k != nil {
					changelog = append(changelog, record{bytes.Clone(k), value})
				}
			}
			base2, _ := b.open(t, "restored")
			r := newWindowStore(t, base2, o)
			for _, rec := range changelog {
				if err := r.Restore(rec.key, rec.value); err != nil {
					t.Fatal(err)
				}
			}
			want := windowEntries(t, s, s.All())
			if got := windowEntries(t, r, r.All()); got != want || want == "" {
				t.Errorf("dups=%v: restored\n%s\nwant\n%s", dups, got, want)
			}
			if r.ObservedStreamTime() != s.ObservedStreamTime() {
				t.Errorf("dups=%v: restored ObservedStreamTime() = %d, want %d", dups, r.ObservedStreamTime(), s.ObservedStreamTime())
			}
		})
	}
}

func TestWindowStoreClosed(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour})
		mustPutWindow(t, s, "k", 10, "v")
		if err := s.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for name, err := range map[string]error{
			"Put":     s.Put([]byte("k"), 10, []byte("v")),
			"Restore": s.Restore(state.AppendWindowKey(nil, []byte("k"), 10, 0), []byte("v")),
			"Flush":   s.Flush(),
			"Close":   s.Close(),
			"base":    base.Put([]byte("x"), []byte("y")),
		} {
			if !errors.Is(err, state.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
		if _, _, err := s.Fetch([]byte("k"), 10); !errors.Is(err, state.ErrClosed) {
			t.Errorf("Fetch after Close = %v, want ErrClosed", err)
		}
		if got := fetchKey(t, s, "k", 0, 100); got != "" {
			t.Errorf("FetchKey after Close = %q", got)
		}
		if got := windowEntries(t, s, s.All()); got != "" {
			t.Errorf("All after Close = %q", got)
		}
	})
}

// TestWindowStoreWritesDuringFetch writes to the store from the loop body
// of a fetch, as a join that emits and stores on the way would.
func TestWindowStoreWritesDuringFetch(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond})
		for _, start := range []int64{10, 110, 210} {
			mustPutWindow(t, s, "k", start, "v")
		}
		var seen []int64
		for start := range s.FetchKey([]byte("k"), 0, 1000) {
			seen = append(seen, start)
			mustPutWindow(t, s, "k", start, "w")
			mustPutWindow(t, s, "j", start, "w")
			wantFetch(t, s, "k", start, "w")
			if err := s.Put([]byte("k"), 210, nil); err != nil {
				t.Fatal(err)
			}
		}
		// The deletion of 210 from the loop body: the in-memory store
		// skips it, Pebble reads a snapshot per segment and so does too,
		// since segment 2 is read after the deletion.
		if fmt.Sprint(seen) != "[10 110]" {
			t.Errorf("FetchKey yielded %v, want [10 110]", seen)
		}
		if got, want := fetchKey(t, s, "k", 0, 1000), "10=w 110=w"; got != want {
			t.Errorf("FetchKey = %q, want %q", got, want)
		}
	})
}

// failingBase is an in-memory store whose iterations fail when armed.
type failingBase struct {
	state.KeyValueStore
	fail bool
	err  error
}

func (f *failingBase) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		f.err = nil
		if f.fail {
			f.err = errors.New("disk on fire")
			return
		}
		f.KeyValueStore.Range(from, to)(yield)
	}
}

func (f *failingBase) IterErr() error { return f.err }

func TestWindowStoreIterErr(t *testing.T) {
	base := &failingBase{KeyValueStore: state.NewInMemoryKeyValueStore("win")}
	s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour})
	mustPutWindow(t, s, "k", 10, "v")
	base.fail = true
	for range s.FetchKey([]byte("k"), 0, 100) {
		t.Error("FetchKey yielded")
	}
	if err := s.IterErr(); err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), `"win"`) {
		t.Errorf("FetchKey: IterErr() = %v", err)
	}
	for range s.All() {
		t.Error("All yielded")
	}
	if err := s.IterErr(); err == nil {
		t.Error("All: IterErr() = nil")
	}
	base.fail = false
	if got := fetchKey(t, s, "k", 0, 100); got != "10=v" {
		t.Errorf("FetchKey = %q", got)
	}
	if s.IterErr() != nil {
		t.Errorf("IterErr() = %v after a good iteration", s.IterErr())
	}

	base.fail = true
	if _, err := state.NewWindowStore(base, state.WindowStoreOptions{Retention: time.Hour}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("NewWindowStore over a failing base: %v", err)
	}
}

func TestWindowStoreAllocs(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Hour, SegmentInterval: time.Second})
		for i := range 1000 {
			mustPutWindow(t, s, fmt.Sprintf("key-%04d", i), int64(i%10)*1000, "value")
		}
		key, value := []byte("key-0500"), []byte("VALUE")
		for _, tc := range []struct {
			name string
			f    func()
		}{
			{"Put existing window", func() { _ = s.Put(key, 0, value) }},
			{"Fetch", func() { _, _, _ = s.Fetch(key, 0) }},
			{"Fetch absent", func() { _, _, _ = s.Fetch(key, 1000) }},
			{"Fetch expired", func() { _, _, _ = s.Fetch(key, -1) }},
			{"LastChangelogKey", func() { _ = s.LastChangelogKey() }},
		} {
			if n := testing.AllocsPerRun(100, tc.f); n > allocSlack {
				t.Errorf("%s: %v allocations per run, want at most %d", tc.name, n, allocSlack)
			}
		}
		wantFetch(t, s, "key-0500", 0, "VALUE")
	})
}

// TestWindowStoreDropLargeSegment drops a segment of more entries than are
// deleted at a time over a base that cannot delete a range.
func TestWindowStoreDropLargeSegment(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "win")
		s := newWindowStore(t, base, state.WindowStoreOptions{Retention: time.Second, SegmentInterval: time.Second})
		for i := range 3000 {
			mustPutWindow(t, s, fmt.Sprintf("key-%04d", i), int64(i%1000), "v")
		}
		mustPutWindow(t, s, "k", 1500, "v")
		mustPutWindow(t, s, "k", 1999, "v") // 1999-1000 is still in segment 0
		if n := base.ApproximateCount(); n != 3002 {
			t.Fatalf("%d base entries, want 3002", n)
		}
		mustPutWindow(t, s, "k", 2000, "v") // 2000-1000 is in segment 1: segment 0 goes
		if got := baseKeys(t, base); got != fmt.Sprintf("%x\n%x\n%x\n",
			append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, state.AppendWindowKey(nil, []byte("k"), 1500, 0)...),
			append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, state.AppendWindowKey(nil, []byte("k"), 1999, 0)...),
			append([]byte{0, 0, 0, 0, 0, 0, 0, 2}, state.AppendWindowKey(nil, []byte("k"), 2000, 0)...)) {
			t.Errorf("base keys after the drop:\n%s", got)
		}
	})
}
