package runtime

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

type headerCollector struct{ got map[string]string }

func (c headerCollector) Send(_ string, _ int32, key, _ []byte, hs []operators.Header, _ int64) error {
	v := ""
	for _, h := range hs {
		v += h.Key + "=" + string(h.Value) + ";"
	}
	c.got[string(key)] = v
	return nil
}

// A cached aggregation forwards each flushed entry with the headers of the
// record that last wrote it, as Kafka Streams keeps the record context in
// the cache entry, although the runner hands the task one reused header
// slice (runner.hdrs): the cache must not keep a reference to it, or an
// entry flushed later would carry the headers of whichever record reused
// the slice last.
func TestCachedEntryKeepsItsRecordHeaders(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	col := headerCollector{got: map[string]string{}}
	cache := state.NewCache(1 << 20)
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: col,
		Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{task: tk}
	rec := func(off int64, key, h string) *kgo.Record {
		return &kgo.Record{Topic: "in", Offset: off, Timestamp: time.UnixMilli(off + 1), Key: []byte(key), Value: []byte("v"),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(h)}}}
	}
	r.add("in", 0, []*kgo.Record{rec(0, "a", "from-a"), rec(1, "b", "from-b")}, -1)
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := tk.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := col.got["a"]; got != "h=from-a;" {
		t.Errorf("count of a forwarded on flush with headers %q, want %q (those of the record that wrote it)", got, "h=from-a;")
	}
	if got := col.got["b"]; got != "h=from-b;" {
		t.Errorf("count of b forwarded on flush with headers %q, want %q", got, "h=from-b;")
	}
}
