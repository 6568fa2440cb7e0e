package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
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
func (a *App) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Changelog records are tagged with the generation of this
	// assignment from now on (GenerationHeader); franz-go stores it when
	// the JoinGroup answers, before the callback.
	if _, gen := cl.GroupMetadata(); gen > 0 {
		a.prod.setGeneration(gen)
	}
	a.rebalanceLocked()
	a.metrics.rebalances.Inc()
	ctx := a.runCtx
	if a.closing || ctx.Err() != nil {
		a.log.Info("partitions assigned while shutting down: no task created", "partitions", assigned)
		return
	}
	var ids []taskID
	seen := map[taskID]bool{}
	for topic, parts := range assigned {
		sub, ok := a.subOf(topic)
		if !ok {
			continue
		}
		for _, p := range parts {
			id := taskID{sub, p}
			if a.runners[id] == nil && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.SortFunc(ids, func(x, y taskID) int {
		if x.sub != y.sub {
			return x.sub - y.sub
		}
		return int(x.partition - y.partition)
	})
	started, _, err := a.openTasksLocked(ctx, ids)
	if err != nil {
		if ctx.Err() != nil {
			a.log.Info("task creation abandoned: shutting down", "err", err)
		} else {
			a.failLocked(err)
		}
	}
	// Partitions of tasks open already (the assignment of a task's
	// partitions can come in parts).
	for topic, parts := range assigned {
		sub, ok := a.subOf(topic)
		if !ok {
			continue
		}
		for _, p := range parts {
			if r := a.runners[taskID{sub, p}]; r != nil {
				a.byPartition[topicPartition{topic, p}] = r
				r.queue(topic, p)
			}
		}
	}
	// This instance's standby and warm-up tasks of the latest sync.
	a.reconcileStandbysLocked(a.bal.standbyAssignment().standbys)
	a.tasksChangedLocked()
	a.log.Info("partitions assigned", "partitions", assigned, "tasks", len(a.runners), "restoring", started)
}

// openTasksLocked opens the tasks ids (none of which is open): their local
// state, which tells where their input resumes (adjustOffsets, or the
// caller's rewind), their input partitions, paused, and their restores,
// which run outside a.mu (restoreRunner). It returns how many it opened
// and the group's committed offsets. Under ExactlyOnce a task's processor
// metadata comes from the committed offsets' metadata when they hold any:
// the local state may lag the last transaction (a crash before it was
// applied). On an error, the tasks made so far are still paused and
// started, so that closing them (shutdown) finds their restores over.
func (a *App) openTasksLocked(ctx context.Context, ids []taskID) (int, map[topicPartition]int64, error) {
	if len(ids) == 0 {
		return 0, nil, nil
	}
	committed, meta, err := a.committedOffsets(ctx)
	if err != nil {
		return 0, nil, err
	}
	var started []*runner
	paused := map[string][]int32{}
	for _, id := range ids {
		var r *runner
		r, err = a.openRunnerLocked(ctx, id, committed)
		if err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("sluice: open task %s: %w", id, err)
			}
			break
		}
		if a.cfg.guarantee == ExactlyOnce {
			if err = a.committedMetadata(r, meta); err != nil {
				_ = r.st.close()
				break
			}
		}
		a.runners[id] = r
		started = append(started, r)
		for _, t := range a.layout.topics[id.sub] {
			a.byPartition[topicPartition{t, id.partition}] = r
			r.queue(t, id.partition)
			paused[t] = append(paused[t], id.partition) // not fetched before it is restored
		}
	}
	a.client.PauseFetchPartitions(paused)
	// A task restoring here reports its local offset sum in the member
	// metadata (offsetSumRunning once restored, activateRestoredLocked),
	// read before its restore starts writing its state.
	for _, r := range started {
		a.reportLocalOffsetsLocked(r.id, r.st, r.st.db != nil)
	}
	for _, r := range started {
		go a.restoreRunner(r)
	}
	return len(started), committed, err
}

