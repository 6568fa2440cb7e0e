package runtime

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// committer is the commit protocol: it makes the progress of tasks
// durable, their state, their output and the input offsets they reflect,
// so that a restart neither loses input nor applies it to state twice.
// The caller holds a.mu (the runners are the poll loop's).
//
// atLeastOnce commits the local state, then the group's offsets;
// exactlyOnce commits output, changelogs and offsets in one transaction,
// then the local state (see each).
type committer interface {
	// commit commits the progress of runners within ctx. Under
	// exactlyOnce runners must be every ready runner (one transaction
	// holds the output of all of them). An error wrapping errRolledBack
	// means the commit failed and was aborted: the runners' uncommitted
	// progress must be dropped (reviveLocked), and the instance goes on;
	// a *FencedError is fatal. Under atLeastOnce a refused commit the
	// caller can live with (the group moved on) is no error.
	commit(ctx context.Context, runners []*runner) error
	// abort drops the uncommitted progress of every runner (exactlyOnce:
	// aborts the open transaction and begins the next); the caller
	// revives the runners. reason labels the abort in the metrics.
	abort(ctx context.Context, reason string) error
	// spansAll reports that a commit must cover all ready runners, not
	// only those of revoked partitions.
	spansAll() bool
	// start prepares the first commit (exactlyOnce: initialises the
	// producer ID, fencing a predecessor, and begins a transaction).
	start(ctx context.Context) error
}

// The phases of a commit, as sluice_commit_phase_duration_seconds labels
// them, in the order each guarantee runs them (see atLeastOnce and
// exactlyOnce).
const (
	// phaseStores: the record caches and stores flushed into the tasks'
	// pending batches and changelogs (a cache's dirty entries sent on).
	phaseStores = "stores"
	// phaseProduce: every record produced so far acknowledged, and the
	// records Kafka refused handed to the production handler.
	phaseProduce = "produce"
	// phaseOffsets: the input offsets committed (OffsetCommit, or under
	// ExactlyOnce TxnOffsetCommit in the transaction; OffsetCommit there
	// too when nothing was produced, commitPlain).
	phaseOffsets = "offsets"
	// phaseTransaction: the transaction committed (EndTxn; ExactlyOnce;
	// next to nothing when nothing was produced: no EndTxn is sent).
	phaseTransaction = "transaction"
	// phaseLocal: each task's pending batch applied to its DB with the
	// input positions it reflects.
	phaseLocal = "local"
)

// phaseTimer times the phases of one commit. They are observed when the
// commit completes (observe), with sluice_commits_total and
// sluice_commit_duration_seconds: a commit that had nothing to commit,
// failed or was postponed is in none of them, so each phase's count is
// the commits' and their means add up to nearly the commits' mean (which
// also has the bookkeeping after the last phase).
type phaseTimer struct {
	h      *prometheus.HistogramVec
	last   time.Time
	n      int
	phases [5]struct {
		name string
		d    time.Duration
	}
}

// phases starts timing the phases of a commit that began at start.
func (m *metrics) phases(start time.Time) phaseTimer {
	return phaseTimer{h: m.commitPhase, last: start}
}

// done records the time since the previous phase ended (or the commit
// began) as phase's.
func (t *phaseTimer) done(phase string) {
	now := time.Now()
	if t.n < len(t.phases) { // a commit has at most the five phases above
		t.phases[t.n].name, t.phases[t.n].d = phase, now.Sub(t.last)
		t.n++
	}
	t.last = now
}

// observe observes the phases of the completed commit.
func (t *phaseTimer) observe() {
	for _, p := range t.phases[:t.n] {
		t.h.WithLabelValues(p.name).Observe(p.d.Seconds())
	}
}

// errRolledBack is wrapped by a commit that failed and was aborted.
var errRolledBack = errors.New("sluice: commit aborted: the uncommitted progress of the tasks was rolled back")

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

