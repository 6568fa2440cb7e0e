package runtime

import (
	"context"
	"fmt"
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

// offsetsPartition is Kafka's partitionFor: Utils.abs(groupId.hashCode())
// % partitions. The expected values come from Java (String.hashCode and
// Kafka's Utils.abs), including a group whose hash is Integer.MIN_VALUE
// (Utils.abs makes it 0) and groups outside ASCII (UTF-16 code units).
func TestOffsetsPartition(t *testing.T) {
	for _, c := range []struct {
		group  string
		n, out int32
	}{
		{"chaos-eos-1796602498959879475", 50, 40},
		{"chaos-eos-1796602498959879475", 4, 2},
		{"my-app", 50, 0},
		{"wordcount-ü-€", 50, 31},
		{"wordcount-ü-€", 4, 3},
		{"\U0001F600grp", 50, 36},
		{"polygenelubricants", 50, 0},
	} {
		if got := offsetsPartition(c.group, c.n); got != c.out {
			t.Errorf("offsetsPartition(%q, %d) = %d, want %d", c.group, c.n, got, c.out)
		}
	}
}

// recordingHandler keeps the messages and attributes of a logger's
// records.
type recordingHandler struct {
	ch chan string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	select {
	case h.ch <- b.String():
	default:
	}
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// The wait for stable committed offsets is bounded: a transaction holding
// the group's offsets past the bounds (a hanging transaction, or one of a
// producer whose timeout is far above the App's) is logged, named by its
// producer ID and transactional ID, and then fails the fetch with an error
// naming it, rather than keeping the instance's assignment waiting
// silently for good.
func TestCommittedOffsetsUnstableBounded(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic, group := kafkatest.Topic(t, "hang-in"), kafkatest.Topic(t, "hang-app")
	txnID := group + "-w1" // an instance of the application
	kc.Create(t, 1, topic)
	raw, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var first kadm.Offsets
	first.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	if err := kadm.NewClient(raw).CommitAllOffsets(ctx, group, first); err != nil {
		t.Fatal(err)
	}
	pid, epoch := openOffsetTransaction(ctx, t, raw, txnID, group, topic, 5)
	defer func() {
		// Ends it, for the next tests on the same broker.
		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch = txnID, pid, epoch
		_, _ = end.RequestWith(context.Background(), raw)
	}()

	b := dsl.NewBuilder()
	dsl.FromTopic(b, topic, serde.Bytes, serde.Bytes).To(topic+"-out", serde.Bytes, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	logs := &recordingHandler{ch: make(chan string, 100)}
	a, err := New(topo, ApplicationID(group), Brokers(kc.Brokers...), StateDir(t.TempDir()), Logger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	a.admin = raw
	a.unstableBounds = &[2]time.Duration{500 * time.Millisecond, 3 * time.Second}
	start := time.Now()
	_, _, err = a.committedOffsets(ctx)
	took := time.Since(start)
	t.Log(err)
	if err == nil {
		t.Fatal("committed offsets fetched while a transaction committing them is open")
	}
	holder := fmt.Sprintf("producer ID %d", pid)
	for _, want := range []string{"UNSTABLE_OFFSET_COMMIT", holder, "transactional ID " + txnID, "kafka-transactions.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if took < 3*time.Second || took > 30*time.Second {
		t.Errorf("the fetch failed after %v, want after the 3s bound", took)
	}
	warned := false
	for len(logs.ch) > 0 {
		if l := <-logs.ch; strings.HasPrefix(l, "ERROR committed offsets still unstable") && strings.Contains(l, holder) {
			warned = true
		}
	}
	if !warned {
		t.Error("no error logged naming the transaction before the fetch failed")
	}
}

// openOffsetTransaction begins a transaction of txnID (timeout 60s) that
// commits offset of topic's partition 0 for group, and leaves it open; it
// returns the producer ID and epoch.
func openOffsetTransaction(ctx context.Context, t *testing.T, raw *kgo.Client, txnID, group, topic string, offset int64) (int64, int16) {
	t.Helper()
	check := func(what string, code int16) {
		t.Helper()
		if err := kerr.ErrorForCode(code); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	topics, err := kadm.NewClient(raw).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
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
	rp.Partition, rp.Offset = 0, offset
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
	return initResp.ProducerID, initResp.ProducerEpoch
}
