package dsl

import "time"

// Option configures a DSL operation. Operations ignore options that do not
// apply to them.
type Option interface{ apply(*options) }

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
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// Named names an operation: its processor node, and for a stateful one also
// its state store and the internal topics derived from it
// ("<name>-repartition", "<name>-changelog"). Kafka Streams: Named.as,
// and Materialized.as for the store.
func Named(name string) Option { return optionFunc(func(o *options) { o.name = name }) }

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
	// (Materialized.withCachingDisabled).
	DisableCaching bool
	// ChangelogConfig overrides configs of the changelog topic
	// (Materialized.withLoggingEnabled(config)).
	ChangelogConfig map[string]string
	// Retention is how long a windowed aggregation keeps a window in its
	// store after the window starts (sessions: after they end), measured
	// against stream time; zero means the least that serves the windows:
	// size + grace (sessions: gap + grace). A shorter retention is an
	// error. The changelog keeps records a day longer, as Kafka Streams'.
	// Kafka Streams: Materialized.withRetention.
	Retention time.Duration
}

// Materialized sets the store of a stateful operation, or makes a table
// operation (Filter, MapValues) keep its result in a store. Kafka Streams:
// Materialized.
func Materialized(s StoreOptions) Option {
	return optionFunc(func(o *options) { o.store = &s })
}

// Partitions sets the partition count of the topic created by Repartition;
// the default is the partition count of the input.
func Partitions(n int32) Option { return optionFunc(func(o *options) { o.partitions = n }) }

// StoreRef is a handle of a store declared with AddKeyValueStore.
type StoreRef interface {
	StoreName() string
}

// ConnectStores gives a processor added with Process access to stores
// declared with AddKeyValueStore.
func ConnectStores(stores ...StoreRef) Option {
	return optionFunc(func(o *options) {
		for _, s := range stores {
			o.stores = append(o.stores, s.StoreName())
		}
	})
}
