package runtime_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/runtime"
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
