package runtime

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// A new instance without state gets warm-up replicas instead of the
// stateful tasks the balanced assignment wants on it, while the caught-up
// instance keeps running them; the leader rebalances every probing
// interval while warm-ups exist; once the warm-ups report offset sums
// within the acceptable recovery lag (the warm-ups are standby tasks,
// whose commits report them), the probing rebalance moves the tasks.
func TestWarmupsAndProbingRebalance(t *testing.T) {
	c := kafkatest.New(t)
	in, out := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 4, in, out)
	topo := countTopology(t, in, out)
	app := kafkatest.Topic(t, "app")
	opts := []Option{ApplicationID(app), Brokers(c.Brokers...), CacheMaxBytes(0), AcceptableRecoveryLag(5),
		MaxWarmupReplicas(2), ProbingRebalanceInterval(time.Second)}
	a1 := startHAApp(t, topo, t.TempDir(), opts...)
	waitFor(t, time.Minute, "four tasks", []*haApp{a1}, func() bool { ids, _ := a1.app.Tasks(); return len(ids) == 4 })
	w := watchOutput(t, c, out)
	for p := range int32(4) {
		var keys []string
		for i := range 20 {
			keys = append(keys, fmt.Sprintf("k%d-%d", p, i))
		}
		produceTo(t, c, in, p, keys...)
	}
	waitFor(t, time.Minute, "output", []*haApp{a1}, func() bool {
		for p := range 4 {
			if _, ok := w.at(fmt.Sprintf("k%d-19", p)); !ok {
				return false
			}
		}
		return true
	})

	a2 := startHAApp(t, topo, t.TempDir(), opts...)
	apps := []*haApp{a1, a2}
	var warm []taskID
	waitFor(t, time.Minute, "two warm-ups on the new instance", apps, func() bool {
		warm = a2.app.standbyTasks()
		return len(warm) == 2
	})
	if ids, _ := a2.app.Tasks(); len(ids) != 0 {
		t.Fatalf("new instance runs %v with its warm-ups", ids)
	}
	// The warm-ups are standby tasks (standby.go): they catch up on the
	// changelogs and report their offset sums, and a probing rebalance
	// then moves the tasks. (Before standby.go was merged, this test held
	// the new instance's offsets back and set them itself.)
	var want []string
	for _, id := range warm {
		want = append(want, id.String())
	}
	waitFor(t, time.Minute, "the warmed-up tasks on the new instance", apps, func() bool {
		ids, _ := a2.app.Tasks()
		return slices.Equal(ids, want)
	})
	waitFor(t, time.Minute, "no warm-ups left", apps, func() bool { return len(a2.app.standbyTasks()) == 0 })
}
