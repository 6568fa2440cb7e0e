package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// committer is the commit protocol: it makes the progress of tasks
// durable, their state, their output and the input offsets they reflect,
// so that a restart neither loses input nor applies it to state twice.
// The caller holds a.mu (the runners are the poll loop's).
//
// atLeastOnce is the implementation of today. Exactly-once will be a
// second one, with the same steps in another order inside a transaction:
// flush the stores (flushStores), flush the transactional producer, add
// the offsets to the transaction and commit it, then commit each task's
// local state (commitLocalState) and write its checkpoint
// (writeCheckpoints); an aborted transaction drops the tasks' pending
// writes instead.
type committer interface {
	// commit commits the progress of runners within ctx; a refused
	// commit the caller can live with (the group moved on) is no error.
	commit(ctx context.Context, runners []*runner) error
}

// atLeastOnce commits in the order: flush the stores (record caches into
// the DBs' pending batches and the changelogs), wait for every produced
// record (output and changelogs), commit each task's local state with the
// input positions it reflects, commit the group's offsets, write the
// checkpoint files. Output and state changes therefore reach Kafka before
// the offsets that cover them: at-least-once. See taskstate.go for why the
// local state never runs ahead of the changelog.
type atLeastOnce struct {
	client  *kgo.Client
	prod    *producer
	log     *slog.Logger
	metrics *metrics
	// purge deletes the consumed records of repartition topics below the
	// committed offsets.
	purge func(context.Context, map[string]map[int32]kgo.EpochOffset)
}

func (c *atLeastOnce) commit(ctx context.Context, runners []*runner) error {
	if len(runners) == 0 {
		return nil
	}
	start := time.Now()
	if err := flushStores(runners); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.prod.flush(fctx); err != nil {
		return err
	}
	// Everything the stores wrote is in the changelogs now: the local
	// state may commit, with the input positions it reflects.
	ends := c.prod.changelogEnds()
	if err := commitLocalState(runners, ends, true); err != nil {
		return err
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range runners {
		r.offsets(offsets)
	}
	if len(offsets) == 0 {
		return nil
	}
	var commitErr error
	c.client.CommitOffsetsSync(fctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
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
			c.log.Warn("commit refused: the group is rebalancing; the uncommitted input will be processed again", "err", commitErr)
			return nil
		}
		return fmt.Errorf("sluice: commit offsets: %w", commitErr)
	}
	for _, r := range runners {
		r.committed(offsets)
	}
	writeCheckpoints(c.log, runners, ends)
	c.metrics.commits.Inc()
	c.metrics.commitDur.Observe(time.Since(start).Seconds())
	c.purge(fctx, offsets)
	return nil
}

// flushStores flushes the record caches of the runners' tasks: each dirty
// entry goes downstream, to its DB's pending batch and to its changelog.
func flushStores(runners []*runner) error {
	for _, r := range runners {
		if err := r.task.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// commitLocalState commits each task's pending writes with the input
// positions and processor metadata they reflect; ends are the changelog
// end offsets the producer has seen acknowledged.
//
// durable (at-least-once) syncs each task's DB, one after the other: the
// local state is the record of what the changelog holds, written before
// the offsets commit. Without durable (exactly-once, after the transaction
// committed, which is the durable record) the tasks apply without a sync,
// in parallel over at most GOMAXPROCS goroutines: a crash may lose the
// last commits of a DB (Pebble keeps whole batches or none), which the
// next start restores from the changelogs, read from the offsets in the
// DB's meta record. BenchmarkCommitLocalState measures both; see
// docs/state.md.
func commitLocalState(runners []*runner, ends map[state.TopicPartition]int64, durable bool) error {
	return eachTask(len(runners), !durable, func(i int) error {
		r := runners[i]
		if err := r.st.commitLocal(r.positions(), r.task.Metadata(), ends, durable); err != nil {
			return fmt.Errorf("sluice: task %s: commit local state: %w", r.id, err)
		}
		return nil
	})
}

// eachTask calls f for 0..n-1, one after the other or, with parallel, on
// at most GOMAXPROCS goroutines, and joins the errors.
func eachTask(n int, parallel bool, f func(i int) error) error {
	workers := min(goruntime.GOMAXPROCS(0), n)
	if !parallel || workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// writeCheckpoints writes each task's checkpoint file; a failure only
// costs a longer restore, so it is logged.
func writeCheckpoints(log *slog.Logger, runners []*runner, ends map[state.TopicPartition]int64) {
	for _, r := range runners {
		if err := r.st.writeCheckpoint(ends); err != nil {
			log.Warn("write checkpoint", "task", r.id, "err", err)
		}
	}
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
