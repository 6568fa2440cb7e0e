package nodes

import (
	"bytes"
	"fmt"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// Aggregate folds the records of each key into an aggregate kept in the
// timestamped key-value store named store, and forwards every update as a
// Change of the key's aggregate. The first record of a key starts from
// init(). Records with a null key or value are dropped and counted, as in
// Kafka Streams. The update's timestamp is the largest of the key's input
// timestamps.
func Aggregate[K, V, A any](ctx Context, node, store string, keys serde.Serde[K], aggs serde.Serde[A],
	init func() A, add func(K, V, A) A, next Node[K, operators.Change[A]]) (Node[K, V], error) {
	first := func(k K, v V) A { return add(k, v, init()) }
	return newAggregate(ctx, node, store, keys, aggs, first, add, next)
}

// Reduce combines the values of each key with reduce, the first value of a
// key being its aggregate; otherwise as Aggregate.
func Reduce[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V],
	reduce func(V, V) V, next Node[K, operators.Change[V]]) (Node[K, V], error) {
	first := func(_ K, v V) V { return v }
	add := func(_ K, v, agg V) V { return reduce(agg, v) }
	return newAggregate(ctx, node, store, keys, values, first, add, next)
}

func newAggregate[K, V, A any](ctx Context, node, store string, keys serde.Serde[K], aggs serde.Serde[A],
	first func(K, V) A, add func(K, V, A) A, next Node[K, operators.Change[A]]) (Node[K, V], error) {
	s, err := openTimestamped(ctx, store, keys, aggs)
	if err != nil {
		return nil, err
	}
	p := &aggregate[K, V, A]{ctx: ctx, node: node, store: s, first: first, add: add, next: next}
	p.cached = s.forwardOnFlush(node, next)
	return p, nil
}

// aggregate is Aggregate and Reduce: first makes the aggregate of a key's
// first record, add folds in the next ones.
type aggregate[K, V, A any] struct {
	ctx   Context
	node  string
	store *timestamped[K, A]
	first func(K, V) A
	add   func(K, V, A) A
	next  Node[K, operators.Change[A]]
	// cached: the store's record cache forwards the updates when it
	// flushes them.
	cached bool
}

func (p *aggregate[K, V, A]) Process(r operators.Record[K, V]) error {
	if r.NullKey || r.Tombstone {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
		return nil
	}
	kb, err := p.store.key(r.Key)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	old, ts, ok, err := p.store.get(kb)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	var agg A
	if ok {
		agg, ts = p.add(r.Key, r.Value, old), max(ts, r.Timestamp)
	} else {
		agg, ts = p.first(r.Key, r.Value), r.Timestamp
	}
	p.store.setContext(ts, r.Headers)
	fwd, latest, err := p.store.putAggregate(kb, agg, ts)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if p.cached || !fwd {
		return nil
	}
	return p.next.Process(operators.Record[K, operators.Change[A]]{
		Key: r.Key, Value: operators.Change[A]{New: agg, HasNew: true, Old: old, HasOld: ok, NotLatest: !latest}, Timestamp: ts, Headers: r.Headers,
	})
}

func nullReason(nullKey bool) string {
	if nullKey {
		return "null-key"
	}
	return "null-value"
}

// TableSource turns the records of a topic into table updates: each record
// is the new value of its key, a tombstone deletes the key. The table is
// kept in the timestamped store named store, which gives each update its old
// value. A record with a null key is dropped and counted; a tombstone for an
// absent key changes nothing and is not forwarded.
func TableSource[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V], next Node[K, operators.Change[V]]) (Node[K, V], error) {
	s, err := openTimestamped(ctx, store, keys, values)
	if err != nil {
		return nil, err
	}
	p := &tableSource[K, V]{ctx: ctx, node: node, store: s, next: next}
	p.cached = s.forwardOnFlush(node, next)
	return p, nil
}

type tableSource[K, V any] struct {
	ctx    Context
	node   string
	store  *timestamped[K, V]
	next   Node[K, operators.Change[V]]
	cached bool
}

