package runtime

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// onAssigned records the tasks of newly assigned partitions: it opens
// their local state, which tells where their input resumes (adjustOffsets),
// pauses their partitions and starts their restores, which run outside
// a.mu (restoreRunner); the poll loop lets a task process once it is
// restored (activateRestoredLocked). Once the shutdown has begun it creates
// no task: the partitions are given up with the group. A restore cancelled
// by the shutdown or a revoke resumes from the task's checkpoint at its
// next start.
func (a *App) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx := a.runCtx
	if a.closing || ctx.Err() != nil {
		a.log.Info("partitions assigned while shutting down: no task created", "partitions", assigned)
		return
	}
	committed, err := a.committedOffsets(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.failLocked(err)
		}
		return
	}
	var started []*runner
	paused := map[string][]int32{}
	// On an error, the tasks made so far are still paused and started, so
	// that closing them (shutdown) finds their restores over.
assign:
	for topic, parts := range assigned {
		sub, ok := a.subOf(topic)
		if !ok {
			continue
		}
		for _, p := range parts {
			id := taskID{sub, p}
			r := a.runners[id]
			if r == nil {
				var err error
				if r, err = a.openRunnerLocked(ctx, id, committed); err != nil {
					if ctx.Err() != nil {
						a.log.Info("task creation abandoned: shutting down", "task", id, "err", err)
					} else {
						a.failLocked(err)
					}
					break assign
				}
				a.runners[id] = r
				started = append(started, r)
			}
			a.byPartition[topicPartition{topic, p}] = r
			r.queue(topic, p)
			if r.restoring {
				paused[topic] = append(paused[topic], p)
			}
		}
	}
	// Not fetched before their tasks are restored.
	a.client.PauseFetchPartitions(paused)
	// issue 12 (ha): a task restoring here reports its local offset sum
	// in the member metadata (offsetSumRunning once restored,
	// activateRestoredLocked), read before its restore starts writing
	// its state.
	for _, r := range started {
		a.reportLocalOffsetsLocked(r.id, r.st, r.st.db != nil)
	}
	for _, r := range started {
		go a.restoreRunner(r)
	}
	// issue 12 (ha): this instance's standby and warm-up tasks of the
	// latest sync.
	a.reconcileStandbysLocked(a.bal.standbyAssignment().standbys)
	a.tasksChangedLocked()
	a.log.Info("partitions assigned", "partitions", assigned, "tasks", len(a.runners), "restoring", len(started))
}

// activateRestoredLocked lets the tasks whose restores are done process:
// it resumes fetching their partitions. A restore that failed, other than
// by being cancelled, is fatal.
func (a *App) activateRestoredLocked() error {
	for _, r := range a.runners {
		if !r.restoring {
			continue
		}
		select {
		case <-r.restoreDone:
		default:
			continue
		}
		if r.restoreErr != nil {
			if a.runCtx.Err() != nil {
				continue // shutting down: the shutdown closes it
			}
			a.failLocked(r.restoreErr)
			return r.restoreErr
		}
		r.task, r.pending, r.restoring = r.pending, nil, false
		a.offsets.set(r.id, offsetSumRunning) // issue 12 (ha): member metadata
		resume := map[string][]int32{}
		for _, q := range r.queues {
			resume[q.topic] = append(resume[q.topic], q.partition)
		}
		a.client.ResumeFetchPartitions(resume)
		a.log.Info("task restored: processing", "task", r.id)
	}
	return nil
}

// ready returns the runners of rs whose tasks are restored: those that
// process and commit.
func ready(rs []*runner) []*runner {
	out := rs[:0:0]
	for _, r := range rs {
		if !r.restoring {
			out = append(out, r)
		}
	}
	return out
}

// onRevoked commits and closes the tasks of revoked partitions.
func (a *App) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.affectedLocked(revoked)
	if len(rs) == 0 {
		return
	}
	if a.fatal == nil {
		if err := a.commits.commit(a.groupCtx, ready(rs)); err != nil {
			a.failLocked(err)
		}
	}
	a.closeRunnersLocked(rs, true)
	a.log.Info("partitions revoked", "partitions", revoked, "tasks", len(a.runners))
}

// onLost closes the tasks of lost partitions without committing: another
// member may own them already.
func (a *App) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeRunnersLocked(a.affectedLocked(lost), true)
	a.log.Warn("partitions lost", "partitions", lost)
}

func (a *App) affectedLocked(parts map[string][]int32) []*runner {
	seen := map[*runner]bool{}
	var rs []*runner
	for topic, ps := range parts {
		for _, p := range ps {
			if r := a.byPartition[topicPartition{topic, p}]; r != nil && !seen[r] {
				seen[r] = true
				rs = append(rs, r)
			}
		}
	}
	return rs
}

