package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/operators"
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
	// promReg is where the App's metrics are registered, gatherer what
	// /metrics serves (registry.go).
	promReg  prometheus.Registerer
	gatherer prometheus.Gatherer
	brokers  []string

	running atomic.Bool
	// state is the App's State (state.go), changed under stateMu, the
	// innermost lock (taken after mu or closeMu, or alone), held while
	// OnStateChange's listener runs.
	state   atomic.Int32
	stateMu sync.Mutex
	// httpLn and httpSrv are the HTTP server of HTTPAddr (http.go); nil
	// without it.
	httpLn  net.Listener
	httpSrv *http.Server
	// restoringTasks are the IDs of the active tasks restoring at the last
	// poll round (updateStateLocked), for /readyz.
	restoringTasks atomic.Pointer[[]string]
	// advertised is the host:port this instance advertises to the group
	// for interactive queries (AdvertisedAddr, iq.go), "" for none.
	advertised string
	// watch tracks broker reachability through every client's hooks
	// (brokers.go).
	watch *brokerWatch

	closeMu  sync.Mutex
	closed   bool
	cancel   context.CancelFunc
	finished chan struct{}

	// runCtx is Run's context: its end begins the shutdown, and cancels
	// the restores in progress. closeCtx ends ShutdownTimeout after it,
	// or when Run returns: it is the context of the App's clients, so
	// that a request still in flight then is abandoned. groupCtx, the
	// group client's, ends leaveReserve earlier: it bounds the final
	// commit and the group leave, and abandons a join in flight, leaving
	// time to leave the group explicitly (leaveAbandoned).
	runCtx   context.Context
	closeCtx context.Context
	groupCtx context.Context

	admin  *kgo.Client
	layout *layout
	client *kgo.Client
	prod   *producer
	// commits is the commit protocol (a.mu held).
	commits committer
	// changelogs reads changelogs for restores.
	changelogs *changelogReader
	// globals keeps the global stores (global.go); nil without any.
	globals *globalReader
	// standbys keeps the standby tasks (standby.go), under a lock of its
	// own; its reader starts with the first standby.
	standbys *standbys

	// mu guards the set of tasks (runners, byPartition) and the fields
	// below: the poll loop holds it for a round (activate restored tasks,
	// process, commit, sweep), the rebalance callbacks while they change
	// the assignment, the shutdown while it commits and closes the tasks.
	// Lock order: mu before closeMu, resumeMu and cleanupMu, which are
	// never held together (see the package documentation).
	mu          sync.Mutex
	runners     map[taskID]*runner
	byPartition map[topicPartition]*runner
	fatal       error
	changed     chan struct{} // closed when the set of tasks changes
	// closing is set when the shutdown begins: from then on no task is
	// created, so nothing opens a store while the App releases the block
	// cache and the state directory.
	closing bool
	// revive holds the tasks whose uncommitted progress a group callback
	// rolled back (ExactlyOnce): the poll loop revives them (reviveLocked)
	// after its next poll, as only it may rewind the partitions.
	revive map[taskID]bool
	// lostGen is the group generation whose partitions were lost
	// (onLost): the App is Rebalancing until it has joined a newer one.
	lostGen int32
	// commitHook is the exactlyOnce committer's test hook (export_test.go).
	commitHook func(stage string) error
	// unstableBounds, when set (tests), replace unstableWarnAfter and
	// unstableFailAfter (unstable.go).
	unstableBounds *[2]time.Duration

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
	// processID identifies this instance's state directory across
	// restarts (<appDir>/process.id), as Kafka Streams' process ID.
	processID processID
	// offsets is what the local copy of each task's state reflects, for
	// the group leader's lag computation (member metadata).
	offsets taskOffsets
	// bal is the group balancer; its standbyAssignment is this
	// instance's standby and warm-up tasks (balancer.go).
	bal *taskBalancer
	// stateFS is the file system of the tasks' and global stores' Pebble
	// DBs and checkpoint files: nil for vfs.Default (App.fs); tests put an
	// error-injecting one in its place (SetStateFS in export_test.go).
	stateFS vfs.FS
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
	reg, gatherer := appRegistry(cfg.registerer)
	m, err := newMetrics(cfg.appID, reg)
	if err != nil {
		return nil, fmt.Errorf("sluice: register metrics: %w", err)
	}
	a := &App{
		topo: topo, cfg: cfg, log: log.With("app", cfg.appID), metrics: m, promReg: reg, gatherer: gatherer,
		brokers: cfg.brokers, finished: make(chan struct{}),
		runners: map[taskID]*runner{}, byPartition: map[topicPartition]*runner{}, resume: map[topicPartition]int64{},
		cleanups: map[taskID]*time.Timer{}, cacheShare: &state.CacheShare{Total: cfg.cacheBytes},
	}
	a.standbys = newStandbys(a)
	m.state.bind(&a.state)
	a.watch = newBrokerWatch(a.log, m.brokersReachable)
	if err := a.openHTTP(); err != nil {
		return nil, err
	}
	a.advertised = a.advertisedAddr()
	return a, nil
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
	// The HTTP server stops last: a request during the shutdown sees the
	// final state (NotRunning, Error).
	defer a.serveHTTP()()
	defer func() {
		// Run returns: the final state.
		if err != nil && err != ErrClosed {
			a.setState(PendingError)
			a.setState(Error)
			return
		}
		a.setState(PendingShutdown)
		a.setState(NotRunning)
	}()
	defer a.watch.stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.closeMu.Lock()
	if a.closed {
		a.closeMu.Unlock()
		a.setState(PendingShutdown)
		return ErrClosed
	}
	a.setState(Rebalancing)
	// A shutdown asked for (ctx, Close) begins; after a fatal error
	// (PendingError, set before the cancel) the transition is refused.
	stopState := context.AfterFunc(ctx, func() { a.setState(PendingShutdown) })
	defer stopState()
	a.cancel = cancel
	a.closeMu.Unlock()

	closeCtx, closeCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer closeCancel()
	groupCtx, groupCancel := context.WithCancel(closeCtx)
	a.runCtx, a.closeCtx, a.groupCtx = ctx, closeCtx, groupCtx
	// The shutdown's bound starts when ctx ends.
	bound := make(chan [2]*time.Timer, 1)
	stopBound := context.AfterFunc(ctx, func() {
		bound <- [2]*time.Timer{
			time.AfterFunc(a.cfg.shutdownTime-leaveReserve(a.cfg.shutdownTime), groupCancel),
			time.AfterFunc(a.cfg.shutdownTime, closeCancel),
		}
	})
	defer func() {
		if !stopBound() {
			for _, t := range <-bound {
				t.Stop()
			}
		}
	}()

	defer a.release()
	a.log.Info("starting", "config", &a.cfg)
	if len(a.cfg.sasl) > 0 && a.cfg.sasl[0].mechanism == saslPlain && a.cfg.tls == nil {
		a.log.Warn("SASL PLAIN without TLS sends the password in clear text: add the TLS option", "user", a.cfg.sasl[0].user)
	}
	if err := a.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // shut down while starting, as asked
		}
		a.setState(PendingError)
		return err
	}
	a.watch.arm()
	a.work = make(chan *runner)
	a.done = make(chan *runner)
	for range a.cfg.workers {
		go a.worker()
	}
	a.log.Info("running", "brokers", a.brokers, "tasks", a.layout.tasks)
	loopErr := a.loop(ctx)
	if loopErr != nil {
		a.setState(PendingError)
	}
	// The loop also ends on its own errors (a failed record, commit or
	// fetch), which do not end ctx: end it, so that the shutdown's bound
	// starts and the restores in progress are cancelled.
	cancel()
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

