package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// workerConfig is what the controller passes to a worker process.
type workerConfig struct {
	id          int
	incarnation int
	brokers     string
	app         string
	in, out     string
	stateDir    string
	guarantee   string
	session     time.Duration
	commit      time.Duration
	cacheBytes  int64
	standbys    int
}

func (c workerConfig) args() []string {
	return []string{"-role", "worker",
		"-id", fmt.Sprint(c.id), "-inc", fmt.Sprint(c.incarnation),
		"-brokers", c.brokers, "-app", c.app, "-in", c.in, "-out", c.out,
		"-state", c.stateDir, "-guarantee", c.guarantee,
		"-session", c.session.String(), "-commit", c.commit.String(),
		"-cache-bytes", fmt.Sprint(c.cacheBytes), "-standbys", fmt.Sprint(c.standbys)}
}

func parseGuarantee(s string) (runtime.Guarantee, error) {
	switch s {
	case "eos", "exactly_once_v2", "exactly-once":
		return runtime.ExactlyOnce, nil
	case "alos", "at_least_once", "at-least-once":
		return runtime.AtLeastOnce, nil
	}
	return 0, fmt.Errorf("-guarantee %q: want eos or alos", s)
}

// Log messages of the worker itself, read back by the controller.
const (
	msgWorkerStarted  = "chaos worker started"
	msgFirstProcessed = "chaos worker: first record processed"
	msgWorkerStats    = "chaos worker: metrics"
	msgWorkerExit     = "chaos worker: Run returned"
)

func workerMain(args []string) error {
	fs := flag.NewFlagSet("chaos worker", flag.ContinueOnError)
	var c workerConfig
	fs.IntVar(&c.id, "id", 1, "worker number: the static member (instance) ID is w<id>")
	fs.IntVar(&c.incarnation, "inc", 1, "the how-many-th start of this worker (for the logs)")
	fs.StringVar(&c.brokers, "brokers", "", "seed brokers, comma-separated")
	fs.StringVar(&c.app, "app", "", "application ID")
	fs.StringVar(&c.in, "in", "", "input topic")
	fs.StringVar(&c.out, "out", "", "output topic")
	fs.StringVar(&c.stateDir, "state", "", "state directory (kept across restarts of this worker)")
	fs.StringVar(&c.guarantee, "guarantee", "eos", "processing guarantee: eos or alos")
	fs.DurationVar(&c.session, "session", 6*time.Second, "session timeout")
	fs.DurationVar(&c.commit, "commit", 100*time.Millisecond, "commit interval")
	fs.Int64Var(&c.cacheBytes, "cache-bytes", 0, "record cache size (0: every update written)")
	fs.IntVar(&c.standbys, "standbys", 0, "NumStandbyReplicas")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.brokers == "" || c.app == "" || c.in == "" || c.out == "" || c.stateDir == "" {
		return errors.New("worker: -brokers, -app, -in, -out and -state are required")
	}
	g, err := parseGuarantee(c.guarantee)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).
		With("worker", c.id, "inc", c.incarnation)
	started := time.Now()
	log.Info(msgWorkerStarted, "pid", os.Getpid(), "guarantee", g.String(), "instance", instanceID(c.id))

	b := dsl.NewBuilder()
	dsl.FromTopic(b, c.in, serde.String, serde.String).GroupByKey().Count(dsl.Named("counts")).
		ToStream().To(c.out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	app, err := runtime.New(topo, runtime.ApplicationID(c.app), runtime.Brokers(strings.Split(c.brokers, ",")...),
		runtime.ProcessingGuarantee(g), runtime.CommitInterval(c.commit), runtime.CacheMaxBytes(c.cacheBytes),
		runtime.InstanceID(instanceID(c.id)), runtime.SessionTimeout(c.session), runtime.NumStandbyReplicas(c.standbys),
		runtime.StateDir(c.stateDir), runtime.Logger(log), runtime.Registerer(reg))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go watchMetrics(ctx, reg, log, started)
	err = app.Run(ctx)
	var fenced *runtime.FencedError
	var cfgErr *runtime.ConfigError
	if err != nil {
		log.Error(msgWorkerExit, "err", err, "fenced", errors.As(err, &fenced))
		if errors.As(err, &cfgErr) {
			os.Exit(exitConfig)
		}
		os.Exit(1)
	}
	log.Info(msgWorkerExit, "err", nil)
	return nil
}

// exitConfig is a worker's exit status when its configuration is refused:
// starting it again would not help, the controller stops the run.
const exitConfig = 3

func instanceID(id int) string { return fmt.Sprintf("w%d", id) }

// watchMetrics logs when the first input record is processed (the time
// from this process's start to it: the restart time a static member
// achieves) and, every 2 seconds, the metrics the failover measurement
// waits on.
func watchMetrics(ctx context.Context, reg *prometheus.Registry, log *slog.Logger, started time.Time) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	first := false
	var lastStats time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m := gather(reg)
		if !first && m["sluice_processed_records_total"] > 0 {
			first = true
			log.Info(msgFirstProcessed, "since_start_ms", time.Since(started).Milliseconds())
		}
		if time.Since(lastStats) >= 2*time.Second {
			lastStats = time.Now()
			attrs := []any{}
			for name, v := range m {
				attrs = append(attrs, strings.TrimPrefix(name, "sluice_"), v)
			}
			log.Info(msgWorkerStats, attrs...)
		}
	}
}

// gather sums each metric family over its labels.
func gather(reg *prometheus.Registry) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
		out[mf.GetName()] = sum
	}
	return out
}
