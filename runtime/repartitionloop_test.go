package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A processor that reads a table's store after a repartition of that
// table's own updates (rekey users by manager, then look the manager up)
// merges the repartition topic's reader into the table's sub-topology,
// which also writes that topic: the sub-topology reads a topic it writes. Kafka Streams derives the
// repartition topic's partition count from the writer's source topics it
// knows, skipping the repartition topic itself (RepartitionTopics.
// computePartitionCount: a candidate without a partition count is left
// out), so this topology starts with the users/clicks count. Sluice's
// planner (runtime/topics.go subPartitions) waits for every input of the
// sub-topology, the repartition topic included, and gives up: "cannot
// derive the partition count of sub-topology 0".
func TestMergedSubTopologyReadingItsOwnRepartitionTopicStarts(t *testing.T) {
	c := newCluster(t)
	usersTopic, out := topic(t, "users"), topic(t, "enriched")
	c.create(t, 2, usersTopic, out)

	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String, dsl.Named("users"))
	// Each user's row names their manager: rekey the updates by manager
	// and look the manager up in the same table.
	byUser := dsl.SelectKey(users.ToStream(), func(_, manager string) string { return manager }).Repartition(dsl.Named("by-manager"))
	dsl.Process(byUser, func() operators.Processor[string, string, string, string] {
		var store *dsl.TableStore[string, string]
		return &operators.ProcessorFuncs[string, string, string, string]{
			InitFunc: func(ctx operators.ProcessorContext[string, string]) (err error) {
				store, err = dsl.OpenTableStore(ctx, users)
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				country, _, _, err := store.Get(r.Key)
				if err != nil {
					return err
				}
				r.Value += "@" + country
				return ctx.Forward(r)
			},
		}
	}, dsl.ConnectStores(users)).To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topo.SubTopologies()); n != 1 {
		t.Fatalf("%d sub-topologies, want 1 (merged by the users store):\n%s", n, topo.Describe())
	}
	app, err := runtime.New(topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...), runtime.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	defer app.Close()
	// Run returns at once if start-up planning fails; else the app gets
	// its two tasks (one sub-topology, two partitions).
	timeout := time.After(time.Minute)
	for {
		ids, changed := app.Tasks()
		if len(ids) == 2 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned during start-up: %v", err)
		case <-changed:
		case <-timeout:
			t.Fatalf("after a minute the app has tasks %v, want 2", ids)
		}
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
