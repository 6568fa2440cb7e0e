package nodes

import (
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// TableJoinSide is the role of one processor of a table-table join. A join
// has two: one below each input table, each joining its table's updates
// with the current row of the other table read through a ValueGetter
// (Kafka Streams' KTableKTableJoinNode: the "this" and "other" processors,
// then a merger).
type TableJoinSide int

const (
	// InnerSide is either side of an inner join (KTableKTableInnerJoin): no
	// output while the other side has no row; an update joins with it, a
	// delete of a joined row forwards a delete.
	InnerSide TableJoinSide = iota
	// LeftSide is the left table's side of a left join
	// (KTableKTableLeftJoin): every update is joined, with an absent right
	// value when the right table has no row; a delete forwards a delete.
	LeftSide
	// RightSide is the right table's side of a left join
	// (KTableKTableRightJoin): no output while the left table has no row;
	// otherwise the left row joined with the right's new value, absent for
	// a delete (never a delete).
	RightSide
	// OuterSide is either side of an outer join (KTableKTableOuterJoin):
	// every update is joined, absent for a missing side; a delete forwards
	// a delete only when the other side has no row either.
	OuterSide
)

// TableJoin returns the processor of one side of a table-table join: it
// joins each update of its table (a Change of V) with the row of the same
// key in the other table, read through other, and forwards the result as a
// Change of VR. join gets this side's value first, whatever the side (the
// dsl passes a reversed joiner to the processor of the right table), each
// as a Maybe, absent for a missing row.
//
// As Kafka Streams' processors with old values sent, which Sluice's table
// updates always carry: the new result joins the update's new value, the
// old result its old value, each with the other side's current row; the
// side's rules (TableJoinSide) decide whether a result is present. The
// result's timestamp is the largest of the update's and the other row's,
// the update's alone when the other side has no row; a delete's own
// timestamp counts. An update with a null key is dropped and counted
// ("null-key"). A result with neither a new nor an old value is not
// forwarded.
func TableJoin[K, V, VO, VR any](ctx Context, node string, side TableJoinSide, other func(ctx Context) (ValueGetter[K, VO], error),
	join func(k K, v operators.Maybe[V], o operators.Maybe[VO]) VR, next Node[K, operators.Change[VR]]) (Node[K, operators.Change[V]], error) {
	g, err := other(ctx)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &tableJoin[K, V, VO, VR]{ctx: ctx, node: node, side: side, other: g, join: join, next: next}, nil
}

type tableJoin[K, V, VO, VR any] struct {
	ctx   Context
	node  string
	side  TableJoinSide
	other ValueGetter[K, VO]
	join  func(K, operators.Maybe[V], operators.Maybe[VO]) VR
	next  Node[K, operators.Change[VR]]
}

func (p *tableJoin[K, V, VO, VR]) Process(r operators.Record[K, operators.Change[V]]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	if r.Value.NotLatest {
		// An out-of-order update of a versioned table does not change the
		// join's result: dropped and counted (Kafka Streams'
		// KTableKTable*Join with versioned semantics, KIP-914).
		p.ctx.RecordDropped(p.node, "out-of-order")
		return nil
	}
	o, ots, err := maybeRow(p.other, r.Key)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	c := r.Value
	newV, oldV := operators.MaybeOf(c.New, c.HasNew), operators.MaybeOf(c.Old, c.HasOld)
	// hasNew, hasOld: whether the result has a new and an old value.
	var hasNew, hasOld bool
	switch p.side {
	case InnerSide:
		if !o.Present() {
			return nil
		}
		hasNew, hasOld = c.HasNew, c.HasOld
	case LeftSide:
		hasNew, hasOld = c.HasNew, c.HasOld
	case RightSide:
		if !o.Present() {
			return nil
		}
		hasNew, hasOld = true, true
	case OuterSide:
		hasNew, hasOld = c.HasNew || o.Present(), c.HasOld || o.Present()
	}
	if !hasNew && !hasOld && !o.Present() {
		return nil
	}
	// An update with neither a new nor an old value (a versioned table's
	// delete of a row it did not have, or a versioned filter's update
	// filtered out before and after) is joined with the other side's row
	// while there is one: a delete for the inner join and the left side of
	// a left join, as Kafka Streams forwards Change(null, null)
	// (KTableKTableInnerJoin, KTableKTableLeftJoin); the other row joined
	// with None for the outer join and the right side (hasNew above).
	ts := r.Timestamp
	if o.Present() {
		ts = max(ts, ots)
	}
	var out operators.Change[VR]
	if hasNew {
		out.New, out.HasNew = p.join(r.Key, newV, o), true
	}
	if hasOld {
		out.Old, out.HasOld = p.join(r.Key, oldV, o), true
	}
	return p.next.Process(operators.Record[K, operators.Change[VR]]{Key: r.Key, Value: out, Timestamp: ts, Headers: r.Headers})
}

// TableJoinGetter reads the rows of a join result that is not materialized,
// joining the rows of both inputs on the fly (the value getters of Kafka
// Streams' KTableKTable*Join). this and other open the getters of the left
// and the right table; left and outer say which sides may be absent: an
// inner join has a row only where both have one, a left join where the left
// has one, an outer join where either has one. The row's timestamp is the
// largest of the rows joined.
func TableJoinGetter[K, V, VO, VR any](this func(Context) (ValueGetter[K, V], error), other func(Context) (ValueGetter[K, VO], error),
	left, outer bool, join func(k K, v operators.Maybe[V], o operators.Maybe[VO]) VR) func(Context) (ValueGetter[K, VR], error) {
	return func(ctx Context) (ValueGetter[K, VR], error) {
		t, err := this(ctx)
		if err != nil {
			return nil, err
		}
		o, err := other(ctx)
		if err != nil {
			return nil, err
		}
		return joinGetter[K, V, VO, VR]{this: t, other: o, left: left || outer, outer: outer, join: join}, nil
	}
}

type joinGetter[K, V, VO, VR any] struct {
	this        ValueGetter[K, V]
	other       ValueGetter[K, VO]
	left, outer bool
	join        func(K, operators.Maybe[V], operators.Maybe[VO]) VR
}

func (g joinGetter[K, V, VO, VR]) Get(k K) (v VR, ts int64, ok bool, err error) {
	t, tts, err := maybeRow(g.this, k)
	if err != nil || (!t.Present() && !g.outer) {
		return v, 0, false, err
	}
	o, ots, err := maybeRow(g.other, k)
	if err != nil {
		return v, 0, false, err
	}
	switch {
	case !t.Present() && !o.Present():
		return v, 0, false, nil
	case !o.Present() && !g.left:
		return v, 0, false, nil
	}
	return g.join(k, t, o), max(tts, ots), true, nil
}

// TableJoinMerge is the node below both processors of a table-table join
// (Kafka Streams' KTableKTableJoinMerger): it forwards their results, and
// with a store name keeps the result table in that timestamped store first
// (a delete removes the key), forwarding through the store's record cache
// when it has one.
func TableJoinMerge[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V], next Node[K, operators.Change[V]]) (Node[K, operators.Change[V]], error) {
	m, err := openTableStore(ctx, node, store, keys, values, next)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &tableJoinMerge[K, V]{store: m, next: next}, nil
}

type tableJoinMerge[K, V any] struct {
	store tableStore[K, V]
	next  Node[K, operators.Change[V]]
}

func (p *tableJoinMerge[K, V]) Process(r operators.Record[K, operators.Change[V]]) error {
	if p.store.versioned() {
		// A versioned result store: forwarded only if the store took it,
		// with its answer as NotLatest (KTableKTableJoinMerger).
		var fwd bool
		var err error
		if r.Value, fwd, err = p.store.applyVersion(r); err != nil || !fwd {
			return err
		}
		return p.next.Process(r)
	}
	if err := p.store.apply(r); err != nil || p.store.cached {
		return err
	}
	return p.next.Process(r)
}
