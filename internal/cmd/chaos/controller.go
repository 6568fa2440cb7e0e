package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

type controllerConfig struct {
	brokerKind  string
	brokers     string
	kafkaScript string
	kafkaDir    string
	dir         string
	keep        bool
	guarantee   string
	records     int
	keys        int
	instances   int
	partitions  int
	kills       int
	zombies     int
	brokerRest  int
	seed        uint64
	duration    time.Duration
	session     time.Duration
	zombieShort time.Duration
	zombieLong  time.Duration
	commit      time.Duration
	settle      time.Duration
}

func controllerMain(args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var c controllerConfig
	fs.StringVar(&c.brokerKind, "broker", "kfake", "kfake (in process, restarted by closing and reopening it) or real (-brokers, restarted with -kafka-script restart -kafka-dir)")
	fs.StringVar(&c.brokers, "brokers", "", "seed brokers of the real broker")
	fs.StringVar(&c.kafkaScript, "kafka-script", "scripts/kafka.sh", "the script that restarts the real broker")
	fs.StringVar(&c.kafkaDir, "kafka-dir", "", "the real broker's run directory (kafka.sh run DIR)")
	fs.StringVar(&c.dir, "dir", "", "directory of the workers' state and logs (and kfake's data); default a new temporary directory")
	fs.BoolVar(&c.keep, "keep", false, "keep -dir after a successful run (it is always kept after a failure)")
	fs.StringVar(&c.guarantee, "guarantee", "eos", "processing guarantee: eos or alos")
	fs.IntVar(&c.records, "records", 200_000, "input records (N)")
	fs.IntVar(&c.keys, "keys", 1000, "keys (K), records round-robin over them")
	fs.IntVar(&c.instances, "instances", 3, "worker processes")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of the input and output topics")
	fs.IntVar(&c.kills, "kills", 5, "kill -9 of a random worker (F)")
	fs.IntVar(&c.zombies, "zombies", 2, "workers paused with SIGSTOP, then resumed (Z); they alternate between -zombie-short and -zombie-long")
	fs.IntVar(&c.brokerRest, "broker-restarts", 1, "broker restarts")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the fault schedule")
	fs.DurationVar(&c.duration, "duration", 0, "how long producing the input takes (the faults happen within it); 0: 5s per fault + 15s")
	fs.DurationVar(&c.session, "session", 6*time.Second, "the workers' session timeout")
	fs.DurationVar(&c.zombieShort, "zombie-short", 8*time.Second, "pause past the session timeout, inside the transaction timeout (10s)")
	fs.DurationVar(&c.zombieLong, "zombie-long", 14*time.Second, "pause past the session and the transaction timeout")
	fs.DurationVar(&c.commit, "commit", 100*time.Millisecond, "the workers' commit interval")
	fs.DurationVar(&c.settle, "settle", 10*time.Minute, "bound on the wait for the workers to commit the whole input after the faults")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := parseGuarantee(c.guarantee); err != nil {
		return err
	}
	if c.records < 1 || c.keys < 1 || c.instances < 1 {
		return errors.New("-records, -keys and -instances must be positive")
	}
	rep, err := runChaos(c)
	if err != nil {
		return err
	}
	if v := rep.violations(); v > 0 {
		return fmt.Errorf("%d violations (logs in %s)", v, c.dir)
	}
	return nil
}

// fault is one event of the schedule.
type fault struct {
	at    time.Duration // since the start of producing
	kind  string        // kill, zombie, broker
	delay time.Duration // kill: restart delay; zombie: pause
}

// schedule spreads the faults over 10%..90% of span in a seeded random
// order.
func schedule(seed uint64, kills, zombies, brokerRestarts int, span, short, long time.Duration) []fault {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var fs []fault
	for range kills {
		fs = append(fs, fault{kind: "kill", delay: time.Duration(rng.IntN(3001)) * time.Millisecond})
	}
	for i := range zombies {
		d := short
		if i%2 == 1 {
			d = long
		}
		fs = append(fs, fault{kind: "zombie", delay: d})
	}
	for range brokerRestarts {
		fs = append(fs, fault{kind: "broker"})
	}
	rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
	for i := range fs {
		slot := span * 8 / 10 / time.Duration(len(fs))
		fs[i].at = span/10 + time.Duration(i)*slot + time.Duration(rng.Int64N(int64(slot)/2+1))
	}
	return fs
}

// runStats are the controller's own figures.
type runStats struct {
	kills, zombies, brokerRestarts int
	skipped                        int
	brokerDown                     []time.Duration
	killedAt                       map[[2]int]time.Time // (worker, incarnation started after the kill) → kill time
	zombieIncs                     map[[2]int]time.Duration
	produced                       int64
	produceErrs                    int64
	produceTime                    time.Duration
	settleTime                     time.Duration
	wall                           time.Duration
}

