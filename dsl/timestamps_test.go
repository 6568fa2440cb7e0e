package dsl_test

// Tests of timestamp extractors and invalid-timestamp policies, run through
// the test driver: the timestamp a source stamps on a record is the one
// downstream operators, output topics, stream time and stream-time
// punctuation see.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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

// click is a JSON value that carries its own event time.
type click struct {
	Page string `json:"page"`
	At   int64  `json:"at"` // ms; 0: not set
}

// clickTime extracts a click's event time, or falls back to the record's
// Kafka timestamp when the value has none.
func clickTime(_ dsl.Maybe[string], v dsl.Maybe[click], _ []operators.Header, recordTimestamp int64) int64 {
	c, ok := v.Get()
	if !ok || c.At == 0 {
		return recordTimestamp
	}
	return c.At
}

// stamper forwards every input record as "page" with the value's event
// time as its value, and every stream-time punctuation (10 ms) as "tick".
type stamper struct {
	ctx operators.ProcessorContext[string, int64]
}

func (p *stamper) Init(ctx operators.ProcessorContext[string, int64]) error {
	p.ctx = ctx
	_, err := ctx.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
		return ctx.Forward(operators.Record[string, int64]{Key: "tick", Value: ts, Timestamp: ts})
	})
	return err
}

func (p *stamper) Process(r operators.Record[string, click]) error {
	return p.ctx.Forward(operators.Record[string, int64]{Key: r.Value.Page, Value: p.ctx.StreamTime(), Timestamp: r.Timestamp})
}

func (p *stamper) Close() error { return nil }

// clicksDriver runs "clicks" (with opts on the source "src") → stamper →
// "out": each output record is "page=<stream time seen>@<its timestamp>".
func clicksDriver(t *testing.T, opts []dsl.SourceOption, dopts ...testdriver.Option) (
	*testdriver.Driver, *testdriver.InputTopic[string, click], *testdriver.OutputTopic[string, int64]) {
	t.Helper()
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "clicks", serde.String, serde.JSON[click](), append([]dsl.SourceOption{dsl.Named("src")}, opts...)...)
	dsl.Process(s, func() operators.Processor[string, click, string, int64] { return &stamper{} }).
		To("out", serde.String, serde.Int64)
	d, _ := opsDriver(t, b, dopts...)
	return d, testdriver.CreateInputTopic(d, "clicks", serde.String, serde.JSON[click]()),
		testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
}

// An extractor reading a field of a JSON value decides the records'
// timestamps, stream time and stream-time punctuation; the Kafka
// timestamps only matter where the extractor falls back on them.
func TestTimestampsFromJSONField(t *testing.T) {
	d, in, out := clicksDriver(t, []dsl.SourceOption{dsl.Timestamps(clickTime)})
	// Kafka timestamps run backwards; event times are 3, 25, 12 (late), 30.
	opsOK(t, in.PipeAt("u", click{Page: "a", At: 3}, 9000))
	opsOK(t, in.PipeAt("u", click{Page: "b", At: 25}, 8000))
	opsOK(t, in.PipeAt("u", click{Page: "c", At: 12}, 7000))
	opsOK(t, in.PipeAt("u", click{Page: "d", At: 30}, 6000))
	opsOK(t, in.PipeAt("u", click{Page: "e"}, 41)) // no event time: the Kafka timestamp
	opsWant(t, "out", opsRead(t, out), []string{
		"a=3@3", "tick=3@3",
		"b=25@25", "tick=25@25",
		"c=25@12", // out of order: stream time stays 25, no punctuation
		"d=30@30", "tick=30@30",
		"e=41@41", "tick=41@41",
	})
	if st := d.StreamTime(0); st != 41 {
		t.Errorf("stream time = %d, want 41", st)
	}
}

