package runtime

import (
	"context"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// openStore opens a store of a task: a Pebble store in the task's DB (or
// an in-memory one), restored from its changelog, logging to it, behind a
// record cache.
func (a *App) openStore(ctx context.Context, r *runner, spec *topology.StoreSpec, partition int32) (state.Store, error) {
	ts := r.st
	base := func() state.KeyValueStore {
		if spec.InMemory || ts.db == nil {
			return state.NewInMemoryKeyValueStore(spec.Name)
		}
		return ts.db.KeyValueStore(spec.Name)
	}
	kv := base()
	if !spec.DisableLogging {
		topic := a.cfg.appID + "-" + spec.ChangelogTopic()
		if _, err := a.restoreStore(ctx, ts, kv, spec, topic, partition); err != nil {
			return nil, err
		}
		skip := 0
		if spec.Kind != topology.KeyValue {
			skip = 8 // the segment ID
			if spec.InMemory || ts.db == nil {
				// The restore filled kv through a window or session
				// store; an in-memory base is that store's, keep it.
			} else {
				kv = base()
			}
		}
		kv = &loggedStore{KeyValueStore: kv, topic: topic, partition: partition, timestamped: spec.Timestamped, p: a.prod, skip: skip,
			position: func() (string, int32, int64, int64) {
				if r.task == nil {
					return "", -1, -1, 0
				}
				t, p, o := r.task.InputPosition()
				return t, p, o, r.task.StreamTime()
			}}
	}
	if !spec.DisableCaching && a.cfg.cacheBytes > 0 {
		kv = state.NewCachingStore(kv, ts.cache)
	}
	return task.WrapStore(spec, kv)
}
