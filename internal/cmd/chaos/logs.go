package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// start is one run of one worker process, as its log tells it.
type start struct {
	worker, inc      int
	firstProcessedMs int64 // -1: never processed
	restored         int64 // changelog records restored into its stores
}

// workerLogs is what the controller reads back from the workers' logs.
type workerLogs struct {
	starts  map[[2]int]*start
	fencing []string // lines about fencing, aborts and rollbacks
	exits   []string // Run returning an error
}

// fencingRE matches the log lines of a worker that learns that it was
// fenced or that its transaction was aborted.
var fencingRE = regexp.MustCompile(`(?i)fenc|abort|roll(ed)? ?back|reviv|illegal.?generation|unknown.?member|producer.?epoch|partitions lost`)

func parseLogs(procs []*proc) *workerLogs {
	wl := &workerLogs{starts: map[[2]int]*start{}}
	for _, p := range procs {
		f, err := os.Open(p.logf)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			w, inc := num(m["worker"]), num(m["inc"])
			key := [2]int{int(w), int(inc)}
			s := wl.starts[key]
			if s == nil {
				s = &start{worker: int(w), inc: int(inc), firstProcessedMs: -1}
				wl.starts[key] = s
			}
			msg, _ := m["msg"].(string)
			level, _ := m["level"].(string)
			switch msg {
			case msgFirstProcessed:
				s.firstProcessedMs = int64(num(m["since_start_ms"]))
			case "restored store":
				s.restored += int64(num(m["records"]))
			case msgWorkerExit:
				if e, ok := m["err"].(string); ok && e != "" {
					wl.exits = append(wl.exits, fmt.Sprintf("worker %d start %d: %s", key[0], key[1], e))
				}
			}
			if level != "INFO" && level != "DEBUG" && fencingRE.MatchString(msgAndErr(m)) {
				wl.fencing = append(wl.fencing, fmt.Sprintf("worker %d start %d: %s: %s %s", key[0], key[1], level, msg, errText(m)))
			}
		}
		f.Close()
	}
	return wl
}