// Timestamps and headers reach the extractor; the record's timestamp
// carries on through an aggregation (max of its inputs) and a table source.
func TestTimestampsThroughAggregationAndTable(t *testing.T) {
	fromHeader := func(_ dsl.Maybe[string], _ dsl.Maybe[string], hs []operators.Header, ts int64) int64 {
		for _, h := range hs {
			if h.Key == "event-time" {
				n, err := serde.Int64.Decode(h.Value)
				if err == nil {
					return n
				}
			}
		}
		return ts
	}
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String, dsl.Timestamps(fromHeader)).
		GroupByKey().Count(dsl.Named("counts"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true})).
		ToStream().To("counts", nil, nil)
	dsl.TableFromTopic(b, "users", serde.String, serde.String, dsl.Named("users"), dsl.Timestamps(fromHeader)).
		ToStream().To("users-out", nil, nil)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	users := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	eventTime := func(ms int64) []operators.Header {
		v, _ := serde.Int64.Encode(nil, ms)
		return []operators.Header{{Key: "event-time", Value: v}}
	}
	opsOK(t, in.PipeRecord(operators.Record[string, string]{Key: "k", Value: "x", Timestamp: 1, Headers: eventTime(500)}))
	opsOK(t, in.PipeRecord(operators.Record[string, string]{Key: "k", Value: "y", Timestamp: 2, Headers: eventTime(200)}))
	opsOK(t, in.PipeRecord(operators.Record[string, string]{Key: "k", Value: "z", Timestamp: 700}))
	out := testdriver.CreateOutputTopic(d, "counts", serde.String, serde.Int64)
	got := []string{}
	for _, r := range opsReadRecords(t, out) {
		got = append(got, opsFormat(operators.Record[string, int64]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}))
	}
	opsWant(t, "counts", got, []string{"k=1@500", "k=2@500", "k=3@700"})

	opsOK(t, users.PipeRecord(operators.Record[string, string]{Key: "alice", Value: "eu", Timestamp: 1, Headers: eventTime(42)}))
	uout := testdriver.CreateOutputTopic(d, "users-out", serde.String, serde.String)
	got = got[:0]
	for _, r := range opsReadRecords(t, uout) {
		got = append(got, opsFormat(operators.Record[string, string]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}))
	}
	opsWant(t, "users-out", got, []string{"alice=eu@42"})
	opsWant(t, "store users", opsStore(t, d, "users", serde.String, serde.String), []string{"alice=eu@42"})
}

// Windows follow the extracted event times: a record is late by its event
// time, whatever its Kafka timestamp, and a record skipped for an invalid
// timestamp is counted apart from late ones.
func TestTimestampsDriveWindows(t *testing.T) {
	b := dsl.NewBuilder()
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.JSON[click](), dsl.Named("src"),
		dsl.Timestamps(negativeAt), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
	keys := window.TimeKeySerde(serde.String, 10*time.Millisecond)
	dsl.WindowedBy(clicks.GroupByKey(), window.Tumbling(10*time.Millisecond, 0)).
		Count(dsl.Named("per-window"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true})).
		ToStream().To("out", keys, serde.Int64)
	d, _ := opsDriver(t, b)
	in := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.JSON[click]())
	out := testdriver.CreateOutputTopic(d, "out", keys, serde.Int64)
	for _, at := range []int64{3, 7, 12, 5, -1, 25} { // 5 is late once stream time is 12
		opsOK(t, in.PipeAt("u", click{Page: "p", At: at}, 1000-at))
	}
	got := []string{}
	for _, r := range opsReadRecords(t, out) {
		got = append(got, fmt.Sprintf("%s%v=%d@%d", r.Key.Key, r.Key.Window, r.Value, r.Timestamp))
	}
	opsWant(t, "out", got, []string{"u[0,10)=1@3", "u[0,10)=2@7", "u[10,20)=1@12", "u[20,30)=1@25"})
	if n := d.DroppedRecords("per-window", "late"); n != 1 {
		t.Errorf("dropped as late = %d, want 1", n)
	}
	if n := d.DroppedRecords("src", "invalid-timestamp"); n != 1 {
		t.Errorf("dropped for an invalid timestamp = %d, want 1", n)
	}
}

