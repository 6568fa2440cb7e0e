package dsl

import (
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// GlobalTable is a table that every instance of the application holds in
// full: all partitions of its topic, not only those of the instance's tasks
// (Kafka Streams' GlobalKTable). It is read by joins (JoinGlobal,
// LeftJoinGlobal), which need no co-partitioning: any stream joins with it,
// whatever its key and partition count. Its store is restored from the
// topic itself (it has no changelog) and kept up to date by a reader of
// the instance's own, outside the consumer group; the runtime starts
// processing only once every global table has caught up with its topic.
type GlobalTable[K, V any] struct {
	b      *Builder
	keys   serde.Serde[K]
	values serde.Serde[V]
	store  string
}

// StoreName is the name of the store that holds the global table.
func (g GlobalTable[K, V]) StoreName() string { return g.store }

// GlobalTableFromTopic reads topic as a global table: a record sets its
// key's value, a tombstone deletes it, a record with a null key is dropped
// and counted ("null-key"). The store is named by Named or Materialized
// (else generated, "<topic>-STATE-STORE-..."); it never logs to a
// changelog (the topic is its changelog) and has no record cache, whatever
// StoreOptions say, and StoreOptions.ChangelogConfig is refused. A row
// keeps its record's own Kafka timestamp, negative or not: as in Kafka
// Streams (GlobalStateUpdateTask), no timestamp extractor applies, and
// Timestamps, WallClockTimestamps and OnInvalidTimestamp are Build errors.
// The global table's nodes form a sub-topology of their own that generates
// no task. Kafka Streams: StreamsBuilder.globalTable, with the same
// generated names.
func GlobalTableFromTopic[K, V any](b *Builder, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...TableSourceOption) GlobalTable[K, V] {
	o := collect(opts)
	spec := b.storeSpec(o, topic, "GlobalTableFromTopic")
	srcName, name := b.newName("KSTREAM-SOURCE"), b.newName("KTABLE-SOURCE")
	if o.name != "" {
		srcName, name = o.name+"-source", o.name
	}
	if keys == nil || values == nil {
		b.fail(srcName, "global table source of %s needs a key and a value serde", topic)
	}
	if o.store != nil && len(o.store.ChangelogConfig) > 0 {
		b.errs = append(b.errs, &topology.BuildError{Node: name, Store: spec.Name,
			Msg: "a global store has no changelog (its topic is restored instead): ChangelogConfig does not apply"})
	}
	if o.timestamps != nil || o.onInvalid != FailOnInvalidTimestamp {
		b.fail(srcName, "a global table's records keep their own timestamps: Timestamps, WallClockTimestamps and OnInvalidTimestamp do not apply (Kafka Streams applies no timestamp extractor to a global table)")
	}
	// Kafka Streams disables logging of a global store explicitly; the
	// record cache is left out so that tasks read the store while the
	// global reader writes it.
	spec.DisableLogging, spec.DisableCaching = true, true
	spec.Serdes = topology.NewStoreSerdes(keys, values)
	src := stampingSourceNode(b, srcName, []string{topic}, false, keys, values, sourceStamps[K, V]{raw: true})
	src.Global = true
	n := processor(b, name, []string{spec.Name}, func(ctx nodes.Context, next nodes.Node[K, operators.Change[V]]) (nodes.Node[K, V], error) {
		return nodes.TableSource(ctx, name, spec.Name, keys, values, next)
	}, src)
	n.Global = true
	return GlobalTable[K, V]{b: b, keys: keys, values: values, store: spec.Name}
}

// JoinGlobal joins each record of s with the value, in the global table g,
// of the key that key selects from the record, and forwards joiner's
// result with the stream record's key, timestamp and headers. A record
// whose selected key has no row in g is dropped; one for which key selects
// no key (None) is dropped and counted ("null-key"). A tombstone is
// dropped and counted ("null-value") without calling key. The stream key
// may be null: key and joiner get it as None, and the record joins if key
// selects a key that has a row (Kafka Streams 4, KIP-962). Only stream
// records emit: updates of g change what later records meet. s is never
// repartitioned, even if rekeyed: a global table needs no
// co-partitioning. The join node is named by Named, else
// "KSTREAM-LEFTJOIN-<index>": Kafka Streams 4.3 names an inner
// stream-global join with the left join's prefix too. Kafka Streams:
// KStream.join(GlobalKTable, KeyValueMapper, ValueJoinerWithKey).
func JoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], g GlobalTable[GK, GV], key func(k Maybe[K], v V) Maybe[GK], joiner func(k Maybe[K], v V, gv GV) VR, opts ...Option) Stream[K, VR] {
	return joinGlobal(s, g, false, key, func(k Maybe[K], v V, gv Maybe[GV]) VR {
		x, _ := gv.Get()
		return joiner(k, v, x)
	}, collect(opts))
}

// LeftJoinGlobal is JoinGlobal that keeps the records with no row in g:
// joiner gets the global value as None for them, and for the records for
// which key selects no key. A tombstone is still dropped and counted
// ("null-value"). Kafka Streams: KStream.leftJoin(GlobalKTable,
// KeyValueMapper, ValueJoinerWithKey).
func LeftJoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], g GlobalTable[GK, GV], key func(k Maybe[K], v V) Maybe[GK], joiner func(k Maybe[K], v V, gv Maybe[GV]) VR, opts ...Option) Stream[K, VR] {
	return joinGlobal(s, g, true, key, joiner, collect(opts))
}

func joinGlobal[K, V, GK, GV, VR any](s Stream[K, V], g GlobalTable[GK, GV], left bool, key func(Maybe[K], V) Maybe[GK], joiner func(Maybe[K], V, Maybe[GV]) VR, o options) Stream[K, VR] {
	b := s.b
	// Kafka Streams 4.3's KStreamImpl.globalTableJoin generates the name
	// with LEFTJOIN_NAME for the inner join as well.
	name := b.nameOr(o.name, "KSTREAM-LEFTJOIN")
	if g.b == nil {
		b.fail(name, "the global table joined with is the zero GlobalTable: make it with GlobalTableFromTopic")
		return Stream[K, VR]{b: b, node: s.node, keys: s.keys, rekeyed: s.rekeyed}
	}
	if g.b != b {
		b.fail(name, "the global table %s belongs to another Builder", g.store)
	}
	if key == nil || joiner == nil {
		b.fail(name, "stream-global join needs a key selector and a joiner")
	}
	store, gkeys, gvalues := g.store, g.keys, g.values
	n := processor(b, name, nil, func(ctx nodes.Context, next nodes.Node[K, VR]) (nodes.Node[K, V], error) {
		return nodes.GlobalTableJoin(ctx, name, store, gkeys, gvalues, left, key, joiner, next)
	}, s.node)
	n.GlobalStores = []string{store}
	if left {
		// A left join takes null-key records: the repartition topics
		// upstream pass them on (Kafka Streams' doGlobalTableJoin labels it
		// NULL_KEY_RELAXED_JOIN).
		b.relaxNullKeyJoin(n)
	}
	return Stream[K, VR]{b: b, node: n, keys: s.keys, values: carry[V, VR](s.values), rekeyed: s.rekeyed}
}
