package dsl_test

// Tests of every DSL operation, run through the in-memory test driver. Each
// test pipes records into input topics and asserts the exact records
// (key, value, timestamp, headers) written to output topics, or the
// contents of stores. Expected behaviour follows Kafka Streams.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
)

// opsBuild compiles b or fails the test.
func opsBuild(t *testing.T, b *dsl.Builder) *topology.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

// opsDriver compiles b and starts a driver that is closed when the test
// ends.
func opsDriver(t *testing.T, b *dsl.Builder, opts ...testdriver.Option) (*testdriver.Driver, *topology.Topology) {
	t.Helper()
	topo := opsBuild(t, b)
	d, err := testdriver.New(topo, opts...)
	if err != nil {
		t.Fatalf("testdriver.New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d, topo
}

// opsOK fails the test at once on err.
func opsOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// opsFormat prints a record as "key=value@timestamp", a Kafka null as
// <null>, followed by its headers as " key:value".
func opsFormat[K, V any](r operators.Record[K, V]) string {
	var sb strings.Builder
	if r.NullKey {
		sb.WriteString("<null>")
	} else {
		fmt.Fprint(&sb, r.Key)
	}
	sb.WriteByte('=')
	if r.Tombstone {
		sb.WriteString("<null>")
	} else {
		fmt.Fprint(&sb, r.Value)
	}
	fmt.Fprintf(&sb, "@%d", r.Timestamp)
	for _, h := range r.Headers {
		fmt.Fprintf(&sb, " %s:%s", h.Key, h.Value)
	}
	return sb.String()
}

// opsRead reads every unread record of out, formatted by opsFormat.
func opsRead[K, V any](t *testing.T, out *testdriver.OutputTopic[K, V]) []string {
	t.Helper()
	rs, err := out.ReadRecords()
	opsOK(t, err)
	got := []string{}
	for _, r := range rs {
		got = append(got, opsFormat(r))
	}
	return got
}

// opsWant compares records (or any strings) in order.
func opsWant(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// opsStore returns the entries of a timestamped store as
// "key=value@timestamp", in key order.
func opsStore[K, V any](t *testing.T, d *testdriver.Driver, name string, keys serde.Serde[K], values serde.Serde[V]) []string {
	t.Helper()
	seq, err := testdriver.TimestampedKeyValueStore(d, name, keys, values)
	opsOK(t, err)
	got := []string{}
	for k, v := range seq {
		got = append(got, fmt.Sprintf("%v=%v@%d", k, v.Value, v.Timestamp))
	}
	return got
}

// opsRepartitionTopics lists the repartition topics of topo.
func opsRepartitionTopics(topo *topology.Topology) []string {
	got := []string{}
	for _, it := range topo.InternalTopics() {
		if it.Kind == topology.Repartition {
			got = append(got, it.Name)
		}
	}
	return got
}

func hdr(k, v string) []operators.Header { return []operators.Header{{Key: k, Value: []byte(v)}} }

// --- Sources ---------------------------------------------------------------

func TestFromTopic(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64).To("out", nil, nil)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

	opsOK(t, in.PipeRecord(operators.Record[string, int64]{Key: "a", Value: 1, Timestamp: 10, Headers: hdr("trace", "t1")}))
	opsOK(t, in.PipeAt("b", -2, 5))
	opsOK(t, in.PipeValue(3)) // null key: a plain stream passes it on
	opsOK(t, in.PipeTombstone("c", 7))
	opsOK(t, in.PipeAt("", 4, 8)) // an empty key is not a null key
	if n := out.QueueSize(); n != 5 {
		t.Errorf("QueueSize = %d, want 5", n)
	}
	first, err := out.ReadRecord()
	opsOK(t, err)
	opsWant(t, "first record", []string{opsFormat(first)}, []string{"a=1@10 trace:t1"})
	opsWant(t, "out", opsRead(t, out), []string{"b=-2@5", "<null>=3@0", "c=<null>@7", "=4@8"})
	if _, err := out.ReadRecord(); !errors.Is(err, testdriver.ErrNoRecord) || !out.IsEmpty() {
		t.Errorf("ReadRecord after reading everything: %v, want ErrNoRecord", err)
	}
	other := testdriver.CreateInputTopic(d, "elsewhere", serde.String, serde.Int64)
	if err := other.PipeAt("a", 1, 1); err == nil || !strings.Contains(err.Error(), "elsewhere") {
		t.Errorf("piping into a topic the topology does not read: %v, want an error naming it", err)
	}
}

func TestFromTopicsMergesTopics(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopics(b, []string{"left", "right"}, serde.String, serde.Int64).To("out", nil, nil)
	d, topo := opsDriver(t, b)
	if got := topo.SourceTopics(); !slices.Equal(got, []string{"left", "right"}) {
		t.Errorf("SourceTopics = %v, want [left right]", got)
	}
	if n := len(topo.SubTopologies()); n != 1 {
		t.Errorf("%d sub-topologies, want 1: both topics feed one source", n)
	}
	left := testdriver.CreateInputTopic(d, "left", serde.String, serde.Int64)
	right := testdriver.CreateInputTopic(d, "right", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

	opsOK(t, left.PipeAt("a", 1, 1))
	opsOK(t, right.PipeAt("b", 2, 2))
	opsOK(t, left.PipeAt("c", 3, 3))
	opsWant(t, "out", opsRead(t, out), []string{"a=1@1", "b=2@2", "c=3@3"})
	if st := d.StreamTime(0); st != 3 {
		t.Errorf("stream time = %d, want 3 (the largest timestamp of both topics)", st)
	}
}

// --- Stateless operations ----------------------------------------------------

// Every stateless operation on the same input: three records, each with a
// header naming its input key. Timestamps and headers must survive.
func TestStatelessOperations(t *testing.T) {
	tests := []struct {
		name  string
		build func(s dsl.Stream[string, int64]) dsl.Stream[string, int64]
		want  []string
	}{
		{
			name:  "Filter",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] { return s.Filter(odd) },
			want:  []string{"a=1@10 src:a", "c=3@30 src:c"},
		},
		{
			name:  "FilterNot",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] { return s.FilterNot(odd) },
			want:  []string{"b=2@20 src:b"},
		},
		{
			name: "Map",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] {
				return dsl.Map(s, func(k string, v int64) (string, int64) { return strings.ToUpper(k), v * 10 })
			},
			want: []string{"A=10@10 src:a", "B=20@20 src:b", "C=30@30 src:c"},
		},
		{
			name: "MapValues",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] {
				return dsl.MapValues(s, func(v int64) int64 { return v + 100 })
			},
			want: []string{"a=101@10 src:a", "b=102@20 src:b", "c=103@30 src:c"},
		},
		{
			name: "FlatMap",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] {
				return dsl.FlatMap(s, func(k string, v int64, emit func(string, int64)) {
					if v == 2 {
						return // no output for b
					}
					emit(k+"1", v)
					emit(k+"2", -v)
				})
			},
			want: []string{"a1=1@10 src:a", "a2=-1@10 src:a", "c1=3@30 src:c", "c2=-3@30 src:c"},
		},
		{
			name: "FlatMapValues",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] {
				return dsl.FlatMapValues(s, func(v int64, emit func(int64)) {
					for i := range v {
						emit(v*10 + i)
					}
				})
			},
			want: []string{"a=10@10 src:a", "b=20@20 src:b", "b=21@20 src:b", "c=30@30 src:c", "c=31@30 src:c", "c=32@30 src:c"},
		},
		{
			name: "SelectKey",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] {
				return dsl.SelectKey(s, func(k string, v int64) string { return k + strconv.FormatInt(v, 10) })
			},
			want: []string{"a1=1@10 src:a", "b2=2@20 src:b", "c3=3@30 src:c"},
		},
		{
			name:  "Repartition",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] { return s.Repartition() },
			want:  []string{"a=1@10 src:a", "b=2@20 src:b", "c=3@30 src:c"},
		},
		{
			name: "chain",
			build: func(s dsl.Stream[string, int64]) dsl.Stream[string, int64] {
				keyed := dsl.SelectKey(s.FilterNot(odd), func(k string, _ int64) string { return "even-" + k })
				return dsl.MapValues(keyed, func(v int64) int64 { return -v }).Repartition(dsl.Named("evens"))
			},
			want: []string{"even-b=-2@20 src:b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(dsl.FromTopic(b, "in", serde.String, serde.Int64)).To("out", nil, nil)
			d, _ := opsDriver(t, b)
			in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
			for i, k := range []string{"a", "b", "c"} {
				v := int64(i + 1)
				opsOK(t, in.PipeRecord(operators.Record[string, int64]{Key: k, Value: v, Timestamp: v * 10, Headers: hdr("src", k)}))
			}
			opsWant(t, "out", opsRead(t, out), tc.want)
		})
	}
}