// leaveReserve is the part of the shutdown timeout kept for leaving the
// group explicitly when the client's own leave did not finish in time.
func leaveReserve(timeout time.Duration) time.Duration { return min(timeout/5, time.Second) }

// baseClientOpts are the options every client of the App uses: each
// kgo.NewClient of the runtime starts from them, so the brokers, TLS and
// SASL (which win over ClientOptions) reach every client, and so do the
// Kafka client metrics, labelled client (registry.go). Each call makes
// the metrics of one client: a call per kgo.NewClient.
func (a *App) baseClientOpts(client string) []kgo.Opt {
	return append(a.connOpts(), kafkaMetrics(a.promReg, a.log, a.cfg.appID, client))
}

// connOpts are baseClientOpts without the Kafka client metrics.
func (a *App) connOpts() []kgo.Opt {
	opts := a.cfg.clientOptsWithSecurity()
	return append(opts, kgo.SeedBrokers(a.brokers...), kgo.WithContext(a.closeCtx), kgo.WithHooks(a.watch))
}

// start checks the brokers within
// the start-up timeout, plans and creates the internal topics and joins the
// group.
func (a *App) start(ctx context.Context) error {
	if err := a.openStateDir(); err != nil {
		return err
	}
	// The admin client's metadata may be refreshed every 250ms, not 5s
	// (franz-go's default): createInternalTopics describes the internal
	// topics before it creates them, and a cached "unknown topic" would
	// hold awaitTopics up to 5s at every start that creates a topic.
	admin, err := kgo.NewClient(append(a.baseClientOpts("admin"), kgo.MetadataMinAge(250*time.Millisecond))...)
	if err != nil {
		return &BrokerError{Brokers: a.brokers, Err: err}
	}
	a.admin = admin
	adm := kadm.NewClient(admin)
	a.changelogs = a.newChangelogReader()
	sctx, cancel := context.WithTimeout(ctx, a.cfg.startupTimeout)
	defer cancel()
	if err := a.waitBrokers(ctx, sctx, adm); err != nil {
		return err
	}
	// The principal's ACLs are checked before anything is created, so
	// that a missing one fails the start naming it (authz.go).
	if err := a.checkExternalAccess(sctx); err != nil {
		return err
	}
	l, err := a.planTopics(sctx, adm)
	if err != nil {
		return err
	}
	a.layout = l
	if err := a.createInternalTopics(sctx, adm, l); err != nil {
		return err
	}
	if err := a.checkGroupAccess(sctx); err != nil {
		return err
	}
	// Every global table catches up with its topic before the App joins
	// the group: no task processes a record before (Kafka Streams starts
	// its stream threads once the global thread is running).
	if err := a.openGlobals(ctx); err != nil {
		return err
	}
	bal := a.newBalancer(l) // balancer.go (issue 12: HA assignment)
	// The rebalance callbacks use the producer: it exists before the client
	// that calls them, and gets the client once it is made.
	a.prod = newProducer(nil)
	a.prod.limits = a.newRecordLimits()
	a.prod.handler = &productionHandler{handle: a.cfg.onProduce, deadLetter: a.cfg.deadLetter, log: a.log,
		dropped: func(task, node, reason string) { a.metrics.dropped.WithLabelValues(task, node, reason).Inc() },
		deadLettered: func(task, node string) {
			a.metrics.deadLettered.WithLabelValues(task, node, operators.ProductionFailure.String()).Inc()
		}}
	opts := append(a.baseClientOpts("main"),
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
		// Batches never exceed a topic's max.message.bytes (as far as
		// it is known): a batch of small records is never refused.
		kgo.ProducerBatchMaxBytesFn(a.prod.limits.known),
		kgo.FetchMaxWait(500*time.Millisecond),
		// Transaction markers come back as control records, so that a
		// task knows its partitions' fetch positions (runner.waiting);
		// they are not processed.
		kgo.KeepControlRecords(),
		kgo.WithContext(a.groupCtx),
	)
	// Before the ClientOptions, which may set kgo.SessionTimeout too.
	opts = append([]kgo.Opt{kgo.SessionTimeout(a.cfg.sessionTimeout)}, opts...)
	if a.cfg.instanceID != "" {
		opts = append(opts, kgo.InstanceID(a.cfg.instanceID))
	}
	eos := a.cfg.guarantee == ExactlyOnce
	if eos {
		opts = append(opts,
			kgo.TransactionalID(a.transactionalID()),
			kgo.TransactionTimeout(a.cfg.txnTimeout),
			// Inputs and repartition topics are read as committed:
			// records of open or aborted transactions never reach a task.
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)
	}
	// The client runs the group callbacks from its own goroutines as soon
	// as it exists; they take a.mu first, so holding it here orders them
	// after the fields they use are set.
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bal = bal
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return &BrokerError{Brokers: a.brokers, Err: err}
	}
	a.client = cl
	a.prod.cl = cl
	if !eos {
		a.commits = &atLeastOnce{client: cl, prod: a.prod, log: a.log, metrics: a.metrics, purge: a.purgeRepartition}
		return nil
	}
	c := &exactlyOnce{
		client: cl, prod: a.prod, log: a.log, metrics: a.metrics, purge: a.purgeRepartition,
		txn: &txnLayer{cl: cl, admin: a.admin, log: a.log, group: a.cfg.appID, id: a.transactionalID(), instanceID: a.cfg.instanceID,
			newClient: func(opts ...kgo.Opt) (*kgo.Client, error) {
				return kgo.NewClient(append(a.baseClientOpts("txn-offsets"), opts...)...)
			}},
		fenced: a.fencedError, hook: a.commitHook,
	}
	a.commits = c
	// The producer ID is initialised while a.mu is held, before any
	// assignment callback: InitProducerID aborts the open transaction a
	// predecessor with this transactional ID left, which would otherwise
	// hold the offsets the callback fetches unstable until its timeout.
	if err := c.start(sctx); err != nil {
		err = a.asAuthError(err, kmsg.ACLResourceTypeTransactionalId, a.transactionalID(), kmsg.ACLOperationWrite)
		if ctx.Err() == nil && sctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", a.cfg.startupTimeout, err)
		}
		return err
	}
	return nil
}