// opsReadRecords reads every unread record of out.
func opsReadRecords[K, V any](t *testing.T, out *testdriver.OutputTopic[K, V]) []operators.Record[K, V] {
	t.Helper()
	rs, err := out.ReadRecords()
	opsOK(t, err)
	return rs
}

// WallClockTimestamps stamps records with the driver's clock when they are
// processed, whatever their Kafka timestamps.
func TestWallClockTimestamps(t *testing.T) {
	d, in, out := clicksDriver(t, []dsl.SourceOption{dsl.WallClockTimestamps()},
		testdriver.WithWallClock(time.UnixMilli(1000)))
	opsOK(t, in.PipeAt("u", click{Page: "a", At: 5}, 5))
	opsOK(t, d.AdvanceWallClockTime(250*time.Millisecond))
	opsOK(t, in.PipeAt("u", click{Page: "b", At: 5}, 99999))
	opsOK(t, in.PipeAt("u", click{Page: "c"}, -1)) // an invalid Kafka timestamp does not matter
	opsWant(t, "out", opsRead(t, out), []string{
		"a=1000@1000", "tick=1000@1000",
		"b=1250@1250", "tick=1250@1250",
		"c=1250@1250",
	})
	if st := d.StreamTime(0); st != 1250 {
		t.Errorf("stream time = %d, want 1250", st)
	}
}

// The last of Timestamps and WallClockTimestamps wins.
func TestTimestampsLastOptionWins(t *testing.T) {
	_, in, out := clicksDriver(t, []dsl.SourceOption{dsl.WallClockTimestamps(), dsl.Timestamps(clickTime)},
		testdriver.WithWallClock(time.UnixMilli(1000)))
	opsOK(t, in.PipeAt("u", click{Page: "a", At: 7}, 5))
	opsWant(t, "out", opsRead(t, out), []string{"a=7@7", "tick=7@7"})
}

// negativeAt extracts a click's event time as it is, negative or not.
func negativeAt(_ dsl.Maybe[string], c dsl.Maybe[click], _ []operators.Header, ts int64) int64 {
	if c, ok := c.Get(); ok {
		return c.At
	}
	return ts
}

