package window

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
)

// cases reads testdata lines "input -> want", skipping comments.
func cases(t *testing.T, file string) [][2]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in, want, ok := strings.Cut(line, "->")
		if !ok {
			t.Fatalf("%s: no -> in %q", file, line)
		}
		out = append(out, [2]string{strings.TrimSpace(in), strings.TrimSpace(want)})
	}
	return out
}

func ms(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWindowsFor(t *testing.T) {
	for _, c := range cases(t, "testdata/time_windows.txt") {
		f := strings.Fields(c[0])
		tw := Time{Size: time.Duration(ms(t, f[0])) * time.Millisecond, Advance: time.Duration(ms(t, f[1])) * time.Millisecond}
		if err := tw.Validate(); err != nil {
			t.Fatalf("%s: %v", c[0], err)
		}
		var got []string
		for _, w := range tw.WindowsFor(nil, ms(t, f[2])) {
			got = append(got, w.String())
		}
		if g := strings.Join(got, " "); g != c[1] {
			t.Errorf("%s: windows %q, want %q", c[0], g, c[1])
		}
	}
}

func parseWindow(t *testing.T, s string) Window {
	t.Helper()
	var w Window
	s = strings.Trim(s, "[])")
	a, b, _ := strings.Cut(s, ",")
	w.Start, w.End = ms(t, a), ms(t, b)
	return w
}

func TestClosed(t *testing.T) {
	for _, c := range cases(t, "testdata/closing.txt") {
		f := strings.Fields(c[0])
		d := time.Duration(ms(t, f[1])) * time.Millisecond
		grace := time.Duration(ms(t, f[2])) * time.Millisecond
		w, st := parseWindow(t, f[3]), ms(t, f[4])
		var closed bool
		switch f[0] {
		case "time":
			closed = Tumbling(d, grace).Closed(w, st)
		case "sliding":
			closed = Sliding{TimeDifference: d, Grace: grace}.Closed(w, st)
		case "session":
			closed = Session{Gap: d, Grace: grace}.Closed(w, st)
		default:
			t.Fatalf("unknown kind %q", f[0])
		}
		got := map[bool]string{true: "closed", false: "open"}[closed]
		if got != c[1] {
			t.Errorf("%s: %s, want %s", c[0], got, c[1])
		}
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []Time{{}, {Size: time.Second, Advance: 2 * time.Second}, {Size: time.Second, Grace: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if (Session{}).Validate() == nil || (Sliding{}).Validate() == nil {
		t.Error("zero session or sliding windows validated")
	}
}

func TestSessionMerges(t *testing.T) {
	s := Session{Gap: 10 * time.Millisecond}
	w := Window{Start: 100, End: 120}
	for ts, want := range map[int64]bool{89: false, 90: true, 110: true, 130: true, 131: false} {
		if got := s.Merges(w, ts); got != want {
			t.Errorf("Merges(%v, %d) = %v, want %v", w, ts, got, want)
		}
	}
}

// Windowed keys on output topics are laid out as Kafka Streams writes them.
func TestWindowedKeySerdes(t *testing.T) {
	ts := TimeKeySerde(serde.String, time.Minute)
	b, err := ts.Encode(nil, Windowed[string]{Key: "k", Window: Window{Start: 60000, End: 120000}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%x", b), "6b000000000000ea60"; got != want {
		t.Errorf("time-windowed key = %s, want %s", got, want)
	}
	w, err := ts.Decode(b)
	if err != nil || w.Key != "k" || w.Window != (Window{60000, 120000}) {
		t.Errorf("decode = %+v, %v", w, err)
	}
	ss := SessionKeySerde(serde.String)
	b, err = ss.Encode(nil, Windowed[string]{Key: "k", Window: Window{Start: 1, End: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%x", b), "6b00000000000000020000000000000001"; got != want {
		t.Errorf("session-windowed key = %s, want %s (key, end, start)", got, want)
	}
	sw, err := ss.Decode(b)
	if err != nil || sw.Window != (Window{1, 2}) {
		t.Errorf("decode = %+v, %v", sw, err)
	}
	if _, err := ts.Decode([]byte{1, 2}); err == nil {
		t.Error("decoding 2 bytes as a time-windowed key succeeded")
	}
	if _, err := ss.Decode(make([]byte, 15)); err == nil {
		t.Error("decoding 15 bytes as a session-windowed key succeeded")
	}
}

func FuzzTimeKeySerde(f *testing.F) {
	f.Add([]byte("k\x00\x00\x00\x00\x00\x00\x00\x01"))
	s := TimeKeySerde(serde.String, time.Second)
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Decode(b)
		if err != nil {
			return
		}
		enc, err := s.Encode(nil, w)
		if err != nil || string(enc) != string(b) {
			t.Fatalf("re-encoding %x gave %x, %v", b, enc, err)
		}
	})
}
