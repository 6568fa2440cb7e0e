package main

// Allocations per record of the per-record paths (-allocs): the Go
// benchmarks of the task, the runtime's sink and the DSL's word count and
// stream-stream join, run with -benchmem, printed next to the table.

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

var (
	allocsFlag      = flag.Bool("allocs", false, "also run the Go benchmarks of the per-record paths with -benchmem (needs the go command; run from the repository) and print allocations per record")
	allocsBenchtime = flag.String("allocs-benchtime", "1s", "-benchtime of the -allocs benchmarks")
)

// allocBenchmarks are the benchmarks -allocs runs, by package, with what
// one op is.
var allocBenchmarks = []struct{ pkg, bench, op string }{
	{"./internal/task", "BenchmarkTaskCountPerKey", "record: count per key in one task, sink and changelog discarded"},
	{"./runtime", "BenchmarkSinkSend", "record sent to kfake by a sink (plain: without the production handler)"},
	{"./dsl", "BenchmarkWordCount", "line of 10 words through word count in the test driver"},
	{"./dsl", "BenchmarkStreamJoin", "record into a 1m stream-stream join in the test driver"},
}

// benchLine is one result line of go test -bench.
type benchLine struct {
	name                  string
	nsPerOp, bPerOp, aPer float64
}

// runAllocs runs allocBenchmarks with -benchmem and prints their
// allocations per op.
func runAllocs(ctx context.Context) error {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	var pkgs, names []string
	for _, b := range allocBenchmarks {
		if !slices.Contains(pkgs, b.pkg) {
			pkgs = append(pkgs, b.pkg)
		}
		names = append(names, b.bench)
	}
	args := append([]string{"test", "-run", "^$", "-bench", "^(" + strings.Join(names, "|") + ")$", "-benchmem",
		"-benchtime", *allocsBenchtime}, pkgs...)
	fmt.Printf("\nRunning %s %s...\n", goCmd, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, goCmd, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("-allocs: %s test: %w (output: %s)", goCmd, err, out.String())
	}
	lines := parseBench(out.Bytes())
	fmt.Println("\nAllocations per op of the per-record paths (go test -benchmem):")
	fmt.Printf("%-52s %10s %8s %10s  %s\n", "benchmark", "ns/op", "B/op", "allocs/op", "one op is one")
	for _, b := range allocBenchmarks {
		for _, l := range lines {
			if l.name != b.bench && !strings.HasPrefix(l.name, b.bench+"/") {
				continue
			}
			fmt.Printf("%-52s %10.0f %8.0f %10.1f  %s\n", l.name, l.nsPerOp, l.bPerOp, l.aPer, b.op)
		}
	}
	return nil
}

// parseBench reads the result lines of go test -bench -benchmem output:
// "BenchmarkX/sub-2  N  123 ns/op  ...  45 B/op  3 allocs/op", the
// GOMAXPROCS suffix dropped from the name.
func parseBench(out []byte) []benchLine {
	var ls []benchLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		l := benchLine{name: f[0]}
		if i := strings.LastIndexByte(l.name, '-'); i > 0 {
			if _, err := strconv.Atoi(l.name[i+1:]); err == nil {
				l.name = l.name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				l.nsPerOp = v
			case "B/op":
				l.bPerOp = v
			case "allocs/op":
				l.aPer = v
			}
		}
		ls = append(ls, l)
	}
	return ls
}
