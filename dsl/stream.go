package dsl

import (
	"regexp"
	"strconv"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// Stream is a typed stream of records: Kafka Streams' KStream. Stream values
// are immutable handles; each operation returns a new one.
//
// A stream carries the serdes of its key and value when they are known
// (from its source, or set with WithKeySerde and WithValueSerde): the
// operations that write records to a topic (To, Repartition, a grouping
// that repartitions) use them unless given others, and Build reports the
// node that lacks one.
type Stream[K, V any] struct {
	b      *Builder
	node   *topology.Node
	keys   serde.Serde[K]
	values serde.Serde[V]
	// rekeyed is set after an operation that may change keys; a stateful
	// operation downstream then repartitions first.
	rekeyed bool
}

// FromTopics reads records of the given topics as one stream. Records are
// stamped with their Kafka timestamps unless Timestamps or
// WallClockTimestamps says otherwise; OnInvalidTimestamp sets what happens
// to a negative one. Kafka Streams: StreamsBuilder.stream(Collection<String>).
func FromTopics[K, V any](b *Builder, topics []string, keys serde.Serde[K], values serde.Serde[V], opts ...SourceOption) Stream[K, V] {
	o := collect(opts)
	name := b.nameOr(o.name, "KSTREAM-SOURCE")
	if keys == nil || values == nil {
		b.fail(name, "source of %v needs a key and a value serde", topics)
	}
	n := stampingSourceNode(b, name, topics, false, keys, values, sourceTimestamps[K, V](b, name, o))
	return Stream[K, V]{b: b, node: n, keys: keys, values: values}
}

// FromTopic reads the records of topic as a stream, as FromTopics. Kafka
// Streams: StreamsBuilder.stream(topic, Consumed.with(keySerde, valueSerde)).
func FromTopic[K, V any](b *Builder, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...SourceOption) Stream[K, V] {
	return FromTopics(b, []string{topic}, keys, values, opts...)
}

// sourceNode adds the source of an internal topic (a repartition topic,
// a foreign-key join's subscription or response topic): it stamps records
// with their Kafka timestamps, which the sink upstream wrote as stamped
// there, never negative. A negative one was written by something else: it
// is skipped and counted as "invalid-timestamp", not fatal to the task
// (Kafka Streams applies its default.timestamp.extractor,
// FailOnInvalidTimestamp unless configured, and fails; Sluice has no
// application-wide extractor, and a foreign record in an internal topic
// must not stop the application at every restart).
func sourceNode[K, V any](b *Builder, name string, topics []string, internal bool, keys serde.Serde[K], values serde.Serde[V]) *topology.Node {
	return stampingSourceNode(b, name, topics, internal, keys, values, sourceStamps[K, V]{onInvalid: nodes.SkipInvalidTimestamp})
}

// stampingSourceNode adds a source that stamps records as st says.
func stampingSourceNode[K, V any](b *Builder, name string, topics []string, internal bool, keys serde.Serde[K], values serde.Serde[V], st sourceStamps[K, V]) *topology.Node {
	n := &topology.Node{Name: name, Kind: topology.Source, Topics: topics, Internal: internal}
	n.New = func(ctx nodes.Context, children []any) (any, error) {
		next, err := nodes.Fanout[K, V](children)
		if err != nil {
			return nil, err
		}
		return nodes.Source(ctx, name, keys, values, st.forTask(ctx), next), nil
	}
	return b.add(n)
}

func (s Stream[K, V]) derive(n *topology.Node) Stream[K, V] {
	s.node = n
	return s
}

// WithKeySerde returns the stream with its key serde set.
func (s Stream[K, V]) WithKeySerde(keys serde.Serde[K]) Stream[K, V] {
	s.keys = keys
	return s
}

// WithValueSerde returns the stream with its value serde set.
func (s Stream[K, V]) WithValueSerde(values serde.Serde[V]) Stream[K, V] {
	s.values = values
	return s
}

// Filter keeps the records for which pred returns true. A record with a
// null key or value is kept without calling pred (FilterNullable decides
// on those too). Kafka Streams: KStream.filter.
func (s Stream[K, V]) Filter(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.filter(pred, true, opts)
}

// FilterNot drops the records for which pred returns true. A record with
// a null key or value is kept without calling pred. Kafka Streams:
// KStream.filterNot.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.filter(pred, false, opts)
}

