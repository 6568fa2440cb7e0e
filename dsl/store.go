package dsl

import (
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
// Streams: StreamsBuilder.addStateStore). s.Name is required.
func AddKeyValueStore[K, V any](b *Builder, s StoreOptions, keys serde.Serde[K], values serde.Serde[V]) *KeyValueStoreRef[K, V] {
	if s.Name == "" {
		b.fail("", "AddKeyValueStore needs StoreOptions.Name")
	}
	if keys == nil || values == nil {
		b.fail("", "store %s needs a key and a value serde", s.Name)
	}
	b.addStore(&topology.StoreSpec{
		Name: s.Name, Kind: topology.KeyValue, InMemory: s.InMemory, DisableLogging: s.DisableLogging,
		DisableCaching: s.DisableCaching, ChangelogConfig: s.ChangelogConfig,
	})
	return &KeyValueStoreRef[K, V]{name: s.Name, keys: keys, values: values}
}

// StoreName implements StoreRef.
func (r *KeyValueStoreRef[K, V]) StoreName() string { return r.name }

// Open returns the typed store for the task of ctx. Call it in the
// processor's Init; the processor must be connected to the store.
func (r *KeyValueStoreRef[K, V]) Open(ctx operators.Context) (*state.KV[K, V], error) {
	kv, err := operators.OpenKeyValueStore(ctx, r.name)
	if err != nil {
		return nil, err
	}
	return state.NewKV(kv, r.keys, r.values), nil
}
