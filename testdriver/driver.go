// Package testdriver runs a topology in memory, with no broker, for unit
// tests: Kafka Streams' TopologyTestDriver.
//
// A Driver creates one task per sub-topology, each on partition 0, and runs
// them with the same operators and stores as the runtime. Records piped
// into an input topic are processed at once; what sinks write to
// repartition topics is fed to the sub-topology that reads them before the
// pipe call returns, so when Pipe returns the effects of the record are
// complete and visible in output topics and stores. Everything runs on the
// caller's goroutine and is deterministic: the wall clock moves only when
// the test advances it.
//
// A global table's topic (dsl.GlobalTableFromTopic) is read by a task of
// its own, which writes the global store: a record piped into it updates
// the store before the pipe call returns, so the next stream record joined
// with the global table sees it; a global store update emits nothing. The
// driver has no restore to wait for: its global stores start empty and
// hold what was piped into their topics, as in Kafka Streams'
// TopologyTestDriver.
//
// The driver models one partition per topic: a task reading several topics
// processes their records in the order they are piped (or written by
// another sub-topology), as Kafka Streams' TopologyTestDriver does, not by
// the event time of partition heads as the runtime chooses between a
// task's partitions.
//
// By default stores have no record cache and log no changelog, so every
// update is forwarded at once. The runtime's store stack is opt-in:
// WithRecordCache puts a record cache in front of the stores, which
// forwards and logs only the latest update of each key when the driver
// commits (after each record processed, piped or read back from a
// repartition topic, or on Commit with CommitOnRequest);
// WithChangelogs records what the stores log as readable topics
// "<application.id>-<store>-changelog".
//
// Failures go to the same error handlers as in the runtime
// (OnDeserializationError, OnProcessingError, OnProductionError; Fail by
// default): a panic in user code is recovered and handed to the processing
// handler as an *operators.PanicError naming the node; Continue drops and
// counts the record (DroppedRecords); DeadLetter writes the input record
// to the WithDeadLetterQueue topic with Kafka Streams' error headers, for
// the test to read with CreateOutputTopic (docs/errors.md).
//
//	d, err := testdriver.New(topo)
//	in := testdriver.CreateInputTopic(d, "text-input", serde.String, serde.String)
//	out := testdriver.CreateOutputTopic(d, "word-counts", serde.String, serde.Int64)
//	err = in.Pipe("", "hello world")
//	counts, err := testdriver.ReadKeyValuesToMap(out)
package testdriver

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// ErrNoRecord is returned when reading an output topic with no unread
// record.
var ErrNoRecord = errors.New("sluice: testdriver: no unread record in the output topic")

// ErrNotWritten is wrapped by the error of reading an output topic that the
// topology never writes (most likely a misspelt name).
var ErrNotWritten = errors.New("sluice: testdriver: the topology writes no such topic")

// Option configures a Driver.
type Option interface{ apply(*config) }

