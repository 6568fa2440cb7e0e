package task

import (
	"fmt"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// WrapStore makes the store of spec from the key-value store its entries
// live in: base itself for a key-value store, a window or session store
// kept in base otherwise (with spec's retention and segment interval). The
// test driver and the runtime build stores with it, on an in-memory base
// or a Pebble one behind a changelog logger and a record cache.
func WrapStore(spec *topology.StoreSpec, base state.KeyValueStore) (state.Store, error) {
	switch spec.Kind {
	case topology.KeyValue:
		return base, nil
	case topology.Window:
		return state.NewWindowStore(base, state.WindowStoreOptions{Retention: spec.StoreRetention(),
			SegmentInterval: spec.EffectiveSegmentInterval(), RetainDuplicates: spec.RetainDuplicates})
	case topology.Session:
		return state.NewSessionStore(base, state.SessionStoreOptions{Retention: spec.StoreRetention(),
			SegmentInterval: spec.EffectiveSegmentInterval()})
	}
	return nil, fmt.Errorf("sluice: store %s: unknown kind %d", spec.Name, spec.Kind)
}
