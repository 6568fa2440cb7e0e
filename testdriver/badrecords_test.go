package testdriver_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// Bad records of every kind, in every kind of source, through the test
// driver: each is dropped and counted by a reason that says what it was,
// or goes through as Kafka Streams lets it through; none fails the task,
// and the good records piped before and after it come out right.
//
// testdata/badrecords holds, for each source kind (run source=...), one
// line per kind of bad record: what the good record "a" (before) wrote,
// what the bad record wrote or why it was dropped (reason@node), and what
// the good record "b" (after) wrote. Rewrite with -rewrite after a change,
// and review the diff.
func TestBadRecordsEverySource(t *testing.T) {
	datadriven.RunTest(t, "testdata/badrecords", func(t *testing.T, td *datadriven.TestData) string {
		if td.Cmd != "run" {
			td.Fatalf(t, "unknown command %q", td.Cmd)
		}
		name, _ := td.Arg("source")
		sc, ok := sourceCases[name]
		if !ok {
			td.Fatalf(t, "unknown source kind %q", name)
		}
		var out strings.Builder
		for _, bk := range badKinds {
			fmt.Fprintf(&out, "%s: %s\n", bk.name, runBad(t, sc, bk))
		}
		return out.String()
	})
}

// A source kind: a topology reading String keys and Int64 values from
// topic "in" (and others), writing String keys and values to "out".
type sourceCase struct {
	build func(b *dsl.Builder)
	// bad is the topic the bad record goes to ("" = "in"); internal: it
	// is the internal topic of that name (the repartition topic).
	bad      string
	internal bool
	// setup pipes what the good records need (the other side of a join).
	setup func(p piper) error
	// good pipes the good record k, v at ts.
	good func(p piper, k string, v, ts int64) error
}

// piper pipes raw records into the driver's topics.
type piper struct {
	d   *testdriver.Driver
	ins map[string]*testdriver.InputTopic[[]byte, []byte]
}

func (p piper) raw(topic string, r operators.Record[[]byte, []byte]) error {
	in, ok := p.ins[topic]
	if !ok {
		in = testdriver.CreateInputTopic(p.d, topic, serde.Bytes, serde.Bytes)
		p.ins[topic] = in
	}
	return in.PipeRecord(r)
}

func (p piper) pipe(topic, k string, v, ts int64) error {
	vb, _ := serde.Int64.Encode(nil, v)
	return p.raw(topic, operators.Record[[]byte, []byte]{Key: []byte(k), Value: vb, Timestamp: ts})
}

func pipeIn(topic string) func(p piper, k string, v, ts int64) error {
	return func(p piper, k string, v, ts int64) error { return p.pipe(topic, k, v, ts) }
}

// The bad records: each with key "z" (unless the key is what is bad) and
// a timestamp between those of the good records (unless it is what is
// bad).
type badKind struct {
	name string
	rec  operators.Record[[]byte, []byte]
}

var (
	int5, _  = serde.Int64.Encode(nil, 5)
	badKinds = []badKind{
		{"null-key", operators.Record[[]byte, []byte]{NullKey: true, Value: int5, Timestamp: 100_000}},
		{"null-value", operators.Record[[]byte, []byte]{Key: []byte("z"), Tombstone: true, Timestamp: 100_000}},
		{"empty-key", operators.Record[[]byte, []byte]{Key: []byte{}, Value: int5, Timestamp: 100_000}},
		{"empty-value", operators.Record[[]byte, []byte]{Key: []byte("z"), Value: []byte{}, Timestamp: 100_000}},
		{"oversized-value", operators.Record[[]byte, []byte]{Key: []byte("z"), Value: make([]byte, 2<<20), Timestamp: 100_000}},
		{"invalid-utf8-key", operators.Record[[]byte, []byte]{Key: []byte("z\xff\xed\xa0\x80"), Value: int5, Timestamp: 100_000}},
		{"negative-timestamp", operators.Record[[]byte, []byte]{Key: []byte("z"), Value: int5, Timestamp: -5}},
		{"late", operators.Record[[]byte, []byte]{Key: []byte("z"), Value: int5, Timestamp: 1_000}},
		{"garbage-headers", operators.Record[[]byte, []byte]{Key: []byte("z"), Value: int5, Timestamp: 100_000, Headers: []operators.Header{
			{Key: "sluice.gen", Value: []byte("xyz")},
			{Key: "sluice.input", Value: []byte("not an input position, but 12+ bytes")},
			{Key: "v", Value: []byte{0xff, 0xff}},
			{Key: "dup", Value: []byte("1")}, {Key: "dup", Value: nil},
			{Key: "", Value: bytes.Repeat([]byte{0xff}, 100_000)},
		}}},
	}
)

