// Command tracewait reads an execution trace of a Sluice run (the bench's
// -trace) and prints where its worker goroutines spent the run: running,
// waiting for a CPU, and waiting on what; and, while a worker waited for
// work, what the poll loop was waiting on (a commit's flush, the local
// state's apply, the offset commit, a poll). go tool trace shows each
// goroutine's own breakdown; the second view, which joins two
// goroutines' timelines, is what this adds. docs/performance.md ("Where
// the worker waits") has what it found.
//
//	cd internal/cmd/bench/tracewait && go run . TRACE
//
// It is a module of its own so that the library does not depend on
// golang.org/x/exp.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tracewait TRACE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "tracewait:", err)
		os.Exit(1)
	}
}

// goroutine is what is known of one goroutine.
type goroutine struct {
	class    string // the function it started in
	since    trace.Time
	waitOn   string // the stack it waits in, while it waits
	running  trace.Time
	runnable trace.Time
	waits    map[string]trace.Time
}

const (
	workerFunc = "github.com/sluicehq/sluice/runtime.(*App).worker"
	loopFunc   = "github.com/sluicehq/sluice/runtime.(*App).loop"
)

func run(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return err
	}
	gs := map[trace.GoID]*goroutine{}
	var first, last trace.Time
	loop := trace.NoGoroutine
	loopState, loopSince := "", trace.Time(0)
	// idle is the workers waiting for work; idleBy the time they did,
	// by what the loop was waiting on meanwhile.
	idle := map[trace.GoID]trace.Time{}
	idleBy := map[string]trace.Time{}
	account := func(now trace.Time) {
		for _, since := range idle {
			s := max(since, loopSince)
			if loopSince > 0 && now > s {
				idleBy[loopState] += now - s
			}
		}
	}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id, now := st.Resource.Goroutine(), ev.Time()
		g := gs[id]
		if g == nil {
			g = &goroutine{since: now, waits: map[string]trace.Time{}, class: outermost(st.Stack)}
			gs[id] = g
		}
		if g.class == "" {
			g.class = outermost(st.Stack)
		}
		if loop == trace.NoGoroutine && hasFrame(st.Stack, loopFunc) {
			loop = id
		}
		from, to := st.Goroutine()
		switch d := now - g.since; from {
		case trace.GoRunning:
			g.running += d
		case trace.GoRunnable:
			g.runnable += d
		case trace.GoWaiting:
			g.waits[g.waitOn] += d
		}
		g.since = now
		if to == trace.GoWaiting {
			g.waitOn = st.Reason + " @ " + frames(st.Stack, 5)
		}
		if g.class == workerFunc {
			waiting := to == trace.GoWaiting && strings.HasPrefix(frames(st.Stack, 2), "runtime.chanrecv2 < runtime.(*App).worker")
			if _, was := idle[id]; was != waiting {
				account(now)
				if waiting {
					idle[id] = now
				} else {
					delete(idle, id)
				}
			}
		}
		if id == loop {
			account(now)
			for w := range idle {
				idle[w] = now
			}
			loopState, loopSince = "running, or waiting for a CPU", now
			if to == trace.GoWaiting {
				loopState = g.waitOn
			}
		}
	}
	fmt.Printf("trace: %.3f s\n", seconds(last-first))
	classes := map[string]*goroutine{}
	counts := map[string]int{}
	for _, g := range gs {
		c := classes[g.class]
		if c == nil {
			c = &goroutine{class: g.class, waits: map[string]trace.Time{}}
			classes[g.class] = c
		}
		counts[g.class]++
		c.running += g.running
		c.runnable += g.runnable
		for k, v := range g.waits {
			c.waits[k] += v
		}
	}
	var names []string
	for name := range classes {
		if strings.Contains(name, "sluicehq/sluice/runtime.") {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return classes[names[i]].running > classes[names[j]].running })
	for _, name := range names {
		c := classes[name]
		fmt.Printf("\n%s (%d goroutines): running %.3f s, runnable (waiting for a CPU) %.3f s\n",
			short(name), counts[name], seconds(c.running), seconds(c.runnable))
		for i, w := range sorted(c.waits) {
			if i == 6 || w.t < trace.Time(1e6) {
				break
			}
			fmt.Printf("  waiting %.3f s  %s\n", seconds(w.t), w.key)
		}
	}
	fmt.Printf("\nworkers waiting for work, by what the poll loop was doing:\n")
	for i, w := range sorted(idleBy) {
		if i == 10 || w.t < trace.Time(1e6) {
			break
		}
		fmt.Printf("  %.3f s  %s\n", seconds(w.t), w.key)
	}
	return nil
}

type wait struct {
	key string
	t   trace.Time
}

func sorted(m map[string]trace.Time) []wait {
	ws := make([]wait, 0, len(m))
	for k, t := range m {
		ws = append(ws, wait{k, t})
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].t > ws[j].t })
	return ws
}

func seconds(t trace.Time) float64 { return float64(t) / 1e9 }

// frames is the innermost n frames of st, shortened, innermost first.
func frames(st trace.Stack, n int) string {
	var fs []string
	for f := range st.Frames() {
		fs = append(fs, short(f.Func))
		if len(fs) == n {
			break
		}
	}
	return strings.Join(fs, " < ")
}

// outermost is the function st starts in.
func outermost(st trace.Stack) string {
	var last string
	for f := range st.Frames() {
		last = f.Func
	}
	return last
}

func hasFrame(st trace.Stack, fn string) bool {
	for f := range st.Frames() {
		if f.Func == fn {
			return true
		}
	}
	return false
}

func short(fn string) string {
	for _, p := range []string{"github.com/sluicehq/sluice/", "github.com/twmb/franz-go/pkg/", "github.com/cockroachdb/pebble/v2/"} {
		fn = strings.ReplaceAll(fn, p, "")
	}
	return fn
}
