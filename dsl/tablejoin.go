package dsl

import (
	"slices"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// TableJoin joins two tables on their keys: the result has a row for each
// key that has a row in both, joiner's result of the two, and follows
// their updates. An update of either side while the other has no row
// forwards nothing; a delete on either side of a key that has a result
// deletes the result. The result's timestamp is the largest of the two
// rows' (a delete's own timestamp counts for its side).
//
// Neither input needs to be materialized: a table that is not (a Filter or
// TableMapValues without Materialized, another join's result) is read
// through a getter computed from the nearest materialized table above it,
// and the join's processors are connected to that table's store (Describe
// lists it). The tables of windowed aggregations are read from their
// window or session store by the window of the key, so two windowed
// tables of the same key type join window by window. t and other run in
// one task, so their source topics must be co-partitioned (the runtime
// checks their partition counts at start-up).
//
// The result is kept in a store only with Materialized (its name, else
// the Named option's, else a generated "KTABLE-MERGE-STATE-STORE-..."),
// which needs values; then it can be queried, and it is logged and cached
// as other table stores. Names: the processors are "<name>-join-this" and
// "<name>-join-other" and the node below them "<name>" when Named, else
// KTABLE-JOINTHIS-…, KTABLE-JOINOTHER-… and KTABLE-MERGE-… as Kafka
// Streams generates them. Kafka Streams: KTable.join(KTable).
func TableJoin[K, V, VO, VR any](t Table[K, V], other Table[K, VO], joiner func(k K, v V, o VO) VR, values serde.Serde[VR], opts ...StoreOption) Table[K, VR] {
	return tableJoin(t, other, joinInner, func(k K, v Maybe[V], o Maybe[VO]) VR {
		vv, _ := v.Get()
		ov, _ := o.Get()
		return joiner(k, vv, ov)
	}, values, "TableJoin", collect(opts))
}

// TableLeftJoin is TableJoin that keeps every row of t: the result has a
// row for each key of t, joined with other's row, or with None when other
// has none. An update of other while t has no row forwards nothing, and a
// delete in other joins t's row with None; a delete in t deletes the
// result. Kafka Streams: KTable.leftJoin(KTable).
func TableLeftJoin[K, V, VO, VR any](t Table[K, V], other Table[K, VO], joiner func(k K, v V, o Maybe[VO]) VR, values serde.Serde[VR], opts ...StoreOption) Table[K, VR] {
	return tableJoin(t, other, joinLeft, func(k K, v Maybe[V], o Maybe[VO]) VR {
		vv, _ := v.Get()
		return joiner(k, vv, o)
	}, values, "TableLeftJoin", collect(opts))
}

// TableOuterJoin is TableJoin that keeps every row of both tables: the
// result has a row for each key of either, joiner getting None for the
// side that has no row. A delete on one side while the other has a row
// joins that row with None; a delete of the last of the two rows deletes
// the result. Kafka Streams: KTable.outerJoin(KTable).
func TableOuterJoin[K, V, VO, VR any](t Table[K, V], other Table[K, VO], joiner func(k K, v Maybe[V], o Maybe[VO]) VR, values serde.Serde[VR], opts ...StoreOption) Table[K, VR] {
	return tableJoin(t, other, joinOuter, joiner, values, "TableOuterJoin", collect(opts))
}

type tableJoinKind int

const (
	joinInner tableJoinKind = iota
	joinLeft
	joinOuter
)

// tableJoin adds the nodes of a table-table join as Kafka Streams'
// KTableImpl.doJoin does: the result store's name first (Materialized),
// then the merge node's, the "this" and the "other" processor's names.
func tableJoin[K, V, VO, VR any](t Table[K, V], other Table[K, VO], kind tableJoinKind, join func(K, Maybe[V], Maybe[VO]) VR,
	values serde.Serde[VR], op string, o options) Table[K, VR] {
	b := t.b
	store := t.materialize(o, "KTABLE-MERGE", op)
	b.setStoreSerdes(store, topology.NewStoreSerdes(t.keys, values))
	mergeName := b.nameOr(o.name, "KTABLE-MERGE")
	thisName, otherName := b.nameOr(suffixed(o.name, "-join-this"), "KTABLE-JOINTHIS"), b.nameOr(suffixed(o.name, "-join-other"), "KTABLE-JOINOTHER")
	if other.b != b {
		b.fail(mergeName, "%s: the joined tables come from different builders", op)
		return Table[K, VR]{b: b, node: t.node, keys: t.keys}
	}
	for _, in := range []struct {
		node     string
		joinable bool
	}{{t.node.Name, t.view.open != nil}, {other.node.Name, other.view.open != nil}} {
		if !in.joinable {
			b.fail(mergeName, "%s: the table of node %s has no value getter a join can read it through", op, in.node)
			return Table[K, VR]{b: b, node: t.node, keys: t.keys}
		}
	}
	keys := t.keys
	if keys == nil {
		keys = other.keys
	}
	var stores []string
	if store != "" {
		stores = []string{store}
		if values == nil {
			b.fail(mergeName, "missing value serde for store %s", store)
		}
		if keys == nil {
			b.fail(mergeName, "missing key serde for store %s", store)
		}
	}
	thisSide, otherSide := nodes.InnerSide, nodes.InnerSide
	switch kind {
	case joinLeft:
		thisSide, otherSide = nodes.LeftSide, nodes.RightSide
	case joinOuter:
		thisSide, otherSide = nodes.OuterSide, nodes.OuterSide
	}
	reversed := func(k K, ov Maybe[VO], v Maybe[V]) VR { return join(k, v, ov) }
	tview, oview := t.view, other.view
	thisNode := processor(b, thisName, oview.stores, func(ctx nodes.Context, next nodes.Node[K, operators.Change[VR]]) (nodes.Node[K, operators.Change[V]], error) {
		return nodes.TableJoin(ctx, thisName, thisSide, oview.open, join, next)
	}, t.node)
	otherNode := processor(b, otherName, tview.stores, func(ctx nodes.Context, next nodes.Node[K, operators.Change[VR]]) (nodes.Node[K, operators.Change[VO]], error) {
		return nodes.TableJoin(ctx, otherName, otherSide, tview.open, reversed, next)
	}, other.node)
	merge := processor(b, mergeName, stores, func(ctx nodes.Context, next nodes.Node[K, operators.Change[VR]]) (nodes.Node[K, operators.Change[VR]], error) {
		return nodes.TableJoinMerge(ctx, mergeName, store, keys, values, next)
	}, thisNode, otherNode)
	view := storeView(store, keys, values)
	if store == "" {
		// As Kafka Streams' KTableKTableJoinMerger.view: the join computed
		// on the fly from both inputs' getters.
		view = tableView[K, VR]{
			stores: union(tview.stores, oview.stores),
			open:   nodes.TableJoinGetter(tview.open, oview.open, kind == joinLeft, kind == joinOuter, join),
		}
	}
	// Kafka Streams (KTableImpl.doJoin): the result is versioned only
	// when materialized in a versioned store, not inherited.
	out := Table[K, VR]{b: b, node: merge, keys: keys, values: values, store: store, view: view, versioned: b.versionedStore(store)}
	if t.closing != nil && other.closing != nil {
		// A join of two windowed tables: its windows close at the later
		// of the two closing times (Kafka Streams' GraphGraceSearchUtil
		// takes the largest grace of the parents).
		out.closing = &windowClose[K]{end: t.closing.end, wait: max(t.closing.wait, other.closing.wait)}
	}
	return out
}

// suffixed returns name+suffix, or "" for no name (Kafka Streams'
// NamedInternal.suffixWithOrElseGet).
func suffixed(name, suffix string) string {
	if name == "" {
		return ""
	}
	return name + suffix
}

// union returns the names of a then those of b not in a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
