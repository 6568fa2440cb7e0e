package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// App runs a topology on Kafka as one instance of an application: a member
// of the consumer group named by the application ID, which processes the
// tasks the group assigns it. Start more instances with the same
// application ID to share the work.
type App struct {
	topo    *topology.Topology
	cfg     config
	log     *slog.Logger
	metrics *metrics
	brokers []string

	running  atomic.Bool
	closeMu  sync.Mutex
	closed   bool
	cancel   context.CancelFunc
	finished chan struct{}

	// runCtx is Run's context: its end begins the shutdown, and cancels
	// the restores in progress. closeCtx ends ShutdownTimeout after it,
	// or when Run returns: it bounds the shutdown's commit and leave, and
	// is the context of every client of the App, so that a join or a
	// request still in flight then is abandoned.
	runCtx   context.Context
	closeCtx context.Context

	admin  *kgo.Client
	layout *layout
	client *kgo.Client
	prod   *producer

	// mu guards runners and byPartition: the poll loop holds it while
	// processing and committing, the rebalance callbacks while they change
	// the assignment.
	mu          sync.Mutex
	runners     map[taskID]*runner
	byPartition map[topicPartition]*runner
	fatal       error
	changed     chan struct{} // closed when the set of tasks changes
	// closing is set when the shutdown begins: from then on no task is
	// created, so nothing opens a store while the App releases the block
	// cache and the state directory.
	closing bool

	// resume holds, per input partition of a task being assigned, the
	// offset after the latest input its restored state reflects, for
	// adjustOffsets. Guarded by resumeMu, not mu.
	resumeMu sync.Mutex
	resume   map[topicPartition]int64

	work chan *runner
	done chan *runner
	now  time.Time

	// Local state: the instance's directory in the state directory, its
	// lock, the block cache shared by the tasks' Pebble DBs, and the timers
	// deleting the state of tasks that moved away.
	appDir     string
	dirLock    *state.DirLock
	blockCache *pebble.Cache
	cleanupMu  sync.Mutex
	cleanups   map[taskID]*time.Timer
	// cacheShare is the record cache budget, divided evenly among the
	// tasks of the moment.
	cacheShare *state.CacheShare
}

type topicPartition struct {
	topic     string
	partition int32
}

// New validates the options and returns an App for topo. Nothing connects
// until Run.
func New(topo *topology.Topology, opts ...Option) (*App, error) {
	if topo == nil {
		return nil, errors.New("sluice: runtime.New: nil topology")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newMetrics(cfg.appID, cfg.registerer)
	if err != nil {
		return nil, fmt.Errorf("sluice: register metrics: %w", err)
	}
	return &App{
		topo: topo, cfg: cfg, log: log.With("app", cfg.appID), metrics: m,
		brokers: cfg.brokers, finished: make(chan struct{}),
		runners: map[taskID]*runner{}, byPartition: map[topicPartition]*runner{}, resume: map[topicPartition]int64{},
		cleanups: map[taskID]*time.Timer{}, cacheShare: &state.CacheShare{Total: cfg.cacheBytes},
	}, nil
}

// Run connects, creates the internal topics, joins the group and processes
// until ctx ends, Close is called, or a fatal error occurs; it then shuts
// down gracefully: it finishes the records in hand, flushes state and
// output, commits offsets, closes the stores and leaves the group. It
// returns nil after a shutdown asked for by ctx or Close. The shutdown
// takes at most ShutdownTimeout, in every state: a rebalance or a restore
// in progress is abandoned. Run may be called once.
func (a *App) Run(ctx context.Context) (err error) {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("sluice: App.Run called twice")
	}
	defer close(a.finished)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.closeMu.Lock()
	if a.closed {
		a.closeMu.Unlock()
		return ErrClosed
	}
	a.cancel = cancel
	a.closeMu.Unlock()

	closeCtx, closeCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer closeCancel()
	a.runCtx, a.closeCtx = ctx, closeCtx
	// The shutdown's bound starts when ctx ends.
	bound := make(chan *time.Timer, 1)
	stopBound := context.AfterFunc(ctx, func() { bound <- time.AfterFunc(a.cfg.shutdownTime, closeCancel) })
	defer func() {
		if !stopBound() {
			(<-bound).Stop()
		}
	}()

	defer a.release()
	if err := a.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // shut down while starting, as asked
		}
		return err
	}
	a.work = make(chan *runner)
	a.done = make(chan *runner)
	for range a.cfg.workers {
		go a.worker()
	}
	a.log.Info("running", "brokers", a.brokers, "tasks", a.layout.tasks)
	loopErr := a.loop(ctx)
	shutdownErr := a.shutdown()
	if loopErr != nil {
		return loopErr
	}
	return shutdownErr
}