func fmtInt(v int64) string { return strconv.FormatInt(v, 10) }

func src(b *dsl.Builder, topic, name string) dsl.Stream[string, int64] {
	return dsl.FromTopic(b, topic, serde.String, serde.Int64, dsl.Named(name), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
}

func table(b *dsl.Builder, topic, name string, opts ...dsl.TableSourceOption) dsl.Table[string, int64] {
	opts = append(opts, dsl.Named(name), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
	return dsl.TableFromTopic(b, topic, serde.String, serde.Int64, opts...)
}

func toOut(s dsl.Stream[string, string]) { s.To("out", serde.String, serde.String) }

func joined(v, o int64) string { return fmtInt(v) + "/" + fmtInt(o) }

var sourceCases = map[string]sourceCase{
	"stream": {
		build: func(b *dsl.Builder) { toOut(dsl.MapValues(src(b, "in", "src"), fmtInt, dsl.Named("fmt"))) },
		good:  pipeIn("in"),
	},
	"aggregation": {
		build: func(b *dsl.Builder) {
			c := src(b, "in", "src").GroupByKey().Count(dsl.Named("count"))
			toOut(dsl.MapValues(c.ToStream(dsl.Named("changes")), fmtInt, dsl.Named("fmt")))
		},
		good: pipeIn("in"),
	},
	"windowed-aggregation": {
		build: func(b *dsl.Builder) {
			c := dsl.WindowedBy(src(b, "in", "src").GroupByKey(), window.Tumbling(10*time.Second, 0)).Count(dsl.Named("count"))
			toOut(dsl.Map(c.ToStream(dsl.Named("changes")), func(k window.Windowed[string], n int64) (string, string) {
				return k.Key + "@" + fmtInt(k.Window.Start), fmtInt(n)
			}, dsl.Named("fmt")))
		},
		good: pipeIn("in"),
	},
	"repartition-topic": {
		build: func(b *dsl.Builder) {
			re := dsl.SelectKey(src(b, "in", "src"), func(k string, _ int64) string { return k }, dsl.Named("rekey"))
			c := re.GroupByKey(dsl.Named("grouped")).Count(dsl.Named("count"))
			toOut(dsl.MapValues(c.ToStream(dsl.Named("changes")), fmtInt, dsl.Named("fmt")))
		},
		bad: "grouped-repartition", internal: true,
		good: pipeIn("in"),
	},
	"table": {
		build: func(b *dsl.Builder) {
			toOut(dsl.MapValues(table(b, "in", "table").ToStream(dsl.Named("changes")), fmtInt, dsl.Named("fmt")))
		},
		good: pipeIn("in"),
	},
	"versioned-table": {
		build: func(b *dsl.Builder) {
			t := table(b, "in", "table", dsl.Materialized(dsl.StoreOptions{HistoryRetention: time.Hour}))
			toOut(dsl.MapValues(t.ToStream(dsl.Named("changes")), fmtInt, dsl.Named("fmt")))
		},
		good: pipeIn("in"),
	},
	"global-table": {
		build: func(b *dsl.Builder) {
			g := dsl.GlobalTableFromTopic(b, "in", serde.String, serde.Int64, dsl.Named("global"))
			toOut(dsl.JoinGlobal(src(b, "stream", "src"), g,
				func(k dsl.Maybe[string], _ int64) dsl.Maybe[string] { return k },
				func(_ dsl.Maybe[string], v, gv int64) string { return joined(v, gv) }, dsl.Named("join")))
		},
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("in", k, v, ts); err != nil {
				return err
			}
			return p.pipe("stream", k, 100, ts)
		},
	},
	"stream-stream-join-left": {
		build: buildStreamStreamJoin,
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("right", k, 100, ts); err != nil {
				return err
			}
			return p.pipe("in", k, v, ts)
		},
	},
	"stream-stream-join-right": {
		build: buildStreamStreamJoin, bad: "right",
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("in", k, 100, ts); err != nil {
				return err
			}
			return p.pipe("right", k, v, ts)
		},
	},
	"stream-table-join-stream": {
		build: buildStreamTableJoin,
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("table", k, 100, ts); err != nil {
				return err
			}
			return p.pipe("in", k, v, ts)
		},
	},
	"stream-table-join-table": {
		build: buildStreamTableJoin, bad: "table",
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("table", k, v, ts); err != nil {
				return err
			}
			return p.pipe("in", k, 100, ts)
		},
	},
	"table-table-join-left": {
		build: buildTableTableJoin,
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("right", k, 100, ts); err != nil {
				return err
			}
			return p.pipe("in", k, v, ts)
		},
	},
	"table-table-join-right": {
		build: buildTableTableJoin, bad: "right",
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("in", k, 100, ts); err != nil {
				return err
			}
			return p.pipe("right", k, v, ts)
		},
	},
	"fk-join-left": {
		build: buildFKJoin,
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("right", "f"+k, 100, ts); err != nil {
				return err
			}
			return p.pipe("in", k, v, ts)
		},
	},
	"fk-join-right": {
		build: buildFKJoin, bad: "right",
		good: func(p piper, k string, v, ts int64) error {
			if err := p.pipe("in", k, 100, ts); err != nil {
				return err
			}
			return p.pipe("right", "f"+k, v, ts)
		},
	},
}

