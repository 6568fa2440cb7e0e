package dsl

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// Grouped is a stream grouped by key, ready for an aggregation: Kafka
// Streams' KGroupedStream. If the stream was rekeyed, the aggregation first
// repartitions it through "<name>-repartition", where name is the Named
// option of the grouping or else the store's name.
type Grouped[K, V any] struct {
	s           Stream[K, V]
	name        string
	repartition bool
}

// GroupByKey groups the stream by its current key. Records with a null
// key are dropped and counted by the aggregation (or by the repartition
// before it), tombstones by the aggregation. Kafka Streams:
// KStream.groupByKey.
func (s Stream[K, V]) GroupByKey(opts ...Option) Grouped[K, V] {
	return Grouped[K, V]{s: s, name: collect(opts).name, repartition: s.rekeyed}
}

// GroupBy groups the stream by the key f selects, always repartitioning.
// A record with a null key or value is dropped without calling f and
// counted ("null-key", "null-value"): group a topic written without keys
// with GroupByValue, or SelectKeyNullable then GroupByKey.
// keys is the serde of the new key. Named names the key-selecting node and
// the repartition topic, as Grouped.as does in Kafka Streams.
// Kafka Streams: KStream.groupBy.
func GroupBy[K, V, K2 any](s Stream[K, V], f func(K, V) K2, keys serde.Serde[K2], opts ...Option) Grouped[K2, V] {
	o := collect(opts)
	rekeyed := SelectKey(s, f, Named(o.name))
	rekeyed.keys = keys
	return Grouped[K2, V]{s: rekeyed, name: o.name, repartition: true}
}

// GroupByValue groups the stream by the key f selects from each record's
// value: GroupBy for a selector that does not look at the key, which also
// groups records with a null key (a topic written without keys). A
// tombstone is dropped without calling f and counted ("null-value"), as
// the aggregation would drop it. Always repartitions; Named as for
// GroupBy. Kafka Streams: KStream.groupBy with a selector that ignores the
// key.
func GroupByValue[K, V, K2 any](s Stream[K, V], f func(V) K2, keys serde.Serde[K2], opts ...Option) Grouped[K2, V] {
	o := collect(opts)
	name := s.b.nameOr(o.name, "KSTREAM-KEY-SELECT")
	n := processor(s.b, name, nil, func(ctx nodes.Context, next nodes.Node[K2, V]) (nodes.Node[K, V], error) {
		return nodes.SelectKeyFromValue[K](ctx, name, f, next), nil
	}, s.node)
	rekeyed := Stream[K2, V]{b: s.b, node: n, keys: keys, values: s.values, rekeyed: true}
	return Grouped[K2, V]{s: rekeyed, name: o.name, repartition: true}
}

// storeSpec returns the key-value store of a stateful operation: the name
// from Materialized, else from Named, else generated from prefix.
//
// op names the operation for errors about options it does not take; ""
// means a windowed operation, which takes them all.
func (b *Builder) storeSpec(o options, prefix, op string) *topology.StoreSpec {
	spec := &topology.StoreSpec{Kind: topology.KeyValue, Timestamped: true}
	if o.store != nil {
		spec.Name = o.store.Name
		spec.InMemory = o.store.InMemory
		spec.DisableLogging = o.store.DisableLogging
		spec.DisableCaching = o.store.DisableCaching
		spec.ChangelogConfig = o.store.ChangelogConfig
	}
	if spec.Name == "" {
		spec.Name = o.name
	}
	if spec.Name == "" {
		spec.Name = b.newName(prefix + "-STATE-STORE")
		spec.Generated = true
	}
	if o.store != nil && o.store.EnableCaching {
		what := op
		if what == "" {
			what = "a windowed aggregation"
		}
		b.errs = append(b.errs, &topology.BuildError{Store: spec.Name, Msg: fmt.Sprintf(
			"option Materialized(StoreOptions{EnableCaching: true}) does not apply to %s: the stores of DSL operations are cached unless DisableCaching is set", what)})
	}
	if op != "" && o.store != nil && o.store.Retention != 0 {
		b.errs = append(b.errs, &topology.BuildError{Store: spec.Name, Msg: fmt.Sprintf(
			"option Materialized(StoreOptions{Retention: %v}) does not apply to %s: only windowed and session aggregations keep a retention",
			o.store.Retention, op)})
	}
	if o.store != nil && o.store.HistoryRetention != 0 {
		b.versionedSpec(spec, o.store, op)
	}
	b.addStore(spec)
	return spec
}

// versionedOps are the operations whose store may be versioned
// (StoreOptions.HistoryRetention), as in Kafka Streams: the table sources,
// the table operations that can be materialized (filters, mapValues,
// table-table joins) and the aggregations that are not windowed.
var versionedOps = map[string]bool{"TableFromTopic": true, "Table.Filter": true, "TableMapValues": true,
	"Count": true, "Reduce": true, "Aggregate": true, "GroupedTable.Count": true, "GroupedTable.Reduce": true, "TableAggregate": true,
	"TableJoin": true, "TableLeftJoin": true, "TableOuterJoin": true}

