package dsl

import (
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// TimeWindowedStream is a grouped stream cut into tumbling or hopping time
// windows, ready for a windowed aggregation: Kafka Streams'
// TimeWindowedKStream. Its aggregations produce a table keyed by
// window.Windowed keys whose serde writes key ‖ int64 start, as Kafka
// Streams' TimeWindowedSerializer does.
type TimeWindowedStream[K, V any] struct {
	g    Grouped[K, V]
	w    window.Time
	emit nodes.Emit
}

// WindowedBy cuts the grouped stream into time windows (window.Tumbling,
// window.Hopping). Its aggregations drop and count records with a null key
// or value, as Kafka Streams' do. Kafka Streams:
// KGroupedStream.windowedBy(TimeWindows).
// (A package function, not a method: the aggregation's table is keyed by
// window.Windowed[K], and a method here would make Go's generic types
// recursive.)
func WindowedBy[K, V any](g Grouped[K, V], w window.Time) TimeWindowedStream[K, V] {
	return TimeWindowedStream[K, V]{g: g, w: w}
}

// EmitFinal makes the aggregation forward each window once, with its final
// aggregate, when the window closes (stream time reaches its end + grace),
// instead of every update. Kafka Streams:
// emitStrategy(EmitStrategy.onWindowClose()).
func (t TimeWindowedStream[K, V]) EmitFinal() TimeWindowedStream[K, V] {
	t.emit.Final = true
	return t
}

// CloseWhenIdle lets wall-clock time close windows when the task's
// aggregation has seen no record for idle: its stream time then advances
// with the wall clock from the last record's, so the last windows close
// (and, with EmitFinal, are emitted) without waiting for new data. A
// departure from Kafka Streams, where windows close only when records
// advance stream time; it assumes event time keeps pace with wall-clock
// time. Off by default.
func (t TimeWindowedStream[K, V]) CloseWhenIdle(idle time.Duration) TimeWindowedStream[K, V] {
	t.emit.CloseWhenIdle = idle
	return t
}

// Count counts the records of each key per window, tombstones included
// (as Kafka Streams' windowed count: only a null key drops a record).
// Records with a null key are dropped and counted; so are records for
// closed windows ("late"). Kafka Streams: TimeWindowedKStream.count.
func (t TimeWindowedStream[K, V]) Count(opts ...StoreOption) Table[window.Windowed[K], int64] {
	t.emit.CountTombstones = true
	return timeWindowed(t, opts, "KSTREAM-AGGREGATE", serde.Int64, zero, increment[K, V])
}

// Reduce combines the values of each key per window with f, the first
// value of a window being its initial aggregate. Kafka Streams:
// TimeWindowedKStream.reduce.
func (t TimeWindowedStream[K, V]) Reduce(f func(agg, v V) V, opts ...StoreOption) Table[window.Windowed[K], V] {
	return timeWindowedFirst(t, opts, "KSTREAM-REDUCE", t.g.s.values,
		func(_ K, v V) V { return v }, func(_ K, v, agg V) V { return f(agg, v) })
}

// WindowedAggregate folds the values of each key per window into an
// aggregate of type A, starting from init(); aggs stores the aggregate.
// Kafka Streams: TimeWindowedKStream.aggregate.
func WindowedAggregate[K, V, A any](t TimeWindowedStream[K, V], init func() A, add func(k K, v V, agg A) A, aggs serde.Serde[A], opts ...StoreOption) Table[window.Windowed[K], A] {
	return timeWindowed(t, opts, "KSTREAM-AGGREGATE", aggs, init, add)
}

func timeWindowed[K, V, A any](t TimeWindowedStream[K, V], opts []StoreOption, prefix string, aggs serde.Serde[A], init func() A, add func(K, V, A) A) Table[window.Windowed[K], A] {
	return timeWindowedFirst(t, opts, prefix, aggs, func(k K, v V) A { return add(k, v, init()) }, add)
}

func timeWindowedFirst[K, V, A any](t TimeWindowedStream[K, V], opts []StoreOption, prefix string, aggs serde.Serde[A], first func(K, V) A, add func(K, V, A) A) Table[window.Windowed[K], A] {
	w, emit := t.w, t.emit
	tbl := windowedAggregate(t.g, opts, prefix, topology.Window, w.Validate(), w.Retention(), aggs,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error) {
			return nodes.WindowAggregate(ctx, node, store, w, emit, keys, aggs, first, add, next)
		})
	if tbl.keys == nil && t.g.s.keys != nil {
		tbl.keys = window.TimeKeySerde(t.g.s.keys, w.Size)
	}
	t.g.s.b.setWindowSize(tbl.store, w.Size)
	tbl.closing = timeWindowClose[K](w.Grace)
	return tbl
}

