package runtime

import (
	"iter"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/state"
)

// metrics are the App's Prometheus metrics (docs/operations.md lists them
// with their Kafka Streams equivalents). Names follow Prometheus'
// conventions (base units, _total counters) and Kafka Streams' where it
// has one (dropped-records-total -> sluice_dropped_records_total); every
// family has the constant label application_id.
//
// What the hot path pays: nothing per record. A task's records are counted
// in its runner and timed per processing round (one clock read per round);
// the poll loop folds them into the task's counters and histogram after
// the round (taskRound), where it also sets the lag gauges of the task's
// partitions. The record cache counts its hits and misses in atomics read
// at scrape time (cacheCollector), and the application state is read at
// scrape time too. Store operations are timed only at MetricsDebug.
type metrics struct {
	processed *prometheus.CounterVec
	// processSeconds is the time the tasks spent processing records (the
	// rounds that processed any), processLatency the mean time per record
	// of each such round: Kafka Streams' process-latency, which its stream
	// thread records per batch too (StreamThread: processLatency /
	// processed).
	processSeconds *prometheus.CounterVec
	processLatency *prometheus.HistogramVec
	punctuate      *prometheus.HistogramVec
	polls          prometheus.Counter
	polledRecords  prometheus.Counter
	// lag is the records lag of each input partition of an active task:
	// its end (high watermark, or the last stable offset under
	// ExactlyOnce) in the latest fetch minus the task's position.
	lag *prometheus.GaugeVec
	// storeOps times the store operations (MetricsDebug only).
	storeOps     *prometheus.HistogramVec
	standbyTasks prometheus.Gauge
	rebalances   prometheus.Counter
	dropped      *prometheus.CounterVec
	// deadLettered counts the records written to the dead-letter queue,
	// by task, node and handler (kind: deserialization, processing,
	// production); each is also in dropped with the reason "dead-letter".
	deadLettered *prometheus.CounterVec
	commits      prometheus.Counter
	commitDur    prometheus.Histogram
	// commitPhase times each phase of a commit (phaseTimer).
	commitPhase *prometheus.HistogramVec
	tasks       prometheus.Gauge
	restored    *prometheus.CounterVec
	// restoreRemaining is the number of changelog records a store still
	// has to restore.
	restoreRemaining *prometheus.GaugeVec
	cleaned          prometheus.Counter
	// Under ExactlyOnce: transactions committed, aborted (by reason) and
	// the times this instance was fenced.
	txnCommits prometheus.Counter
	txnAborts  *prometheus.CounterVec
	fenced     prometheus.Counter
	// Standby tasks (standby.go): changelog records applied, lag (records
	// of the changelogs past what a standby applied), promotions to active.
	standbyApplied    *prometheus.CounterVec
	standbyLag        *prometheus.GaugeVec
	standbyPromotions prometheus.Counter
	// staleSkipped counts the changelog records restores and standbys
	// skipped as a former owner's written after a newer owner's
	// (GenerationHeader).
	staleSkipped prometheus.Counter
	// brokersReachable is 1 while the App reaches a broker, 0 before the
	// first answer and during an outage (brokers.go).
	brokersReachable prometheus.Gauge

	// caches are the record caches of the active tasks' stores, read at
	// scrape time; state is the App's State.
	caches *cacheCollector
	state  *stateCollector
	// active are the active tasks' metrics bound to their labels, and what
	// the task view (http_tasks.go) shows of them. The poll loop and the
	// group callbacks use them under App.mu.
	active map[taskID]*taskMetrics
	// view is what GET /api/tasks answers (http_tasks.go).
	view taskView
}

// taskMetrics are one active task's metrics, bound to its labels once.
type taskMetrics struct {
	id             string
	processed      prometheus.Counter
	processSeconds prometheus.Counter
	processLatency prometheus.Observer
	// total counts the records the task processed since it opened here.
	total int64
	// parts are the task's input partitions' lag: the latest values, -1
	// while unknown, and the gauges, nil until the first value.
	parts []partitionLag
}

type partitionLag struct {
	topic     string
	partition int32
	lag       int64
	gauge     prometheus.Gauge
}

// MetricsLevel is the metrics recording level: MetricsInfo (the default)
// or MetricsDebug. Kafka Streams: metrics.recording.level.
type MetricsLevel int

