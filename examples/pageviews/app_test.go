package main

// The pageviews topology in a runtime.App on a broker (kfake, or real Kafka
// with KAFKA_BROKERS): out-of-order and late views over several partitions
// give exactly the expected windows, and so does a run killed with
// kill -9 in the middle and restarted on the same state directory, where
// at-least-once allows a window to be written twice with the same result
// and nothing else.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/examples/internal/demo"
	"github.com/sluicehq/sluice/runtime"
)

// Windows of the integration tests: the example's defaults.
const (
	testWindow = time.Minute
	testGrace  = 10 * time.Second
)

// recentWindows returns the start of the first of n windows of size that
// end at the latest window boundary before now: event times close to the
// wall clock, as a live topic has (changelog retention and the brokers'
// timestamp checks are about the wall clock).
func recentWindows(n int, size time.Duration) int64 {
	sz := size.Milliseconds()
	return time.Now().UnixMilli()/sz*sz - int64(n)*sz
}

// An App counts generated views (out of order, late, malformed or empty,
// without a ts, tombstones) over three partitions: every window is written once with its exact
// count and timestamp, no other window is, and the dropped-records metric
// counts the late, malformed and ts-less views and the tombstones, each by
// what it was.
func TestAppWritesExactWindows(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "views"), topic(t, "counts")
	c.create(t, 3, input, output)
	g := generate(5000, 6, recentWindows(6, testWindow), testWindow, testGrace, 7)
	c.produce(t, input, g.records)
	in := start(t, input, output, testWindow, testGrace, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.StateDir(t.TempDir()), runtime.CommitInterval(20*time.Millisecond), runtime.SkipUndecodableRecords())
	c.await(t, output, 30*time.Second, g.covers)
	in.shutdown(t)
	if err := g.check(c.readAll(t, output), false); err != nil {
		t.Fatal(err)
	}
	drops := demo.Dropped(in.reg)
	for reason, want := range map[string]int{"late": g.kinds[late], "deserialization-error": g.kinds[malformed], "invalid-timestamp": g.kinds[noTS], "null-value": g.kinds[tombstone]} {
		if drops[reason] != int64(want) {
			t.Errorf("dropped for %q: %d, want %d", reason, drops[reason], want)
		}
	}
}

// childOptions are the options of the killed child and of the instance
// that replaces it: a short session timeout, so the group notices the
// killed member soon, and a short commit interval, so the kill lands
// between commits, inside one, or between a window's write and the commit
// that covers it.
func childOptions(appID string, brokers []string, stateDir string) []runtime.Option {
	return []runtime.Option{
		runtime.ApplicationID(appID), runtime.Brokers(brokers...), runtime.StateDir(stateDir),
		runtime.CommitInterval(20 * time.Millisecond), runtime.MaxPollRecords(200), runtime.SkipUndecodableRecords(),
		runtime.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)),
	}
}

// runChild runs the pageviews App until killed, configured by the
// environment.
func runChild() error {
	topo, err := Topology(os.Getenv("INPUT"), os.Getenv("OUTPUT"), testWindow, testGrace)
	if err != nil {
		return err
	}
	app, err := runtime.New(topo, childOptions(os.Getenv("APP_ID"), strings.Split(os.Getenv("BROKERS"), ","), os.Getenv("STATE_DIR"))...)
	if err != nil {
		return err
	}
	return app.Run(context.Background())
}

// kill -9 of the process in the middle of the windows, then a restart on
// the same state directory: no window is lost, none has a wrong count or
// timestamp, no other window appears; a window may be written twice (its
// result was written, the commit that covers it had not happened), with
// the same result.
func TestKill9AndRestartLosesNoWindow(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "views"), topic(t, "counts")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	const windows = 120
	g := generate(60000, windows, recentWindows(windows, testWindow), testWindow, testGrace, 11)
	c.produce(t, input, g.records)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PAGEVIEWS_TEST_CHILD=1", "INPUT="+input, "OUTPUT="+output,
		"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the child has written a third of the windows: in the
	// middle of the work, at a point the test does not choose.
	before := c.await(t, output, time.Minute, func(es []Emitted) bool { return len(es) >= len(g.want)/3 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v before it was killed", err)
	}
	killedAt := len(c.readAll(t, output))
	if killedAt >= len(g.want) {
		t.Fatalf("the child wrote all %d windows before it was killed: the input is too small to kill it in the middle", killedAt)
	}
	t.Logf("killed after %d of %d windows were written (%d seen before the kill)", killedAt, len(g.want), len(before))

	in := start(t, input, output, testWindow, testGrace, childOptions(appID, c.brokers, dir)...)
	c.await(t, output, time.Minute, g.covers)
	in.shutdown(t)
	got := c.readAll(t, output)
	if err := g.check(got, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d windows, %d records: %d written twice", len(g.want), len(got), len(got)-len(g.want))
}
