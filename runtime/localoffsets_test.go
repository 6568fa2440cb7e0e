package runtime

import (
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// The start-up scan reports, per task directory with a checkpoint file,
// the sum of its checkpointed offsets of persistent stores' changelogs;
// directories that are no task's, or without a checkpoint, report nothing;
// an in-memory store's changelog does not count.
func TestScanLocalOffsets(t *testing.T) {
	a := &App{appDir: t.TempDir(), bal: &taskBalancer{}}
	a.log = slog.New(slog.DiscardHandler)
	write := func(task string, offsets map[state.TopicPartition]int64) {
		dir := filepath.Join(a.appDir, task)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if offsets != nil {
			if err := state.WriteCheckpoint(vfs.Default, filepath.Join(dir, checkpointFile), offsets); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("0_3", map[state.TopicPartition]int64{{Topic: "app-a-changelog", Partition: 3}: 100, {Topic: "app-b-changelog", Partition: 3}: 23,
		{Topic: "app-inmemory-changelog", Partition: 3}: 5000})
	write("2_0", map[state.TopicPartition]int64{{Topic: "app-c-changelog", Partition: 0}: 7})
	write("1_1", nil)                                                                  // no checkpoint
	write("global", map[state.TopicPartition]int64{{Topic: "pages", Partition: 0}: 5}) // not a task
	changelogs := map[int][]string{0: {"app-a-changelog", "app-b-changelog"}, 2: {"app-c-changelog"}, 4: {"app-d-changelog"}}
	a.scanLocalOffsets(changelogs)
	a.bal.changelogs = changelogs
	want := map[taskID]int64{{0, 3}: 123, {2, 0}: 7}
	if got := a.offsets.snapshot(); !maps.Equal(got, want) {
		t.Fatalf("offset sums %v, want %v", got, want)
	}

	// A task that stops running here reports its local sum again; one
	// without state on disk, nothing.
	a.offsets.set(taskID{0, 3}, offsetSumRunning)
	ts := &taskState{checkpoint: map[state.TopicPartition]int64{{Topic: "app-a-changelog", Partition: 3}: 150, {Topic: "app-inmemory-changelog", Partition: 3}: 6000},
		loggedEnds: map[topicPartition]int64{{"app-a-changelog", 3}: 140, {"app-b-changelog", 3}: 30}}
	a.reportLocalOffsetsLocked(taskID{0, 3}, ts, true)
	a.offsets.set(taskID{4, 0}, offsetSumRunning)
	a.reportLocalOffsetsLocked(taskID{4, 0}, &taskState{}, false)
	want = map[taskID]int64{{0, 3}: 180, {2, 0}: 7}
	if got := a.offsets.snapshot(); !maps.Equal(got, want) {
		t.Fatalf("after the tasks stopped: offset sums %v, want %v", got, want)
	}
}
