package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// Bad records of every kind, in a stream feeding an aggregation, a
// windowed aggregation and a repartition, in a table and a global table
// joined with a stream, and written straight into the repartition topic:
// none stops the application, each dropped one is counted by the metric
// sluice_dropped_records_total with the reason (and node) the test driver
// counts it by for the same input, the outputs of the good records are the
// driver's, and the committed offsets reach the ends of the input and
// repartition topics. Under both processing guarantees.
func TestBadRecordsCountedAndPassed(t *testing.T) {
	for _, eos := range []bool{false, true} {
		name := "at-least-once"
		if eos {
			name = "exactly-once"
		}
		t.Run(name, func(t *testing.T) { testBadRecords(t, eos) })
	}
}

// badRecordTopics are the topics of the bad-records topology.
type badRecordTopics struct {
	in, table, global, stream                      string // inputs
	count, windowed, rekeyed, joined, globalJoined string // outputs
}

func (tp badRecordTopics) outputs() []string {
	return []string{tp.count, tp.windowed, tp.rekeyed, tp.joined, tp.globalJoined}
}

func badRecordsTopology(t *testing.T, tp badRecordTopics) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	skip := dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp)
	s := dsl.FromTopic(b, tp.in, serde.String, serde.Int64, dsl.Named("src"), skip)
	s.GroupByKey(dsl.Named("by-key")).Count(dsl.Named("count")).ToStream(dsl.Named("count-changes")).To(tp.count, serde.String, serde.Int64)
	w := dsl.WindowedBy(s.GroupByKey(dsl.Named("by-key-w")), window.Tumbling(10*time.Second, 0)).Count(dsl.Named("wcount"))
	dsl.Map(w.ToStream(dsl.Named("wcount-changes")), func(k window.Windowed[string], n int64) (string, int64) {
		return k.Key + "@" + strconv.FormatInt(k.Window.Start, 10), n
	}, dsl.Named("wfmt")).To(tp.windowed, serde.String, serde.Int64)
	dsl.SelectKey(s, func(k string, _ int64) string { return k }, dsl.Named("rekey")).
		GroupByKey(dsl.Named("grouped")).Count(dsl.Named("rcount")).ToStream(dsl.Named("rcount-changes")).
		To(tp.rekeyed, serde.String, serde.Int64)
	joined := func(v, o int64) string { return fmt.Sprintf("%d/%d", v, o) }
	st := dsl.FromTopic(b, tp.stream, serde.String, serde.Int64, dsl.Named("stream"), skip)
	tab := dsl.TableFromTopic(b, tp.table, serde.String, serde.Int64, dsl.Named("table"), skip)
	dsl.JoinTable(st, tab, func(_ string, v, o int64) string { return joined(v, o) }, dsl.Named("join")).
		To(tp.joined, serde.String, serde.String)
	g := dsl.GlobalTableFromTopic(b, tp.global, serde.String, serde.Int64, dsl.Named("global"))
	dsl.JoinGlobal(st, g, func(k dsl.Maybe[string], _ int64) dsl.Maybe[string] { return k },
		func(_ dsl.Maybe[string], v, gv int64) string { return joined(v, gv) }, dsl.Named("gjoin")).
		To(tp.globalJoined, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// badRecords returns good and bad records for a topic, keys prefixed by
// prefix: a good one, then each kind of bad record followed by a good one,
// at event times from base ("late" one a minute before).
func badRecords(prefix string, base int64) []*kgo.Record {
	i64 := func(v int64) []byte { b, _ := serde.Int64.Encode(nil, v); return b }
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	good := func(i int) *kgo.Record {
		return &kgo.Record{Key: []byte(prefix + "g" + strconv.Itoa(i)), Value: i64(int64(i)), Timestamp: at(base + int64(i))}
	}
	z := []byte(prefix + "z")
	bad := []*kgo.Record{
		{Key: nil, Value: i64(5), Timestamp: at(base)},                                            // null key
		{Key: z, Value: nil, Timestamp: at(base)},                                                 // null value
		{Key: []byte{}, Value: i64(5), Timestamp: at(base)},                                       // empty key
		{Key: z, Value: []byte{}, Timestamp: at(base)},                                            // empty value: not an int64
		{Key: z, Value: make([]byte, 2<<20), Timestamp: at(base)},                                 // oversized: not an int64
		{Key: append(bytes.Clone(z), 0xff, 0xed, 0xa0, 0x80), Value: i64(5), Timestamp: at(base)}, // invalid UTF-8
		{Key: z, Value: i64(5), Timestamp: at(-1)},                                                // no (negative) timestamp
		{Key: z, Value: i64(5), Timestamp: at(base - 60_000)},                                     // late for a window
		{Key: z, Value: i64(5), Timestamp: at(base), Headers: []kgo.RecordHeader{ // garbage headers, Sluice's own names
			{Key: "sluice.gen", Value: []byte("xyz")},
			{Key: "sluice.input", Value: []byte("not an input position, but 12+ bytes")},
			{Key: "v", Value: []byte{0xff, 0xff}},
			{Key: "dup", Value: []byte("1")}, {Key: "dup", Value: nil},
			{Key: "", Value: bytes.Repeat([]byte{0xff}, 100_000)},
		}},
	}
	rs := []*kgo.Record{good(0)}
	for i, r := range bad {
		rs = append(rs, r, good(i+1))
	}
	return rs
}

func testBadRecords(t *testing.T, eos bool) {
	c := newCluster(t)
	tp := badRecordTopics{
		in: topic(t, "in"), table: topic(t, "table"), global: topic(t, "global"), stream: topic(t, "stream"),
		count: topic(t, "count"), windowed: topic(t, "windowed"), rekeyed: topic(t, "rekeyed"), joined: topic(t, "joined"), globalJoined: topic(t, "gjoined"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(c.client(t))
	big := "4194304"
	retention := "-1"
	if _, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"max.message.bytes": &big, "retention.ms": &retention},
		tp.in, tp.table, tp.global, tp.stream); err != nil {
		t.Fatal(err)
	}
	c.create(t, 1, tp.outputs()...)
	appID := topic(t, "app")
	topo := badRecordsTopology(t, tp)
	base := time.Now().UnixMilli() / 10_000 * 10_000

	prod := c.client(t, kgo.ProducerBatchMaxBytes(4<<20), kgo.MaxBufferedBytes(64<<20))
	produce := func(topic string, rs []*kgo.Record) {
		t.Helper()
		for _, r := range rs {
			r.Topic = topic
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	inRecs, tableRecs, globalRecs := badRecords("", base), badRecords("t", base), badRecords("t", base)
	repRecs := badRecords("r", base+100)
	var streamRecs []*kgo.Record
	for _, r := range tableRecs {
		if k := string(r.Key); strings.HasPrefix(k, "tg") {
			v, _ := serde.Int64.Encode(nil, 100)
			streamRecs = append(streamRecs, &kgo.Record{Key: r.Key, Value: v, Timestamp: time.UnixMilli(base + 1000)})
		}
	}
	produce(tp.in, inRecs)
	produce(tp.table, tableRecs)
	produce(tp.global, globalRecs)

	// The test driver on the same input, in the order the runtime sees it
	// (the table before the stream records that join it, the records
	// derived from tp.in before those written straight into the
	// repartition topic).
	d, err := testdriver.New(topo, testdriver.SkipUndecodableRecords(), testdriver.WithApplicationID(appID))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipe := func(topic string, rs []*kgo.Record) {
		t.Helper()
		in := testdriver.CreateInputTopic(d, topic, serde.Bytes, serde.Bytes)
		for _, r := range rs {
			if err := in.PipeRecord(rawRecord(r)); err != nil {
				t.Fatalf("driver: pipe to %s: %v", topic, err)
			}
		}
	}
	pipe(tp.global, globalRecs)
	pipe(tp.in, inRecs)
	pipe(tp.table, tableRecs)
	pipe(tp.stream, streamRecs)
	repartition := appID + "-grouped-repartition"
	pipe(repartition, repRecs)
	want := map[string]map[string]string{}
	for _, out := range tp.outputs() {
		rs, err := testdriver.CreateOutputTopic(d, out, serde.Bytes, serde.Bytes).ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		want[out] = map[string]string{}
		for _, r := range rs {
			want[out][string(r.Key)] = string(r.Value)
		}
	}
	for _, out := range tp.outputs() {
		if len(want[out]) < len(streamRecs) {
			t.Fatalf("the driver wrote %d keys to %s, want at least %d: %q", len(want[out]), out, len(streamRecs), want[out])
		}
	}
	// An invalid UTF-8 key is kept as read (serde.String is lossless): a
	// key of its own, counted.
	if _, ok := want[tp.count]["z\xff\xed\xa0\x80"]; !ok {
		t.Fatalf("no count of the invalid UTF-8 key kept as z\xff\xed\xa0\x80: %q", want[tp.count])
	}
	wantDrops := map[string]float64{}
	for k, n := range driverDrops(d, topo) {
		wantDrops[k] += float64(n)
	}

	reg := prometheus.NewRegistry()
	opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.SkipUndecodableRecords(),
		runtime.Registerer(reg), runtime.CommitInterval(50 * time.Millisecond)}
	if eos {
		opts = eosOptions(c, appID, runtime.SkipUndecodableRecords(), runtime.Registerer(reg))
	}
	in := start(t, topo, opts...)
	// The stream records only once the table holds the rows they join
	// (its input committed), and the repartition topic's own records once
	// it exists and tp.in's are in it.
	awaitCommitted(ctx, t, adm, appID, tp.in, tp.table)
	produce(tp.stream, streamRecs)
	produce(repartition, repRecs)
	awaitCommitted(ctx, t, adm, appID, tp.in, tp.table, tp.stream, repartition)
	for _, out := range tp.outputs() {
		got := readLatest(ctx, t, c, out, want[out], eos)
		if !maps.Equal(got, want[out]) {
			t.Errorf("%s: latest values\n  %q\nwant (the driver's)\n  %q", out, got, want[out])
		}
	}
	in.stop(t)

	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_dropped_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var node, reason string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "node":
					node = l.GetValue()
				case "reason":
					reason = l.GetValue()
				}
			}
			got[node+" "+reason] += m.GetCounter().GetValue()
		}
	}
	t.Logf("dropped by node and reason: %v", got)
	if !maps.Equal(got, wantDrops) {
		t.Errorf("sluice_dropped_records_total by node and reason:\n  %v\nwant (the driver's)\n  %v", got, wantDrops)
	}
	for _, reason := range []string{"null-key", "null-value", "deserialization-error", "invalid-timestamp", "late"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(got)), func(k string) bool { return strings.HasSuffix(k, " "+reason) }) {
			t.Errorf("no drop counted for %s: %v", reason, got)
		}
	}
}

