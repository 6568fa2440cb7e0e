package main

// The table of issue 15 (-table): the raw count loop, count per key with
// the record cache off and on, the window count with the cache off and the
// stream-stream join, each run in a process of its own so that its peak
// RSS is its own.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/runtime"
)

var (
	tableMode = flag.Bool("table", false, "print issue 15's table: raw count loop, count per key with the cache off and on, window count with the cache off, stream-stream join; each run in a process of its own (records/s, CPU-s per 1M, peak RSS), median of -runs interleaved runs")
	childSpec = flag.String("child", "", "internal: run one workload of -table, described by this JSON, and print its result")
)

// tableRows are the table's workloads, by their names in -only, in the
// table's order (runChild runs them; each names itself in its result).
var tableRows = []string{"rawcount", "count-nocache", "count-cache", "windowcount-nocache", "ssjoin"}

// childRun tells a child process which workload to run on which input.
type childRun struct {
	Kind       string   `json:"kind"`
	Brokers    []string `json:"brokers"`
	Input      string   `json:"input"`
	Run        string   `json:"run"`
	Records    int      `json:"records"`
	Workers    int      `json:"workers"`
	Partitions int32    `json:"partitions"`
	// The stream-stream join's inputs.
	Left        string `json:"left,omitempty"`
	Right       string `json:"right,omitempty"`
	JoinKeys    int    `json:"join_keys,omitempty"`
	JoinRecords int    `json:"join_records,omitempty"`
	Pairs       int64  `json:"pairs,omitempty"`
}

// childResult is what a child prints on its last line, after resultPrefix.
type childResult struct {
	Name      string `json:"name"`
	Records   int    `json:"records"`
	ElapsedNs int64  `json:"elapsed_ns"`
	CPUNs     int64  `json:"cpu_ns"`
	Written   int64  `json:"written"`
	Want      int64  `json:"want"`
	// PeakRSS is the process's VmHWM in bytes (see peakRSS).
	PeakRSS int64              `json:"peak_rss"`
	Dropped map[string]float64 `json:"dropped,omitempty"`
}

const resultPrefix = "BENCH-RESULT "

// tableResult is one run of a row, with the child process's peak RSS.
type tableResult struct {
	result
	rssBytes int64
}

// runChild runs the workload spec describes in this process and prints
// its result.
func runChild(ctx context.Context, spec string) error {
	var c childRun
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return fmt.Errorf("-child: %w", err)
	}
	var r result
	var err error
	nocache := runtime.CacheMaxBytes(0)
	switch c.Kind {
	case "rawcount":
		r, err = rawCount(ctx, c.Brokers, c.Input, c.Run+"-rawcount", c.Records, c.Partitions, time.Second)
	case "count-nocache":
		r, err = sluice(ctx, c.Brokers, c.Input, c.Run, c.Kind, c.Records, c.Records, c.Workers, c.Partitions,
			labelled(countByKey, "Sluice count per key, cache off"), nocache)
		r.want = int64(c.Records)
	case "count-cache":
		r, err = sluice(ctx, c.Brokers, c.Input, c.Run, c.Kind, c.Records, c.Records, c.Workers, c.Partitions,
			labelled(countByKey, "Sluice count per key, 10 MiB cache"))
	case "windowcount-nocache":
		r, err = sluice(ctx, c.Brokers, c.Input, c.Run, c.Kind, c.Records, c.Records, c.Workers, c.Partitions,
			labelled(windowCount, "Sluice 1m tumbling window count, cache off"), nocache)
		r.want = int64(c.Records)
	case "ssjoin":
		in := joinInputs{left: c.Left, right: c.Right, joinKeys: c.JoinKeys}
		r, err = sluice(ctx, c.Brokers, "", c.Run, c.Kind, 2*c.JoinRecords, 2*c.JoinRecords, c.Workers, c.Partitions, in.streamStream)
		r.want = c.Pairs
	default:
		return fmt.Errorf("-child: unknown workload %q", c.Kind)
	}
	if err != nil {
		return err
	}
	rss, err := peakRSS()
	if err != nil {
		return err
	}
	out, err := json.Marshal(childResult{Name: r.name, Records: r.records, ElapsedNs: int64(r.elapsed), CPUNs: int64(r.cpu),
		Written: r.written, Want: r.want, PeakRSS: rss, Dropped: r.dropped})
	if err != nil {
		return err
	}
	fmt.Printf("%s%s\n", resultPrefix, out)
	return nil
}

