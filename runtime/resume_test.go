package runtime

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/serde"
)

// A resume offset recorded for an earlier assignment of a partition and
// never used (franz-go cancels a session's offset fetch, and with it the
// call of adjustOffsets, when the session ends first; the task was then
// revoked while it restored) does not survive the next assignment: the
// task starts where the group committed, not at the stale offset, which
// would skip the input between.
func TestStaleResumeOffsetDoesNotSkipInput(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(topo, ApplicationID("app"), Brokers("localhost:9092"), StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	a.runCtx = context.Background()
	a.layout = &layout{topics: map[int][]string{0: {"in"}}}
	tp := topicPartition{"in", 0}

	// The earlier assignment: local state at 100, the group at 80.
	a.resume[tp] = 100
	// The next: the group committed 90 (another instance processed the
	// task meanwhile, and this one's local state was discarded).
	r, err := a.openRunnerLocked(context.Background(), taskID{0, 0}, map[topicPartition]int64{tp: 90})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.st.close() }()
	got, err := a.adjustOffsets(context.Background(), map[string]map[int32]kgo.Offset{"in": {0: kgo.NewOffset().At(90)}})
	if err != nil {
		t.Fatal(err)
	}
	if off := got["in"][0].EpochOffset().Offset; off != 90 {
		t.Fatalf("topic in partition 0 starts at %d, want the committed offset 90", off)
	}
}

// A task whose local state is past the group's committed offset resumes
// there, and its next commit moves the group's offset there even if no
// record arrives: otherwise the group's offset stays behind (lag, and a
// later instance without the state would start from the older offset).
func TestResumePastCommittedIsCommitted(t *testing.T) {
	// The input topic holds 120 records, so that a local state at 100
	// matches the broker.
	c := kafkatest.New(t)
	in := kafkatest.Topic(t, "in")
	c.Create(t, 1, in)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, in, serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	for i := range 120 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(topo, ApplicationID("app"), Brokers(c.Brokers...), StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	a.admin = admin
	a.appDir = t.TempDir()
	a.runCtx = context.Background()
	a.layout = &layout{topics: map[int][]string{0: {in}}}
	tp := topicPartition{in, 0}
	id := taskID{0, 0}

	// The local state reflects the input up to offset 100.
	ts, err := a.openTaskState(id, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.db.PutMeta(metaPositions, encodePositions(map[topicPartition]int64{tp: 100})); err != nil {
		t.Fatal(err)
	}
	if err := ts.close(); err != nil {
		t.Fatal(err)
	}

	// The group committed 80.
	r, err := a.openRunnerLocked(context.Background(), id, map[topicPartition]int64{tp: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.st.close() }()
	got, err := a.adjustOffsets(context.Background(), map[string]map[int32]kgo.Offset{in: {0: kgo.NewOffset().At(80)}})
	if err != nil {
		t.Fatal(err)
	}
	if off := got[in][0].EpochOffset().Offset; off != 100 {
		t.Fatalf("topic in partition 0 starts at %d, want the local state's 100", off)
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	r.offsets(offsets)
	if off, ok := offsets[in][0]; !ok || off.Offset != 100 || off.Epoch != -1 {
		t.Fatalf("offsets to commit before any record = %v, want in/0 at 100, epoch -1 (no record tells it; franz-go validates any other)", offsets)
	}
}
