package dsl

import (
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// SlidingWindowedStream is a grouped stream cut into sliding windows,
// ready for a windowed aggregation: Kafka Streams' TimeWindowedKStream
// over SlidingWindows. A sliding window [start, start+TimeDifference]
// (both ends inclusive) exists for every distinct set of records at most
// TimeDifference apart, so each record's aggregation sees exactly the
// records within TimeDifference of it.
//
// Its aggregations produce a table keyed by window.Windowed keys whose
// serde writes key ‖ int64 start, as Kafka Streams' TimeWindowedSerializer
// does; decoding derives the end as start + TimeDifference. Their window
// store keeps windows for 2*TimeDifference + Grace after their start
// (Kafka Streams' minimum for sliding windows); a shorter
// Materialized retention is an error.
type SlidingWindowedStream[K, V any] struct {
	g     Grouped[K, V]
	w     window.Sliding
	final bool
}

// WindowedBySliding cuts the grouped stream into sliding windows. Its
// aggregations drop and count records with a null key or value. Kafka
// Streams: KGroupedStream.windowedBy(SlidingWindows). (A package
// function, not a method, for the reason WindowedBy gives.)
func WindowedBySliding[K, V any](g Grouped[K, V], w window.Sliding) SlidingWindowedStream[K, V] {
	return SlidingWindowedStream[K, V]{g: g, w: w}
}

// EmitFinal makes the aggregation forward each window once, with its final
// aggregate, when the window closes (stream time passes its end + grace),
// instead of every update. Kafka Streams:
// emitStrategy(EmitStrategy.onWindowClose()).
func (s SlidingWindowedStream[K, V]) EmitFinal() SlidingWindowedStream[K, V] {
	s.final = true
	return s
}

// Count counts the records of each key per sliding window. Records with a
// null key or value are dropped and counted; so are records for closed
// windows ("late"). Kafka Streams: TimeWindowedKStream.count over
// SlidingWindows.
func (s SlidingWindowedStream[K, V]) Count(opts ...StoreOption) Table[window.Windowed[K], int64] {
	return SlidingAggregate(s, zero, increment[K, V], serde.Int64, opts...)
}

// Reduce combines the values of each key per sliding window with f, the
// first value of a window being its initial aggregate. The stream's value
// serde stores the result. Kafka Streams: TimeWindowedKStream.reduce over
// SlidingWindows.
func (s SlidingWindowedStream[K, V]) Reduce(f func(agg, v V) V, opts ...StoreOption) Table[window.Windowed[K], V] {
	w, final, values := s.w, s.final, s.g.s.values
	return slidingWindowed(s, opts, "KSTREAM-REDUCE", values,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[V]]) (nodes.Node[K, V], error) {
			return nodes.SlidingReduce(ctx, node, store, w, final, keys, values, func(_ K, v, agg V) V { return f(agg, v) }, next)
		})
}

// SlidingAggregate folds the values of each key per sliding window into
// an aggregate of type A, starting from init(); aggs stores the
// aggregate. A new window may start from the stored aggregate of another
// window that holds the same earlier records rather than from init().
// Kafka Streams: TimeWindowedKStream.aggregate over SlidingWindows.
func SlidingAggregate[K, V, A any](s SlidingWindowedStream[K, V], init func() A, add func(k K, v V, agg A) A, aggs serde.Serde[A], opts ...StoreOption) Table[window.Windowed[K], A] {
	w, final := s.w, s.final
	return slidingWindowed(s, opts, "KSTREAM-AGGREGATE", aggs,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error) {
			return nodes.SlidingAggregate(ctx, node, store, w, final, keys, aggs, init, add, next)
		})
}

// slidingWindowed adds a sliding-window aggregation whose node mk builds.
func slidingWindowed[K, V, A any](s SlidingWindowedStream[K, V], opts []StoreOption, prefix string, aggs serde.Serde[A],
	mk func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[window.Windowed[K], operators.Change[A]]) (nodes.Node[K, V], error)) Table[window.Windowed[K], A] {
	w := s.w
	tbl := windowedAggregate(s.g, opts, prefix, topology.Window, w.Validate(), 2*w.TimeDifference+w.Grace, aggs, mk)
	if tbl.keys == nil && s.g.s.keys != nil {
		tbl.keys = window.TimeKeySerde(s.g.s.keys, w.TimeDifference)
	}
	s.g.s.b.setWindowSize(tbl.store, w.TimeDifference)
	tbl.closing = timeWindowClose[K](w.Grace)
	return tbl
}
