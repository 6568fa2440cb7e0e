package dsl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// A session aggregation accepts a record whose merged session ends exactly
// at the close time (stream time - grace - gap: late only if it ends
// before, as in Kafka Streams), and its session store (retention gap +
// grace) must keep such a session rather than refuse the Put with
// ErrWindowExpired, which would fail the task.
func TestSessionAtCloseTimeBoundary(t *testing.T) {
	for _, final := range []bool{false, true} {
		b := dsl.NewBuilder()
		g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
		s := dsl.WindowedBySession(g, window.Session{Gap: 10 * time.Millisecond})
		if final {
			s = s.EmitFinal()
		}
		s.Count(dsl.Named("sessions")).ToStream().To("out", window.SessionKeySerde(serde.String), serde.Int64)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := testdriver.New(topo)
		if err != nil {
			t.Fatal(err)
		}
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
		if err := in.PipeAt("a", "v", 100); err != nil {
			t.Fatal(err)
		}
		// Close time is 100 - 0 - 10 = 90: a session [90,90] is not late.
		if err := in.PipeAt("b", "v", 90); err != nil {
			t.Errorf("final=%v: record at the close time: %v (Kafka Streams accepts it)", final, err)
		}
		d.Close()
	}
}

// A session aggregate that encodes to no bytes (the empty string) is a
// value, not a Kafka null: the session is kept, merged with the next
// record and forwarded with "", never removed as a delete would remove it.
func TestSessionEmptyAggregateIsKept(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	s := dsl.WindowedBySession(g, window.Session{Gap: 10 * time.Millisecond})
	s.Reduce(func(agg, v string) string { return agg + v }, dsl.Named("sessions")).
		ToStream().To("out", window.SessionKeySerde(serde.String), serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", window.SessionKeySerde(serde.String), serde.String)
	for _, r := range []struct {
		v  string
		ts int64
	}{{"", 100}, {"", 105}, {"x", 108}} {
		if err := in.PipeAt("a", r.v, r.ts); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := out.ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		v := r.Value
		if r.Tombstone {
			v = "<null>"
		}
		got = append(got, fmt.Sprintf("[%d,%d]=%q", r.Key.Window.Start, r.Key.Window.End, v))
	}
	// Kafka Streams: each merge deletes the old session and puts the
	// merged one; the last session holds "x" and spans both earlier ones.
	want := []string{`[100,100]=""`, `[100,100]="<null>"`, `[100,105]=""`, `[100,105]="<null>"`, `[100,108]="x"`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
