package dsl_test

// Kafka nulls (a null key, a tombstone's null value) through every DSL
// operation, run by the test driver: what each operation does with them is
// its documented rule, and none of them hands a null to user code as a zero
// value.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// nullInputs are piped into "in" by every stream case, in order.
var nullInputs = []operators.Record[string, string]{
	{NullKey: true, Value: "v1", Timestamp: 1},
	{Key: "k2", Tombstone: true, Timestamp: 2},
	{NullKey: true, Tombstone: true, Timestamp: 3},
	{Key: "k4", Value: "v4", Timestamp: 4},
}

// nullFormat prints a record as key=value@ts with <null> for Kafka nulls.
func nullFormat[K, V any](r operators.Record[K, V]) string {
	k, v := "<null>", "<null>"
	if !r.NullKey {
		k = fmt.Sprint(r.Key)
	}
	if !r.Tombstone {
		v = fmt.Sprint(r.Value)
	}
	return fmt.Sprintf("%s=%s@%d", k, v, r.Timestamp)
}

// prefix puts p in front of each value.
func prefix(s dsl.Stream[string, string], p string) dsl.Stream[string, string] {
	return dsl.MapValues(s, func(v string) string { return p + v })
}

// calls records what user functions were called with.
type calls []string

func (c *calls) add(format string, args ...any) { *c = append(*c, fmt.Sprintf(format, args...)) }

