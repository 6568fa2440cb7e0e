package dsl_test

import (
	"errors"
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
// the suppress node.
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