// peakRSS is this process's peak resident set size, VmHWM of
// /proc/self/status. Not getrusage's ru_maxrss: Go starts a child with
// clone(CLONE_VM|CLONE_VFORK), and Linux carries the parent's high-water
// mark over the exec into the child's ru_maxrss, so every child would
// report at least the parent's (with kfake, the broker's) peak.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: /proc/self/status %q: %w", strings.TrimSpace(line), err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/self/status")
}

// runTableChild runs one workload in a child process (this program again)
// and returns its result with the child's peak RSS.
func runTableChild(ctx context.Context, c childRun) (tableResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return tableResult{}, err
	}
	spec, err := json.Marshal(c)
	if err != nil {
		return tableResult{}, err
	}
	args := []string{"-brokers", strings.Join(c.Brokers, ","), "-child", string(spec)}
	if *commitStats {
		args = append(args, "-commits")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return tableResult{}, fmt.Errorf("workload %s in a child process: %w (output: %s)", c.Kind, err, strings.TrimSpace(stdout.String()))
	}
	var cr *childResult
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			cr = new(childResult)
			if err := json.Unmarshal([]byte(line), cr); err != nil {
				return tableResult{}, fmt.Errorf("workload %s: result %q: %w", c.Kind, line, err)
			}
		}
	}
	if cr == nil {
		return tableResult{}, fmt.Errorf("workload %s: the child printed no result (output: %s)", c.Kind, strings.TrimSpace(stdout.String()))
	}
	return tableResult{result: result{kind: c.Kind, name: cr.Name, records: cr.Records, elapsed: time.Duration(cr.ElapsedNs),
		cpu: time.Duration(cr.CPUNs), written: cr.Written, want: cr.Want, dropped: cr.Dropped}, rssBytes: cr.PeakRSS}, nil
}

