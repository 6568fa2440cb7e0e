package main

// The latency benchmark (-only latency): count per key with the record
// cache off, at-least-once, commit 100 ms, fed at a fixed rate, each
// output's arrival timed against its input's produce.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/runtime"
)

var (
	latencyRate     = flag.Float64("rate", 0, "latency: input records/s fed to both apps; 0 means half the maximum Sluice's count per key (cache off, commit 100 ms) reached on a backlog of -records records, measured first in the same run")
	latencyDuration = flag.Duration("latency-duration", 20*time.Second, "latency: how long records are fed at the fixed rate, after the warm-up")
	latencyWarmup   = flag.Duration("latency-warmup", 3*time.Second, "latency: records are fed for this long first, and left out of the percentiles (connections, first fetches)")
)

// sentHeader is the header of the latency benchmark's input records: the
// time the feeder produced the record, in nanoseconds since the run's
// base time (8 bytes, big-endian). Count per key forwards its input's
// headers with every update (as Kafka Streams does), and so does the raw
// loop: the output record carries its input's produce time.
const sentHeader = "bench.sent"

// latencyCommit is the commit interval of the latency benchmark, Kafka
// Streams' default under exactly-once: short commits are the latency case.
const latencyCommit = 100 * time.Millisecond

// latencyApp is one app of the latency benchmark.
type latencyApp struct {
	name string
	// max measures records/s on a backlog of n records in input.
	max func(ctx context.Context, input, run string) (result, error)
	// start runs the app from input to output in the background until
	// stop, and returns once it is ready to process (in its group, with
	// its partitions).
	start func(ctx context.Context, input, output, id string) (stop func() error, err error)
}

// latencyResult is what one app's latency run measured.
type latencyResult struct {
	name       string
	max, rate  float64 // records/s
	sent, got  int     // records fed after the warm-up, their outputs received
	p50, p99   time.Duration
	p999, pmax time.Duration
}