// rawRecord is r as a record of raw bytes for the test driver.
func rawRecord(r *kgo.Record) operators.Record[[]byte, []byte] {
	out := operators.Record[[]byte, []byte]{Key: r.Key, Value: r.Value, NullKey: r.Key == nil, Tombstone: r.Value == nil, Timestamp: r.Timestamp.UnixMilli()}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, operators.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

// awaitCommitted waits until the group's committed offsets of topics'
// partition 0 reach their end offsets.
func awaitCommitted(ctx context.Context, t *testing.T, adm *kadm.Client, group string, topics ...string) {
	t.Helper()
	for {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			var committed kadm.OffsetResponses
			if committed, err = adm.FetchOffsets(ctx, group); err == nil {
				all := true
				for _, tp := range topics {
					end, ok := ends.Lookup(tp, 0)
					c, has := committed.Lookup(tp, 0)
					if !ok || end.Err != nil || !has || c.At < end.Offset {
						all = false
					}
				}
				if all {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("committed offsets of %v did not reach their ends: %v", topics, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readLatest reads topic from its start until the latest value of each
// key equals want's, or the deadline of ctx, and returns them.
func readLatest(ctx context.Context, t *testing.T, c *testCluster, topic string, want map[string]string, eos bool) map[string]string {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
	if eos {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := c.client(t, opts...)
	got := map[string]string{}
	for !maps.Equal(got, want) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(rctx)
		cancel()
		if ctx.Err() != nil {
			return got
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	return got
}

// driverDrops returns the driver's dropped counts, "node reason".
func driverDrops(d *testdriver.Driver, topo *topology.Topology) map[string]int64 {
	m := map[string]int64{}
	subs := topo.SubTopologies()
	for _, g := range topo.GlobalStores() {
		subs = append(subs, g.SubTopology)
	}
	for _, st := range subs {
		for _, n := range st.Nodes {
			for _, r := range []string{"null-key", "null-value", "null-foreign-key", "late", "invalid-timestamp",
				"deserialization-error", "out-of-order", "stale-response"} {
				if c := d.DroppedRecords(n.Name, r); c > 0 {
					m[n.Name+" "+r] = c
				}
			}
		}
	}
	return m
}
