package runtime_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A stream-table left join runs on the broker: clicks keyed by page are
// re-keyed by user (a repartition topic before the join), then joined with
// the users table on each of 3 partitions; a click of an unknown user is
// joined with the absent row.
func TestStreamTableJoinOnBroker(t *testing.T) {
	c := newCluster(t)
	usersTopic, clicksTopic, out := topic(t, "users"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 3, usersTopic, clicksTopic, out)

	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String, dsl.Named("users"))
	// A click's key is the page, its value the user.
	clicks := dsl.FromTopic(b, clicksTopic, serde.String, serde.String)
	byUser := dsl.Map(clicks, func(page, user string) (string, string) { return user, page })
	dsl.LeftJoinTable(byUser, users, func(_ dsl.Maybe[string], page string, region dsl.Maybe[string]) string {
		return page + "@" + region.Or("?")
	}, dsl.Named("enrich")).To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(topo.Describe(), "enrich-repartition") {
		t.Fatalf("no repartition topic before the join:\n%s", topo.Describe())
	}

	// Users first in event time: each task processes a user's row before
	// the clicks of later timestamps.
	const n = 30
	var rs []*kgo.Record
	want := map[string]string{}
	// Recent event times: a real broker deletes records older than its
	// retention (7 days) at its next retention check.
	recent := time.Now().Add(-10 * time.Minute).UnixMilli()
	for i := range n {
		u := fmt.Sprintf("user%d", i)
		rs = append(rs, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(fmt.Sprintf("r%d", i%4)), Timestamp: time.UnixMilli(recent + int64(1+i))})
		rs = append(rs, &kgo.Record{Topic: clicksTopic, Key: []byte(fmt.Sprintf("/p%d", i)), Value: []byte(u), Timestamp: time.UnixMilli(recent + int64(1000+i))})
		want[u] = fmt.Sprintf("/p%d@r%d", i, i%4)
	}
	rs = append(rs, &kgo.Record{Topic: clicksTopic, Key: []byte("/home"), Value: []byte("nobody"), Timestamp: time.UnixMilli(2000)})
	want["nobody"] = "/home@?"
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

// The inputs of a stream-table join must be co-partitioned: a stream of 3
// partitions joined with a table of 2 fails at start-up naming both.
func TestStreamTableJoinCoPartitioningValidated(t *testing.T) {
	c := newCluster(t)
	usersTopic, clicksTopic, out := topic(t, "users"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 2, usersTopic)
	c.create(t, 3, clicksTopic, out)
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String)
	clicks := dsl.FromTopic(b, clicksTopic, serde.String, serde.String)
	dsl.JoinTable(clicks, users, func(_, page, region string) string { return page + "@" + region }).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.wantCoPartitionError(t, topo, usersTopic+" (2 partitions)", clicksTopic+" (3 partitions)")
}
