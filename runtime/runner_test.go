package runtime

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

type nopCollector struct{}

func (nopCollector) Send(string, int32, []byte, []byte, []operators.Header, int64) error { return nil }

// Within a task, the partition whose head record has the smallest timestamp
// goes next, and stream time never goes back.
func TestRunnerProcessesSmallestHeadTimestampFirst(t *testing.T) {
	b := dsl.NewBuilder()
	var seen []string
	dsl.FromTopics(b, []string{"a", "b"}, serde.String, serde.String).
		Foreach(func(_, v string) { seen = append(seen, v) })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: nopCollector{}})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{task: tk}
	rec := func(topic string, off, ts int64, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte("k"), Value: []byte(v)}
	}
	r.add("a", 0, []*kgo.Record{rec("a", 0, 10, "a10"), rec("a", 1, 30, "a30"), rec("a", 2, 31, "a31")})
	r.add("b", 0, []*kgo.Record{rec("b", 0, 20, "b20"), rec("b", 1, 5, "b5"), rec("b", 2, 40, "b40")})
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	// Heads: a10 < b20; a30 > b20 → b20; then b5 (head of b now) < a30.
	want := []string{"a10", "b20", "b5", "a30", "a31", "b40"}
	if !slices.Equal(seen, want) {
		t.Errorf("processing order = %v, want %v", seen, want)
	}
	if st := tk.StreamTime(); st != 40 {
		t.Errorf("stream time = %d, want 40", st)
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	r.offsets(offsets)
	if offsets["a"][0].Offset != 3 || offsets["b"][0].Offset != 3 {
		t.Errorf("offsets to commit = %v, want 3 for both partitions", offsets)
	}
}

// With a timestamp extractor, the partitions are ordered by the extracted
// event time, not by the records' Kafka timestamps.
func TestRunnerOrdersByExtractedTimestamp(t *testing.T) {
	b := dsl.NewBuilder()
	var seen []string
	dsl.FromTopics(b, []string{"a", "b"}, serde.String, serde.Int64,
		dsl.Timestamps(func(_ dsl.Maybe[string], v dsl.Maybe[int64], _ []operators.Header, _ int64) int64 { return v.Or(-1) })).
		Foreach(func(k string, _ int64) { seen = append(seen, k) })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: nopCollector{}})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{task: tk}
	// Kafka timestamps say a first; the values (event times) say b.
	rec := func(topic string, off, kafkaTs, eventTs int64, k string) *kgo.Record {
		v, _ := serde.Int64.Encode(nil, eventTs)
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(kafkaTs), Key: []byte(k), Value: v}
	}
	r.add("a", 0, []*kgo.Record{rec("a", 0, 1, 300, "a300"), rec("a", 1, 2, 400, "a400")})
	r.add("b", 0, []*kgo.Record{rec("b", 0, 50, 100, "b100"), rec("b", 1, 60, 350, "b350")})
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	want := []string{"b100", "a300", "b350", "a400"}
	if !slices.Equal(seen, want) {
		t.Errorf("processing order = %v, want %v (by event time)", seen, want)
	}
	if st := tk.StreamTime(); st != 400 {
		t.Errorf("stream time = %d, want 400", st)
	}
}
