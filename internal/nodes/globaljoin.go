package nodes

import (
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// GlobalTableJoin joins each stream record with the value, in the global
// store named store, of the key that key selects from the record (Kafka
// Streams' KStreamGlobalKTableJoin, a KStreamKTableJoinProcessor with a
// key mapper). The global store is written by the global reader, never by
// this node, and table updates never emit: only stream records do, with
// their own key, timestamp and headers.
//
// Null handling is Kafka Streams 4's: a tombstone is dropped and counted
// ("null-value"), without calling key; a record for which key selects no
// key (None) is dropped and counted ("null-key") by the inner join, and
// joined with an absent value by the left join (left true). The stream
// record's key may itself be null (key and join get it as None): unlike a
// stream-table join, that alone drops nothing, as the selector decides
// the lookup key. A key with no row in the store is dropped by the inner
// join and joined with an absent value by the left join.
func GlobalTableJoin[K, V, GK, GV, VR any](ctx Context, node, store string, gkeys serde.Serde[GK], gvalues serde.Serde[GV], left bool,
	key func(k operators.Maybe[K], v V) operators.Maybe[GK], join func(k operators.Maybe[K], v V, g operators.Maybe[GV]) VR, next Node[K, VR]) (Node[K, V], error) {
	s, err := openTimestamped(ctx, store, gkeys, gvalues)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &globalTableJoin[K, V, GK, GV, VR]{ctx: ctx, node: node, table: s, left: left, key: key, join: join, next: next}, nil
}

type globalTableJoin[K, V, GK, GV, VR any] struct {
	ctx   Context
	node  string
	table *timestamped[GK, GV]
	left  bool
	key   func(operators.Maybe[K], V) operators.Maybe[GK]
	join  func(operators.Maybe[K], V, operators.Maybe[GV]) VR
	next  Node[K, VR]
}

func (p *globalTableJoin[K, V, GK, GV, VR]) Process(r operators.Record[K, V]) error {
	if r.Tombstone {
		p.ctx.RecordDropped(p.node, "null-value")
		return nil
	}
	var k operators.Maybe[K]
	if !r.NullKey {
		k = operators.Some(r.Key)
	}
	var g operators.Maybe[GV]
	gk, ok := p.key(k, r.Value).Get()
	if !ok {
		if !p.left {
			p.ctx.RecordDropped(p.node, "null-key")
			return nil
		}
	} else {
		kb, err := p.table.key(gk)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		v, _, found, err := p.table.get(kb)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if found {
			g = operators.Some(v)
		} else if !p.left {
			return nil
		}
	}
	return p.next.Process(operators.Record[K, VR]{
		Key: r.Key, NullKey: r.NullKey, Value: p.join(k, r.Value, g), Timestamp: r.Timestamp, Headers: r.Headers,
	})
}
