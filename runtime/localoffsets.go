package runtime

import (
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
)

// The offset sums a member reports (memberData): what its local copy of
// each task's state reflects. Set at start-up from the task directories on
// disk (scanLocalOffsets), to the local sum while a task restores here
// (onAssigned), to offsetSumRunning once it is restored
// (activateRestoredLocked), back to the local sum when it stops
// (closeRunnersLocked), and removed with the directory. Only the
// changelogs of persistent stores count: an in-memory store restores from
// its changelog's start on every open, so no copy of it survives a close.
// The leader's end-offset sums count the same changelogs
// (taskBalancer.changelogs).

// persistentChangelogs lists, per sub-topology, the changelog topics of its
// persistent logged stores.
func (a *App) persistentChangelogs() map[int][]string {
	m := map[int][]string{}
	for _, st := range a.topo.SubTopologies() {
		for _, spec := range st.Stores {
			if !spec.DisableLogging && !spec.InMemory {
				m[st.ID] = append(m[st.ID], task.ChangelogTopic(a.cfg.appID, spec))
			}
		}
	}
	return m
}

// scanLocalOffsets sets a.offsets for each task directory of the state
// directory with a checkpoint file: the sum of its checkpointed offsets of
// the changelogs (per sub-topology) given. It reads the files only; no DB
// is opened.
func (a *App) scanLocalOffsets(changelogs map[int][]string) {
	entries, err := os.ReadDir(a.appDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id, err := parseTaskID(e.Name())
		if err != nil || len(changelogs[id.sub]) == 0 {
			continue
		}
		path := filepath.Join(a.appDir, e.Name(), checkpointFile)
		cp, err := state.ReadCheckpoint(a.fs(), path)
		if err != nil {
			a.log.Warn("unreadable checkpoint: the task's local state is reported as none to the group", "task", id, "file", path, "err", err)
			continue
		}
		var sum int64
		found := false
		for tp, off := range cp {
			if slices.Contains(changelogs[id.sub], tp.Topic) {
				sum, found = addSaturating(sum, max(off, 0)), true
			}
		}
		if found {
			a.offsets.set(id, sum)
		}
	}
}

// localOffsetSum is the offset sum of a task's local state over the
// changelog topics given: per partition, the later of the checkpointed
// offset and the one recorded in the DB's meta record. ok is false when it
// records none of them.
func localOffsetSum(ts *taskState, topics []string) (sum int64, ok bool) {
	offs := map[topicPartition]int64{}
	for tp, off := range ts.checkpoint {
		if slices.Contains(topics, tp.Topic) {
			offs[topicPartition{tp.Topic, tp.Partition}] = off
		}
	}
	for tp, off := range ts.loggedEnds {
		if slices.Contains(topics, tp.topic) {
			offs[tp] = max(offs[tp], off)
		}
	}
	for _, off := range offs {
		sum = addSaturating(sum, max(off, 0))
	}
	return sum, len(offs) > 0
}

// addSaturating adds two non-negative offsets, pinning the sum at
// math.MaxInt64 instead of overflowing (as Kafka Streams pins its offset
// sums to Long.MAX_VALUE).
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// reportLocalOffsetsLocked records what the local state of a task that is
// not running here (restoring, or stopped) reflects; persistent tells
// whether it has state on disk.
func (a *App) reportLocalOffsetsLocked(id taskID, ts *taskState, persistent bool) {
	var topics []string
	if a.bal != nil {
		topics = a.bal.changelogs[id.sub]
	}
	if sum, ok := localOffsetSum(ts, topics); persistent && ok {
		a.offsets.set(id, sum)
		return
	}
	a.offsets.remove(id)
}
