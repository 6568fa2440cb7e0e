package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// A new instance without state gets warm-up replicas instead of the
// stateful tasks the balanced assignment wants on it, while the caught-up
// instance keeps running them; the warm-ups (standby tasks) catch up from
// the changelog and report it in their member metadata, and the leader's
// probing rebalance (every second here) then moves the tasks to the new
// instance, whose counts go on from the state the warm-ups built.
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
		ids1, _ := a1.app.Tasks()
		ids2, _ := a2.app.Tasks()
		return len(warm) == 2 && len(ids1) == 4 && len(ids2) == 0
	})
	var want []string
	for _, id := range warm {
		want = append(want, id.String())
	}
	waitFor(t, time.Minute, "the warmed-up tasks on the new instance", apps, func() bool {
		ids, _ := a2.app.Tasks()
		return slices.Equal(ids, want)
	})
	waitFor(t, time.Minute, "no warm-ups left", apps, func() bool { return len(a2.app.standbyTasks()) == 0 })
	// The moved tasks count on: one more record of a key of each.
	for _, id := range warm {
		produceTo(t, c, in, id.partition, fmt.Sprintf("k%d-0", id.partition))
	}
	cl := c.Client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	latest := map[string]int64{}
	waitFor(t, time.Minute, "counts of 2 after the move", apps, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
		})
		for _, id := range warm {
			if latest[fmt.Sprintf("k%d-0", id.partition)] != 2 {
				return false
			}
		}
		return true
	})
}