func (p *tableSource[K, V]) Process(r operators.Record[K, V]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	kb, err := p.store.key(r.Key)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	old, _, ok, err := p.store.get(kb)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	ch := operators.Change[V]{Old: old, HasOld: ok}
	if p.store.versioned != nil {
		// Kafka Streams' KTableSource over a versioned store: every record
		// is a version, a tombstone too (even of a key with no row); one
		// the store refuses as too old is not forwarded; one older than
		// the key's latest is forwarded as not the latest, with the latest
		// as its old value. The store is not cached.
		put, latest, err := p.store.putVersion(kb, r.Value, !r.Tombstone, r.Timestamp)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if !put {
			return nil
		}
		if !r.Tombstone {
			ch.New, ch.HasNew = r.Value, true
		}
		ch.NotLatest = !latest
		return p.next.Process(operators.Record[K, operators.Change[V]]{Key: r.Key, Value: ch, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	p.store.setContext(r.Timestamp, r.Headers)
	if r.Tombstone {
		if !ok {
			return nil
		}
		err = p.store.delete(kb)
	} else {
		ch.New, ch.HasNew = r.Value, true
		err = p.store.put(kb, r.Value, r.Timestamp)
	}
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if p.cached {
		return nil
	}
	return p.next.Process(operators.Record[K, operators.Change[V]]{Key: r.Key, Value: ch, Timestamp: r.Timestamp, Headers: r.Headers})
}

// tableStore writes a table operator's results to its materialized store,
// when it has one.
type tableStore[K, V any] struct {
	node  string
	store *timestamped[K, V]
	// cached: the store's record cache forwards the updates when it
	// flushes them, so the operator must not.
	cached bool
}

func (m tableStore[K, V]) apply(r operators.Record[K, operators.Change[V]]) error {
	if m.store == nil {
		return nil
	}
	m.store.setContext(r.Timestamp, r.Headers)
	kb, err := m.store.key(r.Key)
	if err == nil && m.store.versioned != nil {
		err = fmt.Errorf("sluice: store %s is versioned: this operation cannot keep its result in it", m.store.name)
	}
	if err == nil {
		if r.Value.HasNew {
			err = m.store.put(kb, r.Value.New, r.Timestamp)
		} else {
			err = m.store.delete(kb)
		}
	}
	if err != nil {
		return &operators.NodeError{Node: m.node, Err: err}
	}
	return nil
}

// applyVersion writes the update r to the operator's store when it is
// versioned, as Kafka Streams' KTableFilter and KTableMapValues do with
// versioned semantics: it returns the update to forward (NotLatest set
// from the store's answer), or forward false when the store refused it as
// older than its history retention allows.
func (m tableStore[K, V]) applyVersion(r operators.Record[K, operators.Change[V]]) (_ operators.Change[V], forward bool, err error) {
	kb, err := m.store.key(r.Key)
	if err != nil {
		return r.Value, false, &operators.NodeError{Node: m.node, Err: err}
	}
	put, latest, err := m.store.putVersion(kb, r.Value.New, r.Value.HasNew, r.Timestamp)
	if err != nil {
		return r.Value, false, &operators.NodeError{Node: m.node, Err: err}
	}
	c := r.Value
	c.NotLatest = !latest
	return c, put, nil
}

// stored returns the row of k the operator's store holds: Kafka Streams'
// old value of a materialized KTableFilter or KTableMapValues
// (computeOldValue reads the store, not the parent's old value).
func (m tableStore[K, V]) stored(k K) (v V, ok bool, err error) {
	kb, err := m.store.key(k)
	if err == nil {
		v, _, ok, err = m.store.get(kb)
	}
	if err != nil {
		return v, false, &operators.NodeError{Node: m.node, Err: err}
	}
	return v, ok, nil
}

// versioned reports whether the operator keeps its result in a versioned
// store.
func (m tableStore[K, V]) versioned() bool { return m.store != nil && m.store.versioned != nil }

func openTableStore[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V], next Node[K, operators.Change[V]]) (tableStore[K, V], error) {
	m := tableStore[K, V]{node: node}
	if store == "" {
		return m, nil
	}
	s, err := openTimestamped(ctx, store, keys, values)
	if err != nil {
		return m, err
	}
	m.store = s
	m.cached = s.forwardOnFlush(node, next)
	return m, nil
}

// TableFilter keeps the rows of a table for which pred returns keep. A row
// whose new value fails the predicate is forwarded as a delete; an update
// that is invisible both before and after is not forwarded. With a store
// name the result is materialized there.
func TableFilter[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V],
	pred func(K, V) bool, keep bool, next Node[K, operators.Change[V]]) (Node[K, operators.Change[V]], error) {
	m, err := openTableStore(ctx, node, store, keys, values, next)
	if err != nil {
		return nil, err
	}
	return &tableFilter[K, V]{pred: pred, keep: keep, store: m, next: next}, nil
}

// TableFilterVersioned is TableFilter on a versioned table (Kafka
// Streams' KTableFilter with useVersionedSemantics): an update whose old
// and new values both fail the predicate is forwarded too (as a delete of
// a row that was not there), since a versioned result keeps the delete
// as a version; NotLatest passes through, or, with a store (versioned or
// not), comes from it.
func TableFilterVersioned[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V],
	pred func(K, V) bool, keep bool, next Node[K, operators.Change[V]]) (Node[K, operators.Change[V]], error) {
	m, err := openTableStore(ctx, node, store, keys, values, next)
	if err != nil {
		return nil, err
	}
	return &tableFilter[K, V]{pred: pred, keep: keep, store: m, next: next, versioned: true}, nil
}

