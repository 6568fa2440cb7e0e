package nodes

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

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
		index: map[string]*bufferEntry{}, observedMD: newMetadata(ctx, store+".observed-stream-time")}
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
	index map[string]*bufferEntry
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
	e := &bufferEntry{Context: BufferContext{Timestamp: r.Timestamp, Offset: p.ctx.Offset(), Topic: p.ctx.Topic(), Partition: p.ctx.Partition()}}
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
	owned := bytes.Clone(vb)
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

// evict removes the oldest entry from the buffer and forwards it, unless
// it is a tombstone the node drops.
func (p *suppress[K, V]) evict() error {
	e := heap.Pop(&p.queue).(*bufferEntry)
	delete(p.index, string(e.Key))
	p.bytes -= e.Size()
	if err := p.kv.Delete(e.Key); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if e.New == nil && p.cfg.DropTombstones {
		return nil
	}
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

// BufferContext is the record context of a buffered update: the timestamp
// and headers it is emitted with, and the input record that caused it
// (Kafka Streams' ProcessorRecordContext).
type BufferContext struct {
	Timestamp int64
	Offset    int64
	Topic     string
	Partition int32
	Headers   []operators.Header
}

// bufferEntry is one key's buffered update: Kafka Streams' BufferKey
// (buffer time and key) and BufferValue (prior, old and new value, nil
// for a null, and record context).
type bufferEntry struct {
	Key     []byte
	Time    int64
	Prior   []byte
	Old     []byte
	New     []byte
	Context BufferContext
	pos     int // in the queue
}

// Size is the entry's size as Kafka Streams counts it against a bytes
// bound (InMemoryTimeOrderedKeyValueChangeBuffer.computeRecordSize): the
// buffer time, the key, the values (the old one not when it equals the
// prior one) and the record context's timestamp, offset, topic (in Java
// chars), partition and headers.
func (e *bufferEntry) Size() int64 {
	n := 8 + len(e.Key) + len(e.Prior) + len(e.New)
	if e.Old != nil && !bytes.Equal(e.Prior, e.Old) {
		n += len(e.Old)
	}
	n += 8 + 8 + javaChars(e.Context.Topic) + 4
	for _, h := range e.Context.Headers {
		n += javaChars(h.Key) + len(h.Value)
	}
	return int64(n)
}

// javaChars is the length of s in UTF-16 code units, as Java's
// String.toCharArray().length.
func javaChars(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// Kafka Streams' sentinels of BufferValue's length fields.
const (
	bufferNull          = -1
	bufferOldIsPrior    = -2
	bufferMaxHeaderSize = 1 << 30
)

// AppendEncoded appends the entry's changelog value to dst, in Kafka
// Streams' buffer changelog format version 3
// (InMemoryTimeOrderedKeyValueChangeBuffer.logValue): the record context
// (int64 timestamp, int64 offset, int32 topic length and topic, int32
// partition, int32 header count, per header int32 key length, key, int32
// value length or -1 and value), the prior value, the old value (-2 when
// equal to the prior value), the new value (each an int32 length, -1 for
// a null, and the bytes), then the int64 buffer time. All big-endian.
func (e *bufferEntry) AppendEncoded(dst []byte) []byte {
	c := &e.Context
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Timestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Topic)))
	dst = append(dst, c.Topic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Partition))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Headers)))
	for _, h := range c.Headers {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	dst = appendNullable(dst, e.Prior)
	switch {
	case e.Old == nil:
		dst = binary.BigEndian.AppendUint32(dst, uint32(0xFFFFFFFF)) // -1
	case bytes.Equal(e.Prior, e.Old):
		dst = binary.BigEndian.AppendUint32(dst, uint32(0xFFFFFFFE)) // -2
	default:
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Old)))
		dst = append(dst, e.Old...)
	}
	dst = appendNullable(dst, e.New)
	return binary.BigEndian.AppendUint64(dst, uint64(e.Time))
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.BigEndian.AppendUint32(dst, uint32(0xFFFFFFFF))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

var errShortBuffer = errors.New("truncated")

// bufferReader reads the fields of an encoded buffer entry.
type bufferReader struct {
	b   []byte
	err error
}

func (r *bufferReader) int64() int64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShortBuffer
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *bufferReader) int32() int32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShortBuffer
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

// bytes reads n bytes (n < 0: a null).
func (r *bufferReader) bytes(n int32) []byte {
	if r.err != nil || n < 0 {
		if n < -1 && r.err == nil {
			r.err = fmt.Errorf("bad length %d", n)
		}
		return nil
	}
	if int64(len(r.b)) < int64(n) {
		r.err = errShortBuffer
		return nil
	}
	v := bytes.Clone(r.b[:n])
	if v == nil {
		v = []byte{}
	}
	r.b = r.b[n:]
	return v
}

// DecodeBufferEntry decodes the changelog value of a suppression buffer's
// key (AppendEncoded's format; Kafka Streams' version 3). The entry owns
// copies of the bytes.
func DecodeBufferEntry(key, value []byte) (*bufferEntry, error) {
	r := &bufferReader{b: value}
	e := &bufferEntry{Key: bytes.Clone(key)}
	c := &e.Context
	c.Timestamp = r.int64()
	c.Offset = r.int64()
	topic := r.bytes(r.int32())
	if topic == nil && r.err == nil {
		r.err = errors.New("null topic")
	}
	if !utf8.Valid(topic) && r.err == nil {
		r.err = errors.New("topic is not UTF-8")
	}
	c.Topic = string(topic)
	c.Partition = r.int32()
	n := r.int32()
	if n < -1 || n > bufferMaxHeaderSize || (r.err == nil && int64(n) > int64(len(r.b))/8) {
		if r.err == nil {
			r.err = fmt.Errorf("bad header count %d", n)
		}
	}
	for i := int32(0); i < n && r.err == nil; i++ {
		hk := r.bytes(r.int32())
		if hk == nil && r.err == nil {
			r.err = errors.New("null header key")
		}
		c.Headers = append(c.Headers, operators.Header{Key: string(hk), Value: r.bytes(r.int32())})
	}
	e.Prior = r.bytes(r.int32())
	if n := r.int32(); n == bufferOldIsPrior {
		e.Old = e.Prior
	} else {
		e.Old = r.bytes(n)
	}
	e.New = r.bytes(r.int32())
	e.Time = r.int64()
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("corrupt suppression buffer entry of %d bytes: %w", len(value), r.err)
	}
	return e, nil
}

// bufferQueue is a min-heap of entries by (buffer time, key), the order of
// Kafka Streams' BufferKey (keys compared as unsigned bytes).
type bufferQueue []*bufferEntry

func (q bufferQueue) Len() int { return len(q) }
func (q bufferQueue) Less(i, j int) bool {
	if q[i].Time != q[j].Time {
		return q[i].Time < q[j].Time
	}
	return bytes.Compare(q[i].Key, q[j].Key) < 0
}
func (q bufferQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].pos, q[j].pos = i, j
}
func (q *bufferQueue) Push(x any) {
	e := x.(*bufferEntry)
	e.pos = len(*q)
	*q = append(*q, e)
}
func (q *bufferQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}
