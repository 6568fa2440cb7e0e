// Package task runs one task of a topology: one sub-topology on one input
// partition. It instantiates the sub-topology's nodes, owns the task's
// stores, stream time and punctuation schedules, and processes raw records
// one at a time. It is shared by the runtime and the test driver, so both
// run the very same operators and stores.
//
// What the two share beyond the operators lives here too, in one place:
// the store stack (stores.go: base, changelog logger, record cache, window
// or session store), both sides of a changelog (changelog.go: what the
// logger writes and how ChangelogRestorer reads it back; Kafka's part is
// the runtime's), the Kafka names of internal topics (topics.go) and the
// choice of a task's next input record by head event time
// (partitions.go), and the error handlers with the dead-letter writes
// (errors.go). The caller provides what differs: the store bases
// (Pebble or memory), the ChangelogWriter (the runtime's producer, or the
// driver's recorded topics) and the record cache.
//
// A Task is used by one goroutine at a time.
package task

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// Config configures a Task.
type Config struct {
	// ApplicationID prefixes internal topic names.
	ApplicationID string
	SubTopology   *topology.SubTopology
	// Partition is the input partition the task processes.
	Partition int32
	// Collector receives what the task's sinks write.
	Collector operators.Collector
	// OpenBase opens (creates or recovers) the key-value store that a
	// store of the task keeps its entries in; for a store that logs, the
	// caller restores it from the changelog first (ChangelogRestorer). The
	// task builds the store on it (see stores.go). Nil means in-memory
	// stores.
	OpenBase func(spec *topology.StoreSpec) (state.KeyValueStore, error)
	// Changelog receives the changelog records of the task's stores that
	// log (StoreSpec.DisableLogging unset); nil: no store logs.
	Changelog ChangelogWriter
	// ChangelogBuffer, if above zero, lets the changelog logger of each
	// key-value, window or session store without a record cache (and
	// whose keys can repeat: not a join's window store of duplicates)
	// keep the latest write of each key until the task flushes (Flush)
	// and log only that, up to about this many bytes per store (a fuller
	// buffer is logged at once). Zero logs every write when it is made.
	// See loggedStore.
	ChangelogBuffer int
	// Cache is the record cache of the task's stores that cache
	// (StoreSpec.DisableCaching unset); nil: no store caches. The caller
	// flushes it by flushing the task (Flush), at each commit.
	Cache *state.Cache
	// Clock is the wall clock; nil means time.Now.
	Clock func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// OnDeserializationError decides about an input record a source
	// cannot deserialize; OnProcessingError about an error or a panic of
	// user code (a node's function, a user processor, a punctuator);
	// OnProductionError about a record a sink cannot serialize. Nil means
	// operators.LogAndFail, Kafka Streams' default. See errors.go.
	OnDeserializationError operators.ErrorHandler
	OnProcessingError      operators.ErrorHandler
	OnProductionError      operators.ErrorHandler
	// DeadLetterTopic is the topic where a handler's operators.DeadLetter
	// writes the failed input record, through Collector; "" means none,
	// and DeadLetter then fails the task naming the option to set.
	DeadLetterTopic string
	// GlobalStore marks the task of a global store: as Kafka Streams
	// writes no dead-letter record for a global store's records, DeadLetter
	// then logs and counts the record as Continue does.
	GlobalStore bool
	// Dropped, if set, is told of every record a node drops on purpose,
	// or that an error handler drops ("deserialization-error" or
	// "invalid-utf8", "processing-error", "production-error") or
	// dead-letters ("dead-letter").
	Dropped func(taskID, node, reason string)
	// DeadLettered, if set, is told of every dead-letter record the task
	// writes, with the handler that decided it.
	DeadLettered func(taskID, node string, kind operators.ErrorKind)
	// Metadata is the processor metadata the task starts with (see
	// Task.Metadata): what the runtime committed with the local state.
	Metadata map[string]int64
	// GlobalStores are the global stores the task's nodes may read, by
	// name: views of the stores that the global reader (the runtime's, or
	// the driver's global tasks) writes, each safe to read from the task's
	// goroutine while the reader writes. As in Kafka Streams, any node may
	// read a global store; none may write one.
	GlobalStores map[string]state.Store
	// Punctuated, if set, is told how long each punctuator run took (wall
	// time), for the metrics.
	Punctuated func(time.Duration)
	// Opened, if set, is called once every store is open (restored),
	// before the nodes are built: before user processors' Init, whose
	// writes are the task's first and belong to its first commit, not to
	// its restore (the runtime commits the restore here). An error fails
	// New.
	Opened func() error
}