func (s Stream[K, V]) filter(pred func(K, V) bool, keep bool, opts []Option) Stream[K, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-FILTER")
	return s.derive(stateless(s.b, name, func(next nodes.Node[K, V]) nodes.Node[K, V] {
		return nodes.Filter(pred, keep, next)
	}, s.node))
}

// FilterNullable keeps the records for which pred returns true; pred sees
// the key and value as Maybe, absent for a Kafka null, so it decides on
// tombstones and null keys too.
func (s Stream[K, V]) FilterNullable(pred func(k Maybe[K], v Maybe[V]) bool, opts ...Option) Stream[K, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-FILTER")
	return s.derive(stateless(s.b, name, func(next nodes.Node[K, V]) nodes.Node[K, V] {
		return nodes.FilterNullable(pred, true, next)
	}, s.node))
}

// Peek calls f for each record and passes the record on. f is not called
// for a record with a null key or value, which is passed on all the same
// (PeekNullable sees those too). Kafka Streams: KStream.peek.
func (s Stream[K, V]) Peek(f func(K, V), opts ...Option) Stream[K, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-PEEK")
	return s.derive(stateless(s.b, name, func(next nodes.Node[K, V]) nodes.Node[K, V] {
		return nodes.Peek(f, next)
	}, s.node))
}

// PeekNullable calls f for each record, with its key and value as Maybe
// (absent for a Kafka null), and passes the record on.
func (s Stream[K, V]) PeekNullable(f func(k Maybe[K], v Maybe[V]), opts ...Option) Stream[K, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-PEEK")
	return s.derive(stateless(s.b, name, func(next nodes.Node[K, V]) nodes.Node[K, V] {
		return nodes.PeekNullable(f, next)
	}, s.node))
}

// Foreach calls f for each record; it ends the stream. f is not called for
// a record with a null key or value (use PeekNullable to see those).
// Kafka Streams: KStream.foreach.
func (s Stream[K, V]) Foreach(f func(K, V), opts ...Option) {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-FOREACH")
	stateless(s.b, name, func(next nodes.Node[K, V]) nodes.Node[K, V] {
		return nodes.Peek(f, next)
	}, s.node)
}

// Merge returns a stream of the records of s and other, each partition's
// records in their order; nulls pass unchanged. Both must come from the
// same Builder.
func (s Stream[K, V]) Merge(other Stream[K, V], opts ...Option) Stream[K, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-MERGE")
	if other.b != s.b {
		s.b.fail(name, "merged streams come from different builders")
		return s
	}
	out := s.derive(stateless(s.b, name, func(next nodes.Node[K, V]) nodes.Node[K, V] { return next }, s.node, other.node))
	out.rekeyed = s.rekeyed || other.rekeyed
	if out.keys == nil {
		out.keys = other.keys
	}
	if out.values == nil {
		out.values = other.values
	}
	return out
}

// To writes the records to topic with the given serdes (nil: the stream's).
// A null key or value is written as a Kafka null, without the serde.
// Kafka Streams: KStream.to(topic, Produced.with(keySerde, valueSerde)).
func (s Stream[K, V]) To(topic string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) {
	s.to(topic, nil, keys, values, opts)
}

// ToFunc writes each record to the topic extract returns for it (Kafka
// Streams' TopicNameExtractor). extract sees the key and value as Maybe,
// absent for a Kafka null, which is written as a null. The topics must
// exist.
func (s Stream[K, V]) ToFunc(extract func(k Maybe[K], v Maybe[V]) string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) {
	s.to("", extract, keys, values, opts)
}