// newRecordLimits returns the record size limits of the App's producer
// (deadletter.go), from the client options: ProducerBatchMaxBytes, and
// MaxBufferedBytes if set (franz-go fails a record above it).
func (a *App) newRecordLimits() *recordLimits {
	l := &recordLimits{client: 1000012, admin: a.admin, log: a.log}
	if v, ok := a.admin.OptValue(kgo.ProducerBatchMaxBytes).(int32); ok && v > 0 {
		l.client = v
	}
	if v, ok := a.admin.OptValue(kgo.MaxBufferedBytes).(int64); ok && v > 0 && v < int64(l.client) {
		l.client = int32(v)
	}
	return l
}

// transactionalID is the instance's transactional ID under ExactlyOnce:
// <application ID>-<InstanceID>, else <application ID>-<process ID>. It is
// stable across restarts (the process ID is kept in the state directory),
// so a restarted instance's InitProducerID aborts its predecessor's open
// transaction at once (Kafka Streams: <application.id>-<process
// ID>-<thread>).
func (a *App) transactionalID() string {
	if a.cfg.instanceID != "" {
		return a.cfg.appID + "-" + a.cfg.instanceID
	}
	return a.cfg.appID + "-" + a.processID.String()
}

// fencedError makes err, which says that another instance took this
// one's place, the *FencedError Run returns, and counts it.
func (a *App) fencedError(err error) error {
	if fe, ok := errors.AsType[*FencedError](err); ok {
		return fe
	}
	a.metrics.fenced.Inc()
	fe := &FencedError{InstanceID: a.cfg.instanceID, Err: err}
	if a.cfg.guarantee == ExactlyOnce {
		fe.TransactionalID = a.transactionalID()
	}
	return fe
}

