package runtime_test

import (
	"context"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A task that restores does not hold up the others: with the restore of
// one task's changelog partition held back (kfake), the other task of the
// instance processes its input, and the first joins once its restore is
// let go, with exact counts (it did not fetch its input before).
func TestRestoreDoesNotBlockOtherTasks(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.client(t, kgo.DefaultProduceTopic(input), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := map[string]int64{}
	produce := func(key string, partition int32, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var rs []*kgo.Record
		for range n {
			rs = append(rs, &kgo.Record{Key: []byte(key), Value: []byte("v"), Partition: partition})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want[key] += int64(n)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
		runtime.CommitInterval(50 * time.Millisecond)}

	produce("a", 0, 30)
	produce("b", 1, 20)
	in := start(t, topo, opts...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	in.stop(t)
	// Without local state, both tasks restore their changelog partitions.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	release := stallFetchPartition(t, e, appID+"-n-changelog", 0)
	defer release()

	in = start(t, topo, opts...)
	produce("b", 1, 5)
	produce("a", 0, 7)
	// Task 0_1 restores and counts b while 0_0's restore is held back.
	if got, _ := c.counts(t, output, time.Minute, func(m map[string]int64) bool { return m["b"] == want["b"] }); got["b"] != want["b"] || got["a"] != 30 {
		t.Fatalf("while task 0_0 restores: a=%d (want 30, its first run's count), b=%d (want %d)", got["a"], got["b"], want["b"])
	}
	if ids, _ := in.app.Tasks(); len(ids) != 2 {
		t.Fatalf("tasks = %v, want both", ids)
	}
	release()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after task 0_0's restore: %s", diffCounts(got, want))
	}
	in.stop(t)
}

// stallFetchPartition holds back every fetch of topic's partition (every
// partition if negative) on the embedded cluster until release is called.
func stallFetchPartition(t *testing.T, e *connectors.Embedded, topic string, partition int32) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tds, err := kadm.NewClient(clientOf(t, e)).ListTopics(ctx, topic)
	if err != nil || !tds.Has(topic) {
		t.Fatalf("look up topic %s: %v", topic, err)
	}
	id := tds[topic].ID
	stop := make(chan struct{})
	e.Cluster().ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		for _, ft := range req.(*kmsg.FetchRequest).Topics {
			if ft.Topic != topic && ft.TopicID != id {
				continue
			}
			for _, fp := range ft.Partitions {
				if partition < 0 || fp.Partition == partition {
					e.Cluster().SleepControl(func() { <-stop })
					return nil, nil, false
				}
			}
		}
		return nil, nil, false
	})
	var once sync.Once
	return func() { once.Do(func() { close(stop) }) }
}

func clientOf(t *testing.T, e *connectors.Embedded) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