func odd(_ string, v int64) bool { return v%2 != 0 }

func TestPeekAndForeach(t *testing.T) {
	b := dsl.NewBuilder()
	var peeked, each []string
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	s.Peek(func(k string, v int64) { peeked = append(peeked, fmt.Sprint(k, "=", v)) }).To("out", nil, nil)
	s.Filter(odd).Foreach(func(k string, v int64) { each = append(each, fmt.Sprint(k, "=", v)) })
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

	opsOK(t, in.PipeAt("a", 1, 1))
	opsOK(t, in.PipeAt("b", 2, 2))
	opsWant(t, "peeked", peeked, []string{"a=1", "b=2"})
	opsWant(t, "passed on by Peek", opsRead(t, out), []string{"a=1@1", "b=2@2"})
	opsWant(t, "foreach", each, []string{"a=1"})
}

func TestMerge(t *testing.T) {
	b := dsl.NewBuilder()
	left := dsl.FromTopic(b, "left", serde.String, serde.Int64)
	right := dsl.MapValues(dsl.FromTopic(b, "right", serde.String, serde.Int64), func(v int64) int64 { return -v })
	left.Merge(right).To("out", nil, nil)
	d, topo := opsDriver(t, b)
	if n := len(topo.SubTopologies()); n != 1 {
		t.Errorf("%d sub-topologies, want 1: Merge joins its inputs into one", n)
	}
	l := testdriver.CreateInputTopic(d, "left", serde.String, serde.Int64)
	r := testdriver.CreateInputTopic(d, "right", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

	opsOK(t, l.PipeAt("a", 1, 1))
	opsOK(t, r.PipeAt("b", 2, 2))
	opsOK(t, l.PipeAt("c", 3, 3))
	opsOK(t, r.PipeRecord(operators.Record[string, int64]{Key: "d", Value: 4, Timestamp: 4, Headers: hdr("h", "x")}))
	opsWant(t, "out", opsRead(t, out), []string{"a=1@1", "b=-2@2", "c=3@3", "d=-4@4 h:x"})
}

// A merge of a rekeyed stream is rekeyed: grouping it repartitions.
func TestMergeOfRekeyedStreamRepartitions(t *testing.T) {
	b := dsl.NewBuilder()
	left := dsl.SelectKey(dsl.FromTopic(b, "left", serde.String, serde.Int64), func(k string, _ int64) string { return strings.ToUpper(k) })
	right := dsl.FromTopic(b, "right", serde.String, serde.Int64)
	right.Merge(left).GroupByKey().Count(dsl.Named("merged")).ToStream().To("out", nil, nil)
	d, topo := opsDriver(t, b)
	opsWant(t, "repartition topics", opsRepartitionTopics(topo), []string{"merged-repartition"})
	l := testdriver.CreateInputTopic(d, "left", serde.String, serde.Int64)
	r := testdriver.CreateInputTopic(d, "right", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	opsOK(t, l.PipeAt("a", 1, 1))
	opsOK(t, r.PipeAt("A", 1, 2))
	opsWant(t, "out", opsRead(t, out), []string{"A=1@1", "A=2@2"})
}

func TestSplit(t *testing.T) {
	large := func(_ string, v int64) bool { return v >= 1000 }
	medium := func(_ string, v int64) bool { return v >= 100 }
	tests := []struct {
		name     string
		split    func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64]
		branches []string
		want     map[string][]string // branch → records
	}{
		{
			name: "default branch",
			split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
				return s.Split(dsl.Named("size-")).Branch("large", large).Branch("medium", medium).DefaultBranch("small")
			},
			branches: []string{"size-large", "size-medium", "size-small"},
			// 5000 satisfies both large and medium: the first predicate wins.
			want: map[string][]string{
				"size-large":  {"x=5000@1"},
				"size-medium": {"y=500@2"},
				"size-small":  {"z=5@3"},
			},
		},
		{
			name: "no default branch drops the rest",
			split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
				return s.Split(dsl.Named("size-")).Branch("medium", medium).Branch("large", large).NoDefaultBranch()
			},
			branches: []string{"size-large", "size-medium"},
			// large comes second: 5000 goes to medium, large gets nothing.
			want: map[string][]string{
				"size-large":  nil,
				"size-medium": {"x=5000@1", "y=500@2"},
			},
		},
		{
			name: "unnamed branches are numbered",
			split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
				return s.Split(dsl.Named("p-")).Branch("", large).DefaultBranch("")
			},
			branches: []string{"p-0", "p-1"},
			want: map[string][]string{
				"p-1": {"x=5000@1"},
				"p-0": {"y=500@2", "z=5@3"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			branches := tc.split(dsl.FromTopic(b, "in", serde.String, serde.Int64))
			opsWant(t, "branch names", slices.Sorted(maps.Keys(branches)), tc.branches)
			for name, s := range branches {
				s.To("out-"+name, nil, nil)
			}
			d, _ := opsDriver(t, b)
			in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
			opsOK(t, in.PipeAt("x", 5000, 1))
			opsOK(t, in.PipeAt("y", 500, 2))
			opsOK(t, in.PipeAt("z", 5, 3))
			for name, want := range tc.want {
				out := testdriver.CreateOutputTopic(d, "out-"+name, serde.String, serde.Int64)
				opsWant(t, name, opsRead(t, out), want)
			}
		})
	}
}

