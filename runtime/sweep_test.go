package runtime_test

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/runtime"
)

// An instance stopped gracefully for longer than its StateCleanupDelay
// restores nothing when it starts again: the state of the tasks it runs
// again is not swept as stale (Kafka Streams' cleaner, likewise, runs only
// while the instance is running, on directories no task holds). The
// downtime is made explicit by setting the task directories' modification
// times back, which is all the sweep reads of time.
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

	// The instance has been down for an hour, far longer than the cleanup
	// delay.
	entries, err := os.ReadDir(filepath.Join(dir, appID))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	tasks := 0
	for _, e := range entries {
		if e.IsDir() {
			tasks++
			if err := os.Chtimes(filepath.Join(dir, appID, e.Name()), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tasks == 0 {
		t.Fatal("no task directory after the first run")
	}

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
