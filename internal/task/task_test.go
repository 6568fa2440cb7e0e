package task_test

// Unit tests of a Task driven directly, without the test driver: stream
// time, the record metadata processors see, punctuation scheduling (the
// Kafka Streams vectors, ordering, cancelling, errors), the
// deserialization policy, and what New and Close release.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// proc is the processor under test: "in" → src → proc (with store
// "store") → sink → "out".
type proc = operators.ProcessorFuncs[string, int64, string, int64]

type procCtx = operators.ProcessorContext[string, int64]

// rig is one task of that topology, with a collector, a clock and a
// dropped-records callback the test controls.
type rig struct {
	task    *task.Task
	now     time.Time
	sent    []string // "topic key=value@ts" of what the sink wrote
	dropped []string // "task node reason"
	stores  []state.Store
	offset  int64
}

// Send implements operators.Collector.
func (r *rig) Send(topic string, _ int32, key, value []byte, _ []operators.Header, ts int64) error {
	if value == nil {
		r.sent = append(r.sent, fmt.Sprintf("%s %s=<tombstone>@%d", topic, key, ts))
		return nil
	}
	v, err := serde.Int64.Decode(value)
	if err != nil {
		return err
	}
	r.sent = append(r.sent, fmt.Sprintf("%s %s=%d@%d", topic, key, v, ts))
	return nil
}

func compile(t *testing.T, p *proc) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	store := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "store"}, serde.String, serde.Int64)
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src"))
	dsl.Process(s, func() operators.Processor[string, int64, string, int64] { return p },
		dsl.Named("proc"), dsl.ConnectStores(store)).To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// newRig creates the task; edit may change its config. The task is closed
