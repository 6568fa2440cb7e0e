package dsl_test

import (
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// A stream-table join reads the table as Kafka Streams does
// (nodes.PlainReads): its read of the table's unflushed row does not make
// the row's delete before the flush reach the table's downstream, here its
// ToStream sink, as a tombstone for a key it never saw. Kafka Streams 4.3.1
// (CachingKeyValueStore putAndMaybeForward: a delete of a key absent below
// forwards nothing) writes nothing to "table-out": only the join's "a=s+B".
func TestStreamTableJoinReadLeavesTableFlushAlone(t *testing.T) {
	b := dsl.NewBuilder()
	tbl := dsl.TableFromTopic(b, "right", serde.String, serde.String)
	tbl.ToStream().To("table-out", serde.String, serde.String)
	s := dsl.FromTopic(b, "left", serde.String, serde.String)
	dsl.JoinTable(s, tbl, func(_, v, o string) string { return v + "+" + o }).To("join-out", serde.String, serde.String)
	d, _ := opsDriver(t, b, testdriver.WithRecordCache(1<<20), testdriver.CommitOnRequest())
	l := testdriver.CreateInputTopic(d, "left", serde.String, serde.String)
	r := testdriver.CreateInputTopic(d, "right", serde.String, serde.String)
	jout := testdriver.CreateOutputTopic(d, "join-out", serde.String, serde.String)
	tout := testdriver.CreateOutputTopic(d, "table-out", serde.String, serde.String)
	opsOK(t, r.PipeAt("a", "B", 1))
	opsOK(t, l.PipeAt("a", "s", 2))
	opsWant(t, "stream-table join", opsRead(t, jout), []string{"a=s+B@2"})
	opsOK(t, r.PipeTombstone("a", 3))
	opsOK(t, d.Commit())
	opsWant(t, "table's own output after put+delete within one flush", opsRead(t, tout), []string{})
}
