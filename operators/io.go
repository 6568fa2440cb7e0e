package operators

import (
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// Source deserializes raw records with the given serdes and forwards them.
// A Kafka null key or value sets NullKey or Tombstone instead of being
// decoded. A record that fails to decode goes to the task's
// DeserializationError policy.
func Source[K, V any](ctx Context, node string, keys serde.Serde[K], values serde.Serde[V], next Node[K, V]) RawProcessor {
	return &source[K, V]{ctx: ctx, node: node, keys: keys, values: values, next: next}
}

type source[K, V any] struct {
	ctx    Context
	node   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	next   Node[K, V]
}

func (p *source[K, V]) ProcessRaw(raw *RawRecord) error {
	r := Record[K, V]{Timestamp: raw.Timestamp, Headers: raw.Headers}
	var err error
	if raw.Key == nil {
		r.NullKey = true
	} else if r.Key, err = p.keys.Decode(raw.Key); err != nil {
		return p.ctx.DeserializationError(p.node, raw, &DeserializationError{
			Node: p.node, Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset, Part: "key", Err: err})
	}
	if raw.Value == nil {
		r.Tombstone = true
	} else if r.Value, err = p.values.Decode(raw.Value); err != nil {
		return p.ctx.DeserializationError(p.node, raw, &DeserializationError{
			Node: p.node, Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset, Part: "value", Err: err})
	}
	return p.next.Process(r)
}

// Sink serializes records and sends them to the task's collector. The topic
// is fixed, or chosen per record by extract when topic is empty. Keys and
// values are encoded into buffers the sink reuses.
func Sink[K, V any](ctx Context, node, topic string, extract func(K, V) string, keys serde.Serde[K], values serde.Serde[V]) Node[K, V] {
	return &sink[K, V]{node: node, topic: topic, extract: extract, keys: keys, values: values, out: ctx.Collector()}
}

type sink[K, V any] struct {
	node    string
	topic   string
	extract func(K, V) string
	keys    serde.Serde[K]
	values  serde.Serde[V]
	out     Collector
	kbuf    []byte
	vbuf    []byte
}

func (p *sink[K, V]) Process(r Record[K, V]) error {
	topic := p.topic
	if p.extract != nil {
		if topic = p.extract(r.Key, r.Value); topic == "" {
			return &NodeError{Node: p.node, Err: fmt.Errorf("the topic extractor returned an empty topic name")}
		}
	}
	var k, v []byte
	var err error
	if !r.NullKey {
		if p.kbuf, err = p.keys.Encode(p.kbuf[:0], r.Key); err != nil {
			return &SerializationError{Node: p.node, Topic: topic, Part: "key", Err: err}
		}
		k = p.kbuf
		if k == nil {
			k = []byte{}
		}
	}
	if !r.Tombstone {
		if p.vbuf, err = p.values.Encode(p.vbuf[:0], r.Value); err != nil {
			return &SerializationError{Node: p.node, Topic: topic, Part: "value", Err: err}
		}
		v = p.vbuf
		if v == nil {
			v = []byte{}
		}
	}
	if err := p.out.Send(topic, -1, k, v, r.Headers, r.Timestamp); err != nil {
		return &NodeError{Node: p.node, Err: err}
	}
	return nil
}
