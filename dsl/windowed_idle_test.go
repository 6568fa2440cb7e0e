package dsl_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// CloseWhenIdle: with no new record, wall-clock time closes the last
// window once the aggregation has been idle for the configured period;
// without it, windows wait for records, as in Kafka Streams.
func TestCloseWhenIdle(t *testing.T) {
	for _, idle := range []time.Duration{0, 30 * time.Second} {
		b := dsl.NewBuilder()
		g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
		ws := dsl.WindowedBy(g, window.Tumbling(10*time.Second, 0)).EmitFinal()
		if idle > 0 {
			ws = ws.CloseWhenIdle(idle)
		}
		ws.Count(dsl.Named("counts")).ToStream().To("out", nil, nil)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := testdriver.New(topo, testdriver.WithWallClock(time.UnixMilli(1_000_000)))
		if err != nil {
			t.Fatal(err)
		}
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
		out := testdriver.CreateOutputTopic(d, "out", window.TimeKeySerde(serde.String, 10*time.Second), serde.Int64)
		for _, ts := range []int64{1000, 2000} {
			if err := in.PipeAt("a", "view", ts); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.AdvanceWallClockTime(29 * time.Second); err != nil {
			t.Fatal(err)
		}
		if rs, _ := out.ReadRecords(); len(rs) != 0 {
			t.Fatalf("idle %v: emitted %v after 29s of wall-clock time", idle, rs)
		}
		if err := d.AdvanceWallClockTime(time.Second); err != nil {
			t.Fatal(err)
		}
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		if idle == 0 {
			if len(rs) != 0 {
				t.Fatalf("without CloseWhenIdle, wall-clock time emitted %v", rs)
			}
			d.Close()
			continue
		}
		if len(rs) != 1 || rs[0].Key.Key != "a" || rs[0].Key.Window != (window.Window{Start: 0, End: 10000}) || rs[0].Value != 2 {
			t.Fatalf("after 30s idle: emitted %+v, want a [0,10000) = 2", rs)
		}
		// The window is closed now: a record for it is late.
		if err := in.PipeAt("a", "view", 5000); err != nil {
			t.Fatal(err)
		}
		if n := d.DroppedRecords("counts", "late"); n != 1 {
			t.Errorf("late records after the idle close: %d, want 1", n)
		}
		d.Close()
	}
}
