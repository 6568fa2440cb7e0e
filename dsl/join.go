package dsl

import (
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/topology"
)

// JoinTable joins each record of s with the current value of its key in
// the table t and forwards joiner's result, with the stream record's key,
// timestamp and headers; a record whose key has no row in t is dropped.
// Only stream records emit: an update of t changes what later records
// meet, and a delete in t removes the key. A record with a null key or
// value is dropped and counted ("null-key", "null-value"). t need not be
// materialized: a table that is not (a Filter or TableMapValues without
// Materialized, a table join's result) is read through a getter chained
// to the nearest materialized table above it, whose store the join's node
// is connected to, as in Kafka Streams (a windowed aggregation's table is
// read from its window or session store by the window of the key). s and
// t run in one task and their topics must be co-partitioned; if s was
// rekeyed, it is first repartitioned through "<name>-repartition" (name:
// the Named option, else the generated name of s's last node). Kafka
// Streams: KStream.join(KTable).
//
// A versioned table (StoreOptions.HistoryRetention) is read as of the
// stream record's timestamp, not its latest value. With JoinGrace, stream
// records wait in a buffer until the table has seen the updates of their
// time (see JoinGrace).
func JoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(k K, v V, t VT) VR, opts ...TableJoinOption) Stream[K, VR] {
	return joinTable(s, t, false, func(k Maybe[K], v V, tv Maybe[VT]) VR {
		kk, _ := k.Get()
		tt, _ := tv.Get()
		return joiner(kk, v, tt)
	}, collect(opts))
}

// LeftJoinTable is JoinTable that keeps the stream records with no row in
// t: joiner gets the table's value as None for them. As in Kafka Streams
// 4, a record with a null key and a value is not dropped: it is joined
// with None and forwarded with its null key, and joiner gets the key as
// None; a tombstone is dropped and counted ("null-value"). Kafka Streams:
// KStream.leftJoin(KTable).
func LeftJoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(k Maybe[K], v V, t Maybe[VT]) VR, opts ...TableJoinOption) Stream[K, VR] {
	return joinTable(s, t, true, joiner, collect(opts))
}

func joinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], left bool, joiner func(Maybe[K], V, Maybe[VT]) VR, o options) Stream[K, VR] {
	b := s.b
	if s.rekeyed {
		s = s.repartitionForJoin(o.name, "")
	}
	prefix := "KSTREAM-JOIN"
	if left {
		prefix = "KSTREAM-LEFTJOIN"
	}
	name := b.nameOr(o.name, prefix)
	view := t.view
	if view.open == nil {
		b.fail(name, "the table of node %s has no value getter a join can read it through", t.node.Name)
	}
	stores := view.stores
	var grace nodes.JoinGrace[K, V]
	if o.joinGrace != nil {
		grace = nodes.JoinGrace[K, V]{Store: name + "-Buffer", Grace: o.joinGrace.Milliseconds(), Keys: s.keys, Values: s.values}
		switch {
		case *o.joinGrace < 0:
			b.fail(name, "JoinGrace(%v) is negative", *o.joinGrace)
		case *o.joinGrace%time.Millisecond != 0:
			b.fail(name, "JoinGrace(%v) must be whole milliseconds", *o.joinGrace)
		case !t.versioned:
			// Kafka Streams: "KTable must be versioned to use a grace
			// period in a stream table join" (KStreamImpl, or
			// StreamTableJoinNode when the versioning is inherited).
			b.fail(name, "JoinGrace(%v) needs a versioned table: the table of node %s is not versioned (materialize it with StoreOptions.HistoryRetention)", *o.joinGrace, t.node.Name)
		case b.graceBeyondHistory(view.stores, *o.joinGrace) != "":
			// Kafka Streams (StreamTableJoinNode): "History retention
			// must be at least grace period."
			b.fail(name, "JoinGrace(%v) is longer than the history retention of the table's versioned store %s: the history retention must be at least the grace period",
				*o.joinGrace, b.graceBeyondHistory(view.stores, *o.joinGrace))
		case s.keys == nil || s.values == nil:
			b.fail(name, "JoinGrace(%v) needs the stream's key and value serdes for the join buffer %s", *o.joinGrace, grace.Store)
		}
		// Kafka Streams' RocksDBTimeOrderedKeyValueBuffer: logged, never
		// cached, compacted changelog "<join>-Buffer-changelog".
		b.addStore(&topology.StoreSpec{Name: grace.Store, Kind: topology.KeyValue, DisableCaching: true, Generated: o.name == ""})
		stores = append([]string{grace.Store}, stores...)
	}
	// A stream-table join's output is a stream: it never retracts a row
	// it read, so it reads the table as Kafka Streams does
	// (nodes.PlainReads).
	open := func(ctx nodes.Context) (nodes.ValueGetter[K, VT], error) { return view.open(nodes.PlainReads(ctx)) }
	n := processor(b, name, stores, func(ctx nodes.Context, next nodes.Node[K, VR]) (nodes.Node[K, V], error) {
		if grace.Store != "" {
			return nodes.StreamTableJoinWithGrace(ctx, name, open, left, joiner, grace, next)
		}
		return nodes.StreamTableJoin(ctx, name, open, left, joiner, next)
	}, s.node)
	if left {
		b.relaxNullKeyJoin(n)
	}
	return Stream[K, VR]{b: b, node: n, keys: s.keys, values: carry[V, VR](s.values)}
}

// graceBeyondHistory returns the first of stores whose history retention
// is shorter than grace ("" if none), or that is not versioned.
func (b *Builder) graceBeyondHistory(stores []string, grace time.Duration) string {
	for _, name := range stores {
		for _, spec := range b.stores {
			if spec.Name == name && (spec.Kind != topology.Versioned || spec.HistoryRetention < grace) {
				return name
			}
		}
	}
	return ""
}

// versionedStore reports whether the store named name is a versioned one.
func (b *Builder) versionedStore(name string) bool {
	for _, spec := range b.stores {
		if spec.Name == name {
			return spec.Kind == topology.Versioned
		}
	}
	return false
}