// SessionWindowedStream is a grouped stream cut into sessions, ready for a
// session aggregation: Kafka Streams' SessionWindowedKStream. Its
// aggregations produce a table keyed by window.Windowed keys whose serde
// writes key ‖ int64 end ‖ int64 start, as Kafka Streams'
// SessionWindowedSerializer does.
type SessionWindowedStream[K, V any] struct {
	g    Grouped[K, V]
	w    window.Session
	emit nodes.Emit
}

// WindowedBySession cuts the grouped stream into sessions of records at
// most w.Gap apart. Its aggregations drop and count records with a null
// key or value. Kafka Streams: KGroupedStream.windowedBy(SessionWindows).
func WindowedBySession[K, V any](g Grouped[K, V], w window.Session) SessionWindowedStream[K, V] {
	return SessionWindowedStream[K, V]{g: g, w: w}
}

// EmitFinal makes the aggregation forward each session once, when it
// closes, instead of every change. Kafka Streams:
// emitStrategy(EmitStrategy.onWindowClose()).
func (s SessionWindowedStream[K, V]) EmitFinal() SessionWindowedStream[K, V] {
	s.emit.Final = true
	return s
}

// CloseWhenIdle lets wall-clock time close sessions when the aggregation
// has seen no record for idle (see TimeWindowedStream.CloseWhenIdle; a
// departure from Kafka Streams).
func (s SessionWindowedStream[K, V]) CloseWhenIdle(idle time.Duration) SessionWindowedStream[K, V] {
	s.emit.CloseWhenIdle = idle
	return s
}

// Count counts the records of each key per session, tombstones included
// (as Kafka Streams' session count: only a null key drops a record, dropped
// and counted). Kafka Streams: SessionWindowedKStream.count.
func (s SessionWindowedStream[K, V]) Count(opts ...StoreOption) Table[window.Windowed[K], int64] {
	s.emit.CountTombstones = true
	return SessionAggregate(s, zero, increment[K, V], func(_ K, a, b int64) int64 { return a + b }, serde.Int64, opts...)
}

// Reduce combines the values of each key per session with f; merging two
// sessions combines their aggregates with f too. Kafka Streams:
// SessionWindowedKStream.reduce.
func (s SessionWindowedStream[K, V]) Reduce(f func(agg, v V) V, opts ...StoreOption) Table[window.Windowed[K], V] {
	w, emit, values := s.w, s.emit, s.g.s.values
	return sessionWindowed(s, opts, "KSTREAM-REDUCE", values,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[V]]) (nodes.Node[K, V], error) {
			return nodes.SessionReduce(ctx, node, store, w, emit, keys, values,
				func(_ K, v V, agg V) V { return f(agg, v) }, func(_ K, a, b V) V { return f(a, b) }, next)
		})
}