// runLatency measures the raw count loop and Sluice's count per key, cache
// off, at one fixed rate: half the maximum of Sluice's, the median of runs
// runs on a backlog of n records measured first (the raw loop's too, for
// reference), unless -rate is given.
func runLatency(ctx context.Context, brokers []string, where, run string, n, workers, runs int, partitions int32) error {
	apps := []latencyApp{
		{
			name: "raw franz-go consume→count in a map→produce",
			max: func(ctx context.Context, input, run string) (result, error) {
				return rawCount(ctx, brokers, input, run+"-lraw", n, partitions, latencyCommit)
			},
			start: func(ctx context.Context, input, output, id string) (func() error, error) {
				return startRawCount(ctx, brokers, input, output, id)
			},
		},
		{
			name: "Sluice count per key, cache off",
			max: func(ctx context.Context, input, run string) (result, error) {
				return sluice(ctx, brokers, input, run, "lcount", n, n, workers, partitions, countByKey,
					guaranteeOpts(runtime.AtLeastOnce, 0)...)
			},
			start: func(ctx context.Context, input, output, id string) (func() error, error) {
				return startSluiceCount(ctx, brokers, input, output, id, workers)
			},
		},
	}
	// One rate for both, half Sluice's maximum: the raw loop is the floor
	// of the same load (at half its own maximum, several times Sluice's,
	// the feeder and the broker would be measured more than the loop).
	rate := *latencyRate
	maxes := make([]float64, len(apps))
	if rate <= 0 {
		input := run + "-lmax-input"
		if err := connectors.CreateTopics(ctx, brokers, partitions, input); err != nil {
			return err
		}
		fmt.Printf("Latency: measuring each app's maximum on a backlog of %d records (%s)...\n", n, where)
		if _, err := produceInput(ctx, brokers, input, n); err != nil {
			return err
		}
		// The median of runs runs each, interleaved, as the table's.
		rs := make([][]float64, len(apps))
		for round := range runs {
			for i, a := range apps {
				r, err := a.max(ctx, input, fmt.Sprintf("%s-max%d", run, round))
				if err != nil {
					return fmt.Errorf("latency: maximum of %s: %w", a.name, err)
				}
				rs[i] = append(rs[i], r.rate())
				fmt.Printf("  %-46s max %9.0f records/s\n", a.name, r.rate())
			}
		}
		for i := range apps {
			slices.Sort(rs[i])
			maxes[i] = rs[i][len(rs[i])/2]
		}
		rate = maxes[len(apps)-1] / 2
	}
	// Each app runs runs times, the rounds interleaved; each percentile
	// is the median of its runs: one stall of a loaded machine (seconds)
	// moves one run's p99, not the median's.
	byApp := make([][]latencyResult, len(apps))
	for round := range runs {
		for i, a := range apps {
			fmt.Printf("Latency: %s at %.0f records/s for %s after a %s warm-up...\n", a.name, rate, *latencyDuration, *latencyWarmup)
			r, err := measureLatency(ctx, brokers, a, fmt.Sprintf("%s-%d-%d", run, round, i), rate, partitions)
			if err != nil {
				return fmt.Errorf("latency: %s: %w", a.name, err)
			}
			fmt.Printf("  p50 %.1f ms, p99 %.1f ms, p999 %.1f ms, max %.1f ms, %d/%d outputs\n", ms(r.p50), ms(r.p99), ms(r.p999), ms(r.pmax), r.got, r.sent)
			byApp[i] = append(byApp[i], r)
		}
	}
	results := make([]latencyResult, len(apps))
	for i, rs := range byApp {
		results[i] = medianLatency(rs)
		results[i].max = maxes[i]
	}
	fmt.Printf("\nLatency on %s: produce of an input record to arrival of its output; count per key, cache off,\n", where)
	fmt.Printf("at-least-once, commit %s, %d partitions, %d workers (Sluice), %s at a fixed rate after a %s warm-up,\n",
		latencyCommit, partitions, workers, *latencyDuration, *latencyWarmup)
	fmt.Printf("each percentile the median of %d interleaved runs:\n", runs)
	fmt.Printf("%-46s %10s %10s %8s %8s %8s %8s %12s\n", "app", "max rec/s", "rate", "p50 ms", "p99 ms", "p999 ms", "max ms", "outputs")
	for _, r := range results {
		mx := "-"
		if r.max > 0 {
			mx = fmt.Sprintf("%.0f", r.max)
		}
		fmt.Printf("%-46s %10s %10.0f %8.1f %8.1f %8.1f %8.1f %12s\n", r.name, mx, r.rate, ms(r.p50), ms(r.p99), ms(r.p999), ms(r.pmax),
			fmt.Sprintf("%d/%d", r.got, r.sent))
	}
	for _, r := range results {
		if r.p50 > time.Second {
			fmt.Printf("%s did not keep up with %.0f records/s here: its outputs queued (p50 %.1f s)\n", r.name, r.rate, r.p50.Seconds())
		}
	}
	if len(results) == 2 && results[0].p99 > 0 {
		fmt.Printf("p99 Sluice / raw loop: %.2f (issue 15's target: at most 2); p50: %.2f, p999: %.2f\n",
			float64(results[1].p99)/float64(results[0].p99), float64(results[1].p50)/float64(results[0].p50),
			float64(results[1].p999)/float64(results[0].p999))
	}
	return nil
}

// measureLatency runs app on topics of its own, feeds it at rate records/s
// for the warm-up and the duration, and collects the latency of every
// output whose input was sent after the warm-up.
func measureLatency(ctx context.Context, brokers []string, app latencyApp, id string, rate float64, partitions int32) (latencyResult, error) {
	res := latencyResult{name: app.name, rate: rate}
	input, output := id+"-in", id+"-out"
	if err := connectors.CreateTopics(ctx, brokers, partitions, input, output); err != nil {
		return res, err
	}
	stop, err := app.start(ctx, input, output, id)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()

	base := time.Now()
	warm := int64(*latencyWarmup)
	var sent atomic.Int64 // records sent after the warm-up
	fed := make(chan struct{})
	all := make(chan struct{})
	var got int
	var lats []time.Duration
	var cerr error
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, on an early return
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		cerr = collectLatencies(cctx, brokers, output, base, warm, &sent, fed, all, &got, &lats)
	}()

	if err := feed(ctx, brokers, input, base, rate, *latencyWarmup+*latencyDuration, warm, &sent); err != nil {
		return res, err
	}
	close(fed)
	// Every input has one output: wait for all of them, for at most a
	// minute (a missing output is reported, not waited for forever).
	select {
	case <-all:
	case <-time.After(time.Minute):
	}
	cancel()
	wg.Wait()
	stopped = true
	if err := stop(); err != nil {
		return res, err
	}
	if cerr != nil {
		return res, cerr
	}
	res.sent, res.got = int(sent.Load()), got
	if len(lats) == 0 {
		return res, fmt.Errorf("no output of %s arrived in %s (%d records sent after the warm-up)", id, output, res.sent)
	}
	slices.Sort(lats)
	res.p50, res.p99, res.p999, res.pmax = percentile(lats, 0.5), percentile(lats, 0.99), percentile(lats, 0.999), lats[len(lats)-1]
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medianLatency is the median of each percentile of rs, and the outputs
// of all of them.
func medianLatency(rs []latencyResult) latencyResult {
	m := latencyResult{name: rs[0].name, rate: rs[0].rate}
	med := func(f func(latencyResult) time.Duration) time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = f(r)
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	m.p50 = med(func(r latencyResult) time.Duration { return r.p50 })
	m.p99 = med(func(r latencyResult) time.Duration { return r.p99 })
	m.p999 = med(func(r latencyResult) time.Duration { return r.p999 })
	m.pmax = med(func(r latencyResult) time.Duration { return r.pmax })
	for _, r := range rs {
		m.sent += r.sent
		m.got += r.got
	}
	return m
}