func (s Stream[K, V]) to(topic string, extract func(Maybe[K], Maybe[V]) string, keys serde.Serde[K], values serde.Serde[V], opts []Option) {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-SINK")
	keys, values = s.serdes(name, keys, values)
	var topics []string
	if extract == nil {
		if topic == "" {
			s.b.fail(name, "sink has an empty topic name")
		}
		topics = []string{topic}
	}
	n := &topology.Node{Name: name, Kind: topology.Sink, Topics: topics}
	n.New = func(ctx nodes.Context, _ []any) (any, error) {
		return nodes.Sink(ctx, name, topic, extract, keys, values), nil
	}
	s.b.add(n, s.node)
}

// serdes returns the given serdes, or the stream's where nil, and records a
// build error naming node when one is missing.
func (s Stream[K, V]) serdes(node string, keys serde.Serde[K], values serde.Serde[V]) (serde.Serde[K], serde.Serde[V]) {
	if keys == nil {
		keys = s.keys
	}
	if values == nil {
		values = s.values
	}
	if keys == nil {
		s.b.fail(node, "missing key serde: the key type was changed upstream; pass a serde or set it with WithKeySerde")
	}
	if values == nil {
		s.b.fail(node, "missing value serde: the value type was changed upstream; pass a serde or set it with WithValueSerde")
	}
	return keys, values
}

// Repartition writes the stream through an internal topic,
// "<application.id>-<name>-repartition", so that records are partitioned by
// their current key, and reads it back; records with a null key are
// dropped, unless a left or outer join (LeftJoin, OuterJoin,
// LeftJoinTable, LeftJoinGlobal) is downstream, which gets them as Kafka
// Streams 4 does.
// Kafka Streams: KStream.repartition.
func (s Stream[K, V]) Repartition(opts ...RepartitionOption) Stream[K, V] {
	o := collect(opts)
	base := o.name
	if base == "" {
		base = s.b.newName("KSTREAM-REPARTITION")
	}
	return s.repartitionAs(base, o.partitions)
}

// generatedName matches the names newName makes, "KSTREAM-...-0123456789".
var generatedName = regexp.MustCompile(`^KSTREAM.*-[0-9]{10}$`)

// repartitionNames returns the names of the sink, null-key filter and
// source of the repartition topic "<base>-repartition". As in Kafka Streams
// they use up three indices, and are generated names when base is one.
func (b *Builder) repartitionNames(base string) (topic, sink, filter, source string) {
	topic = base + "-repartition"
	sink, filter, source = b.newName("KSTREAM-SINK"), b.newName("KSTREAM-FILTER"), b.newName("KSTREAM-SOURCE")
	if !generatedName.MatchString(base) {
		sink, filter, source = topic+"-sink", topic+"-filter", topic+"-source"
	}
	return topic, sink, filter, source
}

// repartitionAs inserts filter → sink → topic "<base>-repartition" →
// source: the filter drops records with a null key, unless a left or
// outer join is downstream (see Builder.relaxNullKeyFilters).
func (s Stream[K, V]) repartitionAs(base string, partitions int32) Stream[K, V] {
	topic, sinkName, filterName, sourceName := s.b.repartitionNames(base)
	keepNullKeys := new(bool)
	filter := processor(s.b, filterName, nil, func(ctx nodes.Context, next nodes.Node[K, V]) (nodes.Node[K, V], error) {
		if *keepNullKeys {
			return next, nil
		}
		return nodes.DropNullKeys(ctx, filterName, next), nil
	}, s.node)
	s.b.nullKeyFilters = append(s.b.nullKeyFilters, nullKeyFilter{node: filter, keep: keepNullKeys})
	return s.throughTopic(topic, sinkName, sourceName, partitions, filter)
}

