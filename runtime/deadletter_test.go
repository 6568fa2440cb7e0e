package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// batchBytes is the wire size of a record batch holding the record alone
// (kmsg's encoding, what the broker compares with max.message.bytes), plus
// at most the few bytes of recordBatchOverhead's margin.
func TestBatchBytes(t *testing.T) {
	for _, tc := range []struct {
		key, value []byte
		hs         []operators.Header
	}{
		{nil, nil, nil},
		{[]byte("k"), []byte("vv"), nil},
		{[]byte{}, make([]byte, 200), []operators.Header{{Key: "a", Value: nil}, {Key: "bb", Value: []byte("x")}}},
		{make([]byte, 600_000), make([]byte, 600_000), []operators.Header{{Key: "h", Value: []byte("x")}}},
	} {
		rec := kmsg.Record{Key: tc.key, Value: tc.value}
		for _, h := range tc.hs {
			rec.Headers = append(rec.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // everything after the length (a varint 0 when encoded)
		batch := kmsg.RecordBatch{Magic: 2, NumRecords: 1, Records: rec.AppendTo(nil)}
		wire := len(batch.AppendTo(nil)) // from FirstOffset on, as the broker counts it (61 bytes of header)
		got := batchBytes(tc.key, tc.value, tc.hs)
		if got < wire || got > wire+recordBatchOverhead-61 {
			t.Errorf("batchBytes(key %d, value %d, %d headers) = %d, want %d to %d", len(tc.key), len(tc.value), len(tc.hs), got, wire, wire+recordBatchOverhead-61)
		}
	}
}

// A refusal remembered from an aborted transaction (ExactlyOnce) is handed
// to the handler when the replay writes the same output of the same input
// record (same sink, topic and place among the sink's outputs), before it
// is produced; other outputs are not.
func TestRememberedRefusalOnReplay(t *testing.T) {
	p := newProducer(nil) // no client: producing would panic
	var calls []*operators.ProductionError
	var inputs []int64
	p.handler = &productionHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), dropped: func(string, string, string) {},
		handle: func(ec *operators.ErrorContext, err error) operators.Action {
			pe, _ := errors.AsType[*operators.ProductionError](err)
			calls = append(calls, pe)
			inputs = append(inputs, ec.Offset)
			return operators.Continue
		}}
	p.limits = &recordLimits{client: 1000012}
	m := map[string]int32{"out": 1000012}
	p.limits.topics.Store(&m)
	in := &kgo.Record{Topic: "in", Partition: 1, Offset: 7, Key: []byte("k"), Value: []byte("v")}
	// The second output of sink "s" for input in/1/7 was refused as
	// invalid; refusals arrive as the promise leaves them.
	p.refused = []refusal{{rec: &kgo.Record{Topic: "out"}, sc: &sinkContext{sinkOrigin: sinkOrigin{in: in, node: "s", seq: 1}}, err: kerr.InvalidRecord}}
	p.rememberRefused(context.Background())
	if len(p.refused) != 0 || len(p.remembered) != 1 {
		t.Fatalf("after rememberRefused: %d refusals left, %d remembered; want 0 and 1", len(p.refused), len(p.remembered))
	}
	r := &runner{}
	c := newTaskCollector(p, r).ForNode("s").(*nodeCollector)
	r.cur = in
	// The first output is produced (no client: it would panic), so the
	// test sends only the second one through a collector whose count says
	// one was sent already.
	c.seqIn, c.seq = in, 1
	if err := c.Send("out", -1, []byte("k"), []byte("v"), nil, 0); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !errors.Is(calls[0].Err, kerr.InvalidRecord) || calls[0].Node != "s" || calls[0].Topic != "out" || inputs[0] != 7 {
		t.Fatalf("handler calls %v (inputs %v), want one with INVALID_RECORD for sink s, topic out, input offset 7", calls, inputs)
	}
	// Committing past the input record forgets it.
	p.forgetRemembered(map[string]map[int32]kgo.EpochOffset{"in": {1: {Offset: 8}}})
	if len(p.remembered) != 0 {
		t.Errorf("%d refusals still remembered after the commit passed their input", len(p.remembered))
	}
}

// A refusal of a record written without an input record (a punctuator, a
// cache flush) is remembered by its sink, topic and content: the replay's
// identical record goes to the handler (else the transaction would abort
// for ever); the next commit forgets it.
func TestRememberedRefusalWithoutInput(t *testing.T) {
	p := newProducer(nil)
	var calls int
	p.handler = &productionHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), dropped: func(string, string, string) {},
		handle: func(ec *operators.ErrorContext, err error) operators.Action {
			calls++
			if ec.Offset != -1 || ec.Topic != "" {
				t.Errorf("handler context locates %s/%d, want no input record", ec.Topic, ec.Offset)
			}
			return operators.Continue
		}}
	p.limits = &recordLimits{client: 1000012}
	m := map[string]int32{"out": 1000012}
	p.limits.topics.Store(&m)
	p.refused = []refusal{{rec: &kgo.Record{Topic: "out", Value: []byte("window-end")}, sc: &sinkContext{sinkOrigin: sinkOrigin{node: "s"}}, err: kerr.InvalidTimestamp}}
	p.rememberRefused(context.Background())
	c := newTaskCollector(p, &runner{}).ForNode("s")
	if err := c.Send("out", -1, nil, []byte("window-end"), nil, 0); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("handler called %d times on the replayed record, want 1", calls)
	}
	// Remembered across commits (a punctuator may write it again), for
	// noInputLifetime commits.
	p.forgetRemembered(nil)
	if err := c.Send("out", -1, nil, []byte("window-end"), nil, 0); err != nil || calls != 2 {
		t.Fatalf("after a commit: Send %v, handler called %d times; want the handler again (2)", err, calls)
	}
	for range noInputLifetime {
		p.forgetRemembered(nil)
	}
	if len(p.remembered) != 0 {
		t.Errorf("%d refusals without input still remembered after %d commits", len(p.remembered), noInputLifetime+1)
	}
}

