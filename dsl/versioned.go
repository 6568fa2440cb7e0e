package dsl

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
)

// VersionedTableStore is a read-only typed view of the versioned store
// that holds a table (StoreOptions.HistoryRetention), for processors
// written with the Processor API (Kafka Streams: a VersionedKeyValueStore
// read through its get and get-as-of). Open it with
// OpenVersionedTableStore. Like the task's stores, it is used on the
// task's goroutine only.
type VersionedTableStore[K, V any] struct {
	v *nodes.VersionedView[K, V]
}

// OpenVersionedTableStore returns the versioned store of table t for the
// task of ctx. Call it in the processor's Init; the processor must be
// connected to the table (ConnectStores(t)). t must be kept in a
// versioned store: TableFromTopic, Filter or TableMapValues materialized
// with StoreOptions.HistoryRetention.
func OpenVersionedTableStore[K, V any](ctx operators.ProcessingContext, t Table[K, V]) (*VersionedTableStore[K, V], error) {
	if t.store == "" {
		return nil, fmt.Errorf("sluice: table of node %s has no store: materialize it with dsl.Materialized and a HistoryRetention", t.node.Name)
	}
	st, err := ctx.Store(t.store)
	if err != nil {
		return nil, err
	}
	v, err := nodes.NewVersionedView(st, t.keys, t.values)
	if err != nil {
		return nil, err
	}
	return &VersionedTableStore[K, V]{v: v}, nil
}

// Get returns k's latest value and the timestamp it is valid from; ok is
// false when k has no value (none, or its latest version is a delete).
func (s *VersionedTableStore[K, V]) Get(k K) (v V, ts int64, ok bool, err error) {
	return s.v.Get(k)
}

// GetAsOf returns the value k had at asOf (ms): the version with the
// largest timestamp at most asOf, with the timestamp it is valid from and
// the one it is valid to (exclusive; math.MaxInt64 for the latest
// version). ok is false when k had no value then (no version, or a
// delete), or asOf is older than the history the store keeps (history
// retention back from the largest timestamp it has seen). Kafka Streams:
// VersionedKeyValueStore.get(key, asOfTimestamp).
func (s *VersionedTableStore[K, V]) GetAsOf(k K, asOf int64) (v V, validFrom, validTo int64, ok bool, err error) {
	return s.v.GetAsOf(k, asOf)
}