type config struct {
	appID         string
	clock         time.Time
	onDeserialize operators.ErrorHandler
	onProcess     operators.ErrorHandler
	onProduce     operators.ErrorHandler
	deadLetter    string
	log           *slog.Logger
	cache         bool
	cacheBytes    int64
	changelogs    bool
	onRequest     bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithApplicationID sets the application ID, which prefixes internal topic
// names; the default is "sluice-test".
func WithApplicationID(id string) Option { return optionFunc(func(c *config) { c.appID = id }) }

// WithWallClock sets the driver's initial wall-clock time; the default is
// the Unix epoch, so runs are deterministic.
func WithWallClock(t time.Time) Option { return optionFunc(func(c *config) { c.clock = t }) }

// SkipUndecodableRecords makes the tasks skip and count input records they
// cannot deserialize, instead of failing (the default): shorthand for
// OnDeserializationError(operators.LogAndContinue).
func SkipUndecodableRecords() Option {
	return optionFunc(func(c *config) { c.onDeserialize = operators.LogAndContinue })
}

// OnDeserializationError sets the handler of input records a source cannot
// deserialize; default operators.LogAndFail, as the runtime's
// (runtime.OnDeserializationError). Kafka Streams:
// deserialization.exception.handler.
func OnDeserializationError(h operators.ErrorHandler) Option {
	return optionFunc(func(c *config) { c.onDeserialize = h })
}

// OnProcessingError sets the handler of errors and panics of user code (a
// node's function, a processor, a punctuator); default
// operators.LogAndFail. A panic never escapes the driver: it is an
// *operators.PanicError naming the node. Kafka Streams:
// processing.exception.handler.
func OnProcessingError(h operators.ErrorHandler) Option {
	return optionFunc(func(c *config) { c.onProcess = h })
}

// OnProductionError sets the handler of records a sink cannot serialize;
// default operators.LogAndFail. (The driver writes no record to Kafka, so
// Kafka's refusals, which the runtime's handler also sees, do not happen
// here.) Kafka Streams: production.exception.handler.
func OnProductionError(h operators.ErrorHandler) Option {
	return optionFunc(func(c *config) { c.onProduce = h })
}

// WithDeadLetterQueue names the topic where handlers returning
// operators.DeadLetter write the failed input record, with Kafka Streams'
// error headers (see operators.DeadLetterHeaders and the runtime's
// DeadLetterQueue); a test reads it with CreateOutputTopic. Without it,
// DeadLetter fails. Kafka Streams: errors.dead.letter.queue.topic.name.
func WithDeadLetterQueue(topic string) Option {
	return optionFunc(func(c *config) { c.deadLetter = topic })
}

// WithLogger sets the logger of the tasks; the default discards.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithRecordCache puts a record cache in front of the stores that cache
// (all but those built with caching disabled), as the runtime does, with a
// budget of maxBytes bytes shared by the tasks (Kafka Streams'
// statestore.cache.max.bytes). Updates of a key between two commits are
// then forwarded downstream, and logged, as one: the latest value, with
// the value the store held at the last commit as the old value. The driver
// commits after each record it processes (a piped one, and each one read
// back from a repartition topic) and each wall-clock advance, as Kafka
// Streams' TopologyTestDriver does, or only on Commit with
// CommitOnRequest. A cache that fills up evicts, forwarding its least
// recently used entries before a commit. maxBytes must not be negative;
// with 0 every write goes through at once.
func WithRecordCache(maxBytes int64) Option {
	return optionFunc(func(c *config) { c.cache, c.cacheBytes = true, maxBytes })
}

// WithChangelogs makes the stores that log (all but those built with
// logging disabled) write their changelogs, as the runtime does, to topics
// "<application.id>-<store>-changelog" that a test reads with
// CreateOutputTopic: a put as the value (a timestamped store's without its
// timestamp, which becomes the record's), a delete as a tombstone, window
// and session keys as Kafka Streams writes them; each record has the
// header "sluice.input" naming the input record that caused it.
func WithChangelogs() Option { return optionFunc(func(c *config) { c.changelogs = true }) }

// CommitOnRequest makes the driver commit only when Commit is called,
// instead of after each record processed and wall-clock advance. It matters
// only with WithRecordCache: several updates of a key between two commits
// come out as one.
func CommitOnRequest() Option { return optionFunc(func(c *config) { c.onRequest = true }) }

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	cfg     config
	topo    *topology.Topology
	clock   time.Time
	tasks   []*task.Task
	globals []*task.Task          // the global stores' tasks
	readers map[string]*task.Task // Kafka topic → task that reads it
	topics  map[string]*topicLog  // records written to non-internal topics
	offsets map[string]int64      // next offset of each topic piped into
	queue   []queued              // records written to topics the topology reads
	arena   arena                 // bytes of piped and queued records
	raw     operators.RawRecord   // the record being processed (reused: Process does not nest)
	dropped map[[2]string]int64
	closed  bool
	caching bool  // the stores have record caches
	records int64 // records processed, to tell when a commit is done
}

type queued struct {
	topic      string
	key, value []byte
	headers    []operators.Header
	ts         int64
}

// arena holds copies of record bytes, filled in chunks that are never
// moved or overwritten: copying a record costs no allocation of its own,
// and a value that aliases the bytes it was decoded from (serde.Bytes)
// stays valid, as it does in the runtime.
type arena []byte

// copy returns a copy of b in the arena; nil stays nil (a Kafka null).
func (a *arena) copy(b []byte) []byte {
	if b == nil {
		return nil
	}
	if len(b) == 0 {
		return []byte{}
	}
	if cap(*a)-len(*a) < len(b) {
		*a = make([]byte, 0, max(1<<20, len(b)))
	}
	n := len(*a)
	*a = append(*a, b...)
	return (*a)[n:len(*a):len(*a)]
}