// ID returns the Kafka Streams style task ID "<sub-topology>_<partition>".
func ID(subTopology int, partition int32) string {
	return fmt.Sprintf("%d_%d", subTopology, partition)
}

// Task is one sub-topology instantiated for one partition.
type Task struct {
	id      string
	cfg     Config
	log     *slog.Logger
	clock   func() time.Time
	sources map[string]nodes.RawProcessor
	// srcNames names the source of each topic (sources' key).
	srcNames map[string]string
	// ctxs are the nodes' contexts, by node name.
	ctxs    map[string]*nodeContext
	closers []topology.Closer
	stores  map[string]state.Store
	order   []string // store names in open order
	// dirty reports, per store name, the writes its record cache or its
	// changelog buffer holds unflushed (layers below the store's kind,
	// which a window or session store does not expose).
	dirty map[string][]interface{ Dirty() int }

	// metadata of the record being processed
	topic     string
	partition int32
	offset    int64
	// cur is the input record being processed, nil outside Process and
	// while punctuators run: the error handlers' source record. The
	// caller's, not copied: valid only during Process.
	cur *operators.RawRecord
	// cacheDepth counts the record-cache flush forwards under way (nested),
	// cacheSaved is cur while they run (CacheForward).
	cacheDepth int
	cacheSaved *operators.RawRecord
	// the last input record processed, kept while punctuators run
	inTopic     string
	inPartition int32
	inOffset    int64

	streamTime int64
	// recordTime is the timestamp of the record being processed (see
	// RecordTimestamp).
	recordTime int64
	skipped    bool // the record being processed was skipped (undecodable, invalid timestamp)
	schedules  []*schedule
	seq        int
	// metadata is the processor metadata of the task's nodes.
	metadata map[string]int64
}

// New instantiates the sub-topology for one partition: it opens the task's
// stores and creates every node, children before parents. On error,
// everything opened so far is closed.
func New(cfg Config) (_ *Task, err error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := cfg.SubTopology
	t := &Task{
		id:          ID(st.ID, cfg.Partition),
		cfg:         cfg,
		clock:       cfg.Clock,
		sources:     map[string]nodes.RawProcessor{},
		srcNames:    map[string]string{},
		ctxs:        map[string]*nodeContext{},
		stores:      map[string]state.Store{},
		streamTime:  -1,
		recordTime:  -1,
		partition:   -1,
		offset:      -1,
		inPartition: -1,
		inOffset:    -1,
		metadata:    maps.Clone(cfg.Metadata),
	}
	t.log = log.With("task", t.id)
	// t is not the named result: the error returns below set that to nil
	// before this runs, and what was opened so far must still be closed.
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	for _, spec := range st.Stores {
		s, err := t.openStore(spec)
		if err != nil {
			return nil, fmt.Errorf("sluice: task %s: open store %s: %w", t.id, spec.Name, err)
		}
		t.stores[spec.Name] = s
		t.order = append(t.order, spec.Name)
	}
	if cfg.Opened != nil {
		if err := cfg.Opened(); err != nil {
			return nil, fmt.Errorf("sluice: task %s: %w", t.id, err)
		}
	}
	inst := make(map[*topology.Node]any, len(st.Nodes))
	for _, n := range slices.Backward(st.Nodes) {
		children := make([]any, len(n.Children))
		for i, c := range n.Children {
			ci, ok := inst[c]
			if !ok {
				return nil, fmt.Errorf("sluice: task %s: node %s: child %s is not instantiated before it", t.id, n.Name, c.Name)
			}
			// Guarded: the parent reaches the child through a guard that
			// hands the child's failures to the error handlers.
			children[i] = nodes.Guarded{Name: c.Name, Ctx: t.ctxs[c.Name], Node: ci}
		}
		nc := &nodeContext{t: t, node: n}
		t.ctxs[n.Name] = nc
		in, err := newNode(n, nc, children)
		if err != nil {
			return nil, t.wrap(n.Name, err)
		}
		inst[n] = in
		if c, ok := in.(topology.Closer); ok {
			t.closers = append(t.closers, c)
		}
		if n.Kind == topology.Source {
			rp, ok := in.(nodes.RawProcessor)
			if !ok {
				return nil, fmt.Errorf("sluice: task %s: source %s is a %T, not a RawProcessor", t.id, n.Name, in)
			}
			for _, tp := range n.Topics {
				if n.Internal {
					tp = t.internalTopic(tp)
				}
				t.sources[tp] = rp
				t.srcNames[tp] = n.Name
			}
		}
	}
	return t, nil
}