func TestInvalidTimestampPolicy(t *testing.T) {
	t.Run("fails by default", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			opts    []dsl.SourceOption
			kafkaTs int64
			at      int64
		}{
			{"Kafka timestamp", nil, -1, 0},
			{"extracted timestamp", []dsl.SourceOption{dsl.Timestamps(negativeAt)}, 5, -7},
			{"explicit policy", []dsl.SourceOption{dsl.OnInvalidTimestamp(dsl.FailOnInvalidTimestamp)}, -3, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d, in, out := clicksDriver(t, tc.opts)
				opsOK(t, in.PipeAt("u", click{Page: "a", At: 1}, 1))
				err := in.PipeAt("u", click{Page: "b", At: tc.at}, tc.kafkaTs)
				var ie *operators.InvalidTimestampError
				if !errors.As(err, &ie) {
					t.Fatalf("error %v: want an InvalidTimestampError", err)
				}
				wantTs := tc.kafkaTs
				if tc.at < 0 {
					wantTs = tc.at
				}
				if ie.Node != "src" || ie.Topic != "clicks" || ie.Partition != 0 || ie.Offset != 1 || ie.Timestamp != wantTs {
					t.Errorf("InvalidTimestampError = %+v, want src, clicks, 0, 1, %d", ie, wantTs)
				}
				for _, w := range []string{"source src", "topic clicks", "partition 0", "offset 1", "timestamp " + strconv.FormatInt(wantTs, 10), "task 0_0"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				opsWant(t, "out", opsRead(t, out), []string{"a=1@1", "tick=1@1"})
				if st := d.StreamTime(0); st != 1 {
					t.Errorf("stream time = %d, want 1", st)
				}
			})
		}
	})

	t.Run("skip", func(t *testing.T) {
		var logs bytes.Buffer
		d, in, out := clicksDriver(t, []dsl.SourceOption{dsl.Timestamps(negativeAt), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp)},
			testdriver.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))))
		opsOK(t, in.PipeAt("u", click{Page: "a", At: 10}, 1))
		opsOK(t, in.PipeAt("u", click{Page: "b", At: -5}, 100)) // skipped: no punctuation at 100
		if st := d.StreamTime(0); st != 10 {
			t.Errorf("stream time after a skipped record = %d, want 10", st)
		}
		opsOK(t, in.PipeAt("u", click{Page: "c", At: -6}, 100))
		opsOK(t, in.PipeAt("u", click{Page: "d", At: 15}, 1))
		opsOK(t, in.PipeAt("u", click{Page: "e", At: 25}, 1))
		opsWant(t, "out", opsRead(t, out), []string{"a=10@10", "tick=10@10", "d=15@15", "e=25@25", "tick=25@25"})
		if n := d.DroppedRecords("src", "invalid-timestamp"); n != 2 {
			t.Errorf("dropped for an invalid timestamp = %d, want 2", n)
		}
		if n := d.DroppedRecords("src", "late"); n != 0 {
			t.Errorf("dropped as late = %d, want 0", n)
		}

		// One log line per source per 10 s of the task's clock.
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("log after 2 skipped records: %d lines, want 1:\n%s", len(lines), logs.String())
		}
		for _, w := range []string{"level=WARN", "node=src", "topic=clicks", "partition=0", "offset=1", "timestamp=-5"} {
			if !strings.Contains(lines[0], w) {
				t.Errorf("log line %q does not contain %q", lines[0], w)
			}
		}
		opsOK(t, d.AdvanceWallClockTime(9*time.Second))
		opsOK(t, in.PipeAt("u", click{Page: "f", At: -7}, 1))
		if n := strings.Count(logs.String(), "\n"); n != 1 {
			t.Errorf("log lines 9 s after the first: %d, want 1", n)
		}
		opsOK(t, d.AdvanceWallClockTime(time.Second))
		opsOK(t, in.PipeAt("u", click{Page: "g", At: -8}, 1))
		lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("log lines 10 s after the first: %d, want 2:\n%s", len(lines), logs.String())
		}
		for _, w := range []string{"offset=6", "timestamp=-8", "skipped_since_last_log=2"} {
			if !strings.Contains(lines[1], w) {
				t.Errorf("log line %q does not contain %q", lines[1], w)
			}
		}
		if n := d.DroppedRecords("src", "invalid-timestamp"); n != 4 {
			t.Errorf("dropped for an invalid timestamp = %d, want 4", n)
		}
	})

	t.Run("use previous stream time", func(t *testing.T) {
		d, in, out := clicksDriver(t, []dsl.SourceOption{dsl.OnInvalidTimestamp(dsl.UsePreviousStreamTime)})
		// No stream time yet: skipped and counted.
		opsOK(t, in.PipeAt("u", click{Page: "a"}, -1))
		if st := d.StreamTime(0); st != -1 {
			t.Errorf("stream time after a skipped first record = %d, want -1", st)
		}
		if n := d.DroppedRecords("src", "invalid-timestamp"); n != 1 {
			t.Errorf("dropped for an invalid timestamp = %d, want 1", n)
		}
		opsOK(t, in.PipeAt("u", click{Page: "b"}, 20))
		opsOK(t, in.PipeAt("u", click{Page: "c"}, 5))  // late: stream time stays 20
		opsOK(t, in.PipeAt("u", click{Page: "d"}, -1)) // stamped with stream time 20
		opsOK(t, in.PipeAt("u", click{Page: "e"}, 31))
		opsWant(t, "out", opsRead(t, out), []string{"b=20@20", "tick=20@20", "c=20@5", "d=20@20", "e=31@31", "tick=31@31"})
		if n := d.DroppedRecords("src", "invalid-timestamp"); n != 1 {
			t.Errorf("dropped for an invalid timestamp = %d, want 1", n)
		}
	})
}

