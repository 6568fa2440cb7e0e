package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

// The failover measurement (-role failover): two workers count a store of
// -keys keys (one input record per key), then a trickle of records goes to
// every input partition while:
//
//  1. worker 1 is killed (kill -9) and not restarted: the time from the
//     kill until every input partition's records are processed again (the
//     moved tasks wait for the session timeout, then restore on worker 2,
//     from the whole changelog or, with -standbys 1, only a standby's lag);
//  2. worker 1 is started again (its session expired: a rebalance), then
//     killed and restarted at once, within its session timeout: the time
//     from its start to its first processed record (static membership: it
//     gets its tasks back without a rebalance) and from the kill until
//     every partition is processed again.
//
// A partition counts as processed again when the output has the count of
// its trickle key for an input record produced after the kill.
func failoverMain(args []string) error {
	fs := flag.NewFlagSet("chaos failover", flag.ContinueOnError)
	brokerKind := fs.String("broker", "kfake", "kfake or real (-brokers)")
	brokersFlag := fs.String("brokers", "", "seed brokers of the real broker")
	keys := fs.Int("keys", 1_000_000, "keys of the count store (one input record each)")
	partitions := fs.Int("partitions", 6, "input partitions (tasks)")
	standbys := fs.Int("standbys", 0, "NumStandbyReplicas of the workers")
	guarantee := fs.String("guarantee", "alos", "eos or alos")
	session := fs.Duration("session", 6*time.Second, "the workers' session timeout")
	dirFlag := fs.String("dir", "", "directory of the workers' state and logs; default a new temporary directory")
	keep := fs.Bool("keep", false, "keep -dir afterwards")
	load := fs.Duration("load-timeout", 15*time.Minute, "bound on counting the store's keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := parseGuarantee(*guarantee); err != nil {
		return err
	}
	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("[%7.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	dir := *dirFlag
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-failover-")
		if err != nil {
			return err
		}
		dir = d
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	var brokers []string
	switch *brokerKind {
	case "kfake":
		kb, err := startKfake(filepath.Join(dir, "kfake"))
		if err != nil {
			return err
		}
		defer kb.close()
		brokers = kb.addrs()
	case "real":
		brokers = splitBrokers(*brokersFlag)
		if len(brokers) == 0 {
			return errors.New("-broker real needs -brokers")
		}
	default:
		return fmt.Errorf("-broker %q: want kfake or real", *brokerKind)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stamp := time.Now().UnixNano()
	in, out := fmt.Sprintf("failover-in-%d", stamp), fmt.Sprintf("failover-out-%d", stamp)
	app := fmt.Sprintf("failover-%d", stamp)
	if err := connectors.CreateTopics(ctx, brokers, int32(*partitions), in, out); err != nil {
		return err
	}
	logf("failover: %s, %d keys, %d partitions, %d standbys, session timeout %v, dir %s", *guarantee, *keys, *partitions, *standbys, *session, dir)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The record cache stays on (as in production): the measurement is
	// about moving tasks, and the load is quicker.
	wcfg := workerConfig{brokers: strings.Join(brokers, ","), app: app, in: in, out: out, guarantee: *guarantee,
		session: *session, commit: 100 * time.Millisecond, cacheBytes: 10 << 20, standbys: *standbys}
	// A worker that cannot run (its configuration refused) ends the
	// measurement: every wait below then ends with the context.
	fatal := func(err error) { logf("%v", err); cancel() }
	procs := []*proc{newProc(1, wcfg, exe, dir, fatal), newProc(2, wcfg, exe, dir, fatal)}
	for _, p := range procs {
		go p.supervise(ctx, logf)
	}
	defer func() {
		for _, p := range procs {
			p.stop(40 * time.Second)
		}
	}()
	// The keys are written once both workers hold tasks, so that neither
	// has a local copy of the other's tasks.
	if err := waitBalanced(ctx, procs, *partitions, 2*time.Minute); err != nil {
		return err
	}
	if err := produceKeys(ctx, brokers, in, *keys); err != nil {
		return err
	}
	logf("produced %d keys", *keys)
	loadStart := time.Now()
	if err := settle(ctx, brokers, app, in, out, procs, *load, logf); err != nil {
		return fmt.Errorf("counting the store: %w", err)
	}
	logf("store counted in %v", time.Since(loadStart).Round(100*time.Millisecond))
	if *standbys > 0 {
		waitStandbys(procs, time.Minute, logf)
	}

	tr, err := startTrickle(ctx, brokers, in, out, *partitions)
	if err != nil {
		return err
	}
	defer tr.stop()
	if _, err := tr.resumed(time.Now().Add(-time.Hour), time.Minute); err != nil {
		return fmt.Errorf("before the kill: %w", err)
	}

	// 1. Failover: kill worker 1 and keep it down.
	w1 := procs[0]
	killedAt := time.Now()
	if _, ok := w1.kill(time.Hour); !ok {
		return errors.New("worker 1 is not running")
	}
	logf("kill -9 worker 1; it stays down")
	per, err := tr.resumed(killedAt, 3*time.Minute)
	if err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	failover := slices.Max(per)
	restored := restoredSince(procs[1], killedAt)
	logf("every partition processed again %v after the kill (per partition: %v); worker 2 restored %d records", failover.Round(time.Millisecond), roundAll(per), restored)

	// 2. Static membership: start worker 1 again, let it settle, then kill
	// it and restart it at once.
	w1.restartNow()
	if err := waitFirstProcessed(ctx, w1, time.Now(), 3*time.Minute); err != nil {
		return fmt.Errorf("worker 1 back after its session expired: %w", err)
	}
	if _, err := tr.resumed(time.Now(), time.Minute); err != nil {
		return err
	}
	logf("worker 1 back and processing")
	killedAt = time.Now()
	if _, ok := w1.kill(0); !ok {
		return errors.New("worker 1 is not running")
	}
	logf("kill -9 worker 1, restarted at once")
	perStatic, err := tr.resumed(killedAt, 3*time.Minute)
	if err != nil {
		return fmt.Errorf("static restart: %w", err)
	}
	if err := waitFirstProcessed(ctx, w1, killedAt, time.Minute); err != nil {
		return fmt.Errorf("static restart: %w", err)
	}
	startToFirst := lastFirstProcessed(w1)
	logf("worker 1 processing %.2fs after its start; every partition processed again %v after the kill",
		float64(startToFirst)/1000, slices.Max(perStatic).Round(time.Millisecond))

	fmt.Printf("\n== failover summary: %s, %d-key count store, %d instances, %d standbys, session timeout %v ==\n",
		*guarantee, *keys, len(procs), *standbys, *session)
	fmt.Printf("  %-52s %v\n", "kill -9 → moved tasks process again", failover.Round(time.Millisecond))
	fmt.Printf("  %-52s %d\n", "records restored by the surviving instance", restored)
	fmt.Printf("  %-52s %.2fs\n", "static restart: process start → first record", float64(startToFirst)/1000)
	fmt.Printf("  %-52s %v\n", "static restart: kill -9 → all partitions process again", slices.Max(perStatic).Round(time.Millisecond))
	return nil
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// produceKeys writes one record for each of n keys.
func produceKeys(ctx context.Context, brokers []string, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	var mu sync.Mutex
	var perr error
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "s%07d", i), Value: []byte("x")}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = cmpOr(perr, fmt.Errorf("produce to %s: %w", topic, err))
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return perr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// trickle writes a record to every input partition every 50 ms (key
// t<partition>) and watches the output for their counts.
type trickle struct {
	partitions int
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu      sync.Mutex
	arrived map[int][]arrival // by input partition
}

type arrival struct {
	produced time.Time // the input record's timestamp, carried to the output
	at       time.Time // when the output record was read
}

func startTrickle(ctx context.Context, brokers []string, in, out string, partitions int) (*trickle, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &trickle{partitions: partitions, ctx: ctx, cancel: cancel, arrived: map[int][]arrival{}}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(in),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		cancel()
		return nil, err
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		prod.Close()
		cancel()
		return nil, err
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		defer prod.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for p := range partitions {
				prod.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "t%d", p), Value: []byte("x"), Partition: int32(p), Timestamp: time.Now()}, nil)
			}
		}
	}()
	go func() {
		defer t.wg.Done()
		defer cons.Close()
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var p int
				if _, err := fmt.Sscanf(string(r.Key), "t%d", &p); err != nil || !strings.HasPrefix(string(r.Key), "t") {
					return
				}
				t.mu.Lock()
				t.arrived[p] = append(t.arrived[p], arrival{produced: r.Timestamp, at: now})
				t.mu.Unlock()
			})
		}
	}()
	return t, nil
}

