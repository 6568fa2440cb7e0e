package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// productionCase is a pass-through topology from in to out, whose out
// topic takes records up to outLimit bytes (max.message.bytes), with one
// input record (big) whose output is over it.
type productionCase struct {
	c             *testCluster
	in, out, dlq  string
	appID         string
	small         []*kgo.Record // the input records that fit, as produced
	big           *kgo.Record
	handlerCalled atomic.Int32
	// handlerCtx is what the handler was told, the first time.
	handlerCtx atomic.Pointer[operators.ErrorContext]
}

const outLimit = 2000

func newProductionCase(t *testing.T, async bool) *productionCase {
	c := newCluster(t)
	pc := &productionCase{c: c, in: topic(t, "in"), out: topic(t, "out"), dlq: topic(t, "dlq"), appID: topic(t, "app")}
	c.create(t, 2, pc.in, pc.dlq)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client(t))
	limit := strconv.Itoa(outLimit)
	if async {
		// The app learns the topic's default limit; the test lowers it
		// while the app runs (lowerLimit), so that the broker, not the
		// app, refuses the big record.
		limit = "1048588"
	}
	resp, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"max.message.bytes": &limit}, pc.out)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// lowerLimit sets out's max.message.bytes to outLimit.
func (pc *productionCase) lowerLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	limit := strconv.Itoa(outLimit)
	rs, err := kadm.NewClient(pc.c.client(t)).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, pc.out)
	if err == nil {
		for _, r := range rs {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// produce produces n small input records from index from, and the big one
// (a value of 3 KB, with a header) if big.
func (pc *productionCase) produce(t *testing.T, from, n int, big bool) {
	cl := pc.c.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Topic: pc.in, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)), Timestamp: now})
		if big && i == from+n/2 {
			// Random letters: compression (franz-go's default) must not
			// bring the batch under the broker's limit.
			rnd := rand.New(rand.NewPCG(1, 2))
			v := make([]byte, 3000)
			for i := range v {
				v[i] = 'a' + byte(rnd.IntN(26))
			}
			pc.big = &kgo.Record{Topic: pc.in, Key: []byte("big"), Value: v, Timestamp: now,
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("hv")}}}
			rs = append(rs, pc.big)
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r != pc.big {
			pc.small = append(pc.small, r)
		}
	}
}

