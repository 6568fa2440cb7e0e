package runtime

import (
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// The offset sums a member reports (memberData): what its local copy of
// each task's state reflects. Set at start-up from the task directories on
// disk (scanLocalOffsets), to offsetSumRunning while a task runs here
// (onAssigned), back to the local sum when it stops (closeRunnersLocked),
// and removed with the directory.

// scanLocalOffsets sets a.offsets for each task directory of the state
// directory with a checkpoint file: the sum of its checkpointed changelog
// offsets. It reads the files only; no DB is opened.
func (a *App) scanLocalOffsets() {
	entries, err := os.ReadDir(a.appDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id, err := parseTaskID(e.Name())
		if err != nil {
			continue
		}
		path := filepath.Join(a.appDir, e.Name(), checkpointFile)
		cp, err := state.ReadCheckpoint(vfs.Default, path)
		if err != nil {
			a.log.Warn("unreadable checkpoint: the task's local state is reported as none to the group", "task", id, "file", path, "err", err)
			continue
		}
		if len(cp) == 0 {
			continue
		}
		var sum int64
		for _, off := range cp {
			sum += max(off, 0)
		}
		a.offsets.set(id, sum)
	}
}

// localOffsetSum is the offset sum of a task's local state: over its
// changelog partitions, the later of the checkpointed offset and the one
// recorded in the DB's meta record. ok is false when it records no
// changelog offset.
func localOffsetSum(ts *taskState) (sum int64, ok bool) {
	offs := map[topicPartition]int64{}
	for tp, off := range ts.checkpoint {
		offs[topicPartition{tp.Topic, tp.Partition}] = off
	}
	for tp, off := range ts.loggedEnds {
		offs[tp] = max(offs[tp], off)
	}
	for _, off := range offs {
		sum += max(off, 0)
	}
	return sum, len(offs) > 0
}

// taskStoppedLocked records what the local state of a task that stopped
// running here reflects; persistent tells whether it has state on disk.
func (a *App) taskStoppedLocked(id taskID, ts *taskState, persistent bool) {
	if sum, ok := localOffsetSum(ts); persistent && ok {
		a.offsets.set(id, sum)
		return
	}
	a.offsets.remove(id)
}
