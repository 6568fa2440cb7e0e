package nodes

import (
	"github.com/sluicehq/sluice/operators"
)

// StreamTableJoin joins each stream record with the current value of its
// key in a table, read through the getter table opens: the table's
// timestamped store, or a getter chained to the store of the nearest
// materialized table above it (Kafka Streams' KStreamKTableJoinProcessor,
// without a versioned table's grace).
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
	return &streamTableJoin[K, V, VT, VR]{ctx: ctx, node: node, table: g, left: left, join: join, next: next}, nil
}

type streamTableJoin[K, V, VT, VR any] struct {
	ctx   Context
	node  string
	table ValueGetter[K, VT]
	left  bool
	join  func(operators.Maybe[K], V, operators.Maybe[VT]) VR
	next  Node[K, VR]
}

func (p *streamTableJoin[K, V, VT, VR]) Process(r operators.Record[K, V]) error {
	if r.Tombstone || (r.NullKey && !p.left) {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
		return nil
	}
	var k operators.Maybe[K]
	var t operators.Maybe[VT]
	if !r.NullKey {
		k = operators.Some(r.Key)
		v, _, ok, err := p.table.Get(r.Key)
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
