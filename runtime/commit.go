package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/topology"
)

// commitLocked commits the progress of runners: it flushes their stores,
// waits for everything produced so far (output and changelogs), then
// commits the offsets of the records processed. Output and state changes
// therefore reach Kafka before the offsets that cover them: at-least-once.
// ctx bounds the commit; it is a.closeCtx, which a shutdown does not
// cancel before its bound.
func (a *App) commitLocked(ctx context.Context, runners []*runner) error {
	if len(runners) == 0 {
		return nil
	}
	start := time.Now()
	for _, r := range runners {
		if err := r.task.Flush(); err != nil {
			return err
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.prod.flush(fctx); err != nil {
		return err
	}
	// Everything the stores wrote is in the changelogs now: the local
	// state may commit, with the input positions it reflects.
	ends := a.prod.changelogEnds()
	for _, r := range runners {
		if err := r.st.commitLocal(r.positions(), r.task.Metadata(), ends); err != nil {
			return fmt.Errorf("sluice: task %s: commit local state: %w", r.id, err)
		}
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range runners {
		r.offsets(offsets)
	}
	if len(offsets) == 0 {
		return nil
	}
	var commitErr error
	a.client.CommitOffsetsSync(fctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && commitErr == nil {
					commitErr = fmt.Errorf("topic %s partition %d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if commitErr != nil {
		if isRebalanceError(commitErr) {
			// The group moved on without this member: its tasks are lost
			// (onLost follows) and their new owners reprocess from the last
			// commit. At-least-once holds; this is not fatal.
			a.log.Warn("commit refused: the group is rebalancing; the uncommitted input will be processed again", "err", commitErr)
			return nil
		}
		return fmt.Errorf("sluice: commit offsets: %w", commitErr)
	}
	for _, r := range runners {
		r.committed(offsets)
	}
	for _, r := range runners {
		if err := r.st.writeCheckpoint(ends); err != nil {
			a.log.Warn("write checkpoint", "task", r.id, "err", err)
		}
	}
	a.metrics.commits.Inc()
	a.metrics.commitDur.Observe(time.Since(start).Seconds())
	a.purgeRepartition(fctx, offsets)
	return nil
}

// purgeRepartition deletes the records of repartition topics below the
// committed offsets: they are consumed and will never be read again.
func (a *App) purgeRepartition(ctx context.Context, committed map[string]map[int32]kgo.EpochOffset) {
	var os kadm.Offsets
	for t, ps := range committed {
		if kind, internal := a.layout.kinds[t]; !internal || kind != topology.Repartition {
			continue
		}
		for p, eo := range ps {
			os.Add(kadm.Offset{Topic: t, Partition: p, At: eo.Offset})
		}
	}
	if len(os) == 0 {
		return
	}
	if _, err := kadm.NewClient(a.admin).DeleteRecords(ctx, os); err != nil {
		a.log.Warn("purge repartition topics", "err", err)
	}
}

// isRebalanceError reports a commit refused because this member's
// generation is over.
func isRebalanceError(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID)
}