// when the test ends.
func newRig(t *testing.T, p *proc, edit func(*task.Config)) (*rig, error) {
	t.Helper()
	r := &rig{now: time.UnixMilli(1000)}
	cfg := task.Config{
		ApplicationID: "app",
		SubTopology:   compile(t, p).SubTopologies()[0],
		Collector:     r,
		OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
			s := state.NewInMemoryKeyValueStore(spec.Name)
			r.stores = append(r.stores, s)
			return s, nil
		},
		Clock: func() time.Time { return r.now },
		Dropped: func(taskID, node, reason string) {
			r.dropped = append(r.dropped, taskID+" "+node+" "+reason)
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	tk, err := task.New(cfg)
	if err != nil {
		return r, err
	}
	r.task = tk
	t.Cleanup(func() { _ = tk.Close() })
	return r, nil
}

func mustRig(t *testing.T, p *proc) *rig {
	t.Helper()
	r, err := newRig(t, p, nil)
	if err != nil {
		t.Fatalf("task.New: %v", err)
	}
	return r
}

// pipe processes a record of "in" at the next offset.
func (r *rig) pipe(key string, value, ts int64) error {
	v, _ := serde.Int64.Encode(nil, value)
	return r.pipeRaw([]byte(key), v, ts)
}

func (r *rig) pipeRaw(key, value []byte, ts int64) error {
	rec := operators.RawRecord{Topic: "in", Partition: 0, Offset: r.offset, Timestamp: ts, Key: key, Value: value}
	r.offset++
	return r.task.Process(&rec)
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func want[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// --- Stream time and record metadata -------------------------------------------

// Stream time is the largest timestamp seen, raised before the record is
// processed (Kafka Streams raises it when the record is dequeued) and never
// lowered by an out-of-order record.
func TestStreamTime(t *testing.T) {
	var seen []int64
	r := mustRig(t, &proc{ProcessFunc: func(ctx procCtx, _ operators.Record[string, int64]) error {
		seen = append(seen, ctx.StreamTime())
		return nil
	}})
	if st := r.task.StreamTime(); st != -1 {
		t.Errorf("stream time before any record = %d, want -1", st)
	}
	for _, ts := range []int64{5, 3, 9, 9, 2} {
		ok(t, r.pipe("k", 0, ts))
	}
	want(t, "stream time seen by the processor", seen, []int64{5, 5, 9, 9, 9})
	if st := r.task.StreamTime(); st != 9 {
		t.Errorf("stream time = %d, want 9", st)
	}
}

// Processors see the metadata of the record being processed; punctuators
// see none (topic "", partition and offset -1, as in Kafka Streams), and the
// record's metadata is back afterwards.
func TestRecordMetadata(t *testing.T) {
	var seen []string
	where := func(ctx procCtx) string { return fmt.Sprintf("%q/%d/%d", ctx.Topic(), ctx.Partition(), ctx.Offset()) }
	var ctx procCtx
	r := mustRig(t, &proc{
		InitFunc: func(c procCtx) error {
			ctx = c
			seen = append(seen, "init "+where(c))
			_, err := c.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
				seen = append(seen, fmt.Sprintf("punctuate@%d %s", ts, where(c)))
				return nil
			})
			return err
		},
		ProcessFunc: func(c procCtx, rec operators.Record[string, int64]) error {
			seen = append(seen, fmt.Sprintf("process@%d %s", rec.Timestamp, where(c)))
			return nil
		},
	})
	ok(t, r.pipe("a", 0, 3))
	ok(t, r.pipe("b", 0, 4))
	seen = append(seen, "after "+where(ctx))
	want(t, "metadata", seen, []string{
		`init ""/-1/-1`,
		`process@3 "in"/0/0`,
		`punctuate@3 ""/-1/-1`,
		`process@4 "in"/0/1`,
		`after "in"/0/1`,
	})
	if got := ctx.TaskID(); got != "0_0" {
		t.Errorf("TaskID = %q, want 0_0", got)
	}
	if got := ctx.ApplicationID(); got != "app" {
		t.Errorf("ApplicationID = %q, want app", got)
	}
	r.now = time.UnixMilli(4242)
	if got := ctx.WallClockTime(); !got.Equal(r.now) {
		t.Errorf("WallClockTime = %v, want the task's clock %v", got, r.now)
	}
}

func TestTaskIDAndTopics(t *testing.T) {
	r, err := newRig(t, &proc{}, func(c *task.Config) { c.Partition = 3 })
	ok(t, err)
	if got := r.task.ID(); got != "0_3" || task.ID(2, 7) != "2_7" {
		t.Errorf("ID = %q, ID(2, 7) = %q; want 0_3, 2_7", got, task.ID(2, 7))
	}
	want(t, "topics", r.task.Topics(), []string{"in"})
	err = r.task.Process(&operators.RawRecord{Topic: "other", Offset: 0})
	if err == nil || !strings.Contains(err.Error(), `"other"`) || !strings.Contains(err.Error(), "0_3") {
		t.Errorf("Process of a topic the task does not read: %v; want an error naming the topic and task", err)
	}
}

// A task of the sub-topology below a repartition reads the internal topic
// under its Kafka name, with the application ID.
func TestTopicsOfInternalSource(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64).Repartition(dsl.Named("rp")).To("out", nil, nil)
	topo, err := b.Build()
	ok(t, err)
	r := &rig{}
	tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: topo.SubTopologies()[1], Collector: r})
	ok(t, err)
	defer tk.Close()
	want(t, "topics", tk.Topics(), []string{"app-rp-repartition"})
	v, _ := serde.Int64.Encode(nil, 7)
	ok(t, tk.Process(&operators.RawRecord{Topic: "app-rp-repartition", Key: []byte("k"), Value: v, Timestamp: 5}))
	want(t, "sent", r.sent, []string{"out k=7@5"})
}

// --- Punctuation ----------------------------------------------------------------

// recorder schedules punctuators that log "name@time" into fired.
type recorder struct {
	fired []string
	ctx   procCtx
}

