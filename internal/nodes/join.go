package nodes

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// StreamTableJoin joins each stream record with the value of its key in a
// table, read through the getter table opens: the table's store, or a
// getter chained to the store of the nearest materialized table above it
// (Kafka Streams' KStreamKTableJoinProcessor). A versioned table (its
// getter is an AsOfGetter) is read as of the stream record's timestamp,
// any other table's latest value.
// Table updates are not seen here: only stream records emit, with the
// stream record's timestamp and headers. A record with a tombstone value is
// dropped and counted ("null-value", or "null-key" when the key is null
// too); a record with a null key is dropped and counted ("null-key") by
// the inner join. The left join (left true)
// forwards a null-key record with a value, joined with an absent table
// value and its key still null, as Kafka Streams 4 does; and a record whose
// key has no row is joined with an absent table value. join gets the key as
// a Maybe only so that the left join can pass a null key.
func StreamTableJoin[K, V, VT, VR any](ctx Context, node string, table func(Context) (ValueGetter[K, VT], error),
	left bool, join func(k operators.Maybe[K], v V, t operators.Maybe[VT]) VR, next Node[K, VR]) (Node[K, V], error) {
	g, err := table(ctx)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	p := &streamTableJoin[K, V, VT, VR]{ctx: ctx, node: node, table: g, left: left, join: join, next: next}
	p.asOf, _ = g.(AsOfGetter[K, VT])
	return p, nil
}

// JoinGrace configures the grace buffer of StreamTableJoinWithGrace.
type JoinGrace[K, V any] struct {
	// Store is the buffer's key-value store ("<join>-Buffer").
	Store string
	// Grace is how long, in ms of the buffer's stream time, a stream
	// record waits for the table's updates of its time.
	Grace int64
	// Keys and Values encode the buffered records' keys and values.
	Keys   serde.Serde[K]
	Values serde.Serde[V]
}

// StreamTableJoinWithGrace is StreamTableJoin with a grace period on a
// versioned table (Kafka Streams: Joined.withGracePeriod): each stream
// record waits in the buffer until the buffer's stream time (the largest
// timestamp of a record buffered) minus the grace reaches its timestamp,
// and is then joined with the table as of that timestamp, with its own
// timestamp and headers; the records a new record releases are joined in
// (timestamp, key, seq) order. A record already older than stream time
// minus the grace is joined at once. Drops are StreamTableJoin's; a left
// join's null-key record, which has no key to buffer by, is joined at once
// (Kafka Streams 4.3.1 fails on it with a NullPointerException).
func StreamTableJoinWithGrace[K, V, VT, VR any](ctx Context, node string, table func(Context) (ValueGetter[K, VT], error),
	left bool, join func(k operators.Maybe[K], v V, t operators.Maybe[VT]) VR, buffer JoinGrace[K, V], next Node[K, VR]) (Node[K, V], error) {
	n, err := StreamTableJoin(ctx, node, table, left, join, next)
	if err != nil {
		return nil, err
	}
	p := n.(*streamTableJoin[K, V, VT, VR])
	if p.asOf == nil {
		return nil, &operators.NodeError{Node: node, Err: fmt.Errorf("the table must be versioned to use a grace period in a stream-table join")}
	}
	if p.buf, err = openJoinBuffer(ctx, buffer.Store, buffer.Grace); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	p.keys, p.values = buffer.Keys, buffer.Values
	return p, nil
}

type streamTableJoin[K, V, VT, VR any] struct {
	ctx    Context
	node   string
	table  ValueGetter[K, VT]
	asOf   AsOfGetter[K, VT] // table, if it is versioned
	left   bool
	join   func(operators.Maybe[K], V, operators.Maybe[VT]) VR
	next   Node[K, VR]
	buf    *joinBuffer // the grace buffer, if any
	keys   serde.Serde[K]
	values serde.Serde[V]
	kbuf   []byte
	vbuf   []byte
}

func (p *streamTableJoin[K, V, VT, VR]) Process(r operators.Record[K, V]) error {
	if r.Tombstone || (r.NullKey && !p.left) {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
		return nil
	}
	if p.buf == nil || r.NullKey {
		return p.doJoin(r)
	}
	var err error
	if p.kbuf, err = p.keys.Encode(p.kbuf[:0], r.Key); err != nil {
		return &operators.SerializationError{Node: p.node, Part: "key", Err: err}
	}
	if p.vbuf, err = p.values.Encode(p.vbuf[:0], r.Value); err != nil {
		return &operators.SerializationError{Node: p.node, Part: "value", Err: err}
	}
	buffered, err := p.buf.put(p.ctx, r.Timestamp, p.kbuf, p.vbuf, r.Headers)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if !buffered {
		return p.doJoin(r)
	}
	err = p.buf.evict(func(key []byte, rec *BufferEntry) error {
		k, err := p.keys.Decode(key)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("join buffer %s: cannot deserialize key: %w", p.buf.name, err)}
		}
		v, err := p.values.Decode(rec.New)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("join buffer %s: cannot deserialize value: %w", p.buf.name, err)}
		}
		return p.doJoin(operators.Record[K, V]{Key: k, Value: v, Timestamp: rec.Context.Timestamp, Headers: rec.Context.Headers})
	})
	var ne *operators.NodeError
	if err != nil && !errors.As(err, &ne) {
		err = &operators.NodeError{Node: p.node, Err: err}
	}
	return err
}

func (p *streamTableJoin[K, V, VT, VR]) doJoin(r operators.Record[K, V]) error {
	var k operators.Maybe[K]
	var t operators.Maybe[VT]
	if !r.NullKey {
		k = operators.Some(r.Key)
		var v VT
		var ok bool
		var err error
		if p.asOf != nil {
			v, _, ok, err = p.asOf.GetAsOf(r.Key, r.Timestamp)
		} else {
			v, _, ok, err = p.table.Get(r.Key)
		}
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if ok {
			t = operators.Some(v)
		} else if !p.left {
			return nil
		}
	}
	return p.next.Process(operators.Record[K, VR]{
		Key: r.Key, NullKey: r.NullKey, Value: p.join(k, r.Value, t), Timestamp: r.Timestamp, Headers: r.Headers,
	})
}