func (pc *productionCase) start(t *testing.T, g runtime.Guarantee, action operators.Action) *instance {
	b := dsl.NewBuilder()
	dsl.MapValues(dsl.FromTopic(b, pc.in, serde.String, serde.String), func(v string) string { return v }, dsl.Named("copy")).
		To(pc.out, serde.String, serde.String, dsl.Named("to-out"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	handler := func(ctx *operators.ErrorContext, err error) operators.Action {
		if pc.handlerCalled.Add(1) == 1 {
			c := *ctx
			c.SourceKey, c.SourceValue = slices.Clone(c.SourceKey), slices.Clone(c.SourceValue)
			pc.handlerCtx.Store(&c)
		}
		return action
	}
	return start(t, topo, runtime.ApplicationID(pc.appID), runtime.Brokers(pc.c.brokers...), runtime.ProcessingGuarantee(g),
		runtime.CommitInterval(100*time.Millisecond), runtime.OnProductionError(handler), runtime.DeadLetterQueue(pc.dlq))
}

// awaitOutput waits until out holds a record of every small input record
// (committed records only), and returns out's records.
func (pc *productionCase) awaitOutput(t *testing.T, in *instance) []*kgo.Record {
	t.Helper()
	want := map[string]bool{}
	for _, r := range pc.small {
		want[string(r.Key)] = true
	}
	cl := pc.c.client(t, kgo.ConsumeTopics(pc.out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []*kgo.Record
	seen := map[string]bool{}
	for len(seen) < len(want) {
		select {
		case err := <-in.done:
			t.Fatalf("Run returned %v before the output was complete", err)
		default:
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("output incomplete after a minute: %d of %d records", len(seen), len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, r)
			seen[string(r.Key)] = true
		})
	}
	return got
}

// checkOutput checks that out holds each small record's value, exactly
// once if exact, and never the big one.
func (pc *productionCase) checkOutput(t *testing.T, got []*kgo.Record, exact bool) {
	t.Helper()
	n := map[string]int{}
	for _, r := range got {
		n[string(r.Key)]++
		if string(r.Key) == "big" {
			t.Errorf("the big record reached %s", pc.out)
		}
	}
	for _, r := range pc.small {
		if k := string(r.Key); n[k] == 0 || exact && n[k] != 1 {
			t.Errorf("%s holds %d records of key %s, want 1", pc.out, n[k], k)
		}
	}
}

// checkHandlerContext checks that the handler was told the big input
// record and the sink.
func (pc *productionCase) checkHandlerContext(t *testing.T) {
	t.Helper()
	ec := pc.handlerCtx.Load()
	if ec == nil {
		t.Fatal("the production handler was not called")
	}
	if ec.Kind != operators.ProductionFailure || ec.Node != "to-out" || ec.Topic != pc.in || ec.Partition != pc.big.Partition ||
		ec.Offset != pc.big.Offset || string(ec.SourceKey) != "big" || len(ec.SourceValue) != 3000 || ec.Timestamp != pc.big.Timestamp.UnixMilli() {
		t.Errorf("handler context %+v (key %q, value of %d bytes); want node to-out and the big record at %s/%d/%d",
			ec, ec.SourceKey, len(ec.SourceValue), pc.in, pc.big.Partition, pc.big.Offset)
	}
}

// checkDeadLetter checks that the dead-letter queue holds the big input
// record exactly once, as read, with the error headers.
func (pc *productionCase) checkDeadLetter(t *testing.T, async bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := readCommitted(t, ctx, pc.c, pc.dlq)
	if len(recs) != 1 {
		t.Fatalf("dead-letter queue holds %d records, want 1", len(recs))
	}
	r := recs[0]
	if string(r.Key) != "big" || string(r.Value) != string(pc.big.Value) || !r.Timestamp.Equal(pc.big.Timestamp) {
		t.Errorf("dead-letter record %q (value of %d bytes) at %v; want the big input record", r.Key, len(r.Value), r.Timestamp)
	}
	hs := map[string]string{}
	for _, h := range r.Headers {
		hs[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"h":                             "hv",
		operators.HeaderErrorException:  "*operators.ProductionError",
		operators.HeaderErrorTopic:      pc.in,
		operators.HeaderErrorPartition:  strconv.Itoa(int(pc.big.Partition)),
		operators.HeaderErrorOffset:     strconv.FormatInt(pc.big.Offset, 10),
		operators.HeaderErrorMessage:    "",
		operators.HeaderErrorStacktrace: "",
	}
	for k, v := range want {
		got, ok := hs[k]
		if !ok || v != "" && got != v {
			t.Errorf("dead-letter header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	msg := hs[operators.HeaderErrorMessage]
	if !strings.Contains(msg, "MESSAGE_TOO_LARGE") || !strings.Contains(msg, pc.out) || !strings.Contains(msg, "sink to-out") {
		t.Errorf("message header %q does not name MESSAGE_TOO_LARGE, the sink and %s", msg, pc.out)
	}
	if !async && !strings.Contains(msg, fmt.Sprintf("limit of %d bytes", outLimit)) {
		t.Errorf("message header %q does not give the topic's limit %d", msg, outLimit)
	}
}

// readCommitted reads topic from its start to its end offsets.
func readCommitted(t *testing.T, ctx context.Context, c *testCluster, topic string) []*kgo.Record {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond), kgo.KeepControlRecords())
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[int32]int64{}
	caughtUp := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) { ok = ok && pos[o.Partition] >= o.Offset })
		return ok
	}
	var recs []*kgo.Record
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
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

// committedPast reports whether the group's committed offset of the big
// record's partition is past it.
func (pc *productionCase) committedPast(t *testing.T) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(pc.c.client(t)).FetchOffsets(ctx, pc.appID)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(pc.in, pc.big.Partition)
	return ok && o.At > pc.big.Offset
}

// awaitCommittedPast waits until the group commits past the big record.
func (pc *productionCase) awaitCommittedPast(t *testing.T) {
	deadline := time.Now().Add(time.Minute)
	for !pc.committedPast(t) {
		if time.Now().After(deadline) {
			t.Fatal("the group did not commit past the refused record within a minute")
		}
		time.Sleep(50 * time.Millisecond) // polling the broker for a condition, with a deadline
	}
}

// A record a sink writes that is over its topic's max.message.bytes goes
// to the production handler, before it is produced, with the input record
// that caused it: each of its decisions under each guarantee.
func TestProductionHandler(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String()+"/continue", func(t *testing.T) {
			pc := newProductionCase(t, false)
			pc.produce(t, 0, 20, true)
			in := pc.start(t, g, operators.Continue)
			pc.awaitOutput(t, in)
			pc.awaitCommittedPast(t)
			in.stop(t)
			pc.checkOutput(t, readCommitted(t, context.Background(), pc.c, pc.out), true)
			pc.checkHandlerContext(t)
			if n := len(readCommitted(t, context.Background(), pc.c, pc.dlq)); n != 0 {
				t.Errorf("dead-letter queue holds %d records after continue", n)
			}
		})
		t.Run(g.String()+"/fail", func(t *testing.T) {
			pc := newProductionCase(t, false)
			pc.produce(t, 0, 20, true)
			in := pc.start(t, g, operators.Fail)
			var err error
			select {
			case err = <-in.done:
			case <-time.After(time.Minute):
				t.Fatal("Run did not fail within a minute")
			}
			pc.checkHandlerContext(t)
			ne, ok := errors.AsType[*operators.NodeError](err)
			pe, ok2 := errors.AsType[*operators.ProductionError](err)
			if !ok || !ok2 || ne.Node != "to-out" || ne.Topic != pc.in || ne.Partition != pc.big.Partition || ne.Offset != pc.big.Offset ||
				pe.Topic != pc.out || pe.Size <= 3000 {
				t.Errorf("Run: %v; want a NodeError of sink to-out at the big record and a ProductionError of %s with its size", err, pc.out)
			}
			if pc.committedPast(t) {
				t.Error("the group committed past the refused record")
			}
		})
		t.Run(g.String()+"/dead-letter", func(t *testing.T) {
			pc := newProductionCase(t, false)
			pc.produce(t, 0, 20, true)
			in := pc.start(t, g, operators.DeadLetter)
			pc.awaitOutput(t, in)
			pc.awaitCommittedPast(t)
			in.stop(t)
			pc.checkOutput(t, readCommitted(t, context.Background(), pc.c, pc.out), true)
			pc.checkHandlerContext(t)
			pc.checkDeadLetter(t, false)
		})
	}
}

