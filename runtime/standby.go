package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
)

// Standby tasks (Kafka Streams' StandbyTask and StoreChangelogReader's
// standby mode) keep copies of other instances' task state current, so
// that a task moving here restores only what its copy lacks:
//
//   - a standby task is the task's persistent stores in the task's usual
//     directory (its taskState: one Pebble DB, the same meta records), never
//     open as active and standby on one instance at a time;
//   - one client of the App's, in no group, tails the changelog partitions
//     of every standby task (kgo.ConsumePartitions, partitions added and
//     removed as standbys come and go; read_committed under exactly-once),
//     from the changelog offsets the DB's meta record holds, as a restore
//     starts;
//   - records are applied with the task's changelog restorer into the DB's
//     pending batch, which is committed every commit interval (and when the
//     standby closes) with the changelog offsets it reflects and the input
//     positions named by the records' input headers (task.InputHeader); a
//     clean close also flushes the DB and writes the checkpoint file;
//   - under at-least-once a changelog record may come from a flush whose
//     offsets commit never happened (the active crashed between the two):
//     applying it would leave the copy ahead of the group's offsets, and
//     the promoted task would either count that input twice or skip
//     output the crash lost. So a record naming an input offset at or past
//     the group's committed offset waits, with those behind it on its
//     partition, until the group's offsets pass it (read every commit
//     interval while records wait): a promoted standby holds only what a
//     restored task would keep, and the rest restores with the usual skip
//     of unconfirmed records. Under exactly-once only committed records are
//     read, so nothing waits;
//   - in-memory stores are not kept (Kafka Streams keeps them): they
//     restore in full when the task becomes active here; nor are stores
//     without a changelog, which have nothing to read;
//   - promotion: when a standby task becomes active here
//     (openRunnerLocked), the standby is committed and closed first; the
//     active then opens the same DB and restores from where the standby
//     stopped: only its lag. An active task that becomes standby here is
//     closed by the revoke before the standby opens;
//   - the directory of an open standby is neither swept nor deleted by a
//     cleanup timer; a standby that is no longer assigned here is closed
//     and its directory deleted after the cleanup delay, as an active task
//     that moved away.
//
// Lock order: a.mu before standbys.mu. The reader goroutine takes only
// standbys.mu (a fatal error is reported from a goroutine of its own).

// standbys are the instance's standby tasks and their changelog reader.
type standbys struct {
	a *App
	// mu guards tasks, byChangelog and the DBs of the standby tasks: the
	// reader applies and commits under it, reconcile opens and closes.
	// Writers of tasks hold App.mu too, so App.mu alone suffices to read it.
	mu          sync.Mutex
	tasks       map[taskID]*standbyTask
	byChangelog map[state.TopicPartition]*standbyPartition
	// open is the set of open standby tasks, read without locks by the
	// state directory's sweep and cleanup timers.
	open atomic.Pointer[map[taskID]bool]
	// gen counts partition additions: a fetch polled before a partition
	// was (re)added may carry records of its earlier session, skipped.
	gen atomic.Uint64

	cl     *kgo.Client // nil until the first standby opens
	cancel context.CancelFunc
	done   chan struct{}
}

// standbyTask is one standby task.
type standbyTask struct {
	id    taskID
	st    *taskState
	parts []*standbyPartition
	// committed are the group's committed offsets of the task's input
	// partitions as last read: the changelog records they confirm apply.
	committed map[topicPartition]int64
	dirty     bool // applied since the last commit
	lastLag   int64
}

// standbyPartition is one changelog partition of a standby task.
type standbyPartition struct {
	t        *standbyTask
	tp       state.TopicPartition
	store    string
	restorer *task.ChangelogRestorer
	// next is the next changelog offset to apply (-1: the log start);
	// end the partition's end offset (high watermark, or last stable
	// offset under exactly-once) as last fetched, -1 until known.
	next, end int64
	// held are records waiting for the group's offsets to confirm their
	// input (at-least-once), in offset order.
	held []*kgo.Record
	// since is the gen of the partition's addition to the client.
	since uint64
	// gens skips a former owner's records written after a newer owner's
	// (GenerationHeader).
	gens genFilter
	// staleLogged: a skipped record was logged (once per partition).
	staleLogged bool
}

func newStandbys(a *App) *standbys {
	return &standbys{a: a, tasks: map[taskID]*standbyTask{}, byChangelog: map[state.TopicPartition]*standbyPartition{}}
}

// has reports whether task id is open as a standby here.
func (sb *standbys) has(id taskID) bool {
	if sb == nil {
		return false
	}
	p := sb.open.Load()
	return p != nil && (*p)[id]
}

