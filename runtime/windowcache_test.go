package runtime

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

type valueCollector struct{ got map[string]string }

func (c valueCollector) Send(_ string, _ int32, key, value []byte, _ []operators.Header, _ int64) error {
	c.got[string(key)] = fmt.Sprintf("%x", value)
	return nil
}

// A windowed count in emit-every-update mode behind a record cache (the
// default) forwards its updates when the cache flushes them. When stream
// time moves past a segment's retention before the next flush (a backlog
// processed within one commit interval), the window store drops the
// expired segment with DeleteRange; the cached dirty entries of that range
// are forwarded first, as Kafka Streams' caching window store does, so the
// last update of every window reaches downstream; only the write to the
// expired segment is dropped.
func TestCachedWindowUpdatesSurviveSegmentExpiry(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	counts := dsl.WindowedBy(g, window.Tumbling(time.Minute, 0)).Count(dsl.Named("views")).ToStream()
	dsl.Map(counts, func(k window.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%d", k.Key, k.Window.Start), n
	}).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	col := valueCollector{got: map[string]string{}}
	cache := state.NewCache(1 << 20)
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: col,
		Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{task: tk}
	rec := func(off int64, key string, ts int64) *kgo.Record {
		return &kgo.Record{Topic: "in", Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte(key), Value: []byte("v")}
	}
	// Three views of a in [0, 60s), then one of b two minutes later, all
	// within one commit interval.
	r.add("in", 0, []*kgo.Record{rec(0, "a", 0), rec(1, "a", 1000), rec(2, "a", 2000), rec(3, "b", 130_000)}, -1)
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := tk.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := col.got["a@0"], "0000000000000003"; got != want {
		t.Errorf("count of window a@0 forwarded = %q, want %q (3 views)", got, want)
	}
	if got, want := col.got["b@120000"], "0000000000000001"; got != want {
		t.Errorf("count of window b@120000 forwarded = %q, want %q", got, want)
	}
}