// committedMetadata sets the processor metadata of r's task from the
// committed offsets' metadata of all its input partitions, merged by the
// largest value per key with the local state's own (the values, stream
// times and emitted close times, only grow), as Kafka Streams merges its
// partitions' metadata (ProcessorMetadata.update). A partition without
// progress in recent commits keeps older metadata; the max ignores it.
func (a *App) committedMetadata(r *runner, meta map[topicPartition]string) error {
	merged := maps.Clone(r.st.metadata)
	for _, t := range a.layout.topics[r.id.sub] {
		md, ok, err := decodeOffsetMetadata(meta[topicPartition{t, r.id.partition}])
		if err != nil {
			return fmt.Errorf("sluice: task %s: topic %s partition %d: %w", r.id, t, r.id.partition, err)
		}
		if !ok {
			continue
		}
		if merged == nil {
			merged = map[string]int64{}
		}
		for k, v := range md {
			if old, has := merged[k]; !has || v > old {
				merged[k] = v
			}
		}
	}
	r.st.metadata = merged
	return nil
}

// reviveLocked drops every uncommitted change of the tasks ids after an
// aborted transaction (ExactlyOnce): their record caches, pending DB
// writes, in-memory stores, operator state, stream time and queued
// records go with the tasks, closed without a commit; the tasks are
// opened again (restoring the changelog records of the last commit their
// local state lacks), and their partitions rewound to the committed
// offsets. Only the poll loop calls it, between a poll and the next
// AllowRebalance: franz-go's SetOffsets must not race a rebalance, and it
// drops the fetches buffered from the old positions.
func (a *App) reviveLocked(ids []taskID) error {
	var rs []*runner
	for _, id := range ids {
		if r := a.runners[id]; r != nil {
			rs = append(rs, r)
		}
		delete(a.revive, id)
	}
	if len(rs) == 0 {
		return nil
	}
	ids = runnerIDs(rs)
	a.closeRunnersLocked(rs, false)
	_, committed, err := a.openTasksLocked(a.runCtx, ids)
	if err != nil {
		if a.runCtx.Err() != nil {
			return nil // shutting down
		}
		a.failLocked(err)
		return err
	}
	rewind := map[string]map[int32]kgo.EpochOffset{}
	var unknown []string
	a.resumeMu.Lock()
	for _, id := range ids {
		for _, t := range a.layout.topics[id.sub] {
			tp := topicPartition{t, id.partition}
			off, ok := committed[tp]
			if resume, has := a.resume[tp]; has {
				// Not used by adjustOffsets: there is no assignment.
				delete(a.resume, tp)
				off, ok = max(off, resume), true
			}
			if !ok {
				unknown = append(unknown, t)
				continue
			}
			if rewind[t] == nil {
				rewind[t] = map[int32]kgo.EpochOffset{}
			}
			rewind[t][id.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	a.resumeMu.Unlock()
	if len(unknown) > 0 {
		// No committed offset: the partition starts over at its log
		// start, as a new assignment would (ConsumeResetOffset).
		var starts kadm.ListedOffsets
		err := a.retryBrokers(a.runCtx, "list start offsets", func() (err error) {
			starts, err = kadm.NewClient(a.admin).ListStartOffsets(a.runCtx, unknown...)
			return err
		})
		if err != nil {
			err = fmt.Errorf("sluice: list the start offsets of %v to rewind revived tasks: %w", unknown, err)
			a.failLocked(err)
			return err
		}
		for _, id := range ids {
			for _, t := range a.layout.topics[id.sub] {
				if _, ok := rewind[t][id.partition]; ok {
					continue
				}
				o, ok := starts.Lookup(t, id.partition)
				if !ok || o.Err != nil {
					err := fmt.Errorf("sluice: start offset of topic %s partition %d to rewind task %s: %v", t, id.partition, id, o.Err)
					a.failLocked(err)
					return err
				}
				if rewind[t] == nil {
					rewind[t] = map[int32]kgo.EpochOffset{}
				}
				rewind[t][id.partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
			}
		}
	}
	a.client.SetOffsets(rewind)
	a.tasksChangedLocked()
	a.log.Info("tasks revived: uncommitted progress dropped, restoring and resuming at the committed offsets", "tasks", ids)
	return nil
}

// revivePendingLocked revives the tasks group callbacks marked, and
// returns their input partitions.
func (a *App) revivePendingLocked() []topicPartition {
	ids := slices.Collect(maps.Keys(a.revive))
	var tps []topicPartition
	for _, id := range ids {
		if a.runners[id] == nil {
			continue
		}
		for _, t := range a.layout.topics[id.sub] {
			tps = append(tps, topicPartition{t, id.partition})
		}
	}
	_ = a.reviveLocked(ids) // its failure is fatal (failLocked)
	return tps
}

// markReviveLocked marks the ready runners other than those of gone for
// revival by the poll loop: their uncommitted progress was rolled back.
func (a *App) markReviveLocked(gone []*runner) {
	if a.revive == nil {
		a.revive = map[taskID]bool{}
	}
	for _, r := range ready(slices.Collect(maps.Values(a.runners))) {
		if !slices.Contains(gone, r) {
			a.revive[r.id] = true
			r.rolledBack = true
		}
	}
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
		for _, s := range r.held {
			a.prod.produceRecord(s.r, s.promise)
		}
		r.held = nil
		a.metrics.taskOpened(r)
		a.offsets.set(r.id, offsetSumRunning) // member metadata
		resume := map[string][]int32{}
		for _, q := range r.queues {
			resume[q.topic] = append(resume[q.topic], q.partition)
		}
		a.client.ResumeFetchPartitions(resume)
		a.log.Info("task restored: processing", "task", r.id)
	}
	return nil
}

// ready returns the runners of rs whose tasks are restored and not rolled
// back awaiting their revival: those that process and commit.
func ready(rs []*runner) []*runner {
	out := rs[:0:0]
	for _, r := range rs {
		if !r.restoring && !r.rolledBack {
			out = append(out, r)
		}
	}
	return out
}

// onRevoked commits and closes the tasks of revoked partitions. Under
// ExactlyOnce the commit is the transaction of every ready task (it holds
// the output of all of them), as Kafka Streams' handleRevocation; if it
// is aborted, the other tasks are revived by the poll loop.
func (a *App) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rebalanceLocked()
	rs := a.affectedLocked(revoked)
	if len(rs) == 0 {
		return
	}
	if a.fatal == nil {
		commit := ready(rs)
		if a.commits.spansAll() {
			commit = ready(slices.Collect(maps.Values(a.runners)))
		}
		err := a.commits.commit(a.groupCtx, commit)
		switch {
		case errors.Is(err, errRolledBack):
			a.markReviveLocked(rs)
		case err != nil:
			a.failLocked(err)
		}
	}
	a.closeRunnersLocked(rs, true)
	a.log.Info("partitions revoked", "partitions", revoked, "tasks", len(a.runners))
}

// onLost closes the tasks of lost partitions without committing: another
// member may own them already. Under ExactlyOnce the open transaction,
// which holds the output of every task, is aborted, and the other tasks
// are revived by the poll loop.
func (a *App) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rebalanceLocked()
	// Rebalancing until the member is in the group again, with a newer
	// generation (updateStateLocked).
	_, a.lostGen = a.client.GroupMetadata()
	rs := a.affectedLocked(lost)
	if a.cfg.guarantee == ExactlyOnce && a.fatal == nil && len(rs) > 0 {
		if err := a.commits.abort(a.groupCtx, "lost"); err != nil {
			a.failLocked(err)
		} else {
			a.markReviveLocked(rs)
		}
	}
	a.closeRunnersLocked(rs, true)
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
		a.reportLocalOffsetsLocked(r.id, r.st, persistent) // member metadata
		if err := r.st.close(); err != nil {
			a.log.Warn("close task state", "task", r.id, "err", err)
		}
		if moved && persistent {
			a.scheduleCleanup(r.id)
		}
		delete(a.runners, r.id)
		delete(a.revive, r.id)
		a.metrics.taskClosed(r.id)
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

// committedOffsets returns the group's committed offsets and their
// metadata. It asks for stable offsets (KIP-447 RequireStable): while a transaction that commits
// offsets of the group is open (a previous owner's, until it commits,
// aborts or times out), the broker answers UNSTABLE_OFFSET_COMMIT rather
// than an offset that may be about to change, and the fetch is retried
// (Kafka Streams fetches with require_stable under exactly_once_v2 and
// retries too). Without transactions the answer is the same as without.
// The wait is bounded (unstable.go): past unstableWarnAfter it logs the
// transactions holding the offsets, past unstableFailAfter it fails.
func (a *App) committedOffsets(ctx context.Context) (map[topicPartition]int64, map[topicPartition]string, error) {
	adm := kadm.NewClient(a.admin)
	var resp kadm.OffsetResponses
	var err error
	began := time.Now()
	var lastWarn time.Time
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		resp, err = adm.FetchOffsets(kadm.RequireStable(ctx), a.cfg.appID)
		if err == nil {
			err = resp.Error()
		}
		unstable := errors.Is(err, kerr.UnstableOffsetCommit)
		// The brokers unreachable (an outage): retried as well, until
		// ctx ends (the shutdown).
		if !unstable && (!transientBrokerErr(err) || ctx.Err() != nil) {
			break
		}
		waited := time.Since(began)
		switch {
		case !unstable:
			if backoff == 10*time.Millisecond {
				a.log.Warn("fetch the committed offsets: brokers unavailable, retrying", "group", a.cfg.appID, "err", err)
			}
		case backoff == 10*time.Millisecond:
			a.log.Info("committed offsets unstable: a transaction committing offsets of the group is open; waiting for it",
				"group", a.cfg.appID, "err", err)
		case waited >= a.unstableFailAfter():
			return nil, nil, fmt.Errorf("sluice: fetch the committed offsets of group %s: still %w after %v, held by: %s; "+
				"a transaction open this long is hanging (the brokers lost track of it) or has a timeout far above the "+
				"application's: kafka-transactions.sh find-hanging and abort end a hanging one",
				a.cfg.appID, err, waited.Round(time.Second), a.holdersOfGroupOffsets(ctx, a.ownProducerID()))
		case waited >= a.unstableWarnAfter() && time.Since(lastWarn) >= a.unstableWarnAfter():
			lastWarn = time.Now()
			a.log.Error("committed offsets still unstable past the transaction timeout: waiting for the transactions holding them",
				"group", a.cfg.appID, "waited", waited.Round(time.Second).String(), "fail_after", a.unstableFailAfter().String(),
				"held_by", a.holdersOfGroupOffsets(ctx, a.ownProducerID()))
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("sluice: fetch the committed offsets of group %s: %w (still %w)", a.cfg.appID, ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sluice: fetch the committed offsets of group %s: %w", a.cfg.appID, err)
	}
	m := map[topicPartition]int64{}
	meta := map[topicPartition]string{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			m[topicPartition{o.Topic, o.Partition}] = o.At
			meta[topicPartition{o.Topic, o.Partition}] = o.Metadata
		}
	})
	return m, meta, nil
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
		q := r.queues[r.queue(t, id.partition)] // waited for until a fetch tells its position
		if off, ok := committed[topicPartition{t, id.partition}]; ok {
			q.committed = off
		}
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
	var cache *state.Cache
	if a.cfg.cacheBytes > 0 {
		cache = ts.cache
	}
	t, err := task.New(task.Config{
		ApplicationID: a.cfg.appID,
		SubTopology:   st,
		Partition:     id.partition,
		Collector:     newTaskCollector(a.prod, r),
		OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
			return a.openStore(ctx, r, spec, id.partition)
		},
		Changelog:              changelogWriter{p: a.prod, r: r},
		ChangelogBuffer:        a.cfg.changelogBuffer,
		Cache:                  cache,
		Logger:                 a.log,
		OnDeserializationError: a.cfg.onDeserialize,
		OnProcessingError:      a.cfg.onProcess,
		OnProductionError:      a.cfg.onProduce,
		DeadLetterTopic:        a.cfg.deadLetter,
		Dropped: func(taskID, node, reason string) {
			a.metrics.dropped.WithLabelValues(taskID, node, reason).Inc()
		},
		DeadLettered: func(taskID, node string, kind operators.ErrorKind) {
			a.metrics.deadLettered.WithLabelValues(taskID, node, kind.String()).Inc()
		},
		Metadata:     ts.metadata,
		GlobalStores: a.globals.views(),
		Punctuated:   a.metrics.punctuated(id),
		// The restore is committed before the processors' Init, whose
		// writes wait in the pending batch (and their changelog records
		// in r.held) for the task's first commit.
		Opened: func() error { return a.finishRestore(ts) },
	})
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
	var ends kadm.ListedOffsets
	err := a.retryBrokers(ctx, "list end offsets to check local state", func() (err error) {
		ends, err = kadm.NewClient(a.admin).ListEndOffsets(ctx, slices.Collect(maps.Keys(topics))...)
		return err
	})
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