// ID is the task's ID, "<sub-topology>_<partition>".
func (t *Task) ID() string { return t.id }

// Partition is the input partition of the task.
func (t *Task) Partition() int32 { return t.cfg.Partition }

// SubTopology is the sub-topology the task runs.
func (t *Task) SubTopology() *topology.SubTopology { return t.cfg.SubTopology }

// Position locates the input record being processed, or the last one
// processed; inside a punctuator the offset is -1.
func (t *Task) Position() (topic string, partition int32, offset int64) {
	return t.topic, t.partition, t.offset
}

// InputPosition locates the last input record the task processed (the one
// being processed, or the last one), also while punctuators run, when
// Position reports none: the runtime tags changelog writes with it, so
// that a write made by a stream-time punctuation is tied to the record
// whose processing fired it, and one made by a wall-clock punctuation to
// the progress the task had made then.
func (t *Task) InputPosition() (topic string, partition int32, offset int64) {
	return t.inTopic, t.inPartition, t.inOffset
}

// HasInput reports whether what the task's nodes write now comes from an
// input record: false outside Process, while punctuators run and while a
// record cache forwards (CacheForward). The runtime ties a sink's output
// to the input record it is processing only then.
func (t *Task) HasInput() bool { return t.cur != nil }

// StreamTime is the largest timestamp processed, -1 before any.
func (t *Task) StreamTime() int64 { return t.streamTime }

// RecordTimestamp is the timestamp of the record being processed, as its
// source stamped it, or inside a punctuator the punctuation's time; after
// processing, that of the last one (-1 before any). It is Kafka Streams'
// record context timestamp: the changelog of a store whose values carry no
// timestamp takes its record timestamp from it.
func (t *Task) RecordTimestamp() int64 { return t.recordTime }

// Store returns the task's store named name, or nil.
func (t *Task) Store(name string) state.Store { return t.stores[name] }

// Topics returns the Kafka topics the task reads (internal ones with the
// application ID prefix).
func (t *Task) Topics() []string {
	ts := make([]string, 0, len(t.sources))
	for tp := range t.sources {
		ts = append(ts, tp)
	}
	slices.Sort(ts)
	return ts
}

func (t *Task) internalTopic(name string) string { return TopicName(t.cfg.ApplicationID, name) }

// Process runs one input record through the sub-topology: it hands the
// record to the source of its topic, which decodes it, decides its
// timestamp (the record's own, or what the source's timestamp extractor
// makes of it) and advances stream time to it (Context.StampRecord; stream
// time never goes back) before forwarding it; then Process fires the
// stream-time punctuations that are due.
//
// A record the source skips, as undecodable or for an invalid timestamp,
// leaves stream time as it was and fires no punctuation: Kafka Streams
// drops such records before their timestamp is taken into account
// (RecordQueue.updateHead).
//
// Stream time follows the extracted timestamps, and the runtime chooses
// which of a task's input partitions goes next by the event times of their
// head records (EventTime).
//
// A failure of user code goes to the task's error handlers (errors.go):
// what they let go on leaves Process going on, with the outputs and store
// updates made before the failure kept, as in Kafka Streams.
func (t *Task) Process(r *operators.RawRecord) error {
	src, ok := t.sources[r.Topic]
	if !ok {
		return fmt.Errorf("sluice: task %s reads no topic %q (it reads %v)", t.id, r.Topic, t.Topics())
	}
	t.topic, t.partition, t.offset = r.Topic, r.Partition, r.Offset
	t.inTopic, t.inPartition, t.inOffset = r.Topic, r.Partition, r.Offset
	t.skipped = false
	t.cur, t.cacheDepth, t.cacheSaved = r, 0, nil
	err := t.processRaw(src, r)
	t.cur, t.cacheDepth, t.cacheSaved = nil, 0, nil
	if err != nil {
		return t.wrapRecord(r, err)
	}
	if t.skipped {
		return nil
	}
	return t.punctuate(operators.StreamTime, t.streamTime)
}

