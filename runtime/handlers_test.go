package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// evenSerde is serde.Int64 that refuses to encode odd values: a sink's
// serialization failure on demand.
type evenSerde struct{}

func (evenSerde) Encode(dst []byte, v int64) ([]byte, error) {
	if v%2 != 0 {
		return dst, fmt.Errorf("odd value %d", v)
	}
	return serde.Int64.Encode(dst, v)
}

func (evenSerde) Decode(b []byte) (int64, error) { return serde.Int64.Decode(b) }

// failingTopology is input → src → MapValues "triple" (panics on 13) →
// sink "sink" to output, whose values must be even.
func failingTopology(t *testing.T, input, output string) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, input, serde.String, serde.Int64, dsl.Named("src"))
	dsl.MapValues(s, func(v int64) int64 {
		if v == 13 {
			panic("unlucky 13")
		}
		return v * 3
	}, dsl.Named("triple")).To(output, serde.String, evenSerde{}, dsl.Named("sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// produceFailing writes to input's partition 0: a=2 (fine), b=<3 bytes>
// (undecodable), c=13 (the mapper panics), d=1 (the sink cannot serialize
// 3), e=4 (fine), each with a header naming it and a recent timestamp
// (base+offset ms); it returns base.
func (c *testCluster) produceFailing(t *testing.T, input string) int64 {
	t.Helper()
	enc := func(v int64) []byte { b, _ := serde.Int64.Encode(nil, v); return b }
	base := time.Now().Add(-time.Minute).UnixMilli()
	var rs []*kgo.Record
	for i, kv := range []struct {
		k string
		v []byte
	}{{"a", enc(2)}, {"b", []byte{1, 2, 3}}, {"c", enc(13)}, {"d", enc(1)}, {"e", enc(4)}} {
		rs = append(rs, &kgo.Record{Topic: input, Partition: 0, Key: []byte(kv.k), Value: kv.v,
			Timestamp: time.UnixMilli(base + int64(i)), Headers: []kgo.RecordHeader{{Key: "from", Value: []byte(kv.k)}}})
	}
	cl := c.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return base
}

// readCommitted reads n records of topic as a read_committed consumer, or
// fails the test after timeout.
func (c *testCluster) readCommitted(t *testing.T, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after %v: %d of %d records in %s", timeout, len(got), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

// waitCommitted waits until the group has committed offset want on
// topic's partition 0.
func (c *testCluster) waitCommitted(t *testing.T, group, topic string, want int64, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	deadline := time.Now().Add(timeout)
	var at int64 = -1
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		offs, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err == nil {
			if o, ok := offs.Lookup(topic, 0); ok {
				if at = o.At; at == want {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // polling the broker, not synchronising
	}
	t.Fatalf("group %s committed %d on %s-0 after %v, want %d", group, at, topic, timeout, want)
}

func hdr(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), h.Value != nil
		}
	}
	return "", false
}

// Each handler's dead-letter records on Kafka, under at-least-once and
// exactly-once: the DLQ holds the three failed input records as read, with
// Kafka Streams' headers, visible to a read_committed consumer; the good
// records reach the output; the input offset is committed past them all.
func TestDeadLetterQueueOnKafka(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			c := newCluster(t)
			input, output, dlq := topic(t, "in"), topic(t, "out"), topic(t, "dlq")
			c.create(t, 1, input, output, dlq)
			base := c.produceFailing(t, input)
			appID := topic(t, "app")
			reg := prometheus.NewRegistry()
			in := start(t, failingTopology(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
				runtime.ProcessingGuarantee(g), runtime.CommitInterval(100*time.Millisecond), runtime.Registerer(reg),
				runtime.OnDeserializationError(operators.SendToDeadLetterQueue),
				runtime.OnProcessingError(operators.SendToDeadLetterQueue),
				runtime.OnProductionError(operators.SendToDeadLetterQueue),
				runtime.DeadLetterQueue(dlq))
			rs := c.readCommitted(t, dlq, 3, time.Minute)
			slices.SortFunc(rs, func(a, b *kgo.Record) int { return strings.Compare(string(a.Key), string(b.Key)) })
			for i, w := range []struct {
				key, exception string
				value          []byte
				offset         int64
			}{
				{"b", "*operators.DeserializationError", []byte{1, 2, 3}, 1},
				{"c", "*operators.PanicError", []byte{0, 0, 0, 0, 0, 0, 0, 13}, 2},
				{"d", "*operators.SerializationError", []byte{0, 0, 0, 0, 0, 0, 0, 1}, 3},
			} {
				r := rs[i]
				if string(r.Key) != w.key || string(r.Value) != string(w.value) {
					t.Errorf("dead-letter record %d: %q=%v, want %q=%v", i, r.Key, r.Value, w.key, w.value)
				}
				if r.Timestamp.UnixMilli() != base+w.offset {
					t.Errorf("dead-letter record %s: timestamp %d, want the input's %d", w.key, r.Timestamp.UnixMilli(), base+w.offset)
				}
				if len(r.Headers) != 7 || r.Headers[0].Key != "from" || string(r.Headers[0].Value) != w.key {
					t.Errorf("dead-letter record %s: headers %v, want the input's header first and 6 error headers", w.key, r.Headers)
				}
				for k, v := range map[string]string{
					operators.HeaderErrorException: w.exception,
					operators.HeaderErrorTopic:     input,
					operators.HeaderErrorPartition: "0",
					operators.HeaderErrorOffset:    fmt.Sprint(w.offset),
				} {
					if got, _ := hdr(r, k); got != v {
						t.Errorf("dead-letter record %s: header %s = %q, want %q", w.key, k, got, v)
					}
				}
			}
			out := c.readCommitted(t, output, 2, time.Minute)
			var got []string
			for _, r := range out {
				v, _ := serde.Int64.Decode(r.Value)
				got = append(got, fmt.Sprintf("%s=%d", r.Key, v))
			}
			if strings.Join(got, " ") != "a=6 e=12" {
				t.Errorf("output %v, want [a=6 e=12]", got)
			}
			c.waitCommitted(t, appID, input, 5, time.Minute)
			in.stop(t)
			for kind, node := range map[string]string{"deserialization": "src", "processing": "triple", "production": "sink"} {
				if n := metricValue(t, reg, "sluice_dead_letter_records_total", map[string]string{"node": node, "kind": kind}); n != 1 {
					t.Errorf("sluice_dead_letter_records_total{node=%s,kind=%s} = %v, want 1", node, kind, n)
				}
			}
		})
	}
}

