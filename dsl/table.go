package dsl

import (
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// Table is a typed changelog stream read as a table: each key's latest
// value (Kafka Streams' KTable). Its updates flow downstream as
// operators.Change values carrying the new and the old value.
type Table[K, V any] struct {
	b      *Builder
	node   *topology.Node
	keys   serde.Serde[K]
	values serde.Serde[V]
	// store is the name of the store that holds the table, or "" if the
	// table is not materialized.
	store string
	// view is how a join reads the table's rows.
	view tableView[K, V]
	// versioned: the table is versioned, kept in a versioned store or
	// computed on the fly from one (Filter or TableMapValues without
	// Materialized); Kafka Streams' GraphNode.isOutputVersioned, inherited
	// from upstream when not set. Its updates may be out of order
	// (Change.NotLatest) and its view reads as of a time.
	versioned bool
	// closing is set on the tables of windowed aggregations and the table
	// operations after them: what Suppress(UntilWindowCloses) needs.
	closing *windowClose[K]
}

// tableView is how the rows of a table are read by an operation that looks
// keys up in it (a table-table join): a getter opened for each task, reading
// stores, the stores of the nearest materialized tables at or above it
// (Kafka Streams' KTableValueGetterSupplier and its storeNames). The node
// that opens the getter is connected to those stores, which puts it in
// their sub-topology.
type tableView[K, V any] struct {
	stores []string
	open   func(ctx nodes.Context) (nodes.ValueGetter[K, V], error)
}

// storeView reads a table from its timestamped store.
func storeView[K, V any](store string, keys serde.Serde[K], values serde.Serde[V]) tableView[K, V] {
	return tableView[K, V]{stores: []string{store}, open: func(ctx nodes.Context) (nodes.ValueGetter[K, V], error) {
		return nodes.StoreGetter(ctx, store, keys, values)
	}}
}

// derivedView reads a table computed from parent by a getter over parent's
// (Kafka Streams' view() of a table processor that is not materialized).
func derivedView[K, V, V2 any](parent tableView[K, V], derive func(nodes.ValueGetter[K, V]) nodes.ValueGetter[K, V2]) tableView[K, V2] {
	if parent.open == nil {
		return tableView[K, V2]{}
	}
	return tableView[K, V2]{stores: parent.stores, open: func(ctx nodes.Context) (nodes.ValueGetter[K, V2], error) {
		g, err := parent.open(ctx)
		if err != nil {
			return nil, err
		}
		return derive(g), nil
	}}
}

// StoreName is the name of the store that holds the table, or "" when the
// table is computed on the fly (a Filter or MapValues without Materialized).
func (t Table[K, V]) StoreName() string { return t.store }

// TableFromTopic reads topic as a table: a record sets its key's value, a
// tombstone deletes it. The table is kept in a store named by Named or
// Materialized (else generated, "<topic>-STATE-STORE-..."). Records are
// stamped as by FromTopics (Timestamps, WallClockTimestamps,
// OnInvalidTimestamp). Kafka Streams: StreamsBuilder.table.
func TableFromTopic[K, V any](b *Builder, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...TableSourceOption) Table[K, V] {
	o := collect(opts)
	spec := b.storeSpec(o, topic, "TableFromTopic")
	srcName, name := b.newName("KSTREAM-SOURCE"), b.newName("KTABLE-SOURCE")
	if o.name != "" {
		srcName, name = o.name+"-source", o.name
	}
	if keys == nil || values == nil {
		b.fail(srcName, "table source of %s needs a key and a value serde", topic)
	}
	spec.Serdes = topology.NewStoreSerdes(keys, values)
	src := stampingSourceNode(b, srcName, []string{topic}, false, keys, values, sourceTimestamps[K, V](b, srcName, o))
	n := processor(b, name, []string{spec.Name}, func(ctx nodes.Context, next nodes.Node[K, operators.Change[V]]) (nodes.Node[K, V], error) {
		return nodes.TableSource(ctx, name, spec.Name, keys, values, next)
	}, src)
	return Table[K, V]{b: b, node: n, keys: keys, values: values, store: spec.Name, view: storeView(spec.Name, keys, values),
		versioned: spec.Kind == topology.Versioned}
}

// materialize returns the store a table operation keeps its result in, if
// the Materialized option asks for one.
func (t Table[K, V]) materialize(o options, prefix, op string) string {
	store, _ := t.materializeVersioned(o, prefix, op)
	return store
}

// materializeVersioned is materialize, also reporting whether the result
// is versioned: kept in a versioned store, or, when not materialized, as t
// is.
func (t Table[K, V]) materializeVersioned(o options, prefix, op string) (string, bool) {
	if o.store == nil {
		return "", t.versioned
	}
	spec := t.b.storeSpec(o, prefix, op)
	return spec.Name, spec.Kind == topology.Versioned
}

// Filter keeps the rows for which pred holds; an update whose new value
// fails it deletes the row downstream. With Materialized the result is
// kept in a store. pred sees only values that exist: the new value of an
// update that is not a delete, and the old one when there was one. Kafka
// Streams: KTable.filter.
func (t Table[K, V]) Filter(pred func(K, V) bool, opts ...StoreOption) Table[K, V] {
	return t.filter(pred, true, opts)
}

// FilterNot drops the rows for which pred holds. Kafka Streams:
// KTable.filterNot.
func (t Table[K, V]) FilterNot(pred func(K, V) bool, opts ...StoreOption) Table[K, V] {
	return t.filter(pred, false, opts)
}

func (t Table[K, V]) filter(pred func(K, V) bool, keep bool, opts []StoreOption) Table[K, V] {
	o := collect(opts)
	store, versioned := t.materializeVersioned(o, "KTABLE-FILTER", "Table.Filter")
	t.b.setStoreSerdes(store, topology.NewStoreSerdes(t.keys, t.values))
	name := t.b.nameOr(o.name, "KTABLE-FILTER")
	var stores []string
	if store != "" {
		stores = []string{store}
	}
	keys, values := t.keys, t.values
	parentVersioned := t.versioned
	n := processor(t.b, name, stores, func(ctx nodes.Context, next nodes.Node[K, operators.Change[V]]) (nodes.Node[K, operators.Change[V]], error) {
		if parentVersioned {
			return nodes.TableFilterVersioned(ctx, name, store, keys, values, pred, keep, next)
		}
		return nodes.TableFilter(ctx, name, store, keys, values, pred, keep, next)
	}, t.node)
	out := t
	out.node, out.store, out.versioned = n, store, versioned
	if store != "" {
		out.view = storeView(store, keys, values)
	} else {
		out.view = derivedView(t.view, func(g nodes.ValueGetter[K, V]) nodes.ValueGetter[K, V] { return nodes.FilterGetter(g, pred, keep) })
	}
	return out
}

// ToStream returns the stream of the table's updates: each new value, and a
// tombstone for each delete. Kafka Streams: KTable.toStream.
func (t Table[K, V]) ToStream(opts ...Option) Stream[K, V] {
	name := t.b.nameOr(collect(opts).name, "KTABLE-TOSTREAM")
	n := stateless(t.b, name, func(next nodes.Node[K, V]) nodes.Node[K, operators.Change[V]] {
		return nodes.ToStream(next)
	}, t.node)
	t.b.markToStream(n)
	return Stream[K, V]{b: t.b, node: n, keys: t.keys, values: t.values}
}

// TableMapValues maps the table's values; values is the serde of the new
// values (needed when the result is materialized or written). Kafka
// Streams: KTable.mapValues. f sees only values that exist; a delete stays
// a delete.
func TableMapValues[K, V, V2 any](t Table[K, V], f func(V) V2, values serde.Serde[V2], opts ...StoreOption) Table[K, V2] {
	o := collect(opts)
	store, versioned := t.materializeVersioned(o, "KTABLE-MAPVALUES", "TableMapValues")
	t.b.setStoreSerdes(store, topology.NewStoreSerdes(t.keys, values))
	name := t.b.nameOr(o.name, "KTABLE-MAPVALUES")
	var stores []string
	if store != "" {
		stores = []string{store}
		if values == nil {
			t.b.fail(name, "missing value serde for store %s", store)
		}
	}
	keys := t.keys
	parentVersioned := t.versioned
	n := processor(t.b, name, stores, func(ctx nodes.Context, next nodes.Node[K, operators.Change[V2]]) (nodes.Node[K, operators.Change[V]], error) {
		if parentVersioned {
			return nodes.TableMapValuesVersioned(ctx, name, store, keys, values, f, next)
		}
		return nodes.TableMapValues(ctx, name, store, keys, values, f, next)
	}, t.node)
	view := storeView(store, keys, values)
	if store == "" {
		view = derivedView(t.view, func(g nodes.ValueGetter[K, V]) nodes.ValueGetter[K, V2] { return nodes.MapValuesGetter(g, f) })
	}
	return Table[K, V2]{b: t.b, node: n, keys: keys, values: values, store: store, view: view, versioned: versioned, closing: t.closing}
}

// GroupedTable is a table regrouped by a new key, ready for an aggregation
// with an adder and a subtractor: Kafka Streams' KGroupedTable.
type GroupedTable[K, V any] struct {
	s    Stream[K, operators.Change[V]]
	vals serde.Serde[V]
	name string
}

// TableGroupBy regroups a table's rows under the key f selects, with the
// value f returns. When a row changes, its old value is retracted from its
// old group and its new value added to its new group, so aggregations stay
// exact when a row moves between groups. f is called only with values
// that exist (not for the absent side of an insert or a delete); a row for
// which f returns an absent key (None) is left out of every group, as
// Kafka Streams skips a null key. Always repartitions. Kafka Streams:
// KTable.groupBy.
func TableGroupBy[K, V, K2, V2 any](t Table[K, V], f func(k K, v V) (Maybe[K2], V2), keys serde.Serde[K2], values serde.Serde[V2], opts ...Option) GroupedTable[K2, V2] {
	o := collect(opts)
	name := t.b.nameOr(o.name, "KTABLE-SELECT")
	if keys == nil || values == nil {
		t.b.fail(name, "table groupBy needs a key and a value serde")
	}
	n := stateless(t.b, name, func(next nodes.Node[K2, operators.Change[V2]]) nodes.Node[K, operators.Change[V]] {
		return nodes.TableGroupBy(name, f, keys, next)
	}, t.node)
	var changes serde.Serde[operators.Change[V2]]
	if values != nil {
		changes = nodes.ChangeSerde(values)
	}
	return GroupedTable[K2, V2]{
		s:    Stream[K2, operators.Change[V2]]{b: t.b, node: n, keys: keys, values: changes},
		vals: values,
		name: o.name,
	}
}

func tableAggregate[K, V, A any](g GroupedTable[K, V], opts []StoreOption, op, prefix string, aggs serde.Serde[A],
	mk func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[A]]) (nodes.Node[K, operators.Change[V]], error)) Table[K, A] {
	b := g.s.b
	o := collect(opts)
	spec := b.storeSpec(o, "KTABLE-AGGREGATE", op)
	base := g.name
	if base == "" {
		base = spec.Name
	}
	// As in Kafka Streams 4.3 (KGroupedTableImpl): no null-key filter (the
	// selector gives every row a key), and the sink and source are named
	// after the aggregation's Named ("<name>-sink", "<name>-source"), not
	// the grouping's, which names only the topic.
	sinkName, sourceName := b.newName("KSTREAM-SINK"), b.newName("KSTREAM-SOURCE")
	if o.name != "" {
		sinkName, sourceName = o.name+"-sink", o.name+"-source"
	}
	s := g.s.throughTopic(base+"-repartition", sinkName, sourceName, 0, g.s.node)
	name := b.nameOr(o.name, prefix)
	if aggs == nil {
		b.fail(name, "missing value serde for store %s", spec.Name)
	}
	keys := s.keys
	spec.Serdes = topology.NewStoreSerdes(keys, aggs)
	n := processor(b, name, []string{spec.Name}, func(ctx nodes.Context, next nodes.Node[K, operators.Change[A]]) (nodes.Node[K, operators.Change[V]], error) {
		return mk(ctx, name, spec.Name, keys, next)
	}, s.node)
	return Table[K, A]{b: b, node: n, keys: keys, values: aggs, store: spec.Name, view: storeView(spec.Name, keys, aggs),
		versioned: spec.Kind == topology.Versioned}
}