// processRaw hands r to its source src. A panic in its serdes is a
// deserialization failure (the source recovers it); the source's children
// have guards of their own; what is left, a panic in the source's
// timestamp extractor, stops the task with a *operators.PanicError naming
// the source, no handler asked, as Kafka Streams fails on an exception of
// a TimestampExtractor ("Fatal user code error in TimestampExtractor
// callback", RecordQueue.updateHead).
func (t *Task) processRaw(src nodes.RawProcessor, r *operators.RawRecord) (err error) {
	defer func() {
		if v := recover(); v != nil {
			node := t.srcNames[r.Topic]
			err = t.failure(node, &operators.PanicError{Node: node, Value: v, Stack: debug.Stack()})
		}
	}()
	return src.ProcessRaw(r)
}

// EventTime returns the event time the task's source for r's topic gives
// r (see nodes.TimestampPeeker): its Kafka timestamp unless the source
// extracts one. The runtime orders a task's partitions by it.
//
// A panic of the source's serdes or extractor gives r's Kafka timestamp,
// as a decode error does: the record meets the panic again when it is
// processed, where the handlers decide (Process).
func (t *Task) EventTime(r *operators.RawRecord) (ts int64) {
	p, ok := t.sources[r.Topic].(nodes.TimestampPeeker)
	if !ok {
		return r.Timestamp
	}
	defer func() {
		if recover() != nil {
			ts = r.Timestamp
		}
	}()
	return p.PeekTimestamp(r)
}

// PunctuateWallClock fires the wall-clock punctuations due at now.
func (t *Task) PunctuateWallClock(now time.Time) error {
	return t.punctuate(operators.WallClockTime, now.UnixMilli())
}

