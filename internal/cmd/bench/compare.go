package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// -compare is the A/B method of docs/performance.md in one command: two
// builds of this benchmark (typically of two revisions, which
// scripts/abbench.sh builds) run alternately with the same arguments, A
// then B in odd rounds and B then A in even ones, so that neither always
// runs first; on real Kafka, on the same broker. Each build prints a
// line per workload run ("  <workload>  N records/s  X CPU-s/M"). For
// each workload and build the comparison takes the median run as the
// rest of the benchmark does (the run of median records/s, the upper one
// of an even count, and its CPU per record), B's factor over A, and,
// when each round ran the workload once per build (-runs 1), each
// round's factor and their median: the two runs of a round are next to
// each other in time, so their ratio leaves out the machine's drift
// between rounds.
var (
	compareBins   = flag.String("compare", "", "A,B: run the two bench binaries A and B alternately (-rounds each; A B, then B A, ...) with the arguments after --, and print each workload's median run for each, and B's factor over A (scripts/abbench.sh builds them from two revisions)")
	compareRounds = flag.Int("rounds", 3, "-compare: how many times each binary runs")
)

// runLine matches a workload's result line of one run.
var runLine = regexp.MustCompile(`^  (\S.*?)\s+(\d+) records/s\s+([0-9.]+) CPU-s/M`)

// runResult is what one run of a workload printed.
type runResult struct {
	rate, cpu float64
}

// parseRuns returns the result lines of a bench's output, by workload, in
// the order they came.
func parseRuns(out []byte) (map[string][]runResult, []string) {
	byName := map[string][]runResult{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := runLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		rate, err1 := strconv.ParseFloat(m[2], 64)
		cpu, err2 := strconv.ParseFloat(m[3], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if _, ok := byName[m[1]]; !ok {
			order = append(order, m[1])
		}
		byName[m[1]] = append(byName[m[1]], runResult{rate, cpu})
	}
	return byName, order
}

// comparison is a workload's runs under both builds, in the order of the
// rounds (several per round with -runs N).
type comparison struct {
	name string
	a, b []runResult
}

// medianRun returns the run of median records/s (the upper one of an even
// count), as the rest of the benchmark reports a workload.
func medianRun(rs []runResult) runResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(x, y runResult) int { return cmp.Compare(x.rate, y.rate) })
	return s[len(s)/2]
}

// printComparison prints each workload of cs: each build's median run,
// B's factor over A (records/s B/A, CPU per record A/B: above 1 means B
// is better in both), and, when each of the rounds ran the workload once
// in each build, each round's records/s factor and their median.
func printComparison(w io.Writer, cs []comparison, rounds int) {
	fmt.Fprintf(w, "%-48s %12s %10s %12s %10s %14s %12s\n", "workload", "A records/s", "A CPU-s/M", "B records/s", "B CPU-s/M", "B/A records/s", "A/B CPU-s/M")
	for _, c := range cs {
		if len(c.a) == 0 || len(c.b) == 0 {
			only := "A"
			if len(c.a) == 0 {
				only = "B"
			}
			fmt.Fprintf(w, "%-48s only in %s\n", c.name, only)
			continue
		}
		a, b := medianRun(c.a), medianRun(c.b)
		fmt.Fprintf(w, "%-48s %12.0f %10.2f %12.0f %10.2f %14.2f %12.2f\n", c.name, a.rate, a.cpu, b.rate, b.cpu, b.rate/a.rate, a.cpu/b.cpu)
		if len(c.a) == rounds && len(c.b) == rounds && rounds > 1 {
			each := make([]float64, rounds)
			var text []string
			for i := range rounds {
				each[i] = c.b[i].rate / c.a[i].rate
				text = append(text, fmt.Sprintf("%.2f", each[i]))
			}
			fmt.Fprintf(w, "  B/A records/s each round: %s; median %.2f\n", strings.Join(text, " "), medianOfSorted(slices.Sorted(slices.Values(each))))
		}
	}
}

// compareFlags are the flags -compare takes itself; the builds' go after
// --.
var compareFlags = []string{"compare", "rounds"}

// runCompare runs the two binaries alternately and prints the comparison
// to w; their own output goes to standard error as it comes. A run that
// fails ends the comparison, after what the rounds before it gave is
// printed.
func runCompare(ctx context.Context, w io.Writer, bins string, rounds int, args []string) error {
	ab := strings.Split(bins, ",")
	if len(ab) != 2 || ab[0] == "" || ab[1] == "" {
		return fmt.Errorf("-compare %q: want two binaries, A,B", bins)
	}
	if rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", rounds)
	}
	var results [2]map[string][]runResult
	results[0], results[1] = map[string][]runResult{}, map[string][]runResult{}
	var names, orders []string
	report := func(done int) {
		cs := make([]comparison, len(names))
		for i, n := range names {
			cs[i] = comparison{name: n, a: results[0][n], b: results[1][n]}
		}
		fmt.Fprintf(w, "\nA = %s, B = %s; %d rounds (%s); median runs:\n", ab[0], ab[1], done, strings.Join(orders[:done], ", "))
		printComparison(w, cs, done)
	}
	for r := range rounds {
		turn := []int{0, 1}
		if r%2 == 1 {
			turn = []int{1, 0}
		}
		orders = append(orders, map[int]string{0: "A B", 1: "B A"}[turn[0]])
		for _, i := range turn {
			label := string("AB"[i])
			fmt.Fprintf(os.Stderr, "=== round %d, %s: %s %s\n", r+1, label, ab[i], strings.Join(args, " "))
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, ab[i], args...)
			cmd.Stdout = io.MultiWriter(os.Stderr, &out)
			cmd.Stderr = os.Stderr
			err := cmd.Run()
			byName, found := parseRuns(out.Bytes())
			if err == nil && len(byName) == 0 {
				err = errors.New("no result line in its output")
			}
			if err != nil {
				if r > 0 {
					report(r)
				}
				return fmt.Errorf("round %d, %s (%s): %w", r+1, label, ab[i], err)
			}
			for _, n := range found {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
				results[i][n] = append(results[i][n], byName[n]...)
			}
		}
	}
	report(rounds)
	return nil
}

// compareMode runs -compare, refusing flags meant for the builds given
// before the -- that passes them on.
func compareMode(ctx context.Context) error {
	var misplaced []string
	flag.Visit(func(f *flag.Flag) {
		if !slices.Contains(compareFlags, f.Name) {
			misplaced = append(misplaced, "-"+f.Name)
		}
	})
	if len(misplaced) > 0 {
		return fmt.Errorf("-compare: %s would not reach the builds; put their flags after --", strings.Join(misplaced, " "))
	}
	// An interrupt ends the run in progress too (CommandContext kills it).
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runCompare(ctx, os.Stdout, *compareBins, *compareRounds, flag.Args())
}