// closeRunnersLocked closes the tasks of rs and their local state; for
// tasks that moved away, the state is deleted after the cleanup delay. A
// task still restoring has its restore cancelled and waited for first
// (restoreRunner does not take a.mu).
func (a *App) closeRunnersLocked(rs []*runner, moved bool) {
	for _, r := range rs {
		t := r.task
		if r.restoring {
			r.cancelRestore()
			<-r.restoreDone
			t = r.pending
		}
		if t != nil {
			if err := t.Close(); err != nil {
				a.log.Warn("close task", "task", r.id, "err", err)
			}
		}
		persistent := r.st.db != nil
		a.reportLocalOffsetsLocked(r.id, r.st, persistent) // issue 12 (ha): member metadata
		if err := r.st.close(); err != nil {
			a.log.Warn("close task state", "task", r.id, "err", err)
		}
		if moved && persistent {
			a.scheduleCleanup(r.id)
		}
		delete(a.runners, r.id)
		for _, q := range r.queues {
			delete(a.byPartition, topicPartition{q.topic, q.partition})
		}
	}
	a.tasksChangedLocked()
}

func (a *App) subOf(topic string) (int, bool) {
	for sub, ts := range a.layout.topics {
		if slices.Contains(ts, topic) {
			return sub, true
		}
	}
	return 0, false
}

// committedOffsets returns the group's committed offsets.
func (a *App) committedOffsets(ctx context.Context) (map[topicPartition]int64, error) {
	resp, err := kadm.NewClient(a.admin).FetchOffsets(ctx, a.cfg.appID)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("sluice: fetch the committed offsets of group %s: %w", a.cfg.appID, err)
	}
	m := map[topicPartition]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			m[topicPartition{o.Topic, o.Partition}] = o.At
		}
	})
	return m, nil
}

// openRunnerLocked makes the runner of task id, restoring: it opens the
// task's local state (replacing state that does not match the broker) and
// records where its input resumes for adjustOffsets, which franz-go calls
// once the assignment callback returns. committed holds the group's
// committed offsets. restoreRunner then restores the stores.
func (a *App) openRunnerLocked(ctx context.Context, id taskID, committed map[topicPartition]int64) (*runner, error) {
	// A standby of the task here closes first: the active opens its DB
	// and restores only what the standby lacks (standby.go).
	a.promoteStandbyLocked(id)
	st := a.topo.SubTopology(id.sub)
	r := &runner{id: id}
	persistent := false
	for _, spec := range st.Stores {
		persistent = persistent || !spec.InMemory
	}
	mine := map[topicPartition]int64{}
	for _, t := range a.layout.topics[id.sub] {
		tp := topicPartition{t, id.partition}
		if off, ok := committed[tp]; ok {
			mine[tp] = off
		}
	}
	ts, err := a.openTaskState(id, mine, persistent)
	if err != nil {
		return nil, err
	}
	if reason, err := a.checkLocalState(ctx, ts, mine); err != nil {
		_ = ts.close()
		return nil, err
	} else if reason != "" {
		// State built on other topics (the broker or the topics were
		// recreated): start over from the changelogs.
		a.log.Warn("local state does not match the broker: deleting it and restoring from the changelogs", "task", id, "reason", reason)
		_ = ts.close()
		if err := os.RemoveAll(ts.dir); err != nil {
			return nil, fmt.Errorf("sluice: task %s: delete local state %s: %w", id, ts.dir, err)
		}
		if ts, err = a.openTaskState(id, mine, persistent); err != nil {
			return nil, err
		}
	}
	r.st = ts
	for _, t := range a.layout.topics[id.sub] {
		r.queue(t, id.partition) // waited for until a fetch tells its position
	}
	// The task resumes where its state says, when that is past the
	// group's committed offsets (see adjustOffsets). An entry of an
	// earlier assignment that adjustOffsets never used (franz-go cancels
	// a session's offset fetch when the session ends first) is replaced or
	// dropped: it would move the start past input the state lacks.
	a.resumeMu.Lock()
	for _, t := range a.layout.topics[id.sub] {
		delete(a.resume, topicPartition{t, id.partition})
	}
	for tp, off := range ts.resume {
		if off > committed[tp] || !hasKey(committed, tp) {
			a.resume[tp] = off
			// The next commit moves the group's offset there even if no
			// record comes: the state has passed it already.
			// Epoch -1: no record of the offset tells its leader epoch,
			// and franz-go would validate any other against the log.
			q := r.queues[r.queue(tp.topic, tp.partition)]
			q.next, q.epoch = off, -1
		}
	}
	a.resumeMu.Unlock()
	r.restoreCtx, r.cancelRestore = context.WithCancel(a.runCtx)
	r.restoring, r.restoreDone = true, make(chan struct{})
	return r, nil
}