// Repartition writes through "<application.id>-<name>-repartition" and the
// driver feeds the records back to the sub-topology that reads it: the
// processor below sees the internal topic as its record's topic.
func TestRepartitionGoesThroughInternalTopic(t *testing.T) {
	b := dsl.NewBuilder()
	rp := dsl.FromTopic(b, "in", serde.String, serde.Int64).Repartition(dsl.Named("by-user"), dsl.Partitions(4))
	dsl.Process(rp, func() operators.Processor[string, int64, string, string] {
		return &operators.ProcessorFuncs[string, int64, string, string]{
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, int64]) error {
				where := fmt.Sprintf("%d via %s/%d/%d", r.Value, ctx.Topic(), ctx.Partition(), ctx.Offset())
				return ctx.Forward(operators.Record[string, string]{Key: r.Key, Value: where, Timestamp: r.Timestamp, Headers: r.Headers})
			},
		}
	}).To("out", nil, serde.String)
	d, topo := opsDriver(t, b, testdriver.WithApplicationID("app"))

	opsWant(t, "repartition topics", opsRepartitionTopics(topo), []string{"by-user-repartition"})
	if it := topo.InternalTopics()[0]; it.Partitions != 4 || it.Config["cleanup.policy"] != "delete" {
		t.Errorf("repartition topic = %+v, want 4 partitions and cleanup.policy=delete", it)
	}
	if n := len(topo.SubTopologies()); n != 2 {
		t.Errorf("%d sub-topologies, want 2 (split at the repartition topic)", n)
	}
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	opsOK(t, in.PipeRecord(operators.Record[string, int64]{Key: "a", Value: 1, Timestamp: 10, Headers: hdr("h", "1")}))
	opsOK(t, in.PipeAt("b", 2, 5))
	opsWant(t, "out", opsRead(t, out), []string{
		"a=1 via app-by-user-repartition/0/0@10 h:1",
		"b=2 via app-by-user-repartition/0/1@5",
	})
	if st := d.StreamTime(1); st != 10 {
		t.Errorf("stream time of the sub-topology after the repartition = %d, want 10", st)
	}
}

// A Repartition after SelectKey repartitions once: the GroupByKey below it
// does not add a second repartition topic.
func TestRepartitionAfterSelectKeyAvoidsSecondRepartition(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	byValue := dsl.SelectKey(s, func(_ string, v int64) string { return "v" + strconv.FormatInt(v, 10) })
	byValue.Repartition(dsl.Named("rekeyed")).GroupByKey().Count(dsl.Named("counts")).ToStream().To("out", nil, nil)
	d, topo := opsDriver(t, b)
	opsWant(t, "repartition topics", opsRepartitionTopics(topo), []string{"rekeyed-repartition"})

	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	opsOK(t, in.PipeAt("a", 1, 1))
	opsOK(t, in.PipeAt("b", 1, 2))
	opsOK(t, in.PipeAt("c", 2, 3))
	opsWant(t, "out", opsRead(t, out), []string{"v1=1@1", "v1=2@2", "v2=1@3"})
}