// Flush flushes the task's stores. A record cache forwards what it
// flushes downstream, which may write other stores of the task: Flush goes
// over the stores again until no cache holds unflushed writes.
//
// The records a cache forwards have no input record: a failure of user
// code below it goes to the processing handler as a punctuator's does
// (ErrorContext without a source record).
func (t *Task) Flush() (err error) {
	defer func() {
		if v := recover(); v != nil {
			// Not in a node's code (each node has a guard): in a store's
			// flush itself.
			err = fmt.Errorf("sluice: task %s: flush: %w", t.id, &operators.PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	for pass := 0; ; pass++ {
		var errs []error
		for _, name := range t.order {
			if err := t.stores[name].Flush(); err != nil {
				errs = append(errs, fmt.Errorf("sluice: task %s: flush store %s: %w", t.id, name, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		dirty := ""
		for _, name := range t.order {
			for _, d := range t.dirty[name] {
				if d.Dirty() > 0 {
					dirty = name
				}
			}
			if dirty != "" {
				break
			}
		}
		if dirty == "" {
			return nil
		}
		if pass > len(t.order) {
			return fmt.Errorf("sluice: task %s: store %s still has unflushed writes after %d flushes: do its updates loop back to it?", t.id, dirty, pass+1)
		}
	}
}

// Close closes the task's processors, then its stores.
func (t *Task) Close() error {
	var errs []error
	for _, c := range t.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, t.wrap("", err))
		}
	}
	t.closers = nil
	for _, name := range t.order {
		if err := t.stores[name].Close(); err != nil {
			errs = append(errs, fmt.Errorf("sluice: task %s: close store %s: %w", t.id, name, err))
		}
	}
	t.order = nil
	return errors.Join(errs...)
}

// wrapRecord makes err an *operators.NodeError naming the task, the node
// (when known) and the input record r.
func (t *Task) wrapRecord(r *operators.RawRecord, err error) error {
	var ne *operators.NodeError
	if errors.As(err, &ne) {
		if ne.Task == "" {
			ne.Task = t.id
		}
		if ne.Topic == "" {
			ne.Topic, ne.Partition, ne.Offset = r.Topic, r.Partition, r.Offset
		}
		return err
	}
	var node string
	var de *operators.DeserializationError
	var ie *operators.InvalidTimestampError
	var se *operators.SerializationError
	if errors.As(err, &de) {
		node = de.Node
	} else if errors.As(err, &ie) {
		node = ie.Node
	} else if errors.As(err, &se) {
		node = se.Node
	}
	return &operators.NodeError{Task: t.id, Node: node, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
}

// wrap names the task (and node, if known) in err.
func (t *Task) wrap(node string, err error) error {
	var ne *operators.NodeError
	if errors.As(err, &ne) {
		if ne.Task == "" {
			ne.Task = t.id
		}
		return err
	}
	if node == "" {
		return fmt.Errorf("sluice: task %s: %w", t.id, err)
	}
	return &operators.NodeError{Task: t.id, Node: node, Err: err}
}

// schedule is one punctuation schedule.
type schedule struct {
	node      string
	typ       operators.PunctuationType
	interval  int64
	next      int64
	seq       int
	fn        operators.Punctuator
	cancelled bool
}

func (s *schedule) Cancel() { s.cancelled = true }

// punctuate fires the schedules of typ due at now, earliest first, each at
// most once, with now as their timestamp.
func (t *Task) punctuate(typ operators.PunctuationType, now int64) error {
	if len(t.schedules) == 0 {
		return nil
	}
	var due []*schedule
	for _, s := range t.schedules {
		if s.typ == typ && !s.cancelled && s.next <= now {
			due = append(due, s)
		}
	}
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(a, b *schedule) int {
		if a.next != b.next {
			return int(min(max(a.next-b.next, -1), 1))
		}
		return a.seq - b.seq
	})
	topic, partition, offset, recordTime, cur := t.topic, t.partition, t.offset, t.recordTime, t.cur
	t.topic, t.partition, t.offset, t.cur = "", -1, -1, nil
	defer func() {
		t.topic, t.partition, t.offset, t.recordTime, t.cur = topic, partition, offset, recordTime, cur
	}()
	for _, s := range due {
		if s.cancelled {
			continue
		}
		// Missed punctuations are skipped, not replayed, and the schedule
		// stays on its grid (Kafka Streams' PunctuationSchedule.next).
		next := s.next + s.interval
		if now >= next {
			next = s.next + ((now-s.next)/s.interval+1)*s.interval
		}
		s.next = next
		t.recordTime = now
		start := time.Now()
		err := t.runPunctuator(s, now)
		if t.cfg.Punctuated != nil {
			t.cfg.Punctuated(time.Since(start))
		}
		if err != nil {
			return t.wrap(s.node, fmt.Errorf("%s punctuator: %w", typ, err))
		}
	}
	t.schedules = slices.DeleteFunc(t.schedules, func(s *schedule) bool { return s.cancelled })
	return nil
}

// nodeContext is the nodes.Context of one node of a task.
type nodeContext struct {
	t    *Task
	node *topology.Node
	// dropLogs rate-limit the log lines of RecordDropped, by node and
	// reason (droplog.go).
	dropLogs map[[2]string]*dropLog

	// Rate limit of the log lines about records skipped for an invalid
	// timestamp: one per node per invalidLogInterval of the task's clock.
	invalidLogged     time.Time // when the last line was logged; zero: never
	invalidSuppressed int64     // skipped records not logged since then
	// handled rate-limits the log lines of the records the error handlers
	// let go on, by handler (operators.ErrorKind), the same way.
	handled [3]logLimit
}

// invalidLogInterval is the least time between two log lines of one source
// about records skipped for an invalid timestamp.
const invalidLogInterval = 10 * time.Second

func (c *nodeContext) TaskID() string                { return c.t.id }
func (c *nodeContext) ApplicationID() string         { return c.t.cfg.ApplicationID }
func (c *nodeContext) Topic() string                 { return c.t.topic }
func (c *nodeContext) Partition() int32              { return c.t.partition }
func (c *nodeContext) Offset() int64                 { return c.t.offset }
func (c *nodeContext) StreamTime() int64             { return c.t.streamTime }
func (c *nodeContext) WallClockTime() time.Time      { return c.t.clock() }
func (c *nodeContext) InternalTopic(n string) string { return c.t.internalTopic(n) }
func (c *nodeContext) Collector() operators.Collector {
	// A collector that can bind itself to a node (the runtime's) gives
	// each node its own, so that what it reports about a record names
	// the node that wrote it.
	if nc, ok := c.t.cfg.Collector.(interface {
		ForNode(node string) operators.Collector
	}); ok {
		return nc.ForNode(c.node.Name)
	}
	return c.t.cfg.Collector
}

func (c *nodeContext) Store(name string) (state.Store, error) {
	if g, ok := c.t.cfg.GlobalStores[name]; ok && !slices.Contains(c.node.Stores, name) {
		return g, nil
	}
	if !slices.Contains(c.node.Stores, name) {
		return nil, fmt.Errorf("%w: node %s, store %s", operators.ErrStoreNotDeclared, c.node.Name, name)
	}
	s, ok := c.t.stores[name]
	if !ok {
		return nil, fmt.Errorf("sluice: task %s has no store %s", c.t.id, name)
	}
	return s, nil
}

func (c *nodeContext) Schedule(interval time.Duration, typ operators.PunctuationType, p operators.Punctuator) (operators.Cancellable, error) {
	if interval < time.Millisecond {
		return nil, fmt.Errorf("sluice: node %s: punctuation interval %v is below 1ms", c.node.Name, interval)
	}
	if p == nil {
		return nil, fmt.Errorf("sluice: node %s: nil punctuator", c.node.Name)
	}
	s := &schedule{node: c.node.Name, typ: typ, interval: interval.Milliseconds(), fn: p, seq: c.t.seq}
	c.t.seq++
	switch typ {
	case operators.StreamTime:
		// Aligned to 0: fires with the first record, as in Kafka Streams.
		s.next = 0
	case operators.WallClockTime:
		s.next = c.t.clock().UnixMilli() + s.interval
	default:
		return nil, fmt.Errorf("sluice: node %s: unknown punctuation type %v", c.node.Name, typ)
	}
	c.t.schedules = append(c.t.schedules, s)
	return s, nil
}

func (c *nodeContext) StampRecord(node string, r *operators.RawRecord, ts int64, policy nodes.InvalidTimestampPolicy) (int64, bool, error) {
	t := c.t
	if ts < 0 {
		switch policy {
		case nodes.SkipInvalidTimestamp:
			c.skipInvalid(node, r, ts, "")
			return ts, false, nil
		case nodes.UsePreviousStreamTime:
			if t.streamTime < 0 {
				c.skipInvalid(node, r, ts, "no stream time yet")
				return ts, false, nil
			}
			ts = t.streamTime
		default:
			return ts, false, &operators.InvalidTimestampError{
				Node: node, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: ts}
		}
	}
	if ts > t.streamTime {
		t.streamTime = ts
	}
	t.recordTime = ts
	return ts, true, nil
}

// skipInvalid skips the record being processed for its invalid timestamp
// ts: it counts it and logs it, at most once per invalidLogInterval of the
// task's clock per node (each line tells how many records it stands for).
func (c *nodeContext) skipInvalid(node string, r *operators.RawRecord, ts int64, why string) {
	c.t.skipped = true
	c.RecordDropped(node, "invalid-timestamp")
	now := c.t.clock()
	if !c.invalidLogged.IsZero() {
		if d := now.Sub(c.invalidLogged); d >= 0 && d < invalidLogInterval {
			c.invalidSuppressed++
			return
		}
	}
	attrs := []any{"node", node, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "timestamp", ts}
	if why != "" {
		attrs = append(attrs, "reason", why)
	}
	if c.invalidSuppressed > 0 {
		attrs = append(attrs, "skipped_since_last_log", c.invalidSuppressed)
	}
	c.t.log.Warn("skipping a record with an invalid (negative) timestamp", attrs...)
	c.invalidLogged, c.invalidSuppressed = now, 0
}

func (c *nodeContext) RecordDropped(node, reason string) {
	if c.t.cfg.Dropped != nil {
		c.t.cfg.Dropped(c.t.id, node, reason)
	}
	c.logDrop(node, reason)
}
