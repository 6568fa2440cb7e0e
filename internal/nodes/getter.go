package nodes

import (
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
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
// writes the cache has not flushed yet.
func StoreGetter[K, V any](ctx Context, store string, keys serde.Serde[K], values serde.Serde[V]) (ValueGetter[K, V], error) {
	s, err := openTimestamped(ctx, store, keys, values)
	if err != nil {
		return nil, err
	}
	return storeGetter[K, V]{s}, nil
}

type storeGetter[K, V any] struct{ s *timestamped[K, V] }

func (g storeGetter[K, V]) Get(k K) (v V, ts int64, ok bool, err error) {
	kb, err := g.s.key(k)
	if err != nil {
		return v, 0, false, err
	}
	return g.s.get(kb)
}

// FilterGetter reads the rows of parent for which pred returns keep: the
// getter of a table filter that is not materialized (Kafka Streams'
// KTableFilterValueGetter).
func FilterGetter[K, V any](parent ValueGetter[K, V], pred func(K, V) bool, keep bool) ValueGetter[K, V] {
	return filterGetter[K, V]{parent: parent, pred: pred, keep: keep}
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
	return mapValuesGetter[K, V, V2]{parent: parent, f: f}
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