func TestToAndToFunc(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	s.To("all", nil, nil)
	s.ToFunc(func(_ dsl.Maybe[string], v dsl.Maybe[int64]) string {
		if v.Or(0) < 0 {
			return "negative"
		}
		return "positive"
	}, nil, nil)
	d, topo := opsDriver(t, b)
	if n := topo.Node("KSTREAM-SINK-0000000002"); n == nil || len(n.Topics) != 0 {
		t.Errorf("ToFunc sink = %+v, want a sink with no fixed topic", n)
	}
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	opsOK(t, in.PipeRecord(operators.Record[string, int64]{Key: "a", Value: 1, Timestamp: 1, Headers: hdr("h", "a")}))
	opsOK(t, in.PipeAt("b", -2, 2))
	opsOK(t, in.PipeAt("c", 3, 3))

	read := func(topic string) []string {
		return opsRead(t, testdriver.CreateOutputTopic(d, topic, serde.String, serde.Int64))
	}
	opsWant(t, "all", read("all"), []string{"a=1@1 h:a", "b=-2@2", "c=3@3"})
	opsWant(t, "positive", read("positive"), []string{"a=1@1 h:a", "c=3@3"})
	opsWant(t, "negative", read("negative"), []string{"b=-2@2"})
}

// --- Null keys and values ----------------------------------------------------

func TestNullKeyDroppedByRepartition(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64).Repartition(dsl.Named("rp")).To("out", nil, nil)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

	opsOK(t, in.PipeValue(1))
	opsOK(t, in.PipeAt("a", 2, 2))
	opsWant(t, "out", opsRead(t, out), []string{"a=2@2"})
	if n := d.DroppedRecords("rp-repartition-filter", "null-key"); n != 1 {
		t.Errorf("null keys dropped by the repartition filter = %d, want 1", n)
	}
}

// Stream aggregations skip records with a null key or a null value and count
// them, as Kafka Streams' KStreamAggregate and KStreamReduce do.
func TestStreamAggregationsSkipNulls(t *testing.T) {
	tests := []struct {
		name string
		agg  func(g dsl.Grouped[string, int64]) dsl.Table[string, int64]
		want []string
	}{
		{"Count", func(g dsl.Grouped[string, int64]) dsl.Table[string, int64] { return g.Count(dsl.Named("agg")) },
			[]string{"a=1@3", "a=2@4"}},
		{"Reduce", func(g dsl.Grouped[string, int64]) dsl.Table[string, int64] { return g.Reduce(sum, dsl.Named("agg")) },
			[]string{"a=5@3", "a=11@4"}},
		{"Aggregate", func(g dsl.Grouped[string, int64]) dsl.Table[string, int64] {
			return dsl.Aggregate(g, func() int64 { return 100 }, func(_ string, v, agg int64) int64 { return agg + v }, serde.Int64, dsl.Named("agg"))
		}, []string{"a=105@3", "a=111@4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.agg(dsl.FromTopic(b, "in", serde.String, serde.Int64).GroupByKey()).ToStream().To("out", nil, nil)
			d, _ := opsDriver(t, b)
			in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

			opsOK(t, in.PipeValue(7))
			opsOK(t, in.PipeTombstone("a", 2))
			opsOK(t, in.PipeAt("a", 5, 3))
			opsOK(t, in.PipeAt("a", 6, 4))
			opsWant(t, "out", opsRead(t, out), tc.want)
			if n := d.DroppedRecords("agg", "null-key"); n != 1 {
				t.Errorf("null keys dropped = %d, want 1", n)
			}
			if n := d.DroppedRecords("agg", "null-value"); n != 1 {
				t.Errorf("null values dropped = %d, want 1", n)
			}
		})
	}
}

func sum(agg, v int64) int64 { return agg + v }

// GroupBy does not call its selector for a record with a null key or
// value: it drops and counts it. GroupByValue keys a null-key record from
// its value (as Kafka Streams' groupBy with a selector that ignores the
// key) and drops a tombstone, which the aggregation would drop.
func TestGroupByNulls(t *testing.T) {
	for _, byValue := range []bool{false, true} {
		b := dsl.NewBuilder()
		s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
		var g dsl.Grouped[string, int64]
		if byValue {
			g = dsl.GroupByValue(s, func(int64) string { return "all" }, serde.String, dsl.Named("sel"))
		} else {
			g = dsl.GroupBy(s, func(string, int64) string { return "all" }, serde.String, dsl.Named("sel"))
		}
		g.Count(dsl.Named("agg")).ToStream().To("out", nil, nil)
		d, _ := opsDriver(t, b)
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

		opsOK(t, in.PipeValue(1))
		opsOK(t, in.PipeTombstone("a", 2))
		opsOK(t, in.PipeAt("b", 3, 3))
		want, nullKeys := []string{"all=1@3"}, int64(1)
		if byValue {
			want, nullKeys = []string{"all=1@0", "all=2@3"}, 0
		}
		opsWant(t, fmt.Sprintf("out (GroupByValue %v)", byValue), opsRead(t, out), want)
		if n := d.DroppedRecords("sel", "null-value"); n != 1 {
			t.Errorf("GroupByValue %v: null values dropped by the selector = %d, want 1", byValue, n)
		}
		if n := d.DroppedRecords("sel", "null-key"); n != nullKeys {
			t.Errorf("GroupByValue %v: null keys dropped by the selector = %d, want %d", byValue, n, nullKeys)
		}
		if n := d.DroppedRecords("sel-repartition-filter", "null-key") + d.DroppedRecords("agg", "null-key") + d.DroppedRecords("agg", "null-value"); n != 0 {
			t.Errorf("GroupByValue %v: nulls dropped after the selector = %d, want 0", byValue, n)
		}
	}
}

// --- Grouping and stream aggregations ----------------------------------------

