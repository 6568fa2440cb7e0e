package testdriver_test

import (
	"testing"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// Kafka Streams evicts a dirty entry by flushing its whole store's cache:
// NamedCache.evict calls flush(eldest), which hands the evicted entry and
// then every other dirty entry of the store to the flush listener. The
// first write of b (budget for one entry, see TestRecordCacheEvicts)
// evicts a, and so forwards a=2 and b=1; the second write of b is
// forwarded at the commit.
func TestRecordCacheEvictionFlushesEveryDirtyEntryOfTheStore(t *testing.T) {
	d := newDriver(t, countTopology(t), testdriver.WithRecordCache(150), testdriver.CommitOnRequest())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	for i, k := range []string{"a", "a", "b", "b"} {
		ok(t, in.PipeAt(k, "x", int64(i+1)))
	}
	want(t, "before the commit", read(t, out), []string{"a=2@2", "b=1@3"})
	ok(t, d.Commit())
	want(t, "at the commit", read(t, out), []string{"b=2@4"})
}
