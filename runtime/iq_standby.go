package runtime

import (
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// query runs f on the standby copy of the store of task id, under sb.mu
// (the reader applies and commits under it): ok is false when this
// instance keeps no copy of it (no standby of the task, or a store
// standbys do not keep: in memory or without a changelog). lag is the
// copy's lag in changelog records as last measured. The caller holds
// App.mu.
func (sb *standbys) query(spec *topology.StoreSpec, id taskID, f func(state.Store) error) (lag int64, ok bool, err error) {
	if sb == nil || spec.InMemory || spec.DisableLogging {
		return 0, false, nil
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	t := sb.tasks[id]
	if t == nil || t.st == nil || t.st.db == nil {
		return 0, false, nil
	}
	// A fresh store over the standby's DB: what the reader applied so far.
	s, err := task.WrapStore(spec, t.st.db.KeyValueStore(spec.Name))
	if err != nil {
		return 0, true, err
	}
	return max(t.lastLag, 0), true, f(s)
}
