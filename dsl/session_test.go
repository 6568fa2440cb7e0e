package dsl_test

import (
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