func TestGroupByKeyCount(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts")).ToStream().To("out", nil, nil)
	d, topo := opsDriver(t, b)

	opsWant(t, "repartition topics", opsRepartitionTopics(topo), nil)
	its := topo.InternalTopics()
	if len(its) != 1 || its[0].Name != "counts-changelog" || its[0].Kind != topology.Changelog || its[0].Config["cleanup.policy"] != "compact" {
		t.Errorf("internal topics = %+v, want only the compacted changelog counts-changelog", its)
	}

	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	opsOK(t, in.PipeAt("a", "x", 10))
	opsOK(t, in.PipeAt("a", "y", 5)) // out of order: the count keeps timestamp 10
	opsOK(t, in.PipeAt("b", "z", 7))
	opsOK(t, in.PipeAt("a", "w", 20))
	opsWant(t, "out", opsRead(t, out), []string{"a=1@10", "a=2@10", "b=1@7", "a=3@20"})

	kv, err := testdriver.KeyValueStore(d, "counts", serde.String, serde.Int64)
	opsOK(t, err)
	for k, want := range map[string]int64{"a": 3, "b": 1} {
		if v, ok, err := kv.Get(k); err != nil || !ok || v != want {
			t.Errorf("counts[%s] = %d, %v, %v; want %d", k, v, ok, err, want)
		}
	}
	opsWant(t, "store counts", opsStore(t, d, "counts", serde.String, serde.Int64), []string{"a=3@20", "b=1@7"})
}

func TestGroupByRepartitions(t *testing.T) {
	tests := []struct {
		name      string
		opts      []dsl.Option // of GroupBy
		wantTopic string
		selector  string // the key-selecting node
		filter    string // the null-key filter in front of the topic
	}{
		{"named after the store", nil, "counts-repartition", "KSTREAM-KEY-SELECT-0000000002", "counts-repartition-filter"},
		// As Kafka Streams' Grouped.as, the name also names the key-select node.
		{"named grouping", []dsl.Option{dsl.Named("by-word")}, "by-word-repartition", "by-word", "by-word-repartition-filter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			words := dsl.FlatMapValues(dsl.FromTopic(b, "lines", serde.String, serde.String), func(line string, emit func(string)) {
				for _, w := range strings.Fields(line) {
					emit(w)
				}
			})
			dsl.GroupBy(words, func(_, w string) string { return w }, serde.String, tc.opts...).
				Count(dsl.Materialized(dsl.StoreOptions{Name: "counts"})).ToStream().To("out", nil, nil)
			d, topo := opsDriver(t, b)

			its := topo.InternalTopics()
			if len(its) != 2 {
				t.Fatalf("internal topics = %+v, want a repartition topic and a changelog", its)
			}
			rp := its[0]
			if rp.Name != tc.wantTopic || rp.Kind != topology.Repartition || rp.SubTopology != 0 {
				t.Errorf("repartition topic = %+v, want %s written by sub-topology 0", rp, tc.wantTopic)
			}
			if !maps.Equal(rp.Config, topology.RepartitionTopicConfig()) || rp.Config["cleanup.policy"] != "delete" || rp.Config["retention.ms"] != "-1" {
				t.Errorf("repartition topic config = %v, want cleanup.policy=delete, retention.ms=-1, ...", rp.Config)
			}
			if its[1].Name != "counts-changelog" || its[1].SubTopology != 1 {
				t.Errorf("changelog = %+v, want counts-changelog of sub-topology 1", its[1])
			}
			for _, n := range []string{tc.selector, tc.filter} {
				if topo.Node(n) == nil {
					t.Errorf("no node %s", n)
				}
			}

			in := testdriver.CreateInputTopic(d, "lines", serde.String, serde.String)
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
			opsOK(t, in.PipeAt("l1", "to be or", 1))
			opsOK(t, in.PipeAt("l2", "not to be", 2))
			opsWant(t, "out", opsRead(t, out), []string{"to=1@1", "be=1@1", "or=1@1", "not=1@2", "to=2@2", "be=2@2"})
			opsWant(t, "store counts", opsStore(t, d, "counts", serde.String, serde.Int64),
				[]string{"be=2@2", "not=1@2", "or=1@1", "to=2@2"})
		})
	}
}

func TestGroupByKeyReduce(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64).GroupByKey().
		Reduce(sum, dsl.Named("sums")).ToStream().To("out", nil, nil)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)

	opsOK(t, in.PipeAt("a", 5, 10))
	opsOK(t, in.PipeAt("b", 1, 11))
	opsOK(t, in.PipeAt("a", -2, 3))
	opsOK(t, in.PipeAt("a", 10, 12))
	opsWant(t, "out", opsRead(t, out), []string{"a=5@10", "b=1@11", "a=3@10", "a=13@12"})
	opsWant(t, "store sums", opsStore(t, d, "sums", serde.String, serde.Int64), []string{"a=13@12", "b=1@11"})
}

type stats struct {
	Count int64  `json:"count"`
	Sum   int64  `json:"sum"`
	Seen  string `json:"seen"`
}

func TestAggregateJSON(t *testing.T) {
	b := dsl.NewBuilder()
	grouped := dsl.GroupBy(dsl.FromTopic(b, "in", serde.String, serde.Int64),
		func(k string, _ int64) string { return k[:1] }, serde.String)
	agg := dsl.Aggregate(grouped, func() stats { return stats{Seen: "|"} },
		func(k string, v int64, s stats) stats {
			return stats{Count: s.Count + 1, Sum: s.Sum + v, Seen: s.Seen + strconv.FormatInt(v, 10) + "|"}
		}, serde.JSON[stats](), dsl.Materialized(dsl.StoreOptions{Name: "stats"}))
	agg.ToStream().To("out", nil, nil)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.JSON[stats]())

	opsOK(t, in.PipeAt("a1", 1, 100))
	opsOK(t, in.PipeAt("b1", 2, 50))
	opsOK(t, in.PipeAt("a2", 3, 90))
	opsOK(t, in.PipeAt("a3", 4, 110))
	opsWant(t, "out", opsRead(t, out), []string{
		"a={1 1 |1|}@100", "b={1 2 |2|}@50", "a={2 4 |1|3|}@100", "a={3 8 |1|3|4|}@110",
	})
	opsWant(t, "store stats", opsStore(t, d, "stats", serde.String, serde.JSON[stats]()),
		[]string{"a={3 8 |1|3|4|}@110", "b={1 2 |2|}@50"})
}