const (
	// MetricsInfo records every metric but the per-store operation
	// latencies: nothing is timed per store call.
	MetricsInfo MetricsLevel = iota
	// MetricsDebug adds sluice_store_operation_duration_seconds: each get,
	// put, delete, range and prefix scan of a task's stores is timed (two
	// clock reads and a histogram observation per call), as Kafka Streams
	// records put-latency, get-latency, range-latency etc. at DEBUG.
	MetricsDebug
)

// String is the level's name as Kafka Streams spells it.
func (l MetricsLevel) String() string {
	if l == MetricsDebug {
		return "DEBUG"
	}
	return "INFO"
}

// MetricsRecordingLevel sets the metrics recording level; default
// MetricsInfo. Kafka Streams: metrics.recording.level.
func MetricsRecordingLevel(l MetricsLevel) Option {
	return optionFunc(func(c *config) { c.metricsLevel = l })
}

func newMetrics(appID string, reg prometheus.Registerer) (*metrics, error) {
	labels := prometheus.Labels{"application_id": appID}
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_processed_records_total", Help: "Input records processed, by task.", ConstLabels: labels,
		}, []string{"task"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_dropped_records_total", Help: "Records dropped on purpose (null key, null value, undecodable, late), by task, node and reason.", ConstLabels: labels,
		}, []string{"task", "node", "reason"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_dead_letter_records_total", Help: "Failed input records written to the dead-letter queue topic, by task, node and the handler that decided it (kind: deserialization, processing, production).", ConstLabels: labels,
		}, []string{"task", "node", "kind"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_commits_total", Help: "Completed commits.", ConstLabels: labels,
		}),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_commit_duration_seconds", Help: "Time to flush state and output and commit offsets.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		commitPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_commit_phase_duration_seconds", Help: "Time of each phase of a commit (stores, produce, offsets, transaction, local).", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, []string{"phase"}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_active_tasks", Help: "Tasks assigned to this instance.", ConstLabels: labels,
		}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_restored_records_total", Help: "Changelog records restored into stores, by store.", ConstLabels: labels,
		}, []string{"store"}),
		restoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_restore_remaining_records", Help: "Changelog records a store still has to restore (its partitions restoring at the moment together), by store.", ConstLabels: labels,
		}, []string{"store"}),
		cleaned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_task_state_deleted_total", Help: "Local state directories of tasks that moved away, deleted after the cleanup delay.", ConstLabels: labels,
		}),
		txnCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_transaction_commits_total", Help: "Transactions committed (ExactlyOnce).", ConstLabels: labels,
		}),
		txnAborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_transaction_aborts_total", Help: "Transactions aborted (ExactlyOnce), by reason: group (the group moved on), producer (producer epoch bumped, e.g. past the transaction timeout), abortable, error (another failure, or a fatal error's shutdown), lost (partitions lost), shutdown (the final commit did not finish in time), injected (tests).", ConstLabels: labels,
		}, []string{"reason"}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_fenced_total", Help: "Times this instance was fenced by another with its transactional ID or instance ID.", ConstLabels: labels,
		}),
		standbyApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_standby_records_applied_total", Help: "Changelog records applied by standby tasks, by task.", ConstLabels: labels,
		}, []string{"task"}),
		standbyLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_standby_lag_records", Help: "Changelog records of a standby task not applied yet (end offsets minus applied), by task.", ConstLabels: labels,
		}, []string{"task"}),
		standbyPromotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_standby_promotions_total", Help: "Standby tasks that became active on this instance.", ConstLabels: labels,
		}),
		staleSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_changelog_stale_generation_skipped_total", Help: "Changelog records restores and standby tasks skipped: written by a former owner of the task (a zombie) after a newer owner's, by their group generation.", ConstLabels: labels,
		}),
		brokersReachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brokers_reachable", Help: "1 while the App reaches a Kafka broker; 0 before the first answer and while every broker has failed for a second (an outage).", ConstLabels: labels,
		}),
		processSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_process_seconds_total", Help: "Time the tasks spent processing input records (the wall-clock punctuations excepted), by task: divided by sluice_processed_records_total, the mean process latency.", ConstLabels: labels,
		}, []string{"task"}),
		processLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_process_latency_seconds", Help: "Mean time to process one input record, observed once per processing round of a task (the round's time divided by its records, as Kafka Streams' process-latency), by task.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11),
		}, []string{"task"}),
		punctuate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_punctuate_duration_seconds", Help: "Time of each punctuator run (stream-time and wall-clock), by task; its _count is the number of punctuations.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11),
		}, []string{"task"}),
		polls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_polls_total", Help: "Polls of the consumer by the poll loop.", ConstLabels: labels,
		}),
		polledRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_polled_records_total", Help: "Records returned by the polls.", ConstLabels: labels,
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_records_lag", Help: "Records of an input partition of an active task not processed yet: the partition's end in the latest fetch (high watermark; last stable offset under exactly-once) minus the task's position, by topic and partition.", ConstLabels: labels,
		}, []string{"topic", "partition"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_store_operation_duration_seconds", Help: "Time of the operations on a task's stores, below the record cache and the changelog logger (op: get, put, delete, range, prefix; a range's time covers its whole iteration), by task and store. Recorded at MetricsRecordingLevel(MetricsDebug) only.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11),
		}, []string{"task", "store", "op"}),
		standbyTasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_standby_tasks", Help: "Standby tasks (warm-up tasks included) kept on this instance.", ConstLabels: labels,
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_rebalances_total", Help: "Rebalances this instance took part in (assignments received).", ConstLabels: labels,
		}),
		caches: newCacheCollector(labels),
		state:  newStateCollector(labels),
		active: map[taskID]*taskMetrics{},
	}
	if reg != nil {
		for _, c := range m.collectors() {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// collectors are every metric family of the App's.
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.processed, m.dropped, m.deadLettered, m.commits, m.commitDur, m.commitPhase, m.tasks, m.restored, m.restoreRemaining, m.cleaned,
		m.txnCommits, m.txnAborts, m.fenced, m.standbyApplied, m.standbyLag, m.standbyPromotions, m.staleSkipped, m.brokersReachable,
		m.processSeconds, m.processLatency, m.punctuate, m.polls, m.polledRecords, m.lag, m.storeOps, m.standbyTasks, m.rebalances,
		m.caches, m.state}
}