// throughTopic adds sink → internal topic → source below parent.
func (s Stream[K, V]) throughTopic(topic, sinkName, sourceName string, partitions int32, parent *topology.Node) Stream[K, V] {
	keys, values := s.serdes(sinkName, nil, nil)
	sink := &topology.Node{Name: sinkName, Kind: topology.Sink, Topics: []string{topic}, Internal: true, Partitions: partitions}
	sink.New = func(ctx nodes.Context, _ []any) (any, error) {
		return nodes.RepartitionSink(ctx, sinkName, ctx.InternalTopic(topic), keys, values), nil
	}
	s.b.add(sink, parent)
	src := sourceNode(s.b, sourceName, []string{topic}, true, keys, values)
	return Stream[K, V]{b: s.b, node: src, keys: keys, values: values}
}

// Process runs a processor written with the Processor API on every record;
// supplier is called once per task. The processor sees every record,
// nulls included: a record's NullKey and Tombstone flags (or MaybeKey and
// MaybeValue) say whether its key or value is a Kafka null. Stores the processor uses must be
// declared with AddKeyValueStore and connected with ConnectStores. The
// output may have new keys: a stateful operation downstream repartitions.
// Kafka Streams: KStream.process.
func Process[K, V, K2, V2 any](s Stream[K, V], supplier func() operators.Processor[K, V, K2, V2], opts ...ProcessOption) Stream[K2, V2] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = s.b.newName("KSTREAM-PROCESSOR")
	}
	n := processor(s.b, name, o.stores, func(ctx nodes.Context, next nodes.Node[K2, V2]) (nodes.Node[K, V], error) {
		return nodes.UserProcessor(ctx, name, supplier(), next)
	}, s.node)
	return Stream[K2, V2]{b: s.b, node: n, keys: carry[K, K2](s.keys), values: carry[V, V2](s.values), rekeyed: true}
}

// carry returns s as a serde of U when U is T (an operation that kept the
// type keeps the serde), else nil.
func carry[T, U any](s serde.Serde[T]) serde.Serde[U] {
	u, _ := any(s).(serde.Serde[U])
	return u
}

// Map replaces each record's key and value; the stream is rekeyed. Set the
// serdes of the new types with WithKeySerde and WithValueSerde where a
// later operation needs them. A record with a null key or value is
// dropped without calling f and counted ("null-key", "null-value"); use
// MapNullable to map those. Kafka Streams: KStream.map.
func Map[K, V, K2, V2 any](s Stream[K, V], f func(K, V) (K2, V2), opts ...Option) Stream[K2, V2] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-MAP")
	n := processor(s.b, name, nil, func(ctx nodes.Context, next nodes.Node[K2, V2]) (nodes.Node[K, V], error) {
		return nodes.Map(ctx, name, f, next), nil
	}, s.node)
	return Stream[K2, V2]{b: s.b, node: n, keys: carry[K, K2](s.keys), values: carry[V, V2](s.values), rekeyed: true}
}

// MapNullable replaces each record's key and value, with f seeing and
// returning them as Maybe: absent stands for a Kafka null both ways, so f
// maps tombstones and null keys, and can return them. The stream is
// rekeyed.
func MapNullable[K, V, K2, V2 any](s Stream[K, V], f func(k Maybe[K], v Maybe[V]) (Maybe[K2], Maybe[V2]), opts ...Option) Stream[K2, V2] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-MAP")
	n := stateless(s.b, name, func(next nodes.Node[K2, V2]) nodes.Node[K, V] { return nodes.MapNullable(f, next) }, s.node)
	return Stream[K2, V2]{b: s.b, node: n, keys: carry[K, K2](s.keys), values: carry[V, V2](s.values), rekeyed: true}
}

