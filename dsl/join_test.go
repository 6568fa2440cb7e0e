package dsl_test

// Stream-table joins through the test driver, porting the scenarios of
// Kafka Streams' KStreamKTableJoinTest and KStreamKTableLeftJoinTest: the
// output is checked after each input.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// joinStep pipes one record into "stream" or "table" ("<null>" is a Kafka
// null) and lists the records expected on "out" right after it.
type joinStep struct {
	topic, key, value string
	ts                int64
	want              []string
}

func joinPipe(t *testing.T, in *testdriver.InputTopic[string, string], key, value string, ts int64) {
	t.Helper()
	r := operators.Record[string, string]{Key: key, Value: value, Timestamp: ts}
	r.NullKey, r.Tombstone = key == "<null>", value == "<null>"
	if r.NullKey {
		r.Key = ""
	}
	if r.Tombstone {
		r.Value = ""
	}
	opsOK(t, in.PipeRecord(r))
}

func joinTopology(t *testing.T, left bool, rekey bool) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "stream", serde.String, serde.String)
	if rekey {
		s = dsl.SelectKey(s, func(k, _ string) string { return k }).WithKeySerde(serde.String)
	}
	tb := dsl.TableFromTopic(b, "table", serde.String, serde.String, dsl.Named("tbl"))
	var out dsl.Stream[string, string]
	if left {
		out = dsl.LeftJoinTable(s, tb, func(k dsl.Maybe[string], v string, tv dsl.Maybe[string]) string {
			return k.Or("null") + ":" + v + "+" + tv.Or("null")
		})
	} else {
		out = dsl.JoinTable(s, tb, func(k, v, tv string) string { return k + ":" + v + "+" + tv })
	}
	out.To("out", serde.String, serde.String)
	topo, err := b.Build()
	opsOK(t, err)
	return topo
}

func runJoinSteps(t *testing.T, topo *topology.Topology, steps []joinStep, opts ...testdriver.Option) *testdriver.Driver {
	t.Helper()
	d, err := testdriver.New(topo, opts...)
	opsOK(t, err)
	t.Cleanup(func() { d.Close() })
	ins := map[string]*testdriver.InputTopic[string, string]{
		"stream": testdriver.CreateInputTopic(d, "stream", serde.String, serde.String),
		"table":  testdriver.CreateInputTopic(d, "table", serde.String, serde.String),
	}
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	for i, st := range steps {
		joinPipe(t, ins[st.topic], st.key, st.value, st.ts)
		got := opsRead(t, out)
		want := st.want
		if want == nil {
			want = []string{}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("step %d (%s %s=%s@%d): got %q, want %q", i, st.topic, st.key, st.value, st.ts, got, want)
		}
	}
	return d
}

// The scenario of KStreamKTableJoinTest and KStreamKTableLeftJoinTest:
// stream records before the table has rows, table updates (which never
// emit), stream records meeting the rows, updates of rows, deletes.
func joinScenario(left bool) []joinStep {
	// m is what a left join emits and an inner join does not.
	m := func(s ...string) []string {
		if left {
			return s
		}
		return nil
	}
	both := func(s ...string) []string { return s }
	return []joinStep{
		// No table rows yet: only the left join emits.
		{"stream", "0", "X0", 0, m("0=0:X0+null@0")},
		{"stream", "1", "X1", 1, m("1=1:X1+null@1")},
		// Table updates never emit.
		{"table", "0", "Y0", 5, nil},
		{"table", "1", "Y1", 6, nil},
		// Result timestamp = the stream record's, even when older than the row.
		{"stream", "0", "X0", 2, both("0=0:X0+Y0@2")},
		{"stream", "1", "X1", 10, both("1=1:X1+Y1@10")},
		{"stream", "2", "X2", 11, m("2=2:X2+null@11")},
		// An update of a row: later stream records see the new value.
		{"table", "0", "YY0", 12, nil},
		{"stream", "0", "X0", 13, both("0=0:X0+YY0@13")},
		// A tombstone in the table removes the key.
		{"table", "1", "<null>", 14, nil},
		{"stream", "1", "X1", 15, m("1=1:X1+null@15")},
		// A tombstone for a key the table never had changes nothing.
		{"table", "3", "<null>", 16, nil},
		{"stream", "3", "X3", 17, m("3=3:X3+null@17")},
		// Stream tombstones are dropped (both joins).
		{"stream", "0", "<null>", 18, nil},
		// A null key: the inner join drops it; the left join forwards it
		// joined with None (Kafka Streams 4).
		{"stream", "<null>", "X9", 19, m("<null>=null:X9+null@19")},
		{"stream", "<null>", "<null>", 20, nil},
	}
}

func TestJoinTableInner(t *testing.T) {
	d := runJoinSteps(t, joinTopology(t, false, false), joinScenario(false))
	node := "KSTREAM-JOIN-0000000003"
	if got := d.DroppedRecords(node, "null-key"); got != 2 {
		t.Errorf("%s null-key drops = %d, want 2", node, got)
	}
	if got := d.DroppedRecords(node, "null-value"); got != 1 {
		t.Errorf("%s null-value drops = %d, want 1", node, got)
	}
}