// Close stops a running App gracefully and waits for Run to return. It is
// idempotent and safe to call from any goroutine.
func (a *App) Close() error {
	a.closeMu.Lock()
	if a.closed {
		a.closeMu.Unlock()
		if a.running.Load() {
			<-a.finished
		}
		return nil
	}
	a.closed = true
	cancel := a.cancel
	a.closeMu.Unlock()
	if cancel != nil {
		cancel()
	}
	if a.running.Load() {
		<-a.finished
	}
	return nil
}

// baseClientOpts are the options every client of the App uses.
func (a *App) baseClientOpts() []kgo.Opt {
	opts := slices.Clone(a.cfg.clientOpts)
	return append(opts, kgo.SeedBrokers(a.brokers...), kgo.WithContext(a.closeCtx))
}

// start checks the brokers within
// the start-up timeout, plans and creates the internal topics and joins the
// group.
func (a *App) start(ctx context.Context) error {
	if err := a.openStateDir(); err != nil {
		return err
	}
	admin, err := kgo.NewClient(a.baseClientOpts()...)
	if err != nil {
		return &BrokerError{Brokers: a.brokers, Err: err}
	}
	a.admin = admin
	adm := kadm.NewClient(admin)
	sctx, cancel := context.WithTimeout(ctx, a.cfg.startupTimeout)
	defer cancel()
	if _, err := adm.BrokerMetadata(sctx); err != nil {
		if ctx.Err() == nil && sctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", a.cfg.startupTimeout, err)
		}
		return &BrokerError{Brokers: a.brokers, Err: err}
	}
	l, err := a.planTopics(sctx, adm)
	if err != nil {
		return err
	}
	a.layout = l
	if err := a.createInternalTopics(sctx, adm, l); err != nil {
		return err
	}
	bal := &taskBalancer{subs: map[string]int{}, topics: l.topics}
	for sub, ts := range l.topics {
		for _, t := range ts {
			bal.subs[t] = sub
		}
	}
	// The rebalance callbacks use the producer: it exists before the client
	// that calls them, and gets the client once it is made.
	a.prod = newProducer(nil)
	opts := append(a.baseClientOpts(),
		// No kgo.RecordDeliveryTimeout: franz-go measures it from the
		// record's timestamp, which here is event time (a window's, or
		// an old input record's when reprocessing history), so records
		// would time out before they were sent. A commit's flush is
		// bounded by its own context instead.
		kgo.ConsumerGroup(a.cfg.appID),
		kgo.ConsumeTopics(l.sourceTopics()...),
		kgo.Balancers(bal),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
		kgo.AdjustFetchOffsetsFn(a.adjustOffsets),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return &BrokerError{Brokers: a.brokers, Err: err}
	}
	a.client = cl
	a.prod.cl = cl
	return nil
}

