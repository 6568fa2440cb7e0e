package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
)

func newSessionStore(t testing.TB, base state.KeyValueStore, o state.SessionStoreOptions) *state.SessionStore {
	t.Helper()
	s, err := state.NewSessionStore(base, o)
	if err != nil {
		t.Fatalf("NewSessionStore: %v", err)
	}
	return s
}

func mustPutSession(t testing.TB, s *state.SessionStore, key string, start, end int64, value string) {
	t.Helper()
	if err := s.Put([]byte(key), start, end, []byte(value)); err != nil {
		t.Fatalf("Put(%q, %d, %d, %q): %v", key, start, end, value, err)
	}
}

// sessions renders an iteration of a session store as
// "key[start,end]=value ...", keys quoted.
func sessions(t testing.TB, s *state.SessionStore, seq iter.Seq2[state.SessionKey, []byte]) string {
	t.Helper()
	var b strings.Builder
	for k, v := range seq {
		fmt.Fprintf(&b, "%q[%d,%d]=%s ", k.Key, k.Start, k.End, v)
	}
	if err := s.IterErr(); err != nil {
		t.Fatalf("iteration: %v", err)
	}
	return strings.TrimSpace(b.String())
}

func wantSession(t testing.TB, s *state.SessionStore, key string, start, end int64, want string) {
	t.Helper()
	v, ok, err := s.FetchSession([]byte(key), start, end)
	got := string(v)
	if !ok {
		got = "<absent>"
	}
	if err != nil || got != want {
		t.Errorf("FetchSession(%q, %d, %d) = %q, %v; want %q", key, start, end, got, err, want)
	}
}

func TestSessionKeyEncoding(t *testing.T) {
	for _, tc := range []struct {
		key        string
		start, end int64
		want       string // hex: key, end, start
	}{
		{"k", 1, 2, "6b 0000000000000002 0000000000000001"},
		{"", 0, 0, "0000000000000000 0000000000000000"},
		{"ab", 1700000000000, 1700000000000 + 0x100, "6162 0000018bcfe56900 0000018bcfe56800"},
		{"\x00\xff", 0, math.MaxInt64, "00ff 7fffffffffffffff 0000000000000000"},
	} {
		want := unhex(t, tc.want)
		got := state.AppendSessionKey([]byte("prefix"), []byte(tc.key), tc.start, tc.end)
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendSessionKey(%q, %d, %d) = %x, want prefix ‖ %x", tc.key, tc.start, tc.end, got, want)
		}
		key, start, end, err := state.SplitSessionKey(want)
		if err != nil || string(key) != tc.key || start != tc.start || end != tc.end {
			t.Errorf("SplitSessionKey(%x) = %q, %d, %d, %v; want %q, %d, %d", want, key, start, end, err, tc.key, tc.start, tc.end)
		}
		if cap(key) != len(key) {
			t.Errorf("SplitSessionKey(%x): key capacity %d, want %d", want, cap(key), len(key))
		}
	}
	for _, b := range [][]byte{nil, {}, make([]byte, 15)} {
		if _, _, _, err := state.SplitSessionKey(b); err == nil {
			t.Errorf("SplitSessionKey(%x): no error", b)
		}
	}
}

func FuzzSplitSessionKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(unhex(f, "6b 0000000000000002 0000000000000001"))
	f.Add(unhex(f, "ffff 8000000000000000 ffffffffffffffff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, start, end, err := state.SplitSessionKey(b)
		if len(b) < 16 {
			if err == nil {
				t.Fatalf("SplitSessionKey(%x): no error", b)
			}
			return
		}
		if err != nil {
			t.Fatalf("SplitSessionKey(%x): %v", b, err)
		}
		if got := state.AppendSessionKey(nil, key, start, end); !bytes.Equal(got, b) {
			t.Fatalf("AppendSessionKey(SplitSessionKey(%x)) = %x", b, got)
		}
	})
}

