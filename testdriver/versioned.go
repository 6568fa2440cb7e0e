package testdriver

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/serde"
)

// VersionedStore is a typed read-only view of a versioned store of the
// driver's topology (a table materialized with
// dsl.StoreOptions.HistoryRetention), for assertions on its history.
type VersionedStore[K, V any] struct {
	v *nodes.VersionedView[K, V]
}

// VersionedKeyValueStore returns the versioned store named name, read
// through keys and values. Kafka Streams: TopologyTestDriver.getVersionedKeyValueStore.
func VersionedKeyValueStore[K, V any](d *Driver, name string, keys serde.Serde[K], values serde.Serde[V]) (*VersionedStore[K, V], error) {
	s := d.Store(name)
	if d.topo.Store(name) == nil || s == nil {
		return nil, fmt.Errorf("sluice: testdriver: the topology has no store %q", name)
	}
	v, err := nodes.NewVersionedView(s, keys, values)
	if err != nil {
		return nil, err
	}
	return &VersionedStore[K, V]{v: v}, nil
}

// Get returns k's latest value and the timestamp it is valid from; ok is
// false when k has no value.
func (s *VersionedStore[K, V]) Get(k K) (v V, ts int64, ok bool, err error) { return s.v.Get(k) }

// GetAsOf returns the value k had at asOf, with the timestamps it is valid
// from and to (math.MaxInt64 for the latest); ok is false when k had none
// then or asOf is past the store's history retention.
func (s *VersionedStore[K, V]) GetAsOf(k K, asOf int64) (v V, validFrom, validTo int64, ok bool, err error) {
	return s.v.GetAsOf(k, asOf)
}