// Tables (sources, filter, mapValues, groupBy and aggregations, toStream,
// tombstones) are tested as data: table_data_test.go and testdata/tables.

// --- Processor API -----------------------------------------------------------

// visits is a user processor with a store: it counts the records of each
// key and forwards a description of each record with its metadata.
type visits struct {
	store *dsl.KeyValueStoreRef[string, int64]
	ctx   operators.ProcessorContext[string, string]
	kv    *state.KV[string, int64]
}

func (p *visits) Init(ctx operators.ProcessorContext[string, string]) error {
	p.ctx = ctx
	kv, err := p.store.Open(ctx)
	p.kv = kv
	return err
}

func (p *visits) Process(r operators.Record[string, string]) error {
	n, _, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := p.kv.Put(r.Key, n); err != nil {
		return err
	}
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	desc := fmt.Sprintf("%s #%d from %s/%d/%d ts=%d headers=%v", r.Value, n, p.ctx.Topic(), p.ctx.Partition(), p.ctx.Offset(), r.Timestamp, hs)
	return p.ctx.Forward(operators.Record[string, string]{Key: r.Key, Value: desc, Timestamp: r.Timestamp + 1})
}

func (p *visits) Close() error { return nil }

func TestProcessWithStore(t *testing.T) {
	b := dsl.NewBuilder()
	store := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "visits"}, serde.String, serde.Int64)
	s := dsl.FromTopic(b, "pages", serde.String, serde.String)
	dsl.Process(s, func() operators.Processor[string, string, string, string] { return &visits{store: store} },
		dsl.ConnectStores(store), dsl.Named("count-visits")).To("out", nil, nil)
	d, topo := opsDriver(t, b)
	if n := topo.Node("count-visits"); n == nil || !slices.Equal(n.Stores, []string{"visits"}) {
		t.Errorf("node count-visits = %+v, want it connected to store visits", n)
	}
	in := testdriver.CreateInputTopic(d, "pages", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)

	opsOK(t, in.PipeRecord(operators.Record[string, string]{Key: "alice", Value: "/home", Timestamp: 10, Headers: hdr("ua", "go")}))
	opsOK(t, in.PipeAt("bob", "/cart", 20))
	opsOK(t, in.PipeAt("alice", "/cart", 30))
	opsWant(t, "out", opsRead(t, out), []string{
		"alice=/home #1 from pages/0/0 ts=10 headers=[ua=go]@11",
		"bob=/cart #1 from pages/0/1 ts=20 headers=[]@21",
		"alice=/cart #2 from pages/0/2 ts=30 headers=[]@31",
	})

	kv, err := testdriver.KeyValueStore(d, "visits", serde.String, serde.Int64)
	opsOK(t, err)
	got := []string{}
	for k, v := range kv.All() {
		got = append(got, fmt.Sprintf("%s=%d", k, v))
	}
	opsOK(t, kv.Err())
	opsWant(t, "store visits", got, []string{"alice=2", "bob=1"})
	if _, err := testdriver.TimestampedKeyValueStore(d, "visits", serde.String, serde.Int64); err == nil {
		t.Error("TimestampedKeyValueStore of a plain store succeeded")
	}
	if _, err := testdriver.KeyValueStore(d, "nope", serde.String, serde.Int64); err == nil {
		t.Error("KeyValueStore of an unknown store succeeded")
	}
}

// A processor that opens a store it is not connected to fails in Init, and
// the driver reports it, naming the node.
func TestProcessStoreNotConnected(t *testing.T) {
	b := dsl.NewBuilder()
	store := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "visits"}, serde.String, serde.Int64)
	s := dsl.FromTopic(b, "pages", serde.String, serde.String)
	dsl.Process(s, func() operators.Processor[string, string, string, string] { return &visits{store: store} },
		dsl.Named("count-visits")).To("out", nil, nil)
	topo := opsBuild(t, b)

	d, err := testdriver.New(topo)
	if err == nil {
		d.Close()
		t.Fatal("testdriver.New succeeded, want an error for the store not connected")
	}
	if !errors.Is(err, operators.ErrStoreNotDeclared) {
		t.Errorf("error %q is not ErrStoreNotDeclared", err)
	}
	var ne *operators.NodeError
	if !errors.As(err, &ne) || ne.Node != "count-visits" || ne.Task != "0_0" {
		t.Errorf("error %q: want a NodeError of node count-visits in task 0_0", err)
	}
	if !strings.Contains(err.Error(), "visits") {
		t.Errorf("error %q does not name the store", err)
	}
}

// --- Punctuation ---------------------------------------------------------------

// ticker schedules a punctuator in Init that forwards a record
// "tick=<time>" stamped with the punctuation time, and cancels it when it
// processes a record with the key "stop". Input records are not forwarded.
type ticker struct {
	typ      operators.PunctuationType
	interval time.Duration
	fired    *[]int64
	schedule operators.Cancellable
}

func (p *ticker) Init(ctx operators.ProcessorContext[string, int64]) error {
	var err error
	p.schedule, err = ctx.Schedule(p.interval, p.typ, func(ts int64) error {
		*p.fired = append(*p.fired, ts)
		return ctx.Forward(operators.Record[string, int64]{Key: "tick", Value: ts, Timestamp: ts})
	})
	return err
}

func (p *ticker) Process(r operators.Record[string, int64]) error {
	if r.Key == "stop" {
		p.schedule.Cancel()
	}
	return nil
}

func (p *ticker) Close() error { return nil }

