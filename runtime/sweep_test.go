package runtime_test

import (
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/runtime"
)

// REVIEW: openStateDir sweeps every task directory not modified for the
// cleanup delay, before any task is assigned: an instance that was stopped
// gracefully for longer than StateCleanupDelay (10 minutes by default)
// deletes the state of the very tasks it is about to run again, and
// restores them in full. Kafka Streams' cleaner runs only while the
// instance is RUNNING, on directories no task has locked. The package doc
// says a graceful restart restores nothing.
func TestGracefulRestartAfterCleanupDelayRestoresNothing(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 1, input, output)
	topo := wordCount(t, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	const delay = 500 * time.Millisecond
	run := func() (*instance, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50*time.Millisecond), runtime.StateCleanupDelay(delay), runtime.Registerer(reg)), reg
	}
	want := map[string]int64{}
	c.produce(t, input, lines(0, 300, 17, want)...)
	in, _ := run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	in.stop(t)

	time.Sleep(2 * delay) // the instance is down for longer than the cleanup delay

	in, reg := run()
	c.produce(t, input, lines(300, 50, 17, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after the restart: %s", diffCounts(got, want))
	}
	if n := restored(t, reg); n != 0 {
		t.Errorf("graceful restart after the cleanup delay restored %v records, want 0: the sweep deleted the state of its own tasks", n)
	}
	in.stop(t)
}
