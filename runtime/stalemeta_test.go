package runtime_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A task's local meta record can be ahead of the group's committed offset
// (a kill -9 or a refused offset commit between steps 3 and 4 of the commit
// protocol). It must not be trusted as the resume position once another
// instance has owned the task in between and written changelog records for
// inputs below it: those records would pass the "confirmed" test (position
// < resume) and be restored over the newer local state, and the input
// between them and the local meta position would never be applied. The
// local state is discarded instead (checkLocalState: the changelog grew
// since its last commit) and the task restores from the changelog.
//
//  1. Instance B (state dir B) counts all 100 records of key k, commits
//     its local state at position 100 when it is closed; its offset commit
//     fails. The group has no committed offset.
//  2. Instance A (state dir A) takes the task, counts its first poll of at
//     most 10 records, logs the count and fails on its offset commit (a
//     kill -9 between its steps 3 and 4 is the same; so is a successful
//     commit at any offset < 100).
//  3. B gets the task back. One more input record makes the count 101.
func TestStaleLocalMetaAfterAnotherOwner(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.client(t, kgo.DefaultProduceTopic(input))
	var rs []*kgo.Record
	for range 100 {
		rs = append(rs, &kgo.Record{Key: []byte("k"), Value: []byte("v")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var failing atomic.Bool // offset commits fail (fatally for the App)
	e.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		creq := req.(*kmsg.OffsetCommitRequest)
		resp := creq.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range creq.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.GroupAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	appID := topic(t, "app")
	dirB, dirA := t.TempDir(), t.TempDir()
	failing.Store(true)

	// 1. B counts all 100, then its only commit, at Close, fails: no
	// commit before (the interval is an hour), and without a record cache
	// every count is written out as it is made, so the output tells when
	// all 100 are counted.
	bApp, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(time.Hour), runtime.CacheMaxBytes(0), runtime.StateDir(dirB))
	if err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() { bDone <- bApp.Run(ctx) }()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(map[string]int64{"k": 100})); got["k"] != 100 {
		t.Fatalf("B counted %d, want all 100", got["k"])
	}
	if err := bApp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err == nil || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("B's run = %v, want its failed commit", err)
	}

	// 2. A counts its first 10 records; its offset commit fails too.
	aApp, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(time.Millisecond), runtime.MaxPollRecords(10), runtime.StateDir(dirA))
	if err != nil {
		t.Fatal(err)
	}
	if err := aApp.Run(ctx); err == nil {
		t.Fatal("A's run did not fail")
	}

	// 3. B again; commits succeed.
	failing.Store(false)
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(50*time.Millisecond), runtime.StateDir(dirB))
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.counts(t, output, 15*time.Second, func(m map[string]int64) bool { return m["k"] >= 101 })
	in.stop(t)
	if got["k"] != 101 {
		t.Errorf("count after the task came back = %d, want 101 (each of the 101 inputs counted once)", got["k"])
	}
}