// tickerDriver runs "in" → ticker → "ticks" and returns the input, the
// output and the punctuation times.
func tickerDriver(t *testing.T, typ operators.PunctuationType, interval time.Duration, opts ...testdriver.Option) (
	*testdriver.Driver, *testdriver.InputTopic[string, int64], *testdriver.OutputTopic[string, int64], *[]int64) {
	t.Helper()
	fired := &[]int64{}
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	dsl.Process(s, func() operators.Processor[string, int64, string, int64] {
		return &ticker{typ: typ, interval: interval, fired: fired}
	}).To("ticks", nil, nil)
	d, _ := opsDriver(t, b, opts...)
	return d, testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64),
		testdriver.CreateOutputTopic(d, "ticks", serde.String, serde.Int64), fired
}

func int64s(xs ...int64) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, strconv.FormatInt(x, 10))
	}
	return out
}

// The Kafka Streams vector (TopologyTestDriver, 10 ms stream-time
// schedule): punctuations at 3, 25, 30 and 61. The schedule is aligned to 0,
// fires with the current stream time, skips missed intervals, and an
// out-of-order record does not move stream time back.
func TestStreamTimePunctuation(t *testing.T) {
	d, in, out, fired := tickerDriver(t, operators.StreamTime, 10*time.Millisecond)
	for _, ts := range []int64{3, 5, 25, 26, 29, 30, 12, 61} {
		opsOK(t, in.PipeAt("k", ts, ts))
	}
	opsWant(t, "punctuations", int64s(*fired...), int64s(3, 25, 30, 61))
	opsWant(t, "ticks", opsRead(t, out), []string{"tick=3@3", "tick=25@25", "tick=30@30", "tick=61@61"})
	if st := d.StreamTime(0); st != 61 {
		t.Errorf("stream time = %d, want 61", st)
	}
	// Wall-clock time does not drive stream-time punctuation.
	opsOK(t, d.AdvanceWallClockTime(time.Hour))
	opsWant(t, "punctuations after moving the wall clock", int64s(*fired...), int64s(3, 25, 30, 61))
}

// The Kafka Streams vector for a 100 ms wall-clock schedule with the clock
// starting at 1000: nothing at 1050, a punctuation at 1110, and one (not
// two) at 1360.
func TestWallClockPunctuation(t *testing.T) {
	d, in, out, fired := tickerDriver(t, operators.WallClockTime, 100*time.Millisecond,
		testdriver.WithWallClock(time.UnixMilli(1000)))

	opsOK(t, in.PipeAt("k", 1, 5000)) // records do not drive wall-clock punctuation
	opsWant(t, "after a record", int64s(*fired...), nil)
	for _, step := range []struct {
		advance time.Duration
		want    []int64
	}{
		{50 * time.Millisecond, nil},
		{60 * time.Millisecond, []int64{1110}},
		{250 * time.Millisecond, []int64{1110, 1360}},
		{30 * time.Millisecond, []int64{1110, 1360}},       // 1390 < next 1400
		{10 * time.Millisecond, []int64{1110, 1360, 1400}}, // on the aligned grid
	} {
		opsOK(t, d.AdvanceWallClockTime(step.advance))
		opsWant(t, fmt.Sprintf("punctuations at %d", d.WallClockTime().UnixMilli()), int64s(*fired...), int64s(step.want...))
	}
	opsWant(t, "ticks", opsRead(t, out), []string{"tick=1110@1110", "tick=1360@1360", "tick=1400@1400"})
	if err := d.AdvanceWallClockTime(-time.Millisecond); err == nil {
		t.Error("moving the wall clock back succeeded")
	}
}

func TestPunctuationCancel(t *testing.T) {
	t.Run("stream time", func(t *testing.T) {
		_, in, out, fired := tickerDriver(t, operators.StreamTime, 10*time.Millisecond)
		opsOK(t, in.PipeAt("k", 0, 5))
		opsOK(t, in.PipeAt("stop", 0, 15)) // cancelled while processing, before the check at 15
		opsOK(t, in.PipeAt("k", 0, 40))
		opsWant(t, "punctuations", int64s(*fired...), int64s(5))
		opsWant(t, "ticks", opsRead(t, out), []string{"tick=5@5"})
	})
	t.Run("wall clock", func(t *testing.T) {
		d, in, out, fired := tickerDriver(t, operators.WallClockTime, 100*time.Millisecond)
		opsOK(t, d.AdvanceWallClockTime(100*time.Millisecond))
		opsOK(t, in.PipeAt("stop", 0, 1))
		opsOK(t, d.AdvanceWallClockTime(time.Second))
		opsWant(t, "punctuations", int64s(*fired...), int64s(100))
		opsWant(t, "ticks", opsRead(t, out), []string{"tick=100@100"})
	})
}

// What a punctuator forwards flows on through the topology: here through a
// repartition and an aggregation into an output topic.
func TestPunctuatorOutputFlowsDownstream(t *testing.T) {
	fired := &[]int64{}
	b := dsl.NewBuilder()
	ticks := dsl.Process(dsl.FromTopic(b, "in", serde.String, serde.Int64), func() operators.Processor[string, int64, string, int64] {
		return &ticker{typ: operators.WallClockTime, interval: time.Second, fired: fired}
	})
	ticks.GroupByKey().Count(dsl.Named("tick-count")).ToStream().To("out", nil, nil)
	d, topo := opsDriver(t, b)
	opsWant(t, "repartition topics", opsRepartitionTopics(topo), []string{"tick-count-repartition"})
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	opsOK(t, d.AdvanceWallClockTime(time.Second))
	opsOK(t, d.AdvanceWallClockTime(time.Second))
	opsWant(t, "out", opsRead(t, out), []string{"tick=1@1000", "tick=2@2000"})
}

