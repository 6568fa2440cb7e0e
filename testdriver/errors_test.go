package testdriver_test

// The error handlers in the driver: each handler (deserialization,
// processing, production) with each outcome (fail, continue, dead-letter),
// panics in user functions, processors and punctuators, and the
// dead-letter records checked header by header against what Kafka Streams
// 4.3.1 writes (testdata/deadletter/DeadLetterOracle.java and its output,
// oracle.txt).

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// oddSerde is serde.Int64 that refuses to encode odd values: a sink's
// serialization failure on demand.
type oddSerde struct{}

func (oddSerde) Encode(dst []byte, v int64) ([]byte, error) {
	if v%2 != 0 {
		return dst, fmt.Errorf("odd value %d", v)
	}
	return serde.Int64.Encode(dst, v)
}

func (oddSerde) Decode(b []byte) (int64, error) { return serde.Int64.Decode(b) }

// pipeline is "in" (string, int64) → src → MapValues "triple" (panics on
// 13, the user's bug) → sink "out" with values that must be even (oddSerde).
func pipeline(t *testing.T, opts ...testdriver.Option) *testdriver.Driver {
	t.Helper()
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src"))
	dsl.MapValues(s, func(v int64) int64 {
		if v == 13 {
			panic("unlucky 13")
		}
		return v * 3
	}, dsl.Named("triple")).To("out", serde.String, oddSerde{}, dsl.Named("sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// header returns the value of the header named key; ok is false if there
// is none.
func header(hs []operators.Header, key string) (v []byte, ok bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// checkDLQ checks one dead-letter record: key, value, timestamp, the input
// record's headers first, then Kafka Streams' six error headers in its
// order with the values it writes.
func checkDLQ(t *testing.T, r operators.Record[[]byte, []byte], key, value []byte, ts int64, in []operators.Header,
	exception, message, topic string, partition int32, offset int64) {
	t.Helper()
	if string(r.Key) != string(key) || r.NullKey != (key == nil) {
		t.Errorf("dead-letter key %q (null %v), want %q", r.Key, r.NullKey, key)
	}
	if string(r.Value) != string(value) || r.Tombstone != (value == nil) {
		t.Errorf("dead-letter value %q (null %v), want %q", r.Value, r.Tombstone, value)
	}
	if r.Timestamp != ts {
		t.Errorf("dead-letter timestamp %d, want %d", r.Timestamp, ts)
	}
	if len(r.Headers) != len(in)+6 {
		t.Fatalf("dead-letter headers %v: want the %d input headers and 6 error headers", r.Headers, len(in))
	}
	for i, h := range in {
		if r.Headers[i].Key != h.Key || string(r.Headers[i].Value) != string(h.Value) {
			t.Errorf("header %d is %s=%q, want the input's %s=%q", i, r.Headers[i].Key, r.Headers[i].Value, h.Key, h.Value)
		}
		if (r.Headers[i].Value == nil) != (h.Value == nil) {
			t.Errorf("header %s: null %v, want null %v as the input's (an empty value is not null)", h.Key, r.Headers[i].Value == nil, h.Value == nil)
		}
	}
	keys := []string{"__streams.errors.exception", "__streams.errors.message", "__streams.errors.stacktrace",
		"__streams.errors.topic", "__streams.errors.partition", "__streams.errors.offset"}
	for i, k := range keys {
		if got := r.Headers[len(in)+i].Key; got != k {
			t.Errorf("error header %d is %s, want %s (Kafka Streams' order)", i, got, k)
		}
	}
	check := func(k, want string) {
		t.Helper()
		v, _ := header(r.Headers, k)
		if string(v) != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	check("__streams.errors.exception", exception)
	check("__streams.errors.message", message)
	check("__streams.errors.partition", fmt.Sprint(partition))
	check("__streams.errors.offset", fmt.Sprint(offset))
	tv, _ := header(r.Headers, "__streams.errors.topic")
	if topic == "" {
		if tv != nil {
			t.Errorf("topic header %q, want null (no source record)", tv)
		}
	} else if string(tv) != topic {
		t.Errorf("topic header %q, want %q", tv, topic)
	}
	if st, _ := header(r.Headers, "__streams.errors.stacktrace"); len(st) == 0 {
		t.Error("empty stacktrace header")
	}
}

func readDLQ(t *testing.T, d *testdriver.Driver, topic string) []operators.Record[[]byte, []byte] {
	t.Helper()
	rs, err := testdriver.CreateOutputTopic(d, topic, serde.Bytes, serde.Bytes).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func readOut(t *testing.T, d *testdriver.Driver) []string {
	t.Helper()
	rs, err := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s=%d", r.Key, r.Value))
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// The three handlers with each outcome. Records: a=2 (fine), b=<3 bytes>
// (cannot be deserialized), c=13 (the mapper panics), d=1 (3 is odd: the
// sink cannot serialize it), e=4 (fine).
func TestHandlerOutcomes(t *testing.T) {
	type failure struct {
		kind   string // which handler
		key    string
		offset int64
		node   string
	}
	failures := []failure{
		{"deserialization", "b", 1, "src"},
		{"processing", "c", 2, "triple"},
		{"production", "d", 3, "sink"},
	}
	inHeaders := []operators.Header{{Key: "trace", Value: []byte("t-1")}, {Key: "empty", Value: []byte{}}}
	pipeAll := func(t *testing.T, d *testdriver.Driver) error {
		t.Helper()
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Bytes)
		enc := func(v int64) []byte { b, _ := serde.Int64.Encode(nil, v); return b }
		for i, r := range []operators.Record[string, []byte]{
			{Key: "a", Value: enc(2)}, {Key: "b", Value: []byte{1, 2, 3}}, {Key: "c", Value: enc(13)},
			{Key: "d", Value: enc(1)}, {Key: "e", Value: enc(4)},
		} {
			r.Timestamp, r.Headers = int64(100+i), inHeaders
			if err := in.PipeRecord(r); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range failures {
		handler := func(h operators.ErrorHandler) testdriver.Option {
			switch f.kind {
			case "deserialization":
				return testdriver.OnDeserializationError(h)
			case "processing":
				return testdriver.OnProcessingError(h)
			}
			return testdriver.OnProductionError(h)
		}
		// The other two handlers let their records go on.
		others := []testdriver.Option{testdriver.OnDeserializationError(operators.LogAndContinue),
			testdriver.OnProcessingError(operators.LogAndContinue), testdriver.OnProductionError(operators.LogAndContinue)}
		t.Run(f.kind+"/fail", func(t *testing.T) {
			d := pipeline(t, append(others, handler(operators.LogAndFail))...)
			err := pipeAll(t, d)
			ne, ok := operators.FailedRecord(err)
			if !ok {
				t.Fatalf("error %v: want one locating the input record", err)
			}
			if ne.Node != f.node || ne.Topic != "in" || ne.Partition != 0 || ne.Offset != f.offset {
				t.Errorf("failed at node %s, %s-%d@%d; want node %s, in-0@%d", ne.Node, ne.Topic, ne.Partition, ne.Offset, f.node, f.offset)
			}
			for _, s := range []string{f.node, "topic in, partition 0, offset " + fmt.Sprint(f.offset)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
		t.Run(f.kind+"/continue", func(t *testing.T) {
			d := pipeline(t, append(others, handler(operators.LogAndContinue), testdriver.WithDeadLetterQueue("dlq"))...)
			if err := pipeAll(t, d); err != nil {
				t.Fatal(err)
			}
			equal(t, "output", readOut(t, d), []string{"a=6", "e=12"})
			if n := d.DroppedRecords(f.node, f.kind+"-error"); n != 1 {
				t.Errorf("dropped by %s for %s-error: %d, want 1", f.node, f.kind, n)
			}
			if rs := readDLQ(t, d, "dlq"); len(rs) != 0 {
				t.Errorf("dead-letter queue holds %d records, want none", len(rs))
			}
		})
		t.Run(f.kind+"/dead-letter", func(t *testing.T) {
			var seen *operators.ErrorContext
			h := func(ctx *operators.ErrorContext, err error) operators.Action {
				c := *ctx
				seen = &c
				return operators.DeadLetter
			}
			d := pipeline(t, append(others, handler(h), testdriver.WithDeadLetterQueue("dlq"))...)
			if err := pipeAll(t, d); err != nil {
				t.Fatal(err)
			}
			equal(t, "output", readOut(t, d), []string{"a=6", "e=12"})
			if n := d.DroppedRecords(f.node, "dead-letter"); n != 1 {
				t.Errorf("dead-lettered by %s: %d, want 1", f.node, n)
			}
			if n := d.DroppedRecords(f.node, f.kind+"-error"); n != 0 {
				t.Errorf("dropped by %s for %s-error: %d, want 0 (it was dead-lettered)", f.node, f.kind, n)
			}
			if seen == nil || seen.Node != f.node || seen.Kind.String() != f.kind || seen.Topic != "in" || seen.Offset != f.offset ||
				seen.TaskID != "0_0" || seen.Timestamp != 100+f.offset {
				t.Errorf("handler saw %+v", seen)
			}
			rs := readDLQ(t, d, "dlq")
			if len(rs) != 1 {
				t.Fatalf("dead-letter queue holds %d records, want 1", len(rs))
			}
			var value []byte
			var exception, message string
			switch f.kind {
			case "deserialization":
				value = []byte{1, 2, 3}
				exception = "*operators.DeserializationError"
				message = "sluice: source src: cannot deserialize the value of the record at topic in, partition 0, offset 1: sluice: serde int64: cannot decode 3 bytes: want 8"
			case "processing":
				value, _ = serde.Int64.Encode(nil, 13)
				exception = "*operators.PanicError"
				message = "sluice: node triple panicked: unlucky 13"
			case "production":
				value, _ = serde.Int64.Encode(nil, 1)
				exception = "*operators.SerializationError"
				message = "sluice: sink sink: cannot serialize the value of a record for topic out: odd value 3"
			}
			checkDLQ(t, rs[0], []byte(f.key), value, 100+f.offset, inHeaders, exception, message, "in", 0, f.offset)
		})
		t.Run(f.kind+"/dead-letter-without-topic", func(t *testing.T) {
			d := pipeline(t, append(others, handler(operators.SendToDeadLetterQueue))...)
			err := pipeAll(t, d)
			if err == nil || !strings.Contains(err.Error(), "testdriver.WithDeadLetterQueue") {
				t.Errorf("error %v: want one naming the option to set", err)
			}
			if ne, ok := operators.FailedRecord(err); !ok || ne.Offset != f.offset {
				t.Errorf("error %v does not locate the record at offset %d", err, f.offset)
			}
		})
	}
}

// A panic's dead-letter record carries the goroutine's stack in the
// stacktrace header, naming the function that panicked.
func TestPanicStackInDeadLetter(t *testing.T) {
	d := pipeline(t, testdriver.OnProcessingError(operators.SendToDeadLetterQueue), testdriver.WithDeadLetterQueue("dlq"))
	if err := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64).PipeAt("c", 13, 5); err != nil {
		t.Fatal(err)
	}
	rs := readDLQ(t, d, "dlq")
	if len(rs) != 1 {
		t.Fatalf("%d dead-letter records, want 1", len(rs))
	}
	st, _ := header(rs[0].Headers, operators.HeaderErrorStacktrace)
	if !strings.Contains(string(st), "TestPanicStackInDeadLetter") || !strings.Contains(string(st), "panic") {
		t.Errorf("stacktrace header does not show the panicking function:\n%s", st)
	}
}

// A handler that panics fails the task with an error saying so, as Kafka
// Streams fails on a handler that throws.
func TestHandlerPanicFails(t *testing.T) {
	d := pipeline(t, testdriver.OnProcessingError(func(*operators.ErrorContext, error) operators.Action { panic("handler bug") }))
	err := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64).PipeAt("c", 13, 5)
	if err == nil || !strings.Contains(err.Error(), "handler panicked: handler bug") || !strings.Contains(err.Error(), "unlucky 13") {
		t.Errorf("error %v: want the handler's panic and the failure it handled", err)
	}
}

// panicky is a user processor that panics on value 13, returns an error on
// 7, and forwards the rest; its stream-time punctuator, every 10 ms,
// panics at stream time 20 and returns an error at 30.
func panicky() operators.Processor[string, int64, string, int64] {
	return &operators.ProcessorFuncs[string, int64, string, int64]{
		InitFunc: func(ctx operators.ProcessorContext[string, int64]) error {
			_, err := ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
				switch ts {
				case 20:
					panic("punctuator panic")
				case 30:
					return errors.New("punctuator error")
				}
				return ctx.Forward(operators.Record[string, int64]{Key: "tick", Value: ts, Timestamp: ts})
			})
			return err
		},
		ProcessFunc: func(ctx operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
			switch r.Value {
			case 13:
				panic(fmt.Sprintf("processor panic on %s", r.Key))
			case 7:
				return fmt.Errorf("processor error on %s", r.Key)
			}
			return ctx.Forward(r)
		},
	}
}

func processorPipeline(t *testing.T, opts ...testdriver.Option) *testdriver.Driver {
	t.Helper()
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src"))
	dsl.Process(s, panicky, dsl.Named("proc")).To("out", serde.String, serde.Int64, dsl.Named("sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// A panicking user processor and punctuator never crash the test: with
// Fail the error is a *PanicError naming the node; with Continue the
// pipeline goes on and each failure is counted; with DeadLetter the
// punctuator's failures are written as Kafka Streams 4.3.1 writes them (null
// key and value, the punctuation's time, a null topic header, partition and
// offset -1).
func TestPanickingProcessorAndPunctuator(t *testing.T) {
	t.Run("fail", func(t *testing.T) {
		d := processorPipeline(t)
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		err := in.PipeAt("x", 13, 1)
		pe, ok := errors.AsType[*operators.PanicError](err)
		if !ok || pe.Node != "proc" || pe.Value != "processor panic on x" {
			t.Fatalf("error %v: want a PanicError of node proc", err)
		}
		if ne, ok := operators.FailedRecord(err); !ok || ne.Node != "proc" || ne.Offset != 0 {
			t.Errorf("error %v does not locate node proc and offset 0", err)
		}
		// The punctuator's panic, at stream time 20, fails too, naming the
		// node; in a punctuator there is no input record.
		d = processorPipeline(t)
		in = testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		if err := in.PipeAt("x", 1, 1); err != nil {
			t.Fatal(err)
		}
		err = in.PipeAt("y", 1, 20)
		if pe, ok := errors.AsType[*operators.PanicError](err); !ok || pe.Node != "proc" || pe.Value != "punctuator panic" {
			t.Fatalf("error %v: want the punctuator's PanicError of node proc", err)
		}
	})
	t.Run("continue", func(t *testing.T) {
		d := processorPipeline(t, testdriver.OnProcessingError(operators.LogAndContinue))
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		for i, v := range []int64{1, 13, 7, 2} {
			if err := in.PipeAt(fmt.Sprint("k", i), v, int64(10*i)); err != nil {
				t.Fatal(err)
			}
		}
		// Stream time 0, 10, 20 (the punctuator panics), 30 (it errs).
		equal(t, "output", readOut(t, d), []string{"k0=1", "tick=0", "tick=10", "k3=2"})
		if n := d.DroppedRecords("proc", "processing-error"); n != 4 {
			t.Errorf("processing errors counted: %d, want 4 (two records, two punctuations)", n)
		}
	})
	t.Run("dead-letter", func(t *testing.T) {
		d := processorPipeline(t, testdriver.OnProcessingError(operators.SendToDeadLetterQueue), testdriver.WithDeadLetterQueue("dlq"))
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		for i, v := range []int64{1, 13, 7, 2} {
			if err := in.PipeAt(fmt.Sprint("k", i), v, int64(10*i)); err != nil {
				t.Fatal(err)
			}
		}
		equal(t, "output", readOut(t, d), []string{"k0=1", "tick=0", "tick=10", "k3=2"})
		rs := readDLQ(t, d, "dlq")
		if len(rs) != 4 {
			t.Fatalf("%d dead-letter records, want 4", len(rs))
		}
		v13, _ := serde.Int64.Encode(nil, 13)
		v7, _ := serde.Int64.Encode(nil, 7)
		checkDLQ(t, rs[0], []byte("k1"), v13, 10, nil, "*operators.PanicError", "sluice: node proc panicked: processor panic on k1", "in", 0, 1)
		// The punctuation at stream time 20 fires after record k2 (offset 2)
		// is processed, the record's own failure first.
		checkDLQ(t, rs[1], []byte("k2"), v7, 20, nil, "*errors.errorString", "processor error on k2", "in", 0, 2)
		checkDLQ(t, rs[2], nil, nil, 20, nil, "*operators.PanicError", "sluice: node proc panicked: punctuator panic", "", -1, -1)
		checkDLQ(t, rs[3], nil, nil, 30, nil, "*errors.errorString", "punctuator error", "", -1, -1)
		if n := d.DroppedRecords("proc", "dead-letter"); n != 4 {
			t.Errorf("dead-lettered: %d, want 4", n)
		}
	})
}

// A record fanned out to two branches still reaches the second when the
// first one's user function panicked and the handler let it go on: the
// handler runs in the failing node, as Kafka Streams' ProcessorNode does.
func TestContinueGoesOnWithSiblings(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	s.Peek(func(string, int64) { panic("first branch") }, dsl.Named("bad-peek"))
	dsl.MapValues(s, func(v int64) int64 { return v + 1 }).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, testdriver.OnProcessingError(operators.LogAndContinue))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64).PipeAt("k", 1, 1); err != nil {
		t.Fatal(err)
	}
	equal(t, "output", readOut(t, d), []string{"k=2"})
	if n := d.DroppedRecords("bad-peek", "processing-error"); n != 1 {
		t.Errorf("processing errors of bad-peek: %d, want 1", n)
	}
}

// SkipUndecodableRecords is OnDeserializationError(LogAndContinue).
func TestSkipUndecodableRecordsShorthand(t *testing.T) {
	d := pipeline(t, testdriver.SkipUndecodableRecords())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Bytes)
	if err := in.PipeAt("b", []byte{1}, 1); err != nil {
		t.Fatal(err)
	}
	if n := d.DroppedRecords("src", "deserialization-error"); n != 1 {
		t.Errorf("dropped: %d, want 1", n)
	}
}

// A global store's undecodable record goes to the deserialization handler
// too; DeadLetter writes no dead-letter record for it, as Kafka Streams
// 4.3.1 sends none for a global store's records: it is counted as dropped
// ("deserialization-error") and the store goes on.
func TestGlobalStoreDeadLetterIsDropped(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, "prices", serde.String, serde.Int64, dsl.Named("prices-src"))
	s := dsl.FromTopic(b, "orders", serde.String, serde.String)
	dsl.JoinGlobal(s, g, func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) },
		func(_ dsl.Maybe[string], v string, p int64) int64 { return p }).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []operators.ErrorKind
	d, err := testdriver.New(topo, testdriver.WithDeadLetterQueue("dlq"),
		testdriver.OnDeserializationError(func(ctx *operators.ErrorContext, _ error) operators.Action {
			kinds = append(kinds, ctx.Kind)
			return operators.DeadLetter
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	prices := testdriver.CreateInputTopic(d, "prices", serde.String, serde.Bytes)
	if err := prices.PipeAt("apple", []byte{1}, 1); err != nil {
		t.Fatal(err)
	}
	enc, _ := serde.Int64.Encode(nil, 5)
	if err := prices.PipeAt("pear", enc, 2); err != nil {
		t.Fatal(err)
	}
	if err := testdriver.CreateInputTopic(d, "orders", serde.String, serde.String).PipeAt("o1", "pear", 3); err != nil {
		t.Fatal(err)
	}
	equal(t, "output", readOut(t, d), []string{"o1=5"})
	if len(kinds) != 1 || kinds[0] != operators.DeserializationFailure {
		t.Errorf("handler calls %v, want one deserialization failure", kinds)
	}
	if rs := readDLQ(t, d, "dlq"); len(rs) != 0 {
		t.Errorf("%d dead-letter records for a global store's record, want none", len(rs))
	}
	if n := d.DroppedRecords("prices-src-source", "deserialization-error"); n != 1 {
		t.Errorf("dropped: %d, want 1", n)
	}
}

// The dead-letter records of a processor that fails on a record, its
// punctuator that fails at every punctuation, and an undecodable record
// with a header, against what Kafka Streams 4.3.1 writes for the same
// (testdata/deadletter/oracle.txt, from DeadLetterOracle.java there): the
// same records in the same order, with the same keys, values, timestamps,
// headers and header values, but for the exception, message and
// stacktrace, which name Java classes there and Go types here.
func TestDeadLetterOracle(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.String, dsl.Named("src"))
	dsl.Process(s, func() operators.Processor[string, string, string, string] {
		return &operators.ProcessorFuncs[string, string, string, string]{
			InitFunc: func(ctx operators.ProcessorContext[string, string]) error {
				_, err := ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
					return fmt.Errorf("punct boom %d", ts)
				})
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				if r.Value == "bad" {
					return errors.New("proc boom")
				}
				return ctx.Forward(r)
			},
		}
	}, dsl.Named("proc")).To("out", serde.String, serde.String, dsl.Named("sink"))
	dsl.FromTopic(b, "nums", serde.String, serde.Int64, dsl.Named("nsrc")).To("nout", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, testdriver.WithDeadLetterQueue("dlq"),
		testdriver.OnProcessingError(operators.SendToDeadLetterQueue), testdriver.OnDeserializationError(operators.SendToDeadLetterQueue))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	for _, r := range []struct {
		k, v string
		ts   int64
	}{{"k1", "good", 5}, {"k2", "bad", 7}, {"k3", "good", 25}} {
		if err := in.PipeAt(r.k, r.v, r.ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := testdriver.CreateInputTopic(d, "nums", serde.String, serde.Bytes).PipeRecord(operators.Record[string, []byte]{
		Key: "n1", Value: []byte{1, 2, 3}, Timestamp: 30, Headers: []operators.Header{{Key: "h1", Value: []byte("v1")}}}); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	str := func(b []byte, null bool) string {
		if null {
			return "null"
		}
		return string(b)
	}
	for _, r := range readDLQ(t, d, "dlq") {
		fmt.Fprintf(&got, "DLQ key=%s value=%s ts=%d\n", str(r.Key, r.NullKey), str(r.Value, r.Tombstone), r.Timestamp)
		for _, h := range r.Headers {
			v := string(h.Value)
			if h.Value == nil {
				v = "<null>"
			}
			if h.Key == operators.HeaderErrorStacktrace {
				v, _, _ = strings.Cut(v, "\n") // as the oracle prints it
			}
			fmt.Fprintf(&got, "  %s=%s\n", h.Key, v)
		}
	}
	out, err := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var kvs []string
	for _, r := range out {
		kvs = append(kvs, fmt.Sprintf("KeyValue(%s, %s)", r.Key, r.Value))
	}
	fmt.Fprintf(&got, "out=[%s]\n", strings.Join(kvs, ", "))
	want, err := os.ReadFile("testdata/deadletter/oracle.txt")
	if err != nil {
		t.Fatal(err)
	}
	mask := func(s string) []string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		for i, l := range lines {
			for _, k := range []string{operators.HeaderErrorException, operators.HeaderErrorMessage, operators.HeaderErrorStacktrace} {
				if strings.HasPrefix(l, "  "+k+"=") {
					lines[i] = "  " + k + "=..."
				}
			}
		}
		return lines
	}
	g, w := mask(got.String()), mask(string(want))
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("dead-letter records differ from Kafka Streams':\n got:\n%s\n want:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// A panicking aggregator: the handler gets a PanicError naming the
// aggregation node; with Continue the record is dropped there and the
// aggregation goes on with the next records, its state intact.
func TestPanickingAggregator(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.Int64).GroupByKey()
	dsl.Aggregate(g, func() int64 { return 0 }, func(_ string, v, agg int64) int64 {
		if v == 0 {
			panic("division by zero")
		}
		return agg + 100/v
	}, serde.Int64).ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	d, err := testdriver.New(topo, testdriver.OnProcessingError(func(ctx *operators.ErrorContext, err error) operators.Action {
		if pe, ok := errors.AsType[*operators.PanicError](err); !ok || pe.Node != ctx.Node {
			t.Errorf("handler got %v at node %s: want a PanicError naming it", err, ctx.Node)
		}
		nodes = append(nodes, ctx.Node)
		return operators.Continue
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	for i, v := range []int64{50, 0, 25} {
		if err := in.PipeAt("k", v, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, "output", readOut(t, d), []string{"k=2", "k=6"})
	if len(nodes) != 1 || !strings.Contains(nodes[0], "AGGREGATE") {
		t.Errorf("failed nodes %v, want the aggregation", nodes)
	}
	if n := d.DroppedRecords(nodes[0], "processing-error"); n != 1 {
		t.Errorf("processing errors of %s: %d, want 1", nodes[0], n)
	}
}

// panicSerde panics on encoding or decoding the value "boom": a buggy
// user serde.
type panicSerde struct{}

func (panicSerde) Encode(dst []byte, v string) ([]byte, error) {
	if v == "boom" {
		panic("encode boom")
	}
	return append(dst, v...), nil
}

func (panicSerde) Decode(b []byte) (string, error) {
	if string(b) == "boom" {
		panic("decode boom")
	}
	return string(b), nil
}

// A serde that panics is a deserialization failure at a source and a
// serialization failure at a sink, as Kafka Streams hands any exception of
// a deserializer to the deserialization handler and of a serializer to the
// production handler; a timestamp extractor that panics stops the task
// (Kafka Streams: "Fatal user code error in TimestampExtractor callback").
func TestPanickingSerdesAndExtractor(t *testing.T) {
	t.Run("decode", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.FromTopic(b, "in", serde.String, panicSerde{}, dsl.Named("src")).To("out", serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := testdriver.New(topo, testdriver.OnDeserializationError(operators.SendToDeadLetterQueue), testdriver.WithDeadLetterQueue("dlq"))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := testdriver.CreateInputTopic(d, "in", serde.String, serde.String).PipeAt("k", "boom", 3); err != nil {
			t.Fatal(err)
		}
		rs := readDLQ(t, d, "dlq")
		if len(rs) != 1 {
			t.Fatalf("%d dead-letter records, want 1", len(rs))
		}
		checkDLQ(t, rs[0], []byte("k"), []byte("boom"), 3, nil, "*operators.DeserializationError",
			"sluice: source src: cannot deserialize the value of the record at topic in, partition 0, offset 0: sluice: node src panicked: decode boom", "in", 0, 0)
		if st, _ := header(rs[0].Headers, operators.HeaderErrorStacktrace); !strings.Contains(string(st), "panicSerde.Decode") {
			t.Errorf("stacktrace header does not show the panicking Decode:\n%s", st)
		}
	})
	t.Run("encode", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.FromTopic(b, "in", serde.String, serde.String).To("out", serde.String, panicSerde{}, dsl.Named("sink"))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		d, err := testdriver.New(topo, testdriver.OnProductionError(func(ctx *operators.ErrorContext, err error) operators.Action {
			kinds = append(kinds, ctx.Kind.String()+" "+ctx.Node)
			return operators.Continue
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
		for _, v := range []string{"boom", "fine"} {
			if err := in.PipeAt("k", v, 3); err != nil {
				t.Fatal(err)
			}
		}
		equal(t, "handled", kinds, []string{"production sink"})
		if n := d.DroppedRecords("sink", "production-error"); n != 1 {
			t.Errorf("production errors: %d, want 1", n)
		}
	})
	t.Run("extractor", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.FromTopic(b, "in", serde.String, serde.String, dsl.Named("src"),
			dsl.Timestamps(func(_ dsl.Maybe[string], v dsl.Maybe[string], _ []operators.Header, ts int64) int64 {
				if v.Or("") == "boom" {
					panic("extractor boom")
				}
				return ts
			})).To("out", serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		handled := 0
		d, err := testdriver.New(topo, testdriver.OnProcessingError(func(*operators.ErrorContext, error) operators.Action {
			handled++
			return operators.Continue
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		err = testdriver.CreateInputTopic(d, "in", serde.String, serde.String).PipeAt("k", "boom", 3)
		if pe, ok := errors.AsType[*operators.PanicError](err); !ok || pe.Node != "src" {
			t.Errorf("error %v: want the extractor's PanicError naming the source", err)
		}
		if handled != 0 {
			t.Errorf("the processing handler was asked %d times about an extractor's panic", handled)
		}
	})
}

// A failure below a record cache, when the cache forwards at a commit, has
// no input record (the entry may have been written by any earlier record):
// the dead-letter record has a null key and value and offset -1, not the
// bytes of whichever record happens to be processed.
func TestFailureBelowCacheFlushHasNoInputRecord(t *testing.T) {
	b := dsl.NewBuilder()
	counts := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count().ToStream()
	dsl.MapValues(counts, func(n int64) int64 {
		if n == 2 {
			panic("two")
		}
		return n
	}, dsl.Named("check")).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	d, err := testdriver.New(topo, testdriver.WithRecordCache(10<<20), testdriver.CommitOnRequest(),
		testdriver.WithDeadLetterQueue("dlq"),
		testdriver.OnProcessingError(func(ctx *operators.ErrorContext, _ error) operators.Action {
			offsets = append(offsets, ctx.Offset)
			return operators.DeadLetter
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	for _, k := range []string{"a", "a", "b"} {
		if err := in.PipeAt(k, "x", 9); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	equal(t, "output", readOut(t, d), []string{"b=1"})
	if len(offsets) != 1 || offsets[0] != -1 {
		t.Errorf("handler saw offsets %v, want [-1]", offsets)
	}
	rs := readDLQ(t, d, "dlq")
	if len(rs) != 1 {
		t.Fatalf("%d dead-letter records, want 1", len(rs))
	}
	checkDLQ(t, rs[0], nil, nil, 9, nil, "*operators.PanicError", "sluice: node check panicked: two", "", -1, -1)
}

// The same when the cache evicts while another record is processed: the
// handler must not be told that the failure was the record being
// processed, which did not write the evicted entry.
func TestFailureBelowCacheEvictionHasNoInputRecord(t *testing.T) {
	b := dsl.NewBuilder()
	counts := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count().ToStream()
	dsl.MapValues(counts, func(n int64) int64 {
		if n == 2 {
			panic("two")
		}
		return n
	}, dsl.Named("check")).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	d, err := testdriver.New(topo, testdriver.WithRecordCache(120), testdriver.CommitOnRequest(),
		testdriver.OnProcessingError(func(ctx *operators.ErrorContext, _ error) operators.Action {
			offsets = append(offsets, ctx.Offset)
			return operators.Continue
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	keys := []string{"a", "a"}
	for i := range 20 {
		keys = append(keys, fmt.Sprint("other-key-", i))
	}
	for _, k := range keys {
		if err := in.PipeAt(k, "x", 9); err != nil {
			t.Fatal(err)
		}
	}
	if len(offsets) != 1 || offsets[0] != -1 {
		t.Errorf("handler saw offsets %v, want [-1]: the entry of a was evicted while another record was processed", offsets)
	}
}

// A Kafka null stays null in the dead-letter record: a record with a null
// key and an undecodable value, and one with a key and a null value that
// the processor fails on.
func TestDeadLetterKeepsNulls(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src"))
	dsl.Process(s, func() operators.Processor[string, int64, string, int64] {
		return &operators.ProcessorFuncs[string, int64, string, int64]{
			ProcessFunc: func(ctx operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
				if r.Tombstone {
					return errors.New("no tombstones here")
				}
				return ctx.Forward(r)
			},
		}
	}, dsl.Named("proc")).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, testdriver.WithDeadLetterQueue("dlq"),
		testdriver.OnDeserializationError(operators.SendToDeadLetterQueue), testdriver.OnProcessingError(operators.SendToDeadLetterQueue))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	if err := in.PipeRaw(nil, []byte{1}, 4); err != nil {
		t.Fatal(err)
	}
	if err := in.PipeTombstone("k", 5); err != nil {
		t.Fatal(err)
	}
	rs := readDLQ(t, d, "dlq")
	if len(rs) != 2 {
		t.Fatalf("%d dead-letter records, want 2", len(rs))
	}
	if !rs[0].NullKey || rs[0].Tombstone || string(rs[0].Value) != "\x01" {
		t.Errorf("first dead-letter record: null key %v, value %q (null %v); want a null key and the value's byte", rs[0].NullKey, rs[0].Value, rs[0].Tombstone)
	}
	if rs[1].NullKey || string(rs[1].Key) != "k" || !rs[1].Tombstone {
		t.Errorf("second dead-letter record: key %q (null %v), null value %v; want key k and a null value", rs[1].Key, rs[1].NullKey, rs[1].Tombstone)
	}
}

// A child's failure that a user processor returns, wrapped, is not handed
// to the processor's handler again: the child's handler decided Fail, and
// the task stops once, with the child's error.
func TestWrappedChildFailureNotHandledTwice(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	p := dsl.Process(s, func() operators.Processor[string, int64, string, int64] {
		return &operators.ProcessorFuncs[string, int64, string, int64]{
			ProcessFunc: func(ctx operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
				if err := ctx.Forward(r); err != nil {
					return fmt.Errorf("forwarding: %w", err)
				}
				return nil
			},
		}
	}, dsl.Named("parent"))
	dsl.MapValues(p, func(int64) int64 { panic("child bug") }, dsl.Named("child")).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	d, err := testdriver.New(topo, testdriver.OnProcessingError(func(ctx *operators.ErrorContext, _ error) operators.Action {
		nodes = append(nodes, ctx.Node)
		return operators.Fail
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64).PipeAt("k", 1, 1)
	if pe, ok := errors.AsType[*operators.PanicError](err); !ok || pe.Node != "child" {
		t.Errorf("error %v: want the child's PanicError", err)
	}
	equal(t, "handled at", nodes, []string{"child"})
}