func (rc *recorder) schedule(t *testing.T, name string, interval time.Duration, typ operators.PunctuationType) operators.Cancellable {
	t.Helper()
	c, err := rc.ctx.Schedule(interval, typ, func(ts int64) error {
		rc.fired = append(rc.fired, fmt.Sprintf("%s@%d", name, ts))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func recorderRig(t *testing.T, init func(rc *recorder)) (*rig, *recorder) {
	t.Helper()
	rc := &recorder{}
	r := mustRig(t, &proc{InitFunc: func(ctx procCtx) error {
		rc.ctx = ctx
		if init != nil {
			init(rc)
		}
		return nil
	}})
	return r, rc
}

// The Kafka Streams vector for a 10 ms stream-time schedule: records at 3,
// 5, 25, 26, 29, 30, 12, 61 punctuate at 3, 25, 30 and 61 — aligned to 0,
// with the current stream time, each missed interval skipped.
func TestStreamTimePunctuationVector(t *testing.T) {
	r, rc := recorderRig(t, func(rc *recorder) { rc.schedule(t, "st", 10*time.Millisecond, operators.StreamTime) })
	for _, ts := range []int64{3, 5, 25, 26, 29, 30, 12, 61} {
		ok(t, r.pipe("k", 0, ts))
	}
	want(t, "fired", rc.fired, []string{"st@3", "st@25", "st@30", "st@61"})
	// The grid stays aligned to 0: next is 70, not 71.
	ok(t, r.pipe("k", 0, 69))
	ok(t, r.pipe("k", 0, 70))
	want(t, "fired", rc.fired, []string{"st@3", "st@25", "st@30", "st@61", "st@70"})
	// Wall-clock checks do not fire stream-time schedules.
	ok(t, r.task.PunctuateWallClock(time.UnixMilli(1_000_000)))
	if len(rc.fired) != 5 {
		t.Errorf("a wall-clock check fired a stream-time schedule: %v", rc.fired)
	}
}

// The Kafka Streams vector for a 100 ms wall-clock schedule made at 1000:
// nothing at 1050, one at 1110, one (not two) at 1360, then on the grid.
func TestWallClockPunctuationVector(t *testing.T) {
	r, rc := recorderRig(t, func(rc *recorder) { rc.schedule(t, "wc", 100*time.Millisecond, operators.WallClockTime) })
	ok(t, r.pipe("k", 0, 5000)) // records do not fire wall-clock schedules
	for _, now := range []int64{1050, 1110, 1360, 1399, 1400} {
		ok(t, r.task.PunctuateWallClock(time.UnixMilli(now)))
	}
	want(t, "fired", rc.fired, []string{"wc@1110", "wc@1360", "wc@1400"})
}

// Due schedules fire earliest first, and in the order they were made when
// due at the same time; each fires once per check.
func TestPunctuationOrder(t *testing.T) {
	r, rc := recorderRig(t, func(rc *recorder) {
		rc.schedule(t, "every10", 10*time.Millisecond, operators.StreamTime)
		rc.schedule(t, "every3", 3*time.Millisecond, operators.StreamTime)
		rc.schedule(t, "wall", time.Millisecond, operators.WallClockTime)
	})
	ok(t, r.pipe("k", 0, 0))  // both due at 0: creation order
	ok(t, r.pipe("k", 0, 30)) // every3 due at 3, every10 at 10: every3 first; next 33 and 40
	ok(t, r.pipe("k", 0, 32))
	ok(t, r.pipe("k", 0, 33))
	want(t, "fired", rc.fired, []string{"every10@0", "every3@0", "every3@30", "every10@30", "every3@33"})
}

func TestCancel(t *testing.T) {
	t.Run("before it is due", func(t *testing.T) {
		var c operators.Cancellable
		r, rc := recorderRig(t, func(rc *recorder) { c = rc.schedule(t, "st", 10*time.Millisecond, operators.StreamTime) })
		ok(t, r.pipe("k", 0, 1))
		c.Cancel()
		c.Cancel() // twice is harmless
		ok(t, r.pipe("k", 0, 100))
		want(t, "fired", rc.fired, []string{"st@1"})
	})
	t.Run("itself, while punctuating", func(t *testing.T) {
		rc := &recorder{}
		var c operators.Cancellable
		r := mustRig(t, &proc{InitFunc: func(ctx procCtx) (err error) {
			c, err = ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
				rc.fired = append(rc.fired, fmt.Sprint("self@", ts))
				c.Cancel()
				return nil
			})
			return err
		}})
		for _, ts := range []int64{1, 20, 40} {
			ok(t, r.pipe("k", 0, ts))
		}
		want(t, "fired", rc.fired, []string{"self@1"})
	})
	t.Run("another due in the same check", func(t *testing.T) {
		rc := &recorder{}
		var second operators.Cancellable
		r := mustRig(t, &proc{InitFunc: func(ctx procCtx) error {
			rc.ctx = ctx
			if _, err := ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
				rc.fired = append(rc.fired, fmt.Sprint("first@", ts))
				second.Cancel()
				return nil
			}); err != nil {
				return err
			}
			second = rc.schedule(t, "second", 10*time.Millisecond, operators.StreamTime)
			return nil
		}})
		ok(t, r.pipe("k", 0, 1))
		ok(t, r.pipe("k", 0, 11))
		want(t, "fired", rc.fired, []string{"first@1", "first@11"})
	})
	t.Run("from a punctuator of the other clock", func(t *testing.T) {
		rc := &recorder{}
		var st operators.Cancellable
		r := mustRig(t, &proc{InitFunc: func(ctx procCtx) error {
			rc.ctx = ctx
			st = rc.schedule(t, "st", 10*time.Millisecond, operators.StreamTime)
			_, err := ctx.Schedule(100*time.Millisecond, operators.WallClockTime, func(ts int64) error {
				rc.fired = append(rc.fired, fmt.Sprint("wc@", ts))
				st.Cancel()
				return nil
			})
			return err
		}})
		ok(t, r.pipe("k", 0, 1))
		ok(t, r.task.PunctuateWallClock(time.UnixMilli(1100)))
		ok(t, r.pipe("k", 0, 50))
		want(t, "fired", rc.fired, []string{"st@1", "wc@1100"})
	})
}

