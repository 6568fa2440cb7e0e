package nodes

import (
	"bytes"
	"container/heap"
	"fmt"
	"math"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// SuppressConfig configures a suppress node (Kafka Streams'
// SuppressedInternal).
type SuppressConfig[K any] struct {
	// Wait is how long, in ms of the node's stream time, an update stays
	// in the buffer after its buffer time: the time limit, or the grace
	// period of the windows (sessions: gap + grace) for final results.
	Wait int64
	// BufferTime gives a key's buffer time from its first buffered update:
	// the window end of a windowed key for final results. Nil means the
	// update's timestamp (a time limit).
	BufferTime func(k K, ts int64) int64
	// MaxRecords and MaxBytes bound the buffer; 0 is unbounded.
	MaxRecords, MaxBytes int64
	// ShutDownWhenFull fails the task when the buffer goes over a bound;
	// otherwise the oldest entries are emitted early.
	ShutDownWhenFull bool
	// DropTombstones drops deletes instead of emitting them: final
	// results of windowed tables, which never emitted the key before.
	DropTombstones bool
}

// BufferFullError is the error of a suppress node whose buffer went over
// one of its bounds with ShutDownWhenFull (Kafka Streams throws a
// StreamsException): it names the node and both bounds.
type BufferFullError struct {
	Node, Store         string
	Records, MaxRecords int64
	Bytes, MaxBytes     int64
}

func (e *BufferFullError) Error() string {
	return fmt.Sprintf("sluice: suppress node %s: buffer %s exceeded its max capacity: currently [%d/%s] records and [%d/%s] bytes (shut down when full)",
		e.Node, e.Store, e.Records, bound(e.MaxRecords), e.Bytes, bound(e.MaxBytes))
}

func bound(n int64) string {
	if n == 0 {
		return "unbounded"
	}
	return fmt.Sprint(n)
}

// Suppress holds back the updates of a table (Kafka Streams'
// KTableSuppressProcessor over an InMemoryTimeOrderedKeyValueChangeBuffer).
// Each update is buffered under its key, replacing the key's previous
// buffered update but keeping its buffer time (set by the key's first
// buffered update); the node's stream time is the largest timestamp it
// was given, and after each update it emits, in buffer-time order, the
// entries whose buffer time is at most stream time - Wait, then, while the
// buffer is over a bound, the oldest (or fails, ShutDownWhenFull). An
// emitted update has the buffered update's new and old values, timestamp
// and headers.
//
// The buffer is kept in memory and written through to the key-value store
// named store (a topology.SuppressionBuffer), whose changelog is thus
// Kafka Streams' buffer changelog: at start the node rebuilds the buffer
// from the store, which the task restored from the changelog. The stream
// time is kept in the task's processor metadata.
func Suppress[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V], cfg SuppressConfig[K],
	next Node[K, operators.Change[V]]) (Node[K, operators.Change[V]], error) {
	kv, err := OpenKeyValueStore(ctx, store)
	if err != nil {
		return nil, err
	}
	p := &suppress[K, V]{ctx: ctx, node: node, store: store, kv: kv, keys: keys, values: values, cfg: cfg, next: next,
		index: map[string]*BufferEntry{}, observedMD: newMetadata(ctx, store+".observed-stream-time")}
	p.observed = p.observedMD.get(-1)
	for k, v := range kv.Range(nil, nil) {
		e, err := DecodeBufferEntry(k, v)
		if err != nil {
			return nil, fmt.Errorf("sluice: node %s: store %s: %w", node, store, err)
		}
		p.index[string(e.Key)] = e
		heap.Push(&p.queue, e)
		p.bytes += e.Size()
	}
	if r, ok := kv.(state.IterErrReporter); ok {
		if err := r.IterErr(); err != nil {
			return nil, fmt.Errorf("sluice: node %s: store %s: %w", node, store, err)
		}
	}
	return p, nil
}

