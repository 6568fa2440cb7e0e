package runtime_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A processor that reads a table's store runs in the table's
// sub-topology on the broker too: every click is enriched from the users
// table of its own task, on each of 3 partitions.
func TestProcessorReadsTableStoreOnBroker(t *testing.T) {
	c := newCluster(t)
	usersTopic, clicksTopic, out := topic(t, "users"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 3, usersTopic, clicksTopic, out)

	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String, dsl.Named("users"))
	clicks := dsl.FromTopic(b, clicksTopic, serde.String, serde.String)
	dsl.Process(clicks, func() operators.Processor[string, string, string, string] {
		var store *dsl.TableStore[string, string]
		return &operators.ProcessorFuncs[string, string, string, string]{
			InitFunc: func(ctx operators.ProcessorContext[string, string]) (err error) {
				store, err = dsl.OpenTableStore(ctx, users)
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				country, _, ok, err := store.Get(r.Key)
				if err != nil {
					return err
				}
				if !ok {
					country = "?"
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
		t.Fatalf("%d sub-topologies, want 1", n)
	}

	// Users first in event time: each task processes a user before the
	// clicks of later timestamps.
	const n = 30
	var rs []*kgo.Record
	want := map[string]string{}
	// Recent event times: a real broker deletes records older than its
	// retention (7 days) at its next retention check.
	recent := time.Now().Add(-10 * time.Minute).UnixMilli()
	for i := range n {
		u := fmt.Sprintf("user%d", i)
		rs = append(rs, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(fmt.Sprintf("c%d", i%4)), Timestamp: time.UnixMilli(recent + int64(1+i))})
		rs = append(rs, &kgo.Record{Topic: clicksTopic, Key: []byte(u), Value: []byte("/p"), Timestamp: time.UnixMilli(recent + int64(1000+i))})
		want[u] = fmt.Sprintf("/p@c%d", i%4)
	}
	rs = append(rs, &kgo.Record{Topic: clicksTopic, Key: []byte("nobody"), Value: []byte("/p"), Timestamp: time.UnixMilli(2000)})
	want["nobody"] = "/p@?"
	prod := c.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	in := start(t, topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(100*time.Millisecond))
	got := c.latestValues(t, out, len(want), time.Minute)
	if !maps.Equal(got, want) {
		t.Errorf("enriched clicks:\n got  %v\n want %v", got, want)
	}
	in.stop(t)
}
