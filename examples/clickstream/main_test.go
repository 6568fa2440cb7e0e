package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the child process of TestKill9AndRestartLosesNoResult when
// asked to, and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("CLICKSTREAM_TEST_CHILD") == "1" {
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

// The generator makes what it promises, deterministically: out-of-order
// clicks (some in the previous window), clicks of unknown users and
// pages, purchases attributed to clicks, every region in every window;
// and rounds in which the order of the records cannot change the output:
// every click of a round is on time for region-clicks at the largest
// event time of the rounds so far, and no record is more than the join's
// grace behind it.
func TestGeneratorRounds(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		g := generate(3000, 5, t0, seed)
		if again := generate(3000, 5, t0, seed); !reflect.DeepEqual(g, again) {
			t.Fatalf("seed %d: two generations differ", seed)
		}
		size, grace := regionWindow.Milliseconds(), regionGrace.Milliseconds()
		latest, latestClick, records := int64(-1), int64(-1), 0
		for i, r := range g.rounds {
			var clicks []Click
			for _, rec := range r.records {
				var v struct{ TS int64 }
				if err := json.Unmarshal(rec.value, &v); err != nil {
					t.Fatal(err)
				}
				latest = max(latest, v.TS)
				if !rec.purchase {
					clicks = append(clicks, Click{TS: v.TS})
					latestClick = max(latestClick, v.TS)
				}
			}
			for _, rec := range r.records {
				var v struct{ TS int64 }
				_ = json.Unmarshal(rec.value, &v)
				if v.TS < latest-attributionGrace.Milliseconds() {
					t.Errorf("seed %d round %d: a record at %d, more than the join's grace behind %d", seed, i, v.TS, latest)
				}
			}
			for _, c := range clicks {
				if end := c.TS - c.TS%size + size; end+grace <= latestClick {
					t.Errorf("seed %d round %d: a click at %d is late at %d (window end %d + grace)", seed, i, c.TS, latestClick, end)
				}
			}
			records += len(r.records)
		}
		if records != len(g.clicks)+len(g.buys) {
			t.Errorf("seed %d: %d records in the rounds, %d clicks and %d purchases", seed, records, len(g.clicks), len(g.buys))
		}
		if len(g.want.windows) != 5*len(regions) {
			t.Errorf("seed %d: %d windows expected, want each of the %d regions in each of the 5 windows", seed, len(g.want.windows), len(regions))
		}
		for what, n := range map[string]int{
			"out of order": g.outOfOrder, "out of order in the previous window": g.previousWindow,
			"clicks of unknown users": g.unknownUsers, "clicks of unknown pages": g.unknownPages,
			"purchases": len(g.buys), "attributed purchases": sum(g.want.attributed),
		} {
			if n < 10 {
				t.Errorf("seed %d: %d %s, want at least 10", seed, n, what)
			}
		}
		nulls := 0
		for k := range g.want.enriched {
			if strings.Contains(k.value, `"category":null`) {
				nulls++
			}
		}
		if nulls == 0 || sum(g.want.enriched) >= len(g.clicks) {
			t.Errorf("seed %d: %d enriched clicks of %d, %d with a null category: want some of each kind dropped or null",
				seed, sum(g.want.enriched), len(g.clicks), nulls)
		}
	}
}

func TestRunDescribe(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-describe"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"(topic: by-region-repartition)", "(stores: [region-clicks-per-minute])",
		"(topic: clicks-enriched)", "(topic: region-clicks)", "(topic: attributed-purchases)", "pages"} {
		if !strings.Contains(s, want) {
			t.Errorf("-describe output lacks %q:\n%s", want, s)
		}
	}
}

// -generate on the embedded broker feeds the input, waits for every
// output record (checking each against the oracle), prints a summary and
// returns.
func TestRunGenerateOnEmbeddedBroker(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-generate", "2000", "-windows", "3"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	windows := len(regexp.MustCompile(`(?m)^  \d\d:\d\d:\d\d-\d\d:\d\d:\d\d( +\d+){4}$`).FindAllString(s, -1))
	if !strings.HasPrefix(s, "Produced to the embedded broker") || windows != 3 ||
		!strings.Contains(s, "Every record of the three topics matches") {
		t.Errorf("unexpected output (%d window lines):\n%s", windows, s)
	}
}

// The program runs until SIGTERM, then shuts down gracefully and exits 0.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "clickstream")
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
	if err != nil || !strings.HasPrefix(banner, "Joining clicks") {
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