type suppress[K, V any] struct {
	ctx        Context
	node       string
	store      string
	kv         state.KeyValueStore
	keys       serde.Serde[K]
	values     serde.Serde[V]
	cfg        SuppressConfig[K]
	next       Node[K, operators.Change[V]]
	observed   int64
	observedMD metadata
	// index holds the buffered entries by key, queue in buffer-time order.
	index map[string]*BufferEntry
	queue bufferQueue
	bytes int64
	kbuf  []byte
	vbuf  []byte
}

func (p *suppress[K, V]) Process(r operators.Record[K, operators.Change[V]]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	if r.Timestamp > p.observed {
		p.observed = r.Timestamp
		p.observedMD.set(r.Timestamp)
	}
	if err := p.buffer(r); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return p.enforce()
}

// buffer puts r into the buffer (InMemoryTimeOrderedKeyValueChangeBuffer.put).
func (p *suppress[K, V]) buffer(r operators.Record[K, operators.Change[V]]) error {
	var err error
	if p.kbuf, err = p.keys.Encode(p.kbuf[:0], r.Key); err != nil {
		return fmt.Errorf("store %s: cannot serialize key: %w", p.store, err)
	}
	e := &BufferEntry{Context: BufferContext{Timestamp: r.Timestamp, Offset: p.ctx.Offset(), Topic: p.ctx.Topic(), Partition: p.ctx.Partition()}}
	for _, h := range r.Headers {
		e.Context.Headers = append(e.Context.Headers, operators.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	// One allocation for the new and old values; nil is a null.
	vb := p.vbuf[:0]
	newEnd, oldEnd := -1, -1
	if r.Value.HasNew {
		if vb, err = p.values.Encode(vb, r.Value.New); err != nil {
			return fmt.Errorf("store %s: cannot serialize value: %w", p.store, err)
		}
		newEnd = len(vb)
	}
	if r.Value.HasOld {
		if vb, err = p.values.Encode(vb, r.Value.Old); err != nil {
			return fmt.Errorf("store %s: cannot serialize value: %w", p.store, err)
		}
		oldEnd = len(vb)
	}
	p.vbuf = vb
	// Never nil, so that a value that encodes to no bytes is not a null.
	owned := append(make([]byte, 0, len(vb)), vb...)
	if newEnd >= 0 {
		e.New = owned[:newEnd:newEnd]
	}
	if oldEnd >= 0 {
		e.Old = owned[max(newEnd, 0):oldEnd:oldEnd]
	}
	prev := p.index[string(p.kbuf)]
	if prev == nil {
		// The prior value is the old value of the key's first buffered
		// update: what downstream saw last.
		e.Prior = e.Old
		e.Key = bytes.Clone(p.kbuf)
		e.Time = r.Timestamp
		if p.cfg.BufferTime != nil {
			e.Time = p.cfg.BufferTime(r.Key, r.Timestamp)
		}
		p.index[string(e.Key)] = e
		heap.Push(&p.queue, e)
	} else {
		// Non-resetting: the key keeps its place in time order.
		e.Prior, e.Key, e.Time, e.pos = prev.Prior, prev.Key, prev.Time, prev.pos
		p.bytes -= prev.Size()
		p.index[string(e.Key)] = e
		p.queue[e.pos] = e
	}
	p.bytes += e.Size()
	p.vbuf = e.AppendEncoded(p.vbuf[:0])
	return p.kv.Put(e.Key, p.vbuf)
}

// enforce emits what is due and what the bounds do not leave room for
// (KTableSuppressProcessor.enforceConstraints).
func (p *suppress[K, V]) enforce() error {
	expiry := p.observed - p.cfg.Wait
	if p.cfg.Wait > 0 && p.observed < math.MinInt64+p.cfg.Wait {
		expiry = math.MinInt64
	}
	for len(p.queue) > 0 && p.queue[0].Time <= expiry {
		if err := p.evict(); err != nil {
			return err
		}
	}
	if !p.overCapacity() {
		return nil
	}
	if p.cfg.ShutDownWhenFull {
		return &operators.NodeError{Node: p.node, Err: &BufferFullError{Node: p.node, Store: p.store,
			Records: int64(len(p.index)), MaxRecords: p.cfg.MaxRecords, Bytes: p.bytes, MaxBytes: p.cfg.MaxBytes}}
	}
	for len(p.queue) > 0 && p.overCapacity() {
		if err := p.evict(); err != nil {
			return err
		}
	}
	return nil
}

func (p *suppress[K, V]) overCapacity() bool {
	return (p.cfg.MaxRecords > 0 && int64(len(p.index)) > p.cfg.MaxRecords) ||
		(p.cfg.MaxBytes > 0 && p.bytes > p.cfg.MaxBytes)
}

// evict forwards the oldest entry, unless it is a delete the node drops,
// then removes it from the buffer. As Kafka Streams'
// InMemoryTimeOrderedKeyValueChangeBuffer.evictWhile, the entry is still
// buffered while its update travels downstream: a node that reads the
// suppressed table then (a join with a table derived from it) sees the
// key's prior value, not the one being emitted.
func (p *suppress[K, V]) evict() error {
	e := p.queue[0]
	if e.New != nil || !p.cfg.DropTombstones {
		if err := p.forward(e); err != nil {
			return err
		}
	}
	heap.Pop(&p.queue)
	delete(p.index, string(e.Key))
	p.bytes -= e.Size()
	if err := p.kv.Delete(e.Key); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return nil
}

// forward forwards the update of buffered entry e.
func (p *suppress[K, V]) forward(e *BufferEntry) error {
	out := operators.Record[K, operators.Change[V]]{Timestamp: e.Context.Timestamp, Headers: e.Context.Headers}
	var err error
	if out.Key, err = p.keys.Decode(e.Key); err != nil {
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize key: %w", p.store, err)}
	}
	if e.New != nil {
		if out.Value.New, err = p.values.Decode(e.New); err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize value: %w", p.store, err)}
		}
		out.Value.HasNew = true
	}
	if e.Old != nil {
		if out.Value.Old, err = p.values.Decode(e.Old); err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize value: %w", p.store, err)}
		}
		out.Value.HasOld = true
	}
	return p.next.Process(out)
}

