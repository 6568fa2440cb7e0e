package runtime

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/serde"
)

// signalHandler is a slog handler that closes ch at the first record whose
// message contains msg.
type signalHandler struct {
	msg string
	ch  chan struct{}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		select {
		case <-h.ch:
		default:
			close(h.ch)
		}
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }

// The committed offsets a task resumes from are stable ones: while a
// transaction that commits offsets of the group is open, the fetch (with
// RequireStable) is answered UNSTABLE_OFFSET_COMMIT and retried, and
// returns the offset the transaction committed once it commits, not the
// one before it.
func TestCommittedOffsetsRequireStable(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic, group, txnID := kafkatest.Topic(t, "stable-in"), kafkatest.Topic(t, "stable-app"), kafkatest.Topic(t, "stable-txn")
	kc.Create(t, 1, topic)
	raw, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	adm := kadm.NewClient(raw)
	var first kadm.Offsets
	first.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, first); err != nil {
		t.Fatal(err)
	}
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	// A transaction committing offset 5, left open.
	check := func(what string, code int16) {
		t.Helper()
		if err := kerr.ErrorForCode(code); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	id := txnID
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.TransactionalID, initReq.TransactionTimeoutMillis = &id, 60000
	initResp, err := initReq.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	check("init producer ID", initResp.ErrorCode)
	addReq := kmsg.NewPtrAddOffsetsToTxnRequest()
	addReq.TransactionalID, addReq.ProducerID, addReq.ProducerEpoch, addReq.Group = txnID, initResp.ProducerID, initResp.ProducerEpoch, group
	addResp, err := addReq.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	check("add offsets to transaction", addResp.ErrorCode)
	commitReq := kmsg.NewPtrTxnOffsetCommitRequest()
	commitReq.TransactionalID, commitReq.Group = txnID, group
	commitReq.ProducerID, commitReq.ProducerEpoch, commitReq.Generation = initResp.ProducerID, initResp.ProducerEpoch, -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, topics[topic].ID
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 5
	rt.Partitions = append(rt.Partitions, rp)
	commitReq.Topics = append(commitReq.Topics, rt)
	commitResp, err := commitReq.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range commitResp.Topics {
		for _, p := range rt.Partitions {
			check("transactional offset commit", p.ErrorCode)
		}
	}

	b := dsl.NewBuilder()
	dsl.FromTopic(b, topic, serde.Bytes, serde.Bytes).To(topic+"-out", serde.Bytes, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	unstable := &signalHandler{msg: "committed offsets unstable", ch: make(chan struct{})}
	a, err := New(topo, ApplicationID(group), Brokers(kc.Brokers...), StateDir(t.TempDir()), Logger(slog.New(unstable)))
	if err != nil {
		t.Fatal(err)
	}
	a.admin = raw
	type result struct {
		offsets map[topicPartition]int64
		err     error
	}
	done := make(chan result, 1)
	go func() {
		m, _, err := a.committedOffsets(ctx)
		done <- result{m, err}
	}()
	select {
	case <-unstable.ch:
	case r := <-done:
		t.Fatalf("committed offsets fetched while a transaction committing them is open: %v, %v", r.offsets, r.err)
	case <-ctx.Done():
		t.Fatal("no UNSTABLE_OFFSET_COMMIT retry within a minute")
	}
	endReq := kmsg.NewPtrEndTxnRequest()
	endReq.TransactionalID, endReq.ProducerID, endReq.ProducerEpoch, endReq.Commit = txnID, initResp.ProducerID, initResp.ProducerEpoch, true
	endResp, err := endReq.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	check("end transaction", endResp.ErrorCode)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.offsets[topicPartition{topic, 0}]; got != 5 {
		t.Errorf("committed offset of %s partition 0 = %d, want 5 (the transaction's, once it committed)", topic, got)
	}
}