func runChaos(c controllerConfig) (*report, error) {
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Printf("[%7.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "sluice-chaos-")
		if err != nil {
			return nil, err
		}
		c.dir = d
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}

	var br broker
	switch c.brokerKind {
	case "kfake":
		kb, err := startKfake(filepath.Join(c.dir, "kfake"))
		if err != nil {
			return nil, err
		}
		br = kb
	case "real":
		if c.brokers == "" {
			return nil, errors.New("-broker real needs -brokers")
		}
		br = &realBroker{brokers: splitBrokers(c.brokers), script: c.kafkaScript, dir: c.kafkaDir}
	default:
		return nil, fmt.Errorf("-broker %q: want kfake or real", c.brokerKind)
	}
	defer func() { br.close() }()
	brokers := br.addrs()

	stamp := time.Now().UnixNano()
	in, out := fmt.Sprintf("chaos-in-%d", stamp), fmt.Sprintf("chaos-out-%d", stamp)
	app := fmt.Sprintf("chaos-%s-%d", c.guarantee, stamp)
	if err := connectors.CreateTopics(ctx, brokers, int32(c.partitions), in, out); err != nil {
		return nil, err
	}
	span := c.duration
	if span == 0 {
		span = time.Duration(5*(c.kills+c.zombies+c.brokerRest))*time.Second + 15*time.Second
	}
	rate := float64(c.records) / span.Seconds()
	faults := schedule(c.seed, c.kills, c.zombies, c.brokerRest, span, c.zombieShort, c.zombieLong)
	logf("chaos: %s on %s, %d records over %d keys at %.0f/s (%v), %d workers, %d faults (seed %d), dir %s",
		c.guarantee, br.kind(), c.records, c.keys, rate, span, c.instances, len(faults), c.seed, c.dir)

	wcfg := workerConfig{brokers: strings.Join(brokers, ","), app: app, in: in, out: out, guarantee: c.guarantee,
		session: c.session, commit: c.commit}
	var fatalMu sync.Mutex
	var fatalErr error
	fatal := func(err error) {
		fatalMu.Lock()
		defer fatalMu.Unlock()
		if fatalErr == nil {
			fatalErr = err
		}
		cancel()
	}
	// failed is the error that stopped the run, if a worker could not run,
	// else err.
	failed := func(err error) error {
		fatalMu.Lock()
		defer fatalMu.Unlock()
		if fatalErr != nil {
			return fatalErr
		}
		return err
	}
	procs := make([]*proc, c.instances)
	for i := range procs {
		procs[i] = newProc(i+1, wcfg, exe, c.dir, fatal)
		go procs[i].supervise(ctx, logf)
	}
	stopAll := func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(40 * time.Second) }()
		}
		wg.Wait()
	}
	defer stopAll()

	st := &runStats{killedAt: map[[2]int]time.Time{}, zombieIncs: map[[2]int]time.Duration{}}
	prodStart := time.Now()
	prodDone := make(chan error, 1)
	go func() { prodDone <- produce(ctx, brokers, in, c.records, c.keys, rate, st) }()

	var zombiesWG sync.WaitGroup
	rng := rand.New(rand.NewPCG(c.seed, 7))
	pick := func() *proc {
		var up []*proc
		for _, p := range procs {
			if p.up() {
				up = append(up, p)
			}
		}
		if len(up) == 0 {
			return nil
		}
		return up[rng.IntN(len(up))]
	}
	for _, f := range faults {
		select {
		case <-time.After(time.Until(prodStart.Add(f.at))):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		switch f.kind {
		case "kill":
			p := pick()
			if p == nil {
				st.skipped++
				logf("kill skipped: no worker up")
				continue
			}
			if inc, ok := p.kill(f.delay); ok {
				st.kills++
				st.killedAt[[2]int{p.id, inc + 1}] = time.Now()
				logf("kill -9 worker %d (start %d), restart in %v", p.id, inc, f.delay)
			} else {
				st.skipped++
			}
		case "zombie":
			p := pick()
			if p == nil {
				st.skipped++
				logf("zombie skipped: no worker up")
				continue
			}
			if inc, ok := p.pause(); ok {
				st.zombies++
				st.zombieIncs[[2]int{p.id, inc}] = f.delay
				logf("SIGSTOP worker %d (start %d) for %v", p.id, inc, f.delay)
				zombiesWG.Add(1)
				go func() {
					defer zombiesWG.Done()
					time.Sleep(f.delay)
					p.resume(inc)
					logf("SIGCONT worker %d (start %d)", p.id, inc)
				}()
			} else {
				st.skipped++
			}
		case "broker":
			logf("restarting the broker")
			t := time.Now()
			if err := br.restart(ctx); err != nil {
				return nil, failed(fmt.Errorf("broker restart: %w", err))
			}
			st.brokerRestarts++
			st.brokerDown = append(st.brokerDown, time.Since(t))
			logf("broker back after %v", time.Since(t).Round(time.Millisecond))
		}
	}
	if err := <-prodDone; err != nil {
		return nil, failed(fmt.Errorf("producing the input: %w", err))
	}
	st.produceTime = time.Since(prodStart)
	logf("produced %d records in %v (%d produce errors retried by the client)", st.produced, st.produceTime.Round(time.Millisecond), st.produceErrs)
	zombiesWG.Wait()

	settleStart := time.Now()
	if err := settle(ctx, brokers, app, in, out, procs, c.settle, logf); err != nil {
		for _, p := range procs {
			for _, l := range lastLines(p.logf, 4) {
				logf("worker %d: %s", p.id, truncate(l, 400))
			}
		}
		return nil, failed(err)
	}
	st.settleTime = time.Since(settleStart)
	logf("settled: the group committed the whole input, the output has no open transaction")
	stopAll()
	st.wall = time.Since(began)

	vctx, vcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer vcancel()
	rep, err := verify(vctx, brokers, in, out, c.guarantee == "eos")
	if err != nil {
		return nil, err
	}
	logs := parseLogs(procs)
	printSummary(c, br.kind(), rep, st, logs, procs)
	if rep.violations() == 0 && !c.keep {
		os.RemoveAll(c.dir)
	}
	return rep, nil
}