func (*atLeastOnce) spansAll() bool              { return false }
func (*atLeastOnce) start(context.Context) error { return nil }

// abort has nothing to do under at-least-once: closing a task drops its
// uncommitted local state, and what it wrote to Kafka stays.
func (*atLeastOnce) abort(context.Context, string) error { return nil }

func (c *atLeastOnce) commit(ctx context.Context, runners []*runner) error {
	if len(runners) == 0 {
		return nil
	}
	start := time.Now()
	phases := c.metrics.phases(start)
	if err := flushStores(runners); err != nil {
		return err
	}
	phases.done(phaseStores)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.prod.flush(fctx); err != nil {
		if fctx.Err() != nil && ctx.Err() == nil {
			// The output is not acknowledged within the bound: the
			// brokers are unreachable or slow. Nothing is committed, so
			// nothing is lost; the records stay buffered (franz-go
			// retries them without a delivery timeout), and the next
			// commit waits for them again.
			c.log.Warn("commit postponed: output not acknowledged within a minute (brokers unreachable?); nothing committed", "err", err)
			return nil
		}
		return err
	}
	// Records Kafka refused go to the production handler before the
	// offsets that pass their input records commit; what it sends (a
	// dead-letter record, a record refused only with its batch) is
	// flushed in turn.
	for {
		sent, err := c.prod.handleRefused(fctx)
		if err != nil {
			return err
		}
		if !sent {
			break
		}
		if err := c.prod.flush(fctx); err != nil {
			return err
		}
	}
	// Everything the stores wrote is in the changelogs now: the local
	// state may commit, with the input positions it reflects. Its log is
	// synced in the background, as under exactly-once (commitLocal): the
	// changelogs are the durable record, a crash loses at most this
	// commit's local copy, restored from them on the next start (a task
	// with a persistent store without a changelog syncs: taskState.
	// unlogged), and a
	// sync per task per commit held the workers for tens of milliseconds
	// at every 100 ms commit (docs/architecture.md, per-record cost).
	phases.done(phaseProduce)
	ends := c.prod.changelogEnds()
	if err := commitLocalState(runners, ends, false, c.prod.generation()); err != nil {
		return err
	}
	phases.done(phaseLocal)
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
	phases.done(phaseOffsets)
	if commitErr != nil {
		if isRebalanceError(commitErr) {
			// The group moved on without this member: its tasks are lost
			// (onLost follows) and their new owners reprocess from the last
			// commit. At-least-once holds; this is not fatal.
			c.log.Warn("commit refused: the group is rebalancing; the uncommitted input will be processed again", "err", commitErr)
			return nil
		}
		if transientBrokerErr(commitErr) && ctx.Err() == nil {
			// The brokers (the group coordinator) are unreachable: the
			// offsets stay where they were, the local state committed
			// above is ahead of them, which a restart handles (it
			// resumes at the later of the two); the next commit commits
			// these positions or later ones.
			c.log.Warn("commit postponed: the group coordinator is unavailable; the offsets are committed at the next commit", "err", commitErr)
			return nil
		}
		return fmt.Errorf("sluice: commit offsets: %w", commitErr)
	}
	for _, r := range runners {
		r.committed(offsets)
	}
	// No checkpoint file per commit: the commits are unsynced, so, as
	// under exactly-once, each task writes it when it closes, after a
	// sync (checkpointOnClose), and after a restore.
	phases.observe()
	c.metrics.commits.Inc()
	c.metrics.commitDur.Observe(time.Since(start).Seconds())
	c.purge(fctx, offsets)
	return nil
}

