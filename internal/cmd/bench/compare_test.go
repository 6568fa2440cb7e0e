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

// TestRunCompare runs two stand-in builds that print fixed results, and
// checks the alternation, the medians and the factors.
func TestRunCompare(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	log := filepath.Join(dir, "log")
	// Each build appends its name to the log and prints the workload's
	// result of its nth run (1-based), taken from its argument list.
	a := script("a", `echo A >> `+log+`; n=$(grep -c . `+log+`); set -- 100 200 300 400 500 600; shift $((n-1)); echo "  w  $1 records/s  2.00 CPU-s/M"; echo "  only-a  1 records/s  1.00 CPU-s/M"`+"\n")
	b := script("b", `echo B >> `+log+`; n=$(grep -c . `+log+`); set -- 100 200 300 400 500 600; shift $((n-1)); echo "  w  $(($1*2)) records/s  1.00 CPU-s/M"`+"\n")
	var out bytes.Buffer
	stdout := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = w
	done := make(chan struct{})
	go func() { _, _ = out.ReadFrom(r); close(done) }()
	err = runCompare(context.Background(), a+","+b, 3, nil)
	w.Close()
	os.Stdout = stdout
	<-done
	if err != nil {
		t.Fatal(err)
	}
	order, _ := os.ReadFile(log)
	if got := strings.Join(strings.Fields(string(order)), " "); got != "A B B A A B" {
		t.Errorf("runs in the order %q, want A B B A A B", got)
	}
	// A's runs were the 1st, 4th and 5th (100, 400, 500), B's the 2nd,
	// 3rd and 6th (400, 600, 1200): medians 400 and 600, B/A 1.50; the
	// rounds pair A's and B's runs in turn: 4.00, 1.50, 2.40.
	text := out.String()
	for _, want := range []string{
		"3 rounds (A B, B A, A B)",
		"w                                                         400       2.00          600       1.00           1.50         2.00",
		"B/A records/s each round: 4.00 1.50 2.40",
		"only-a                                           only in A",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestRunCompareNeedsTwoBinaries(t *testing.T) {
	if err := runCompare(context.Background(), "one", 3, nil); err == nil || !strings.Contains(err.Error(), "want two binaries") {
		t.Errorf("runCompare(one) = %v", err)
	}
}