func (a *App) failLocked(err error) {
	if a.fatal == nil {
		a.fatal = err
		a.log.Error("fatal error", "err", err)
	}
	a.setState(PendingError)
	a.closeMu.Lock()
	cancel := a.cancel
	a.closeMu.Unlock()
	if cancel != nil {
		cancel()
	}
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
		err = a.commits.commit(a.groupCtx, ready(rs))
		if errors.Is(err, errRolledBack) {
			// Exactly-once: the final transaction was aborted; its input
			// is processed again after a restart, and nothing of it is
			// visible to read_committed consumers.
			a.log.Warn("shutdown: the final commit failed and was aborted; the uncommitted input will be processed again", "err", err)
			err = nil
		} else if err != nil && a.groupCtx.Err() != nil && !isFenced(err) {
			// The shutdown was asked for and is bounded: what was not
			// committed is processed again after a restart
			// (at-least-once), as Kafka Streams' close(timeout), which
			// returns false rather than failing. Under exactly-once the
			// open transaction is aborted (or times out on the broker).
			if aerr := a.commits.abort(a.closeCtx, "shutdown"); aerr != nil {
				a.log.Warn("shutdown: abort the transaction", "err", aerr)
			}
			a.log.Warn("shutdown: the final commit did not finish within ShutdownTimeout; the uncommitted input will be processed again",
				"shutdown_timeout", a.cfg.shutdownTime, "err", err)
			err = nil
		}
		if isFenced(err) {
			a.fatal = err
		}
	} else if !isFenced(a.fatal) {
		// A fatal error left the transaction open: abort it, so that
		// read_committed readers of the partitions it wrote do not wait
		// for its timeout (Kafka Streams aborts on a dirty close too).
		if aerr := a.commits.abort(a.closeCtx, "error"); aerr != nil {
			a.log.Warn("shutdown: abort the transaction", "err", aerr)
		}
	}
	// Dirty: a task's uncommitted state is dropped with its DB's pending
	// writes (closeRunnersLocked commits nothing).
	a.closeRunnersLocked(rs, false)
	a.closeStandbysLocked()
	fatal := a.fatal
	a.mu.Unlock()
	close(a.work)
	if isFenced(fatal) {
		// Another instance has this one's place in the group: a leave
		// would at best be refused.
		a.log.Error("fenced: exiting without leaving the group", "err", fatal)
		return fatal
	}
	// Leaving waits for a rebalance in progress to end (the client keeps
	// a last revoke possible); at the bound the wait is abandoned.
	if lerr := a.client.LeaveGroupContext(a.groupCtx); lerr != nil {
		a.leaveAbandoned(lerr)
	}
	if fatal != nil {
		return fatal
	}
	return err
}

