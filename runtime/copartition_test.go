package runtime_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// partitionCount returns the number of partitions of topic on the broker.
func (c *testCluster) partitionCount(t *testing.T, topic string) int {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: not found (%v)", topic, d.Err)
	}
	return len(d.Partitions)
}

// A stream of a 2-partition topic, rekeyed and joined with a table of a
// 4-partition topic, goes through a repartition topic of 4 partitions: the
// repartition topic is co-partitioned with the table, as Kafka Streams'
// CopartitionedTopicsEnforcer makes it (it would otherwise take the 2 of
// the stream's topic and the join could not start), and every click meets
// its user.
func TestRepartitionTopicTakesCoPartitionGroupCount(t *testing.T) {
	c := newCluster(t)
	usersTopic, clicksTopic, out := topic(t, "users"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 4, usersTopic, out)
	c.create(t, 2, clicksTopic)

	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String, dsl.Named("users"))
	clicks := dsl.FromTopic(b, clicksTopic, serde.String, serde.String)
	byUser := dsl.Map(clicks, func(page, user string) (string, string) { return user, page })
	dsl.JoinTable(byUser, users, func(_, page, region string) string { return page + "@" + region }, dsl.Named("enrich")).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	const n = 40
	var rs []*kgo.Record
	want := map[string]string{}
	for i := range n {
		u := fmt.Sprintf("user%d", i)
		rs = append(rs, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(fmt.Sprintf("r%d", i%3)), Timestamp: time.UnixMilli(int64(1 + i))})
		rs = append(rs, &kgo.Record{Topic: clicksTopic, Key: []byte(fmt.Sprintf("/p%d", i)), Value: []byte(u), Timestamp: time.UnixMilli(int64(1000 + i))})
		want[u] = fmt.Sprintf("/p%d@r%d", i, i%3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.client(t).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	got := c.latestValues(t, out, len(want), time.Minute)
	if !maps.Equal(got, want) {
		t.Errorf("enriched clicks:\n got  %v\n want %v", got, want)
	}
	if p := c.partitionCount(t, appID+"-enrich-repartition"); p != 4 {
		t.Errorf("repartition topic %s-enrich-repartition has %d partitions, want 4 (the users table's)", appID, p)
	}
	in.stop(t)
}

// A repartition topic whose partition count the user set keeps it: if it
// differs from the count of the external topics it is joined with, the
// start fails naming both, as Kafka Streams refuses it.
func TestRepartitionTopicWithSetCountNotCoPartitioned(t *testing.T) {
	c := newCluster(t)
	usersTopic, clicksTopic, out := topic(t, "users"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 4, usersTopic, out)
	c.create(t, 2, clicksTopic)
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String)
	clicks := dsl.FromTopic(b, clicksTopic, serde.String, serde.String)
	byUser := dsl.Map(clicks, func(page, user string) (string, string) { return user, page }).
		Repartition(dsl.Named("by-user"), dsl.Partitions(2))
	dsl.JoinTable(byUser, users, func(_, page, region string) string { return page + "@" + region }).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.wantCoPartitionError(t, topo, "by-user-repartition (2 partitions)", usersTopic+" (4 partitions)")
}

// When every input of a stateful sub-topology is a repartition topic, they
// all take the largest count derived from their writers (Kafka Streams:
// the maximum of the group): streams of a 2- and a 4-partition topic, each
// repartitioned, merged and counted, are counted over 4 partitions, and
// every record is counted once.
func TestRepartitionTopicsOnlyTakeTheLargestCount(t *testing.T) {
	c := newCluster(t)
	a, bt, out := topic(t, "a"), topic(t, "b"), topic(t, "counts")
	c.create(t, 2, a)
	c.create(t, 4, bt, out)
	b := dsl.NewBuilder()
	ra := dsl.FromTopic(b, a, serde.String, serde.String).Repartition(dsl.Named("ra"))
	rb := dsl.FromTopic(b, bt, serde.String, serde.String).Repartition(dsl.Named("rb"))
	ra.Merge(rb).GroupByKey().Count(dsl.Named("n")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	var ka, kb []string
	for i := range 30 {
		k := fmt.Sprintf("k%d", i%10)
		ka = append(ka, k)
		kb = append(kb, k, k)
		want[k] += 3
	}
	c.produceKeys(t, a, ka...)
	c.produceKeys(t, bt, kb...)

	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	got, _ := c.counts(t, out, time.Minute, equalCounts(want))
	if !maps.Equal(got, want) {
		t.Errorf("counts: %s", diffCounts(got, want))
	}
	for _, r := range []string{"ra", "rb"} {
		if p := c.partitionCount(t, appID+"-"+r+"-repartition"); p != 4 {
			t.Errorf("repartition topic %s-%s-repartition has %d partitions, want 4", appID, r, p)
		}
	}
	in.stop(t)
}

// The count a repartition topic takes from its co-partition group does not
// flow further downstream: as in Kafka Streams (RepartitionTopics derives
// every repartition topic's count before CopartitionedTopicsEnforcer runs),
// a repartition topic written after the join is derived from the join's
// inputs as they were before co-partitioning. Clicks of a 4-partition
// topic, rekeyed and joined with a 2-partition users table, go through a
// 2-partition repartition topic; the join's results, regrouped by region,
// through a 4-partition one (max of 4 derived and 2), and the counts are
// exact.
func TestCoPartitionedCountDoesNotFlowDownstream(t *testing.T) {
	c := newCluster(t)
	usersTopic, clicksTopic, out := topic(t, "users"), topic(t, "clicks"), topic(t, "per-region")
	c.create(t, 2, usersTopic)
	c.create(t, 4, clicksTopic, out)

	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String, dsl.Named("users"))
	clicks := dsl.FromTopic(b, clicksTopic, serde.String, serde.String)
	byUser := dsl.Map(clicks, func(page, user string) (string, string) { return user, page })
	regions := dsl.JoinTable(byUser, users, func(_, _, region string) string { return region }, dsl.Named("enrich"))
	dsl.GroupBy(regions, func(_, region string) string { return region }, serde.String, dsl.Named("by-region")).
		Count(dsl.Named("per-region")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	const n = 40
	var rs []*kgo.Record
	want := map[string]int64{}
	for i := range n {
		u, region := fmt.Sprintf("user%d", i), fmt.Sprintf("r%d", i%3)
		rs = append(rs, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(region), Timestamp: time.UnixMilli(int64(1 + i))})
		rs = append(rs, &kgo.Record{Topic: clicksTopic, Key: []byte(fmt.Sprintf("/p%d", i)), Value: []byte(u), Timestamp: time.UnixMilli(int64(1000 + i))})
		want[region]++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.client(t).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	got, _ := c.counts(t, out, time.Minute, equalCounts(want))
	if !maps.Equal(got, want) {
		t.Errorf("clicks per region: %s", diffCounts(got, want))
	}
	for name, wantN := range map[string]int{"enrich-repartition": 2, "by-region-repartition": 4} {
		if p := c.partitionCount(t, appID+"-"+name); p != wantN {
			t.Errorf("repartition topic %s-%s has %d partitions, want %d", appID, name, p, wantN)
		}
	}
	in.stop(t)
}
