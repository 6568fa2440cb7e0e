package testdriver

import (
	"fmt"
	"iter"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// InputTopic pipes typed records into a topic the topology reads.
type InputTopic[K, V any] struct {
	d          *Driver
	topic      string
	keys       serde.Serde[K]
	values     serde.Serde[V]
	kbuf, vbuf []byte
}

// CreateInputTopic returns a typed handle to pipe records into topic.
func CreateInputTopic[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// Pipe pipes a record with the driver's wall-clock time as its timestamp.
func (in *InputTopic[K, V]) Pipe(k K, v V) error {
	return in.PipeRecord(operators.Record[K, V]{Key: k, Value: v, Timestamp: in.d.clock.UnixMilli()})
}

// PipeAt pipes a record with timestamp ts (milliseconds since the epoch).
func (in *InputTopic[K, V]) PipeAt(k K, v V, ts int64) error {
	return in.PipeRecord(operators.Record[K, V]{Key: k, Value: v, Timestamp: ts})
}

// PipeValue pipes a record with a null key at the wall-clock time.
func (in *InputTopic[K, V]) PipeValue(v V) error {
	return in.PipeRecord(operators.Record[K, V]{Value: v, NullKey: true, Timestamp: in.d.clock.UnixMilli()})
}

// PipeTombstone pipes a record with a null value (a delete, for a table).
func (in *InputTopic[K, V]) PipeTombstone(k K, ts int64) error {
	return in.PipeRecord(operators.Record[K, V]{Key: k, Tombstone: true, Timestamp: ts})
}

// PipeRecord pipes r, with its timestamp, headers and null flags.
func (in *InputTopic[K, V]) PipeRecord(r operators.Record[K, V]) error {
	var k, v []byte
	var err error
	if !r.NullKey {
		if in.kbuf, err = in.keys.Encode(in.kbuf[:0], r.Key); err != nil {
			return fmt.Errorf("sluice: testdriver: topic %s: cannot serialize key: %w", in.topic, err)
		}
		k = in.d.arena.copy(nonNil(in.kbuf))
	}
	if !r.Tombstone {
		if in.vbuf, err = in.values.Encode(in.vbuf[:0], r.Value); err != nil {
			return fmt.Errorf("sluice: testdriver: topic %s: cannot serialize value: %w", in.topic, err)
		}
		v = in.d.arena.copy(nonNil(in.vbuf))
	}
	return in.d.pipe(in.topic, k, v, cloneHeaders(r.Headers), r.Timestamp)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// PipeRecords pipes rs in order and stops at the first error.
func (in *InputTopic[K, V]) PipeRecords(rs []operators.Record[K, V]) error {
	for _, r := range rs {
		if err := in.PipeRecord(r); err != nil {
			return err
		}
	}
	return nil
}

// PipeRaw pipes bytes as they are, for testing what the topology does with
// input it cannot decode. A nil key or value is a Kafka null.
func (in *InputTopic[K, V]) PipeRaw(key, value []byte, ts int64) error {
	return in.d.pipe(in.topic, in.d.arena.copy(key), in.d.arena.copy(value), nil, ts)
}

// OutputTopic reads typed records the topology wrote to a topic. Reading
// consumes: records read through one handle are not read again through
// another handle of the same topic.
type OutputTopic[K, V any] struct {
	d      *Driver
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// CreateOutputTopic returns a typed handle to read what was written to
// topic.
func CreateOutputTopic[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// QueueSize is the number of unread records.
func (o *OutputTopic[K, V]) QueueSize() int {
	l := o.d.topicLog(o.topic)
	return l.n - l.read
}

// IsEmpty reports whether every record was read.
func (o *OutputTopic[K, V]) IsEmpty() bool { return o.QueueSize() == 0 }

func (o *OutputTopic[K, V]) decode(s storedRecord) (operators.Record[K, V], error) {
	r := operators.Record[K, V]{Timestamp: s.ts, Headers: s.headers}
	var err error
	if s.key == nil {
		r.NullKey = true
	} else if r.Key, err = o.keys.Decode(s.key); err != nil {
		return r, fmt.Errorf("sluice: testdriver: topic %s: cannot deserialize key: %w", o.topic, err)
	}
	if s.value == nil {
		r.Tombstone = true
	} else if r.Value, err = o.values.Decode(s.value); err != nil {
		return r, fmt.Errorf("sluice: testdriver: topic %s: cannot deserialize value: %w", o.topic, err)
	}
	return r, nil
}

// ReadRecord reads the next unread record, or returns ErrNoRecord. A topic
// the topology does not write is an error naming it.
func (o *OutputTopic[K, V]) ReadRecord() (operators.Record[K, V], error) {
	if err := o.d.checkOutput(o.topic); err != nil {
		return operators.Record[K, V]{}, err
	}
	l := o.d.topicLog(o.topic)
	for s := range l.unread() {
		return o.decode(s)
	}
	return operators.Record[K, V]{}, fmt.Errorf("%w: %s", ErrNoRecord, o.topic)
}

// ReadKeyValue reads the key and value of the next unread record.
func (o *OutputTopic[K, V]) ReadKeyValue() (K, V, error) {
	r, err := o.ReadRecord()
	return r.Key, r.Value, err
}

// ReadRecords reads every unread record. A topic the topology does not
// write is an error naming it.
func (o *OutputTopic[K, V]) ReadRecords() ([]operators.Record[K, V], error) {
	if err := o.d.checkOutput(o.topic); err != nil {
		return nil, err
	}
	l := o.d.topicLog(o.topic)
	var out []operators.Record[K, V]
	for s := range l.unread() {
		r, err := o.decode(s)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadKeyValuesToMap reads every unread record into a map of each key's
// latest value; a tombstone removes its key. Records with a null key are
// skipped.
func ReadKeyValuesToMap[K comparable, V any](o *OutputTopic[K, V]) (map[K]V, error) {
	rs, err := o.ReadRecords()
	m := make(map[K]V)
	for _, r := range rs {
		switch {
		case r.NullKey:
		case r.Tombstone:
			delete(m, r.Key)
		default:
			m[r.Key] = r.Value
		}
	}
	return m, err
}

// KeyValueStore returns a typed view of the key-value store named name. For
// the timestamped stores of DSL aggregations and tables it reads the values
// without their timestamps (use TimestampedKeyValueStore for both). Writes
// through the view are stamped with the driver's wall-clock time.
func KeyValueStore[K, V any](d *Driver, name string, keys serde.Serde[K], values serde.Serde[V]) (*state.KV[K, V], error) {
	kv, timestamped, err := d.kvStore(name)
	if err != nil {
		return nil, err
	}
	if timestamped {
		kv = &untimestamped{KeyValueStore: kv, d: d}
	}
	return state.NewKV(kv, keys, values), nil
}

// ValueAndTimestamp is a value of a timestamped store.
type ValueAndTimestamp[V any] struct {
	Value     V
	Timestamp int64
}

// TimestampedKeyValueStore returns the entries of a timestamped store (a
// DSL aggregation's or table's) with their timestamps, in key order.
func TimestampedKeyValueStore[K, V any](d *Driver, name string, keys serde.Serde[K], values serde.Serde[V]) (iter.Seq2[K, ValueAndTimestamp[V]], error) {
	kv, timestamped, err := d.kvStore(name)
	if err != nil {
		return nil, err
	}
	if !timestamped {
		return nil, fmt.Errorf("sluice: testdriver: store %s is not timestamped", name)
	}
	return func(yield func(K, ValueAndTimestamp[V]) bool) {
		for kb, vb := range kv.Range(nil, nil) {
			k, err := keys.Decode(kb)
			if err != nil {
				return
			}
			ts, raw, err := nodes.DecodeTimestamped(vb)
			if err != nil {
				return
			}
			v, err := values.Decode(raw)
			if err != nil {
				return
			}
			if !yield(k, ValueAndTimestamp[V]{Value: v, Timestamp: ts}) {
				return
			}
		}
	}, nil
}

func (d *Driver) kvStore(name string) (state.KeyValueStore, bool, error) {
	spec := d.topo.Store(name)
	s := d.Store(name)
	if spec == nil || s == nil {
		return nil, false, fmt.Errorf("sluice: testdriver: the topology has no store %q", name)
	}
	kv, ok := s.(state.KeyValueStore)
	if !ok {
		return nil, false, fmt.Errorf("sluice: testdriver: store %s is a %T, not a key-value store", name, s)
	}
	return kv, spec.Timestamped, nil
}

// untimestamped shows a timestamped store's values without their
// timestamps.
type untimestamped struct {
	state.KeyValueStore
	d   *Driver
	buf []byte
}

func (u *untimestamped) Get(key []byte) ([]byte, bool, error) {
	v, ok, err := u.KeyValueStore.Get(key)
	if !ok || err != nil {
		return nil, ok, err
	}
	_, raw, err := nodes.DecodeTimestamped(v)
	return raw, err == nil, err
}

func (u *untimestamped) Put(key, value []byte) error {
	u.buf = append(u.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	ts := uint64(u.d.clock.UnixMilli())
	for i := range 8 {
		u.buf[i] = byte(ts >> (56 - 8*i))
	}
	u.buf = append(u.buf, value...)
	return u.KeyValueStore.Put(key, u.buf)
}

func (u *untimestamped) strip(seq iter.Seq2[[]byte, []byte]) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for k, v := range seq {
			_, raw, err := nodes.DecodeTimestamped(v)
			if err != nil {
				continue
			}
			if !yield(k, raw) {
				return
			}
		}
	}
}

func (u *untimestamped) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	return u.strip(u.KeyValueStore.Range(from, to))
}

func (u *untimestamped) Prefix(p []byte) iter.Seq2[[]byte, []byte] {
	return u.strip(u.KeyValueStore.Prefix(p))
}