func isFenced(err error) bool {
	_, ok := errors.AsType[*FencedError](err)
	return ok
}

// leaveAbandoned leaves the group with a LeaveGroup request of its own
// when the group client's leave did not finish within the shutdown timeout
// (typically a rebalance held up by a crashed member): the tasks are
// committed and closed already, so there is no last revoke to wait for,
// and without the request the group would wait for this member's session
// to time out before it could rebalance without it. A static member
// (kgo.InstanceID) does not leave, as the client's own leave.
func (a *App) leaveAbandoned(cause error) {
	memberID, _ := a.client.GroupMetadata()
	if id, _ := a.client.OptValue(kgo.InstanceID).(string); memberID == "" || id != "" {
		a.log.Warn("leave group: abandoned at the shutdown timeout; the group will notice the departure after the session timeout",
			"shutdown_timeout", a.cfg.shutdownTime, "err", cause)
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = a.cfg.appID
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = memberID
	m.Reason = kmsg.StringPtr("sluice: leaving at the shutdown timeout")
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(a.closeCtx, a.admin)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, rm := range resp.Members {
			if err == nil {
				err = kerr.ErrorForCode(rm.ErrorCode)
			}
		}
	}
	if err != nil {
		a.log.Warn("leave group: abandoned at the shutdown timeout; the group will notice the departure after the session timeout",
			"shutdown_timeout", a.cfg.shutdownTime, "member_id", memberID, "err", errors.Join(cause, err))
		return
	}
	a.log.Info("left the group with a request of its own: the client's leave did not finish within the shutdown timeout",
		"shutdown_timeout", a.cfg.shutdownTime, "member_id", memberID, "cause", cause)
}

// release closes the clients, then releases the block cache and the state
// directory: once the group client is closed no callback can run, and no
// task is open (shutdown closed them all and a.closing keeps new ones from
// being created), so no Pebble DB holds the cache any more.
func (a *App) release() {
	a.stopCleanups()
	a.globals.stop()
	if a.client != nil {
		a.client.Close()
	}
	if c, ok := a.commits.(*exactlyOnce); ok {
		c.txn.close()
	}
	if a.admin != nil {
		a.admin.Close()
	}
	a.mu.Lock()
	a.closing = true
	a.closeStandbysLocked() // closed by shutdown, unless the start failed
	open := len(a.runners)
	a.mu.Unlock()
	if open > 0 {
		// Not reached: every path to release closes the tasks first.
		a.log.Error("tasks still open at release: keeping the block cache", "tasks", open)
		return
	}
	// The tasks reading the global stores are closed: stop the global
	// reader, checkpoint and close the stores.
	a.globals.close()
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
		ids = append(ids, r.id.String())
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
	a.metrics.standbyTasks.Set(float64(len(a.standbys.tasks)))
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}