// polled counts a poll and the records it returned.
func (m *metrics) polled(records int) {
	m.polls.Inc()
	m.polledRecords.Add(float64(records))
}

// taskRound folds what r's task did in a processing round into its
// metrics: the records processed and the time taken, then the lag of its
// partitions. The poll loop calls it, with App.mu held, for each runner of
// the round once the round is over.
func (m *metrics) taskRound(r *runner) {
	tm := m.active[r.id]
	if tm == nil {
		id := r.id.String()
		tm = &taskMetrics{id: id, processed: m.processed.WithLabelValues(id),
			processSeconds: m.processSeconds.WithLabelValues(id), processLatency: m.processLatency.WithLabelValues(id)}
		m.active[r.id] = tm
	}
	if r.processed > 0 {
		sec := r.busy.Seconds()
		tm.processed.Add(float64(r.processed))
		tm.processSeconds.Add(sec)
		tm.processLatency.Observe(sec / float64(r.processed))
		tm.total += r.processed
	}
	r.processed, r.busy = 0, 0
	for i, q := range r.queues {
		if i == len(tm.parts) {
			tm.parts = append(tm.parts, partitionLag{topic: q.topic, partition: q.partition, lag: -1})
		}
		pl := &tm.parts[i]
		// The position: after the last record processed, or the fetch
		// position past the transaction markers once every fetched record
		// is processed (as runner.offsets commits), or the committed
		// offset before any record.
		pos := q.next
		if q.fetched > pos && r.group.Empty(i) {
			pos = q.fetched
		}
		if pos < 0 {
			pos = q.committed
		}
		if q.end < 0 || pos < 0 {
			continue // not known yet
		}
		lag := max(q.end-pos, 0)
		if pl.gauge == nil {
			pl.gauge = m.lag.WithLabelValues(q.topic, strconv.Itoa(int(q.partition)))
		}
		if lag != pl.lag {
			pl.lag = lag
			pl.gauge.Set(float64(lag))
		}
	}
}

