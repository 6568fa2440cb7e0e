package dsl

import (
	"slices"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// TableJoinForeignKey joins each row of t with the row of other whose key
// fk extracts from it: the result has a row for each key of t whose foreign
// key has a row in other, joiner's result of the two, and follows the
// updates of both, foreign-key changes and deletes on either side
// included. fk returning None is Kafka Streams' null foreign key: the row
// joins nothing (an update to None deletes its result). Kafka Streams:
// KTable.join(KTable, Function, ValueJoiner, TableJoined, Materialized).
//
// t and other need not be co-partitioned, nor have the same partition
// count: each left row subscribes to its foreign key through the internal
// topic "<application.id>-<...>-subscription-registration-topic", which
// has other's partition count and is keyed by the foreign key, and the
// right side answers through "<...>-subscription-response-topic", which has
// t's partition count and is keyed by t's key; the right side keeps the
// subscriptions in the store "<...>-subscription-store" (logged, never
// cached). The wire formats are Kafka Streams' (see docs/changelogs.md).
// An answer given for a left value that has changed since it subscribed is
// dropped: it carries the 128-bit murmur3 hash of the value's
// serialization, compared with the current row's (so t's value serde must
// be deterministic).
//
// As in Kafka Streams some updates emit a tombstone for a key that had no
// result (a left row deleted or moved to another foreign key, when the
// join cannot tell whether it had one). A result's timestamp is the
// largest of the left update's and the right row's for an update of t, the
// right update's for an update of other.
//
// The result is kept in a store with Materialized naming one
// (StoreOptions.Name; Named does not name it), which needs values.
// Without it the result's updates carry no old value, unless something
// downstream needs a store: Build then keeps the result in the store
// "KTABLE-FK-JOIN-OUTPUT-STATE-STORE-<n>", with the options of an
// unnamed Materialized if one was given, when a join reads it or any
// operation but ToStream follows it (Kafka Streams
// materializes it when asked for a value getter or old values, and
// Materialized without a name does not make it queryable). t's and
// other's key serdes and t's value serde are required; values is needed
// when the result is kept in a store. Names follow Kafka Streams' (Named:
// "<name>-subscription-registration-processor", "<name>-subscription-store",
// "<name>-result", ...; else KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-...,
// KTABLE-FK-JOIN-OUTPUT-...). Records dropped are counted with the reasons
// "null-foreign-key" (an inner join's row without a foreign key) and
// "stale-response".
func TableJoinForeignKey[K, V, KO, VO, VR any](t Table[K, V], other Table[KO, VO],
	fk func(k K, v V) Maybe[KO], joiner func(k K, v V, o VO) VR, values serde.Serde[VR], opts ...StoreOption) Table[K, VR] {
	var join func(K, V, operators.Maybe[VO]) VR
	if joiner != nil { // else foreignKeyJoin reports it
		join = func(k K, v V, o operators.Maybe[VO]) VR {
			ov, _ := o.Get()
			return joiner(k, v, ov)
		}
	}
	return foreignKeyJoin(t, other, fk, join, values, false, "TableJoinForeignKey", collect(opts))
}

// TableLeftJoinForeignKey is TableJoinForeignKey that keeps every row of t:
// a row whose foreign key is None, or has no row in other, joins None.
// Every update of t emits a result (a delete a tombstone). Kafka Streams:
// KTable.leftJoin(KTable, Function, ValueJoiner, TableJoined, Materialized).
func TableLeftJoinForeignKey[K, V, KO, VO, VR any](t Table[K, V], other Table[KO, VO],
	fk func(k K, v V) Maybe[KO], joiner func(k K, v V, o Maybe[VO]) VR, values serde.Serde[VR], opts ...StoreOption) Table[K, VR] {
	return foreignKeyJoin(t, other, fk, joiner, values, true, "TableLeftJoinForeignKey", collect(opts))
}

// foreignKeyJoin adds the nodes of a foreign-key join in the order, and
// with the names, of Kafka Streams' KTableImpl.doJoinOnForeignKey.
func foreignKeyJoin[K, V, KO, VO, VR any](t Table[K, V], other Table[KO, VO], fk func(K, V) Maybe[KO],
	joiner func(K, V, operators.Maybe[VO]) VR, values serde.Serde[VR], leftJoin bool, op string, o options) Table[K, VR] {
	b := t.b
	name := func(suffix, prefix string) string { return b.nameOr(suffixed(o.name, suffix), prefix) }
	subTopic := name("-subscription-registration", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION") + "-topic"
	sendName := name("-subscription-registration-processor", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION")
	subSinkName := name("-subscription-registration-sink", "KTABLE-SINK")
	subSourceName := name("-subscription-registration-source", "KTABLE-SOURCE")
	subStore := name("-subscription-store", "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE")
	receiveName := name("-subscription-receive", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR")
	subJoinName := name("-subscription-join-foreign", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR")
	foreignName := name("-foreign-join-subscription", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR")
	respTopic := name("-subscription-response", "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE") + "-topic"
	respSinkName := name("-subscription-response-sink", "KTABLE-SINK")
	respSourceName := name("-subscription-response-source", "KTABLE-SOURCE")
	resolverName := name("-subscription-response-resolver", "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR")
	resultName := name("-result", "KTABLE-FK-JOIN-OUTPUT")
	// Kafka Streams' MaterializedInternal names the result store (using up
	// an index) even when the result is not materialized: the name of the
	// store it makes if something downstream needs one (see below). As in
	// Kafka Streams (KTableSource of a MaterializedInternal that is not
	// queryable), Materialized without a store name does not materialize
	// the result: its options apply to that store.
	store, generated := "", ""
	if o.store != nil && o.store.Name != "" {
		store = t.materialize(options{store: o.store}, "KTABLE-FK-JOIN-OUTPUT", op)
	} else {
		generated = b.newName("KTABLE-FK-JOIN-OUTPUT-STATE-STORE")
	}

	fail := func(format string, args ...any) Table[K, VR] {
		b.fail(resultName, format, args...)
		return Table[K, VR]{b: b, node: t.node, keys: t.keys}
	}
	if other.b != b {
		return fail("%s: the joined tables come from different builders", op)
	}
	if fk == nil || joiner == nil {
		return fail("%s: the foreign-key extractor and the joiner are required", op)
	}
	if t.keys == nil || other.keys == nil || t.values == nil {
		return fail("%s: the key serdes of both tables and the left table's value serde are required (set them on the tables' sources)", op)
	}
	if t.view.open == nil {
		return fail("%s: the left table (node %s) has no value getter: materialize it", op, t.node.Name)
	}
	if other.view.open == nil {
		return fail("%s: the right table (node %s) has no value getter: materialize it", op, other.node.Name)
	}
	if store != "" && values == nil {
		b.fail(resultName, "missing value serde for store %s", store)
	}
	keys, lvalues, fkeys, rvalues := t.keys, t.values, other.keys, other.values
	subs := nodes.SubscriptionSerde(keys)
	var responses serde.Serde[nodes.Response[VO]]
	if rvalues != nil {
		responses = nodes.ResponseSerde(rvalues)
	} else {
		b.fail(resultName, "%s: the right table's value serde is required (set it on its source)", op)
	}
	b.addStore(&topology.StoreSpec{Name: subStore, Kind: topology.KeyValue, Timestamped: true, DisableCaching: true, Generated: o.name == ""})

	// Left side: subscriptions out.
	send := processor(b, sendName, nil, func(ctx nodes.Context, next nodes.Node[KO, nodes.Subscription[K]]) (nodes.Node[K, operators.Change[V]], error) {
		return nodes.FKSubscriptionSend(ctx, sendName, func(k K, v V) operators.Maybe[KO] { return fk(k, v) }, fkeys, lvalues, leftJoin, next)
	}, t.node)
	subSink := &topology.Node{Name: subSinkName, Kind: topology.Sink, Topics: []string{subTopic}, Internal: true}
	subSink.New = func(ctx nodes.Context, _ []any) (any, error) {
		return nodes.RepartitionSink(ctx, subSinkName, ctx.InternalTopic(subTopic), fkeys, subs), nil
	}
	b.add(subSink, send)

	// Right side: subscriptions in, kept, answered; right updates answered.
	subSource := sourceNode(b, subSourceName, []string{subTopic}, true, fkeys, subs)
	receive := processor(b, receiveName, []string{subStore}, func(ctx nodes.Context, next nodes.Node[nodes.CombinedKey[KO, K], nodes.Subscription[K]]) (nodes.Node[KO, nodes.Subscription[K]], error) {
		return nodes.FKSubscriptionReceive(ctx, receiveName, subStore, fkeys, keys, next)
	}, subSource)
	rview := other.view
	subJoin := processor(b, subJoinName, rview.stores, func(ctx nodes.Context, next nodes.Node[K, nodes.Response[VO]]) (nodes.Node[nodes.CombinedKey[KO, K], nodes.Subscription[K]], error) {
		return nodes.FKSubscriptionJoin(ctx, subJoinName, rview.open, next)
	}, receive)
	foreign := processor(b, foreignName, []string{subStore}, func(ctx nodes.Context, next nodes.Node[K, nodes.Response[VO]]) (nodes.Node[KO, operators.Change[VO]], error) {
		return nodes.FKForeignTableJoin[K](ctx, foreignName, subStore, fkeys, keys, next)
	}, other.node)
	respSink := &topology.Node{Name: respSinkName, Kind: topology.Sink, Topics: []string{respTopic}, Internal: true}
	respSink.New = func(ctx nodes.Context, _ []any) (any, error) {
		return nodes.FKResponseSink(ctx, respSinkName, ctx.InternalTopic(respTopic), keys, responses), nil
	}
	b.add(respSink, subJoin, foreign)

	// Left side: responses in, joined with the current left row.
	respSource := sourceNode(b, respSourceName, []string{respTopic}, true, keys, responses)
	lview := t.view
	resolver := processor(b, resolverName, lview.stores, func(ctx nodes.Context, next nodes.Node[K, VR]) (nodes.Node[K, nodes.Response[VO]], error) {
		return nodes.FKResponseJoin(ctx, resolverName, lview.open, lvalues, leftJoin, joiner, next)
	}, respSource)
	var stores []string
	if store != "" {
		stores = []string{store}
	}
	// resultStore is read when a task instantiates the node, after Build
	// has decided on it.
	resultStore := &store
	result := processor(b, resultName, stores, func(ctx nodes.Context, next nodes.Node[K, operators.Change[VR]]) (nodes.Node[K, VR], error) {
		return nodes.FKResult(ctx, resultName, *resultStore, keys, values, next)
	}, resolver)
	out := Table[K, VR]{b: b, node: result, keys: keys, values: values, store: store}
	if store != "" {
		out.view = storeView(store, keys, values)
		return out
	}
	// Not materialized: updates carry no old value, and the result has no
	// store to read it from. As Kafka Streams materializes a KTableSource
	// when a getter or old values are asked of it, Build keeps the result
	// in the store generated above when a node reads it (a join: the view
	// below connects it) or the result has a child other than a ToStream
	// (Builder.toStreams): a table operation may need old values
	// (TableGroupBy's subtract).
	out.view = storeView(generated, keys, values)
	b.finish = append(b.finish, func() {
		need := false
		for _, n := range b.nodes {
			if n != result && slices.Contains(n.Stores, generated) {
				need = true
			}
		}
		for _, c := range result.Children {
			if !b.toStreams[c] {
				need = true
			}
		}
		if !need {
			return
		}
		if values == nil {
			b.fail(resultName, "%s: the result is read by a join or a table operation, so it is kept in store %s, which needs the result's value serde", op, generated)
			return
		}
		so := StoreOptions{}
		if o.store != nil {
			so = *o.store
		}
		so.Name = generated
		b.storeSpec(options{store: &so}, "", op).Generated = true
		result.Stores = append(result.Stores, generated)
		*resultStore = generated
	})
	return out
}

// markToStream records n as the node of a Table.ToStream (see
// Builder.toStreams).
func (b *Builder) markToStream(n *topology.Node) {
	if b.toStreams == nil {
		b.toStreams = map[*topology.Node]bool{}
	}
	b.toStreams[n] = true
}