func (sb *standbys) publishLocked() {
	m := make(map[taskID]bool, len(sb.tasks))
	for id := range sb.tasks {
		m[id] = true
	}
	sb.open.Store(&m)
}

// reconcileStandbysLocked makes the standby tasks of this instance those
// of ids (the standby and warm-up tasks of its assignment, sorted): it
// opens those not open yet and closes, committing them, those no longer
// listed, whose state is deleted after the cleanup delay unless they run
// here as active. A task active here is not opened as standby (the group
// never assigns both; a revoke closes the active first); a task without a
// persistent logged store has nothing to keep. A standby that fails to
// open is logged and left out until the next reconcile: standbys only
// shorten restores. The caller holds a.mu.
func (a *App) reconcileStandbysLocked(ids []taskID) {
	if a.closing || a.runCtx == nil || a.runCtx.Err() != nil {
		return
	}
	sb := a.standbys
	if len(ids) == 0 && sb.open.Load() == nil {
		return // never had one
	}
	want := make(map[taskID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	// sb.tasks changes only with a.mu held as well: it is read here
	// without sb.mu, which the group's offsets are fetched without, so as
	// not to hold up the reader.
	var open []taskID
	for _, id := range ids {
		if sb.tasks[id] != nil {
			continue
		}
		if a.runners[id] != nil {
			a.log.Warn("standby task not opened: the task is active here", "task", id)
			continue
		}
		if !a.keepsStandby(id) {
			continue
		}
		open = append(open, id)
	}
	var committed map[topicPartition]int64
	if len(open) > 0 {
		var err error
		if committed, _, err = a.committedOffsets(a.runCtx); err != nil {
			a.log.Warn("standby tasks not opened", "tasks", open, "err", err)
			open = nil
		}
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for id := range sb.tasks {
		if want[id] {
			continue
		}
		sb.closeLocked(id, true)
		if a.runners[id] == nil {
			a.scheduleCleanup(id)
		}
	}
	for _, id := range open {
		if err := sb.openLocked(a.runCtx, id, committed); err != nil {
			a.log.Warn("standby task not opened", "task", id, "err", err)
		}
	}
	sb.publishLocked()
}

// keepsStandby reports whether task id has a store a standby keeps: a
// persistent one with a changelog.
func (a *App) keepsStandby(id taskID) bool {
	for _, spec := range a.topo.SubTopology(id.sub).Stores {
		if !spec.InMemory && !spec.DisableLogging {
			return true
		}
	}
	return false
}

// promoteStandbyLocked commits and closes the standby of task id, if it
// has one here, before the task opens as active on the same directory.
// The caller holds a.mu.
func (a *App) promoteStandbyLocked(id taskID) {
	sb := a.standbys
	if sb == nil {
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	t := sb.tasks[id]
	if t == nil {
		return
	}
	lag := t.lastLag
	sb.closeLocked(id, true)
	sb.publishLocked()
	a.metrics.standbyPromotions.Inc()
	a.log.Info("standby task promoted to active: restoring its lag", "task", id, "lag", lag)
}

// closeStandbysLocked commits and closes every standby task and stops the
// reader (shutdown). The caller holds a.mu.
func (a *App) closeStandbysLocked() {
	sb := a.standbys
	if sb == nil {
		return
	}
	sb.mu.Lock()
	for id := range sb.tasks {
		sb.closeLocked(id, true)
	}
	sb.publishLocked()
	sb.mu.Unlock()
	sb.stop()
}

// stop stops the reader and waits for it to end; its client is closed.
func (sb *standbys) stop() {
	if sb == nil || sb.cancel == nil {
		return
	}
	sb.cancel()
	<-sb.done
	sb.cancel = nil
}

// openLocked opens the standby of task id: its local state, checked as an
// active task's (state that does not match the broker is deleted), and
// its changelog partitions, added to the reader from the offsets the DB's
// meta record holds. committed are the group's committed offsets.
func (sb *standbys) openLocked(ctx context.Context, id taskID, committed map[topicPartition]int64) error {
	a := sb.a
	mine := map[topicPartition]int64{}
	for _, t := range a.layout.topics[id.sub] {
		tp := topicPartition{t, id.partition}
		if off, ok := committed[tp]; ok {
			mine[tp] = off
		}
	}
	ts, err := a.openTaskState(id, mine, true)
	if err != nil {
		return err
	}
	if reason, err := a.checkLocalState(ctx, ts, mine); err != nil {
		_ = ts.close()
		return err
	} else if reason != "" {
		a.log.Warn("standby: local state does not match the broker: deleting it", "task", id, "reason", reason)
		_ = ts.close()
		if err := os.RemoveAll(ts.dir); err != nil {
			return fmt.Errorf("sluice: standby task %s: delete local state %s: %w", id, ts.dir, err)
		}
		if ts, err = a.openTaskState(id, mine, true); err != nil {
			return err
		}
	}
	// A standby has no record cache: it leaves the budget to the actives.
	ts.share.Add(-1)
	ts.share = nil
	if sb.cl == nil {
		if err := sb.start(); err != nil {
			_ = ts.close()
			return err
		}
	}
	t := &standbyTask{id: id, st: ts, committed: mine}
	gen := sb.gen.Add(1)
	add := map[string]map[int32]kgo.Offset{}
	for _, spec := range a.topo.SubTopology(id.sub).Stores {
		if spec.InMemory || spec.DisableLogging {
			continue
		}
		tp := state.TopicPartition{Topic: task.ChangelogTopic(a.cfg.appID, spec), Partition: id.partition}
		r, err := task.NewChangelogRestorer(spec, ts.db.KeyValueStore(spec.Name), nil, nil)
		if err != nil {
			_ = ts.close()
			return fmt.Errorf("sluice: standby task %s: store %s: %w", id, spec.Name, err)
		}
		sp := &standbyPartition{t: t, tp: tp, store: spec.Name, restorer: r, next: -1, end: -1, since: gen}
		off := kgo.NewOffset().AtStart()
		if n, ok := ts.loggedEnds[topicPartition{tp.Topic, tp.Partition}]; ok {
			sp.next = n
			off = kgo.NewOffset().At(n)
			sp.gens.max = ts.openGen // the generation the local state reflects
		}
		ts.changelogs = append(ts.changelogs, tp)
		t.parts = append(t.parts, sp)
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = off
	}
	if ts.loggedEnds == nil {
		ts.loggedEnds = map[topicPartition]int64{}
	}
	sb.tasks[id] = t
	for _, sp := range t.parts {
		sb.byChangelog[sp.tp] = sp
	}
	sb.cl.AddConsumePartitions(add)
	var sum int64
	for _, off := range ts.loggedEnds {
		sum += off
	}
	a.offsets.set(id, sum)
	a.log.Info("standby task opened", "task", id, "from", ts.loggedEnds)
	return nil
}

// closeLocked removes the partitions of standby id from the reader and
// closes its state; with commit, it first commits what was applied, makes
// the DB durable and writes the checkpoint file (a promoted task restores
// from there). Without, what was applied since the last commit is dropped
// (as a crash would).
func (sb *standbys) closeLocked(id taskID, commit bool) {
	a := sb.a
	t := sb.tasks[id]
	if t == nil {
		return
	}
	rm := map[string][]int32{}
	for _, sp := range t.parts {
		rm[sp.tp.Topic] = append(rm[sp.tp.Topic], sp.tp.Partition)
		delete(sb.byChangelog, sp.tp)
	}
	sb.cl.RemoveConsumePartitions(rm)
	delete(sb.tasks, id)
	a.metrics.standbyLag.DeleteLabelValues(id.String())
	if commit {
		if err := sb.commitLocked(t, true); err != nil {
			a.log.Warn("standby task: commit at close", "task", id, "err", err)
		} else if err := t.st.db.Flush(); err != nil {
			a.log.Warn("standby task: flush at close", "task", id, "err", err)
		} else {
			for _, sp := range t.parts {
				if sp.next >= 0 {
					t.st.checkpoint[sp.tp] = sp.next
				}
			}
			if err := state.WriteCheckpoint(t.st.fsys(), filepath.Join(t.st.dir, checkpointFile), t.st.checkpoint); err != nil {
				a.log.Warn("standby task: write checkpoint", "task", id, "err", err)
			}
		}
	}
	if err := t.st.close(); err != nil {
		a.log.Warn("standby task: close state", "task", id, "err", err)
	}
	a.log.Info("standby task closed", "task", id, "committed", commit)
}

// commitLocked commits what task t applied since its last commit (with
// force, even if nothing was) with the changelog offsets and input
// positions it reflects, not synced: a crash loses at most the commits
// since the DB's last sync, which the next open reads again.
func (sb *standbys) commitLocked(t *standbyTask, force bool) error {
	if !t.dirty && !force {
		return nil
	}
	ts := t.st
	ends := map[topicPartition]int64{}
	var sum int64
	for _, sp := range t.parts {
		if sp.next >= 0 {
			ends[topicPartition{sp.tp.Topic, sp.tp.Partition}] = sp.next
			sum += sp.next
		}
	}
	if err := ts.db.PutPendingMeta(metaPositions, encodePositions(ts.positions)); err != nil {
		return err
	}
	if err := ts.db.PutPendingMeta(metaChangelogEnds, encodePositions(ends)); err != nil {
		return err
	}
	if err := ts.putGeneration(); err != nil {
		return err
	}
	if err := ts.db.Commit(false); err != nil {
		return err
	}
	ts.loggedEnds = ends
	t.dirty = false
	sb.a.offsets.set(t.id, sum)
	return nil
}

// start creates the reader's client, with no partition yet, and starts
// the reader.
func (sb *standbys) start() error {
	a := sb.a
	opts := append(a.baseClientOpts("standby"),
		kgo.KeepControlRecords(), // a transaction marker may be a partition's last offset
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // records deleted by retention
	)
	if a.cfg.guarantee == ExactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("sluice: standby reader: %w", err)
	}
	ctx, cancel := context.WithCancel(a.closeCtx)
	sb.cl, sb.cancel, sb.done = cl, cancel, make(chan struct{})
	go func() {
		defer close(sb.done)
		defer cl.Close()
		if err := sb.read(ctx); err != nil && ctx.Err() == nil {
			// Not under sb.mu, and not waiting for a.mu here: the
			// shutdown holds a.mu while it stops the reader.
			go func() {
				a.mu.Lock()
				a.failLocked(err)
				a.mu.Unlock()
			}()
		}
	}()
	return nil
}

// read applies the records of the standby partitions as they come and
// commits the standby tasks every commit interval, until ctx ends (nil)
// or a record cannot be applied. While records wait for the group's
// offsets, it reads them every commit interval, at least every second.
func (sb *standbys) read(ctx context.Context) error {
	a := sb.a
	confirmEvery := min(a.cfg.commitInterval, time.Second)
	lastCommit, lastConfirm := time.Now(), time.Now()
	for {
		gen := sb.gen.Load()
		// A poll waits for records: bounded, so that commits and
		// confirmations come without them.
		pctx, cancel := context.WithTimeout(ctx, confirmEvery)
		fs := sb.cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				a.log.Warn("standby reader: fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		sb.mu.Lock()
		var err error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			sp := sb.byChangelog[state.TopicPartition{Topic: p.Topic, Partition: p.Partition}]
			if err != nil || sp == nil {
				return // closed
			}
			if sp.since > gen && len(p.Records) > 0 && p.Records[0].Offset > max(sp.next, 0) {
				// Polled before the partition was added again: these
				// may be records of its earlier session, past a gap.
				// Fetch from the standby's position.
				sb.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{sp.tp.Topic: {sp.tp.Partition: {Epoch: -1, Offset: max(sp.next, 0)}}})
				return
			}
			if p.Err == nil {
				end := p.HighWatermark
				if a.cfg.guarantee == ExactlyOnce {
					end = p.LastStableOffset
				}
				sp.end = end
			}
			for _, r := range p.Records {
				if err = sb.offerLocked(sp, r); err != nil {
					return
				}
			}
		})
		waiting := false
		for _, t := range sb.tasks {
			if err == nil && t.st.db.Pending() >= restoreBatchSize {
				err = sb.commitLocked(t, false)
			}
			for _, sp := range t.parts {
				waiting = waiting || len(sp.held) > 0
			}
		}
		sb.updateLagLocked()
		sb.mu.Unlock()
		if err != nil {
			return err
		}
		var committed map[topicPartition]int64
		if waiting && time.Since(lastConfirm) >= confirmEvery {
			lastConfirm = time.Now()
			if committed, _, err = a.committedOffsets(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.log.Warn("standby reader: group offsets not read; records wait", "err", err)
				committed, err = nil, nil
			}
		}
		commit := time.Since(lastCommit) >= a.cfg.commitInterval
		if committed == nil && !commit {
			continue
		}
		if commit {
			lastCommit = time.Now()
		}
		sb.mu.Lock()
		for _, t := range sb.tasks {
			if committed != nil {
				err = sb.confirmLocked(t, committed)
			}
			if err == nil && commit {
				if err = sb.commitLocked(t, false); err != nil {
					err = fmt.Errorf("sluice: standby task %s: commit: %w", t.id, err)
				}
			}
			if err != nil {
				break
			}
		}
		sb.updateLagLocked()
		sb.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// confirmLocked takes the group's committed offsets for task t's input
// and applies the records that waited for them.
func (sb *standbys) confirmLocked(t *standbyTask, committed map[topicPartition]int64) error {
	for tp := range t.committed {
		if off, ok := committed[tp]; ok {
			t.committed[tp] = off
		}
	}
	for tp, off := range committed {
		if _, mine := t.committed[tp]; !mine && tp.partition == t.id.partition && slices.Contains(sb.a.layout.topics[t.id.sub], tp.topic) {
			t.committed[tp] = off
		}
	}
	for _, sp := range t.parts {
		held := sp.held
		sp.held = nil
		for i, r := range held {
			if err := sb.offerLocked(sp, r); err != nil {
				return err
			}
			if len(sp.held) > 0 { // still waiting: so do those after it
				sp.held = append(sp.held, held[i+1:]...)
				break
			}
		}
	}
	return nil
}

// offerLocked applies r to its standby partition, or holds it while it,
// or a record before it, waits for the group's offsets to confirm its
// input (at-least-once).
func (sb *standbys) offerLocked(sp *standbyPartition, r *kgo.Record) error {
	if r.Offset < sp.next {
		return nil // already applied
	}
	if len(sp.held) > 0 || !sb.confirmed(sp.t, r) {
		sp.held = append(sp.held, r)
		return nil
	}
	t := sp.t
	if g, ok := recordGeneration(r); ok && !r.Attrs.IsControl() {
		prev, cur := sp.gens.max, sb.a.prod.generation()
		if sp.gens.stale(g, cur) {
			if !sp.staleLogged {
				sp.staleLogged = true
				sb.a.log.Warn("standby task: skipping changelog records of a former owner written after a newer owner's (a zombie's writes)",
					"task", t.id.String(), "store", sp.store, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
					"generation", g, "newer_generation", prev, "current_generation", cur)
			}
			sb.a.metrics.staleSkipped.Inc()
			sp.next = r.Offset + 1
			t.dirty = true
			return nil
		}
		if sp.gens.max > t.st.gen || (t.st.gen > cur && sp.gens.max <= cur) {
			t.st.gen = sp.gens.max
		}
	}
	if !r.Attrs.IsControl() {
		if err := sp.restorer.Apply(r.Key, r.Value, r.Timestamp.UnixMilli()); err != nil {
			return fmt.Errorf("sluice: standby task %s: store %s: changelog %s partition %d offset %d: %w",
				t.id, sp.store, r.Topic, r.Partition, r.Offset, err)
		}
		for _, h := range r.Headers {
			if h.Key != task.InputHeader {
				continue
			}
			if topic, p, off, ok := task.ParseInputPosition(h.Value); ok {
				tp := topicPartition{topic, p}
				if cur, has := t.st.positions[tp]; !has || off+1 > cur {
					t.st.positions[tp] = off + 1
				}
			}
		}
		sb.a.metrics.standbyApplied.WithLabelValues(t.id.String()).Inc()
	}
	sp.next = r.Offset + 1
	t.dirty = true
	return nil
}

// confirmed reports whether changelog record r of standby t reflects
// committed input: always under exactly-once (only committed records are
// read), else when its input header names an offset the group's offsets
// have passed, or it names none.
func (sb *standbys) confirmed(t *standbyTask, r *kgo.Record) bool {
	if sb.a.cfg.guarantee == ExactlyOnce || r.Attrs.IsControl() {
		return true
	}
	for _, h := range r.Headers {
		if h.Key != task.InputHeader {
			continue
		}
		if topic, p, off, ok := task.ParseInputPosition(h.Value); ok {
			c, has := t.committed[topicPartition{topic, p}]
			return has && off < c
		}
	}
	return true
}

// updateLagLocked sets each standby task's lag: the records of its
// changelog partitions past what it applied.
func (sb *standbys) updateLagLocked() {
	for _, t := range sb.tasks {
		var lag int64
		for _, sp := range t.parts {
			if sp.end >= 0 {
				lag += max(sp.end-max(sp.next, 0), 0)
			}
		}
		t.lastLag = lag
		sb.a.metrics.standbyLag.WithLabelValues(t.id.String()).Set(float64(lag))
	}
}

// standbyState returns, for tests, the next changelog offsets standby id
// has applied, by changelog partition, and whether it is open.
func (sb *standbys) standbyState(id taskID) (map[state.TopicPartition]int64, bool) {
	if sb == nil {
		return nil, false
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	t := sb.tasks[id]
	if t == nil {
		return nil, false
	}
	m := map[state.TopicPartition]int64{}
	for _, sp := range t.parts {
		m[sp.tp] = sp.next
	}
	return m, true
}
