package runtime

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/serde"
)

// Reviewer's test (REVIEW-ha.md #14): a sub-topology whose only logged
// store is in memory counts as stateful for the assignor (its changelog is
// in the end-offset sums), but no instance can keep a copy of it (standby.go
// keeps no standby of it; an in-memory store restores from the log start
// on every open), so a warm-up never catches up: a new instance never gets
// those tasks and the leader probes forever.
func TestReviewInMemoryTasksReachNewInstance(t *testing.T) {
	c := kafkatest.New(t)
	in, out := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 4, in, out)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, in, serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts"), dsl.Materialized(dsl.StoreOptions{InMemory: true})).
		ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
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
	_, gen := a1.app.client.GroupMetadata()
	var last string
	t.Cleanup(func() { t.Log("last seen: ", last) })
	waitFor(t, 30*time.Second, "two tasks on the new instance", apps, func() bool {
		ids, _ := a2.app.Tasks()
		_, g := a1.app.client.GroupMetadata()
		last = fmt.Sprintf("new instance: tasks %v, standbys/warm-ups %v; generations since it joined: %d", ids, a2.app.standbyTasks(), g-gen)
		return len(ids) == 2
	})
}