// percentile is the q-quantile of sorted (not empty) by the nearest-rank
// method: the smallest value at least a fraction q of the values are at
// most.
func percentile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted), max(1, int(math.Ceil(q*float64(len(sorted))))))-1]
}

// feed produces records to input at rate records/s for d: keys from the
// vocabulary, values of about 90 bytes, each with its produce time in
// sentHeader (nanoseconds since base). sent counts those produced at or
// after warm nanoseconds.
func feed(ctx context.Context, brokers []string, input string, base time.Time, rate float64, d time.Duration, warm int64, sent *atomic.Int64) error {
	// No linger: a record leaves as soon as the connection is free, so
	// that the feeder adds as little as it can to what is measured.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(input), kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(1_000_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	values := make([][]byte, 1000)
	for i := range values {
		var sb strings.Builder
		for sb.Len() < 85 {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(vocabulary[rng.IntN(len(vocabulary))])
		}
		values[i] = []byte(sb.String())
	}
	var perr firstError
	start := time.Now()
	done := 0
	for {
		elapsed := time.Since(start)
		if elapsed >= d {
			break
		}
		// Send what is due by now: at a fixed rate whatever the sleep's
		// granularity.
		for due := int(elapsed.Seconds() * rate); done < due; done++ {
			at := int64(time.Since(base))
			r := &kgo.Record{Key: []byte(vocabulary[rng.IntN(len(vocabulary))]), Value: values[done%len(values)],
				Headers: []kgo.RecordHeader{{Key: sentHeader, Value: binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(at))}}}
			cl.Produce(ctx, r, perr.promise)
			if at >= warm {
				sent.Add(1)
			}
		}
		if err := perr.get(); err != nil {
			return fmt.Errorf("produce to %s: %w", input, err)
		}
		time.Sleep(time.Millisecond) // pacing, not synchronisation
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return perr.get()
}

// collectLatencies reads output from its start until ctx is cancelled,
// and for each record sent at or after warm appends the time from its
// produce to now to lats. Once fed is closed and as many outputs arrived
// as sent counts, it closes all.
func collectLatencies(ctx context.Context, brokers []string, output string, base time.Time, warm int64, sent *atomic.Int64,
	fed <-chan struct{}, all chan<- struct{}, got *int, lats *[]time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(output),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	closed := false
	var bad error
	for {
		// A bounded poll, so that the check below runs when nothing more
		// comes.
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			return bad
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("consume %s: %w", output, err)
		}
		now := int64(time.Since(base))
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key != sentHeader {
					continue
				}
				if len(h.Value) != 8 {
					if bad == nil {
						bad = fmt.Errorf("%s partition %d offset %d: header %s of %d bytes, want 8", output, r.Partition, r.Offset, sentHeader, len(h.Value))
					}
					return
				}
				at := int64(binary.BigEndian.Uint64(h.Value))
				if at >= warm {
					*lats = append(*lats, time.Duration(now-at))
					*got++
				}
				return
			}
			if bad == nil {
				bad = fmt.Errorf("%s partition %d offset %d: no header %s (the app did not forward its input's headers)", output, r.Partition, r.Offset, sentHeader)
			}
		})
		if !closed {
			select {
			case <-fed:
				if int64(*got) >= sent.Load() {
					close(all)
					closed = true
				}
			default:
			}
		}
	}
}