// A record the broker refuses (the topic's max.message.bytes was lowered
// while the app ran, so the app's check let it through) goes to the
// production handler too: under at-least-once at the commit, under
// exactly-once by aborting the transaction and replaying it; the
// dead-letter record is written once, and every other record reaches the
// output (exactly once under exactly-once).
func TestProductionHandlerBrokerRefusal(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String()+"/dead-letter", func(t *testing.T) {
			pc := newProductionCase(t, true)
			pc.produce(t, 0, 10, false)
			in := pc.start(t, g, operators.DeadLetter)
			pc.awaitOutput(t, in)
			pc.lowerLimit(t)
			pc.produce(t, 10, 20, true)
			pc.awaitOutput(t, in)
			pc.awaitCommittedPast(t)
			in.stop(t)
			pc.checkOutput(t, readCommitted(t, context.Background(), pc.c, pc.out), g == runtime.ExactlyOnce)
			pc.checkHandlerContext(t)
			if n := pc.handlerCalled.Load(); n != 1 {
				t.Errorf("the handler was called %d times, want once", n)
			}
			pc.checkDeadLetter(t, true)
		})
		t.Run(g.String()+"/fail", func(t *testing.T) {
			pc := newProductionCase(t, true)
			pc.produce(t, 0, 10, false)
			in := pc.start(t, g, operators.Fail)
			pc.awaitOutput(t, in)
			pc.lowerLimit(t)
			pc.produce(t, 10, 20, true)
			var err error
			select {
			case err = <-in.done:
			case <-time.After(time.Minute):
				t.Fatal("Run did not fail within a minute")
			}
			pc.checkHandlerContext(t)
			ne, ok := errors.AsType[*operators.NodeError](err)
			pe, ok2 := errors.AsType[*operators.ProductionError](err)
			if !ok || !ok2 || ne.Node != "to-out" || ne.Topic != pc.in || ne.Partition != pc.big.Partition || ne.Offset != pc.big.Offset ||
				pe.Topic != pc.out || pe.Size <= 3000 {
				t.Errorf("Run: %v; want a NodeError of sink to-out at the big record and a ProductionError of %s with its size", err, pc.out)
			}
			if pc.committedPast(t) {
				t.Error("the group committed past the refused record (the shutdown's commit included)")
			}
		})
	}
}