// A schedule made in a punctuator starts with the next check.
func TestScheduleFromPunctuator(t *testing.T) {
	rc := &recorder{}
	made := false
	r := mustRig(t, &proc{InitFunc: func(ctx procCtx) error {
		rc.ctx = ctx
		_, err := ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
			rc.fired = append(rc.fired, fmt.Sprint("outer@", ts))
			if !made {
				made = true
				rc.schedule(t, "inner", 5*time.Millisecond, operators.StreamTime)
			}
			return nil
		})
		return err
	}})
	ok(t, r.pipe("k", 0, 1))
	ok(t, r.pipe("k", 0, 2))
	ok(t, r.pipe("k", 0, 6))
	want(t, "fired", rc.fired, []string{"outer@1", "inner@2", "inner@6"})
}

func TestScheduleErrors(t *testing.T) {
	noop := func(int64) error { return nil }
	tests := []struct {
		name     string
		interval time.Duration
		typ      operators.PunctuationType
		p        operators.Punctuator
		want     string
	}{
		{"zero interval", 0, operators.StreamTime, noop, "below 1ms"},
		{"sub-millisecond interval", 999 * time.Microsecond, operators.WallClockTime, noop, "below 1ms"},
		{"negative interval", -time.Second, operators.StreamTime, noop, "below 1ms"},
		{"nil punctuator", time.Second, operators.StreamTime, nil, "nil punctuator"},
		{"unknown type", time.Second, operators.PunctuationType(7), noop, "unknown punctuation type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newRig(t, &proc{InitFunc: func(ctx procCtx) error {
				c, err := ctx.Schedule(tc.interval, tc.typ, tc.p)
				if err == nil && c == nil {
					return errors.New("no Cancellable and no error")
				}
				return err
			}}, nil)
			if err == nil {
				t.Fatal("Schedule succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "proc") {
				t.Errorf("error %q: want %q, naming node proc", err, tc.want)
			}
		})
	}
	t.Run("1ms is allowed", func(t *testing.T) {
		r, rc := recorderRig(t, func(rc *recorder) { rc.schedule(t, "ms", time.Millisecond, operators.StreamTime) })
		ok(t, r.pipe("k", 0, 0))
		ok(t, r.pipe("k", 0, 1))
		want(t, "fired", rc.fired, []string{"ms@0", "ms@1"})
	})
}

// A punctuator's error stops the task, naming the node and the clock; the
// schedule stays on its grid.
func TestPunctuatorError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	r := mustRig(t, &proc{InitFunc: func(ctx procCtx) error {
		_, err := ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(int64) error {
			calls++
			return boom
		})
		return err
	}})
	err := r.pipe("k", 0, 1)
	var ne *operators.NodeError
	if !errors.Is(err, boom) || !errors.As(err, &ne) || ne.Node != "proc" || ne.Task != "0_0" {
		t.Fatalf("error %v: want boom in a NodeError of node proc, task 0_0", err)
	}
	if !strings.Contains(err.Error(), "stream-time punctuator") {
		t.Errorf("error %q does not name the clock", err)
	}
	if err := r.pipe("k", 0, 5); err != nil || calls != 1 {
		t.Errorf("at 5: err %v, %d calls; want no call before 10", err, calls)
	}
}