// restoreRunner instantiates the task of r, restoring its stores from
// their changelogs, without a.mu: the task goes to r.pending, or the error
// to r.restoreErr, and r.restoreDone is closed. The runner's owner (the
// poll loop, or closeRunnersLocked) closes its state.
func (a *App) restoreRunner(r *runner) {
	defer close(r.restoreDone)
	defer r.cancelRestore()
	ctx := r.restoreCtx
	id, ts := r.id, r.st
	st := a.topo.SubTopology(id.sub)
	policy := task.FailOnDeserializationError
	if a.cfg.skipBadRecords {
		policy = task.SkipOnDeserializationError
	}
	var cache *state.Cache
	if a.cfg.cacheBytes > 0 {
		cache = ts.cache
	}
	t, err := task.New(task.Config{
		ApplicationID: a.cfg.appID,
		SubTopology:   st,
		Partition:     id.partition,
		Collector:     collector{a.prod},
		OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
			return a.openStore(ctx, r, spec, id.partition)
		},
		Changelog:              changelogWriter{a.prod},
		Cache:                  cache,
		Logger:                 a.log,
		OnDeserializationError: policy,
		Dropped: func(taskID, node, reason string) {
			a.metrics.dropped.WithLabelValues(taskID, node, reason).Inc()
		},
		Metadata:     ts.metadata,
		GlobalStores: a.globals.views(),
	})
	if err == nil {
		err = a.finishRestore(ts)
		if err != nil {
			_ = t.Close()
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			a.log.Info("restore abandoned: the task was closed; its next start restores from its checkpoint", "task", id, "err", err)
		}
		r.restoreErr = err
		return
	}
	r.pending = t
}

// checkLocalState checks that the task's local state can have come from
// the topics on the broker: its checkpointed changelog offsets and its
// input positions must not be past the topics' end offsets. It returns why
// not, or "".
//
// It also refuses local state whose input positions are past the group's
// committed offsets (its last commit never reached the group) when the
// changelog grew since that commit: another instance processed the task
// from the group's offsets meanwhile, and the local state, ahead of what
// it restores, would hide that the inputs between are missing from it.
func (a *App) checkLocalState(ctx context.Context, ts *taskState, committed map[topicPartition]int64) (string, error) {
	if ts.db == nil || (len(ts.checkpoint) == 0 && len(ts.positions) == 0) {
		return "", nil
	}
	offsets := map[topicPartition]int64{}
	topics := map[string]bool{}
	for tp, off := range ts.checkpoint {
		offsets[topicPartition{tp.Topic, tp.Partition}] = off
		topics[tp.Topic] = true
	}
	for tp, off := range ts.positions {
		offsets[tp] = off
		topics[tp.topic] = true
	}
	for tp := range ts.loggedEnds {
		topics[tp.topic] = true
	}
	ahead := ""
	for tp, off := range ts.positions {
		if c, ok := committed[tp]; !ok || off > c {
			ahead = fmt.Sprintf("its position %d in topic %s partition %d is past the group's committed offset", off, tp.topic, tp.partition)
		}
	}
	ends, err := kadm.NewClient(a.admin).ListEndOffsets(ctx, slices.Collect(maps.Keys(topics))...)
	if err != nil {
		return "", fmt.Errorf("sluice: list end offsets to check local state: %w", err)
	}
	for tp, off := range offsets {
		end, ok := ends.Lookup(tp.topic, tp.partition)
		if !ok || end.Err != nil {
			continue // a topic that no longer exists: the restore reports it
		}
		if off > end.Offset {
			return fmt.Sprintf("offset %d recorded for topic %s partition %d is past its end offset %d", off, tp.topic, tp.partition, end.Offset), nil
		}
	}
	if ahead != "" {
		for tp, logged := range ts.loggedEnds {
			if end, ok := ends.Lookup(tp.topic, tp.partition); ok && end.Err == nil && end.Offset > logged {
				return fmt.Sprintf("%s, and changelog %s partition %d grew from %d to %d since: another instance processed the task",
					ahead, tp.topic, tp.partition, logged, end.Offset), nil
			}
		}
	}
	return "", nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// adjustOffsets starts each assigned partition at the later of the group's
// committed offset and the position after the latest input record the
// restored state reflects: under at-least-once, the changelog can be ahead
// of the committed offsets (a crash between the two), and replaying that
// input would apply it to the state twice.
func (a *App) adjustOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	// Not a.mu: franz-go may call this while the poll loop holds a.mu and
	// waits in a commit for the rebalance to finish.
	a.resumeMu.Lock()
	defer a.resumeMu.Unlock()
	for topic, ps := range offsets {
		for p, o := range ps {
			resume, ok := a.resume[topicPartition{topic, p}]
			if !ok {
				continue
			}
			delete(a.resume, topicPartition{topic, p})
			if committed := o.EpochOffset().Offset; committed < resume {
				a.log.Info("resuming after the input the restored state reflects", "topic", topic, "partition", p,
					"committed", committed, "resume", resume)
				ps[p] = kgo.NewOffset().At(resume)
			}
		}
	}
	return offsets, nil
}