// exactlyOnce commits each interval's work in one Kafka transaction, in
// the order (DESIGN-12 §2):
//
//  1. flush the stores: record caches into the DBs' pending batches and
//     the changelogs (transactional sends);
//  2. flush the producer: outputs, changelogs, repartition records; a
//     failed send aborts;
//  3. add the runners' offsets to the transaction (TxnOffsetCommit), with
//     each task's processor metadata in the offset metadata of its first
//     input partition; when nothing was produced since the transaction
//     began, a plain offset commit instead, which leaves no transaction
//     open on the broker;
//  4. commit the transaction (EndTxn);
//  5. apply each task's pending batch to its DB with the positions,
//     changelog ends and metadata it reflects;
//  6. begin the next transaction.
//
// Local state therefore never runs ahead of committed data; it may lag
// it after a crash between 4 and 5, and then restores the last commit's
// changelog records, and takes the processor metadata from the committed
// offsets. No checkpoint file is written per commit. Any failure up to 4
// aborts the transaction and returns errRolledBack.
type exactlyOnce struct {
	client  *kgo.Client
	txn     *txnLayer
	prod    *producer
	log     *slog.Logger
	metrics *metrics
	purge   func(context.Context, map[string]map[int32]kgo.EpochOffset)
	// fenced makes the error of a fenced instance.
	fenced func(error) error
	// hook, when set (tests), is called at "offsets" (after step 3) and
	// "ended" (after step 4); an error at "offsets" aborts, at "ended" it
	// fails the commit before the local state is applied (a crash there).
	hook func(stage string) error
	// lastEnds are the changelog end offsets as of the last commit: an
	// abort restores the producer's to them.
	lastEnds map[state.TopicPartition]int64
	// broken is the error of an abort that failed: the transaction's
	// state is unknown, and no commit may follow.
	broken error
}

func (*exactlyOnce) spansAll() bool { return true }

func (c *exactlyOnce) start(ctx context.Context) error {
	if err := c.txn.init(ctx); err != nil {
		return c.classify(err)
	}
	c.lastEnds = c.prod.changelogEnds()
	return c.txn.begin()
}

func (c *exactlyOnce) commit(ctx context.Context, runners []*runner) error {
	if c.broken != nil {
		return c.broken
	}
	start := time.Now()
	phases := c.metrics.phases(start)
	if err := flushStores(runners); err != nil {
		return err
	}
	phases.done(phaseStores)
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range runners {
		r.offsets(offsets)
	}
	if len(offsets) == 0 && c.prod.sentInTxn() == 0 {
		return nil // nothing processed, nothing produced: no transaction
	}
	meta, err := processorMetadata(runners, offsets)
	if err != nil {
		// Deterministic: a rollback would fail the same way again.
		return c.fail(ctx, err)
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.prod.flush(fctx); err != nil {
		return c.rollback(ctx, err)
	}
	if c.prod.hasRefused() {
		// franz-go cannot commit a transaction with a refused batch:
		// abort, and replay knowing what was refused (deadletter.go).
		return c.rollback(ctx, errRefused)
	}
	phases.done(phaseProduce)
	if c.prod.sentInTxn() == 0 {
		err = c.commitPlain(fctx, offsets, meta)
	} else {
		err = c.txn.commitOffsets(fctx, offsets, meta)
	}
	phases.done(phaseOffsets)
	if err == nil && c.hook != nil {
		err = c.hook("offsets")
	}
	if err == nil {
		err = c.txn.commit(fctx)
	}
	if err != nil {
		return c.rollback(ctx, err)
	}
	phases.done(phaseTransaction)
	ends := c.prod.changelogEnds()
	if c.hook != nil {
		if err := c.hook("ended"); err != nil {
			return err
		}
	}
	// The transaction is committed: the local state may follow.
	if err := commitLocalState(runners, ends, false, c.prod.generation()); err != nil {
		return err
	}
	phases.done(phaseLocal)
	for _, r := range runners {
		r.committed(offsets)
	}
	c.lastEnds = ends
	c.prod.forgetRemembered(offsets)
	phases.observe()
	c.metrics.commits.Inc()
	c.metrics.txnCommits.Inc()
	c.metrics.commitDur.Observe(time.Since(start).Seconds())
	if err := c.begin(); err != nil {
		return err
	}
	c.purge(fctx, offsets)
	return nil
}

// commitPlain commits offsets outside of the transaction, which produced
// nothing: a TxnOffsetCommit alone would begin a transaction on the broker
// that franz-go does not end (it sends no EndTxn without produced
// records), holding the offsets unstable until the transaction timeout.
// A plain commit is safe there: no output depends on it, and the broker
// refuses it when this member's generation is over.
func (c *exactlyOnce) commitPlain(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset, meta map[string]map[int32]string) error {
	var commitErr error
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if m, ok := meta[t.Topic][t.Partitions[j].Partition]; ok {
					t.Partitions[j].Metadata = kmsg.StringPtr(m)
				}
			}
		}
		return nil
	})
	c.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
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
		return fmt.Errorf("sluice: commit offsets of group %s: %w", c.txn.group, commitErr)
	}
	return nil
}