// taskOpened starts the metrics of an active task restored and about to
// process: its record caches are read at scrape time from now on.
func (m *metrics) taskOpened(r *runner) {
	id := r.id.String()
	for _, spec := range r.task.SubTopology().Stores {
		if c := cachingStore(r.task.Store(spec.Name)); c != nil {
			m.caches.add(id, spec.Name, c)
		}
	}
}

// taskClosed ends the metrics of an active task closed here (it moved
// away, or is revived): the lag gauges of its partitions go, so that an
// instance shows the lag of the partitions it has. Its counters and
// histograms stay, as the totals of what this instance did, and go on if
// the task comes back.
func (m *metrics) taskClosed(id taskID) {
	tm := m.active[id]
	delete(m.active, id)
	m.caches.remove(id.String())
	if tm == nil {
		return
	}
	for _, pl := range tm.parts {
		if pl.gauge == nil {
			continue
		}
		m.lag.DeleteLabelValues(pl.topic, strconv.Itoa(int(pl.partition)))
	}
}

// punctuated returns the task.Config hook that times task id's
// punctuators.
func (m *metrics) punctuated(id taskID) func(time.Duration) {
	o := m.punctuate.WithLabelValues(id.String())
	return func(d time.Duration) { o.Observe(d.Seconds()) }
}

// cachingStore returns the record cache of a task's store, nil if it has
// none: the store itself (a key-value store) or the base of a window or
// session store (task.WrapStore).
func cachingStore(s state.Store) *state.CachingStore {
	if b, ok := s.(interface{ Base() state.KeyValueStore }); ok {
		s = b.Base()
	}
	c, _ := s.(*state.CachingStore)
	return c
}

// cacheCollector exports the hit and miss counts of the tasks' record
// caches, read at scrape time (state.CachingStore.CacheStats): Kafka
// Streams' hit-ratio of each NamedCache, as two counters whose rates give
// the ratio. The counts of a task's caches closed here are kept and added
// to, so that the counters never go back.
type cacheCollector struct {
	hits, misses *prometheus.Desc
	mu           sync.Mutex
	stores       map[[2]string]*state.CachingStore // by task and store
	closed       map[[2]string][2]uint64           // hits and misses of closed caches
}

func newCacheCollector(labels prometheus.Labels) *cacheCollector {
	return &cacheCollector{
		hits: prometheus.NewDesc("sluice_cache_hits_total",
			"Reads of a store answered by its record cache, by task and store (Kafka Streams: hit-ratio = hits / (hits + misses)).", []string{"task", "store"}, labels),
		misses: prometheus.NewDesc("sluice_cache_misses_total",
			"Reads of a store its record cache did not hold, read from the store below, by task and store.", []string{"task", "store"}, labels),
		stores: map[[2]string]*state.CachingStore{},
		closed: map[[2]string][2]uint64{},
	}
}

func (c *cacheCollector) add(task, store string, s *state.CachingStore) {
	c.mu.Lock()
	c.stores[[2]string{task, store}] = s
	c.mu.Unlock()
}

// remove stops reading the caches of task, keeping their counts.
func (c *cacheCollector) remove(task string) {
	c.mu.Lock()
	for k, s := range c.stores {
		if k[0] == task {
			hits, misses := s.CacheStats()
			sum := c.closed[k]
			c.closed[k] = [2]uint64{sum[0] + hits, sum[1] + misses}
			delete(c.stores, k)
		}
	}
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.hits; ch <- c.misses }

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := maps.Clone(c.closed)
	for k, s := range c.stores {
		hits, misses := s.CacheStats()
		sum := counts[k]
		counts[k] = [2]uint64{sum[0] + hits, sum[1] + misses}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(n[0]), k[0], k[1])
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(n[1]), k[0], k[1])
	}
}

// stateCollector exports the App's State as kube-state-metrics exports
// a phase: one series per state, 1 for the current one, 0 for the others.
// Kafka Streams: the client metric state.
type stateCollector struct {
	desc  *prometheus.Desc
	state atomic.Pointer[atomic.Int32] // the App's; nil before New binds it
}

