package dsl_test

// Stream-stream joins: topology shape and names of rekeyed inputs (Kafka
// Streams' KStreamKStreamJoinTest.shouldReuseRepartitionTopicWith-
// GeneratedName and shouldCreateRepartitionTopicsWithUserProvidedName),
// build errors, store specs, and the changelogs.

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

// rekeyedJoins builds the topology of the two Java tests: a mapped stream
// joined with two others, named (first-join, second-join) or not.
func rekeyedJoins(t *testing.T, named bool) string {
	t.Helper()
	b := dsl.NewBuilder()
	s1 := dsl.FromTopic(b, "topic", serde.String, serde.String)
	s2 := dsl.FromTopic(b, "topic2", serde.String, serde.String)
	s3 := dsl.FromTopic(b, "topic3", serde.String, serde.String)
	mapped := dsl.Map(s1, func(k, v string) (string, string) { return v, k }).WithKeySerde(serde.String).WithValueSerde(serde.String)
	w := window.JoinTimeDifference(100 * time.Millisecond)
	concat := func(_ string, a, b string) string { return a + b }
	var o1, o2 []dsl.JoinOption
	if named {
		o1, o2 = []dsl.JoinOption{dsl.Named("first-join")}, []dsl.JoinOption{dsl.Named("second-join")}
	}
	dsl.Join(mapped, s2, concat, w, o1...).To("out-one", serde.String, serde.String)
	dsl.Join(mapped, s3, concat, w, o2...).To("out-two", serde.String, serde.String)
	topo, err := b.Build()
	opsOK(t, err)
	var lines []string
	for _, st := range topo.SubTopologies() {
		lines = append(lines, "sub-topology")
		for _, n := range st.Nodes {
			var parents []string
			for _, p := range n.Parents {
				parents = append(parents, p.Name)
			}
			line := n.Name + " [" + strings.Join(n.Stores, ", ") + "] <- " + strings.Join(parents, ", ")
			if len(n.Topics) > 0 {
				line += " topics " + strings.Join(n.Topics, ",")
			}
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

func TestStreamJoinReusesRepartitionTopicWithGeneratedName(t *testing.T) {
	// The second join reads the first one's repartition topic again, in
	// one sub-topology with both joins; its own repartition names still
	// use up indices 13 to 15.
	want := `sub-topology
KSTREAM-SOURCE-0000000000 [] <-  topics topic
KSTREAM-MAP-0000000003 [] <- KSTREAM-SOURCE-0000000000
KSTREAM-FILTER-0000000005 [] <- KSTREAM-MAP-0000000003
KSTREAM-SINK-0000000004 [] <- KSTREAM-FILTER-0000000005 topics KSTREAM-MAP-0000000003-repartition
sub-topology
KSTREAM-SOURCE-0000000001 [] <-  topics topic2
KSTREAM-SOURCE-0000000002 [] <-  topics topic3
KSTREAM-SOURCE-0000000006 [] <-  topics KSTREAM-MAP-0000000003-repartition
KSTREAM-WINDOWED-0000000007 [KSTREAM-JOINTHIS-0000000009-store] <- KSTREAM-SOURCE-0000000006
KSTREAM-WINDOWED-0000000008 [KSTREAM-JOINOTHER-0000000010-store] <- KSTREAM-SOURCE-0000000001
KSTREAM-JOINTHIS-0000000009 [KSTREAM-JOINOTHER-0000000010-store] <- KSTREAM-WINDOWED-0000000007
KSTREAM-JOINOTHER-0000000010 [KSTREAM-JOINTHIS-0000000009-store] <- KSTREAM-WINDOWED-0000000008
KSTREAM-MERGE-0000000011 [] <- KSTREAM-JOINTHIS-0000000009, KSTREAM-JOINOTHER-0000000010
KSTREAM-SINK-0000000012 [] <- KSTREAM-MERGE-0000000011 topics out-one
KSTREAM-WINDOWED-0000000016 [KSTREAM-JOINTHIS-0000000018-store] <- KSTREAM-SOURCE-0000000006
KSTREAM-WINDOWED-0000000017 [KSTREAM-JOINOTHER-0000000019-store] <- KSTREAM-SOURCE-0000000002
KSTREAM-JOINTHIS-0000000018 [KSTREAM-JOINOTHER-0000000019-store] <- KSTREAM-WINDOWED-0000000016
KSTREAM-JOINOTHER-0000000019 [KSTREAM-JOINTHIS-0000000018-store] <- KSTREAM-WINDOWED-0000000017
KSTREAM-MERGE-0000000020 [] <- KSTREAM-JOINTHIS-0000000018, KSTREAM-JOINOTHER-0000000019
KSTREAM-SINK-0000000021 [] <- KSTREAM-MERGE-0000000020 topics out-two`
	if got := rekeyedJoins(t, false); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestStreamJoinRepartitionTopicsWithUserProvidedName(t *testing.T) {
	// Named joins repartition through "<name>-left-repartition"; the
	// generated names of the nodes they name still use up indices, and the
	// stores keep generated names.
	want := `sub-topology
KSTREAM-SOURCE-0000000000 [] <-  topics topic
KSTREAM-MAP-0000000003 [] <- KSTREAM-SOURCE-0000000000
first-join-left-repartition-filter [] <- KSTREAM-MAP-0000000003
first-join-left-repartition-sink [] <- first-join-left-repartition-filter topics first-join-left-repartition
second-join-left-repartition-filter [] <- KSTREAM-MAP-0000000003
second-join-left-repartition-sink [] <- second-join-left-repartition-filter topics second-join-left-repartition
sub-topology
KSTREAM-SOURCE-0000000001 [] <-  topics topic2
first-join-left-repartition-source [] <-  topics first-join-left-repartition
first-join-this-windowed [KSTREAM-JOINTHIS-0000000009-store] <- first-join-left-repartition-source
first-join-other-windowed [KSTREAM-JOINOTHER-0000000010-store] <- KSTREAM-SOURCE-0000000001
first-join-this-join [KSTREAM-JOINOTHER-0000000010-store] <- first-join-this-windowed
first-join-other-join [KSTREAM-JOINTHIS-0000000009-store] <- first-join-other-windowed
first-join-merge [] <- first-join-this-join, first-join-other-join
KSTREAM-SINK-0000000012 [] <- first-join-merge topics out-one
sub-topology
KSTREAM-SOURCE-0000000002 [] <-  topics topic3
second-join-left-repartition-source [] <-  topics second-join-left-repartition
second-join-this-windowed [KSTREAM-JOINTHIS-0000000018-store] <- second-join-left-repartition-source
second-join-other-windowed [KSTREAM-JOINOTHER-0000000019-store] <- KSTREAM-SOURCE-0000000002
second-join-this-join [KSTREAM-JOINOTHER-0000000019-store] <- second-join-this-windowed
second-join-other-join [KSTREAM-JOINTHIS-0000000018-store] <- second-join-other-windowed
second-join-merge [] <- second-join-this-join, second-join-other-join
KSTREAM-SINK-0000000021 [] <- second-join-merge topics out-two`
	if got := rekeyedJoins(t, true); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Build errors name the join (its merge node): a missing serde of the
// stores, invalid windows, two window stores of one name.
func TestStreamJoinBuildErrors(t *testing.T) {
	w := window.JoinTimeDifference(time.Second)
	concat := func(_ string, a, b string) string { return a + b }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  []string
	}{
		{"missing value serde", func(b *dsl.Builder) {
			l := dsl.MapValues(dsl.FromTopic(b, "l", serde.String, serde.String), func(v string) int { return len(v) })
			r := dsl.FromTopic(b, "r", serde.String, serde.String)
			dsl.Join(l, r, func(_ string, n int, b string) string { return b }, w)
		}, []string{"KSTREAM-MERGE-0000000007", "value serde of the left input"}},
		{"missing key serde", func(b *dsl.Builder) {
			l := dsl.SelectKey(dsl.FromTopic(b, "l", serde.String, serde.String), func(k, _ string) int32 { return 1 })
			r := dsl.SelectKey(dsl.FromTopic(b, "r", serde.String, serde.String), func(k, _ string) int32 { return 1 })
			dsl.Join(l, r, func(_ int32, a, b string) string { return a + b }, w, dsl.Named("j"))
		}, []string{"j-merge", "missing key serde"}},
		{"negative interval", func(b *dsl.Builder) {
			l := dsl.FromTopic(b, "l", serde.String, serde.String)
			r := dsl.FromTopic(b, "r", serde.String, serde.String)
			dsl.LeftJoin(l, r, func(_ string, a string, b dsl.Maybe[string]) string { return a }, window.Join{Before: -2 * time.Second, After: time.Second}, dsl.Named("j"))
		}, []string{"j-merge", "Before+After"}},
		{"negative grace", func(b *dsl.Builder) {
			l := dsl.FromTopic(b, "l", serde.String, serde.String)
			r := dsl.FromTopic(b, "r", serde.String, serde.String)
			dsl.Join(l, r, concat, window.Join{Grace: -time.Second}, dsl.Named("j"))
		}, []string{"j-merge", "grace"}},
		{"one store name twice", func(b *dsl.Builder) {
			l := dsl.FromTopic(b, "l", serde.String, serde.String)
			r := dsl.FromTopic(b, "r", serde.String, serde.String)
			dsl.Join(l, r, concat, w, dsl.StreamJoined(dsl.StreamJoinOptions{ThisStoreName: "s", OtherStoreName: "s"}))
		}, []string{"KSTREAM-MERGE-0000000006", "both window stores are named s"}},
		{"windows that keep nothing", func(b *dsl.Builder) {
			l := dsl.FromTopic(b, "l", serde.String, serde.String)
			r := dsl.FromTopic(b, "r", serde.String, serde.String)
			dsl.Join(l, r, concat, window.JoinTimeDifference(0), dsl.Named("j"))
		}, []string{"j-merge", "Before + After + Grace is 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The stores of a join: window stores keeping duplicates for before +
// after + grace, never cached, logged with cleanup.policy=delete; the
// shared store a key-value store, never cached, logged compacted.
// StreamJoined turns logging off, puts the stores in memory, or adds
// changelog configs (Kafka Streams' KStreamKStreamJoinTest.shouldDisable-
// LoggingOnStreamJoined and shouldEnableLoggingWithCustomConfigOnStreamJoined).
func TestStreamJoinStores(t *testing.T) {
	build := func(o dsl.StreamJoinOptions) map[string]*topology.StoreSpec {
		b := dsl.NewBuilder()
		l := dsl.FromTopic(b, "l", serde.String, serde.String)
		r := dsl.FromTopic(b, "r", serde.String, serde.String)
		w := window.JoinTimeDifferenceAndGrace(100*time.Millisecond, 50*time.Millisecond).WithBefore(30 * time.Millisecond)
		dsl.OuterJoin(l, r, func(_ string, a, b dsl.Maybe[string]) string { return a.Or("") + b.Or("") }, w, dsl.StreamJoined(o)).
			To("out", serde.String, serde.String)
		topo := opsBuild(t, b)
		specs := map[string]*topology.StoreSpec{}
		for _, s := range topo.Stores() {
			specs[s.Name] = s
		}
		return specs
	}
	specs := build(dsl.StreamJoinOptions{StoreName: "store"})
	for _, name := range []string{"store-outer-this-join-store", "store-outer-other-join-store"} {
		s := specs[name]
		if s == nil {
			t.Fatalf("no store %s in %v", name, specs)
		}
		if s.Kind != topology.Window || !s.RetainDuplicates || !s.DisableCaching || s.DisableLogging || s.InMemory || s.Timestamped {
			t.Errorf("store %s: %+v", name, s)
		}
		if s.Retention != 180*time.Millisecond {
			t.Errorf("store %s: retention %v, want 30ms + 100ms + 50ms", name, s.Retention)
		}
		cfg := s.ChangelogTopicConfig()
		if cfg["cleanup.policy"] != "delete" || cfg["retention.ms"] != "86400180" {
			t.Errorf("store %s: changelog config %v", name, cfg)
		}
	}
	shared := specs["store-outer-shared-join-store"]
	if shared == nil || shared.Kind != topology.KeyValue || !shared.DisableCaching || shared.Timestamped || shared.ChangelogTopicConfig()["cleanup.policy"] != "compact" {
		t.Errorf("shared store: %+v", shared)
	}

	specs = build(dsl.StreamJoinOptions{StoreName: "store", DisableLogging: true, InMemory: true})
	if len(specs) != 3 {
		t.Fatalf("stores %v, want 3", specs)
	}
	for name, s := range specs {
		if !s.DisableLogging || !s.InMemory {
			t.Errorf("store %s: logging %v, in memory %v; want no logging, in memory", name, !s.DisableLogging, s.InMemory)
		}
	}

	specs = build(dsl.StreamJoinOptions{StoreName: "store", ChangelogConfig: map[string]string{"test": "property", "cleanup.policy": "compact"}})
	for name, s := range specs {
		cfg := s.ChangelogTopicConfig()
		if cfg["test"] != "property" {
			t.Errorf("store %s: changelog config %v lacks test=property", name, cfg)
		}
		if want := map[bool]string{true: "delete", false: "compact"}[s.Kind == topology.Window]; cfg["cleanup.policy"] != want {
			t.Errorf("store %s: cleanup.policy %s, want %s", name, cfg["cleanup.policy"], want)
		}
	}

	// Exact store names: the shared store is named after this side's.
	specs = build(dsl.StreamJoinOptions{ThisStoreName: "mine", OtherStoreName: "theirs"})
	for _, name := range []string{"mine", "theirs", "mine-outer-shared-join-store"} {
		if specs[name] == nil || specs[name].Generated {
			t.Errorf("store %s: %+v", name, specs[name])
		}
	}
}

// The changelogs of the stores, as Kafka Streams writes them: window
// stores key ‖ int64 ts ‖ int32 seq (the seq counting the duplicates) →
// the value; the shared store int64 ts ‖ side ‖ key → a ListSerde list of
// side ‖ value entries, rewritten whole on each change and deleted by a
// tombstone when its records match or expire.
func TestStreamJoinChangelogs(t *testing.T) {
	b := dsl.NewBuilder()
	l := dsl.FromTopic(b, "l", serde.String, serde.String)
	r := dsl.FromTopic(b, "r", serde.String, serde.String)
	dsl.LeftJoin(l, r, func(_ string, a string, b dsl.Maybe[string]) string { return a + "+" + b.Or("null") },
		window.JoinTimeDifference(100*time.Millisecond), dsl.StreamJoined(dsl.StreamJoinOptions{StoreName: "s"})).
		To("out", serde.String, serde.String)
	d, _ := opsDriver(t, b, testdriver.WithChangelogs())
	lin := testdriver.CreateInputTopic(d, "l", serde.String, serde.String)
	rin := testdriver.CreateInputTopic(d, "r", serde.String, serde.String)
	opsOK(t, lin.PipeAt("k", "A", 10))
	opsOK(t, lin.PipeAt("k", "A", 10))
	opsOK(t, rin.PipeAt("k", "a", 20))
	opsOK(t, lin.PipeAt("x", "X", 30))
	opsOK(t, rin.PipeAt("y", "Y", 200)) // closes X's window: X+null
	read := func(store string) []string {
		out := testdriver.CreateOutputTopic(d, d.ChangelogTopic(store), serde.Bytes, serde.Bytes)
		rs, err := out.ReadRecords()
		opsOK(t, err)
		var got []string
		for _, r := range rs {
			v := "<null>"
			if !r.Tombstone {
				v = fmt.Sprintf("%x", r.Value)
			}
			got = append(got, fmt.Sprintf("%x=%s@%d", r.Key, v, r.Timestamp))
		}
		return got
	}
	// "k" ‖ ts 10 ‖ seq 1, then seq 2; "x" ‖ 30 ‖ 3.
	opsWant(t, "left window store changelog", read("s-this-join-store"), []string{
		"6b000000000000000a00000001=41@10",
		"6b000000000000000a00000002=41@10",
		"78000000000000001e00000003=58@30",
	})
	opsWant(t, "right window store changelog", read("s-outer-other-join-store"), []string{
		"6b000000000000001400000001=61@20",
		"7900000000000000c800000002=59@200",
	})
	// ts 10 ‖ left ‖ "k" → [1 "A"], then [1 "A", 1 "A"]; deleted by the
	// match at 20; ts 30 ‖ left ‖ "x" → [1 "X"], deleted when it expires at
	// 200 (logged with the timestamp of the record that expired it).
	opsWant(t, "shared store changelog", read("s-left-shared-join-store"), []string{
		"000000000000000a016b=0100000001000000020141@10",
		"000000000000000a016b=0100000002000000020141000000020141@10",
		"000000000000000a016b=<null>@20",
		"000000000000001e0178=0100000001000000020158@30",
		"000000000000001e0178=<null>@200",
	})
}

// A left or outer join takes null-key records even behind a repartition
// topic: the filter in front of the topic passes them when such a join is
// downstream, and drops them otherwise (Kafka Streams'
// RelaxedNullKeyRequirementJoinTest: testRelaxedLeftStreamStreamJoin,
// testRelaxedOuterStreamStreamJoin, testRelaxedLeftStreamTableJoin with a
// table read from its topic, testRelaxedLeftStreamGlobalTableJoin,
// testDropNullKeyRecordsForRepartitionNodesWithNoRelaxedJoinDownstream).
func TestStreamJoinRelaxedNullKeys(t *testing.T) {
	w := window.JoinTimeDifferenceAndGrace(60*time.Second, 10*time.Second)
	str := func(m dsl.Maybe[string]) string { return m.Or("null") }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder, l, r dsl.Stream[string, string])
		pipe  func(l, r *testdriver.InputTopic[string, string]) error
		want  []string
	}{
		{"left stream-stream", func(b *dsl.Builder, l, r dsl.Stream[string, string]) {
			dsl.LeftJoin(l, r, func(_ string, v string, o dsl.Maybe[string]) string { return v + "|" + str(o) }, w).To("out", nil, serde.String)
		}, func(l, _ *testdriver.InputTopic[string, string]) error {
			return l.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "leftValue", Timestamp: 1})
		}, []string{"<null>=leftValue|null@1"}},
		{"outer stream-stream", func(b *dsl.Builder, l, r dsl.Stream[string, string]) {
			dsl.OuterJoin(l, r, func(_ string, v, o dsl.Maybe[string]) string { return str(v) + "|" + str(o) }, w).To("out", nil, serde.String)
		}, func(l, r *testdriver.InputTopic[string, string]) error {
			if err := r.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "rightValue", Timestamp: 1}); err != nil {
				return err
			}
			return l.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "leftValue", Timestamp: 0})
		}, []string{"<null>=null|rightValue@1", "<null>=leftValue|null@0"}},
		{"left stream-table", func(b *dsl.Builder, l, _ dsl.Stream[string, string]) {
			tb := dsl.TableFromTopic(b, "table", serde.String, serde.String, dsl.Named("tbl"))
			dsl.LeftJoinTable(l, tb, func(_ dsl.Maybe[string], v string, o dsl.Maybe[string]) string { return v + "|" + str(o) }).To("out", nil, serde.String)
		}, func(l, _ *testdriver.InputTopic[string, string]) error {
			return l.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "leftValue", Timestamp: 1})
		}, []string{"<null>=leftValue|null@1"}},
		{"left stream-global", func(b *dsl.Builder, l, _ dsl.Stream[string, string]) {
			g := dsl.GlobalTableFromTopic(b, "global", serde.String, serde.String)
			dsl.LeftJoinGlobal(l, g, func(dsl.Maybe[string], string) dsl.Maybe[string] { return dsl.None[string]() },
				func(_ dsl.Maybe[string], v string, o dsl.Maybe[string]) string { return v + "|" + str(o) }).To("out", nil, serde.String)
		}, func(l, _ *testdriver.InputTopic[string, string]) error {
			return l.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "leftValue", Timestamp: 1})
		}, []string{"<null>=leftValue|null@1"}},
		{"no relaxed join downstream", func(b *dsl.Builder, l, _ dsl.Stream[string, string]) {
			l.Repartition().To("out", nil, nil)
		}, func(l, _ *testdriver.InputTopic[string, string]) error {
			return l.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "leftValue", Timestamp: 1})
		}, nil},
		{"inner stream-stream", func(b *dsl.Builder, l, r dsl.Stream[string, string]) {
			dsl.Join(l, r, func(_ string, v, o string) string { return v + "|" + o }, w).To("out", nil, serde.String)
		}, func(l, _ *testdriver.InputTopic[string, string]) error {
			return l.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "leftValue", Timestamp: 1})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			l := dsl.FromTopic(b, "left", serde.String, serde.String).Repartition()
			r := dsl.FromTopic(b, "right", serde.String, serde.String).Repartition()
			tc.build(b, l, r)
			d, _ := opsDriver(t, b)
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
			opsOK(t, tc.pipe(testdriver.CreateInputTopic(d, "left", serde.String, serde.String), testdriver.CreateInputTopic(d, "right", serde.String, serde.String)))
			opsWant(t, "out", opsRead(t, out), tc.want)
		})
	}
}

