package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRuns(t *testing.T) {
	out := []byte(`Producing 2000000 records of ~100 B (10,000 keys) to bench-1-input on embedded kfake...
  raw franz-go consume→produce                     1106225 records/s    0.73 CPU-s/M
  Sluice count, at-least-once, 100ms, no cache      300703 records/s    3.51 CPU-s/M  (2000000 records written)
  Sluice count, at-least-once, 100ms, no cache      310000 records/s    3.40 CPU-s/M  (2000000 records written)
  Sluice commits: 31, mean 27.4 ms, p99 at most 64 ms, 17.5% of the run
Sluice count, at-least-once, 100ms, no cache         300703       3.51            -            -
`)
	byName, order := parseRuns(out)
	if want := []string{"raw franz-go consume→produce", "Sluice count, at-least-once, 100ms, no cache"}; strings.Join(order, "|") != strings.Join(want, "|") {
		t.Fatalf("workloads %q, want %q", order, want)
	}
	if got := byName["Sluice count, at-least-once, 100ms, no cache"]; len(got) != 2 || got[0] != (runResult{300703, 3.51}) || got[1] != (runResult{310000, 3.40}) {
		t.Errorf("count runs %+v", got)
	}
	if got := byName["raw franz-go consume→produce"]; len(got) != 1 || got[0] != (runResult{1106225, 0.73}) {
		t.Errorf("raw runs %+v", got)
	}
}

// standIns writes stand-in builds into a temporary directory: each
// appends its name to a shared log, and its body can use n, the number of
// runs so far (its own included).
type standIns struct {
	t   *testing.T
	dir string
}

func newStandIns(t *testing.T) standIns { return standIns{t, t.TempDir()} }

func (s standIns) build(name, body string) string {
	s.t.Helper()
	p := filepath.Join(s.dir, name)
	log := filepath.Join(s.dir, "log")
	script := "#!/bin/sh\necho " + name + " >> " + log + "\nn=$(grep -c . " + log + ")\n" + body + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s standIns) order() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	return strings.Join(strings.Fields(string(b)), " ")
}

// pick is shell that sets v to the nth of the words that follow.
func pick(words string) string { return "set -- " + words + "; shift $((n-1)); v=$1" }

// TestRunCompare runs two stand-in builds over four rounds and checks the
// alternation, the median runs (records/s and the CPU of the same run),
// the factors, each round's factor and their median.
func TestRunCompare(t *testing.T) {
	s := newStandIns(t)
	// A runs 1st, 4th, 5th and 8th: records/s 100 n, CPU n.
	a := s.build("A", `echo "  w  $((n*100)) records/s  $n.00 CPU-s/M"; echo "  only-a  1 records/s  1.00 CPU-s/M"`)
	// B runs 2nd, 3rd, 6th and 7th: records/s 400, 600, 1200, 1600; CPU 10-n.
	b := s.build("B", pick("0 400 600 0 0 1200 1600 0")+`; echo "  w  $v records/s  $((10-n)).00 CPU-s/M"`)
	var out bytes.Buffer
	if err := runCompare(context.Background(), &out, a+","+b, 4, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.order(); got != "A B B A A B B A" {
		t.Errorf("runs in the order %q, want A B B A A B B A", got)
	}
	// A: 100, 400, 500, 800, the median run 500 at CPU 5; B: 400, 600,
	// 1200, 1600, the median run 1200 at CPU 4 (each the upper of two);
	// B/A 2.40, A/B CPU 1.25. Rounds: 400/100, 600/400, 1200/500,
	// 1600/800.
	text := out.String()
	for _, want := range []string{
		"4 rounds (A B, B A, A B, B A); median runs:",
		"w                                                         500       5.00         1200       4.00           2.40         1.25",
		"B/A records/s each round: 4.00 1.50 2.40 2.00; median 2.20",
		"only-a                                           only in A",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// A run that fails ends the comparison with an error naming the round
// and the build, after what the rounds before it gave.
func TestRunCompareFailedRun(t *testing.T) {
	s := newStandIns(t)
	a := s.build("A", `echo "  w  100 records/s  1.00 CPU-s/M"`)
	// B's second run (the 3rd in all, round 2's first) fails.
	b := s.build("B", `echo "  w  200 records/s  1.00 CPU-s/M"; [ "$n" -lt 3 ] || exit 3`)
	var out bytes.Buffer
	err := runCompare(context.Background(), &out, a+","+b, 3, nil)
	if err == nil || !strings.Contains(err.Error(), "round 2, B") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("err = %v, want round 2, B, exit status 3", err)
	}
	if text := out.String(); !strings.Contains(text, "1 rounds (A B)") || !strings.Contains(text, "2.00") {
		t.Errorf("the first round's comparison was not printed:\n%s", text)
	}
}

func TestRunCompareRefuses(t *testing.T) {
	s := newStandIns(t)
	ok := s.build("ok", `echo "  w  100 records/s  1.00 CPU-s/M"`)
	silent := s.build("silent", `echo "no result here"`)
	for _, tc := range []struct {
		bins   string
		rounds int
		want   string
	}{
		{"one", 3, "want two binaries"},
		{ok + "," + ok, 0, "want at least 1"},
		{ok + "," + silent, 1, "round 1, B (" + silent + "): no result line"},
	} {
		if err := runCompare(context.Background(), &bytes.Buffer{}, tc.bins, tc.rounds, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("runCompare(%q, %d) = %v, want an error with %q", tc.bins, tc.rounds, err, tc.want)
		}
	}
}
