package runtime

import (
	"context"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// openStore opens the base of a store of a task: a Pebble store in the
// task's DB (or an in-memory one), restored from its changelog. The task
// builds the store on it, logging to the changelog, behind the record
// cache (task.Config).
func (a *App) openStore(ctx context.Context, r *runner, spec *topology.StoreSpec, partition int32) (state.KeyValueStore, error) {
	ts := r.st
	base := func() state.KeyValueStore {
		if spec.InMemory || ts.db == nil {
			return state.NewInMemoryKeyValueStore(spec.Name)
		}
		return ts.db.KeyValueStore(spec.Name)
	}
	kv := base()
	if spec.DisableLogging && !spec.InMemory && ts.db != nil {
		// Nothing restores this store: its commits must be durable
		// before the group's offsets move past them (commitLocalState).
		ts.unlogged = true
	}
	if !spec.DisableLogging {
		topic := task.ChangelogTopic(a.cfg.appID, spec)
		if _, err := a.restoreStore(ctx, ts, kv, spec, topic, partition); err != nil {
			return nil, err
		}
		if spec.Kind.RestoresThroughStore() && !spec.InMemory && ts.db != nil {
			// The restore filled the DB through a window, session or
			// versioned store;
			// an in-memory base is that store's, keep it.
			kv = base()
		}
	}
	if a.cfg.metricsLevel == MetricsDebug {
		kv = a.metrics.meterStore(r.id, kv)
	}
	return kv, nil
}