// New creates a driver for topo and instantiates its tasks. The caller must
// Close it.
func New(topo *topology.Topology, opts ...Option) (*Driver, error) {
	cfg := config{appID: "sluice-test", clock: time.UnixMilli(0).UTC()}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.cache && cfg.cacheBytes < 0 {
		return nil, fmt.Errorf("sluice: testdriver: record cache size %d is negative", cfg.cacheBytes)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Driver{
		cfg:     cfg,
		topo:    topo,
		clock:   cfg.clock,
		readers: map[string]*task.Task{},
		topics:  map[string]*topicLog{},
		offsets: map[string]int64{},
		dropped: map[[2]string]int64{},
	}
	var share *state.CacheShare
	if cfg.cache {
		share = &state.CacheShare{Total: cfg.cacheBytes}
		d.caching = true
	}
	var changelogs task.ChangelogWriter
	if cfg.changelogs {
		changelogs = (*changelogWriter)(d)
	}
	// The global stores first: their tasks write them, the other tasks
	// read them (read-only views of the same in-memory stores).
	globals := map[string]state.Store{}
	for _, g := range topo.GlobalStores() {
		t, err := task.New(task.Config{
			ApplicationID:          cfg.appID,
			SubTopology:            g.SubTopology,
			Partition:              0,
			Collector:              (*collector)(d),
			Clock:                  func() time.Time { return d.clock },
			Logger:                 cfg.log,
			OnDeserializationError: cfg.onDeserialize,
			// No processing handler, as the runtime's global stores (and
			// Kafka Streams' by default).
			DeadLetterTopic: cfg.deadLetter,
			GlobalStore:     true,
			Dropped: func(_, node, reason string) {
				d.dropped[[2]string{node, reason}]++
			},
		})
		if err != nil {
			_ = d.close(false)
			return nil, err
		}
		d.globals = append(d.globals, t)
		d.readers[g.Topic] = t
		kv, ok := t.Store(g.Store.Name).(state.KeyValueStore)
		if !ok {
			_ = d.close(false)
			return nil, fmt.Errorf("sluice: testdriver: global store %s is not a key-value store", g.Store.Name)
		}
		globals[g.Store.Name] = task.ReadOnly(kv)
	}
	for _, st := range topo.SubTopologies() {
		var cache *state.Cache
		if share != nil {
			cache = share.NewCache()
			share.Add(1)
		}
		t, err := task.New(task.Config{
			ApplicationID: cfg.appID,
			SubTopology:   st,
			Partition:     0,
			Collector:     (*collector)(d),
			// OpenBase nil: in-memory stores.
			Changelog:              changelogs,
			Cache:                  cache,
			Clock:                  func() time.Time { return d.clock },
			Logger:                 cfg.log,
			OnDeserializationError: cfg.onDeserialize,
			OnProcessingError:      cfg.onProcess,
			OnProductionError:      cfg.onProduce,
			DeadLetterTopic:        cfg.deadLetter,
			Dropped: func(_, node, reason string) {
				d.dropped[[2]string{node, reason}]++
			},
			GlobalStores: globals,
		})
		if err != nil {
			_ = d.close(false)
			return nil, err
		}
		d.tasks = append(d.tasks, t)
		for _, tp := range t.Topics() {
			d.readers[tp] = t
		}
	}
	return d, nil
}

// Close commits (see Commit: with WithRecordCache, what the caches hold
// is forwarded and stays readable in the output topics), then closes the
// tasks and their stores, as the runtime commits a task before closing it.
func (d *Driver) Close() error { return d.close(true) }

func (d *Driver) close(commit bool) error {
	if d.closed {
		return nil
	}
	var errs []error
	if commit && d.caching {
		errs = append(errs, d.Commit())
	}
	d.closed = true
	for _, t := range d.tasks {
		errs = append(errs, t.Close())
	}
	for _, t := range d.globals {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// WallClockTime is the driver's wall clock.
func (d *Driver) WallClockTime() time.Time { return d.clock }

// AdvanceWallClockTime moves the wall clock forward by dur and fires the
// wall-clock punctuations that are due, then processes what they wrote to
// topics the topology reads (and commits, see WithRecordCache).
func (d *Driver) AdvanceWallClockTime(dur time.Duration) error {
	if d.closed {
		return errClosed
	}
	if dur < 0 {
		return fmt.Errorf("sluice: testdriver: cannot move the wall clock back by %v", dur)
	}
	d.clock = d.clock.Add(dur)
	for _, t := range d.tasks {
		if err := t.PunctuateWallClock(d.clock); err != nil {
			d.queue = d.queue[:0]
			return err
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return d.autoCommit()
}

// Commit commits as the runtime does at the end of a commit interval: each
// task flushes its record caches, forwarding and logging the latest update
// of each key written since the last commit. What that writes to topics
// the topology reads is processed at once, and the tasks it reaches flush
// in turn, so that when Commit returns no cache holds an unflushed update.
// Without WithRecordCache there is nothing to flush.
func (d *Driver) Commit() error {
	if d.closed {
		return errClosed
	}
	for {
		before := d.records
		for _, t := range d.tasks {
			if err := t.Flush(); err != nil {
				d.queue = d.queue[:0]
				return err
			}
			if err := d.drain(); err != nil {
				return err
			}
		}
		if d.records == before {
			return nil
		}
	}
}

// autoCommit commits after a piped record or a wall-clock advance, unless
// the driver commits on request only or has no caches to flush.
func (d *Driver) autoCommit() error {
	if !d.caching || d.cfg.onRequest {
		return nil
	}
	return d.Commit()
}

var errClosed = errors.New("sluice: testdriver: driver is closed")

// DroppedRecords is the number of records node dropped for reason (such as
// "null-key", "null-value", "deserialization-error", "invalid-utf8", or "invalid-timestamp"
// for a source's record skipped by its invalid-timestamp policy).
func (d *Driver) DroppedRecords(node, reason string) int64 { return d.dropped[[2]string{node, reason}] }

// Store returns the store named name, or nil. Values of the stores of
// DSL aggregations and tables are timestamped (see KeyValueStore).
func (d *Driver) Store(name string) state.Store {
	for _, t := range slices.Concat(d.tasks, d.globals) {
		if s := t.Store(name); s != nil {
			return s
		}
	}
	return nil
}

// ChangelogTopic is the name of the changelog topic of the store named
// store, "<application.id>-<store>-changelog", which the driver writes
// with WithChangelogs; "" if the topology has no such store, or it does
// not log.
func (d *Driver) ChangelogTopic(store string) string {
	spec := d.topo.Store(store)
	if spec == nil || spec.DisableLogging {
		return ""
	}
	return task.ChangelogTopic(d.cfg.appID, spec)
}

// StreamTime is the stream time of the task of sub-topology sub (-1 for
// no such task: a global store's sub-topology has none).
func (d *Driver) StreamTime(sub int) int64 {
	for _, t := range d.tasks {
		if t.SubTopology().ID == sub {
			return t.StreamTime()
		}
	}
	return -1
}

// pipe feeds one serialized record into topic and processes it and
// everything it causes.
func (d *Driver) pipe(topic string, key, value []byte, headers []operators.Header, ts int64) error {
	if d.closed {
		return errClosed
	}
	t, ok := d.readers[topic]
	if !ok {
		return fmt.Errorf("sluice: testdriver: topic %q is not read by the topology (it reads %v)", topic, d.sourceTopics())
	}
	off := d.offsets[topic]
	d.offsets[topic] = off + 1
	d.raw = operators.RawRecord{Topic: topic, Partition: 0, Offset: off, Timestamp: ts, Key: key, Value: value, Headers: headers}
	d.records++
	if err := t.Process(&d.raw); err != nil {
		d.queue = d.queue[:0]
		return err
	}
	if err := d.flushAfterRecord(); err != nil {
		return err
	}
	if err := d.drain(); err != nil {
		return err
	}
	return d.autoCommit()
}

// flushAfterRecord commits after one processed record unless the driver
// commits on request only or has no caches: Kafka Streams'
// TopologyTestDriver commits after every record its task processes, those
// it re-enqueues from repartition topics included
// (completeAllProcessableWork), so updates caused by two records of a
// repartition topic are not compacted into one. What the flush writes to
// topics the topology reads joins the queue.
func (d *Driver) flushAfterRecord() error {
	if !d.caching || d.cfg.onRequest {
		return nil
	}
	for _, t := range d.tasks {
		if err := t.Flush(); err != nil {
			d.queue = d.queue[:0]
			return err
		}
	}
	return nil
}

// drain processes the records written to topics the topology reads, in the
// order they were written.
func (d *Driver) drain() error {
	for i := 0; i < len(d.queue); i++ {
		q := d.queue[i]
		t := d.readers[q.topic]
		off := d.offsets[q.topic]
		d.offsets[q.topic] = off + 1
		d.raw = operators.RawRecord{Topic: q.topic, Partition: 0, Offset: off, Timestamp: q.ts,
			Key: q.key, Value: q.value, Headers: q.headers}
		d.records++
		if err := t.Process(&d.raw); err != nil {
			d.queue = d.queue[:0]
			return err
		}
		if err := d.flushAfterRecord(); err != nil {
			return err
		}
	}
	d.queue = d.queue[:0]
	return nil
}

func (d *Driver) sourceTopics() []string {
	var ts []string
	for tp := range d.readers {
		ts = append(ts, tp)
	}
	slices.Sort(ts)
	return ts
}

// collector receives what the sinks write.
type collector Driver

func (c *collector) Send(topic string, _ int32, key, value []byte, headers []operators.Header, ts int64) error {
	d := (*Driver)(c)
	if _, ok := d.readers[topic]; ok {
		d.queue = append(d.queue, queued{topic: topic, key: d.arena.copy(key), value: d.arena.copy(value),
			headers: cloneHeaders(headers), ts: ts})
		if isInternal(d, topic) {
			return nil
		}
	}
	l := d.topics[topic]
	if l == nil {
		l = &topicLog{}
		d.topics[topic] = l
	}
	l.append(key, value, headers, ts)
	return nil
}

func isInternal(d *Driver, topic string) bool {
	for _, it := range d.topo.InternalTopics() {
		if task.TopicName(d.cfg.appID, it.Name) == topic {
			return true
		}
	}
	return false
}

// changelogWriter records the changelogs of the stores (WithChangelogs).
type changelogWriter Driver

func (w *changelogWriter) WriteChangelog(topic string, _ int32, key, value []byte, headers []operators.Header, ts int64) error {
	(*Driver)(w).topicLog(topic).append(key, value, headers, ts)
	return nil
}

// topicLog holds the records written to one topic. Records and their bytes
// are kept in fixed-size chunks that are never moved or overwritten, so
// capturing output costs no allocation and no copying per record beyond the
// record's own bytes.
type topicLog struct {
	chunks [][]storedRecord
	n      int
	read   int
	arena  arena
}

const logChunk = 4096

type storedRecord struct {
	key, value []byte // nil: Kafka null
	ts         int64
	headers    []operators.Header
}

func (l *topicLog) append(key, value []byte, headers []operators.Header, ts int64) {
	if l.n%logChunk == 0 {
		l.chunks = append(l.chunks, make([]storedRecord, 0, logChunk))
	}
	c := &l.chunks[len(l.chunks)-1]
	*c = append(*c, storedRecord{key: l.arena.copy(key), value: l.arena.copy(value), ts: ts, headers: cloneHeaders(headers)})
	l.n++
}

func (l *topicLog) at(i int) storedRecord { return l.chunks[i/logChunk][i%logChunk] }

func cloneHeaders(hs []operators.Header) []operators.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]operators.Header, len(hs))
	for i, h := range hs {
		out[i] = operators.Header{Key: h.Key, Value: slices.Clone(h.Value)}
	}
	return out
}

// unread yields the unread records and marks them read as it goes.
func (l *topicLog) unread() iter.Seq[storedRecord] {
	return func(yield func(storedRecord) bool) {
		for l.read < l.n {
			r := l.at(l.read)
			l.read++
			if !yield(r) {
				return
			}
		}
	}
}

func (d *Driver) topicLog(topic string) *topicLog {
	l := d.topics[topic]
	if l == nil {
		l = &topicLog{}
		d.topics[topic] = l
	}
	return l
}

// outputTopics lists the topics a test can read, sorted: those of the
// topology's sinks (the external ones) and, with WithChangelogs, the
// changelogs of the stores that log. dynamic reports a sink that chooses
// its topic per record: then any topic may be written.
func (d *Driver) outputTopics() (topics []string, dynamic bool) {
	for _, st := range d.topo.SubTopologies() {
		for _, n := range st.Nodes {
			if n.Kind != topology.Sink || n.Internal {
				continue
			}
			if len(n.Topics) == 0 {
				dynamic = true
			}
			topics = append(topics, n.Topics...)
		}
		if d.cfg.changelogs {
			for _, spec := range st.Stores {
				if !spec.DisableLogging {
					topics = append(topics, task.ChangelogTopic(d.cfg.appID, spec))
				}
			}
		}
	}
	if d.cfg.deadLetter != "" {
		topics = append(topics, d.cfg.deadLetter)
	}
	slices.Sort(topics)
	return slices.Compact(topics), dynamic
}

// checkOutput returns an error naming topic if the topology cannot write
// it: reading it would only ever find it empty, most likely a misspelt
// name.
func (d *Driver) checkOutput(topic string) error {
	if l := d.topics[topic]; l != nil && l.n > 0 {
		return nil
	}
	topics, dynamic := d.outputTopics()
	if dynamic || slices.Contains(topics, topic) {
		return nil
	}
	return fmt.Errorf("%w: %q (it writes %v)", ErrNotWritten, topic, topics)
}