// produce writes n records round-robin over keys at rate records/s: record
// i has key k<i mod keys> and value i.
func produce(ctx context.Context, brokers []string, topic string, n, keys int, rate float64, st *runStats) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	var mu sync.Mutex
	var perr error
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	i := 0
	for i < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		target := min(n, int(time.Since(start).Seconds()*rate)+1)
		for ; i < target; i++ {
			r := &kgo.Record{Key: []byte(keyName(i % keys)), Value: []byte(strconv.Itoa(i))}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					st.produceErrs++
					if perr == nil {
						perr = fmt.Errorf("produce to %s: %w", topic, err)
					}
					return
				}
				st.produced++
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return perr
}

func keyName(k int) string { return fmt.Sprintf("k%05d", k) }

// stallBound is how long settle waits without progress (the same status:
// the same input records left to commit, the same worker down) before it
// gives up.
const stallBound = 2 * time.Minute

// settle waits until every worker is up, the group's committed offsets
// reach the input's end offsets and the output's last stable offsets equal
// its high watermarks (no open transaction); it fails after bound, or
// after stallBound without progress.
func settle(ctx context.Context, brokers []string, group, in, out string, procs []*proc, bound time.Duration, logf func(string, ...any)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(bound)
	var lastLog, since time.Time
	var last string
	for {
		done, status := settled(ctx, adm, group, in, out, procs)
		if done {
			return nil
		}
		if status != last {
			last, since = status, time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled after %v: %s", bound, status)
		}
		if time.Since(since) > stallBound {
			return fmt.Errorf("no progress for %v: %s (the workers' logs tell why)", stallBound, status)
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			logf("waiting: %s", status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func settled(ctx context.Context, adm *kadm.Client, group, in, out string, procs []*proc) (bool, string) {
	for _, p := range procs {
		if !p.up() {
			return false, fmt.Sprintf("worker %d is not up", p.id)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(qctx, in)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Sprintf("list end offsets of %s: %v", in, err)
	}
	committed, err := adm.FetchOffsets(qctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return false, fmt.Sprintf("fetch the committed offsets of group %s: %v", group, err)
	}
	var behind int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(in, o.Partition)
		at := int64(0)
		if ok {
			at = c.At
		}
		behind += max(0, o.Offset-at)
	})
	if behind > 0 {
		return false, fmt.Sprintf("the group has %d input records left to commit", behind)
	}
	hwm, err := adm.ListEndOffsets(qctx, out)
	if err == nil {
		err = hwm.Error()
	}
	if err != nil {
		return false, fmt.Sprintf("list end offsets of %s: %v", out, err)
	}
	lso, err := adm.ListCommittedOffsets(qctx, out)
	if err == nil {
		err = lso.Error()
	}
	if err != nil {
		return false, fmt.Sprintf("list last stable offsets of %s: %v", out, err)
	}
	open := 0
	hwm.Each(func(o kadm.ListedOffset) {
		if l, ok := lso.Lookup(out, o.Partition); !ok || l.Offset != o.Offset {
			open++
		}
	})
	if open > 0 {
		return false, fmt.Sprintf("%d partitions of %s have an open transaction (last stable offset < high watermark)", open, out)
	}
	return true, ""
}