// A punctuator forwards through the processor's children to the sink.
func TestPunctuatorForwards(t *testing.T) {
	r := mustRig(t, &proc{InitFunc: func(ctx procCtx) error {
		_, err := ctx.Schedule(time.Second, operators.WallClockTime, func(ts int64) error {
			return ctx.Forward(operators.Record[string, int64]{Key: "tick", Value: ts / 1000, Timestamp: ts})
		})
		return err
	}})
	ok(t, r.task.PunctuateWallClock(time.UnixMilli(2000)))
	ok(t, r.task.PunctuateWallClock(time.UnixMilli(3500)))
	want(t, "sent", r.sent, []string{"out tick=2@2000", "out tick=3@3500"})
}

// --- Deserialization policy -------------------------------------------------------

func TestDeserializationPolicy(t *testing.T) {
	t.Run("fail", func(t *testing.T) {
		r := mustRig(t, &proc{})
		err := r.pipeRaw([]byte("k"), []byte{1, 2, 3}, 10)
		var de *operators.DeserializationError
		if !errors.As(err, &de) || de.Node != "src" || de.Topic != "in" || de.Offset != 0 || de.Part != "value" {
			t.Fatalf("error %v: want a DeserializationError of the value at in/0/0 by src", err)
		}
		if !strings.Contains(err.Error(), "task 0_0") {
			t.Errorf("error %q does not name the task", err)
		}
	})
	t.Run("skip", func(t *testing.T) {
		var processed []int64
		rc := &recorder{}
		r, err := newRig(t, &proc{
			InitFunc: func(ctx procCtx) error {
				rc.ctx = ctx
				rc.schedule(t, "st", 10*time.Millisecond, operators.StreamTime)
				return nil
			},
			ProcessFunc: func(_ procCtx, rec operators.Record[string, int64]) error {
				processed = append(processed, rec.Value)
				return nil
			},
		}, func(c *task.Config) { c.OnDeserializationError = operators.LogAndContinue })
		ok(t, err)
		ok(t, r.pipe("k", 1, 5))
		ok(t, r.pipeRaw([]byte("k"), []byte{1, 2, 3}, 100)) // skipped: stream time stays 5, no punctuation
		if st := r.task.StreamTime(); st != 5 {
			t.Errorf("stream time after a skipped record = %d, want 5", st)
		}
		ok(t, r.pipe("k", 2, 7))
		want(t, "processed", processed, []int64{1, 2})
		want(t, "dropped", r.dropped, []string{"0_0 src deserialization-error"})
		want(t, "fired", rc.fired, []string{"st@5"})
	})
}

// --- Lifecycle ----------------------------------------------------------------------

// Close closes the processors, then the stores.
func TestClose(t *testing.T) {
	var events []string
	r := mustRig(t, &proc{CloseFunc: func() error {
		events = append(events, "processor closed")
		return nil
	}})
	ok(t, r.pipe("k", 1, 1))
	ok(t, r.task.Flush())
	if r.task.Store("store") == nil || r.task.Store("nope") != nil {
		t.Error("Store: want the task's store by name, nil for another name")
	}
	ok(t, r.task.Close())
	want(t, "events", events, []string{"processor closed"})
	for _, s := range r.stores {
		if err := s.Flush(); !errors.Is(err, state.ErrClosed) {
			t.Errorf("store %s after Close: %v, want ErrClosed", s.Name(), err)
		}
	}
	ok(t, r.task.Close()) // twice is harmless
}

// When New fails (here: a processor's Init), what it opened is closed and
// the error names the task and node.
func TestNewFailureClosesStores(t *testing.T) {
	boom := errors.New("boom")
	r, err := newRig(t, &proc{InitFunc: func(procCtx) error { return boom }}, nil)
	var ne *operators.NodeError
	if !errors.Is(err, boom) || !errors.As(err, &ne) || ne.Node != "proc" || ne.Task != "0_0" {
		t.Fatalf("task.New: %v; want boom in a NodeError of node proc, task 0_0", err)
	}
	if len(r.stores) != 1 {
		t.Fatalf("%d stores opened, want 1", len(r.stores))
	}
	if err := r.stores[0].Flush(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("store after a failed New: %v, want ErrClosed", err)
	}
}

func TestNewOpenStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := newRig(t, &proc{}, func(c *task.Config) {
		c.OpenBase = func(*topology.StoreSpec) (state.KeyValueStore, error) { return nil, boom }
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "store store") || !strings.Contains(err.Error(), "0_0") {
		t.Errorf("task.New: %v; want the store error naming task 0_0 and the store", err)
	}
}
