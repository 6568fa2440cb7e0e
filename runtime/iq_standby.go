package runtime

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// query runs f on the standby copy of the store of task id, under sb.mu
// (the reader applies and commits under it): ok is false when this
// instance keeps no copy of it (no standby of the task, or a store
// standbys do not keep: in memory or without a changelog). lag is the
// copy's lag in changelog records: those its changelog partitions hold
// past what the standby applied, as of their last fetch. The caller holds
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
	// The lag: the changelog records past what the reader applied (into
	// the DB's pending batch, which reads see). Unknown until a fetch told
	// each partition's end: not ready, rather than a lag of 0.
	for _, sp := range t.parts {
		if sp.end < 0 {
			return 0, true, fmt.Errorf("%w: the standby's lag on %s partition %d is not known yet", ErrStoreNotReady, sp.tp.Topic, sp.tp.Partition)
		}
		lag += max(sp.end-max(sp.next, 0), 0)
	}
	// A fresh store over the standby's DB: what the reader applied so far.
	s, err := task.WrapStore(spec, t.st.db.KeyValueStore(spec.Name))
	if err != nil {
		return 0, true, err
	}
	return lag, true, f(s)
}
