package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// -compare is the A/B method of docs/performance.md in one command: two
// builds of this benchmark (typically of two revisions, which
// scripts/abbench.sh builds) run alternately with the same arguments, A
// then B in odd rounds and B then A in even ones, so that neither always
// runs first; on real Kafka, on the same broker. Each build prints a
// line per workload run ("  <workload>  N records/s  X CPU-s/M"); the
// comparison takes each workload's median per build over the rounds and
// B's factor over A, and each round's factor, since the machine's speed
// moves between rounds.
var (
	compareBins   = flag.String("compare", "", "A,B: run the two bench binaries A and B alternately (-rounds each; A B, then B A, ...) with the arguments after --, and print each workload's median records/s and CPU-s per 1M for each, and B's factor over A (scripts/abbench.sh builds them from two revisions)")
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

// comparison is a workload's results under both builds, a round's result
// per entry (several if the build ran the workload more than once in a
// round: -runs).
type comparison struct {
	name string
	a, b []runResult
}

// median returns the median of xs (the upper one of an even count, as the
// rest of the benchmark takes it).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// printComparison prints each workload both builds ran: the medians, B's
// factor over A (records/s B/A, CPU A/B: above 1 means B is better in
// both), and each round's records/s factor when each round ran the
// workload once in each build.
func printComparison(w io.Writer, cs []comparison, rounds int) {
	fmt.Fprintf(w, "%-48s %12s %10s %12s %10s %14s %12s\n", "workload", "A records/s", "A CPU-s/M", "B records/s", "B CPU-s/M", "B/A records/s", "A/B CPU-s/M")
	for _, c := range cs {
		if len(c.a) == 0 || len(c.b) == 0 {
			fmt.Fprintf(w, "%-48s only in %s\n", c.name, map[bool]string{true: "B", false: "A"}[len(c.a) == 0])
			continue
		}
		field := func(rs []runResult, f func(runResult) float64) []float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return xs
		}
		rate := func(r runResult) float64 { return r.rate }
		cpu := func(r runResult) float64 { return r.cpu }
		ar, ac, br, bc := median(field(c.a, rate)), median(field(c.a, cpu)), median(field(c.b, rate)), median(field(c.b, cpu))
		fmt.Fprintf(w, "%-48s %12.0f %10.2f %12.0f %10.2f %14.2f %12.2f\n", c.name, ar, ac, br, bc, br/ar, ac/bc)
		if len(c.a) == rounds && len(c.b) == rounds {
			var each []string
			for i := range rounds {
				each = append(each, fmt.Sprintf("%.2f", c.b[i].rate/c.a[i].rate))
			}
			fmt.Fprintf(w, "  B/A records/s each round: %s\n", strings.Join(each, " "))
		}
	}
}

// runCompare runs the two binaries alternately and prints the comparison;
// their own output goes to standard error as it comes.
func runCompare(ctx context.Context, bins string, rounds int, args []string) error {
	ab := strings.Split(bins, ",")
	if len(ab) != 2 || ab[0] == "" || ab[1] == "" {
		return fmt.Errorf("-compare %q: want two binaries, A,B", bins)
	}
	if rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", rounds)
	}
	results := [2]map[string][]runResult{{}, {}}
	var order []string
	var orders []string
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
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("round %d, %s (%s): %w", r+1, label, ab[i], err)
			}
			byName, names := parseRuns(out.Bytes())
			if len(byName) == 0 {
				return fmt.Errorf("round %d, %s (%s): no result line in its output", r+1, label, ab[i])
			}
			for _, n := range names {
				if !slices.Contains(order, n) {
					order = append(order, n)
				}
				results[i][n] = append(results[i][n], byName[n]...)
			}
		}
	}
	cs := make([]comparison, len(order))
	for i, n := range order {
		cs[i] = comparison{name: n, a: results[0][n], b: results[1][n]}
	}
	fmt.Printf("\nA = %s, B = %s; %d rounds (%s); medians:\n", ab[0], ab[1], rounds, strings.Join(orders, ", "))
	printComparison(os.Stdout, cs, rounds)
	if len(cs) == 0 {
		return errors.New("no workload to compare")
	}
	return nil
}