// metricValue returns the value of the counter name whose labels include
// labels, 0 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// Continue on Kafka, under both guarantees: the failed records are dropped
// and counted, the good ones go through, the offset passes them all.
func TestContinueHandlersOnKafka(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			c := newCluster(t)
			input, output := topic(t, "in"), topic(t, "out")
			c.create(t, 1, input, output)
			c.produceFailing(t, input)
			appID := topic(t, "app")
			reg := prometheus.NewRegistry()
			in := start(t, failingTopology(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
				runtime.ProcessingGuarantee(g), runtime.CommitInterval(100*time.Millisecond), runtime.Registerer(reg),
				runtime.SkipUndecodableRecords(),
				runtime.OnProcessingError(operators.LogAndContinue),
				runtime.OnProductionError(operators.LogAndContinue))
			out := c.readCommitted(t, output, 2, time.Minute)
			if string(out[0].Key) != "a" || string(out[1].Key) != "e" {
				t.Errorf("output keys %s, %s; want a, e", out[0].Key, out[1].Key)
			}
			c.waitCommitted(t, appID, input, 5, time.Minute)
			in.stop(t)
			for reason, node := range map[string]string{"deserialization-error": "src", "processing-error": "triple", "production-error": "sink"} {
				if n := metricValue(t, reg, "sluice_dropped_records_total", map[string]string{"node": node, "reason": reason}); n != 1 {
					t.Errorf("sluice_dropped_records_total{node=%s,reason=%s} = %v, want 1", node, reason, n)
				}
			}
		})
	}
}

// Fail (the default) on Kafka: Run returns an error naming the topic,
// partition, offset and node; the offset is not committed past the record.
func TestFailHandlerOnKafka(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	c.produceFailing(t, input)
	appID := topic(t, "app")
	in := start(t, failingTopology(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(100*time.Millisecond), runtime.SkipUndecodableRecords())
	var err error
	select {
	case err = <-in.done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not fail within a minute")
	}
	if pe, ok := errors.AsType[*operators.PanicError](err); !ok || pe.Node != "triple" {
		t.Fatalf("Run = %v, want the PanicError of node triple", err)
	}
	for _, s := range []string{"node triple", "topic " + input, "partition 0", "offset 2"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, ferr := adm.FetchOffsets(ctx, appID)
	if ferr != nil {
		t.Fatal(ferr)
	}
	if o, ok := offs.Lookup(input, 0); ok && o.At > 2 {
		t.Errorf("committed offset %d: past the failed record at 2", o.At)
	}
}

// A dead-letter queue topic that does not exist fails the start naming it
// and the option.
func TestMissingDeadLetterTopic(t *testing.T) {
	c := newCluster(t)
	input, output, dlq := topic(t, "in"), topic(t, "out"), topic(t, "dlq")
	c.create(t, 1, input, output)
	app, err := runtime.New(failingTopology(t, input, output), runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.StateDir(t.TempDir()), runtime.DeadLetterQueue(dlq))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = app.Run(ctx)
	var mte *runtime.MissingTopicError
	if !errors.As(err, &mte) || mte.Option != "DeadLetterQueue" || !strings.Contains(err.Error(), dlq) {
		t.Fatalf("Run = %v, want a MissingTopicError naming %s and DeadLetterQueue", err, dlq)
	}
}
