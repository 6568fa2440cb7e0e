package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// worker processes the runners it is handed, one at a time, so a task's
// records are processed in order by one goroutine per round.
func (a *App) worker() {
	for r := range a.work {
		if r.err == nil {
			r.err = r.process(a.now)
		}
		a.done <- r
	}
}

// loop polls, processes and commits until ctx ends or a fatal error.
func (a *App) loop(ctx context.Context) error {
	lastCommit := time.Now()
	// The sweep of stale task state starts once the group has assigned
	// this instance tasks, and comes a cleanup delay later: a task
	// directory is stale only if no task of this instance runs on it.
	var lastSweep time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := a.client.PollRecords(pctx, a.cfg.maxPollRecords)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			a.client.AllowRebalance()
			return nil
		}
		a.metrics.polled(fetches.NumRecords())
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if _, ok := errors.AsType[*kgo.ErrGroupSession](err); ok && (errors.Is(err, kerr.UnknownMemberID) ||
				errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.StaleMemberEpoch)) {
				// The group moved on without this member (a long pause,
				// a missed session): franz-go called onLost (under
				// ExactlyOnce the open transaction was aborted) and
				// rejoins.
				a.log.Warn("group session lost: rejoining", "group", a.cfg.appID, "err", err)
				return
			}
			var ke *kerr.Error
			if errors.As(err, &ke) && !ke.Retriable && fetchErr == nil {
				fetchErr = fmt.Errorf("sluice: fetch topic %s partition %d: %w", t, p, err)
				if _, ok := errors.AsType[*kgo.ErrGroupSession](err); ok {
					fetchErr = fmt.Errorf("sluice: group %s: %w", a.cfg.appID, err)
				}
				// An ACL missing: name the resource and the operation.
				fetchErr = a.asAuthError(fetchErr, kmsg.ACLResourceTypeTopic, t, kmsg.ACLOperationRead)
				return
			}
			a.log.Warn("fetch error, retrying", "topic", t, "partition", p, "err", err)
		})
		a.mu.Lock()
		if errors.Is(fetchErr, kerr.FencedInstanceID) {
			// A newer member joined with this instance's InstanceID.
			fetchErr = a.fencedError(fetchErr)
			a.failLocked(fetchErr)
		}
		// Tasks a group callback rolled back are revived now that the
		// loop may rewind their partitions; this poll's records of them
		// came from the old positions and are dropped.
		revived := map[topicPartition]bool{}
		if len(a.revive) > 0 && fetchErr == nil {
			for _, tp := range a.revivePendingLocked() {
				revived[tp] = true
			}
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if revived[topicPartition{p.Topic, p.Partition}] {
				return
			}
			r := a.byPartition[topicPartition{p.Topic, p.Partition}]
			if r == nil {
				if len(p.Records) > 0 {
					fetchErr = fmt.Errorf("sluice: records for topic %s partition %d, which no task of this instance owns", p.Topic, p.Partition)
				}
				return
			}
			r.add(p.Topic, p.Partition, p.Records, fetchEnd(p, a.cfg.guarantee == ExactlyOnce))
		})
		err := fetchErr
		if err == nil {
			err = a.activateRestoredLocked()
		}
		if err == nil {
			err = a.processLocked()
			if err != nil && a.cfg.guarantee == ExactlyOnce && isProduceError(err) {
				// A send of the transaction failed (e.g. its producer
				// epoch was bumped): abort and roll back, or learn that
				// this instance was fenced.
				err = a.rollbackLocked(err)
			}
		}
		if err == nil && time.Since(lastCommit) >= a.cfg.commitInterval {
			rs := ready(slices.Collect(maps.Values(a.runners)))
			err = a.commits.commit(a.groupCtx, rs)
			lastCommit = time.Now()
			if errors.Is(err, errRolledBack) {
				// Rebalances are blocked until AllowRebalance: the
				// partitions can be rewound here.
				err = a.reviveLocked(runnerIDs(rs))
			}
			switch {
			case err != nil && a.cfg.guarantee == ExactlyOnce:
				// Not rolled back: this instance was fenced, the
				// transaction's outcome is unknown, or the local state
				// failed after it committed. The shutdown must not
				// commit again, even when it began meanwhile.
				a.failLocked(err)
			case err != nil && ctx.Err() != nil:
				// The shutdown began while the commit waited (a commit
				// waits for a rebalance in progress) and ended it at the
				// bound: the shutdown's final commit reports it.
				a.log.Warn("commit abandoned: shutting down", "err", err)
				err = nil
			}
		}
		if err == nil {
			a.updateStateLocked()
		}
		a.publishTasksLocked()
		if err == nil && len(a.runners) > 0 {
			if lastSweep.IsZero() {
				lastSweep = time.Now()
			} else if time.Since(lastSweep) >= max(a.cfg.cleanupDelay, time.Second) {
				a.sweepStateDirLocked()
				lastSweep = time.Now()
			}
		}
		a.mu.Unlock()
		a.client.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// fetchEnd is the end of a fetched partition for its task's wait
// (runner.waiting), -1 if the fetch failed: the high watermark, or with
// readCommitted (exactly-once) the last stable offset, as far as a
// read_committed fetch can get. Records of a transaction still open come
// only once it commits: waiting for them up to the high watermark would
// hold the task maxFetchWait each time records of the partition arrive
// (a repartition topic another instance writes: every commit interval).
func fetchEnd(p kgo.FetchTopicPartition, readCommitted bool) int64 {
	switch {
	case p.Err != nil:
		return -1
	case readCommitted:
		return p.LastStableOffset
	default:
		return p.HighWatermark
	}
}

// processLocked hands every restored runner to the workers for one round
// and waits for all of them.
func (a *App) processLocked() error {
	a.now = time.Now()
	rs := ready(slices.Collect(maps.Values(a.runners)))
	n := len(rs)
	a.prod.beginRound()
	go func() {
		for _, r := range rs {
			a.work <- r
		}
	}()
	var errs []error
	for range n {
		r := <-a.done
		if r.err != nil {
			errs = append(errs, r.err)
		}
		a.metrics.taskRound(r)
	}
	a.prod.endRound()
	if len(errs) > 0 {
		err := errors.Join(errs...)
		if a.cfg.guarantee == ExactlyOnce && isProduceError(err) {
			return err // the loop rolls back
		}
		a.fatal = err
		return a.fatal
	}
	return a.prod.err()
}

// isProduceError reports a failed send.
func isProduceError(err error) bool {
	_, ok := errors.AsType[*ProduceError](err)
	return ok
}

// rollbackLocked aborts the open transaction after cause and revives every
// ready task (ExactlyOnce); it returns a *FencedError when this instance
// was fenced, or the abort's error.
func (a *App) rollbackLocked(cause error) error {
	rs := ready(slices.Collect(maps.Values(a.runners)))
	a.log.Warn("send failed: aborting the transaction and rolling back the tasks' uncommitted progress", "err", cause)
	reason := abortReason(cause)
	if isFencing(cause) {
		err := a.fencedError(cause)
		a.failLocked(err)
		return err
	}
	if err := a.commits.abort(a.groupCtx, reason); err != nil {
		a.failLocked(err)
		return err
	}
	for _, r := range rs {
		r.err = nil
	}
	return a.reviveLocked(runnerIDs(rs))
}

func runnerIDs(rs []*runner) []taskID {
	ids := make([]taskID, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	return ids
}
