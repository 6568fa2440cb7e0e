package runtime

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// haAssignment returns, over apps, each task's active instances and
// standby instances (indexes into apps).
func haAssignment(t *testing.T, apps []*haApp) (active, standby map[taskID][]int) {
	t.Helper()
	active, standby = map[taskID][]int{}, map[taskID][]int{}
	for i, h := range apps {
		ids, _ := h.app.Tasks()
		for _, s := range ids {
			id, err := parseTaskID(s)
			if err != nil {
				t.Fatal(err)
			}
			active[id] = append(active[id], i)
		}
		for _, id := range h.app.standbyTasks() {
			standby[id] = append(standby[id], i)
		}
	}
	return active, standby
}

// wantStandbys reports whether every one of n tasks of sub-topology 0 has
// exactly one active and want standbys, all on distinct instances.
func wantStandbys(active, standby map[taskID][]int, n int32, want int) error {
	for p := range n {
		id := taskID{0, p}
		if len(active[id]) != 1 {
			return fmt.Errorf("task %s active on %v", id, active[id])
		}
		if len(standby[id]) != want {
			return fmt.Errorf("task %s has standbys on %v, want %d", id, standby[id], want)
		}
		if slices.Contains(standby[id], active[id][0]) {
			return fmt.Errorf("task %s: standby on its active's instance %d", id, active[id][0])
		}
		if len(slices.Compact(slices.Sorted(slices.Values(standby[id])))) != len(standby[id]) {
			return fmt.Errorf("task %s: two standbys on one instance: %v", id, standby[id])
		}
	}
	return nil
}

// Three instances with NumStandbyReplicas(1): every stateful task has one
// active and one standby on another instance, in the assignment's user
// data; after one instance leaves, the two others share the actives and
// keep one standby of each task on the instance that is not its active's.
func TestStandbyAssignmentThreeInstances(t *testing.T) {
	c := kafkatest.New(t)
	in, out := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 6, in, out)
	topo := countTopology(t, in, out)
	app := kafkatest.Topic(t, "app")
	var apps []*haApp
	for range 3 {
		apps = append(apps, startHAApp(t, topo, t.TempDir(), ApplicationID(app), Brokers(c.Brokers...), NumStandbyReplicas(1)))
	}
	var last error
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("last assignment seen: %v", last)
		}
	}()
	waitFor(t, 2*time.Minute, "two tasks each and one standby per task", apps, func() bool {
		active, standby := haAssignment(t, apps)
		for _, h := range apps {
			if ids, _ := h.app.Tasks(); len(ids) != 2 {
				last = fmt.Errorf("tasks per instance not 2 each: %v", active)
				return false
			}
		}
		last = wantStandbys(active, standby, 6, 1)
		return last == nil
	})
	w := watchOutput(t, c, out)
	for p := range int32(6) {
		produceTo(t, c, in, p, fmt.Sprintf("k%d", p))
	}
	waitFor(t, time.Minute, "output", apps, func() bool {
		for p := range 6 {
			if _, ok := w.at(fmt.Sprintf("k%d", p)); !ok {
				return false
			}
		}
		return true
	})

	apps[2].stop(t)
	apps = apps[:2]
	waitFor(t, 2*time.Minute, "three tasks each and one standby per task on the other", apps, func() bool {
		active, standby := haAssignment(t, apps)
		for _, h := range apps {
			if ids, _ := h.app.Tasks(); len(ids) != 3 {
				last = fmt.Errorf("tasks per instance not 3 each: %v", active)
				return false
			}
		}
		last = wantStandbys(active, standby, 6, 1)
		return last == nil
	})
}
