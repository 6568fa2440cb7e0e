package dsl_test

import (
	"errors"
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

// Suppress configurations Kafka Streams refuses are Build errors naming
// the suppress node. Beside these, a plain store below a versioned table
// ends the versioning (TestSuppressBelowPlainStoreOfVersionedTable).
func TestSuppressBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{
		{"until window closes on a table that is not windowed", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "in", serde.String, serde.String).Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("sup"))
		}, `node sup: UntilWindowCloses is only defined for a windowed aggregation's table`},
		{"until window closes emitting early", func(b *dsl.Builder) {
			dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(time.Minute, 0)).Count().
				Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{MaxRecords: 10}))
		}, `node KTABLE-SUPPRESS-0000000003: UntilWindowCloses with a bounded buffer needs ShutDownWhenFull`},
		{"negative time limit", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "in", serde.String, serde.String).Suppress(dsl.UntilTimeLimit(-time.Second, dsl.BufferConfig{}).WithName("sup"))
		}, `node sup: suppress time limit -1s is negative`},
		{"negative bound", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "in", serde.String, serde.String).Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{MaxBytes: -1}).WithName("sup"))
		}, `node sup: suppression buffer bounds must not be negative`},
		{"no value serde", func(b *dsl.Builder) {
			dsl.TableMapValues(dsl.TableFromTopic(b, "in", serde.String, serde.String), func(v string) int { return len(v) }, nil).
				Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("sup"))
		}, `node sup: suppress needs the table's key and value serdes`},
		{"versioned table", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "in", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "v", HistoryRetention: time.Hour})).
				Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("sup"))
		}, `node sup: suppress is only supported for non-versioned tables: the table of node`},
		{"versioned by inheritance through a Filter without a store", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "in", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "v", HistoryRetention: time.Hour})).
				Filter(func(_, v string) bool { return v != "" }).
				Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("sup"))
		}, `node sup: suppress is only supported for non-versioned tables`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A Filter materialized in a plain store below a versioned table is not
// versioned (Kafka Streams: a node's output is versioned only when its
// store is, or, without a store, when its parent's is): it can be
// suppressed.
func TestSuppressBelowPlainStoreOfVersionedTable(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.TableFromTopic(b, "in", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "v", HistoryRetention: time.Hour})).
		Filter(func(_, v string) bool { return v != "" }, dsl.Materialized(dsl.StoreOptions{Name: "plain"})).
		Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("sup")).
		ToStream().To("out", nil, nil)
	if _, err := b.Build(); err != nil {
		t.Fatalf("Build: %v", err)
	}
}

// The buffer is a store of kind SuppressionBuffer named "<name>-store",
// logged to "<application.id>-<name>-store-changelog" (compact) unless
// logging is disabled, in memory as Kafka Streams' buffer.
func TestSuppressStoreSpec(t *testing.T) {
	b := dsl.NewBuilder()
	tb := dsl.TableFromTopic(b, "in", serde.String, serde.String)
	tb.Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("logged").WithLoggingEnabled(map[string]string{"segment.ms": "1000"})).
		ToStream().To("out1", nil, nil)
	tb.Suppress(dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("unlogged").WithLoggingDisabled()).
		ToStream().To("out2", nil, nil)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	logged, unlogged := topo.Store("logged-store"), topo.Store("unlogged-store")
	if logged == nil || unlogged == nil {
		t.Fatalf("stores logged-store %v, unlogged-store %v", logged, unlogged)
	}
	if logged.Kind != topology.SuppressionBuffer || !logged.InMemory || logged.DisableLogging || unlogged.Kind != topology.SuppressionBuffer || !unlogged.DisableLogging {
		t.Fatalf("specs %+v, %+v", *logged, *unlogged)
	}
	cfg := logged.ChangelogTopicConfig()
	if cfg["cleanup.policy"] != "compact" || cfg["segment.ms"] != "1000" || logged.ChangelogTopic() != "logged-store-changelog" {
		t.Fatalf("changelog %s configs %v", logged.ChangelogTopic(), cfg)
	}
}

