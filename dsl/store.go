package dsl

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// KeyValueStoreRef is a typed handle of a key-value store declared for
// processors written with the Processor API. Pass it to ConnectStores and
// open it in the processor's Init.
type KeyValueStoreRef[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// AddKeyValueStore declares a key-value store for user processors (Kafka
// Streams: StreamsBuilder.addStateStore). s.Name is required. As Kafka
// Streams' store builders, the store is logged but not cached unless
// s.EnableCaching is set: every write reaches the changelog (the runtime
// logs the latest write of each key per commit; docs/state.md).
func AddKeyValueStore[K, V any](b *Builder, s StoreOptions, keys serde.Serde[K], values serde.Serde[V]) *KeyValueStoreRef[K, V] {
	if s.Name == "" {
		b.fail("", "AddKeyValueStore needs StoreOptions.Name")
	}
	if keys == nil || values == nil {
		b.fail("", "store %s needs a key and a value serde", s.Name)
	}
	if s.Retention != 0 {
		b.errs = append(b.errs, &topology.BuildError{Store: s.Name, Msg: fmt.Sprintf(
			"StoreOptions{Retention: %v} does not apply to AddKeyValueStore: a key-value store keeps no retention", s.Retention)})
	}
	if s.HistoryRetention != 0 {
		b.errs = append(b.errs, &topology.BuildError{Store: s.Name, Msg: fmt.Sprintf(
			"StoreOptions{HistoryRetention: %v} does not apply to AddKeyValueStore: it declares a key-value store, not a versioned one", s.HistoryRetention)})
	}
	if s.DisableCaching && s.EnableCaching {
		b.errs = append(b.errs, &topology.BuildError{Store: s.Name, Msg: "StoreOptions sets both DisableCaching and EnableCaching"})
	}
	b.addStore(&topology.StoreSpec{
		Name: s.Name, Kind: topology.KeyValue, InMemory: s.InMemory, DisableLogging: s.DisableLogging,
		DisableCaching: !s.EnableCaching, ChangelogConfig: s.ChangelogConfig,
	})
	return &KeyValueStoreRef[K, V]{name: s.Name, keys: keys, values: values}
}

// StoreName implements StoreRef.
func (r *KeyValueStoreRef[K, V]) StoreName() string { return r.name }

// Open returns the typed store for the task of ctx. Call it in the
// processor's Init; the processor must be connected to the store.
func (r *KeyValueStoreRef[K, V]) Open(ctx operators.ProcessingContext) (*state.KV[K, V], error) {
	kv, err := nodes.OpenKeyValueStore(ctx, r.name)
	if err != nil {
		return nil, err
	}
	return state.NewKV(kv, r.keys, r.values), nil
}

// TableStore is a read-only typed view of the store that holds a table, for
// processors written with the Processor API (Kafka Streams: a
// ReadOnlyKeyValueStore of ValueAndTimestamp). Open it with OpenTableStore.
type TableStore[K, V any] struct {
	name   string
	store  state.KeyValueStore
	keys   serde.Serde[K]
	values serde.Serde[V]
	kbuf   []byte
}

// OpenTableStore returns the store of table t for the task of ctx. Call it
// in the processor's Init; the processor must be connected to the table
// (ConnectStores(t)). A processor that reads the table's store runs in the
// table's sub-topology: Build merges the sub-topologies, and their source
// topics must then be co-partitioned. t must be materialized (StoreName is
// not empty).
func OpenTableStore[K, V any](ctx operators.ProcessingContext, t Table[K, V]) (*TableStore[K, V], error) {
	if t.store == "" {
		return nil, fmt.Errorf("sluice: table of node %s has no store: materialize it with dsl.Materialized", t.node.Name)
	}
	kv, err := nodes.OpenKeyValueStore(ctx, t.store)
	if err != nil {
		return nil, err
	}
	return &TableStore[K, V]{name: t.store, store: kv, keys: t.keys, values: t.values}, nil
}

// OpenGlobalTableStore returns the store of the global table g, read-only,
// for a processor written with the Processor API. Any processor may read a
// global store without being connected to it (as in Kafka Streams, where
// connecting one is an error): do not pass g to ConnectStores. Call it in
// the processor's Init.
func OpenGlobalTableStore[K, V any](ctx operators.ProcessingContext, g GlobalTable[K, V]) (*TableStore[K, V], error) {
	if g.store == "" {
		return nil, fmt.Errorf("sluice: the zero GlobalTable has no store: make it with GlobalTableFromTopic")
	}
	kv, err := nodes.OpenKeyValueStore(ctx, g.store)
	if err != nil {
		return nil, err
	}
	return &TableStore[K, V]{name: g.store, store: kv, keys: g.keys, values: g.values}, nil
}

// Get returns the value of k and the timestamp of its last update; ok is
// false when the table has no row for k.
func (s *TableStore[K, V]) Get(k K) (v V, ts int64, ok bool, err error) {
	if s.kbuf, err = s.keys.Encode(s.kbuf[:0], k); err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: cannot serialize key: %w", s.name, err)
	}
	b, ok, err := s.store.Get(s.kbuf)
	if err != nil || !ok {
		return v, 0, false, err
	}
	ts, raw, err := nodes.DecodeTimestamped(b)
	if err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: %w", s.name, err)
	}
	if v, err = s.values.Decode(raw); err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", s.name, err)
	}
	return v, ts, true, nil
}