func newStateCollector(labels prometheus.Labels) *stateCollector {
	return &stateCollector{desc: prometheus.NewDesc("sluice_application_state",
		"The application's state (Kafka Streams' KafkaStreams.State): 1 for the current state, 0 for the others.", []string{"state"}, labels)}
}

// bind makes the collector read st, the App's state.
func (c *stateCollector) bind(st *atomic.Int32) { c.state.Store(st) }

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	cur := Created
	if st := c.state.Load(); st != nil {
		cur = State(st.Load())
	}
	for s := Created; s <= Error; s++ {
		v := 0.0
		if s == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, s.String())
	}
}

// meterStore times the operations on the base of a task's store
// (MetricsDebug): below the record cache and the changelog logger, so a
// read the cache answers is not a store read, and a write reaches the
// store when the cache flushes it.
func (m *metrics) meterStore(id taskID, kv state.KeyValueStore) state.KeyValueStore {
	task, store := id.String(), kv.Name()
	ms := &meteredStore{KeyValueStore: kv,
		get: m.storeOps.WithLabelValues(task, store, "get"), put: m.storeOps.WithLabelValues(task, store, "put"),
		del: m.storeOps.WithLabelValues(task, store, "delete"), rng: m.storeOps.WithLabelValues(task, store, "range"),
		prefix: m.storeOps.WithLabelValues(task, store, "prefix")}
	ms.slots, _ = kv.(state.SlotPutter)
	if rd, ok := kv.(state.RangeDeleter); ok {
		return &meteredRangeDeleter{meteredStore: ms, rd: rd}
	}
	return ms
}

// meteredStore times each operation of the store it wraps.
type meteredStore struct {
	state.KeyValueStore
	get, put, del, rng, prefix prometheus.Observer
	// slots is the store below if it keeps slots (state.SlotPutter).
	slots state.SlotPutter
}

func (s *meteredStore) Get(key []byte) ([]byte, bool, error) {
	start := time.Now()
	v, ok, err := s.KeyValueStore.Get(key)
	s.get.Observe(time.Since(start).Seconds())
	return v, ok, err
}

func (s *meteredStore) Put(key, value []byte) error {
	start := time.Now()
	err := s.KeyValueStore.Put(key, value)
	s.put.Observe(time.Since(start).Seconds())
	return err
}

// PutSlot implements state.SlotPutter: the store below's PutSlot, timed
// as a put, so that a changelog buffer above finds its entries without a
// lookup at MetricsDebug too. Over a store without slots it puts and
// returns no slot, as a store with no entry for the key does.
func (s *meteredStore) PutSlot(key, value []byte) (*state.Slot, error) {
	if s.slots == nil {
		return nil, s.Put(key, value)
	}
	start := time.Now()
	slot, err := s.slots.PutSlot(key, value)
	s.put.Observe(time.Since(start).Seconds())
	return slot, err
}

func (s *meteredStore) Delete(key []byte) error {
	start := time.Now()
	err := s.KeyValueStore.Delete(key)
	s.del.Observe(time.Since(start).Seconds())
	return err
}

func (s *meteredStore) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	return timedSeq(s.KeyValueStore.Range(from, to), s.rng)
}

func (s *meteredStore) Prefix(prefix []byte) iter.Seq2[[]byte, []byte] {
	return timedSeq(s.KeyValueStore.Prefix(prefix), s.prefix)
}

// IterErr implements state.IterErrReporter for a store below that does.
func (s *meteredStore) IterErr() error {
	if r, ok := s.KeyValueStore.(state.IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// timedSeq times a whole iteration of seq, from its start to its end or
// the loop's break (Kafka Streams times a range from the iterator's
// creation to its close).
func timedSeq(seq iter.Seq2[[]byte, []byte], o prometheus.Observer) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		start := time.Now()
		defer func() { o.Observe(time.Since(start).Seconds()) }()
		seq(yield)
	}
}

// meteredRangeDeleter is a meteredStore over a store that deletes ranges
// in one operation (state.RangeDeleter), which it keeps offering.
type meteredRangeDeleter struct {
	*meteredStore
	rd state.RangeDeleter
}

func (s *meteredRangeDeleter) DeleteRange(from, to []byte) error {
	start := time.Now()
	err := s.rd.DeleteRange(from, to)
	s.del.Observe(time.Since(start).Seconds())
	return err
}