// A rekeyed stream joined, unnamed, with a table and with a stream reads
// one repartition topic, as Kafka Streams' KStreamImpl.repartitionForJoin
// reuses the repartition node of the stream's previous join.
func TestStreamJoinAndTableJoinShareRepartitionTopic(t *testing.T) {
	for _, tableFirst := range []bool{true, false} {
		b := dsl.NewBuilder()
		s := dsl.SelectKey(dsl.FromTopic(b, "s", serde.String, serde.String), func(_, v string) string { return v }).WithKeySerde(serde.String)
		o := dsl.FromTopic(b, "o", serde.String, serde.String)
		tb := dsl.TableFromTopic(b, "t", serde.String, serde.String, dsl.Named("tbl"))
		tableJoin := func() {
			dsl.JoinTable(s, tb, func(_, v, tv string) string { return v + tv }).To("out1", nil, serde.String)
		}
		streamJoin := func() {
			dsl.Join(s, o, func(_, v, ov string) string { return v + ov }, window.JoinTimeDifference(time.Second)).To("out2", nil, serde.String)
		}
		if tableFirst {
			tableJoin()
			streamJoin()
		} else {
			streamJoin()
			tableJoin()
		}
		topo := opsBuild(t, b)
		if got := opsRepartitionTopics(topo); len(got) != 1 || got[0] != "KSTREAM-KEY-SELECT-0000000001-repartition" {
			t.Errorf("table join first %v: repartition topics %v, want [KSTREAM-KEY-SELECT-0000000001-repartition]", tableFirst, got)
		}
	}
}