// runTable prints the table of issue 15: each row's workload runs runs
// times in a process of its own, the rounds interleaved, and each column
// is the median of its runs.
func runTable(ctx context.Context, brokers []string, where, run string, n, workers, runs int, partitions int32, only string) error {
	selected := func(kind string) bool { return only == "" || strings.Contains(","+only+",", ","+kind+",") }
	input := run + "-input"
	var joins joinInputs
	joinRecords := flagInt("join-records")
	if selected("rawcount") || selected("count-nocache") || selected("count-cache") || selected("windowcount-nocache") {
		if err := connectors.CreateTopics(ctx, brokers, partitions, input); err != nil {
			return err
		}
		fmt.Printf("Producing %d records of ~100 B (10,000 keys) to %s on %s...\n", n, input, where)
		if _, err := produceInput(ctx, brokers, input, n); err != nil {
			return err
		}
	}
	if selected("ssjoin") {
		fmt.Printf("Producing the stream-stream join's inputs: two streams of %d records (%d keys)...\n", joinRecords, flagInt("join-keys"))
		var err error
		joins, err = produceStreamJoinInputs(ctx, brokers, run, partitions, joinRecords, flagInt("join-keys"))
		if err != nil {
			return err
		}
	}
	byKind := map[string][]tableResult{}
	for round := range runs {
		for _, row := range tableRows {
			if !selected(row) {
				continue
			}
			c := childRun{Kind: row, Brokers: brokers, Input: input, Run: fmt.Sprintf("%s-%d", run, round), Records: n,
				Workers: workers, Partitions: partitions, Left: joins.left, Right: joins.right, JoinKeys: joins.joinKeys,
				JoinRecords: joinRecords, Pairs: joins.pairs}
			r, err := runTableChild(ctx, c)
			if err != nil {
				return err
			}
			byKind[row] = append(byKind[row], r)
			fmt.Printf("  %-46s %9.0f records/s  %6.2f CPU-s/M  %5.0f MB", r.name, r.rate(), r.cpuPerMillion(), mb(r.rssBytes))
			if r.written > 0 {
				fmt.Printf("  (%d records written", r.written)
				if r.want > 0 {
					fmt.Printf(" of %d", r.want)
				}
				fmt.Print(")")
			}
			for _, reason := range slices.Sorted(maps.Keys(r.dropped)) {
				fmt.Printf("  %.0f dropped: %s", r.dropped[reason], reason)
			}
			fmt.Println()
		}
	}
	fmt.Printf("\nOn %s: %d records of ~100 B over 10k keys (the join: 2 × %d), %d partitions, %d worker(s), commit 1 s,\n",
		where, n, joinRecords, partitions, workers)
	fmt.Printf("at-least-once; each run in a process of its own; median of %d interleaved runs per column:\n", runs)
	fmt.Printf("%-46s %12s %10s %7s %10s %10s %10s\n", "workload", "records/s", "CPU-s/1M", "cores", "peak RSS", "rate/raw", "CPU/raw")
	var raw *tableMedian
	var rows []tableMedian
	for _, row := range tableRows {
		rs := byKind[row]
		if len(rs) == 0 {
			continue
		}
		m := medianOf(rs)
		rows = append(rows, m)
		if row == "rawcount" {
			raw = &m
		}
	}
	for _, m := range rows {
		ratio, cpu := "-", "-"
		if raw != nil {
			ratio, cpu = fmt.Sprintf("%.2f", m.rate/raw.rate), fmt.Sprintf("%.2f", m.cpuPerM/raw.cpuPerM)
		}
		fmt.Printf("%-46s %12.0f %10.2f %7.2f %7.0f MB %10s %10s\n", m.name, m.rate, m.cpuPerM, m.cores, mb(m.rss), ratio, cpu)
	}
	fmt.Println("\nrecords/s counts input records (the join: the records of both streams); CPU-s/1M is the workload")
	fmt.Println("process's user+system CPU per million input records, the broker's not included (each workload runs")
	fmt.Println("in a child process, an embedded broker in this one); cores is CPU time over elapsed time, the cores the")
	fmt.Println("workload kept busy (below 1 with one worker: it waited, or the machine was busy); peak RSS is the")
	fmt.Println("child's maximum resident set (VmHWM).")
	fmt.Println("Issue 15's targets, count per key cache off: rate/raw >= 0.5 and CPU-s/1M <= 1.2.")
	return nil
}

// tableMedian is a row of the table: the median of each column over the
// row's runs.
type tableMedian struct {
	name    string
	rate    float64
	cpuPerM float64
	cores   float64 // CPU time over elapsed time
	rss     int64
}

func medianOf(rs []tableResult) tableMedian {
	rates, cpus, cores, rsss := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		rates[i], cpus[i], cores[i], rsss[i] = r.rate(), r.cpuPerMillion(), r.cpu.Seconds()/r.elapsed.Seconds(), r.rssBytes
	}
	slices.Sort(rates)
	slices.Sort(cpus)
	slices.Sort(cores)
	slices.Sort(rsss)
	m := len(rs) / 2
	return tableMedian{name: rs[0].name, rate: rates[m], cpuPerM: cpus[m], cores: cores[m], rss: rsss[m]}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// flagInt is the value of an int flag that run defines.
func flagInt(name string) int {
	f := flag.Lookup(name)
	if f == nil {
		panic("bench: no flag -" + name)
	}
	v, err := strconv.Atoi(f.Value.String())
	if err != nil {
		panic(fmt.Sprintf("bench: flag -%s: %v", name, err))
	}
	return v
}

// droppedByReason sums the records the app's tasks dropped on purpose
// (sluice_dropped_records_total) by reason.
func droppedByReason(reg *prometheus.Registry) map[string]float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return nil
	}
	var by map[string]float64
	for _, mf := range mfs {
		if mf.GetName() != "sluice_dropped_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && m.GetCounter().GetValue() > 0 {
					if by == nil {
						by = map[string]float64{}
					}
					by[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return by
}