func TestSessionStoreOptions(t *testing.T) {
	for _, tc := range []struct {
		o    state.SessionStoreOptions
		want string // in the error; "" for none
	}{
		{state.SessionStoreOptions{}, "Retention"},
		{state.SessionStoreOptions{Retention: time.Microsecond}, "Retention"},
		{state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: -time.Second}, "SegmentInterval"},
		{state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: time.Nanosecond}, "SegmentInterval"},
		{state.SessionStoreOptions{Retention: time.Millisecond}, ""},
		{state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: time.Minute}, ""},
	} {
		s, err := state.NewSessionStore(state.NewInMemoryKeyValueStore("sessions"), tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("NewSessionStore(%+v): %v", tc.o, err)
		case tc.want == "":
			if s.Name() != "sessions" || s.ObservedStreamTime() != -1 {
				t.Errorf("NewSessionStore(%+v): Name() = %q, ObservedStreamTime() = %d", tc.o, s.Name(), s.ObservedStreamTime())
			}
		case err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"sessions"`):
			t.Errorf("NewSessionStore(%+v) error = %v, want one naming %q and the store", tc.o, err, tc.want)
		}
	}
}

// TestSessionStoreLayout checks the keys written to the base store: the
// segment is that of the session end, and the default interval is
// max(retention/2, 60s).
func TestSessionStoreLayout(t *testing.T) {
	for _, tc := range []struct {
		o          state.SessionStoreOptions
		start, end int64
		want       string // hex: segment, key, end, start
	}{
		{state.SessionStoreOptions{Retention: 10 * time.Minute}, 10, 700000, // interval 300000
			"0000000000000002 6b 00000000000aae60 000000000000000a"},
		{state.SessionStoreOptions{Retention: time.Minute}, 0, 130000, // interval 60000
			"0000000000000002 6b 000000000001fbd0 0000000000000000"},
	} {
		forEachBase(t, func(t *testing.T, b segmentedBase) {
			base, _ := b.open(t, "sessions")
			s := newSessionStore(t, base, tc.o)
			mustPutSession(t, s, "k", tc.start, tc.end, "v")
			if got, want := baseKeys(t, base), fmt.Sprintf("%x\n", unhex(t, tc.want)); got != want {
				t.Errorf("%+v: base keys\n%s want\n%s", tc.o, got, want)
			}
		})
	}
}

func TestSessionStorePutFetchRemove(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		s := newSessionStore(t, base, state.SessionStoreOptions{Retention: time.Hour})
		wantSession(t, s, "k", 0, 10, "<absent>")
		mustPutSession(t, s, "k", 0, 10, "a")
		mustPutSession(t, s, "k", 20, 20, "b")
		mustPutSession(t, s, "j", 0, 10, "c")
		wantSession(t, s, "k", 0, 10, "a")
		wantSession(t, s, "k", 20, 20, "b")
		wantSession(t, s, "j", 0, 10, "c")
		wantSession(t, s, "k", 0, 11, "<absent>")
		wantSession(t, s, "k", 1, 10, "<absent>")
		wantSession(t, s, "k", 10, 0, "<absent>")
		if got, want := s.LastChangelogKey(), state.AppendSessionKey(nil, []byte("j"), 0, 10); !bytes.Equal(got, want) {
			t.Errorf("LastChangelogKey() = %x, want %x", got, want)
		}
		if got := s.ObservedStreamTime(); got != 20 {
			t.Errorf("ObservedStreamTime() = %d, want 20", got)
		}

		mustPutSession(t, s, "k", 0, 10, "A")
		wantSession(t, s, "k", 0, 10, "A")
		if err := s.Remove([]byte("k"), 0, 10); err != nil {
			t.Fatal(err)
		}
		if got, want := s.LastChangelogKey(), state.AppendSessionKey(nil, []byte("k"), 0, 10); !bytes.Equal(got, want) {
			t.Errorf("LastChangelogKey() after Remove = %x, want %x", got, want)
		}
		wantSession(t, s, "k", 0, 10, "<absent>")
		if err := s.Put([]byte("k"), 20, 20, nil); err != nil {
			t.Fatal(err)
		}
		wantSession(t, s, "k", 20, 20, "<absent>")
		if n := base.ApproximateCount(); n != 1 {
			t.Errorf("base ApproximateCount() = %d, want 1", n)
		}
		// Removing an absent session is not an error, and advances time as
		// in Kafka Streams.
		if err := s.Remove([]byte("k"), 30, 40); err != nil {
			t.Errorf("Remove of an absent session: %v", err)
		}
		if got := s.ObservedStreamTime(); got != 40 {
			t.Errorf("ObservedStreamTime() = %d, want 40", got)
		}

		for _, w := range [][2]int64{{-1, 5}, {6, 5}, {-3, -1}} {
			err := s.Put([]byte("k"), w[0], w[1], []byte("v"))
			if err == nil || !strings.Contains(err.Error(), `"sessions"`) {
				t.Errorf("Put(k, %d, %d) = %v, want an error naming the store", w[0], w[1], err)
			}
		}
	})
}

// TestSessionStoreFindSessions checks the lookups a session aggregation
// makes: the sessions a record at time t merges with for an inactivity
// gap g are FindSessions(key, t-g, t+g).
func TestSessionStoreFindSessions(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		// Segments of 100ms, so the sessions below span segments 0 to 4.
		s := newSessionStore(t, base, state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond})
		for _, k := range []string{"j", "k", "k\x00", "kk", "k\x00\x00\x00\x00\x00\x00\x00\x05"} {
			for _, w := range [][2]int64{{100, 150}, {0, 5}, {400, 450}, {10, 20}, {30, 30}, {28, 30}, {160, 210}} {
				mustPutSession(t, s, k, w[0], w[1], fmt.Sprint(w[0], "-", w[1]))
			}
		}
		for _, tc := range []struct {
			t, gap int64
			want   string
		}{
			{25, 5, `"k"[10,20]=10-20 "k"[28,30]=28-30 "k"[30,30]=30-30`},
			{8, 2, `"k"[10,20]=10-20`}, // end 5 < 6
			{7, 2, `"k"[0,5]=0-5`},     // start 10 > 9
			{7, 3, `"k"[0,5]=0-5 "k"[10,20]=10-20`},
			{300, 50, ``}, // between sessions
			{155, 5, `"k"[100,150]=100-150 "k"[160,210]=160-210`},
			{160, 0, `"k"[160,210]=160-210`}, // inside a session
			{450, 0, `"k"[400,450]=400-450`}, // at its end
			{451, 0, ``},
			{0, 1000, `"k"[0,5]=0-5 "k"[10,20]=10-20 "k"[28,30]=28-30 "k"[30,30]=30-30 "k"[100,150]=100-150 "k"[160,210]=160-210 "k"[400,450]=400-450`},
		} {
			got := sessions(t, s, s.FindSessions([]byte("k"), tc.t-tc.gap, tc.t+tc.gap))
			if got != tc.want {
				t.Errorf("record at %d, gap %d: FindSessions(k, %d, %d) =\n%s, want\n%s", tc.t, tc.gap, tc.t-tc.gap, tc.t+tc.gap, got, tc.want)
			}
		}
		for _, tc := range []struct {
			earliestEnd, latestStart int64
			want                     string
		}{
			{math.MinInt64, -1, ``},
			{0, math.MaxInt64, `"k"[0,5]=0-5 "k"[10,20]=10-20 "k"[28,30]=28-30 "k"[30,30]=30-30 "k"[100,150]=100-150 "k"[160,210]=160-210 "k"[400,450]=400-450`},
			{math.MaxInt64, 0, ``},
			{30, 30, `"k"[28,30]=28-30 "k"[30,30]=30-30`},
			{210, 160, `"k"[160,210]=160-210`},
			{200, 100, ``}, // [160,210] starts after 100
		} {
			got := sessions(t, s, s.FindSessions([]byte("k"), tc.earliestEnd, tc.latestStart))
			if got != tc.want {
				t.Errorf("FindSessions(k, %d, %d) =\n%s, want\n%s", tc.earliestEnd, tc.latestStart, got, tc.want)
			}
		}
		if got := sessions(t, s, s.FindSessions([]byte("absent"), 0, math.MaxInt64)); got != "" {
			t.Errorf("FindSessions(absent) = %s", got)
		}
		// Every key sees its own sessions only.
		for _, k := range []string{"j", "k\x00", "kk", "k\x00\x00\x00\x00\x00\x00\x00\x05"} {
			n := 0
			for sk := range s.FindSessions([]byte(k), 0, math.MaxInt64) {
				if string(sk.Key) != k {
					t.Errorf("FindSessions(%q) yielded key %q", k, sk.Key)
				}
				n++
			}
			if n != 7 {
				t.Errorf("FindSessions(%q) yielded %d sessions, want 7", k, n)
			}
		}
	})
}

// TestSessionStoreMerge runs the session aggregation of Kafka Streams'
// KStreamSessionWindowAggregate over the store: each record finds the
// sessions it merges with, removes them (from the loop body) and puts the
// merged session.
func TestSessionStoreMerge(t *testing.T) {
	const gap = 10
	type record struct {
		key string
		ts  int64
	}
	for _, tc := range []struct {
		name    string
		records []record
		want    string // All() after, with the count of records as value
	}{
		{"one session", []record{{"k", 0}, {"k", 5}, {"k", 15}},
			`"k"[0,15]=3`},
		{"two sessions", []record{{"k", 0}, {"k", 5}, {"k", 16}},
			`"k"[0,5]=2 "k"[16,16]=1`},
		{"a late record bridges two", []record{{"k", 0}, {"k", 20}, {"k", 10}},
			`"k"[0,20]=3`},
		{"keys apart", []record{{"k", 0}, {"j", 5}, {"k\x00", 5}, {"k", 8}},
			`"j"[5,5]=1 "k\x00"[5,5]=1 "k"[0,8]=2`}, // by bytes: k ‖ end 8 > k\x00 ‖ end 5
		// [85,95] in segment 0 and [106,106] in segment 1 merge at 100.
		{"across segments", []record{{"k", 85}, {"k", 95}, {"k", 106}, {"k", 100}, {"k", 250}},
			`"k"[85,106]=4 "k"[250,250]=1`},
	} {
		forEachBase(t, func(t *testing.T, b segmentedBase) {
			base, _ := b.open(t, "sessions")
			s := newSessionStore(t, base, state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: 100 * time.Millisecond})
			for _, r := range tc.records {
				start, end, count := r.ts, r.ts, uint64(1)
				for sk, v := range s.FindSessions([]byte(r.key), r.ts-gap, r.ts+gap) {
					start, end = min(start, sk.Start), max(end, sk.End)
					count += binary.BigEndian.Uint64(v)
					if err := s.Remove(sk.Key, sk.Start, sk.End); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.IterErr(); err != nil {
					t.Fatal(err)
				}
				if err := s.Put([]byte(r.key), start, end, binary.BigEndian.AppendUint64(nil, count)); err != nil {
					t.Fatal(err)
				}
			}
			var got strings.Builder
			for sk, v := range s.All() {
				fmt.Fprintf(&got, "%q[%d,%d]=%d ", sk.Key, sk.Start, sk.End, binary.BigEndian.Uint64(v))
			}
			if g := strings.TrimSpace(got.String()); g != tc.want {
				t.Errorf("%s: sessions %s, want %s", tc.name, g, tc.want)
			}
		})
	}
}

func TestSessionStoreRetention(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		// Sessions live 100ms after their end, by segments of 50ms.
		s := newSessionStore(t, base, state.SessionStoreOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond})
		for _, step := range []struct {
			start, end int64
			err        error
			observed   int64
			sessions   string // FindSessions(k, 0, MaxInt64) after the step
			base       int64
		}{
			{0, 10, nil, 10, "[0,10]", 1},
			{20, 60, nil, 60, "[0,10] [20,60]", 2},
			{0, 110, nil, 110, "[20,60] [0,110]", 3}, // [0,10] expires, its segment lives
			{5, 10, state.ErrWindowExpired, 110, "[20,60] [0,110]", 3},
			{70, 200, nil, 200, "[0,110] [70,200]", 2}, // segments 0 and 1 dropped ([0,10], [20,60])
			{0, 100, state.ErrWindowExpired, 200, "[0,110] [70,200]", 2},
			{0, 101, nil, 200, "[0,101] [0,110] [70,200]", 3},
		} {
			err := s.Put([]byte("k"), step.start, step.end, []byte("v"))
			if !errors.Is(err, step.err) {
				t.Fatalf("Put(k, %d, %d) = %v, want %v", step.start, step.end, err, step.err)
			}
			if err != nil && s.LastChangelogKey() != nil {
				t.Errorf("Put(k, %d, %d): LastChangelogKey() = %x after %v, want nil", step.start, step.end, s.LastChangelogKey(), err)
			}
			if got := s.ObservedStreamTime(); got != step.observed {
				t.Errorf("after Put(k, %d, %d): ObservedStreamTime() = %d, want %d", step.start, step.end, got, step.observed)
			}
			var got strings.Builder
			for sk := range s.FindSessions([]byte("k"), 0, math.MaxInt64) {
				fmt.Fprintf(&got, "[%d,%d] ", sk.Start, sk.End)
			}
			if g := strings.TrimSpace(got.String()); g != step.sessions {
				t.Errorf("after Put(k, %d, %d): sessions %s, want %s", step.start, step.end, g, step.sessions)
			}
			if got := base.ApproximateCount(); got != step.base {
				t.Errorf("after Put(k, %d, %d): %d base entries, want %d:\n%s", step.start, step.end, got, step.base, baseKeys(t, base))
			}
		}
		wantSession(t, s, "k", 0, 10, "<absent>")
		wantSession(t, s, "k", 0, 110, "v")
		if got, want := sessions(t, s, s.All()), `"k"[0,101]=v "k"[0,110]=v "k"[70,200]=v`; got != want {
			t.Errorf("All() = %s, want %s", got, want)
		}
	})
}

func TestSessionStoreReopen(t *testing.T) {
	o := state.SessionStoreOptions{Retention: 300 * time.Millisecond, SegmentInterval: 100 * time.Millisecond}
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, reopen := b.open(t, "sessions")
		s := newSessionStore(t, base, o)
		for _, w := range []struct {
			key        string
			start, end int64
		}{{"k", 0, 50}, {"k", 120, 150}, {"j", 200, 250}, {"k", 300, 320}, {"j", 30, 40}} {
			mustPutSession(t, s, w.key, w.start, w.end, fmt.Sprint(w.key, w.end))
		}
		all := sessions(t, s, s.All())

		base = reopen(s)
		s = newSessionStore(t, base, o)
		if got := sessions(t, s, s.All()); got != all {
			t.Errorf("All() after reopen =\n%s, want\n%s", got, all)
		}
		if got := s.ObservedStreamTime(); got != 320 {
			t.Errorf("ObservedStreamTime() after reopen = %d, want 320", got)
		}
		if err := s.Put([]byte("k"), 0, 20, []byte("late")); !errors.Is(err, state.ErrWindowExpired) {
			t.Errorf("Put of [0,20] after reopen = %v, want ErrWindowExpired", err)
		}
		// 450-300 = 150 is in segment 1: segment 0 (k50, j40) goes.
		mustPutSession(t, s, "k", 400, 450, "k450")
		want := `"j"[200,250]=j250 "k"[300,320]=k320 "k"[400,450]=k450`
		if got := sessions(t, s, s.All()); got != want {
			t.Errorf("All() =\n%s, want\n%s", got, want)
		}
		if n := base.ApproximateCount(); n != 4 { // k150 expired, in a live segment
			t.Errorf("%d base entries, want 4:\n%s", n, baseKeys(t, base))
		}

		base = reopen(s)
		_, err := state.NewSessionStore(base, state.SessionStoreOptions{Retention: time.Second, SegmentInterval: 200 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "segment interval") || !strings.Contains(err.Error(), `"sessions"`) {
			t.Errorf("reopen with another segment interval: %v, want an error", err)
		}
	})
}

func TestSessionStoreRestore(t *testing.T) {
	sk := func(key string, start, end int64) []byte {
		return state.AppendSessionKey(nil, []byte(key), start, end)
	}
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		s := newSessionStore(t, base, state.SessionStoreOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond})
		for _, r := range []struct {
			key   []byte
			value []byte
		}{
			{sk("k", 100, 110), []byte("a")},
			{sk("j", 90, 120), []byte("b")},
			{sk("k", 100, 110), nil}, // removes
			{sk("k", 100, 130), []byte("c")},
			{sk("k", 140, 140), []byte("d")},
			{sk("k", 0, 40), []byte("late")}, // expired (40 <= 140-100): skipped
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
		if got, want := sessions(t, s, s.All()), `"j"[90,120]=b "k"[100,130]=c "k"[140,140]=d`; got != want {
			t.Errorf("All() = %s, want %s", got, want)
		}
		for _, bad := range [][]byte{[]byte("too short"), sk("k", 5, 4), sk("k", -1, 4)} {
			err := s.Restore(bad, []byte("v"))
			if err == nil || !strings.Contains(err.Error(), `"sessions"`) {
				t.Errorf("Restore(%x) = %v, want an error naming the store", bad, err)
			}
		}
	})
}

func TestSessionStoreClosed(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		s := newSessionStore(t, base, state.SessionStoreOptions{Retention: time.Hour})
		mustPutSession(t, s, "k", 0, 10, "v")
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for name, err := range map[string]error{
			"Put":     s.Put([]byte("k"), 0, 10, []byte("v")),
			"Remove":  s.Remove([]byte("k"), 0, 10),
			"Restore": s.Restore(state.AppendSessionKey(nil, []byte("k"), 0, 10), []byte("v")),
			"Flush":   s.Flush(),
			"Close":   s.Close(),
		} {
			if !errors.Is(err, state.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
		if _, _, err := s.FetchSession([]byte("k"), 0, 10); !errors.Is(err, state.ErrClosed) {
			t.Errorf("FetchSession after Close = %v, want ErrClosed", err)
		}
		if got := sessions(t, s, s.FindSessions([]byte("k"), 0, 100)); got != "" {
			t.Errorf("FindSessions after Close = %s", got)
		}
		if got := sessions(t, s, s.All()); got != "" {
			t.Errorf("All after Close = %s", got)
		}
	})
}

func TestSessionStoreIterErr(t *testing.T) {
	base := &failingBase{KeyValueStore: state.NewInMemoryKeyValueStore("sessions")}
	s := newSessionStore(t, base, state.SessionStoreOptions{Retention: time.Hour})
	mustPutSession(t, s, "k", 0, 10, "v")
	base.fail = true
	for range s.FindSessions([]byte("k"), 0, 100) {
		t.Error("FindSessions yielded")
	}
	if err := s.IterErr(); err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), `"sessions"`) {
		t.Errorf("FindSessions: IterErr() = %v", err)
	}
	for range s.All() {
		t.Error("All yielded")
	}
	if err := s.IterErr(); err == nil {
		t.Error("All: IterErr() = nil")
	}
	base.fail = false
	if got, want := sessions(t, s, s.FindSessions([]byte("k"), 0, 100)), `"k"[0,10]=v`; got != want {
		t.Errorf("FindSessions = %s, want %s", got, want)
	}
}

func TestSessionStoreAllocs(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		s := newSessionStore(t, base, state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: time.Second})
		for i := range 1000 {
			start := int64(i%10) * 1000
			mustPutSession(t, s, fmt.Sprintf("key-%04d", i), start, start+int64(i%7), "value") // key-0500: [0,3]
		}
		key, value := []byte("key-0500"), []byte("VALUE")
		for _, tc := range []struct {
			name string
			f    func()
		}{
			{"Put existing session", func() { _ = s.Put(key, 0, 3, value) }},
			{"FetchSession", func() { _, _, _ = s.FetchSession(key, 0, 3) }},
			{"FetchSession absent", func() { _, _, _ = s.FetchSession(key, 0, 1000) }},
			{"FetchSession expired", func() { _, _, _ = s.FetchSession(key, -5, -1) }},
		} {
			if n := testing.AllocsPerRun(100, tc.f); n > allocSlack {
				t.Errorf("%s: %v allocations per run, want at most %d", tc.name, n, allocSlack)
			}
		}
		wantSession(t, s, "key-0500", 0, 3, "VALUE")
	})
}

func TestSessionStoreFindSessionsByEnd(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		base, _ := b.open(t, "sessions")
		s, err := state.NewSessionStore(base, state.SessionStoreOptions{Retention: time.Hour, SegmentInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct {
			key        string
			start, end int64
		}{{"a", 0, 10}, {"b", 5, 70_000}, {"a", 60_000, 60_500}, {"c", 120_000, 130_000}} {
			if err := s.Put([]byte(e.key), e.start, e.end, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for k := range s.FindSessionsByEnd(10, 70_000) {
			got = append(got, fmt.Sprintf("%s[%d,%d]", k.Key, k.Start, k.End))
		}
		if g, want := strings.Join(got, " "), "a[0,10] a[60000,60500] b[5,70000]"; g != want {
			t.Fatalf("FindSessionsByEnd(10, 70000) = %s, want %s", g, want)
		}
	})
}
