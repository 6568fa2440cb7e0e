package testdriver_test

import (
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// Kafka Streams' TopologyTestDriver commits after every record its task
// processes, including each record it re-enqueues from a repartition topic
// (TopologyTestDriver.completeAllProcessableWork: process, then
// commit(task.prepareCommit()), per record). One piped record that a
// FlatMap turns into two records of one new key reaches the count below
// the repartition topic as two records, each followed by a commit: the
// count's cache is flushed twice and both updates are forwarded.
func TestRecordCacheCommitsAfterEachRepartitionedRecord(t *testing.T) {
	b := dsl.NewBuilder()
	in := dsl.FromTopic(b, "in", serde.String, serde.String)
	twice := dsl.FlatMap(in, func(_, v string, emit func(string, string)) {
		emit(v, "1")
		emit(v, "2")
	})
	twice.GroupByKey(dsl.Named("g")).Count(dsl.Named("counts")).ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	ok(t, err)
	if len(topo.SubTopologies()) != 2 {
		t.Fatalf("%d sub-topologies, want 2", len(topo.SubTopologies()))
	}
	d := newDriver(t, topo, testdriver.WithRecordCache(1<<20))
	pin := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	ok(t, pin.PipeAt("k", "x", 5))
	want(t, "after one piped record", read(t, out), []string{"x=1@5", "x=2@5"})
}

// Within the processing of one record Kafka Streams' TopologyTestDriver
// compacts updates in its record cache (it always has one:
// statestore.cache.max.bytes, 10 MiB by default, and commits after the
// record): two records of one key that a FlatMapValues makes of one input
// record reach the count's cache before the commit, and one update comes
// out. WithRecordCache gives the same; the driver's default (no cache)
// forwards both.
func TestRecordCacheCompactsUpdatesOfOneRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testdriver.Option
		want []string
	}{
		{"record cache", []testdriver.Option{testdriver.WithRecordCache(10 << 20)}, []string{"k=2@5"}},
		{"no cache", nil, []string{"k=1@5", "k=2@5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			in := dsl.FromTopic(b, "in", serde.String, serde.String)
			dsl.FlatMapValues(in, func(v string, emit func(string)) {
				emit(v)
				emit(v)
			}).GroupByKey().Count(dsl.Named("counts")).ToStream().To("out", serde.String, serde.Int64)
			topo, err := b.Build()
			ok(t, err)
			d := newDriver(t, topo, tc.opts...)
			pin := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
			out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
			ok(t, pin.PipeAt("k", "x", 5))
			want(t, "after one piped record", read(t, out), tc.want)
		})
	}
}