// Header values keep the difference between empty and null (franz-go
// writes a nil value as a null header).
func TestSinkRecordKeepsEmptyHeaderValues(t *testing.T) {
	p := newProducer(nil)
	sr := p.sinkRecord("out", -1, nil, nil, nil, []operators.Header{{Key: "empty", Value: []byte{}}, {Key: "null"}}, 0)
	if v := sr.rec.Headers[0].Value; v == nil || len(v) != 0 {
		t.Errorf("empty header value became %v (nil %v)", v, v == nil)
	}
	if v := sr.rec.Headers[1].Value; v != nil {
		t.Errorf("null header value became %v", v)
	}
	if r := p.record("log", 0, nil, nil, []operators.Header{{Key: "empty", Value: []byte{}}}, 0, nil); r.Headers[0].Value == nil {
		t.Error("a changelog record's empty header value became null")
	}
}

// A panic in the user's production handler stops the task with an error
// naming it, never the process, and never reaches another handler.
func TestProductionHandlerPanic(t *testing.T) {
	p := newProducer(nil)
	p.handler = &productionHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), dropped: func(string, string, string) {},
		handle: func(*operators.ErrorContext, error) operators.Action { panic("boom") }}
	p.limits = &recordLimits{client: 100}
	m := map[string]int32{"out": 512}
	p.limits.topics.Store(&m)
	r := &runner{cur: &kgo.Record{Topic: "in", Offset: 3}}
	err := newTaskCollector(p, r).ForNode("s").Send("out", -1, nil, make([]byte, 1000), nil, 0)
	pe, ok := errors.AsType[*operators.PanicError](err)
	if !ok || pe.Value != "boom" || pe.Node != "s" {
		t.Fatalf("Send: %v; want the handler's panic as a *operators.PanicError of sink s", err)
	}
}

// The dead-letter records of the other handlers, written through the
// task's collector, never go to the production handler: over the
// dead-letter topic's limit they stop the task, naming it.
func TestDeadLetterBypassesProductionHandler(t *testing.T) {
	p := newProducer(nil)
	p.handler = &productionHandler{deadLetter: "dlq", log: slog.New(slog.NewTextHandler(io.Discard, nil)), dropped: func(string, string, string) {},
		handle: func(*operators.ErrorContext, error) operators.Action {
			t.Error("the production handler was called for a dead-letter record")
			return operators.Continue
		}}
	p.limits = &recordLimits{client: 1000012}
	m := map[string]int32{"dlq": 1000}
	p.limits.topics.Store(&m)
	err := newTaskCollector(p, &runner{}).Send("dlq", -1, []byte("k"), make([]byte, 2000), nil, 0)
	if err == nil || !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), "dead-letter record") || !strings.Contains(err.Error(), "topic dlq") {
		t.Fatalf("Send: %v; want MESSAGE_TOO_LARGE naming the dead-letter topic", err)
	}
}

// A record a cache evicts while another input record is processed is
// refused as a record without an input record (as internal/task's
// handlers see it), not blamed on the record being processed.
func TestEvictedRecordHasNoInput(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To("out", serde.String, serde.Int64, dsl.Named("to-out"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(nil)
	var offsets []int64
	p.handler = &productionHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), dropped: func(string, string, string) {},
		handle: func(ec *operators.ErrorContext, err error) operators.Action {
			offsets = append(offsets, ec.Offset)
			return operators.Continue
		}}
	p.limits = &recordLimits{client: 1000012}
	m := map[string]int32{"out": 10} // every count is refused before it is produced
	p.limits.topics.Store(&m)
	r := &runner{}
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: newTaskCollector(p, r), Cache: state.NewCache(300)})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	r.task = tk
	var recs []*kgo.Record
	for i := range 40 {
		recs = append(recs, &kgo.Record{Topic: "in", Offset: int64(i), Timestamp: time.UnixMilli(int64(i + 1)),
			Key: []byte(fmt.Sprintf("key-%02d", i)), Value: []byte("v")})
	}
	r.add("in", 0, recs, -1)
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(offsets) == 0 {
		t.Fatal("no count was evicted while the records were processed: make the cache smaller")
	}
	for _, off := range offsets {
		if off != -1 {
			t.Fatalf("an evicted count was refused with input offset %d, want -1 (no input record): %v", off, offsets)
		}
	}
}