// fail aborts the transaction after an error a rollback would not cure,
// and returns it: the caller stops.
func (c *exactlyOnce) fail(ctx context.Context, cause error) error {
	if err := c.abort(ctx, "error"); err != nil {
		c.log.Warn("abort the transaction", "err", err)
	}
	return cause
}

// rollback aborts after a failed commit: errRolledBack wrapping cause when
// the instance can go on, else a *FencedError or the abort's error.
func (c *exactlyOnce) rollback(ctx context.Context, cause error) error {
	if isFencing(cause) {
		return c.fenced(cause)
	}
	if errors.Is(cause, kerr.OffsetMetadataTooLarge) {
		return c.fail(ctx, fmt.Errorf("sluice: the tasks' processor metadata is over the broker's offset.metadata.max.bytes: %w", cause))
	}
	c.log.Warn("commit failed: aborting the transaction and rolling back the tasks' uncommitted progress", "err", cause)
	if err := c.abort(ctx, abortReason(cause)); err != nil {
		return err
	}
	return fmt.Errorf("%w: %w", errRolledBack, cause)
}

func (c *exactlyOnce) abort(ctx context.Context, reason string) error {
	// A fresh bound: the abort also follows a commit that ran out of time.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if ctx.Err() == nil {
		// Running: an abort during a broker outage waits for a broker
		// (txnLayer.abort retries), until ctx ends (the shutdown's
		// bound); giving up would leave the transaction's state unknown,
		// which is fatal (broken).
		cancel()
		actx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	if c.broken != nil {
		return c.broken
	}
	err := c.txn.abort(actx)
	if err == nil {
		err = c.prod.wait(actx) // the aborted records' promises
	}
	// What Kafka refused in the aborted transaction is handled when the
	// tasks replay it.
	c.prod.rememberRefused(actx)
	if err != nil {
		// The producer keeps its failures: nothing commits after this.
		c.broken = c.classify(err)
		return c.broken
	}
	c.prod.reset(c.lastEnds)
	c.metrics.txnAborts.WithLabelValues(reason).Inc()
	return c.begin()
}

// begin begins the next transaction. A producer that cannot has a
// producer ID franz-go keeps failed: the broker fenced it (a newer
// producer with the transactional ID, or, under KIP-890 part 2, the
// transaction timeout bumped its epoch); this instance cannot go on.
func (c *exactlyOnce) begin() error {
	c.prod.resetSent()
	if err := c.txn.begin(); err != nil {
		return c.fenced(err)
	}
	return nil
}

// classify makes err a *FencedError when it means this instance was
// replaced, or when the producer can no longer transact after an abort
// (franz-go keeps a fenced producer ID failed).
func (c *exactlyOnce) classify(err error) error {
	if isFencing(err) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.InvalidProducerIDMapping) {
		return c.fenced(err)
	}
	return err
}

// metadataPrefix starts the offset metadata of a task's processor
// metadata (base64 of task.EncodeMetadata).
const metadataPrefix = "sluice.md1:"

