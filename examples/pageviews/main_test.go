package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// TestMain runs the child process of TestKill9AndRestartLosesNoWindow when
// asked to, and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("PAGEVIEWS_TEST_CHILD") == "1" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// t0 is a minute boundary (2023-11-14T22:14:00Z): the first window's start.
const t0 = int64(1_700_000_040_000)

// at is t0 plus s seconds.
func at(s float64) int64 { return t0 + int64(s*1000) }

// The topology counts views by event time (the ts field, not the Kafka
// timestamp) in one-minute windows with 10s of grace, and writes each
// window once, when it closes: a view out of order is counted while its
// window is open, a late one is dropped and counted, and so are malformed
// JSON, an empty value, a view without a ts and a tombstone, each by what
// it is. Each step pipes one record and lists the
// windows it closes, exactly.
func TestTopologyWindowsOutOfOrderAndLate(t *testing.T) {
	topo, err := Topology("pageviews", "pageview-counts", time.Minute, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, testdriver.SkipUndecodableRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "pageviews", serde.Bytes, serde.String)
	out := testdriver.CreateOutputTopic(d, "pageview-counts", serde.String, serde.String)
	view := func(user, page string, s float64) string {
		return fmt.Sprintf(`{"user":%q,"page":%q,"ts":%d}`, user, page, at(s))
	}
	// window renders an expected output record: key, JSON value, timestamp.
	window := func(page string, start, count int64, maxTS float64) string {
		return fmt.Sprintf(`%s {"page":%q,"window_start":%d,"window_end":%d,"count":%d} @%d`,
			page, page, at(float64(start)), at(float64(start+60)), count, at(maxTS))
	}
	for i, step := range []struct {
		value     string
		tombstone bool
		emits     []string
	}{
		{view("u1", "/home", 5), false, nil},
		{view("u2", "/cart", 20), false, nil},
		{view("u3", "/home", 50), false, nil},
		{view("u1", "/home", 63), false, nil}, // stream time 63s: [0,60) closes at 70s
		{view("u2", "/cart", 55), false, nil}, // out of order, [0,60) still open: counted
		{view("u4", "/home", 75), false, []string{ // stream time 75s closes [0,60)
			window("/cart", 0, 2, 55), window("/home", 0, 2, 50)}},
		{view("u5", "/home", 58), false, nil},             // late: [0,60) closed
		{`{"user":"u6","page":"/home","ts":`, false, nil}, // malformed JSON: skipped
		{`{"user":"u7","page":"/cart"}`, false, nil},      // no ts: skipped
		{"", false, nil}, // an empty value is not JSON: skipped
		{"", true, nil},  // a tombstone: dropped by the grouping, moving no stream time
		{view("u8", "/cart", 100), false, nil},
		{view("u1", "/home", 90), false, nil}, // out of order within [60,120)
		{view("u2", "/home", 130), false, []string{ // 130s = [60,120)'s end + grace
			window("/cart", 60, 1, 100), window("/home", 60, 3, 90)}},
		{view("u3", "/cart", 119), false, nil}, // 11s behind, grace 10s: late
		{view("u4", "/home", 125), false, nil}, // out of order, in the open [120,180)
		{view("u9", "/about", 190), false, []string{ // closes [120,180); [180,240) stays open
			window("/home", 120, 2, 130)}},
	} {
		// Kafka timestamps an hour later than every event time, and all
		// equal: only the ts fields count.
		r := operators.Record[[]byte, string]{Value: step.value, Tombstone: step.tombstone, Timestamp: at(3600)}
		if err := in.PipeRecord(r); err != nil {
			t.Fatalf("step %d (%s): %v", i, step.value, err)
		}
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%s %s @%d", r.Key, r.Value, r.Timestamp))
		}
		if strings.Join(got, "\n") != strings.Join(step.emits, "\n") {
			t.Errorf("step %d (%s) wrote\n  %s\nwant\n  %s", i, step.value, strings.Join(got, "\n  "), strings.Join(step.emits, "\n  "))
		}
	}
	for _, c := range []struct {
		node, reason string
		want         int64
	}{
		{countNode, "late", 2},
		{sourceNode, "deserialization-error", 2},
		{sourceNode, "invalid-timestamp", 1},
		{groupNode, "null-value", 1},
	} {
		if n := d.DroppedRecords(c.node, c.reason); n != c.want {
			t.Errorf("dropped by %s for %q: %d, want %d", c.node, c.reason, n, c.want)
		}
	}
}