type tableFilter[K, V any] struct {
	pred      func(K, V) bool
	keep      bool
	store     tableStore[K, V]
	next      Node[K, operators.Change[V]]
	versioned bool
}

func (p *tableFilter[K, V]) Process(r operators.Record[K, operators.Change[V]]) error {
	c := r.Value
	out := operators.Change[V]{NotLatest: c.NotLatest}
	if c.HasNew && p.pred(r.Key, c.New) == p.keep {
		out.New, out.HasNew = c.New, true
	}
	if c.HasOld && p.pred(r.Key, c.Old) == p.keep {
		out.Old, out.HasOld = c.Old, true
	}
	if !out.HasNew && !out.HasOld && !p.versioned {
		return nil
	}
	if p.versioned && p.store.store != nil {
		// Below a versioned table the parent's old value may not be what
		// this store holds (an out-of-order update the parent kept in its
		// history may be this store's latest): the old value is the
		// store's, as Kafka Streams computes it.
		var err error
		if out.Old, out.HasOld, err = p.store.stored(r.Key); err != nil {
			return err
		}
	}
	r.Value = out
	if p.store.versioned() {
		var fwd bool
		var err error
		if r.Value, fwd, err = p.store.applyVersion(r); err != nil || !fwd {
			return err
		}
		return p.next.Process(r)
	}
	if p.store.store != nil {
		// A store that is not versioned takes every update as the latest
		// (Kafka Streams: PUT_RETURN_CODE_IS_LATEST of a timestamped store).
		r.Value.NotLatest = false
	}
	if err := p.store.apply(r); err != nil || p.store.cached {
		return err
	}
	return p.next.Process(r)
}

// TableMapValues maps the new and old values of every table update. With a
// store name the result is materialized there.
func TableMapValues[K, V, V2 any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V2],
	f func(V) V2, next Node[K, operators.Change[V2]]) (Node[K, operators.Change[V]], error) {
	m, err := openTableStore(ctx, node, store, keys, values, next)
	if err != nil {
		return nil, err
	}
	return &tableMapValues[K, V, V2]{f: f, store: m, next: next}, nil
}

// TableMapValuesVersioned is TableMapValues below a versioned table: with
// a store, the old value forwarded is the one the store holds (as Kafka
// Streams' KTableMapValues.computeOldValue reads it), which an out-of-order
// update may have made differ from the parent's.
func TableMapValuesVersioned[K, V, V2 any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V2],
	f func(V) V2, next Node[K, operators.Change[V2]]) (Node[K, operators.Change[V]], error) {
	m, err := openTableStore(ctx, node, store, keys, values, next)
	if err != nil {
		return nil, err
	}
	return &tableMapValues[K, V, V2]{f: f, store: m, next: next, versioned: true}, nil
}

