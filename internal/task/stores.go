package task

import (
	"fmt"
	"time"

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
		return state.NewWindowStore(base, state.WindowStoreOptions{Retention: spec.Retention, SegmentInterval: spec.SegmentInterval})
	case topology.Session:
		// One millisecond more than the spec: a session is accepted while
		// its end is not before the close time (stream time - gap -
		// grace), and a store with retention gap + grace would already
		// count a session ending exactly there as expired. The segment
		// interval stays the one of the spec's retention (Kafka Streams'
		// default, max(retention/2, 1 minute)).
		interval := spec.SegmentInterval
		if interval == 0 {
			interval = max(spec.Retention/2, time.Minute)
		}
		return state.NewSessionStore(base, state.SessionStoreOptions{Retention: spec.Retention + time.Millisecond, SegmentInterval: interval})
	}
	return nil, fmt.Errorf("sluice: store %s: unknown kind %d", spec.Name, spec.Kind)
}
