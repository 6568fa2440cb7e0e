package runtime_test

// Exactly-once cases found in review: processor metadata of a task with
// several input partitions, tasks rolled back by a group callback and not
// yet revived, a TxnOffsetCommit refused by generation, a lost session
// with a transaction open.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// A task reading two topics keeps its processor metadata on the first
// partition that has an offset in the commit. After a restart the first
// queue has q.committed == -1 and no progress until a record of it comes,
// so the newest metadata goes to the second partition, while the first
// keeps an older one; committedMetadata reads the first partition first
// and wins over the (correct) DB meta: the emit-final window closed in
// run 2 is emitted again in run 3.
func TestReviewEOSMetadataOnSecondPartitionGoesStale(t *testing.T) {
	c := newCluster(t)
	ta, tb, output := topic(t, "a"), topic(t, "b"), topic(t, "out")
	c.create(t, 1, ta, tb, output)
	b := dsl.NewBuilder()
	g := dsl.FromTopics(b, []string{ta, tb}, serde.String, serde.String).GroupByKey()
	counts := dsl.WindowedBy(g, window.Tumbling(time.Minute, 0)).EmitFinal().
		Count(dsl.Named("final"), dsl.Materialized(dsl.StoreOptions{Retention: time.Hour})).ToStream()
	dsl.Map(counts, func(k window.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%d", k.Key, k.Window.Start), n
	}).To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 60_000 * 60_000
	cl := c.client(t)
	produce := func(tp string, ts ...int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, at := range ts {
			r := &kgo.Record{Topic: tp, Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(at)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := func(i int64) string { return fmt.Sprintf("k@%d", base+i*60_000) }
	opts := eosOptions(c, appID, runtime.StateDir(dir))

	// Run 1: topic a only; window 0 (3 records) closes.
	produce(ta, base+1000, base+2000, base+3000, base+60_000+1000)
	run := startHooked(t, topo, nil, opts...)
	c.updates(t, output, map[string]int64{w(0): 3}, time.Minute)
	run.stop(t)

	// Run 2: topic b only; window 1 (1 record, from run 1) closes.
	run = startHooked(t, topo, nil, opts...)
	produce(tb, base+120_000+1000)
	c.updates(t, output, map[string]int64{w(0): 3, w(1): 1}, time.Minute)
	run.stop(t)

	// Run 3: topic b only; window 2 closes. Window 1 must not come again.
	run = startHooked(t, topo, nil, opts...)
	produce(tb, base+180_000+1000)
	c.updates(t, output, map[string]int64{w(0): 3, w(1): 1, w(2): 1}, time.Minute)
	run.stop(t)
	all := c.updates(t, output, map[string]int64{w(0): 3, w(1): 1, w(2): 1}, 3*time.Second)
	for _, k := range []string{w(0), w(1), w(2)} {
		if len(all[k]) != 1 {
			t.Errorf("window %s emitted %v, want once", k, all[k])
		}
	}
}

// Runners marked for revival (their transaction was aborted by a group
// callback) are committed by the next commit that is not the poll loop's
// (here the shutdown's; a second onRevoked is the same): their positions
// are past input whose output was aborted, so the input's offsets commit
// without the output, and the restarted App never produces it.
func TestReviewEOSReviveMarkedCommittedByShutdown(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 50, 5, want)
	opts := eosOptions(c, appID, runtime.StateDir(dir), runtime.CommitInterval(time.Minute), runtime.TransactionTimeout(2*time.Minute))
	first := startHooked(t, keyedCount(t, input, output), nil, opts...)
	// All 50 processed: their updates are in the open transaction.
	unc := c.client(t, kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for seen := 0; seen < 50; {
		fs := unc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("saw %d of 50 uncommitted updates", seen)
		}
		seen += fs.NumRecords()
	}
	if err := runtime.ReviewRollBackThenStop(first.app); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-first.done:
		t.Logf("first run: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no stop")
	}
	second := startHooked(t, keyedCount(t, input, output), nil, eosOptions(c, appID, runtime.StateDir(dir))...)
	checkExactlyOnce(t, c.updates(t, output, want, 20*time.Second), want)
	second.stop(t)
}

// R-check: a TxnOffsetCommit refused by generation (the group moved on)
// aborts, revives every task, and the counts stay exact.
func TestReviewEOSTxnOffsetCommitRefused(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 3, input, output)
	var refused atomic.Int64
	e.Cluster().ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if refused.Load() >= 3 {
			return nil, nil, false
		}
		refused.Add(1)
		creq := req.(*kmsg.TxnOffsetCommitRequest)
		resp := creq.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range creq.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.IllegalGeneration.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	appID := topic(t, "app")
	want := map[string]int64{}
	in := startHooked(t, keyedCount(t, input, output), nil, eosOptions(c, appID, runtime.MaxPollRecords(50))...)
	for round := range 6 {
		keyedInput(t, c, input, round*200, 200, 31, want)
	}
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	if refused.Load() == 0 {
		t.Fatal("no TxnOffsetCommit refused")
	}
	in.stop(t)
}

// R-check: heartbeats answered UNKNOWN_MEMBER_ID (the member was
// dropped): onLost with a transaction open aborts it; the rejoined
// instance counts exactly.
func TestReviewEOSLostWithOpenTransaction(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 3, input, output)
	var lose atomic.Bool
	var lost atomic.Int64
	e.Cluster().ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if !lose.Load() {
			return nil, nil, false
		}
		lose.Store(false)
		lost.Add(1)
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	appID := topic(t, "app")
	want := map[string]int64{}
	hook := func(stage string) error { return nil }
	opts := eosOptions(c, appID, runtime.MaxPollRecords(20),
		runtime.SessionTimeout(6*time.Second), runtime.CommitInterval(2*time.Second))
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		opts = append(opts, runtime.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	in := startHooked(t, keyedCount(t, input, output), hook, opts...)
	for round := range 6 {
		keyedInput(t, c, input, round*200, 200, 31, want)
		if round == 2 || round == 4 {
			lose.Store(true)
		}
	}
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	if lost.Load() == 0 {
		t.Fatal("no heartbeat refused")
	}
	in.stop(t)
}