type tableMapValues[K, V, V2 any] struct {
	f         func(V) V2
	store     tableStore[K, V2]
	next      Node[K, operators.Change[V2]]
	versioned bool // below a versioned table
}

func (p *tableMapValues[K, V, V2]) Process(r operators.Record[K, operators.Change[V]]) error {
	c := r.Value
	out := operators.Change[V2]{HasNew: c.HasNew, HasOld: c.HasOld, NotLatest: c.NotLatest}
	if c.HasNew {
		out.New = p.f(c.New)
	}
	if p.versioned && p.store.store != nil {
		var err error
		if out.Old, out.HasOld, err = p.store.stored(r.Key); err != nil {
			return err
		}
	} else if c.HasOld {
		out.Old = p.f(c.Old)
	}
	r2 := operators.Record[K, operators.Change[V2]]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers}
	if p.store.versioned() {
		var fwd bool
		var err error
		if r2.Value, fwd, err = p.store.applyVersion(r2); err != nil || !fwd {
			return err
		}
		return p.next.Process(r2)
	}
	if p.store.store != nil {
		r2.Value.NotLatest = false // as in tableFilter
	}
	if err := p.store.apply(r2); err != nil || p.store.cached {
		return err
	}
	return p.next.Process(r2)
}

// ToStream turns table updates into a stream of their new values; a delete
// becomes a tombstone.
func ToStream[K, V any](next Node[K, V]) Node[K, operators.Change[V]] {
	return &toStream[K, V]{next: next}
}

type toStream[K, V any] struct{ next Node[K, V] }

