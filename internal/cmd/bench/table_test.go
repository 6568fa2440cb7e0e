package main

import (
	"testing"
	"time"
)

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
pkg: github.com/sluicehq/sluice/internal/task
BenchmarkTaskCountPerKey/memory/cache-off-2         	   20000	      1771 ns/op	    564687 records/s	     144 B/op	       4 allocs/op
BenchmarkSinkSend/plain-16   	 3000000	       375.5 ns/op	     427 B/op	       4 allocs/op
BenchmarkNoMem	 100	 12 ns/op
PASS
ok  	github.com/sluicehq/sluice/internal/task	0.303s
`)
	got := parseBench(out)
	want := []benchLine{
		{name: "BenchmarkTaskCountPerKey/memory/cache-off", nsPerOp: 1771, bPerOp: 144, aPer: 4},
		{name: "BenchmarkSinkSend/plain", nsPerOp: 375.5, bPerOp: 427, aPer: 4},
		{name: "BenchmarkNoMem", nsPerOp: 12},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestPeakRSS checks that peakRSS reads this process's high-water mark:
// touching 64 MiB raises it by about that much.
func TestPeakRSS(t *testing.T) {
	before, err := peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if before <= 0 {
		t.Fatalf("peak RSS %d", before)
	}
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	after, err := peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 48<<20 {
		t.Errorf("peak RSS went from %d to %d after touching 64 MiB", before, after)
	}
	_ = b[len(b)-1]
}

func TestMedianOf(t *testing.T) {
	run := func(records int, elapsed, cpu time.Duration, rss int64) tableResult {
		return tableResult{result: result{name: "w", records: records, elapsed: elapsed, cpu: cpu}, rssBytes: rss}
	}
	// Each column's median comes from a different run.
	m := medianOf([]tableResult{
		run(1000, time.Second, 3*time.Second, 30),
		run(1000, 2*time.Second, 1*time.Second, 10),
		run(1000, 4*time.Second, 2*time.Second, 20),
	})
	if m.rate != 500 || m.cpuPerM != 2000 || m.cores != 0.5 || m.rss != 20 {
		t.Errorf("median: %+v, want rate 500, CPU-s/1M 2000, cores 0.5 (3, 0.5, 0.5), RSS 20", m)
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 1000)
	for i := range d {
		d[i] = time.Duration(i + 1)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := percentile(d, c.q); got != c.want {
			t.Errorf("percentile(1..1000, %v) = %d, want %d", c.q, got, c.want)
		}
	}
	if got := percentile(d[:1], 0.999); got != 1 {
		t.Errorf("percentile of one value = %d, want 1", got)
	}
}
