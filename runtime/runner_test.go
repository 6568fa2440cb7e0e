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
	r, tk, seen := seenRunner(t, "a", "b")
	rec := func(topic string, off, ts int64, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte("k"), Value: []byte(v)}
	}
	r.add("a", 0, []*kgo.Record{rec("a", 0, 10, "a10"), rec("a", 1, 30, "a30"), rec("a", 2, 31, "a31")}, -1)
	r.add("b", 0, []*kgo.Record{rec("b", 0, 20, "b20"), rec("b", 1, 5, "b5"), rec("b", 2, 40, "b40")}, -1)
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	// Heads: a10 < b20; a30 > b20 → b20; then b5 (head of b now) < a30.
	want := []string{"a10", "b20", "b5", "a30", "a31", "b40"}
	if !slices.Equal(*seen, want) {
		t.Errorf("processing order = %v, want %v", *seen, want)
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
	r.add("a", 0, []*kgo.Record{rec("a", 0, 1, 300, "a300"), rec("a", 1, 2, 400, "a400")}, -1)
	r.add("b", 0, []*kgo.Record{rec("b", 0, 50, 100, "b100"), rec("b", 1, 60, 350, "b350")}, -1)
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

// A task does not run ahead of a partition whose records are on the broker
// but not fetched yet (its high watermark is past the last fetched
// record): it waits for them, as Kafka Streams' PartitionGroup waits while
// the fetch lag is above zero, so records meet in event-time order
// whatever the fetches bring first. The wait is bounded by maxFetchWait
// for a high watermark that no record reaches (a transaction marker).
func TestRunnerWaitsForUnfetchedRecords(t *testing.T) {
	r, _, seen := seenRunner(t, "a", "b")
	rec := func(topic string, off, ts int64, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte("k"), Value: []byte(v)}
	}
	start := time.Now()
	r.add("a", 0, []*kgo.Record{rec("a", 0, 10, "a10"), rec("a", 1, 30, "a30")}, 2)
	r.add("b", 0, []*kgo.Record{rec("b", 0, 20, "b20")}, 3) // b has 2 more on the broker
	if err := r.process(start); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a10", "b20"}; !slices.Equal(*seen, want) {
		t.Fatalf("before b's next fetch: processed %v, want %v (a30 must wait for b)", *seen, want)
	}
	r.add("b", 0, []*kgo.Record{rec("b", 1, 25, "b25")}, 3)
	if err := r.process(start.Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a10", "b20", "b25"}; !slices.Equal(*seen, want) {
		t.Fatalf("after b's next fetch: processed %v, want %v", *seen, want)
	}
	// b's offset 2 is known to be on the broker but does not come: the
	// task waits for it up to maxLagWait, then goes on.
	if err := r.process(start.Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 3 {
		t.Fatalf("within maxLagWait: processed %v", *seen)
	}
	if err := r.process(start.Add(20*time.Millisecond + maxFetchWait)); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 3 {
		t.Fatalf("after maxFetchWait, b's record known on the broker: processed %v, want a30 to wait", *seen)
	}
	if err := r.process(start.Add(20*time.Millisecond + maxLagWait)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a10", "b20", "b25", "a30"}; !slices.Equal(*seen, want) {
		t.Errorf("after maxLagWait: processed %v, want %v", *seen, want)
	}
	// A partition fetched to its high watermark is not waited for, even
	// at once.
	r.add("b", 0, []*kgo.Record{rec("b", 2, 40, "b40")}, 3)
	if err := r.process(start.Add(30*time.Millisecond + maxLagWait)); err != nil {
		t.Fatal(err)
	}
	r.add("a", 0, []*kgo.Record{rec("a", 2, 50, "a50")}, 3)
	if err := r.process(start.Add(40*time.Millisecond + maxFetchWait)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a10", "b20", "b25", "a30", "b40", "a50"}; !slices.Equal(*seen, want) {
		t.Errorf("caught-up partition: processed %v, want %v", *seen, want)
	}
}

