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

// Option configures a Driver.
type Option interface{ apply(*config) }

type config struct {
	appID string
	clock time.Time
	skip  bool
	log   *slog.Logger
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
// cannot deserialize, instead of failing (the default).
func SkipUndecodableRecords() Option { return optionFunc(func(c *config) { c.skip = true }) }

// WithLogger sets the logger of the tasks; the default discards.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	cfg     config
	topo    *topology.Topology
	clock   time.Time
	tasks   []*task.Task
	readers map[string]*task.Task // Kafka topic → task that reads it
	topics  map[string]*topicLog  // records written to non-internal topics
	offsets map[string]int64      // next offset of each topic piped into
	queue   []queued              // records written to topics the topology reads
	arena   []byte                // bytes of piped and queued records
	dropped map[[2]string]int64
	closed  bool
}

type queued struct {
	topic      string
	key, value []byte
	headers    []operators.Header
	ts         int64
}

// copyBytes copies b into the driver's arena, so piped and queued records
// cost no allocation each. The arena is filled in chunks and never
// overwritten: a value that aliases the bytes of a record it was decoded
// from (serde.Bytes) stays valid, as it does in the runtime.
func (d *Driver) copyBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	if len(b) == 0 {
		return []byte{}
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, max(1<<20, len(b)))
	}
	n := len(d.arena)
	d.arena = append(d.arena, b...)
	return d.arena[n:len(d.arena):len(d.arena)]
}

// New creates a driver for topo and instantiates its tasks. The caller must
// Close it.
func New(topo *topology.Topology, opts ...Option) (*Driver, error) {
	cfg := config{appID: "sluice-test", clock: time.UnixMilli(0).UTC()}
	for _, o := range opts {
		o.apply(&cfg)
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
	policy := task.FailOnDeserializationError
	if cfg.skip {
		policy = task.SkipOnDeserializationError
	}
	for _, st := range topo.SubTopologies() {
		t, err := task.New(task.Config{
			ApplicationID: cfg.appID,
			SubTopology:   st,
			Partition:     0,
			Collector:     (*collector)(d),
			OpenStore: func(_ string, spec *topology.StoreSpec) (state.Store, error) {
				if spec.Kind != topology.KeyValue {
					return nil, fmt.Errorf("sluice: testdriver: store %s: kind %d is not supported yet", spec.Name, spec.Kind)
				}
				return state.NewInMemoryKeyValueStore(spec.Name), nil
			},
			Clock:                  func() time.Time { return d.clock },
			Logger:                 cfg.log,
			OnDeserializationError: policy,
			Dropped: func(_, node, reason string) {
				d.dropped[[2]string{node, reason}]++
			},
		})
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		d.tasks = append(d.tasks, t)
		for _, tp := range t.Topics() {
			d.readers[tp] = t
		}
	}
	return d, nil
}

// Close closes the tasks and their stores.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range d.tasks {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// WallClockTime is the driver's wall clock.
func (d *Driver) WallClockTime() time.Time { return d.clock }

// AdvanceWallClockTime moves the wall clock forward by dur and fires the
// wall-clock punctuations that are due, then processes what they wrote to
// topics the topology reads.
func (d *Driver) AdvanceWallClockTime(dur time.Duration) error {
	if dur < 0 {
		return fmt.Errorf("sluice: testdriver: cannot move the wall clock back by %v", dur)
	}
	d.clock = d.clock.Add(dur)
	for _, t := range d.tasks {
		if err := t.PunctuateWallClock(d.clock); err != nil {
			return err
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// DroppedRecords is the number of records node dropped for reason (such as
// "null-key", "null-value", "deserialization-error").
func (d *Driver) DroppedRecords(node, reason string) int64 { return d.dropped[[2]string{node, reason}] }

// Store returns the store named name, or nil. Values of the stores of
// DSL aggregations and tables are timestamped (see KeyValueStore).
func (d *Driver) Store(name string) state.Store {
	for _, t := range d.tasks {
		if s := t.Store(name); s != nil {
			return s
		}
	}
	return nil
}

// StreamTime is the stream time of the task of sub-topology sub.
func (d *Driver) StreamTime(sub int) int64 {
	if sub < 0 || sub >= len(d.tasks) {
		return -1
	}
	return d.tasks[sub].StreamTime()
}

// pipe feeds one serialized record into topic and processes it and
// everything it causes.
func (d *Driver) pipe(topic string, key, value []byte, headers []operators.Header, ts int64) error {
	if d.closed {
		return errors.New("sluice: testdriver: driver is closed")
	}
	t, ok := d.readers[topic]
	if !ok {
		return fmt.Errorf("sluice: testdriver: topic %q is not read by the topology (it reads %v)", topic, d.sourceTopics())
	}
	off := d.offsets[topic]
	d.offsets[topic] = off + 1
	r := operators.RawRecord{Topic: topic, Partition: 0, Offset: off, Timestamp: ts, Key: key, Value: value, Headers: headers}
	if err := t.Process(&r); err != nil {
		d.queue = d.queue[:0]
		return err
	}
	return d.drain()
}

// drain processes the records written to topics the topology reads, in the
// order they were written.
func (d *Driver) drain() error {
	for i := 0; i < len(d.queue); i++ {
		q := d.queue[i]
		t := d.readers[q.topic]
		off := d.offsets[q.topic]
		d.offsets[q.topic] = off + 1
		r := operators.RawRecord{Topic: q.topic, Partition: 0, Offset: off, Timestamp: q.ts,
			Key: q.key, Value: q.value, Headers: q.headers}
		if err := t.Process(&r); err != nil {
			d.queue = d.queue[:0]
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
		d.queue = append(d.queue, queued{topic: topic, key: d.copyBytes(key), value: d.copyBytes(value),
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
		if d.cfg.appID+"-"+it.Name == topic {
			return true
		}
	}
	return false
}

// topicLog holds the records written to one topic: their bytes in one
// append-only arena, so capturing output costs no allocation per record.
type topicLog struct {
	data []byte
	recs []storedRecord
	read int
}

type storedRecord struct {
	koff, klen int // klen -1: null key
	voff, vlen int // vlen -1: null value
	ts         int64
	headers    []operators.Header
}

func (r storedRecord) key(data []byte) []byte {
	if r.klen < 0 {
		return nil
	}
	return data[r.koff : r.koff+r.klen : r.koff+r.klen]
}

func (r storedRecord) value(data []byte) []byte {
	if r.vlen < 0 {
		return nil
	}
	return data[r.voff : r.voff+r.vlen : r.voff+r.vlen]
}

func appendRecord(data, key, value []byte, headers []operators.Header, ts int64) (storedRecord, []byte) {
	r := storedRecord{klen: -1, vlen: -1, ts: ts}
	if key != nil {
		r.koff, r.klen = len(data), len(key)
		data = append(data, key...)
	}
	if value != nil {
		r.voff, r.vlen = len(data), len(value)
		data = append(data, value...)
	}
	r.headers = cloneHeaders(headers)
	return r, data
}

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

func (l *topicLog) append(key, value []byte, headers []operators.Header, ts int64) {
	var r storedRecord
	r, l.data = appendRecord(l.data, key, value, headers, ts)
	l.recs = append(l.recs, r)
}

// unread yields the unread records and marks them read as it goes.
func (l *topicLog) unread() iter.Seq[storedRecord] {
	return func(yield func(storedRecord) bool) {
		for l.read < len(l.recs) {
			r := l.recs[l.read]
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