func TestNullsThroughStreamOperations(t *testing.T) {
	type drop struct {
		node, reason string
		n            int64
	}
	tests := []struct {
		name string
		// build reads s (topic "in") and writes string keys and values to
		// "out"; it records the calls of its functions in c.
		build func(b *dsl.Builder, s dsl.Stream[string, string], c *calls)
		out   []string
		calls []string
		drops []drop
	}{
		{
			name: "Filter passes nulls without calling pred",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.Filter(func(k, v string) bool { c.add("%s,%s", k, v); return false }).To("out", nil, nil)
			},
			out:   []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3"},
			calls: []string{"k4,v4"},
		},
		{
			name: "FilterNot passes nulls without calling pred",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.FilterNot(func(k, v string) bool { c.add("%s,%s", k, v); return true }).To("out", nil, nil)
			},
			out:   []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3"},
			calls: []string{"k4,v4"},
		},
		{
			name: "FilterNullable sees absent keys and values",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.FilterNullable(func(k dsl.Maybe[string], v dsl.Maybe[string]) bool {
					c.add("%v,%v", k, v)
					return !v.Present()
				}).To("out", nil, nil)
			},
			out:   []string{"k2=<null>@2", "<null>=<null>@3"},
			calls: []string{"<absent>,v1", "k2,<absent>", "<absent>,<absent>", "k4,v4"},
		},
		{
			name: "Peek passes everything and calls f for non-nulls only",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.Peek(func(k, v string) { c.add("%s,%s", k, v) }).To("out", nil, nil)
			},
			out:   []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4@4"},
			calls: []string{"k4,v4"},
		},
		{
			name: "PeekNullable sees every record",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.PeekNullable(func(k dsl.Maybe[string], v dsl.Maybe[string]) { c.add("%v,%v", k, v) }).To("out", nil, nil)
			},
			out:   []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4@4"},
			calls: []string{"<absent>,v1", "k2,<absent>", "<absent>,<absent>", "k4,v4"},
		},
		{
			name: "Foreach calls f for non-nulls only",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.Foreach(func(k, v string) { c.add("%s,%s", k, v) })
			},
			calls: []string{"k4,v4"},
		},
		{
			name: "Merge passes nulls",
			build: func(b *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				s.Merge(dsl.FromTopic(b, "other", serde.String, serde.String)).To("out", nil, nil)
			},
			out: []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4@4"},
		},
		{
			name: "To writes Kafka nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				s.To("out", nil, nil)
			},
			out: []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4@4"},
		},
		{
			name: "ToFunc's extractor sees absent keys and values",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				s.ToFunc(func(k dsl.Maybe[string], v dsl.Maybe[string]) string { c.add("%v,%v", k, v); return "out" }, nil, nil)
			},
			out:   []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4@4"},
			calls: []string{"<absent>,v1", "k2,<absent>", "<absent>,<absent>", "k4,v4"},
		},
		{
			name: "Split sends nulls to the default branch",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				br := s.Split(dsl.Named("split-")).
					Branch("yes", func(k, v string) bool { c.add("%s,%s", k, v); return true }).
					DefaultBranch("other")
				prefix(br["split-yes"], "yes:").To("out", nil, nil)
				prefix(br["split-other"], "other:").To("out", nil, nil)
			},
			out:   []string{"<null>=other:v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=yes:v4@4"},
			calls: []string{"k4,v4"},
		},
		{
			name: "Split without a default branch drops and counts nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				br := s.Split(dsl.Named("split-")).
					Branch("yes", func(k, v string) bool { c.add("%s,%s", k, v); return true }).
					NoDefaultBranch()
				br["split-yes"].To("out", nil, nil)
			},
			out:   []string{"k4=v4@4"},
			calls: []string{"k4,v4"},
			drops: []drop{{"split-", "null-key", 2}, {"split-", "null-value", 1}},
		},
		{
			name: "Repartition drops null keys and keeps tombstones",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				s.Repartition(dsl.Named("rp")).To("out", nil, nil)
			},
			out:   []string{"k2=<null>@2", "k4=v4@4"},
			drops: []drop{{"rp-repartition-filter", "null-key", 2}},
		},
		{
			name: "Process sees the null flags",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.Process(s, func() operators.Processor[string, string, string, string] {
					return &operators.ProcessorFuncs[string, string, string, string]{
						ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
							c.add("%v,%v", r.MaybeKey(), r.MaybeValue())
							return ctx.Forward(r)
						},
					}
				}).To("out", serde.String, serde.String)
			},
			out:   []string{"<null>=v1@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4@4"},
			calls: []string{"<absent>,v1", "k2,<absent>", "<absent>,<absent>", "k4,v4"},
		},
		{
			name: "Map drops and counts nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.Map(s, func(k, v string) (string, string) { c.add("%s,%s", k, v); return v, k }, dsl.Named("map")).To("out", nil, nil)
			},
			out:   []string{"v4=k4@4"},
			calls: []string{"k4,v4"},
			drops: []drop{{"map", "null-key", 2}, {"map", "null-value", 1}},
		},
		{
			name: "MapNullable maps and makes nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.MapNullable(s, func(k dsl.Maybe[string], v dsl.Maybe[string]) (dsl.Maybe[string], dsl.Maybe[string]) {
					c.add("%v,%v", k, v)
					if vv, ok := v.Get(); ok {
						return dsl.Some(vv), k
					}
					return dsl.Some("deleted"), dsl.None[string]()
				}).To("out", nil, nil)
			},
			out:   []string{"v1=<null>@1", "deleted=<null>@2", "deleted=<null>@3", "v4=k4@4"},
			calls: []string{"<absent>,v1", "k2,<absent>", "<absent>,<absent>", "k4,v4"},
		},
		{
			name: "MapValues keeps tombstones without calling f",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.MapValues(s, func(v string) string { c.add("%s", v); return strings.ToUpper(v) }).To("out", nil, nil)
			},
			out:   []string{"<null>=V1@1", "k2=<null>@2", "<null>=<null>@3", "k4=V4@4"},
			calls: []string{"v1", "v4"},
		},
		{
			name: "MapValues to another type keeps tombstones as nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				n := dsl.MapValues(s, func(v string) int64 { c.add("%s", v); return int64(len(v)) })
				dsl.MapValues(n, func(n int64) string { return fmt.Sprint("len ", n) }).To("out", nil, serde.String)
			},
			out:   []string{"<null>=len 2@1", "k2=<null>@2", "<null>=<null>@3", "k4=len 2@4"},
			calls: []string{"v1", "v4"},
		},
		{
			name: "MapValuesNullable maps tombstones",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.MapValuesNullable(s, func(v dsl.Maybe[string]) dsl.Maybe[string] {
					c.add("%v", v)
					if v.Present() {
						return dsl.None[string]()
					}
					return dsl.Some("was null")
				}).To("out", nil, nil)
			},
			out:   []string{"<null>=<null>@1", "k2=was null@2", "<null>=was null@3", "k4=<null>@4"},
			calls: []string{"v1", "<absent>", "<absent>", "v4"},
		},
		{
			name: "SelectKey drops and counts nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.SelectKey(s, func(k, v string) string { c.add("%s,%s", k, v); return v }, dsl.Named("sel")).To("out", nil, nil)
			},
			out:   []string{"v4=v4@4"},
			calls: []string{"k4,v4"},
			drops: []drop{{"sel", "null-key", 2}, {"sel", "null-value", 1}},
		},
		{
			name: "SelectKeyNullable keys records without keys",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.SelectKeyNullable(s, func(k dsl.Maybe[string], v dsl.Maybe[string]) dsl.Maybe[string] {
					c.add("%v,%v", k, v)
					if vv, ok := v.Get(); ok {
						return dsl.Some("from-" + vv)
					}
					return k
				}).To("out", nil, nil)
			},
			out:   []string{"from-v1=v1@1", "k2=<null>@2", "<null>=<null>@3", "from-v4=v4@4"},
			calls: []string{"<absent>,v1", "k2,<absent>", "<absent>,<absent>", "k4,v4"},
		},
		{
			name: "FlatMap drops and counts nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.FlatMap(s, func(k, v string, emit func(string, string)) { c.add("%s,%s", k, v); emit(v, k) }, dsl.Named("fm")).To("out", nil, nil)
			},
			out:   []string{"v4=k4@4"},
			calls: []string{"k4,v4"},
			drops: []drop{{"fm", "null-key", 2}, {"fm", "null-value", 1}},
		},
		{
			name: "FlatMapValues forwards a tombstone as one tombstone",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				dsl.FlatMapValues(s, func(v string, emit func(string)) { c.add("%s", v); emit(v + "a"); emit(v + "b") }).To("out", nil, nil)
			},
			out:   []string{"<null>=v1a@1", "<null>=v1b@1", "k2=<null>@2", "<null>=<null>@3", "k4=v4a@4", "k4=v4b@4"},
			calls: []string{"v1", "v4"},
		},
		{
			name: "GroupByKey aggregations drop and count nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				counts := s.GroupByKey().Count(dsl.Named("agg"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
				dsl.MapValues(counts.ToStream(), func(n int64) string { return fmt.Sprint(n) }).To("out", nil, serde.String)
			},
			out:   []string{"k4=1@4"},
			drops: []drop{{"agg", "null-key", 2}, {"agg", "null-value", 1}},
		},
		{
			name: "GroupBy drops and counts nulls before its selector",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				counts := dsl.GroupBy(s, func(k, v string) string { c.add("%s,%s", k, v); return v }, serde.String, dsl.Named("by")).Count()
				dsl.MapValues(counts.ToStream(), func(n int64) string { return fmt.Sprint(n) }).To("out", nil, serde.String)
			},
			out:   []string{"v4=1@4"},
			calls: []string{"k4,v4"},
			drops: []drop{{"by", "null-key", 2}, {"by", "null-value", 1}},
		},
		{
			name: "GroupByValue groups null keys and drops tombstones",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], c *calls) {
				counts := dsl.GroupByValue(s, func(v string) string { c.add("%s", v); return "all" }, serde.String, dsl.Named("by")).Count()
				dsl.MapValues(counts.ToStream(), func(n int64) string { return fmt.Sprint(n) }).To("out", nil, serde.String)
			},
			out:   []string{"all=1@1", "all=2@4"},
			calls: []string{"v1", "v4"},
			drops: []drop{{"by", "null-value", 2}},
		},
		{
			name: "windowed Count counts tombstones and drops null keys, as Kafka Streams",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				counts := dsl.WindowedBy(s.GroupByKey(), window.Tumbling(10*time.Millisecond, 0)).
					Count(dsl.Named("win"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
				dsl.Map(counts.ToStream(), func(k window.Windowed[string], n int64) (string, string) {
					return fmt.Sprintf("%s[%d]", k.Key, k.Window.Start), fmt.Sprint(n)
				}).To("out", serde.String, serde.String)
			},
			out:   []string{"k2[0]=1@2", "k4[0]=1@4"},
			drops: []drop{{"win", "null-key", 2}, {"win", "null-value", 0}},
		},
		{
			name: "windowed Reduce drops and counts nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				reduced := dsl.WindowedBy(s.GroupByKey(), window.Tumbling(10*time.Millisecond, 0)).
					Reduce(func(a, v string) string { return a + v }, dsl.Named("win"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
				dsl.Map(reduced.ToStream(), func(k window.Windowed[string], v string) (string, string) {
					return fmt.Sprintf("%s[%d]", k.Key, k.Window.Start), v
				}).To("out", serde.String, serde.String)
			},
			out:   []string{"k4[0]=v4@4"},
			drops: []drop{{"win", "null-key", 2}, {"win", "null-value", 1}},
		},
		{
			name: "session Count counts tombstones and drops null keys, as Kafka Streams",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				counts := dsl.WindowedBySession(s.GroupByKey(), window.Session{Gap: 10 * time.Millisecond}).
					Count(dsl.Named("ses"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
				dsl.Map(counts.ToStream(), func(k window.Windowed[string], n int64) (string, string) {
					return fmt.Sprintf("%s[%d]", k.Key, k.Window.Start), fmt.Sprint(n)
				}).To("out", serde.String, serde.String)
			},
			out:   []string{"k2[2]=1@2", "k4[4]=1@4"},
			drops: []drop{{"ses", "null-key", 2}, {"ses", "null-value", 0}},
		},
		{
			name: "session Reduce drops and counts nulls",
			build: func(_ *dsl.Builder, s dsl.Stream[string, string], _ *calls) {
				reduced := dsl.WindowedBySession(s.GroupByKey(), window.Session{Gap: 10 * time.Millisecond}).
					Reduce(func(a, v string) string { return a + v }, dsl.Named("ses"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
				dsl.Map(reduced.ToStream(), func(k window.Windowed[string], v string) (string, string) {
					return fmt.Sprintf("%s[%d]", k.Key, k.Window.Start), v
				}).To("out", serde.String, serde.String)
			},
			out:   []string{"k4[4]=v4@4"},
			drops: []drop{{"ses", "null-key", 2}, {"ses", "null-value", 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			var c calls
			tc.build(b, dsl.FromTopic(b, "in", serde.String, serde.String), &c)
			d := runNullCase(t, b, "in", nullInputs, tc.out, tc.calls, &c)
			for _, dr := range tc.drops {
				if n := d.DroppedRecords(dr.node, dr.reason); n != dr.n {
					t.Errorf("dropped by %s (%s) = %d, want %d", dr.node, dr.reason, n, dr.n)
				}
			}
		})
	}
}

// tableInputs are piped into the table topic "t" by every table case.
var tableInputs = []operators.Record[string, string]{
	{Key: "alice", Value: "eu", Timestamp: 1},
	{NullKey: true, Value: "x", Timestamp: 2},     // null key: dropped, counted
	{Key: "carol", Tombstone: true, Timestamp: 3}, // delete of an absent key: nothing
	{Key: "alice", Tombstone: true, Timestamp: 4}, // delete
	{Key: "bob", Value: "us", Timestamp: 5},
	{Key: "dave", Value: "skip", Timestamp: 6},
	{Key: "dave", Value: "eu", Timestamp: 7},
}

func TestNullsThroughTableOperations(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *dsl.Builder, tbl dsl.Table[string, string], c *calls)
		out   []string
		calls []string
	}{
		{
			name: "ToStream turns deletes into tombstones",
			build: func(_ *dsl.Builder, tbl dsl.Table[string, string], _ *calls) {
				tbl.ToStream().To("out", nil, nil)
			},
			out: []string{"alice=eu@1", "alice=<null>@4", "bob=us@5", "dave=skip@6", "dave=eu@7"},
		},
		{
			name: "Filter sees only values that exist",
			build: func(_ *dsl.Builder, tbl dsl.Table[string, string], c *calls) {
				tbl.Filter(func(k, v string) bool { c.add("%s,%s", k, v); return v != "us" }).ToStream().To("out", nil, nil)
			},
			out:   []string{"alice=eu@1", "alice=<null>@4", "dave=skip@6", "dave=eu@7"},
			calls: []string{"alice,eu", "alice,eu", "bob,us", "dave,skip", "dave,eu", "dave,skip"},
		},
		{
			name: "MapValues maps only values that exist",
			build: func(_ *dsl.Builder, tbl dsl.Table[string, string], c *calls) {
				dsl.TableMapValues(tbl, func(v string) string { c.add("%s", v); return strings.ToUpper(v) }, serde.String).
					ToStream().To("out", nil, nil)
			},
			out:   []string{"alice=EU@1", "alice=<null>@4", "bob=US@5", "dave=SKIP@6", "dave=EU@7"},
			calls: []string{"eu", "eu", "us", "skip", "eu", "skip"},
		},
		{
			name: "GroupBy skips rows whose key is absent",
			build: func(_ *dsl.Builder, tbl dsl.Table[string, string], c *calls) {
				counts := dsl.TableGroupBy(tbl, func(k, region string) (dsl.Maybe[string], string) {
					c.add("%s,%s", k, region)
					if region == "skip" {
						return dsl.None[string](), k
					}
					return dsl.Some(region), k
				}, serde.String, serde.String).Count(dsl.Named("per-region"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
				dsl.MapValues(counts.ToStream(), func(n int64) string { return fmt.Sprint(n) }).To("out", nil, serde.String)
			},
			out:   []string{"eu=1@1", "eu=0@4", "us=1@5", "eu=1@7"},
			calls: []string{"alice,eu", "alice,eu", "bob,us", "dave,skip", "dave,eu", "dave,skip"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			var c calls
			tbl := dsl.TableFromTopic(b, "t", serde.String, serde.String, dsl.Named("t"),
				dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
			tc.build(b, tbl, &c)
			d := runNullCase(t, b, "t", tableInputs, tc.out, tc.calls, &c)
			if n := d.DroppedRecords("t", "null-key"); n != 1 {
				t.Errorf("null keys dropped by the table source = %d, want 1", n)
			}
		})
	}
}

// runNullCase builds b, pipes inputs into topic, and checks what reached
// "out" (wantOut; no such topic is fine when nothing is wanted, as for
// Foreach) and the user-function calls recorded in c (wantCalls). It
// returns the driver, closed when the test ends, for further checks.
func runNullCase(t *testing.T, b *dsl.Builder, topic string, inputs []operators.Record[string, string], wantOut, wantCalls []string, c *calls) *testdriver.Driver {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatalf("testdriver.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	in := testdriver.CreateInputTopic(d, topic, serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	if err := in.PipeRecords(inputs); err != nil {
		t.Fatal(err)
	}
	rs, err := out.ReadRecords()
	if len(wantOut) == 0 && errors.Is(err, testdriver.ErrNotWritten) {
		err = nil // a topology without a sink (Foreach)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, r := range rs {
		got = append(got, nullFormat(r))
	}
	if want := append([]string{}, wantOut...); !slices.Equal(got, want) {
		t.Errorf("out:\n got  %q\n want %q", got, want)
	}
	if want := append(calls{}, wantCalls...); !slices.Equal(*c, want) {
		t.Errorf("calls:\n got  %q\n want %q", *c, want)
	}
	return d
}
