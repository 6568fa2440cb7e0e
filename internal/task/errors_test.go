package task_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// brokenStore is a key-value store whose writes fail, as a full disk's.
type brokenStore struct{ state.KeyValueStore }

var errDisk = errors.New("no space left on device")

func (brokenStore) Put([]byte, []byte) error { return errDisk }

// A store's error in a user processor is not the user's: a processing
// handler that lets everything go on does not swallow it, and the task
// stops with an error naming the node, the store and the record.
func TestStoreErrorIsNotHandled(t *testing.T) {
	handled := 0
	p := &proc{ProcessFunc: func(ctx procCtx, r operators.Record[string, int64]) error {
		s, err := ctx.Store("store")
		if err != nil {
			return err
		}
		return s.(state.KeyValueStore).Put([]byte(r.Key), []byte{1})
	}}
	r, err := newRig(t, p, func(c *task.Config) {
		c.OnProcessingError = func(*operators.ErrorContext, error) operators.Action { handled++; return operators.Continue }
		c.OpenBase = func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
			return brokenStore{state.NewInMemoryKeyValueStore(spec.Name)}, nil
		}
		c.Cache = nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.pipe("k", 1, 1)
	if !errors.Is(err, errDisk) {
		t.Fatalf("error %v: want the store's", err)
	}
	if handled != 0 {
		t.Errorf("the processing handler was called %d times for a store error", handled)
	}
	for _, s := range []string{"node proc", "store store", "topic in, partition 0, offset 0"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

// A user processor's own error goes to the handler, which sees the input
// record's raw bytes and position; the task goes on after Continue.
func TestProcessorErrorHandled(t *testing.T) {
	var seen []string
	p := &proc{ProcessFunc: func(ctx procCtx, r operators.Record[string, int64]) error {
		if r.Value < 0 {
			return errors.New("negative")
		}
		return ctx.Forward(r)
	}}
	r, err := newRig(t, p, func(c *task.Config) {
		c.OnProcessingError = func(ec *operators.ErrorContext, err error) operators.Action {
			seen = append(seen, ec.Node+" "+ec.Topic+" "+string(ec.SourceKey)+" "+err.Error())
			return operators.Continue
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ok(t, r.pipe("a", -1, 1))
	ok(t, r.pipe("b", 2, 2))
	want(t, "handled", seen, []string{"proc in a negative"})
	want(t, "sent", r.sent, []string{"out b=2@2"})
	want(t, "dropped", r.dropped, []string{"0_0 proc processing-error"})
}

// A failing dead-letter write (the collector's error) stops the task: it
// is not the user's error.
func TestDeadLetterWriteErrorStops(t *testing.T) {
	p := &proc{ProcessFunc: func(procCtx, operators.Record[string, int64]) error { return errors.New("user") }}
	sendErr := errors.New("producer closed")
	r, err := newRig(t, p, func(c *task.Config) {
		c.OnProcessingError = operators.SendToDeadLetterQueue
		c.DeadLetterTopic = "dlq"
		c.Collector = failingCollector{sendErr}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pipe("a", 1, 1); !errors.Is(err, sendErr) || !strings.Contains(err.Error(), "dlq") {
		t.Errorf("error %v: want the collector's, naming topic dlq", err)
	}
}

type failingCollector struct{ err error }

func (c failingCollector) Send(string, int32, []byte, []byte, []operators.Header, int64) error {
	return c.err
}

// The runtime asks a task for the event time of each partition's head
// record (EventTime, through PartitionGroup) before processing it: a
// source whose extractor panics gives the record's Kafka timestamp there
// instead of crashing the worker, and the panic stops the task when the
// record is processed, naming the source.
func TestEventTimeSurvivesPanickingExtractor(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src"),
		dsl.Timestamps(func(_ dsl.Maybe[string], v dsl.Maybe[int64], _ []operators.Header, ts int64) int64 {
			panic("extractor bug")
		})).To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{}
	tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: topo.SubTopologies()[0], Collector: r})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	v, _ := serde.Int64.Encode(nil, 1)
	raw := &operators.RawRecord{Topic: "in", Offset: 4, Timestamp: 77, Key: []byte("k"), Value: v}
	if ts := tk.EventTime(raw); ts != 77 {
		t.Errorf("EventTime = %d, want the Kafka timestamp 77", ts)
	}
	err = tk.Process(raw)
	if pe, ok := errors.AsType[*operators.PanicError](err); !ok || pe.Node != "src" || !strings.Contains(err.Error(), "offset 4") {
		t.Errorf("Process = %v, want the PanicError of src at offset 4", err)
	}
}

// The runtime's path to EventTime: PartitionGroup.Next over two partitions
// must not panic when the source's extractor does.
func TestPartitionGroupSurvivesPanickingExtractor(t *testing.T) {
	b := dsl.NewBuilder()
	extract := dsl.Timestamps(func(_ dsl.Maybe[string], v dsl.Maybe[int64], _ []operators.Header, _ int64) int64 {
		if v.Or(0) == 13 {
			panic("extractor bug")
		}
		return v.Or(-1)
	})
	dsl.FromTopics(b, []string{"x", "y"}, serde.String, serde.Int64, extract).To("out", nil, nil)
	topo, err := b.Build()
	ok(t, err)
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: &rig{}})
	ok(t, err)
	defer tk.Close()
	var g task.PartitionGroup[int64]
	g.Raw = func(v int64, raw *operators.RawRecord) {
		enc, _ := serde.Int64.Encode(nil, v)
		topic := "x"
		if v%2 == 0 {
			topic = "y"
		}
		*raw = operators.RawRecord{Topic: topic, Key: []byte("k"), Value: enc, Timestamp: 100}
	}
	x, y := g.Queue("x", 0), g.Queue("y", 0)
	g.Add(x, 13, 15)
	g.Add(y, 50)
	var got []int64
	for {
		_, v, more := g.Next(tk)
		if !more {
			break
		}
		got = append(got, v)
	}
	// 13's event time is its Kafka timestamp, 100, after the panic.
	want(t, "order", got, []int64{50, 13, 15})
}