// startRawCount runs the raw count loop from input to output until stop.
func startRawCount(ctx context.Context, brokers []string, input, output, group string) (func() error, error) {
	assigned := make(chan struct{})
	var once sync.Once
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.DefaultProduceTopic(output),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { once.Do(func() { close(assigned) }) }))
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rawCountLoop(rctx, cl, math.MaxInt, latencyCommit) }()
	stop := func() error {
		cancel()
		err := <-done
		cl.Close()
		return err
	}
	select {
	case <-assigned:
		return stop, nil
	case err := <-done:
		cl.Close()
		return nil, fmt.Errorf("raw loop stopped before it was assigned %s: %v", input, err)
	case <-time.After(time.Minute):
		_ = stop()
		return nil, fmt.Errorf("raw loop not assigned %s within a minute", input)
	}
}

// startSluiceCount runs count per key, cache off, at-least-once, commit
// 100 ms, from input to output until stop; it returns once the App is
// Running.
func startSluiceCount(ctx context.Context, brokers []string, input, output, id string, workers int) (func() error, error) {
	stateDir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return nil, err
	}
	running := make(chan struct{})
	var once sync.Once
	topo, _ := countByKey(input, output)
	reg := prometheus.NewRegistry()
	opts := append([]runtime.Option{runtime.ApplicationID(id), runtime.Brokers(brokers...), runtime.Workers(workers),
		runtime.Registerer(reg), runtime.StateDir(stateDir),
		runtime.OnStateChange(func(s, _ runtime.State) {
			if s == runtime.Running {
				once.Do(func() { close(running) })
			}
		})}, guaranteeOpts(runtime.AtLeastOnce, 0)...)
	app, err := runtime.New(topo, opts...)
	if err != nil {
		os.RemoveAll(stateDir)
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	started := time.Now()
	stop := func() error {
		err := app.Close()
		if rerr := <-done; err == nil {
			err = rerr
		}
		printCommits(reg, time.Since(started))
		return errors.Join(err, os.RemoveAll(stateDir))
	}
	select {
	case <-running:
		return stop, nil
	case err := <-done:
		os.RemoveAll(stateDir)
		return nil, fmt.Errorf("app stopped before it was running: %v", err)
	case <-time.After(time.Minute):
		_ = stop()
		return nil, fmt.Errorf("app %s not running within a minute", id)
	}
}

// printCommits prints what the App's commits took (the workers wait
// through each): their number, mean and largest bucket, and their share
// of the run; and the mean of each of their phases.
//
// -commits prints them after each Sluice run of the other workloads too.
var commitStats = flag.Bool("commits", false, "print what the commits of each Sluice run took (count, mean, p99 bucket, share of the run) and the mean of each of their phases")

func printCommits(reg *prometheus.Registry, run time.Duration) {
	mfs, err := reg.Gather()
	if err != nil {
		return
	}
	// A -table child's standard output is its result; its standard error
	// reaches the terminal.
	out := os.Stdout
	if *childSpec != "" {
		out = os.Stderr
	}
	for _, mf := range mfs {
		if mf.GetName() == "sluice_commit_phase_duration_seconds" {
			printPhases(out, mf)
		}
		if mf.GetName() != "sluice_commit_duration_seconds" {
			continue
		}
		var n uint64
		var sum float64
		var p99 float64
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			n += h.GetSampleCount()
			sum += h.GetSampleSum()
			for _, b := range h.GetBucket() {
				if p99 == 0 && float64(b.GetCumulativeCount()) >= 0.99*float64(h.GetSampleCount()) {
					p99 = b.GetUpperBound()
				}
			}
		}
		if n > 0 {
			fmt.Fprintf(out, "  Sluice commits: %d, mean %.1f ms, p99 at most %.0f ms, %.1f%% of the run\n",
				n, 1000*sum/float64(n), 1000*p99, 100*sum/run.Seconds())
		}
	}
}

// printPhases prints the mean time of each commit phase, in the order the
// commits run them.
func printPhases(out io.Writer, mf *dto.MetricFamily) {
	order := []string{"stores", "produce", "offsets", "transaction", "local"}
	if !slices.ContainsFunc(mf.GetMetric(), func(m *dto.Metric) bool { return labelValue(m, "phase") == "transaction" }) {
		order = []string{"stores", "produce", "local", "offsets"} // at-least-once
	}
	var parts []string
	for _, phase := range order {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); labelValue(m, "phase") == phase && h.GetSampleCount() > 0 {
				parts = append(parts, fmt.Sprintf("%s %.1f", phase, 1000*h.GetSampleSum()/float64(h.GetSampleCount())))
			}
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(out, "  Sluice commit phases, mean ms: %s\n", strings.Join(parts, ", "))
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