// MapValues replaces each record's value and keeps its key (no
// repartitioning needed downstream). A tombstone stays a tombstone: f is
// not called for it (MapValuesNullable maps those too). A null key with a
// value is mapped and stays null. Kafka Streams: KStream.mapValues.
func MapValues[K, V, V2 any](s Stream[K, V], f func(V) V2, opts ...Option) Stream[K, V2] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-MAPVALUES")
	n := stateless(s.b, name, func(next nodes.Node[K, V2]) nodes.Node[K, V] { return nodes.MapValues(f, next) }, s.node)
	return Stream[K, V2]{b: s.b, node: n, keys: s.keys, values: carry[V, V2](s.values), rekeyed: s.rekeyed}
}

// MapValuesNullable replaces each record's value and keeps its key; f sees
// and returns the value as Maybe, absent for a tombstone, so it can turn a
// tombstone into a value or a value into a tombstone.
func MapValuesNullable[K, V, V2 any](s Stream[K, V], f func(v Maybe[V]) Maybe[V2], opts ...Option) Stream[K, V2] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-MAPVALUES")
	g := func(k Maybe[K], v Maybe[V]) (Maybe[K], Maybe[V2]) { return k, f(v) }
	n := stateless(s.b, name, func(next nodes.Node[K, V2]) nodes.Node[K, V] { return nodes.MapNullable(g, next) }, s.node)
	return Stream[K, V2]{b: s.b, node: n, keys: s.keys, values: carry[V, V2](s.values), rekeyed: s.rekeyed}
}

// SelectKey replaces each record's key; the stream is rekeyed. A record
// with a null key or value is dropped without calling f and counted
// ("null-key", "null-value"); to key the records of a topic written
// without keys, use SelectKeyNullable. Kafka Streams: KStream.selectKey.
func SelectKey[K, V, K2 any](s Stream[K, V], f func(K, V) K2, opts ...Option) Stream[K2, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-KEY-SELECT")
	n := processor(s.b, name, nil, func(ctx nodes.Context, next nodes.Node[K2, V]) (nodes.Node[K, V], error) {
		return nodes.SelectKey(ctx, name, f, next), nil
	}, s.node)
	return Stream[K2, V]{b: s.b, node: n, keys: carry[K, K2](s.keys), values: s.values, rekeyed: true}
}

// SelectKeyNullable replaces each record's key with what f returns; f sees
// the key and value as Maybe (absent for a Kafka null) and returns an
// absent key for a null key. The value, null or not, is kept. The stream
// is rekeyed.
func SelectKeyNullable[K, V, K2 any](s Stream[K, V], f func(k Maybe[K], v Maybe[V]) Maybe[K2], opts ...Option) Stream[K2, V] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-KEY-SELECT")
	g := func(k Maybe[K], v Maybe[V]) (Maybe[K2], Maybe[V]) { return f(k, v), v }
	n := stateless(s.b, name, func(next nodes.Node[K2, V]) nodes.Node[K, V] { return nodes.MapNullable(g, next) }, s.node)
	return Stream[K2, V]{b: s.b, node: n, keys: carry[K, K2](s.keys), values: s.values, rekeyed: true}
}

// FlatMap replaces each record with the records f emits; the stream is
// rekeyed. A record with a null key or value is dropped without calling f
// and counted ("null-key", "null-value"). Kafka Streams: KStream.flatMap.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], f func(k K, v V, emit func(K2, V2)), opts ...Option) Stream[K2, V2] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-FLATMAP")
	n := processor(s.b, name, nil, func(ctx nodes.Context, next nodes.Node[K2, V2]) (nodes.Node[K, V], error) {
		return nodes.FlatMap(ctx, name, f, next), nil
	}, s.node)
	return Stream[K2, V2]{b: s.b, node: n, keys: carry[K, K2](s.keys), values: carry[V, V2](s.values), rekeyed: true}
}

