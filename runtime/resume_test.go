package runtime

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
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