// versionedSpec makes spec a versioned store's, or fails the build when
// the operation op or the options cannot have one.
func (b *Builder) versionedSpec(spec *topology.StoreSpec, s *StoreOptions, op string) {
	what := op
	if what == "" {
		what = "a windowed aggregation"
	}
	fail := func(format string, args ...any) {
		b.errs = append(b.errs, &topology.BuildError{Store: spec.Name, Msg: fmt.Sprintf(
			"option Materialized(StoreOptions{HistoryRetention: %v}) "+format, append([]any{s.HistoryRetention}, args...)...)})
	}
	switch {
	case s.HistoryRetention < 0:
		fail("of %s: the history retention is negative", what)
	case s.HistoryRetention%time.Millisecond != 0:
		fail("of %s: the history retention must be whole milliseconds", what)
	case !versionedOps[op]:
		fail("does not apply to %s: only TableFromTopic, Table.Filter, TableMapValues, the table-table joins and the aggregations that are not windowed keep a versioned table", what)
	case s.InMemory:
		fail("of %s: a versioned store cannot be InMemory (Kafka Streams has persistent versioned stores only)", what)
	default:
		// Kafka Streams never caches a versioned store
		// (KeyValueStoreMaterializer): every version is forwarded and
		// logged as it is written.
		spec.Kind, spec.Timestamped, spec.DisableCaching = topology.Versioned, false, true
		spec.HistoryRetention = s.HistoryRetention
	}
}

// input returns the stream an aggregation of g named name reads: g's
// stream, first repartitioned through "<grouping or store name>-repartition"
// if it was rekeyed. It fails the build, naming the node, when the store
// lacks a key serde or (hasValueSerde false) a value serde.
func (g Grouped[K, V]) input(name string, spec *topology.StoreSpec, hasValueSerde bool) Stream[K, V] {
	b, s := g.s.b, g.s
	if g.repartition {
		base := g.name
		if base == "" {
			base = spec.Name
		}
		s = s.repartitionAs(base, 0)
	}
	if s.keys == nil {
		b.fail(name, "missing key serde for store %s: set it with WithKeySerde before grouping", spec.Name)
	}
	if !hasValueSerde {
		b.fail(name, "missing value serde for store %s", spec.Name)
	}
	return s
}

// aggregate adds a stream aggregation: processor name, store, the
// repartition step if needed, and the node mk builds.
func aggregate[K, V, A any](g Grouped[K, V], opts []StoreOption, op, prefix string, aggs serde.Serde[A],
	mk func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[A]]) (nodes.Node[K, V], error)) Table[K, A] {
	b := g.s.b
	o := collect(opts)
	spec := b.storeSpec(o, prefix, op)
	name := b.nameOr(o.name, prefix)
	s := g.input(name, spec, aggs != nil)
	keys := s.keys
	spec.Serdes = topology.NewStoreSerdes(keys, aggs)
	n := processor(b, name, []string{spec.Name}, func(ctx nodes.Context, next nodes.Node[K, operators.Change[A]]) (nodes.Node[K, V], error) {
		return mk(ctx, name, spec.Name, keys, next)
	}, s.node)
	return Table[K, A]{b: b, node: n, keys: keys, values: aggs, store: spec.Name, view: storeView(spec.Name, keys, aggs),
		versioned: spec.Kind == topology.Versioned}
}

// Count counts the records of each key into a table (Int64 values). Records
// with a null key or value are dropped and counted. Kafka Streams:
// KGroupedStream.count.
func (g Grouped[K, V]) Count(opts ...StoreOption) Table[K, int64] {
	return aggregate(g, opts, "Count", "KSTREAM-AGGREGATE", serde.Int64,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[int64]]) (nodes.Node[K, V], error) {
			return nodes.Aggregate(ctx, node, store, keys, serde.Int64, zero, increment[K, V], next)
		})
}

func zero() int64 { return 0 }

func increment[K, V any](_ K, _ V, n int64) int64 { return n + 1 }

// Reduce combines the values of each key with f, the first value being the
// initial aggregate. The stream's value serde stores the result. Records
// with a null key or value are dropped and counted; f never sees a null.
// Kafka Streams: KGroupedStream.reduce.
func (g Grouped[K, V]) Reduce(f func(agg, v V) V, opts ...StoreOption) Table[K, V] {
	return aggregate(g, opts, "Reduce", "KSTREAM-REDUCE", g.s.values,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[V]]) (nodes.Node[K, V], error) {
			return nodes.Reduce(ctx, node, store, keys, g.s.values, f, next)
		})
}

// Aggregate folds the values of each key into an aggregate of type A,
// starting from init(); aggs stores the aggregate. Records with a null key
// or value are dropped and counted; add never sees a null. Kafka Streams:
// KGroupedStream.aggregate.
func Aggregate[K, V, A any](g Grouped[K, V], init func() A, add func(k K, v V, agg A) A, aggs serde.Serde[A], opts ...StoreOption) Table[K, A] {
	return aggregate(g, opts, "Aggregate", "KSTREAM-AGGREGATE", aggs,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[A]]) (nodes.Node[K, V], error) {
			return nodes.Aggregate(ctx, node, store, keys, aggs, init, add, next)
		})
}