// openStateDir locks the instance's state directory and creates the block
// cache its tasks' DBs share. It deletes nothing: stale task state is swept
// by the poll loop once tasks are assigned (sweepStateDir).
func (a *App) openStateDir() error {
	dir := a.cfg.stateDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sluice")
	}
	a.appDir = filepath.Join(dir, a.cfg.appID)
	l, err := state.LockDir(a.appDir)
	if err != nil {
		return err
	}
	a.dirLock = l
	a.blockCache = pebble.NewCache(a.cfg.blockCache)
	return nil
}

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
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			var ke *kerr.Error
			if errors.As(err, &ke) && !ke.Retriable && fetchErr == nil {
				fetchErr = fmt.Errorf("sluice: fetch topic %s partition %d: %w", t, p, err)
				return
			}
			a.log.Warn("fetch error, retrying", "topic", t, "partition", p, "err", err)
		})
		a.mu.Lock()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			r := a.byPartition[topicPartition{p.Topic, p.Partition}]
			if r == nil {
				fetchErr = fmt.Errorf("sluice: records for topic %s partition %d, which no task of this instance owns", p.Topic, p.Partition)
				return
			}
			r.add(p.Topic, p.Partition, p.Records)
		})
		err := fetchErr
		if err == nil {
			err = a.processLocked()
		}
		if err == nil && time.Since(lastCommit) >= a.cfg.commitInterval {
			err = a.commitLocked(a.closeCtx, slices.Collect(maps.Values(a.runners)))
			lastCommit = time.Now()
		}
		if err == nil && len(a.runners) > 0 {
			if lastSweep.IsZero() {
				lastSweep = time.Now()
			} else if time.Since(lastSweep) >= max(a.cfg.cleanupDelay, time.Second) {
				a.sweepStateDir()
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

// processLocked hands every runner to the workers for one round and waits
// for all of them.
func (a *App) processLocked() error {
	a.now = time.Now()
	rs := slices.Collect(maps.Values(a.runners))
	n := len(rs)
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
		if r.processed > 0 {
			a.metrics.processed.WithLabelValues(r.task.ID()).Add(float64(r.processed))
			r.processed = 0
		}
	}
	if len(errs) > 0 {
		a.fatal = errors.Join(errs...)
		return a.fatal
	}
	return a.prod.err()
}

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

// onAssigned creates the tasks of newly assigned partitions. Once the
// shutdown has begun it creates none: the partitions are given up with the
// group, and their restores, cancelled with a.runCtx, resume from the
// tasks' checkpoints at the next start.
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
				if r, err = a.newRunner(ctx, id, committed); err != nil {
					if ctx.Err() != nil {
						a.log.Info("task creation abandoned: shutting down", "task", id, "err", err)
					} else {
						a.failLocked(err)
					}
					return
				}
				a.runners[id] = r
			}
			a.byPartition[topicPartition{topic, p}] = r
			r.queue(topic, p)
		}
	}
	a.tasksChangedLocked()
	a.log.Info("partitions assigned", "partitions", assigned, "tasks", len(a.runners))
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
		if err := a.commitLocked(a.closeCtx, rs); err != nil {
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
// tasks that moved away, the state is deleted after the cleanup delay.
func (a *App) closeRunnersLocked(rs []*runner, moved bool) {
	for _, r := range rs {
		if err := r.task.Close(); err != nil {
			a.log.Warn("close task", "task", r.task.ID(), "err", err)
		}
		persistent := r.st.db != nil
		if err := r.st.close(); err != nil {
			a.log.Warn("close task state", "task", r.task.ID(), "err", err)
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

func (a *App) failLocked(err error) {
	if a.fatal == nil {
		a.fatal = err
		a.log.Error("fatal error", "err", err)
	}
	a.closeMu.Lock()
	cancel := a.cancel
	a.closeMu.Unlock()
	if cancel != nil {
		cancel()
	}
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

// newRunner instantiates the task of id: it opens its local state and
// restores its stores from their changelogs. committed holds the group's
// committed offsets.
func (a *App) newRunner(ctx context.Context, id taskID, committed map[topicPartition]int64) (*runner, error) {
	st := a.topo.SubTopologies()[id.sub]
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
	policy := task.FailOnDeserializationError
	if a.cfg.skipBadRecords {
		policy = task.SkipOnDeserializationError
	}
	t, err := task.New(task.Config{
		ApplicationID: a.cfg.appID,
		SubTopology:   st,
		Partition:     id.partition,
		Collector:     collector{a.prod},
		OpenStore: func(taskID string, spec *topology.StoreSpec) (state.Store, error) {
			return a.openStore(ctx, r, spec, id.partition)
		},
		Logger:                 a.log,
		OnDeserializationError: policy,
		Dropped: func(taskID, node, reason string) {
			a.metrics.dropped.WithLabelValues(taskID, node, reason).Inc()
		},
		Metadata: ts.metadata,
	})
	if err == nil {
		err = a.finishRestore(ts)
		if err != nil {
			_ = t.Close()
		}
	}
	if err != nil {
		_ = ts.close()
		return nil, err
	}
	r.task = t
	// The task resumes where its state says, when that is past the
	// group's committed offsets (see adjustOffsets).
	a.resumeMu.Lock()
	for tp, off := range ts.resume {
		if off > committed[tp] || !hasKey(committed, tp) {
			a.resume[tp] = off
		}
	}
	a.resumeMu.Unlock()
	return r, nil
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

// openStore opens a store of a task: a Pebble store in the task's DB (or
// an in-memory one), restored from its changelog, logging to it, behind a
// record cache.
func (a *App) openStore(ctx context.Context, r *runner, spec *topology.StoreSpec, partition int32) (state.Store, error) {
	ts := r.st
	base := func() state.KeyValueStore {
		if spec.InMemory || ts.db == nil {
			return state.NewInMemoryKeyValueStore(spec.Name)
		}
		return ts.db.KeyValueStore(spec.Name)
	}
	kv := base()
	if !spec.DisableLogging {
		topic := a.cfg.appID + "-" + spec.ChangelogTopic()
		if _, err := a.restoreStore(ctx, ts, kv, spec, topic, partition); err != nil {
			return nil, err
		}
		skip := 0
		if spec.Kind != topology.KeyValue {
			skip = 8 // the segment ID
			if spec.InMemory || ts.db == nil {
				// The restore filled kv through a window or session
				// store; an in-memory base is that store's, keep it.
			} else {
				kv = base()
			}
		}
		kv = &loggedStore{KeyValueStore: kv, topic: topic, partition: partition, timestamped: spec.Timestamped, p: a.prod, skip: skip,
			position: func() (string, int32, int64, int64) {
				if r.task == nil {
					return "", -1, -1, 0
				}
				t, p, o := r.task.InputPosition()
				return t, p, o, r.task.StreamTime()
			}}
	}
	if !spec.DisableCaching && a.cfg.cacheBytes > 0 {
		kv = state.NewCachingStore(kv, ts.cache)
	}
	return task.WrapStore(spec, kv)
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

// shutdown finishes gracefully: commit what was processed, close the tasks
// and leave the group, within ShutdownTimeout of the end of a.runCtx
// (a.closeCtx). From its start no task is created (a.closing).
func (a *App) shutdown() error {
	var err error
	a.mu.Lock()
	a.closing = true
	rs := slices.Collect(maps.Values(a.runners))
	if a.fatal == nil {
		err = a.commitLocked(a.closeCtx, rs)
		if err != nil && a.closeCtx.Err() != nil {
			err = fmt.Errorf("sluice: shutdown: the final commit did not finish within ShutdownTimeout (%v): %w", a.cfg.shutdownTime, err)
		}
	}
	a.closeRunnersLocked(rs, false)
	fatal := a.fatal
	a.mu.Unlock()
	close(a.work)
	// Leaving waits for a rebalance in progress to end; at the bound the
	// leave is abandoned and the group notices the departure by the
	// session timeout.
	if lerr := a.client.LeaveGroupContext(a.closeCtx); lerr != nil {
		a.log.Warn("leave group: abandoned at the shutdown timeout; the group will notice the departure after the session timeout",
			"shutdown_timeout", a.cfg.shutdownTime, "err", lerr)
	}
	if fatal != nil {
		return fatal
	}
	return err
}

// release closes the clients, then releases the block cache and the state
// directory: once the group client is closed no callback can run, and no
// task is open (shutdown closed them all and a.closing keeps new ones from
// being created), so no Pebble DB holds the cache any more.
func (a *App) release() {
	a.stopCleanups()
	if a.client != nil {
		a.client.Close()
	}
	if a.admin != nil {
		a.admin.Close()
	}
	a.mu.Lock()
	a.closing = true
	open := len(a.runners)
	a.mu.Unlock()
	if open > 0 {
		// Not reached: every path to release closes the tasks first.
		a.log.Error("tasks still open at release: keeping the block cache", "tasks", open)
		return
	}
	if a.blockCache != nil {
		a.blockCache.Unref()
	}
	if a.dirLock != nil {
		if err := a.dirLock.Unlock(); err != nil {
			a.log.Warn("unlock state directory", "err", err)
		}
	}
}

// Tasks returns the IDs of the tasks assigned to this instance, sorted,
// and a channel that is closed when that set next changes.
func (a *App) Tasks() ([]string, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.runners))
	for _, r := range a.runners {
		ids = append(ids, r.task.ID())
	}
	slices.Sort(ids)
	if a.changed == nil {
		a.changed = make(chan struct{})
	}
	return ids, a.changed
}

// tasksChangedLocked wakes the waiters of Tasks.
func (a *App) tasksChangedLocked() {
	a.metrics.tasks.Set(float64(len(a.runners)))
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// isRebalanceError reports a commit refused because this member's
// generation is over.
func isRebalanceError(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID)
}