// The types of a Timestamps extractor are not checked by the compiler:
// Build reports a mismatch naming the source, as it does an unknown policy.
func TestTimestampsBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *dsl.Builder)
		node  string
		want  []string
	}{
		{
			name: "value type",
			build: func(b *dsl.Builder) {
				dsl.FromTopic(b, "in", serde.String, serde.String, dsl.Named("src"),
					dsl.Timestamps(func(dsl.Maybe[string], dsl.Maybe[int64], []operators.Header, int64) int64 { return 0 })).To("out", nil, nil)
			},
			node: "src",
			want: []string{"keys of type string and values of type string", "func(operators.Maybe[string], operators.Maybe[int64], []operators.Header, int64) int64"},
		},
		{
			name: "key type of FromTopics with a generated name",
			build: func(b *dsl.Builder) {
				dsl.FromTopics(b, []string{"a", "b"}, serde.String, serde.Int64,
					dsl.Timestamps(func(dsl.Maybe[[]byte], dsl.Maybe[int64], []operators.Header, int64) int64 { return 0 })).To("out", nil, nil)
			},
			node: "KSTREAM-SOURCE-0000000000",
			want: []string{"keys of type string and values of type int64", "func(operators.Maybe[[]uint8], operators.Maybe[int64]"},
		},
		{
			name: "table source",
			build: func(b *dsl.Builder) {
				dsl.TableFromTopic(b, "users", serde.String, serde.String, dsl.Named("users"), dsl.Timestamps(clickTime))
			},
			node: "users-source",
			want: []string{"func(operators.Maybe[string], operators.Maybe[github.com/sluicehq/sluice/dsl_test.click], []operators.Header, int64) int64"},
		},
		{
			name: "unknown policy",
			build: func(b *dsl.Builder) {
				dsl.FromTopic(b, "in", serde.String, serde.String, dsl.Named("src"),
					dsl.OnInvalidTimestamp(dsl.InvalidTimestampPolicy(7))).To("out", nil, nil)
			},
			node: "src",
			want: []string{"unknown invalid-timestamp policy 7"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			var be *topology.BuildError
			if !errors.As(err, &be) || be.Node != tc.node {
				t.Fatalf("Build error %v: want a BuildError naming node %s", err, tc.node)
			}
			for _, w := range append(tc.want, "node "+tc.node) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// BenchmarkTimestampExtractor is BenchmarkStatelessChain/bytes-int64 with
// a timestamp extractor on the source (the value is the event time):
// extracting must not allocate either. allocs/op is allocations per record.
func BenchmarkTimestampExtractor(b *testing.B) {
	bld := dsl.NewBuilder()
	s := dsl.FromTopic(bld, "in", serde.Bytes, serde.Int64,
		dsl.Timestamps(func(_ dsl.Maybe[[]byte], v dsl.Maybe[int64], _ []operators.Header, _ int64) int64 { return v.Or(-1) })).
		Filter(func(_ []byte, v int64) bool { return v%10 != 0 })
	dsl.MapValues(s, func(v int64) int64 { return v * 2 }).To("out", serde.Bytes, serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.Bytes, serde.Int64)
	ks := make([][]byte, 1000)
	for i := range ks {
		ks[i] = []byte("key-" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := in.PipeAt(ks[i%len(ks)], int64(i), 0); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N)
	if st := d.StreamTime(0); st != int64(b.N-1) {
		b.Fatalf("stream time = %d, want %d", st, b.N-1)
	}
}