// SuppressGetter reads the rows of a suppressed table: a key in the
// buffer has the value downstream saw last (the buffered entry's prior
// value; a null prior value is no row), with timestamp -1 (unknown, as
// Kafka Streams' priorValueForBuffered); any other key is read from parent
// (Kafka Streams' KTableSuppressProcessorSupplier.view). The buffer is read
// from its store, which the suppress node writes through.
func SuppressGetter[K, V any](ctx Context, store string, keys serde.Serde[K], values serde.Serde[V], parent ValueGetter[K, V]) (ValueGetter[K, V], error) {
	kv, err := OpenKeyValueStore(ctx, store)
	if err != nil {
		return nil, err
	}
	return &suppressGetter[K, V]{store: store, kv: kv, keys: keys, values: values, parent: parent}, nil
}

type suppressGetter[K, V any] struct {
	store  string
	kv     state.KeyValueStore
	keys   serde.Serde[K]
	values serde.Serde[V]
	parent ValueGetter[K, V]
	kbuf   []byte
}

func (g *suppressGetter[K, V]) Get(k K) (v V, ts int64, ok bool, err error) {
	if g.kbuf, err = g.keys.Encode(g.kbuf[:0], k); err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: cannot serialize key: %w", g.store, err)
	}
	b, buffered, err := g.kv.Get(g.kbuf)
	if err != nil {
		return v, 0, false, err
	}
	if !buffered {
		return g.parent.Get(k)
	}
	e, err := DecodeBufferEntry(g.kbuf, b)
	if err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: %w", g.store, err)
	}
	if e.Prior == nil {
		return v, 0, false, nil
	}
	if v, err = g.values.Decode(e.Prior); err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", g.store, err)
	}
	return v, -1, true, nil
}
