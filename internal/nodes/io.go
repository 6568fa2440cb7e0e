package nodes

import (
	"fmt"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// InvalidTimestampPolicy says what a source does with a record whose
// timestamp is invalid, that is negative, whether it is the record's own
// Kafka timestamp or what an extractor returned.
type InvalidTimestampPolicy int

const (
	// FailOnInvalidTimestamp stops the task with an *InvalidTimestampError
	// (Kafka Streams' default extractor, FailOnInvalidTimestamp).
	FailOnInvalidTimestamp InvalidTimestampPolicy = iota
	// SkipInvalidTimestamp drops the record, counts it with the reason
	// "invalid-timestamp" and logs it (Kafka Streams'
	// LogAndSkipOnInvalidTimestamp).
	SkipInvalidTimestamp
	// UsePreviousStreamTime stamps the record with the task's stream time
	// before it; with no stream time yet (no record processed), the record
	// is skipped as with SkipInvalidTimestamp (Kafka Streams'
	// UsePartitionTimeOnInvalidTimestamp, which fails in that case).
	UsePreviousStreamTime
)

// String implements fmt.Stringer.
func (p InvalidTimestampPolicy) String() string {
	switch p {
	case FailOnInvalidTimestamp:
		return "fail"
	case SkipInvalidTimestamp:
		return "skip"
	case UsePreviousStreamTime:
		return "use-previous-stream-time"
	}
	return fmt.Sprintf("InvalidTimestampPolicy(%d)", int(p))
}

// SourceTimestamps says how a source stamps the records it reads. The zero
// value stamps each record with its Kafka timestamp and fails on a negative
// one, as Kafka Streams does by default.
type SourceTimestamps[K, V any] struct {
	// Extract, if set, returns the timestamp of a record (ms) from its
	// decoded key and value (absent for Kafka nulls), its headers
	// (valid only during the call) and its Kafka timestamp. Kafka Streams:
	// TimestampExtractor.
	Extract func(key operators.Maybe[K], value operators.Maybe[V], headers []operators.Header, recordTimestamp int64) int64
	// OnInvalid is the policy for a negative timestamp.
	OnInvalid InvalidTimestampPolicy
	// Raw forwards each record with its own Kafka timestamp, negative or
	// not, and does not stamp it (no stream time, no policy): a global
	// table's source, as Kafka Streams' GlobalStateUpdateTask applies no
	// timestamp extractor. Extract and OnInvalid must be unset.
	Raw bool
}

// Source deserializes raw records with the given serdes, stamps them as ts
// says, and forwards them. A Kafka null key or value sets NullKey or
// Tombstone instead of being decoded. A record that fails to decode goes to
// the task's DeserializationError policy; its timestamp is then never
// looked at. Stream time follows the stamped timestamps
// (Context.StampRecord).
func Source[K, V any](ctx Context, node string, keys serde.Serde[K], values serde.Serde[V], ts SourceTimestamps[K, V], next Node[K, V]) RawProcessor {
	return &source[K, V]{ctx: ctx, node: node, keys: keys, values: values, ts: ts, next: next}
}

type source[K, V any] struct {
	ctx    Context
	node   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	ts     SourceTimestamps[K, V]
	next   Node[K, V]
}

// TimestampPeeker is implemented by sources that can tell a record's event
// time before processing it: the task's choice of the next partition uses
// it, so that records are processed in event-time order across the task's
// partitions even when a source extracts the time from the value.
type TimestampPeeker interface {
	// PeekTimestamp returns the event time of raw: its Kafka timestamp, or
	// what the source's extractor makes of it (the record is decoded for
	// that, and decoded again when it is processed). A record that cannot
	// be decoded gives its Kafka timestamp.
	PeekTimestamp(raw *operators.RawRecord) int64
}

// PeekTimestamp implements TimestampPeeker.
func (p *source[K, V]) PeekTimestamp(raw *operators.RawRecord) int64 {
	if p.ts.Extract == nil {
		return raw.Timestamp
	}
	var k operators.Maybe[K]
	var v operators.Maybe[V]
	if raw.Key != nil {
		kv, err := p.keys.Decode(raw.Key)
		if err != nil {
			return raw.Timestamp
		}
		k = operators.Some(kv)
	}
	if raw.Value != nil {
		vv, err := p.values.Decode(raw.Value)
		if err != nil {
			return raw.Timestamp
		}
		v = operators.Some(vv)
	}
	return p.ts.Extract(k, v, raw.Headers, raw.Timestamp)
}

func (p *source[K, V]) ProcessRaw(raw *operators.RawRecord) error {
	r := operators.Record[K, V]{Timestamp: raw.Timestamp, Headers: raw.Headers}
	var err error
	if raw.Key == nil {
		r.NullKey = true
	} else if r.Key, err = decode(p.node, p.keys, raw.Key); err != nil {
		return p.ctx.DeserializationError(p.node, raw, &operators.DeserializationError{
			Node: p.node, Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset, Part: "key", Err: err})
	}
	if raw.Value == nil {
		r.Tombstone = true
	} else if r.Value, err = decode(p.node, p.values, raw.Value); err != nil {
		return p.ctx.DeserializationError(p.node, raw, &operators.DeserializationError{
			Node: p.node, Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset, Part: "value", Err: err})
	}
	if p.ts.Raw {
		return p.next.Process(r)
	}
	if p.ts.Extract != nil {
		r.Timestamp = p.ts.Extract(r.MaybeKey(), r.MaybeValue(), r.Headers, raw.Timestamp)
	}
	ts, ok, err := p.ctx.StampRecord(p.node, raw, r.Timestamp, p.ts.OnInvalid)
	if !ok {
		return err
	}
	r.Timestamp = ts
	return p.next.Process(r)
}

// Sink serializes records and sends them to the task's collector. The topic
// is fixed, or chosen per record by extract when topic is empty; extract
// sees the key and value as Maybe, absent for a null. Keys and
// values are encoded into buffers the sink reuses.
//
// A record goes to the partition of its encoded key (murmur2), except when
// keys is a windowed key serde (window.BaseKeyer): then to the partition of
// the key without its window, so that every window of a key lands in one
// partition, as Kafka Streams' sinks do for windowed keys
// (WindowedStreamPartitioner).
func Sink[K, V any](ctx Context, node, topic string, extract func(operators.Maybe[K], operators.Maybe[V]) string, keys serde.Serde[K], values serde.Serde[V]) Node[K, V] {
	p := &sink[K, V]{node: node, topic: topic, extract: extract, keys: keys, values: values, out: ctx.Collector()}
	if bk, ok := keys.(window.BaseKeyer); ok {
		if pc, ok := p.out.(operators.PartitionKeyCollector); ok {
			p.baseKey, p.byKey = bk, pc
		}
	}
	return p
}

// RepartitionSink is a Sink that partitions by the whole encoded key, even
// of a windowed key, as Kafka Streams' repartition topics are.
func RepartitionSink[K, V any](ctx Context, node, topic string, keys serde.Serde[K], values serde.Serde[V]) Node[K, V] {
	return &sink[K, V]{node: node, topic: topic, keys: keys, values: values, out: ctx.Collector()}
}

type sink[K, V any] struct {
	node    string
	topic   string
	extract func(operators.Maybe[K], operators.Maybe[V]) string
	keys    serde.Serde[K]
	values  serde.Serde[V]
	out     operators.Collector
	// baseKey and byKey are set for windowed keys: the record is sent
	// through byKey, partitioned by baseKey's part of the encoded key.
	baseKey window.BaseKeyer
	byKey   operators.PartitionKeyCollector
	kbuf    []byte
	vbuf    []byte
}

func (p *sink[K, V]) Process(r operators.Record[K, V]) error {
	topic := p.topic
	if p.extract != nil {
		if topic = p.extract(r.MaybeKey(), r.MaybeValue()); topic == "" {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("the topic extractor returned an empty topic name")}
		}
	}
	var k, v []byte
	var err error
	if !r.NullKey {
		if p.kbuf, err = encode(p.node, p.keys, p.kbuf[:0], r.Key); err != nil {
			return &operators.SerializationError{Node: p.node, Topic: topic, Part: "key", Err: err}
		}
		k = p.kbuf
		if k == nil {
			k = []byte{}
		}
	}
	if !r.Tombstone {
		if p.vbuf, err = encode(p.node, p.values, p.vbuf[:0], r.Value); err != nil {
			return &operators.SerializationError{Node: p.node, Topic: topic, Part: "value", Err: err}
		}
		v = p.vbuf
		if v == nil {
			v = []byte{}
		}
	}
	if p.byKey != nil && k != nil {
		by, err := p.baseKey.BaseKey(k)
		if err != nil {
			return &operators.SerializationError{Node: p.node, Topic: topic, Part: "key", Err: err}
		}
		err = p.byKey.SendPartitionedBy(topic, by, k, v, r.Headers, r.Timestamp)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		return nil
	}
	if err := p.out.Send(topic, -1, k, v, r.Headers, r.Timestamp); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return nil
}