// A partition no fetch has returned yet is waited for (its lag is
// unknown), at most maxFetchWait; a transaction marker (a control record)
// moves the fetch position without being processed, so a partition whose
// log ends with one is not waited for.
func TestRunnerWaitsForUnknownPartitionsAndSkipsControlRecords(t *testing.T) {
	r, _, seen := seenRunner(t, "a", "b")
	r.queue("a", 0)
	r.queue("b", 0)
	rec := func(topic string, off, ts int64, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte("k"), Value: []byte(v)}
	}
	start := time.Now()
	r.add("a", 0, []*kgo.Record{rec("a", 0, 10, "a10")}, 1)
	if err := r.process(start); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 0 {
		t.Fatalf("b never fetched: processed %v, want nothing yet", *seen)
	}
	marker := rec("b", 1, 0, "")
	marker.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Transactional: true, Control: true})
	r.add("b", 0, []*kgo.Record{rec("b", 0, 5, "b5"), marker}, 2)
	if err := r.process(start.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"b5", "a10"}; !slices.Equal(*seen, want) {
		t.Errorf("processed %v, want %v (the marker is not a record, and b ends with it)", *seen, want)
	}
	// b's committed offset goes past the marker, to the end of its log.
	offsets := map[string]map[int32]kgo.EpochOffset{}
	r.offsets(offsets)
	if offsets["a"][0].Offset != 1 || offsets["b"][0].Offset != 2 {
		t.Errorf("offsets to commit = %v, want a at 1 and b at 2 (past the marker)", offsets)
	}
}

// The waits for several partitions run at the same time: three partitions
// that no fetch returns hold the task back maxFetchWait, not three times
// that.
func TestRunnerWaitsForPartitionsTogether(t *testing.T) {
	r, _, seen := seenRunner(t, "a", "b", "c", "d")
	for _, topic := range []string{"a", "b", "c", "d"} {
		r.queue(topic, 0)
	}
	start := time.Now()
	r.add("a", 0, []*kgo.Record{{Topic: "a", Offset: 0, Timestamp: time.UnixMilli(1), Key: []byte("k"), Value: []byte("a0")}}, 1)
	if err := r.process(start); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 0 {
		t.Fatalf("processed %v while b, c and d are unknown", *seen)
	}
	if err := r.process(start.Add(maxFetchWait)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a0"}; !slices.Equal(*seen, want) {
		t.Errorf("after maxFetchWait: processed %v, want %v", *seen, want)
	}
}

// seenRunner returns a runner of a task that reads topics (String keys and
// values) and appends each value it processes to *seen.
func seenRunner(t *testing.T, topics ...string) (*runner, *task.Task, *[]string) {
	t.Helper()
	b := dsl.NewBuilder()
	seen := new([]string)
	dsl.FromTopics(b, topics, serde.String, serde.String).
		Foreach(func(_, v string) { *seen = append(*seen, v) })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: nopCollector{}})
	if err != nil {
		t.Fatal(err)
	}
	return &runner{task: tk}, tk, seen
}

// Under exactly-once (read committed) a partition's end is its last stable
// offset: with another producer's transaction open from offset 2 of b, a
// fetch that brought b's committed records 0 and 1 has caught up, and the
// task goes on with a at once; with the high watermark (5) as the end it
// would wait maxFetchWait for records a read_committed fetch cannot get
// before the transaction ends.
func TestRunnerEndIsLastStableOffsetUnderReadCommitted(t *testing.T) {
	rec := func(topic string, off, ts int64, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte("k"), Value: []byte(v)}
	}
	fetch := func(topic string, recs ...*kgo.Record) kgo.FetchTopicPartition {
		return kgo.FetchTopicPartition{Topic: topic, FetchPartition: kgo.FetchPartition{
			Partition: 0, Records: recs, HighWatermark: 5, LastStableOffset: 2,
		}}
	}
	for _, readCommitted := range []bool{true, false} {
		r, _, seen := seenRunner(t, "a", "b")
		for _, p := range []kgo.FetchTopicPartition{
			fetch("a", rec("a", 0, 10, "a10"), rec("a", 1, 30, "a30")),
			fetch("b", rec("b", 0, 20, "b20"), rec("b", 1, 25, "b25")),
		} {
			r.add(p.Topic, p.Partition, p.Records, fetchEnd(p, readCommitted))
		}
		if err := r.process(time.Now()); err != nil {
			t.Fatal(err)
		}
		want := []string{"a10", "b20", "b25"} // a30 waits for b's offset 2
		if readCommitted {
			want = append(want, "a30")
		}
		if !slices.Equal(*seen, want) {
			t.Errorf("readCommitted=%v: processed %v, want %v", readCommitted, *seen, want)
		}
	}
	if end := fetchEnd(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Err: kgo.ErrClientClosed, HighWatermark: 5}}, true); end != -1 {
		t.Errorf("end of a failed fetch = %d, want -1", end)
	}
}