// FlatMapValues replaces each record with one record per value f emits,
// with the record's key. A tombstone is passed on as one tombstone without
// calling f; a null key with a value is mapped and stays null. Kafka
// Streams: KStream.flatMapValues.
func FlatMapValues[K, V, V2 any](s Stream[K, V], f func(v V, emit func(V2)), opts ...Option) Stream[K, V2] {
	name := s.b.nameOr(collect(opts).name, "KSTREAM-FLATMAPVALUES")
	n := stateless(s.b, name, func(next nodes.Node[K, V2]) nodes.Node[K, V] { return nodes.FlatMapValues(f, next) }, s.node)
	return Stream[K, V2]{b: s.b, node: n, keys: s.keys, values: carry[V, V2](s.values), rekeyed: s.rekeyed}
}

// Splitter routes the records of a stream to named branches: Kafka
// Streams' BranchedKStream. Each record goes to the first branch whose
// predicate it satisfies.
type Splitter[K, V any] struct {
	s      Stream[K, V]
	prefix string
	node   *topology.Node
	preds  []func(K, V) bool
	out    map[string]Stream[K, V]
	done   bool
}

// Split starts splitting the stream into branches. With Named(prefix), the
// branches are named prefix+branch name, as in Kafka Streams.
func (s Stream[K, V]) Split(opts ...Option) *Splitter[K, V] {
	o := collect(opts)
	name := s.b.nameOr(o.name, "KSTREAM-BRANCH")
	sp := &Splitter[K, V]{s: s, prefix: name, out: map[string]Stream[K, V]{}}
	sp.node = &topology.Node{Name: name, Kind: topology.Processor}
	sp.node.New = func(ctx nodes.Context, children []any) (any, error) {
		branches := make([]nodes.Node[K, V], len(children))
		for i, c := range children {
			n, err := nodes.Fanout[K, V]([]any{c})
			if err != nil {
				return nil, err
			}
			branches[i] = n
		}
		return nodes.Branch(ctx, name, sp.preds, branches), nil
	}
	s.b.add(sp.node, s.node)
	return sp
}

// Branch adds a branch of the records for which pred holds (and no earlier
// branch's predicate did). Predicates are not called for a record with a
// null key or value: it goes to the default branch, or is dropped and
// counted ("null-key", "null-value") without one. The branch is named the split's prefix plus
// name; an empty name means the branch's 1-based position.
func (sp *Splitter[K, V]) Branch(name string, pred func(K, V) bool) *Splitter[K, V] {
	if pred == nil {
		sp.s.b.fail(sp.node.Name, "branch %q has a nil predicate", name)
		return sp
	}
	if name == "" {
		name = strconv.Itoa(len(sp.preds) + 1)
	}
	sp.branch(name, pred)
	return sp
}

func (sp *Splitter[K, V]) branch(name string, pred func(K, V) bool) {
	if sp.done {
		sp.s.b.fail(sp.node.Name, "branch %q added after the split was ended", name)
		return
	}
	full := sp.prefix + name
	if _, dup := sp.out[full]; dup {
		sp.s.b.fail(sp.node.Name, "branch %q is defined twice", name)
		return
	}
	sp.s.b.newName(full) // uses up an index, as in Kafka Streams
	n := stateless(sp.s.b, full, func(next nodes.Node[K, V]) nodes.Node[K, V] { return next }, sp.node)
	sp.preds = append(sp.preds, pred)
	sp.out[full] = sp.s.derive(n)
}

// DefaultBranch ends the split with a branch of the records no predicate
// accepted, named the prefix plus name ("0" if name is empty), and returns
// the branches by name.
func (sp *Splitter[K, V]) DefaultBranch(name string) map[string]Stream[K, V] {
	if name == "" {
		name = "0"
	}
	sp.branch(name, nil)
	sp.done = true
	return sp.out
}

// NoDefaultBranch ends the split; records no predicate accepts are dropped.
// It returns the branches by name (prefix + branch name).
func (sp *Splitter[K, V]) NoDefaultBranch() map[string]Stream[K, V] {
	sp.done = true
	return sp.out
}
