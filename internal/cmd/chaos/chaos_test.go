package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// workerEnv makes the test binary, started again by the test as a worker
// process, run the chaos worker instead of the tests.
const workerEnv = "SLUICE_CHAOS_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCheck(t *testing.T) {
	inputs := map[string]int64{"a": 3, "b": 2}
	cases := []struct {
		name    string
		eos     bool
		out     map[string][]int64
		want    report
		wantBad bool
	}{
		{"exact", true, map[string][]int64{"a": {1, 2, 3}, "b": {1, 2}}, report{}, false},
		{"eos lost", true, map[string][]int64{"a": {1, 3}, "b": {1, 2}}, report{lost: 1}, true},
		{"eos duplicated", true, map[string][]int64{"a": {1, 2, 2, 3}, "b": {1, 2}}, report{duplicated: 1, outOfOrder: 0}, true},
		{"eos out of order", true, map[string][]int64{"a": {1, 3, 2}, "b": {1, 2}}, report{outOfOrder: 1}, true},
		{"eos over-counted", true, map[string][]int64{"a": {1, 2, 3, 4}, "b": {1, 2}}, report{overCount: 1}, true},
		{"alos repeats allowed", false, map[string][]int64{"a": {1, 2, 1, 2, 3}, "b": {1, 2, 2}}, report{repeats: 3}, false},
		{"alos lost", false, map[string][]int64{"a": {1, 3}, "b": {1, 2}}, report{lost: 1}, true},
		{"alos wrong final", false, map[string][]int64{"a": {1, 2, 3, 2}, "b": {1, 2}}, report{repeats: 1, wrongFinal: 1}, true},
		{"alos over-counted", false, map[string][]int64{"a": {1, 2, 3, 4, 3}, "b": {1, 2}}, report{overCount: 1, repeats: 1}, true},
		{"unknown key", true, map[string][]int64{"a": {1, 2, 3}, "b": {1, 2}, "c": {1}}, report{unknownKey: 1}, true},
		{"key missing", false, map[string][]int64{"a": {1, 2, 3}}, report{lost: 2, wrongFinal: 1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(c.eos, inputs, c.out, 0)
			got := [7]int64{r.lost, r.duplicated, r.outOfOrder, r.repeats, r.overCount, int64(r.wrongFinal), r.unknownKey}
			want := [7]int64{c.want.lost, c.want.duplicated, c.want.outOfOrder, c.want.repeats, c.want.overCount, int64(c.want.wrongFinal), c.want.unknownKey}
			if got != want {
				t.Errorf("lost, duplicated, out of order, repeats, over-counted, wrong finals, unknown = %v, want %v (examples %q)", got, want, r.examples)
			}
			if (r.violations() > 0) != c.wantBad {
				t.Errorf("violations = %d, want any: %v", r.violations(), c.wantBad)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	span := 100 * time.Second
	fs := schedule(3, 20, 2, 1, span, 8*time.Second, 14*time.Second)
	if len(fs) != 23 {
		t.Fatalf("%d faults, want 23", len(fs))
	}
	count := map[string]int{}
	zombies := []time.Duration{}
	for i, f := range fs {
		count[f.kind]++
		if f.at < span/10 || f.at > span*9/10 {
			t.Errorf("fault %d at %v: outside 10%%..90%% of %v", i, f.at, span)
		}
		if i > 0 && f.at <= fs[i-1].at {
			t.Errorf("fault %d at %v: not after the one before (%v)", i, f.at, fs[i-1].at)
		}
		switch f.kind {
		case "kill":
			if f.delay < 0 || f.delay > 3*time.Second {
				t.Errorf("kill %d: restart delay %v outside 0..3s", i, f.delay)
			}
		case "zombie":
			zombies = append(zombies, f.delay)
		}
	}
	if count["kill"] != 20 || count["zombie"] != 2 || count["broker"] != 1 {
		t.Errorf("faults %v, want 20 kills, 2 zombies, 1 broker restart", count)
	}
	if len(zombies) == 2 && zombies[0]+zombies[1] != 22*time.Second {
		t.Errorf("zombie pauses %v, want one of 8s and one of 14s", zombies)
	}
	again := schedule(3, 20, 2, 1, span, 8*time.Second, 14*time.Second)
	for i := range fs {
		if fs[i] != again[i] {
			t.Fatalf("the schedule is not determined by its seed: fault %d %v then %v", i, fs[i], again[i])
		}
	}
}

// TestZombieFenced pauses one of two exactly-once workers (SIGSTOP) past
// its session timeout and its transaction timeout, waits until the other
// took over its tasks and committed on each of the input's partitions,
// resumes it (SIGCONT) and checks that nothing the zombie wrote reached a
// read_committed consumer (the output is, per key, 1..n exactly once, in
// order) and that the zombie logged that it was fenced or that its
// transaction was aborted, then rejoined or exited with an error.
func TestZombieFenced(t *testing.T) {
	c := kafkatest.New(t)
	in, out := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	const partitions = 6
	c.Create(t, partitions, in, out)
	t.Setenv(workerEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	app := kafkatest.Topic(t, "app")
	cfg := workerConfig{brokers: strings.Join(c.Brokers, ","), app: app, in: in, out: out, guarantee: "eos",
		session: 6 * time.Second, commit: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fatal := func(err error) { t.Error(err); cancel() }
	procs := []*proc{newProc(1, cfg, exe, dir, fatal), newProc(2, cfg, exe, dir, fatal)}
	var logMu sync.Mutex
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		t.Logf(format, args...)
	}
	for _, p := range procs {
		go p.supervise(ctx, logf)
	}
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		for _, p := range procs {
			p.stop(40 * time.Second)
		}
	}
	defer func() {
		stopAll()
		if t.Failed() {
			for _, p := range procs {
				if b, err := os.ReadFile(p.logf); err == nil {
					t.Logf("log of worker %d:\n%s", p.id, tail(string(b), 60))
				}
			}
		}
	}()

	// The input: 40 keys, 150 records/s for 40 s, so that records arrive
	// before, during and after the pause.
	const records, keys = 6000, 40
	st := &runStats{}
	prodDone := make(chan error, 1)
	go func() { prodDone <- produce(ctx, c.Brokers, in, records, keys, 150, st) }()

	waitFor(t, 60*time.Second, "both workers processed a record", func() bool {
		return logHas(procs[0].logf, 1, msgFirstProcessed, time.Time{}) && logHas(procs[1].logf, 1, msgFirstProcessed, time.Time{})
	})
	zombie := procs[0]
	inc, ok := zombie.pause()
	if !ok {
		t.Fatal("worker 1 is not running")
	}
	paused := time.Now()
	const pause = 13 * time.Second // past the session (6s) and transaction (10s) timeouts
	adm := kadm.NewClient(c.Client(t))
	before := committedOffsets(t, adm, app, in)
	// The other worker takes over the zombie's tasks and commits on every
	// partition while the zombie sleeps.
	waitFor(t, pause+20*time.Second, "worker 2 committing on every partition", func() bool {
		now := committedOffsets(t, adm, app, in)
		for p := range int32(partitions) {
			if now[p] <= before[p] {
				return false
			}
		}
		return true
	})
	if d := time.Until(paused.Add(pause)); d > 0 {
		time.Sleep(d) // the pause is the fault itself, not a synchronisation
	}
	zombie.resume(inc)
	resumed := time.Now()
	t.Logf("worker 1 paused for %v, resumed", resumed.Sub(paused).Round(time.Millisecond))

	// It learns that it was fenced or that its transaction was aborted,
	// then rejoins (it logs an assignment) or exits with an error.
	waitFor(t, 60*time.Second, "the zombie logging its fencing or abort", func() bool {
		return logMatchesFn(zombie.logf, inc, resumed, func(m map[string]any, _ string) bool {
			level, _ := m["level"].(string)
			return level != "INFO" && zombieRE.MatchString(msgAndErr(m))
		})
	})
	waitFor(t, 60*time.Second, "the zombie rejoining or exiting with an error", func() bool {
		return logHas(zombie.logf, inc, "partitions assigned", resumed) || logMatchesFn(zombie.logf, inc, resumed,
			func(m map[string]any, _ string) bool {
				e, _ := m["err"].(string)
				return m["msg"] == msgWorkerExit && e != ""
			})
	})
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	if err := settle(ctx, c.Brokers, app, in, out, procs, 3*time.Minute, logf); err != nil {
		t.Fatal(err)
	}
	stopAll()
	vctx, vcancel := context.WithTimeout(ctx, time.Minute)
	defer vcancel()
	rep, err := verify(vctx, c.Brokers, in, out, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.records != records {
		t.Errorf("%d input records, want %d", rep.records, records)
	}
	if v := rep.violations(); v > 0 {
		t.Errorf("%d violations: lost %d, duplicated %d, out of order %d, over-counted %d; e.g. %q",
			v, rep.lost, rep.duplicated, rep.outOfOrder, rep.overCount, rep.examples)
	}
	for _, l := range parseLogs(procs).fencing {
		t.Log(l)
	}
}

// zombieRE matches what an exactly-once zombie must log on waking: that it
// was fenced, that its transaction was aborted and its tasks' state rolled
// back (revived), or that it lost its partitions (the group told it that
// its membership ended: it drops the tasks' uncommitted state; on real
// Kafka 4.3.1 this is how a zombie past its session timeout learns it).
var zombieRE = regexp.MustCompile(`(?i)fenc|abort|roll(ed)? ?back|reviv|partitions lost`)

func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[int32]int64{}
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return out
	}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logHas(path string, inc int, msg string, since time.Time) bool {
	return logMatchesFn(path, inc, since, func(m map[string]any, _ string) bool { return m["msg"] == msg })
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
