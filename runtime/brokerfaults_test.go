package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// logCapture is a slog.Handler keeping every record (with its time) for
// tests that assert on what the App logged and when.
type logCapture struct {
	mu      sync.Mutex
	records []capturedLog
	changed chan struct{}
}

type capturedLog struct {
	at    time.Time
	level slog.Level
	msg   string
	attrs map[string]string
}

func newLogCapture() *logCapture { return &logCapture{changed: make(chan struct{})} }

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	c := capturedLog{at: time.Now(), level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		c.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, c)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	return nil
}

func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

// find returns the records whose message starts with prefix, logged at or
// after from.
func (h *logCapture) find(prefix string, from time.Time) []capturedLog {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []capturedLog
	for _, r := range h.records {
		if strings.HasPrefix(r.msg, prefix) && !r.at.Before(from) {
			out = append(out, r)
		}
	}
	return out
}

// wait waits until a record whose message starts with prefix was logged
// at or after from, and returns the first; it fails the test after
// timeout.
func (h *logCapture) wait(t *testing.T, prefix string, from time.Time, timeout time.Duration) capturedLog {
	t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		ch := h.changed
		h.mu.Unlock()
		if rs := h.find(prefix, from); len(rs) > 0 {
			return rs[0]
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no log %q within %v", prefix, timeout)
		}
	}
}

// dump logs the last n records (on a failure).
func (h *logCapture) dump(t *testing.T, who string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.records[max(0, len(h.records)-n):]
	for _, r := range rs {
		t.Logf("%s: %s %s %s %v", who, r.at.Format("15:04:05.000"), r.level, r.msg, r.attrs)
	}
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// timeout with what.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unusedAddr returns a loopback address nothing listens on (a port the
// kernel just gave out and took back).
func unusedAddr(t *testing.T) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port
}

