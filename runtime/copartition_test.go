package runtime_test

import (
	"context"
	"encoding/binary"
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

// readWhileRunning reads topic from its start, handing each record to
// each, until done() holds or timeout passes (it returns done()); it fails
// the test with Run's error if the instance stops first.
func (c *testCluster) readWhileRunning(t *testing.T, in *instance, topic string, timeout time.Duration, each func(*kgo.Record), done func() bool) bool {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	deadline := time.Now().Add(timeout)
	for !done() {
		select {
		case <-in.finished:
			err := <-in.done
			in.done <- err
			t.Fatalf("Run returned while the output was awaited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(ctx).EachRecord(each)
		cancel()
	}
	return true
}

// produceThenAwaitTable writes users (table rows) and waits until the
// instance has them in the store of table, seen in its changelog, then
// writes clicks: a stream record processed before its key's row would miss
// it (a task does not wait for an empty partition), so the rows go first.
func (c *testCluster) produceThenAwaitTable(t *testing.T, in *instance, changelog string, users, clicks []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := c.client(t)
	if err := cl.ProduceSync(ctx, users...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	if !c.readWhileRunning(t, in, changelog, 2*time.Minute, func(r *kgo.Record) { keys[string(r.Key)] = true },
		func() bool { return len(keys) == len(users) }) {
		t.Fatalf("changelog %s has %d of the %d rows after 2 minutes", changelog, len(keys), len(users))
	}
	if err := cl.ProduceSync(ctx, clicks...).FirstErr(); err != nil {
		t.Fatal(err)
	}
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
	var us, cs []*kgo.Record
	want := map[string]string{}
	// Recent event times: a real broker deletes records older than its
	// retention (7 days) at its next retention check.
	recent := time.Now().Add(-10 * time.Minute).UnixMilli()
	for i := range n {
		u := fmt.Sprintf("user%d", i)
		us = append(us, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(fmt.Sprintf("r%d", i%3)), Timestamp: time.UnixMilli(recent + int64(1+i))})
		cs = append(cs, &kgo.Record{Topic: clicksTopic, Key: []byte(fmt.Sprintf("/p%d", i)), Value: []byte(u), Timestamp: time.UnixMilli(recent + int64(1000+i))})
		want[u] = fmt.Sprintf("/p%d@r%d", i, i%3)
	}
	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	c.produceThenAwaitTable(t, in, appID+"-users-changelog", us, cs)
	got := map[string]string{}
	c.readWhileRunning(t, in, out, 2*time.Minute, func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) },
		func() bool { return maps.Equal(got, want) })
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
	got := map[string]int64{}
	c.readWhileRunning(t, in, out, 2*time.Minute, func(r *kgo.Record) {
		if len(r.Value) != 8 {
			t.Errorf("record %s/%d@%d: value of %d bytes, want an 8-byte int64", r.Topic, r.Partition, r.Offset, len(r.Value))
			return
		}
		got[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
	}, func() bool { return maps.Equal(got, want) })
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
	var us, cs []*kgo.Record
	want := map[string]int64{}
	// Recent event times: a real broker deletes records older than its
	// retention (7 days) at its next retention check.
	recent := time.Now().Add(-10 * time.Minute).UnixMilli()
	for i := range n {
		u, region := fmt.Sprintf("user%d", i), fmt.Sprintf("r%d", i%3)
		us = append(us, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(region), Timestamp: time.UnixMilli(recent + int64(1+i))})
		cs = append(cs, &kgo.Record{Topic: clicksTopic, Key: []byte(fmt.Sprintf("/p%d", i)), Value: []byte(u), Timestamp: time.UnixMilli(recent + int64(1000+i))})
		want[region]++
	}
	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	c.produceThenAwaitTable(t, in, appID+"-users-changelog", us, cs)
	got := map[string]int64{}
	c.readWhileRunning(t, in, out, 2*time.Minute, func(r *kgo.Record) {
		if len(r.Value) != 8 {
			t.Errorf("record %s/%d@%d: value of %d bytes, want an 8-byte int64", r.Topic, r.Partition, r.Offset, len(r.Value))
			return
		}
		got[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
	}, func() bool { return maps.Equal(got, want) })
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