// msgAndErr is a log line's message and error, the text the fencing
// patterns are matched against (not the whole line: names of topics and
// applications could match).
func msgAndErr(m map[string]any) string {
	msg, _ := m["msg"].(string)
	e, _ := m["err"].(string)
	return msg + " " + e
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func errText(m map[string]any) string {
	if e, ok := m["err"].(string); ok {
		return "(" + e + ")"
	}
	return ""
}

type dist struct {
	n                int
	min, median, max float64
	sum              float64
}

func distOf(xs []float64) dist {
	if len(xs) == 0 {
		return dist{}
	}
	slices.Sort(xs)
	d := dist{n: len(xs), min: xs[0], median: xs[len(xs)/2], max: xs[len(xs)-1]}
	for _, x := range xs {
		d.sum += x
	}
	return d
}

func printSummary(c controllerConfig, brokerKind string, rep *report, st *runStats, wl *workerLogs, procs []*proc) {
	g := "at-least-once"
	if c.guarantee == "eos" {
		g = "exactly-once"
	}
	fmt.Printf("\n== chaos summary: %s on %s, seed %d ==\n", g, brokerKind, c.seed)
	row := func(name string, format string, args ...any) {
		fmt.Printf("  %-40s %s\n", name, fmt.Sprintf(format, args...))
	}
	row("input records (N)", "%d (produced %d)", rep.records, st.produced)
	row("keys (K)", "%d", rep.keys)
	row("instances", "%d", c.instances)
	row("kill -9", "%d (restarted after 0-3 s)", st.kills)
	zs := []string{}
	for k, d := range st.zombieIncs {
		zs = append(zs, fmt.Sprintf("w%d %v", k[0], d))
	}
	slices.Sort(zs)
	row("zombies (SIGSTOP, SIGCONT)", "%d %v (session timeout %v)", st.zombies, zs, c.session)
	downs := []string{}
	for _, d := range st.brokerDown {
		downs = append(downs, d.Round(100*time.Millisecond).String())
	}
	row("broker restarts", "%d (restart took %v)", st.brokerRestarts, downs)
	if st.skipped > 0 {
		row("faults skipped (no worker up)", "%d", st.skipped)
	}
	exits := 0
	for _, p := range procs {
		exits += len(p.exits)
	}
	row("worker exits of their own (restarted)", "%d", exits)
	row("output records (read_committed)", "%d", rep.outputs)
	row("lost", "%d%s", rep.lost, bad(rep.lost))
	if rep.exactlyOnce {
		row("duplicated", "%d%s", rep.duplicated, bad(rep.duplicated))
		row("out of order", "%d%s", rep.outOfOrder, bad(rep.outOfOrder))
	} else {
		row("over-counted (value > n_k)", "%d%s", rep.overCount, bad(rep.overCount))
		row("keys with a wrong final count", "%d%s", rep.wrongFinal, bad(int64(rep.wrongFinal)))
		row("repeated updates (allowed)", "%d (%.2f%% of the output)", rep.repeats, 100*float64(rep.repeats)/float64(max(rep.outputs, 1)))
	}
	if rep.exactlyOnce && rep.overCount > 0 {
		row("over-counted (value > n_k)", "%d%s", rep.overCount, bad(rep.overCount))
	}
	if rep.unknownKey+rep.malformed > 0 {
		row("unknown keys / malformed values", "%d / %d VIOLATION", rep.unknownKey, rep.malformed)
	}
	row("wall time", "%v (producing %v, settling after it %v)", st.wall.Round(100*time.Millisecond),
		st.produceTime.Round(100*time.Millisecond), st.settleTime.Round(100*time.Millisecond))

	var restored, firsts, allRestored []float64
	for key, s := range wl.starts {
		allRestored = append(allRestored, float64(s.restored))
		if _, ok := st.killedAt[key]; !ok {
			continue
		}
		restored = append(restored, float64(s.restored))
		if s.firstProcessedMs >= 0 {
			firsts = append(firsts, float64(s.firstProcessedMs))
		}
	}
	r, f, a := distOf(restored), distOf(firsts), distOf(allRestored)
	row("restore after kill -9 (records/start)", "median %.0f, max %.0f over %d restarts (all starts: %.0f in all)", r.median, r.max, r.n, a.sum)
	row("restart → first processed record", "median %.2fs, max %.2fs (%d of %d restarts processed)", f.median/1000, f.max/1000, f.n, r.n)
	row("fencing/abort log lines", "%d", len(wl.fencing))
	for i, l := range wl.fencing {
		if i == 12 {
			fmt.Printf("    ... %d more\n", len(wl.fencing)-i)
			break
		}
		fmt.Printf("    %s\n", truncate(l, 220))
	}
	for _, e := range wl.exits {
		fmt.Printf("    exit: %s\n", truncate(e, 220))
	}
	if v := rep.violations(); v > 0 {
		fmt.Printf("  RESULT: FAIL, %d violations; examples:\n", v)
		for _, e := range rep.examples {
			fmt.Println("    " + e)
		}
		fmt.Printf("  logs: %s\n", c.dir)
	} else {
		fmt.Println("  RESULT: OK")
	}
}

func bad(v int64) string {
	if v > 0 {
		return "  VIOLATION"
	}
	return ""
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// logMatchesFn reports whether a line of the worker's log from its start
// inc, logged at or after since, satisfies match.
func logMatchesFn(path string, inc int, since time.Time, match func(map[string]any, string) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || int(num(m["inc"])) != inc {
			continue
		}
		if !since.IsZero() {
			ts, _ := m["time"].(string)
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || at.Before(since) {
				continue
			}
		}
		if match(m, sc.Text()) {
			return true
		}
	}
	return false
}

// lastLines returns the worker log's last n lines other than the periodic
// metrics and Pebble's.
func lastLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] == msgWorkerStats || m["pebble"] != nil {
			continue
		}
		out = append(out, sc.Text())
		if len(out) > n {
			out = out[1:]
		}
	}
	return out
}