func buildStreamStreamJoin(b *dsl.Builder) {
	toOut(dsl.Join(src(b, "in", "left"), src(b, "right", "right"), func(_ string, v, o int64) string { return joined(v, o) },
		window.JoinTimeDifferenceAndGrace(10*time.Second, 0), dsl.Named("join")))
}

func buildStreamTableJoin(b *dsl.Builder) {
	toOut(dsl.JoinTable(src(b, "in", "src"), table(b, "table", "table"), func(_ string, v, o int64) string { return joined(v, o) }, dsl.Named("join")))
}

func buildTableTableJoin(b *dsl.Builder) {
	j := dsl.TableJoin(table(b, "in", "left"), table(b, "right", "right"), func(_ string, v, o int64) string { return joined(v, o) }, serde.String, dsl.Named("join"))
	toOut(j.ToStream(dsl.Named("changes")))
}

// The left table's row k refers to the right table's row "f"+k.
func buildFKJoin(b *dsl.Builder) {
	j := dsl.TableJoinForeignKey(table(b, "in", "left"), table(b, "right", "right"),
		func(k string, _ int64) dsl.Maybe[string] { return dsl.Some("f" + k) },
		func(_ string, v, o int64) string { return joined(v, o) }, serde.String, dsl.Named("join"))
	toOut(j.ToStream(dsl.Named("changes")))
}