func TestJoinTableLeft(t *testing.T) {
	d := runJoinSteps(t, joinTopology(t, true, false), joinScenario(true))
	node := "KSTREAM-LEFTJOIN-0000000003"
	// The null-key record with a value is joined, not dropped; the one
	// with a null key and value counts as null-key.
	if got := d.DroppedRecords(node, "null-key"); got != 1 {
		t.Errorf("%s null-key drops = %d, want 1", node, got)
	}
	if got := d.DroppedRecords(node, "null-value"); got != 1 {
		t.Errorf("%s null-value drops = %d, want 1", node, got)
	}
}

// With the table's store behind a record cache, the join reads the rows
// written since the last flush.
func TestJoinTableRecordCache(t *testing.T) {
	for _, left := range []bool{false, true} {
		runJoinSteps(t, joinTopology(t, left, false), joinScenario(left), testdriver.WithRecordCache(1<<20))
	}
}

// A rekeyed stream is repartitioned before the join, and the join shares
// one sub-topology with the table.
func TestJoinTableRekeyedRepartitions(t *testing.T) {
	topo := joinTopology(t, false, true)
	desc := topo.Describe()
	for _, want := range []string{"KSTREAM-KEY-SELECT-0000000001-repartition", "Processor: KSTREAM-JOIN-", "(stores: [tbl])"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	g := topo.CoPartitionGroups()
	if len(g) != 1 || len(g[0].Topics) != 2 || g[0].Topics[0].Name != "table" || g[0].Topics[1].Name != "KSTREAM-KEY-SELECT-0000000001-repartition" {
		t.Errorf("CoPartitionGroups = %+v, want table with the repartition topic", g)
	}
	runJoinSteps(t, topo, []joinStep{
		{"table", "a", "A", 1, nil},
		{"stream", "a", "x", 2, []string{"a=a:x+A@2"}},
		{"stream", "b", "y", 3, nil},
	})
}

func TestJoinTableDescribe(t *testing.T) {
	desc := joinTopology(t, true, false).Describe()
	subs := strings.Split(desc, "Sub-topology: ")
	if len(subs) != 2 {
		t.Fatalf("want the stream and the table in one sub-topology:\n%s", desc)
	}
	for _, want := range []string{"Source: KSTREAM-SOURCE-0000000000 (topics: [stream])", "Source: tbl-source (topics: [table])",
		"Processor: KSTREAM-LEFTJOIN-0000000003 (stores: [tbl])"} {
		if !strings.Contains(subs[1], want) {
			t.Errorf("sub-topology lacks %q:\n%s", want, desc)
		}
	}
}

// A table that is not materialized (a filter and a mapValues without
// Materialized) is read through getters chained to its source's store, as
// Kafka Streams' KTableValueGetterSupplier: the join's node is connected to
// that store, and a row the filter hides is absent.
func TestJoinTableNotMaterialized(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "stream", serde.String, serde.String)
	tb := dsl.TableMapValues(dsl.TableFromTopic(b, "table", serde.String, serde.String, dsl.Named("tbl")).
		Filter(func(_, v string) bool { return v != "hidden" }), strings.ToUpper, nil)
	dsl.LeftJoinTable(s, tb, func(_ dsl.Maybe[string], v string, tv dsl.Maybe[string]) string { return v + "+" + tv.Or("none") },
		dsl.Named("enrich")).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if desc := topo.Describe(); !strings.Contains(desc, "Processor: enrich (stores: [tbl])") {
		t.Errorf("the join is not connected to the source table's store:\n%s", desc)
	}
	runJoinSteps(t, topo, []joinStep{
		{"table", "a", "x", 1, nil},
		{"stream", "a", "s1", 2, []string{"a=s1+X@2"}},
		{"table", "a", "hidden", 3, nil},
		{"stream", "a", "s2", 4, []string{"a=s2+none@4"}},
		{"table", "a", "<null>", 5, nil},
		{"stream", "a", "s3", 6, []string{"a=s3+none@6"}},
	})
}

// A stream keyed by windows joins a windowed aggregation's table: the
// join reads the window store by the record's window.
func TestJoinTableWindowed(t *testing.T) {
	const size = 10 * time.Millisecond
	keys := window.TimeKeySerde(serde.String, size)
	b := dsl.NewBuilder()
	counts := dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(size, 0)).Count()
	s := dsl.FromTopic(b, "stream", keys, serde.String)
	dsl.JoinTable(s, counts, func(_ window.Windowed[string], v string, n int64) string { return fmt.Sprintf("%s:%d", v, n) }).
		To("out", nil, serde.String)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	st := testdriver.CreateInputTopic(d, "stream", keys, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", keys, serde.String)
	opsOK(t, in.PipeAt("k", "x", 1))
	opsOK(t, in.PipeAt("k", "x", 4))
	w0 := window.Windowed[string]{Key: "k", Window: window.Window{Start: 0, End: 10}}
	w1 := window.Windowed[string]{Key: "k", Window: window.Window{Start: 10, End: 20}}
	opsOK(t, st.PipeAt(w0, "s", 6))
	opsOK(t, st.PipeAt(w1, "t", 7)) // no count in [10,20) yet
	rs, err := out.ReadRecords()
	opsOK(t, err)
	if len(rs) != 1 || rs[0].Key != w0 || rs[0].Value != "s:2" || rs[0].Timestamp != 6 {
		t.Fatalf("got %+v, want one record %v=s:2@6", rs, w0)
	}
}