// processorMetadata returns the offset metadata of the tasks of runners
// that have processor metadata: on every partition of the task in
// offsets, as Kafka Streams writes it (read back merged by the largest
// value per key, committedMetadata). A task none of whose partitions is in
// offsets (metadata changed without input, e.g. a wall-clock punctuation)
// gets its first partition with a known offset added to offsets.
func processorMetadata(runners []*runner, offsets map[string]map[int32]kgo.EpochOffset) (map[string]map[int32]string, error) {
	meta := map[string]map[int32]string{}
	for _, r := range runners {
		md := r.task.Metadata()
		if len(md) == 0 {
			continue
		}
		enc := metadataPrefix + base64.StdEncoding.EncodeToString(task.EncodeMetadata(md))
		if len(enc) > maxOffsetMetadata {
			return nil, fmt.Errorf("sluice: task %s: processor metadata of %d bytes is over the broker's default offset.metadata.max.bytes (%d)", r.id, len(enc), maxOffsetMetadata)
		}
		put := func(q *partitionQueue) {
			if meta[q.topic] == nil {
				meta[q.topic] = map[int32]string{}
			}
			meta[q.topic][q.partition] = enc
		}
		any := false
		for _, q := range r.queues {
			if _, ok := offsets[q.topic][q.partition]; ok {
				put(q)
				any = true
			}
		}
		if any {
			continue
		}
		for _, q := range r.queues {
			off := max(q.next, q.committed)
			if off < 0 {
				continue
			}
			if offsets[q.topic] == nil {
				offsets[q.topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[q.topic][q.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
			put(q)
			break
		}
	}
	return meta, nil
}

// maxOffsetMetadata is the broker's default offset.metadata.max.bytes.
const maxOffsetMetadata = 4096

// decodeOffsetMetadata decodes the processor metadata of an offset's
// metadata, if it holds any.
func decodeOffsetMetadata(s string) (map[string]int64, bool, error) {
	rest, ok := strings.CutPrefix(s, metadataPrefix)
	if !ok {
		return nil, false, nil
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, false, fmt.Errorf("sluice: processor metadata in the committed offset: %w", err)
	}
	md, err := task.DecodeMetadata(b)
	if err != nil {
		return nil, false, err
	}
	return md, true, nil
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
// durable syncs each task's DB, as does a task with a persistent store
// without a changelog (taskState.unlogged), which nothing else can
// rebuild. Without it (the changelogs, or under exactly-once the
// committed transaction, are the durable record) the DBs apply without a
// sync: a crash may lose the
// last commits of a DB (Pebble keeps whole batches or none), which the
// next start restores from the changelogs, read from the offsets in the
// DB's meta record. The tasks commit in parallel, each DB its own: a
// Pebble apply now and then waits for its memtable's rotation (the tasks'
// DBs fill at the same rate and rotate together), and one after the other
// those waits added up to stalls of 300-500 ms in a commit, the workers
// waiting through them (docs/performance.md; in parallel the latency
// benchmark's p99 went from 355 to 184 ms, median of 3 interleaved runs).
// gen is the group generation the tasks wrote their changelog records
// with (GenerationHeader), recorded with their state; 0 if unknown.
func commitLocalState(runners []*runner, ends map[state.TopicPartition]int64, durable bool, gen int32) error {
	errs := make([]error, len(runners))
	var wg sync.WaitGroup
	for i, r := range runners {
		if gen > 0 {
			r.st.gen = gen
		}
		// A persistent store without a changelog has no other copy: its
		// task's commit is synced before the group's offsets move on.
		pos, md, synced := r.positions(), r.task.Metadata(), durable || r.st.unlogged
		commit := func() {
			if err := r.st.commitLocal(pos, md, ends, synced); err != nil {
				errs[i] = fmt.Errorf("sluice: task %s: commit local state: %w", r.id, err)
			}
		}
		if len(runners) == 1 {
			commit()
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			commit()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
