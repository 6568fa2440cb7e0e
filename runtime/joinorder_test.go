package runtime_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// A stream-stream join whose right input is fetched late writes every
// pair its inputs allow. The right input's first fetch brings its first
// records and shows (high watermark) that more are on the broker; then its
// broker holds every fetch for up to 5 s. Kafka Streams' task does not
// process the left partition ahead while the right one is empty and its
// fetch lag is above zero (PartitionGroup.readyToProcess with the default
// max.task.idle.ms=0, KIP-695): it waits for the fetch however long it
// takes, so the inputs are joined in timestamp order and every pair comes
// out.
//
// Sluice bounds that wait (runner.waiting, maxFetchWait = 1 s): after it,
// the left partition is processed alone, its window store advances its
// observed stream time and drops what is older than the retention (2 s
// here), and the right records, processed afterwards, find only the last 2
// s of left records. Their own store is not behind, so nothing counts as
// dropped: pairs are lost silently (the benchmark's ssjoin row under load).
func TestStreamJoinWaitsForLaggingPartition(t *testing.T) {
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{Brokers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c := &testCluster{brokers: e.Brokers()}
	left, right, out := topic(t, "left"), topic(t, "right"), topic(t, "joined")
	c.create(t, 1, left, right, out)
	kc := e.Cluster()
	// The two inputs on brokers of their own, so that the right input's
	// fetches can be held without holding the left's (franz-go fetches on
	// a connection of its own per broker).
	if err := kc.MoveTopicPartition(left, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := kc.MoveTopicPartition(right, 0, 1); err != nil {
		t.Fatal(err)
	}

	// 100 records a side, 100 ms apart, over 10 keys: 10 s of event
	// time, five times the join stores' retention.
	const n, keys = 100, 10
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	var recs []*kgo.Record
	lts, rts := map[string][]int64{}, map[string][]int64{}
	for i := range n {
		k := fmt.Sprintf("k%d", i%keys)
		l, r := base+int64(i)*100, base+int64(i)*100+50
		lts[k], rts[k] = append(lts[k], l), append(rts[k], r)
		recs = append(recs,
			&kgo.Record{Topic: left, Key: []byte(k), Value: []byte(fmt.Sprint("L", i)), Timestamp: time.UnixMilli(l)},
			&kgo.Record{Topic: right, Key: []byte(k), Value: []byte(fmt.Sprint("R", i)), Timestamp: time.UnixMilli(r)})
	}
	const diff = time.Second
	want := 0
	for k, ls := range lts {
		for _, l := range ls {
			for _, r := range rts[k] {
				if r >= l-diff.Milliseconds() && r <= l+diff.Milliseconds() {
					want++
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A batch per right record, so that a fetch of at most 1 KiB a
	// partition brings a few of them, not all.
	pcl := c.client(t)
	for _, r := range recs {
		if err := pcl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// After its first fetch, hold every fetch the right input's broker
	// gets until released: the right partition's next records are on the
	// broker (the first fetch showed its lag) but do not arrive.
	release := make(chan struct{})
	var rightFetches atomic.Int32
	kc.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if kc.CurrentNode() == 1 && rightFetches.Add(1) > 1 {
			kc.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})

	b := dsl.NewBuilder()
	ls := dsl.FromTopic(b, left, serde.String, serde.String)
	rs := dsl.FromTopic(b, right, serde.String, serde.String)
	dsl.Join(ls, rs, func(_ string, l, r string) string { return l + "+" + r }, window.JoinTimeDifference(diff)).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	reg := prometheus.NewRegistry()
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.Registerer(reg),
		runtime.CommitInterval(50*time.Millisecond), runtime.ClientOptions(kgo.FetchMaxPartitionBytes(1<<10)))

	// The fault lasts until the app has committed the whole left input
	// (it ran ahead) or for 5 s (the held fetches' delay when it waits).
	adm := kadm.NewClient(c.client(t))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if committed, err := adm.FetchOffsets(ctx, appID); err == nil {
			if o, ok := committed.Lookup(left, 0); ok && o.At >= n {
				break
			}
		}
	}
	close(release)
	waitCommitted(t, c, appID, left)
	waitCommitted(t, c, appID, right)
	in.stop(t)

	got := len(c.readToEnd(t, out))
	dropped := 0.0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sluice_dropped_records_total" {
			for _, m := range mf.GetMetric() {
				dropped += m.GetCounter().GetValue()
			}
		}
	}
	if got != want && dropped == 0 {
		t.Fatalf("the join wrote %d pairs of the %d its inputs allow, and dropped no record: the left partition was processed ahead of the right one", got, want)
	}
	if got != want {
		t.Fatalf("the join wrote %d pairs of the %d its inputs allow (%v records dropped): Kafka Streams waits for the lagging partition", got, want, dropped)
	}
}
