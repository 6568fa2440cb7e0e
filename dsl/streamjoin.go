package dsl

import (
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// JoinOption configures a stream-stream join (Join, LeftJoin, OuterJoin):
// Named, and StreamJoined for its stores.
type JoinOption interface {
	apply(*options)
	joinOperation()
}

func (NameOption) joinOperation() {}

// StreamJoinOptions configure the stores of a stream-stream join. The zero
// value is Kafka Streams' default: persistent (Pebble) stores with
// generated names, logged to changelog topics, never cached. Kafka
// Streams: StreamJoined.
type StreamJoinOptions struct {
	// StoreName is the base of the stores' names: the window stores are
	// "<StoreName>-this-join-store" and "<StoreName>-other-join-store"
	// ("-outer-this-join-store" for the left input of an outer join,
	// "-outer-other-join-store" for the right input of a left or outer
	// join), the shared store of a left or outer join
	// "<StoreName>-left-shared-join-store" or
	// "<StoreName>-outer-shared-join-store". Their changelogs follow:
	// "<store>-changelog". Empty means generated names, from the join
	// nodes' names ("KSTREAM-JOINTHIS-0000000004-store", ...; Named does
	// not name the stores, in Kafka Streams neither). Kafka Streams:
	// StreamJoined.withStoreName.
	StoreName string
	// ThisStoreName and OtherStoreName, if set, are the exact names of the
	// window store of the left (this) and of the right (other) input; they
	// must differ. The shared store is then named after ThisStoreName
	// ("<ThisStoreName>-left-shared-join-store", ...). Kafka Streams names
	// the stores so when given store suppliers of these names
	// (StreamJoined.withThisStoreSupplier, withOtherStoreSupplier); unlike
	// Kafka Streams, which logs a supplier's store whatever StreamJoined's
	// logging settings say (and with compact,delete), Sluice applies
	// InMemory, DisableLogging and ChangelogConfig to named stores as to
	// the others.
	ThisStoreName, OtherStoreName string
	// InMemory keeps the stores in memory (they are still restored from
	// their changelogs). Kafka Streams: in-memory store suppliers. Either
	// way, each of the two window stores keeps the live windows of the
	// keys it has fetched in a cache of up to 4 MiB in each task, on top of
	// the record cache's budget, which its own writes keep current
	// (docs/state.md).
	InMemory bool
	// DisableLogging: no changelog topics; the stores do not survive the
	// task moving. Kafka Streams: StreamJoined.withLoggingDisabled.
	DisableLogging bool
	// ChangelogConfig overrides configs of the changelog topics
	// (StreamJoined.withLoggingEnabled(config)). The window stores'
	// changelogs are created with cleanup.policy=delete whatever it says,
	// as Kafka Streams' are: they keep duplicates, which compaction would
	// lose.
	ChangelogConfig map[string]string
}

// StreamJoinedOption is the option StreamJoined returns.
type StreamJoinedOption struct{ o StreamJoinOptions }

func (s StreamJoinedOption) apply(o *options) { j := s.o; o.streamJoined = &j }
func (StreamJoinedOption) joinOperation()     {}

// StreamJoined sets the stores of a stream-stream join. Kafka Streams:
// StreamJoined.
func StreamJoined(o StreamJoinOptions) StreamJoinedOption { return StreamJoinedOption{o: o} }

// Join joins each record of s with the records of other that have the
// same key and a timestamp within the join windows w: a record of s at t
// meets the records of other in [t-w.Before, t+w.After], a record of other
// at t those of s in [t-w.After, t+w.Before], bounds included. Each pair
// is joined once, when its later record arrives, and forwarded with the
// later of the two timestamps and the headers of the arriving record;
// duplicates are all kept and all joined. Records with a null key or
// value are dropped and counted ("null-key", "null-value"). Each input is
// kept in a window store for w.Before + w.After + w.Grace (its changelog:
// cleanup.policy=delete); a record too old for its store (stream time
// past its timestamp plus that retention) still joins what the other store
// holds, is not stored, and is counted as dropped ("late") by its window
// node. Both inputs' key and value serdes must be known (Build fails
// naming the join otherwise), and so must w be valid (window.Join.Validate).
// s and other run in one task and their topics must be co-partitioned; an
// input that was rekeyed is first repartitioned through
// "<name>-left-repartition" / "<name>-right-repartition" (name: the Named
// option) or "<its last node>-repartition". Joining a stream with itself
// works as any other join: each record meets itself. Kafka Streams:
// KStream.join(KStream, ValueJoinerWithKey, JoinWindows, StreamJoined).
func Join[K, V, VO, VR any](s Stream[K, V], other Stream[K, VO], joiner func(k K, v V, o VO) VR, w window.Join, opts ...JoinOption) Stream[K, VR] {
	return streamJoin(s, other, false, false, func(k Maybe[K], v Maybe[V], o Maybe[VO]) VR {
		kk, _ := k.Get() // the inner join drops null keys
		vv, _ := v.Get()
		oo, _ := o.Get()
		return joiner(kk, vv, oo)
	}, w, collect(opts))
}

// LeftJoin is Join that also emits each record of s that meets no record
// of other, joined with None, once its window has closed: when stream time
// (the largest timestamp either input has brought to the task) passes
// t + w.After + w.Grace. Until then it waits in the join's shared store,
// and a match removes it, so no absent result precedes a match
// (spurious results). The absent results come out when a record at the
// current stream time arrives on either input, before that record's own
// results, ordered by timestamp, then key bytes; each has its own
// timestamp and the arriving record's headers. A record of s that arrives
// after its window has closed and meets nothing is joined with None at
// once. As in Kafka Streams 4, a record of s with a null key and a value
// is not dropped: it is forwarded at once joined with None, its key still
// null (joiner gets the key as None); a record of other with a
// null key is dropped and counted. Kafka Streams: KStream.leftJoin.
func LeftJoin[K, V, VO, VR any](s Stream[K, V], other Stream[K, VO], joiner func(k Maybe[K], v V, o Maybe[VO]) VR, w window.Join, opts ...JoinOption) Stream[K, VR] {
	return streamJoin(s, other, true, false, func(k Maybe[K], v Maybe[V], o Maybe[VO]) VR {
		vv, _ := v.Get()
		return joiner(k, vv, o)
	}, w, collect(opts))
}

// OuterJoin is LeftJoin both ways: the records of other that meet no
// record of s are emitted too, joined with None for s's side, once their
// window has closed (stream time past t + w.Before + w.Grace). At equal
// timestamps the absent results of other's records come before those of
// s's. A null-key record with a value of either input is forwarded at
// once joined with None (joiner gets the key as None; the result's
// key is null). Kafka Streams: KStream.outerJoin.
func OuterJoin[K, V, VO, VR any](s Stream[K, V], other Stream[K, VO], joiner func(k Maybe[K], v Maybe[V], o Maybe[VO]) VR, w window.Join, opts ...JoinOption) Stream[K, VR] {
	return streamJoin(s, other, true, true, joiner, w, collect(opts))
}

// streamJoin adds the nodes and stores of a stream-stream join as Kafka
// Streams' KStreamImpl.doJoin and KStreamImplJoin.join do, with the same
// names and the same use of the builder's index.
func streamJoin[K, V, VO, VR any](s Stream[K, V], other Stream[K, VO], leftOuter, rightOuter bool,
	joiner func(k Maybe[K], v Maybe[V], o Maybe[VO]) VR, w window.Join, o options) Stream[K, VR] {
	b := s.b
	named := o.name
	var sj StreamJoinOptions
	if o.streamJoined != nil {
		sj = *o.streamJoined
	}
	if s.rekeyed {
		s = s.repartitionForJoin(named, "-left")
	}
	if other.rekeyed {
		other = other.repartitionForJoin(named, "-right")
	}
	thisSuffix, otherSuffix := "-this-join", "-other-join"
	thisPrefix, otherPrefix := "KSTREAM-JOINTHIS", "KSTREAM-JOINOTHER"
	if rightOuter {
		thisSuffix, thisPrefix = "-outer-this-join", "KSTREAM-OUTERTHIS"
	}
	if leftOuter {
		otherSuffix, otherPrefix = "-outer-other-join", "KSTREAM-OUTEROTHER"
	}
	// A named join still uses up the indices of the names it does not
	// generate (Kafka Streams' NamedInternal.suffixWithOrElseGet).
	suffixed := func(suffix, prefix string) string {
		gen := b.newName(prefix)
		if named != "" {
			return named + suffix
		}
		return gen
	}
	thisWindowedName := suffixed("-this-windowed", "KSTREAM-WINDOWED")
	otherWindowedName := suffixed("-other-windowed", "KSTREAM-WINDOWED")
	thisGenerated, otherGenerated := b.newName(thisPrefix), b.newName(otherPrefix)
	thisName, otherName := thisGenerated, otherGenerated
	if named != "" {
		thisName, otherName = named+thisSuffix, named+otherSuffix
	}
	mergeName := suffixed("-merge", "KSTREAM-MERGE")

	if other.b != b {
		b.fail(mergeName, "joined streams come from different builders")
		return Stream[K, VR]{b: b, node: s.node, keys: s.keys}
	}
	if err := w.Validate(); err != nil {
		b.fail(mergeName, "join windows: %v", err)
	} else if w.Retention() < time.Millisecond {
		// Kafka Streams builds window stores of retention 0 for these
		// windows, which return no record at all: such a join never joins.
		b.fail(mergeName, "join windows: Before + After + Grace is 0, so the window stores would keep nothing: give the windows a time difference or a grace")
	}
	keys := s.keys
	if keys == nil {
		keys = other.keys
	}
	if keys == nil {
		b.fail(mergeName, "missing key serde for the join's stores: set it with WithKeySerde on either input")
	}
	if s.values == nil {
		b.fail(mergeName, "missing value serde of the left input for the join's stores: set it with WithValueSerde")
	}
	if other.values == nil {
		b.fail(mergeName, "missing value serde of the right input for the join's stores: set it with WithValueSerde")
	}

	// The stores: Kafka Streams' StreamJoinedStoreFactory and
	// OuterStreamJoinStoreFactory.
	windowStore := func(exact, suffix, generated string) *topology.StoreSpec {
		spec := &topology.StoreSpec{Kind: topology.Window, RetainDuplicates: true, DisableCaching: true,
			InMemory: sj.InMemory, DisableLogging: sj.DisableLogging, Retention: w.Retention()}
		switch {
		case exact != "":
			spec.Name = exact
		case sj.StoreName != "":
			spec.Name = sj.StoreName + suffix + "-store"
		default:
			spec.Name, spec.Generated = generated+"-store", true
		}
		spec.ChangelogConfig = map[string]string{}
		for k, v := range sj.ChangelogConfig {
			spec.ChangelogConfig[k] = v
		}
		spec.ChangelogConfig["cleanup.policy"] = "delete"
		return spec
	}
	thisStore := windowStore(sj.ThisStoreName, thisSuffix, thisGenerated)
	otherStore := windowStore(sj.OtherStoreName, otherSuffix, otherGenerated)
	if thisStore.Name == otherStore.Name {
		b.fail(mergeName, "both window stores are named %s: StreamJoinOptions.ThisStoreName and OtherStoreName must differ", thisStore.Name)
	}
	b.addStore(thisStore)
	b.addStore(otherStore)
	var shared *topology.StoreSpec
	var trackers *nodes.JoinTimeTrackers
	if leftOuter {
		suffix := "-left-shared-join"
		if rightOuter {
			suffix = "-outer-shared-join"
		}
		shared = &topology.StoreSpec{Kind: topology.KeyValue, DisableCaching: true,
			InMemory: sj.InMemory, DisableLogging: sj.DisableLogging, ChangelogConfig: sj.ChangelogConfig}
		switch {
		case sj.ThisStoreName != "":
			shared.Name = sj.ThisStoreName + suffix + "-store"
		case sj.StoreName != "":
			shared.Name = sj.StoreName + suffix + "-store"
		default:
			shared.Name = "KSTREAM-OUTERSHARED" + thisGenerated[len(thisPrefix):] + "-store"
			shared.Generated = true
		}
		b.addStore(shared)
		trackers = nodes.NewJoinTimeTrackers()
	}

	lvalues, rvalues := s.values, other.values
	thisWindowed := processor(b, thisWindowedName, []string{thisStore.Name}, func(ctx nodes.Context, next nodes.Node[K, V]) (nodes.Node[K, V], error) {
		return nodes.JoinWindow(ctx, thisWindowedName, thisStore.Name, keys, lvalues, next)
	}, s.node)
	otherWindowed := processor(b, otherWindowedName, []string{otherStore.Name}, func(ctx nodes.Context, next nodes.Node[K, VO]) (nodes.Node[K, VO], error) {
		return nodes.JoinWindow(ctx, otherWindowedName, otherStore.Name, keys, rvalues, next)
	}, other.node)

	thisSide := nodes.StreamJoinSide{Node: thisName, Left: true, Outer: leftOuter, OtherStore: otherStore.Name, Trackers: trackers, Windows: w}
	otherSide := nodes.StreamJoinSide{Node: otherName, Outer: rightOuter, OtherStore: thisStore.Name, Trackers: trackers, Windows: w}
	thisStores, otherStores := []string{otherStore.Name}, []string{thisStore.Name}
	if shared != nil {
		thisSide.SharedStore, otherSide.SharedStore = shared.Name, shared.Name
		thisStores, otherStores = append(thisStores, shared.Name), append(otherStores, shared.Name)
	}
	joinThis := processor(b, thisName, thisStores, func(ctx nodes.Context, next nodes.Node[K, VR]) (nodes.Node[K, V], error) {
		return nodes.StreamJoinLeft(ctx, thisSide, keys, lvalues, rvalues, joiner, next)
	}, thisWindowed)
	joinOther := processor(b, otherName, otherStores, func(ctx nodes.Context, next nodes.Node[K, VR]) (nodes.Node[K, VO], error) {
		return nodes.StreamJoinRight(ctx, otherSide, keys, lvalues, rvalues, joiner, next)
	}, otherWindowed)
	if leftOuter {
		// Left and outer joins take null-key records: the repartition
		// topics upstream pass them on.
		b.relaxNullKeyJoin(joinThis)
		b.relaxNullKeyJoin(joinOther)
	}
	merge := stateless(b, mergeName, func(next nodes.Node[K, VR]) nodes.Node[K, VR] { return next }, joinThis, joinOther)
	return Stream[K, VR]{b: b, node: merge, keys: keys}
}

// repartitionForJoin repartitions s for a join named named (or unnamed):
// through "<named><suffix>-repartition", or "<s's node>-repartition". As
// Kafka Streams' KStreamImpl.repartitionForJoin, an unnamed join of a
// stream already repartitioned for a join reads that repartition topic
// again (the new names still use up their indices), and any join records
// the topic it created as the one to reuse.
func (s Stream[K, V]) repartitionForJoin(named, suffix string) Stream[K, V] {
	b := s.b
	base := s.node.Name
	if named != "" {
		base = named + suffix
	}
	if src, ok := b.joinRepartitions[s.node]; ok && base == s.node.Name {
		b.repartitionNames(base)
		return Stream[K, V]{b: b, node: src, keys: s.keys, values: s.values}
	}
	r := s.repartitionAs(base, 0)
	if b.joinRepartitions == nil {
		b.joinRepartitions = map[*topology.Node]*topology.Node{}
	}
	b.joinRepartitions[s.node] = r.node
	return r
}
