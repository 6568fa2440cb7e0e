package dsl

import "time"

// Options. Each operation takes the kind of option that applies to it, so
// that an option given to an operation it does not configure is a compile
// error: Option (Named alone) for the stateless operations, StoreOption
// (Named, Materialized) for those that keep state, SourceOption (Named and
// the timestamp options) for streams read from topics, TableSourceOption
// for tables read from topics, RepartitionOption (Named, Partitions) for
// Repartition and ProcessOption (Named, ConnectStores) for Process. What
// the compiler cannot see (a StoreOptions field the operation has no use
// for, an extractor of the wrong types) is a Build error naming the option
// and the operation.

// Option configures any DSL operation: the options every operation takes
// (Named).
type Option interface {
	apply(*options)
	anyOperation()
}

// StoreOption configures an operation that keeps a state store: the
// aggregations, TableFromTopic, and the table operations that can be
// materialized.
type StoreOption interface {
	apply(*options)
	storeOperation()
}

// SourceOption configures FromTopic and FromTopics.
type SourceOption interface {
	apply(*options)
	sourceOperation()
}

// TableSourceOption configures TableFromTopic: the options of sources and
// of stores.
type TableSourceOption interface {
	apply(*options)
	tableSourceOperation()
}

// RepartitionOption configures Repartition.
type RepartitionOption interface {
	apply(*options)
	repartitionOperation()
}

// ProcessOption configures Process.
type ProcessOption interface {
	apply(*options)
	processOperation()
}

type options struct {
	name       string
	store      *StoreOptions
	partitions int32
	stores     []string
	// timestamps is a source's timestamp extractor: a func(K, V,
	// []operators.Header, int64) int64 from Timestamps, or
	// wallClockTimestamps{}; nil means the records' own timestamps.
	timestamps any
	// onInvalid is a source's invalid-timestamp policy.
	onInvalid InvalidTimestampPolicy
	// streamJoined configures the stores of a stream-stream join.
	streamJoined *StreamJoinOptions
	// joinGrace is a stream-table join's grace period (JoinGrace).
	joinGrace *time.Duration
}

func collect[O interface{ apply(*options) }](opts []O) options {
	var o options
	for _, opt := range opts {
		if any(opt) != nil {
			opt.apply(&o)
		}
	}
	return o
}

// NameOption is the option Named returns; every operation takes it.
type NameOption struct{ name string }

func (n NameOption) apply(o *options)    { o.name = n.name }
func (NameOption) anyOperation()         {}
func (NameOption) storeOperation()       {}
func (NameOption) sourceOperation()      {}
func (NameOption) tableSourceOperation() {}
func (NameOption) repartitionOperation() {}
func (NameOption) processOperation()     {}
func (NameOption) tableJoinOperation()   {}

// Named names an operation: its processor node, and for a stateful one also
// its state store and the internal topics derived from it
// ("<name>-repartition", "<name>-changelog"). Kafka Streams: Named.as,
// and Materialized.as for the store.
func Named(name string) NameOption { return NameOption{name: name} }

// TableJoinOption configures JoinTable and LeftJoinTable: Named and
// JoinGrace.
type TableJoinOption interface {
	apply(*options)
	tableJoinOperation()
}

// JoinGraceOption is the option JoinGrace returns.
type JoinGraceOption struct{ d time.Duration }

func (g JoinGraceOption) apply(o *options)  { d := g.d; o.joinGrace = &d }
func (JoinGraceOption) tableJoinOperation() {}

// JoinGrace gives a stream-table join a grace period on a versioned table
// (StoreOptions.HistoryRetention): each stream record waits in a buffer
// until the join's stream time (the largest timestamp of a stream record
// buffered; table updates do not advance it) minus d reaches its
// timestamp, and is then joined with the table as of that timestamp, so
// table updates that arrive up to d late are seen. Records are released
// in (timestamp, key) order, with their own timestamps and headers; a
// record already older than stream time minus d is joined at once. The
// buffer is a store named "<join>-Buffer", logged to
// "<join>-Buffer-changelog" and restored like any store, so buffered
// records survive a restart. A grace on a table that is not versioned is
// a Build error, as in Kafka Streams. Whole milliseconds. Kafka Streams:
// Joined.withGracePeriod.
func JoinGrace(d time.Duration) JoinGraceOption { return JoinGraceOption{d: d} }