// SessionAggregate folds the values of each key per session into an
// aggregate of type A, starting from init(); when a record bridges
// sessions, their aggregates are combined with merge first. aggs stores
// the aggregate. Kafka Streams: SessionWindowedKStream.aggregate.
func SessionAggregate[K, V, A any](s SessionWindowedStream[K, V], init func() A, add func(k K, v V, agg A) A, merge func(k K, a, b A) A,
	aggs serde.Serde[A], opts ...StoreOption) Table[window.Windowed[K], A] {
	w, emit := s.w, s.emit
	return sessionWindowed(s, opts, "KSTREAM-AGGREGATE", aggs,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error) {
			return nodes.SessionAggregate(ctx, node, store, w, emit, keys, aggs, init, add, merge, next)
		})
}

// sessionWindowed adds a session aggregation whose node mk builds.
func sessionWindowed[K, V, A any](s SessionWindowedStream[K, V], opts []StoreOption, prefix string, aggs serde.Serde[A],
	mk func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error)) Table[window.Windowed[K], A] {
	w := s.w
	tbl := windowedAggregate(s.g, opts, prefix, topology.Session, w.Validate(), w.Gap+w.Grace, aggs, mk)
	if tbl.keys == nil && s.g.s.keys != nil {
		tbl.keys = window.SessionKeySerde(s.g.s.keys)
	}
	tbl.closing = timeWindowClose[K](w.Gap + w.Grace)
	return tbl
}

// windowedAggregate adds a windowed aggregation: its processor, its window
// or session store with the retention the windows need (or the longer one
// Materialized asks for), the repartition step if needed, and the node mk
// builds.
func windowedAggregate[K, V, A any](g Grouped[K, V], opts []StoreOption, prefix string, kind topology.StoreKind, invalid error, minRetention time.Duration,
	aggs serde.Serde[A], mk func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error)) Table[window.Windowed[K], A] {
	b := g.s.b
	o := collect(opts)
	spec := b.storeSpec(o, prefix, "")
	spec.Kind = kind
	// Session stores keep the bare aggregate, as Kafka Streams' (their
	// changelog records are stamped with the causing record's timestamp).
	spec.Timestamped = kind != topology.Session
	spec.Retention = minRetention
	name := b.nameOr(o.name, prefix)
	if invalid != nil {
		b.fail(name, "%v", invalid)
	}
	if o.store != nil && o.store.Retention != 0 {
		if o.store.Retention < minRetention {
			b.fail(name, "store %s: retention %v is shorter than the windows need (%v)", spec.Name, o.store.Retention, minRetention)
		}
		spec.Retention = max(spec.Retention, o.store.Retention)
	}
	s := g.input(name, spec, aggs != nil)
	keys := s.keys
	spec.Serdes = topology.NewStoreSerdes(keys, aggs)
	n := processor(b, name, []string{spec.Name}, func(ctx nodes.Context, next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error) {
		return mk(ctx, name, spec.Name, keys, next)
	}, s.node)
	// A join reads the table from the store by window: the window store's
	// aggregate, or exactly that session's (Kafka Streams' view() of the
	// windowed aggregations).
	view := tableView[window.Windowed[K], A]{stores: []string{spec.Name}, open: func(ctx nodes.Context) (nodes.ValueGetter[window.Windowed[K], A], error) {
		if kind == topology.Session {
			return nodes.SessionStoreGetter(ctx, spec.Name, keys, aggs)
		}
		return nodes.WindowStoreGetter(ctx, spec.Name, keys, aggs)
	}}
	return Table[window.Windowed[K], A]{b: b, node: n, values: aggs, store: spec.Name, view: view}
}

// setStoreSerdes records the serdes of store name (for interactive
// queries); "" is no store.
func (b *Builder) setStoreSerdes(name string, s topology.StoreSerdes) {
	for _, spec := range b.stores {
		if name != "" && spec.Name == name {
			spec.Serdes = s
		}
	}
}

// setWindowSize records the window size of window store name (for
// interactive queries: a window's end).
func (b *Builder) setWindowSize(name string, size time.Duration) {
	for _, s := range b.stores {
		if s.Name == name {
			s.WindowSize = size
		}
	}
}