func (p *toStream[K, V]) Process(r operators.Record[K, operators.Change[V]]) error {
	return p.next.Process(operators.Record[K, V]{
		Key: r.Key, Value: r.Value.New, Tombstone: !r.Value.HasNew, Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

// TableGroupBy re-keys table updates for a table aggregation (Kafka
// Streams' KTableRepartitionMap): the old row is sent as a retraction under
// its old group key and the new row as an addition under its new one; when
// both map to the same group key they travel as one update, so the
// aggregation subtracts and adds in one step. keys compares group keys by
// their encoding. sel is called only for values that are present (the new
// value of an update that is not a delete, the old value when there was
// one); a row for which sel returns an absent key is skipped: that side of
// the update is not forwarded, as Kafka Streams skips a null key.
func TableGroupBy[K, V, K2, V2 any](node string, sel func(K, V) (operators.Maybe[K2], V2), keys serde.Serde[K2], next Node[K2, operators.Change[V2]]) Node[K, operators.Change[V]] {
	return &tableGroupBy[K, V, K2, V2]{node: node, sel: sel, keys: keys, next: next}
}

type tableGroupBy[K, V, K2, V2 any] struct {
	node       string
	sel        func(K, V) (operators.Maybe[K2], V2)
	keys       serde.Serde[K2]
	next       Node[K2, operators.Change[V2]]
	kbuf, obuf []byte
}

func (p *tableGroupBy[K, V, K2, V2]) Process(r operators.Record[K, operators.Change[V]]) error {
	c := r.Value
	if c.NotLatest {
		// An out-of-order update of a versioned table: the aggregation
		// keeps the latest rows only (Kafka Streams' KTableRepartitionMap
		// with versioned semantics).
		return nil
	}
	var newMK, oldMK operators.Maybe[K2]
	var newV, oldV V2
	if c.HasNew {
		newMK, newV = p.sel(r.Key, c.New)
	}
	if c.HasOld {
		oldMK, oldV = p.sel(r.Key, c.Old)
	}
	newK, newOK := newMK.Get()
	oldK, oldOK := oldMK.Get()
	if newOK && oldOK {
		var err error
		if p.kbuf, err = p.keys.Encode(p.kbuf[:0], newK); err != nil {
			return &operators.SerializationError{Node: p.node, Part: "key", Err: err}
		}
		if p.obuf, err = p.keys.Encode(p.obuf[:0], oldK); err != nil {
			return &operators.SerializationError{Node: p.node, Part: "key", Err: err}
		}
		if bytes.Equal(p.kbuf, p.obuf) {
			return p.next.Process(operators.Record[K2, operators.Change[V2]]{Key: newK, Value: operators.Change[V2]{New: newV, HasNew: true, Old: oldV, HasOld: true},
				Timestamp: r.Timestamp, Headers: r.Headers})
		}
	}
	if oldOK {
		if err := p.next.Process(operators.Record[K2, operators.Change[V2]]{Key: oldK, Value: operators.Change[V2]{Old: oldV, HasOld: true},
			Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
			return err
		}
	}
	if newOK {
		return p.next.Process(operators.Record[K2, operators.Change[V2]]{Key: newK, Value: operators.Change[V2]{New: newV, HasNew: true},
			Timestamp: r.Timestamp, Headers: r.Headers})
	}
	return nil
}

// TableAggregate maintains an aggregate per group key from table updates:
// the old value of an update is removed with sub, the new one added with
// add (Kafka Streams' KTableAggregate). The update's timestamp is the
// largest of the record's and the aggregate's.
func TableAggregate[K, V, A any](ctx Context, node, store string, keys serde.Serde[K], aggs serde.Serde[A],
	init func() A, add, sub func(K, V, A) A, next Node[K, operators.Change[A]]) (Node[K, operators.Change[V]], error) {
	first := func(k K, v V) A { return add(k, v, init()) }
	return newTableAggregate(ctx, node, store, keys, aggs, first, add, sub, next)
}

// TableReduce is TableAggregate with the first value of a group as its
// aggregate (Kafka Streams' KTableReduce).
func TableReduce[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V],
	add, sub func(V, V) V, next Node[K, operators.Change[V]]) (Node[K, operators.Change[V]], error) {
	first := func(_ K, v V) V { return v }
	return newTableAggregate(ctx, node, store, keys, values, first,
		func(_ K, v, agg V) V { return add(agg, v) }, func(_ K, v, agg V) V { return sub(agg, v) }, next)
}

func newTableAggregate[K, V, A any](ctx Context, node, store string, keys serde.Serde[K], aggs serde.Serde[A],
	first func(K, V) A, add, sub func(K, V, A) A, next Node[K, operators.Change[A]]) (Node[K, operators.Change[V]], error) {
	s, err := openTimestamped(ctx, store, keys, aggs)
	if err != nil {
		return nil, err
	}
	p := &tableAggregate[K, V, A]{ctx: ctx, node: node, store: s, first: first, add: add, sub: sub, next: next}
	p.cached = s.forwardOnFlush(node, next)
	return p, nil
}

// tableAggregate is TableAggregate and TableReduce: first makes the
// aggregate of a group with none, add and sub fold values in and out.
type tableAggregate[K, V, A any] struct {
	ctx      Context
	node     string
	store    *timestamped[K, A]
	first    func(K, V) A
	add, sub func(K, V, A) A
	next     Node[K, operators.Change[A]]
	cached   bool
}

func (p *tableAggregate[K, V, A]) Process(r operators.Record[K, operators.Change[V]]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	kb, err := p.store.key(r.Key)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	old, oldTs, ok, err := p.store.get(kb)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	c := r.Value
	agg, has := old, ok
	ts := r.Timestamp
	if c.HasOld && ok {
		agg = p.sub(r.Key, c.Old, agg)
		ts = max(ts, oldTs)
	}
	if c.HasNew {
		if has {
			agg = p.add(r.Key, c.New, agg)
		} else {
			agg, has = p.first(r.Key, c.New), true
		}
		if ok {
			ts = max(ts, oldTs)
		}
	}
	if !has {
		return nil
	}
	p.store.setContext(ts, r.Headers)
	fwd, latest, err := p.store.putAggregate(kb, agg, ts)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if p.cached || !fwd {
		return nil
	}
	return p.next.Process(operators.Record[K, operators.Change[A]]{Key: r.Key, Value: operators.Change[A]{New: agg, HasNew: true, Old: old, HasOld: ok, NotLatest: !latest},
		Timestamp: ts, Headers: r.Headers})
}