// StoreOptions configure the state store of a stateful operation. The zero
// value is Kafka Streams' default: a persistent (Pebble) store, logged to a
// changelog topic, behind the record cache.
type StoreOptions struct {
	// Name of the store; empty means the Named option's name, or a
	// generated one.
	Name string
	// InMemory keeps the store in memory (Kafka Streams: Stores.inMemoryKeyValueStore).
	InMemory bool
	// DisableLogging: no changelog topic (Materialized.withLoggingDisabled).
	DisableLogging bool
	// DisableCaching: no record cache, every update is forwarded
	// (Materialized.withCachingDisabled). The stores of DSL operations are
	// cached unless it is set.
	DisableCaching bool
	// EnableCaching puts a store added with AddKeyValueStore behind the
	// record cache. Such stores are not cached unless it is set, as Kafka
	// Streams' store builders (StoreBuilder.withCachingEnabled): a
	// processor's writes are logged one by one. It applies to
	// AddKeyValueStore only; elsewhere it is a Build error.
	EnableCaching bool
	// ChangelogConfig overrides configs of the changelog topic
	// (Materialized.withLoggingEnabled(config)).
	ChangelogConfig map[string]string
	// Retention is how long a windowed aggregation keeps a window in its
	// store after the window starts (sessions: after they end), measured
	// against stream time; zero means the least that serves the windows:
	// size + grace (sessions: gap + grace). A shorter retention is an
	// error, and so is a retention for a store that is not windowed. The
	// changelog keeps records a day longer, as Kafka Streams'. Kafka
	// Streams: Materialized.withRetention.
	Retention time.Duration
	// HistoryRetention > 0 materializes the table in a versioned
	// key-value store keeping history that long: a key's older versions
	// stay readable as of their time (stream-table joins read the table as
	// of the stream record's timestamp; JoinGrace), and an update older
	// than the key's latest is kept in the history instead of replacing
	// it, forwarded as an update that is not the latest (which table
	// aggregations and table-table joins skip). Updates older than the
	// history retention (against the largest timestamp the store has seen)
	// are dropped. Whole milliseconds. It applies to TableFromTopic, to
	// Filter, TableMapValues and the table-table joins with Materialized,
	// and to the aggregations that are not windowed (whose results are
	// never out of order); on windowed aggregations, global tables and
	// AddKeyValueStore, and with InMemory, it is a Build error. A versioned store is never cached;
	// its changelog is compacted with min.compaction.lag.ms =
	// HistoryRetention + 1 day. Kafka Streams:
	// Materialized.as(Stores.persistentVersionedKeyValueStore(name, historyRetention)).
	HistoryRetention time.Duration
}

// MaterializedOption is the option Materialized returns.
type MaterializedOption struct{ store StoreOptions }

func (m MaterializedOption) apply(o *options)    { s := m.store; o.store = &s }
func (MaterializedOption) storeOperation()       {}
func (MaterializedOption) tableSourceOperation() {}

// Materialized sets the store of a stateful operation, or makes a table
// operation (Filter, MapValues) keep its result in a store. Kafka Streams:
// Materialized.
func Materialized(s StoreOptions) MaterializedOption { return MaterializedOption{store: s} }

// PartitionsOption is the option Partitions returns.
type PartitionsOption struct{ n int32 }

func (p PartitionsOption) apply(o *options)    { o.partitions = p.n }
func (PartitionsOption) repartitionOperation() {}

// Partitions sets the partition count of the topic created by Repartition;
// the default is the partition count of the input. Kafka Streams:
// Repartitioned.withNumberOfPartitions.
func Partitions(n int32) PartitionsOption { return PartitionsOption{n: n} }

// StoreRef is a handle of a store a processor can be connected to: a store
// declared with AddKeyValueStore, or a materialized Table.
type StoreRef interface {
	StoreName() string
}

// ConnectStoresOption is the option ConnectStores returns.
type ConnectStoresOption struct{ stores []string }

func (c ConnectStoresOption) apply(o *options) { o.stores = append(o.stores, c.stores...) }
func (ConnectStoresOption) processOperation()  {}

// ConnectStores gives a processor added with Process access to stores: ones
// declared with AddKeyValueStore, or a table's (open it with
// OpenTableStore). Kafka Streams: the stateStoreNames of KStream.process.
func ConnectStores(stores ...StoreRef) ConnectStoresOption {
	var c ConnectStoresOption
	for _, s := range stores {
		c.stores = append(c.stores, s.StoreName())
	}
	return c
}