func (t *trickle) stop() { t.cancel(); t.wg.Wait() }

// resumed waits until every partition has an output for an input record
// produced after since, and returns for each the time from since to the
// first such output.
func (t *trickle) resumed(since time.Time, bound time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(bound)
	for {
		out := make([]time.Duration, t.partitions)
		missing := []int{}
		t.mu.Lock()
		for p := range t.partitions {
			i := slices.IndexFunc(t.arrived[p], func(a arrival) bool { return a.produced.After(since) })
			if i < 0 {
				missing = append(missing, p)
				continue
			}
			out[p] = t.arrived[p][i].at.Sub(since)
		}
		t.mu.Unlock()
		if len(missing) == 0 {
			return out, nil
		}
		if time.Now().After(deadline) || t.ctx.Err() != nil {
			return nil, fmt.Errorf("input partitions %v not processed within %v", missing, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restoredSince sums the records the worker's log says it restored since
// t.
func restoredSince(p *proc, since time.Time) int64 {
	var n int64
	p.mu.Lock()
	inc := p.inc
	p.mu.Unlock()
	logMatchesFn(p.logf, inc, since, func(m map[string]any, _ string) bool {
		if m["msg"] == "restored store" {
			n += int64(num(m["records"]))
		}
		return false
	})
	return n
}

func waitFirstProcessed(ctx context.Context, p *proc, since time.Time, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		p.mu.Lock()
		inc := p.inc
		p.mu.Unlock()
		if logMatchesFn(p.logf, inc, since, func(m map[string]any, _ string) bool { return m["msg"] == msgFirstProcessed }) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("worker %d (start %d) processed no record within %v", p.id, inc, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastFirstProcessed is the since_start_ms of the worker's latest start.
func lastFirstProcessed(p *proc) int64 {
	p.mu.Lock()
	inc := p.inc
	p.mu.Unlock()
	ms := int64(-1)
	logMatchesFn(p.logf, inc, time.Time{}, func(m map[string]any, _ string) bool {
		if m["msg"] == msgFirstProcessed {
			ms = int64(num(m["since_start_ms"]))
		}
		return false
	})
	return ms
}

// waitStandbys waits until the workers' latest metrics report no standby
// lag: a metric whose name has "standby" and "lag" in it summing to 0 in
// every worker that reports it. Without such a metric (no standby tasks
// in this build) it says so and returns after bound.
func waitStandbys(procs []*proc, bound time.Duration, logf func(string, ...any)) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		seen, lag := false, 0.0
		for _, p := range procs {
			for k, v := range latestStats(p) {
				if strings.Contains(k, "standby") && strings.Contains(k, "lag") {
					seen = true
					lag += num(v)
				}
			}
		}
		if seen && lag == 0 {
			logf("standbys caught up")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	logf("no standby reported a lag of 0 within %v (no standby lag metric: standby tasks not in this build?)", bound)
}

// latestStats is the worker's latest metrics line of its current start.
func latestStats(p *proc) map[string]any {
	p.mu.Lock()
	inc := p.inc
	p.mu.Unlock()
	var last map[string]any
	logMatchesFn(p.logf, inc, time.Time{}, func(m map[string]any, _ string) bool {
		if m["msg"] == msgWorkerStats {
			last = m
		}
		return false
	})
	return last
}

// waitBalanced waits until every worker's metrics report active tasks and
// together all of them.
func waitBalanced(ctx context.Context, procs []*proc, tasks int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		sum, all := 0.0, true
		for _, p := range procs {
			n := num(latestStats(p)["active_tasks"])
			sum += n
			all = all && n > 0
		}
		if all && int(sum) == tasks {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the workers do not share the %d tasks after %v", tasks, bound)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