// The generator's records, through the test driver (one task: the stream
// time of all pages), produce exactly the windows and drops it expects.
func TestGeneratedViewsThroughDriver(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		g := generate(3000, 6, t0, time.Minute, 10*time.Second, seed)
		topo, err := Topology("pageviews", "pageview-counts", time.Minute, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		d, err := testdriver.New(topo, testdriver.SkipUndecodableRecords())
		if err != nil {
			t.Fatal(err)
		}
		in := testdriver.CreateInputTopic(d, "pageviews", serde.Bytes, serde.Bytes)
		out := testdriver.CreateOutputTopic(d, "pageview-counts", serde.String, serde.JSON[WindowCount]())
		for _, r := range g.records {
			// A nil value is a tombstone, as the generator means it (and
			// as Kafka has it).
			rec := operators.Record[[]byte, []byte]{Key: []byte(r.page), Value: r.value, Tombstone: r.value == nil, Timestamp: time.Now().UnixMilli()}
			if err := in.PipeRecord(rec); err != nil {
				t.Fatal(err)
			}
		}
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		var got []Emitted
		for _, r := range rs {
			got = append(got, Emitted{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
		}
		if err := g.check(got, false); err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
		if len(g.want) != 6*len(pages) {
			t.Errorf("seed %d: %d windows expected, want every page in each of the 6 windows", seed, len(g.want))
		}
		for kind, n := range map[viewKind]int{outOfOrder: 50, late: 25, malformed: 5, noTS: 5, tombstone: 5} {
			if g.kinds[kind] < n {
				t.Errorf("seed %d: the generator made %d views of kind %d, want at least %d", seed, g.kinds[kind], kind, n)
			}
		}
		if g.previousWindow == 0 {
			t.Errorf("seed %d: no out-of-order view for the previous window", seed)
		}
		for _, c := range []struct {
			node, reason string
			want         int
		}{
			{countNode, "late", g.kinds[late]},
			{sourceNode, "deserialization-error", g.kinds[malformed]},
			{sourceNode, "invalid-timestamp", g.kinds[noTS]},
			{groupNode, "null-value", g.kinds[tombstone]},
		} {
			if n := d.DroppedRecords(c.node, c.reason); n != int64(c.want) {
				t.Errorf("seed %d: dropped by %s for %q: %d, want %d", seed, c.node, c.reason, n, c.want)
			}
		}
		_ = d.Close()
	}
}

func TestRunDescribe(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-describe"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"Sub-topology: 1", "(topic: by-page-repartition)", "(stores: [views-per-window])", "(topic: pageview-counts)"} {
		if !strings.Contains(s, want) {
			t.Errorf("-describe output lacks %q:\n%s", want, s)
		}
	}
}

// -generate on the embedded broker feeds the views, waits for every
// window (checking each count), prints them with the dropped counts and
// returns.
func TestRunGenerateOnEmbeddedBroker(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-generate", "2000", "-window", "10s", "-grace", "2s", "-windows", "4"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	windows := len(regexp.MustCompile(`(?m)^  \d\d:\d\d:\d\d-\d\d:\d\d:\d\d +\d+  /`).FindAllString(s, -1))
	if !strings.HasPrefix(s, "Produced 2000 page views") || windows != 4 ||
		!strings.Contains(s, "Every count matches") || !strings.Contains(s, "Dropped and counted") {
		t.Errorf("unexpected output (%d window lines):\n%s", windows, s)
	}
}

// The program runs until SIGTERM, then shuts down gracefully and exits 0.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pageviews")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-v")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the banner: the app is running.
	banner, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, "Counting page views") {
		t.Fatalf("banner = %q, %v; stderr:\n%s", banner, err, logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("still running a minute after SIGTERM; stderr:\n%s", logs.String())
	}
}