// --- Build errors ---------------------------------------------------------------

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *dsl.Builder) error
		want  []string // substrings of the error
		is    error
		node  string // the node a *topology.BuildError names, if any
	}{
		{
			name: "missing serde names the sink",
			build: func(b *dsl.Builder) error {
				s := dsl.FromTopic(b, "in", serde.String, serde.String)
				dsl.Map(s, func(k, v string) (int64, int64) { return int64(len(k)), int64(len(v)) }).To("out", nil, nil)
				_, err := b.Build()
				return err
			},
			want: []string{"KSTREAM-SINK-0000000002", "missing key serde", "missing value serde"},
			node: "KSTREAM-SINK-0000000002",
		},
		{
			name: "missing serde of a named sink",
			build: func(b *dsl.Builder) error {
				s := dsl.FromTopic(b, "in", serde.String, serde.String)
				dsl.MapValues(s, func(v string) int { return len(v) }).To("out", nil, nil, dsl.Named("lengths-out"))
				_, err := b.Build()
				return err
			},
			want: []string{"lengths-out", "serde"},
			node: "lengths-out",
		},
		{
			name: "missing key serde for an aggregation",
			build: func(b *dsl.Builder) error {
				s := dsl.FromTopic(b, "in", serde.String, serde.String)
				dsl.Map(s, func(k, v string) (int, string) { return len(k), v }).GroupByKey().Count(dsl.Named("by-len"))
				_, err := b.Build()
				return err
			},
			want: []string{"by-len", "serde"},
		},
		{
			name: "duplicate Named",
			build: func(b *dsl.Builder) error {
				s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
				s.Filter(odd, dsl.Named("f")).Filter(odd, dsl.Named("f")).To("out", nil, nil)
				_, err := b.Build()
				return err
			},
			want: []string{"node f:", "duplicate"},
			node: "f",
		},
		{
			name: "empty topology",
			build: func(b *dsl.Builder) error {
				_, err := b.Build()
				return err
			},
			is: topology.ErrEmptyTopology,
		},
		{
			name: "RequireNamedStores refuses a generated store name",
			build: func(b *dsl.Builder) error {
				dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count().ToStream().To("out", nil, nil)
				_, err := b.Build(dsl.RequireNamedStores())
				return err
			},
			want: []string{"KSTREAM-AGGREGATE-STATE-STORE-0000000001", "generated", "KSTREAM-AGGREGATE-0000000002"},
			node: "KSTREAM-AGGREGATE-0000000002",
		},
		{
			name: "topic read by two sources",
			build: func(b *dsl.Builder) error {
				dsl.FromTopic(b, "in", serde.String, serde.String).To("out1", nil, nil)
				dsl.FromTopic(b, "in", serde.String, serde.String, dsl.Named("second")).To("out2", nil, nil)
				_, err := b.Build()
				return err
			},
			want: []string{"second", `"in"`, "already read", "KSTREAM-SOURCE-0000000000"},
			node: "second",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.build(dsl.NewBuilder())
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if tc.node != "" {
				var be *topology.BuildError
				if !errors.As(err, &be) || be.Node != tc.node {
					t.Errorf("error %q: want a BuildError naming node %s", err, tc.node)
				}
			}
		})
	}
}

// The positive control of RequireNamedStores: with every store named, the
// same topology builds.
func TestRequireNamedStoresAcceptsNamedStores(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.String)
	s.GroupByKey().Count(dsl.Named("counts")).ToStream().To("out", nil, nil)
	dsl.TableFromTopic(b, "users", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "users"}))
	if _, err := b.Build(dsl.RequireNamedStores()); err != nil {
		t.Fatalf("Build(RequireNamedStores) = %v, want success with named stores", err)
	}
}

// --- Deserialization errors ------------------------------------------------------

func TestDeserializationError(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src")).To("out", nil, nil)

	t.Run("fails by default", func(t *testing.T) {
		d, _ := opsDriver(t, b)
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		opsOK(t, in.PipeAt("a", 1, 1))
		err := in.PipeRaw([]byte("b"), []byte{1, 2, 3}, 2)
		if err == nil {
			t.Fatal("piping an undecodable value succeeded")
		}
		var de *operators.DeserializationError
		if !errors.As(err, &de) {
			t.Fatalf("error %q is not a DeserializationError", err)
		}
		if de.Node != "src" || de.Topic != "in" || de.Partition != 0 || de.Offset != 1 || de.Part != "value" {
			t.Errorf("DeserializationError = %+v, want source src, topic in, partition 0, offset 1, value", de)
		}
		var se *serde.DecodeError
		if !errors.As(err, &se) || se.Len != 3 {
			t.Errorf("error %q: want the serde's DecodeError of 3 bytes", err)
		}
		for _, w := range []string{"topic in", "partition 0", "offset 1"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	})

	t.Run("skipped with SkipUndecodableRecords", func(t *testing.T) {
		d, _ := opsDriver(t, b, testdriver.SkipUndecodableRecords())
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
		out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
		opsOK(t, in.PipeAt("a", 1, 10))
		opsOK(t, in.PipeRaw([]byte("b"), []byte{1, 2, 3}, 1000))
		opsOK(t, in.PipeAt("c", 3, 20))
		opsWant(t, "out", opsRead(t, out), []string{"a=1@10", "c=3@20"})
		if n := d.DroppedRecords("src", "deserialization-error"); n != 1 {
			t.Errorf("dropped for deserialization errors = %d, want 1", n)
		}
		// As in Kafka Streams, a skipped record does not advance stream time.
		if st := d.StreamTime(0); st != 20 {
			t.Errorf("stream time = %d, want 20", st)
		}
	})

	t.Run("undecodable key", func(t *testing.T) {
		kb := dsl.NewBuilder()
		dsl.FromTopic(kb, "in", serde.Int64, serde.String, dsl.Named("src")).To("out", nil, nil)
		d, _ := opsDriver(t, kb)
		in := testdriver.CreateInputTopic(d, "in", serde.Int64, serde.String)
		var de *operators.DeserializationError
		if err := in.PipeRaw([]byte{1}, []byte("v"), 1); !errors.As(err, &de) || de.Part != "key" || de.Offset != 0 {
			t.Errorf("error %v: want a DeserializationError of the key at offset 0", err)
		}
	})
}