// runBad pipes good record a, the bad record, good record b into a new
// driver of sc's topology and says what each wrote and what was dropped.
func runBad(t *testing.T, sc sourceCase, bk badKind) string {
	t.Helper()
	b := dsl.NewBuilder()
	sc.build(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, testdriver.SkipUndecodableRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := piper{d: d, ins: map[string]*testdriver.InputTopic[[]byte, []byte]{}}
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	read := func() string {
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, r := range rs {
			s = append(s, formatOut(r))
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	if sc.setup != nil {
		if err := sc.setup(p); err != nil {
			t.Fatal(err)
		}
	}
	var res []string
	if err := sc.good(p, "a", 1, 100_000); err != nil {
		t.Fatalf("good record a: %v", err)
	}
	res = append(res, "a"+read())
	topic := cmpOr(sc.bad, "in")
	if sc.internal {
		topic = "sluice-test-" + topic
	}
	before := drops(d, topo)
	if err := p.raw(topic, bk.rec); err != nil {
		res = append(res, "bad: error: "+err.Error())
	} else {
		after := drops(d, topo)
		var ds []string
		for k, n := range after {
			if n != before[k] {
				ds = append(ds, fmt.Sprintf("dropped %s@%s", k[1], k[0]))
				if n-before[k] != 1 {
					ds[len(ds)-1] += fmt.Sprintf(" x%d", n-before[k])
				}
			}
		}
		slices.Sort(ds)
		res = append(res, "bad"+read()+strings.Join(append([]string{""}, ds...), " "))
	}
	if err := sc.good(p, "b", 2, 100_001); err != nil {
		t.Fatalf("good record b after %s: %v", bk.name, err)
	}
	res = append(res, "b"+read())
	return strings.Join(res, " ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func formatOut(r operators.Record[string, string]) string {
	k, v := r.Key, r.Value
	if r.NullKey {
		k = "<null>"
	}
	if r.Tombstone {
		v = "<null>"
	}
	s := strconv.Quote(k) + "=" + v + "@" + fmtInt(r.Timestamp)
	if len(r.Headers) > 0 {
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, fmt.Sprintf("%q:%dB", h.Key, len(h.Value)))
		}
		s += "{" + strings.Join(hs, ",") + "}"
	}
	return s
}

// dropReasons are the reasons a node may count a drop by.
var dropReasons = []string{"null-key", "null-value", "null-foreign-key", "late", "invalid-timestamp",
	"deserialization-error", "invalid-utf8", "out-of-order", "stale-response"}

// drops returns the driver's dropped counts by node and reason.
func drops(d *testdriver.Driver, topo *topology.Topology) map[[2]string]int64 {
	m := map[[2]string]int64{}
	subs := topo.SubTopologies()
	for _, g := range topo.GlobalStores() {
		subs = append(subs, g.SubTopology)
	}
	for _, st := range subs {
		for _, n := range st.Nodes {
			for _, r := range dropReasons {
				if c := d.DroppedRecords(n.Name, r); c > 0 {
					m[[2]string{n.Name, r}] = c
				}
			}
		}
	}
	return m
}

// Drops are logged as Kafka Streams logs them, rate-limited: one line per
// node and reason per 10 s of the task's clock, naming the record and
// telling how many were dropped since the last line.
func TestDroppedRecordsLogRateLimited(t *testing.T) {
	b := dsl.NewBuilder()
	b2 := src(b, "in", "src").GroupByKey().Count(dsl.Named("count"))
	toOut(dsl.MapValues(b2.ToStream(), fmtInt))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d, err := testdriver.New(topo, testdriver.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := piper{d: d, ins: map[string]*testdriver.InputTopic[[]byte, []byte]{}}
	nullKey := func() {
		t.Helper()
		if err := p.raw("in", operators.Record[[]byte, []byte]{NullKey: true, Value: int5, Timestamp: 1}); err != nil {
			t.Fatal(err)
		}
	}
	lines := func() int { return strings.Count(buf.String(), "skipping a record with a null key") }
	for range 3 {
		nullKey()
	}
	if n := lines(); n != 1 {
		t.Fatalf("%d lines logged for 3 null keys within 10s, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "node=count reason=null-key topic=in partition=0 offset=0") {
		t.Errorf("the line does not name the node, reason and record:\n%s", buf.String())
	}
	if err := d.AdvanceWallClockTime(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	nullKey()
	if n := lines(); n != 2 {
		t.Fatalf("%d lines logged after 10s, want 2:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "offset=3 dropped_since_last_log=2") {
		t.Errorf("the second line does not say 2 were dropped unlogged:\n%s", buf.String())
	}
	if n := d.DroppedRecords("count", "null-key"); n != 4 {
		t.Errorf("%d null keys counted, want 4", n)
	}
}