// A broker that is not up yet when Run starts (nothing listens: every
// connection is refused) is retried, and the App starts and processes
// once a broker comes up on that address, within StartupTimeout. Issue
// 13: Run used to fail within a millisecond.
func TestStartupWaitsForBroker(t *testing.T) {
	addr, port := unusedAddr(t)
	input, output := "lines", "counts"
	logs := newLogCapture()
	app, err := runtime.New(wordCount(t, input, output), runtime.ApplicationID("late-broker"), runtime.Brokers(addr),
		runtime.StateDir(t.TempDir()), runtime.StartupTimeout(time.Minute), runtime.CommitInterval(100*time.Millisecond),
		runtime.Logger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	if s := app.State(); s != runtime.Created {
		t.Fatalf("State before Run = %v, want CREATED", s)
	}
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	t.Cleanup(func() { _ = app.Close() })

	// Run retries, and says so.
	w := logs.wait(t, "start-up: brokers do not answer", begin, 10*time.Second)
	if !strings.Contains(w.attrs["brokers"], addr) || !strings.Contains(w.attrs["err"], "refused") {
		t.Errorf("retry log %v: want the broker %s and the refused connection", w.attrs, addr)
	}
	if s := app.State(); s != runtime.Rebalancing {
		t.Errorf("State while starting = %v, want REBALANCING", s)
	}
	if ok, _, err := app.BrokersReachable(); ok || err == nil {
		t.Errorf("BrokersReachable while no broker listens = %v, %v; want false and the connection's error", ok, err)
	}

	// Now a broker comes up on that port, holding the input.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, input, output))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tc := &testCluster{brokers: []string{addr}}
	want := map[string]int64{}
	tc.produce(t, input, lines(0, 500, 31, want)...)
	got, _ := tc.counts(t, output, time.Minute, equalCounts(want))
	if d := diffCounts(got, want); d != "" {
		t.Fatalf("counts differ: %s", d)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while the broker is up", err)
	default:
	}
	logs.wait(t, "brokers answered", begin, time.Second)
	waitFor(t, 30*time.Second, "State RUNNING", func() bool { return app.State() == runtime.Running })
	if ok, since, err := app.BrokersReachable(); !ok || since.IsZero() || err != nil {
		t.Errorf("BrokersReachable = %v, %v, %v; want true since the first answer", ok, since, err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if s := app.State(); s != runtime.NotRunning {
		t.Errorf("State after Close = %v, want NOT_RUNNING", s)
	}
}

// With no broker at all, Run retries until StartupTimeout, then fails with
// a BrokerError naming the brokers, the timeout and the last error.
func TestStartupTimeoutNoBroker(t *testing.T) {
	addr, _ := unusedAddr(t)
	const timeout = 1500 * time.Millisecond
	logs := newLogCapture()
	app, err := runtime.New(wordCount(t, "in", "out"), runtime.ApplicationID("no-broker"), runtime.Brokers(addr),
		runtime.StateDir(t.TempDir()), runtime.StartupTimeout(timeout), runtime.Logger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err = app.Run(context.Background())
	took := time.Since(begin)
	var be *runtime.BrokerError
	if !errors.As(err, &be) {
		t.Fatalf("Run = %v, want a BrokerError", err)
	}
	for _, w := range []string{addr, "StartupTimeout", "refused"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("Run failed after %v, want just after the start-up timeout %v", took, timeout)
	}
	if n := len(logs.find("start-up: brokers do not answer", begin)); n == 0 {
		t.Error("no retry was logged")
	}
	if s := app.State(); s != runtime.Error {
		t.Errorf("State after the failed start = %v, want ERROR", s)
	}
}

// A start-up whose context ends while it retries returns nil at once, as a
// shutdown asked for.
func TestStartupRetryCancelled(t *testing.T) {
	addr, _ := unusedAddr(t)
	logs := newLogCapture()
	app, err := runtime.New(wordCount(t, "in", "out"), runtime.ApplicationID("cancelled"), runtime.Brokers(addr),
		runtime.StateDir(t.TempDir()), runtime.StartupTimeout(time.Minute), runtime.Logger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- app.Run(ctx) }()
	logs.wait(t, "start-up: brokers do not answer", begin, 10*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of its context's end")
	}
	if s := app.State(); s != runtime.NotRunning {
		t.Errorf("State = %v, want NOT_RUNNING", s)
	}
}

func TestStateString(t *testing.T) {
	want := []string{"CREATED", "REBALANCING", "RUNNING", "PENDING_SHUTDOWN", "NOT_RUNNING", "PENDING_ERROR", "ERROR"}
	for i, w := range want {
		if got := runtime.State(i).String(); got != w {
			t.Errorf("State(%d) = %q, want %q", i, got, w)
		}
	}
}

// Run on an App closed before it returns ErrClosed and leaves it
// NOT_RUNNING (CREATED -> PENDING_SHUTDOWN -> NOT_RUNNING).
func TestStateClosedBeforeRun(t *testing.T) {
	app, err := runtime.New(wordCount(t, "in", "out"), runtime.ApplicationID("closed"), runtime.Brokers("127.0.0.1:1"),
		runtime.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := app.Run(context.Background()); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Run = %v, want ErrClosed", err)
	}
	if s := app.State(); s != runtime.NotRunning {
		t.Errorf("State = %v, want NOT_RUNNING", s)
	}
}

// restartableKfake is a kfake cluster on a fixed port persisted to a
// directory, so that it can be stopped and started again with its data: a
// broker outage (as the chaos program's kfake broker).
type restartableKfake struct {
	t    *testing.T
	port int
	dir  string
	c    *kfake.Cluster
}

func startRestartableKfake(t *testing.T) *restartableKfake {
	_, port := unusedAddr(t)
	k := &restartableKfake{t: t, port: port, dir: t.TempDir()}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *restartableKfake) start() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir))
	if err != nil {
		k.t.Fatal(err)
	}
	k.c = c
}

func (k *restartableKfake) stop() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

func (k *restartableKfake) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)) }

// countByKey counts the records of input per key into output: one
// sub-topology, so that under at-least-once the counts stay exact when
// input is processed again (the local state records the input positions
// it reflects); downstream of a repartition topic, input processed again
// upstream writes its repartition records again, which at-least-once
// counts again.
func countByKey(t *testing.T, input, output string) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// keyBatch returns n keys k0..k{keys-1} in turn from start, and adds
// them to want.
func keyBatch(start, n, keys int, want map[string]int64) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%d", (start+i)%keys)
		want[out[i]]++
	}
	return out
}

