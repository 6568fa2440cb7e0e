package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
)

// The scenario of issue 13: one input line holding a single 600 KB word,
// under Kafka's 1 MB limit, makes a repartition record of 1.2 MB (the word
// is its key and its value), which no topic with the default
// max.message.bytes takes. With -dlq the app goes on: every other word is
// counted exactly, and the dead-letter queue holds the line as read, with
// Kafka Streams' error headers. Without it the app stops with an error
// naming the line's topic, partition and offset and the record's size,
// and does not commit past the line. On kfake by default, on real Kafka
// under KAFKA_BROKERS (make test-kafka).
func TestOversizedWord(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String()+"/dlq", func(t *testing.T) { testOversizedWord(t, g, true) })
		t.Run(g.String()+"/fail", func(t *testing.T) { testOversizedWord(t, g, false) })
	}
}

func testOversizedWord(t *testing.T, g runtime.Guarantee, withDLQ bool) {
	c := kafkatest.New(t)
	input, output, dlq := kafkatest.Topic(t, "lines"), kafkatest.Topic(t, "counts"), kafkatest.Topic(t, "dlq")
	appID := kafkatest.Topic(t, "app")
	c.Create(t, 2, input, output, dlq)

	// Lines with keys, so the dead-letter record's key can be checked;
	// the big line comes in the middle of its partition's lines.
	lines := generateLines(400)
	big := strings.Repeat("w", 600_000)
	const bigAt = 200
	want := map[string]int64{}
	for i, l := range lines {
		if i == bigAt {
			continue
		}
		for _, w := range strings.Fields(l) {
			want[strings.ToLower(w)]++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := c.Client(t, kgo.DefaultProduceTopic(input), kgo.ProducerBatchMaxBytes(2<<20))
	now := time.Now()
	var bigRec *kgo.Record
	for i, l := range lines {
		r := &kgo.Record{Key: []byte("line-" + strconv.Itoa(i)), Value: []byte(l), Timestamp: now}
		if i == bigAt {
			r.Value = []byte(big)
			r.Headers = []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}
			bigRec = r
		}
		prod.Produce(ctx, r, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if bigRec.Offset < 0 {
		t.Fatalf("the big line was not produced")
	}

	opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.Brokers...), runtime.StateDir(t.TempDir()),
		runtime.ProcessingGuarantee(g), runtime.CommitInterval(100 * time.Millisecond),
		runtime.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	if withDLQ {
		opts = append(opts, errorOptions(dlq)...)
	}
	topo, err := Topology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	app, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	if !withDLQ {
		var runErr error
		select {
		case runErr = <-done:
		case <-ctx.Done():
			t.Fatal("the app did not stop on the oversized record")
		}
		checkOversizedError(t, runErr, bigRec, appID)
		// The group's offset of the big line's partition is not past it.
		offs, err := kadm.NewClient(prod).FetchOffsets(ctx, appID)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup(input, bigRec.Partition); ok && o.At > bigRec.Offset {
			t.Errorf("committed offset %d of %s partition %d is past the refused line at %d", o.At, input, bigRec.Partition, bigRec.Offset)
		}
		return
	}

	got, err := awaitCounts(ctx, c.Brokers, output, want, done)
	if err != nil {
		t.Fatal(err)
	}
	stopApp()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n, ok := got[big]; ok {
		t.Errorf("the 600 KB word was counted (%d)", n)
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("count of %q = %d, want %d", w, got[w], n)
		}
	}

	// The dead-letter queue holds the line exactly once, as read.
	dl := readAll(t, ctx, c, dlq)
	if len(dl) != 1 {
		t.Fatalf("dead-letter queue holds %d records, want 1", len(dl))
	}
	r := dl[0]
	if string(r.Key) != string(bigRec.Key) || string(r.Value) != big {
		t.Errorf("dead-letter record key %q, value of %d bytes; want key %q and the line's %d bytes", r.Key, len(r.Value), bigRec.Key, len(big))
	}
	if !r.Timestamp.Equal(bigRec.Timestamp) {
		t.Errorf("dead-letter record timestamp %v, want the line's %v", r.Timestamp, bigRec.Timestamp)
	}
	hs := map[string]string{}
	for _, h := range r.Headers {
		hs[h.Key] = string(h.Value)
	}
	if hs["origin"] != "test" {
		t.Errorf("the line's own header is missing: %q", hs)
	}
	if hs[operators.HeaderErrorException] != "*operators.ProductionError" {
		t.Errorf("exception header %q", hs[operators.HeaderErrorException])
	}
	msg := hs[operators.HeaderErrorMessage]
	if !strings.Contains(msg, appID+"-counts-repartition") || !strings.Contains(msg, "MESSAGE_TOO_LARGE") {
		t.Errorf("message header %q does not name the repartition topic and MESSAGE_TOO_LARGE", msg)
	}
	if size := recordSize(msg); size < 1_200_000 {
		t.Errorf("message header %q: size %d, want the 1.2 MB record's", msg, size)
	}
	if hs[operators.HeaderErrorTopic] != input || hs[operators.HeaderErrorPartition] != strconv.Itoa(int(bigRec.Partition)) ||
		hs[operators.HeaderErrorOffset] != strconv.FormatInt(bigRec.Offset, 10) {
		t.Errorf("error headers locate %s/%s/%s, want the line's %s/%d/%d", hs[operators.HeaderErrorTopic], hs[operators.HeaderErrorPartition],
			hs[operators.HeaderErrorOffset], input, bigRec.Partition, bigRec.Offset)
	}
}

var sizeRE = regexp.MustCompile(`a record of (\d+) bytes`)

// recordSize is the size a ProductionError's message gives.
func recordSize(msg string) int {
	m := sizeRE.FindStringSubmatch(msg)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkOversizedError checks Run's error without -dlq: it names the line's
// topic, partition and offset, the repartition topic and the size.
func checkOversizedError(t *testing.T, err error, line *kgo.Record, appID string) {
	t.Helper()
	if err == nil {
		t.Fatal("Run returned nil, want the oversized record's error")
	}
	ne, ok := errors.AsType[*operators.NodeError](err)
	if !ok || ne.Topic != line.Topic || ne.Partition != line.Partition || ne.Offset != line.Offset {
		t.Errorf("Run: %v; want a NodeError locating %s partition %d offset %d", err, line.Topic, line.Partition, line.Offset)
	}
	pe, ok := errors.AsType[*operators.ProductionError](err)
	if !ok || pe.Topic != appID+"-counts-repartition" || pe.Size < 1_200_000 {
		t.Errorf("Run: %v; want a ProductionError of the repartition topic and the record's 1.2 MB size", err)
	}
	msg := err.Error()
	for _, s := range []string{line.Topic, fmt.Sprintf("partition %d", line.Partition), fmt.Sprintf("offset %d", line.Offset), "-counts-repartition"} {
		if !strings.Contains(msg, s) {
			t.Errorf("Run's error %q does not say %q", msg, s)
		}
	}
}

// readAll reads topic from its start to its end offsets (committed
// records only).
func readAll(t *testing.T, ctx context.Context, c *kafkatest.Cluster, topic string) []*kgo.Record {
	t.Helper()
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxBytes(16<<20), kgo.KeepControlRecords())
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s partition %d: %v", topic, o.Partition, o.Err)
		}
	})
	pos := map[int32]int64{} // after the last record read, transaction markers included
	caughtUp := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) { ok = ok && pos[o.Partition] >= o.Offset })
		return ok
	}
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (%d records so far)", topic, ctx.Err(), len(recs))
		}
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				recs = append(recs, r)
			}
		})
	}
	return recs
}
