package dsl_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// With emit-final, a session ending at e is emitted by the first
// record whose close time passes e, before that record's write; if an
// earlier record brought the store's time to exactly e + gap + grace, the
// session store already hides the session (end <= stream time -
// retention); FindSessionsByEnd must still yield it, as Kafka Streams'
// RocksDBTimeOrderedSessionSegmentedBytesStore.fetchSessions does.
func TestSessionEmitFinalAtRetentionBoundary(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	dsl.WindowedBySession(g, window.Session{Gap: 10 * time.Millisecond}).EmitFinal().
		Count(dsl.Named("sessions")).ToStream().To("out", window.SessionKeySerde(serde.String), serde.Int64)
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
	for _, r := range []struct {
		k  string
		ts int64
	}{{"a", 80}, {"b", 90}, {"c", 95}, {"d", 500}} {
		if err := in.PipeAt(r.k, "v", r.ts); err != nil {
			t.Fatal(err)
		}
	}
	got, err := testdriver.ReadKeyValuesToMap(testdriver.CreateOutputTopic(d, "out", window.SessionKeySerde(serde.String), serde.Int64))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for k := range got {
		found[k.Key] = true
	}
	for _, k := range []string{"a", "b", "c"} {
		if !found[k] {
			t.Errorf("session of %s never emitted (emitted: %v)", k, got)
		}
	}
}