// The broker goes away under a running App and comes back: the App warns
// within 5 s, BrokersReachable reports the outage, the return is logged
// once, processing resumes with exact counts, and nothing stops Run. A
// shutdown during a second outage still returns within ShutdownTimeout.
// (The real-broker version, with SIGTERM and SIGKILL and two instances:
// TestBrokerRestartExactCounts, make test-kafka.)
func TestBrokerOutageRecovers(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			k := startRestartableKfake(t)
			tc := &testCluster{brokers: []string{k.addr()}}
			input, output := "lines", "counts"
			tc.create(t, 2, input, output)
			logs := newLogCapture()
			const shutdown = 4 * time.Second
			app, err := runtime.New(countByKey(t, input, output), runtime.ApplicationID("outage"), runtime.Brokers(k.addr()),
				runtime.StateDir(t.TempDir()), runtime.CommitInterval(100*time.Millisecond), runtime.ProcessingGuarantee(g),
				runtime.ShutdownTimeout(shutdown), runtime.Logger(slog.New(logs)))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- app.Run(context.Background()) }()
			t.Cleanup(func() {
				_ = app.Close()
				if t.Failed() {
					logs.dump(t, "app", 200)
				}
			})
			want := map[string]int64{}
			tc.produceKeys(t, input, keyBatch(0, 600, 23, want)...)
			got, _ := tc.counts(t, output, time.Minute, equalCounts(want))
			if d := diffCounts(got, want); d != "" {
				t.Fatalf("counts before the outage differ: %s", d)
			}

			outage := func() time.Time {
				t.Helper()
				stopping := time.Now()
				k.stop()
				gone := time.Now()
				w := logs.wait(t, "brokers unreachable", gone, 5*time.Second)
				if !strings.Contains(w.attrs["brokers"], k.addr()) || w.attrs["err"] == "" {
					t.Errorf("warning %v: want the broker %s and the error", w.attrs, k.addr())
				}
				t.Logf("warned %v after the broker stopped", w.at.Sub(gone).Round(time.Millisecond))
				if ok, since, err := app.BrokersReachable(); ok || err == nil || since.Before(stopping) || since.After(w.at) {
					t.Errorf("BrokersReachable during the outage = %v, %v, %v", ok, since, err)
				}
				if s := app.State(); !s.IsRunningOrRebalancing() {
					t.Errorf("State during the outage = %v", s)
				}
				return gone
			}
			gone := outage()
			k.start()
			back := time.Now()
			r := logs.wait(t, "brokers reachable again", back, 30*time.Second)
			t.Logf("reachable again %v after the broker started (outage %s)", r.at.Sub(back).Round(time.Millisecond), r.attrs["outage"])
			if n := len(logs.find("brokers reachable again", gone)); n != 1 {
				t.Errorf("recovery logged %d times, want once", n)
			}
			tc.produceKeys(t, input, keyBatch(600, 600, 23, want)...)
			got, _ = tc.counts(t, output, time.Minute, equalCounts(want))
			if d := diffCounts(got, want); d != "" {
				t.Fatalf("counts after the outage differ: %s", d)
			}
			select {
			case err := <-done:
				t.Fatalf("Run returned %v", err)
			default:
			}
			waitFor(t, 30*time.Second, "RUNNING after the outage", func() bool { return app.State() == runtime.Running })

			// A shutdown during an outage is bounded.
			outage()
			begin := time.Now()
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Errorf("Run = %v after a shutdown during an outage", err)
			}
			if took := time.Since(begin); took > shutdown+2*time.Second {
				t.Errorf("the shutdown during an outage took %v, ShutdownTimeout %v", took, shutdown)
			}
			if s := app.State(); s != runtime.NotRunning {
				t.Errorf("State = %v, want NOT_RUNNING", s)
			}
		})
	}
}