// Count counts the rows of each group. Kafka Streams: KGroupedTable.count.
// (Rows left out by the TableGroupBy mapper, and deletes of rows that were
// never counted, change nothing.)
func (g GroupedTable[K, V]) Count(opts ...StoreOption) Table[K, int64] {
	return tableAggregate(g, opts, "GroupedTable.Count", "KTABLE-AGGREGATE", serde.Int64,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[int64]]) (nodes.Node[K, operators.Change[V]], error) {
			return nodes.TableAggregate(ctx, node, store, keys, serde.Int64, zero, increment[K, V], decrement[K, V], next)
		})
}

func decrement[K, V any](_ K, _ V, n int64) int64 { return n - 1 }

// Reduce combines the values of each group: add folds a new value in, sub
// takes an old one out; neither sees a null (a delete only subtracts).
// Kafka Streams: KGroupedTable.reduce.
func (g GroupedTable[K, V]) Reduce(add, sub func(agg, v V) V, opts ...StoreOption) Table[K, V] {
	return tableAggregate(g, opts, "GroupedTable.Reduce", "KTABLE-REDUCE", g.vals,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[V]]) (nodes.Node[K, operators.Change[V]], error) {
			return nodes.TableReduce(ctx, node, store, keys, g.vals, add, sub, next)
		})
}

// TableAggregate folds the values of each group into an aggregate: add
// folds a new value in, sub takes an old one out. Neither sees a null: a
// delete only subtracts, an insert only adds. Kafka Streams:
// KGroupedTable.aggregate.
func TableAggregate[K, V, A any](g GroupedTable[K, V], init func() A, add, sub func(k K, v V, agg A) A, aggs serde.Serde[A], opts ...StoreOption) Table[K, A] {
	return tableAggregate(g, opts, "TableAggregate", "KTABLE-AGGREGATE", aggs,
		func(ctx nodes.Context, node, store string, keys serde.Serde[K], next nodes.Node[K, operators.Change[A]]) (nodes.Node[K, operators.Change[V]], error) {
			return nodes.TableAggregate(ctx, node, store, keys, aggs, init, add, sub, next)
		})
}
