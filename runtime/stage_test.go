package runtime

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// A round stages the records sent in it (producer.beginRound): until a
// batch is full they are not in franz-go's buffer, and endRound hands
// them all over. Senders on several goroutines, each to a partition of
// its own, many more records than the batches waiting may hold (a worker
// that gets ahead must wait for the round's goroutine, not deadlock with
// it): every record reaches its partition once, in the order it was sent.
func TestRoundStagesSendsInOrder(t *testing.T) {
	// Not a multiple of stageBatch: endRound has a partial batch to hand
	// over.
	const senders, per = 3, 3*stageDepth*stageBatch + stageBatch/3
	kc := kafkatest.New(t)
	topic := kafkatest.Topic(t, "staged")
	kc.Create(t, senders, topic)
	ctx := context.Background()
	p := handledProducer(kc.Client(t, kgo.RecordPartitioner(partitioner{})))
	var finished sync.WaitGroup
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			t.Errorf("partition %d value %s: %v", r.Partition, r.Value, err)
		}
		p.promise(r, err)
		finished.Done()
	}

	p.beginRound()
	few := stageBatch - 1
	finished.Add(few)
	for i := range few {
		p.produceRecord(&kgo.Record{Topic: topic, Partition: 0, Context: explicitPartition, Value: []byte(strconv.Itoa(i))}, promise)
	}
	if n := p.cl.BufferedProduceRecords(); n != 0 {
		t.Fatalf("%d records in franz-go's buffer before a batch was full, want 0 (staged)", n)
	}
	var wg sync.WaitGroup
	for s := range senders {
		from := 0
		if s == 0 {
			from = few
		}
		finished.Add(per - from)
		wg.Go(func() {
			for i := from; i < per; i++ {
				p.produceRecord(&kgo.Record{Topic: topic, Partition: int32(s), Context: explicitPartition, Value: []byte(strconv.Itoa(i))}, promise)
			}
		})
	}
	wg.Wait()
	p.endRound()
	// Every record must be in franz-go's buffer or acknowledged once
	// endRound returns. (Read in this order, a record acknowledged in
	// between counts twice, never none.)
	buffered := p.cl.BufferedProduceRecords()
	if got, want := buffered+p.finished.Load(), int64(senders*per); got < want {
		t.Fatalf("after endRound: %d records buffered or acknowledged, want all %d sent", got, want)
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.flush(fctx); err != nil {
		t.Fatal(err)
	}
	finished.Wait()

	rd := kc.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := make([]int, senders)
	for read := 0; read < senders*per && fctx.Err() == nil; {
		rd.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
			read++
			if want := strconv.Itoa(next[r.Partition]); string(r.Value) != want {
				t.Fatalf("partition %d offset %d: value %s, want %s (out of order, lost or twice)", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition]++
		})
	}
	if fmt.Sprint(next) != fmt.Sprint([]int{per, per, per}) {
		t.Fatalf("records read per partition %v, want %d each", next, per)
	}
}

// Outside of a round, a send goes to franz-go at once, as a commit's
// resends and the tests' bare producers need.
func TestSendOutsideRoundIsNotStaged(t *testing.T) {
	kc := kafkatest.New(t)
	topic := kafkatest.Topic(t, "direct")
	kc.Create(t, 1, topic)
	p := handledProducer(kc.Client(t, kgo.RecordPartitioner(partitioner{})))
	p.beginRound()
	p.endRound()
	p.produceRecord(&kgo.Record{Topic: topic, Value: []byte("v")}, p.promise)
	if got := p.cl.BufferedProduceRecords() + p.finished.Load(); got < 1 {
		t.Fatal("a send outside a round is neither in franz-go's buffer nor acknowledged: it was staged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// A task's sends while it restores (its processors' Init, on the restore's
// goroutine) wait in its runner and reach franz-go only when the poll loop
// sends them; once restored, its sends go at once.
func TestRestoringTaskSendsWait(t *testing.T) {
	kc := kafkatest.New(t)
	topic := kafkatest.Topic(t, "init")
	kc.Create(t, 1, topic)
	p := handledProducer(kc.Client(t, kgo.RecordPartitioner(partitioner{})))
	r := &runner{restoring: true}
	c := newTaskCollector(p, r).ForNode("sink")
	if err := c.Send(topic, 0, []byte("k"), []byte("forwarded"), nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := (changelogWriter{p: p, r: r}).WriteChangelog(topic, 0, []byte("k"), []byte("logged"), nil, 1); err != nil {
		t.Fatal(err)
	}
	if got := p.produced.Load(); got != 0 || len(r.held) != 2 {
		t.Fatalf("while restoring: %d records sent, %d held; want 0 sent, 2 held", got, len(r.held))
	}
	r.restoring = false
	if err := c.Send(topic, 0, []byte("k"), []byte("after"), nil, 1); err != nil {
		t.Fatal(err)
	}
	if got := p.produced.Load(); got != 1 || len(r.held) != 2 {
		t.Fatalf("restored: %d records sent, %d held; want 1 sent (at once), 2 held", got, len(r.held))
	}
}