// With ShutDownWhenFull, going over a bound fails the task with an error
// naming the node, its store and the bounds (Kafka Streams: a
// StreamsException).
func TestSuppressShutDownWhenFull(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.TableFromTopic(b, "in", serde.String, serde.String).
		Suppress(dsl.UntilTimeLimit(time.Hour, dsl.BufferConfig{MaxRecords: 2, OnFull: dsl.ShutDownWhenFull}).WithName("bounded")).
		ToStream().To("out", nil, nil)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	for i, k := range []string{"a", "b", "a"} {
		if err := in.PipeAt(k, "v", int64(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	err := in.PipeAt("c", "v", 3)
	var full *dsl.BufferFullError
	if !errors.As(err, &full) || full.Node != "bounded" || full.Store != "bounded-store" || full.Records != 3 || full.MaxRecords != 2 {
		t.Fatalf("err %v (%#v), want a BufferFullError of node bounded", err, full)
	}
	ne, ok := operators.FailedRecord(err)
	if !ok || ne.Node != "bounded" || ne.Offset != 3 {
		t.Fatalf("FailedRecord(%v) = %+v, %v", err, ne, ok)
	}
}

// The buffer's changelog, as the driver records it: per change of a key,
// the key, Kafka Streams' buffer value (version 3) and the header v=3
// before the input position; a tombstone once the key is emitted.
func TestSuppressChangelog(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.TableFromTopic(b, "in", serde.String, serde.String).
		Suppress(dsl.UntilTimeLimit(10*time.Millisecond, dsl.BufferConfig{}).WithName("sup")).
		ToStream().To("out", nil, nil)
	d, _ := opsDriver(t, b, testdriver.WithChangelogs())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	opsOK(t, in.PipeAt("a", "x", 0))
	opsOK(t, in.PipeAt("b", "y", 20))
	cl := testdriver.CreateOutputTopic(d, d.ChangelogTopic("sup-store"), serde.Bytes, serde.Bytes)
	rs, err := cl.ReadRecords()
	opsOK(t, err)
	var got []string
	for _, r := range rs {
		if len(r.Headers) != 2 || r.Headers[0].Key != "v" || string(r.Headers[0].Value) != "\x03" || r.Headers[1].Key != "sluice.input" {
			t.Fatalf("changelog record %s: headers %v", r.Key, r.Headers)
		}
		v := "<tombstone>"
		if !r.Tombstone {
			v = string(r.Value)
		}
		got = append(got, string(r.Key)+"="+strings.ToValidUTF8(v, "?"))
	}
	// a at 0 in topic "in", offset 0: context (ts 0, offset 0, "in",
	// partition 0, no headers), prior null, old null, new "x", time 0.
	want := []string{
		"a=" + string([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'i', 'n', 0, 0, 0, 0, 0, 0, 0, 0,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 0}),
		"b=" + string([]byte{0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'i', 'n', 0, 0, 0, 0, 0, 0, 0, 0,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 'y', 0, 0, 0, 0, 0, 0, 0, 20}),
		"a=<tombstone>",
	}
	for i := range want {
		want[i] = strings.ToValidUTF8(want[i], "?")
	}
	opsWant(t, "changelog of sup-store", got, want)
}

// A join of two windowed tables is windowed too: UntilWindowCloses waits
// for the larger grace of the two (Kafka Streams'
// GraphGraceSearchUtil), here 7s rather than 1s. A join of
// a windowed table with another table is not.
func TestSuppressAfterWindowedJoin(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	short := dsl.WindowedBy(g, window.Tumbling(10*time.Second, time.Second)).Count(dsl.Named("short"))
	long := dsl.TableMapValues(dsl.WindowedBy(g, window.Tumbling(10*time.Second, 7*time.Second)).Count(dsl.Named("long")),
		func(n int64) int64 { return 10 * n }, serde.Int64)
	sum := func(_ window.Windowed[string], a, b int64) int64 { return a + b }
	dsl.TableJoin(short, long, sum, serde.Int64).Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To("out", window.TimeKeySerde(serde.String, 10*time.Second), serde.Int64)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", window.TimeKeySerde(serde.String, 10*time.Second), serde.Int64)
	read := func() []string {
		rs, err := out.ReadRecords()
		opsOK(t, err)
		var got []string
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%s@%d=%d", r.Key.Key, r.Key.Window.Start, r.Value))
		}
		return got
	}
	opsOK(t, in.PipeAt("a", "v", 1000))
	opsOK(t, in.PipeAt("a", "v", 16_999)) // window [0,10s) closes at 17s
	opsWant(t, "at 16.999s", read(), nil)
	opsOK(t, in.PipeAt("b", "v", 17_000))
	opsWant(t, "at 17s", read(), []string{"a@0=11"})

	b = dsl.NewBuilder()
	other := dsl.TableFromTopic(b, "other", window.TimeKeySerde(serde.String, 10*time.Second), serde.Int64)
	short = dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(10*time.Second, 0)).Count()
	dsl.TableJoin(short, other, sum, serde.Int64).Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final"))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "node final: UntilWindowCloses is only defined for a windowed aggregation's table") {
		t.Fatalf("Build: %v, want the error of UntilWindowCloses on a table that is not windowed", err)
	}
}
