package nodes

import (
	"fmt"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// ValueGetter reads the current row of a key of a table: its value and the
// timestamp of its last update, ok false when the table has no row for the
// key (Kafka Streams' KTableValueGetter). A table kept in a store is read
// from the store; a table that is not (a Filter or MapValues without
// Materialized, a join result) is read through a getter computed on the
// fly from the getter of its parent, down to the nearest table that is kept
// in a store. A getter is opened for one task, with the Context of the node
// that reads it, which must be connected to the stores the getter reads.
// Like a node it is used on the task's goroutine only.
type ValueGetter[K, V any] interface {
	Get(k K) (v V, ts int64, ok bool, err error)
}

// StoreGetter reads the rows of a table kept in the timestamped key-value
// store named store (Kafka Streams' KTableMaterializedValueGetterSupplier).
// It reads through the store's record cache, if it has one, so it sees the
// writes the cache has not flushed yet. A reader whose answers are
// retracted through the table's updates (a foreign-key join answering a
// subscription, a table-table join) reads with state.CachingStore.
// GetShared: a row it read there that is then deleted before the flush is
// forwarded as a delete even if the store below never held it, so that
// the join's answer is retracted. A reader opened with PlainReads (a
// stream-table join, whose output is a stream of events) reads as Kafka
// Streams does and leaves the flush unchanged.
func StoreGetter[K, V any](ctx Context, store string, keys serde.Serde[K], values serde.Serde[V]) (ValueGetter[K, V], error) {
	s, err := openTimestamped(ctx, store, keys, values)
	if err != nil {
		return nil, err
	}
	_, plain := ctx.(plainReadsContext)
	if s.versioned != nil {
		return versionedGetter[K, V]{storeGetter[K, V]{s, plain}}, nil
	}
	return storeGetter[K, V]{s, plain}, nil
}

// PlainReads returns ctx for opening the getter of a reader that never
// retracts what it emitted with a row (a stream-table join): its
// StoreGetters read a record cache with Get, not GetShared, so that its
// reads never make the table forward a delete of a row the store below
// never held (Kafka Streams' CachingKeyValueStore drops it).
func PlainReads(ctx Context) Context { return plainReadsContext{ctx} }

type plainReadsContext struct{ Context }

type storeGetter[K, V any] struct {
	s     *timestamped[K, V]
	plain bool // opened with PlainReads
}

// AsOfGetter is the ValueGetter of a versioned table (Kafka Streams: a
// KTableValueGetter whose isVersioned() is true): besides the latest row
// it reads a key's row as of a past time. GetAsOf returns the version
// valid at asOf with its timestamp, ok false if there is none (or it is a
// delete). Getters of versioned tables implement it; a reader checks with
// a type assertion.
type AsOfGetter[K, V any] interface {
	ValueGetter[K, V]
	GetAsOf(k K, asOf int64) (v V, ts int64, ok bool, err error)
}

// versionedGetter reads a table kept in a versioned store.
type versionedGetter[K, V any] struct{ storeGetter[K, V] }

func (g versionedGetter[K, V]) GetAsOf(k K, asOf int64) (v V, ts int64, ok bool, err error) {
	kb, err := g.s.key(k)
	if err != nil {
		return v, 0, false, err
	}
	v, ts, _, ok, err = g.s.getAsOf(kb, asOf)
	return v, ts, ok, err
}

func (g storeGetter[K, V]) Get(k K) (v V, ts int64, ok bool, err error) {
	kb, err := g.s.key(k)
	if err != nil {
		return v, 0, false, err
	}
	if g.plain {
		return g.s.get(kb)
	}
	return g.s.getShared(kb)
}

// FilterGetter reads the rows of parent for which pred returns keep: the
// getter of a table filter that is not materialized (Kafka Streams'
// KTableFilterValueGetter).
func FilterGetter[K, V any](parent ValueGetter[K, V], pred func(K, V) bool, keep bool) ValueGetter[K, V] {
	g := filterGetter[K, V]{parent: parent, pred: pred, keep: keep}
	if p, ok := parent.(AsOfGetter[K, V]); ok {
		return filterAsOfGetter[K, V]{g, p}
	}
	return g
}

// filterAsOfGetter is the FilterGetter of a versioned table: as Kafka
// Streams' KTableFilterValueGetter, it is versioned when its parent is.
type filterAsOfGetter[K, V any] struct {
	filterGetter[K, V]
	asOf AsOfGetter[K, V]
}

func (g filterAsOfGetter[K, V]) GetAsOf(k K, asOf int64) (v V, ts int64, ok bool, err error) {
	v, ts, ok, err = g.asOf.GetAsOf(k, asOf)
	if err != nil || !ok || g.pred(k, v) != g.keep {
		var zero V
		return zero, 0, false, err
	}
	return v, ts, true, nil
}

type filterGetter[K, V any] struct {
	parent ValueGetter[K, V]
	pred   func(K, V) bool
	keep   bool
}

func (g filterGetter[K, V]) Get(k K) (v V, ts int64, ok bool, err error) {
	v, ts, ok, err = g.parent.Get(k)
	if err != nil || !ok || g.pred(k, v) != g.keep {
		var zero V
		return zero, 0, false, err
	}
	return v, ts, true, nil
}

// MapValuesGetter reads the rows of parent mapped by f, with their
// timestamps: the getter of a table mapValues that is not materialized
// (Kafka Streams' KTableMapValuesValueGetter).
func MapValuesGetter[K, V, V2 any](parent ValueGetter[K, V], f func(V) V2) ValueGetter[K, V2] {
	g := mapValuesGetter[K, V, V2]{parent: parent, f: f}
	if p, ok := parent.(AsOfGetter[K, V]); ok {
		return mapValuesAsOfGetter[K, V, V2]{g, p}
	}
	return g
}

// mapValuesAsOfGetter is the MapValuesGetter of a versioned table.
type mapValuesAsOfGetter[K, V, V2 any] struct {
	mapValuesGetter[K, V, V2]
	asOf AsOfGetter[K, V]
}

func (g mapValuesAsOfGetter[K, V, V2]) GetAsOf(k K, asOf int64) (v V2, ts int64, ok bool, err error) {
	pv, ts, ok, err := g.asOf.GetAsOf(k, asOf)
	if err != nil || !ok {
		return v, 0, false, err
	}
	return g.f(pv), ts, true, nil
}

type mapValuesGetter[K, V, V2 any] struct {
	parent ValueGetter[K, V]
	f      func(V) V2
}

func (g mapValuesGetter[K, V, V2]) Get(k K) (v V2, ts int64, ok bool, err error) {
	pv, ts, ok, err := g.parent.Get(k)
	if err != nil || !ok {
		return v, 0, false, err
	}
	return g.f(pv), ts, true, nil
}

// maybeRow returns a getter's row as a Maybe.
func maybeRow[K, V any](g ValueGetter[K, V], k K) (operators.Maybe[V], int64, error) {
	v, ts, ok, err := g.Get(k)
	if err != nil || !ok {
		return operators.Maybe[V]{}, 0, err
	}
	return operators.Some(v), ts, nil
}

// WindowStoreGetter reads the rows of a time- or sliding-window
// aggregation's table from its window store of timestamped aggregates: the
// row of a windowed key is its window's aggregate, with the aggregate's
// timestamp (Kafka Streams' KStreamWindowAggregateValueGetter). keys is the
// serde of the keys without their windows.
func WindowStoreGetter[K, A any](ctx Context, store string, keys serde.Serde[K], aggs serde.Serde[A]) (ValueGetter[window.Windowed[K], A], error) {
	v, err := openWindowView(ctx, store, keys, aggs)
	if err != nil {
		return nil, err
	}
	return &windowGetter[K, A]{v: v}, nil
}

type windowGetter[K, A any] struct {
	v    *windowView[K, A]
	kbuf []byte
}

func (g *windowGetter[K, A]) Get(k window.Windowed[K]) (agg A, ts int64, ok bool, err error) {
	if g.kbuf, err = g.v.keys.Encode(g.kbuf[:0], k.Key); err != nil {
		return agg, 0, false, fmt.Errorf("sluice: store %s: cannot serialize key: %w", g.v.name, err)
	}
	return g.v.get(g.kbuf, k.Window.Start)
}

// SessionStoreGetter reads the rows of a session aggregation's table from
// its session store: the row of a windowed key is the aggregate of exactly
// that session, stamped with the session's end, as Kafka Streams'
// KStreamSessionWindowAggregateValueGetter does (session stores keep no
// timestamp). keys is the serde of the keys without their windows.
func SessionStoreGetter[K, A any](ctx Context, store string, keys serde.Serde[K], aggs serde.Serde[A]) (ValueGetter[window.Windowed[K], A], error) {
	s, err := ctx.Store(store)
	if err != nil {
		return nil, err
	}
	ss, ok := s.(*state.SessionStore)
	if !ok {
		return nil, fmt.Errorf("sluice: store %s is a %T, not a session store", store, s)
	}
	return &sessionGetter[K, A]{name: store, s: ss, keys: keys, aggs: aggs}, nil
}

type sessionGetter[K, A any] struct {
	name string
	s    *state.SessionStore
	keys serde.Serde[K]
	aggs serde.Serde[A]
	kbuf []byte
}

func (g *sessionGetter[K, A]) Get(k window.Windowed[K]) (agg A, ts int64, ok bool, err error) {
	if g.kbuf, err = g.keys.Encode(g.kbuf[:0], k.Key); err != nil {
		return agg, 0, false, fmt.Errorf("sluice: store %s: cannot serialize key: %w", g.name, err)
	}
	b, ok, err := g.s.FetchSession(g.kbuf, k.Window.Start, k.Window.End)
	if err != nil || !ok {
		return agg, 0, false, err
	}
	if agg, err = g.aggs.Decode(b); err != nil {
		return agg, 0, false, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", g.name, err)
	}
	return agg, k.Window.End, true, nil
}
