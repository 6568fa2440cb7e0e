package runtime

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// A sliding aggregation whose processor metadata is missing (a task
// restored on an instance without its local state, or after the state
// directory was deleted) takes its window store's observed stream time,
// which comes back with the restored entries, as a lower bound, as
// WindowAggregate and SessionAggregate do. Starting from -1 instead, the
// first record late by more than TimeDifference + Grace would not be
// dropped as late: its write would hit a window the store has expired,
// WindowStore.Put would return ErrWindowExpired, and the task would fail
// on it, again after every restart.
func TestSlidingAfterRestoreWithoutMetadata(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	dsl.WindowedBySliding(g, window.Sliding{TimeDifference: 10 * time.Second}).Count(dsl.Named("n")).
		ToStream().To("out", window.TimeKeySerde(serde.String, 10*time.Second), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	bases := map[string]state.KeyValueStore{}
	newTask := func() *task.Task {
		tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: nopCollector{},
			OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
				if bases[spec.Name] == nil {
					bases[spec.Name] = state.NewInMemoryKeyValueStore(spec.Name)
				}
				return reopened{bases[spec.Name]}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	rec := func(off int64, ts int64) *kgo.Record {
		return &kgo.Record{Topic: "in", Offset: off, Timestamp: time.UnixMilli(ts), Key: []byte("k"), Value: []byte("v")}
	}
	r := &runner{task: newTask()}
	r.add("in", 0, []*kgo.Record{rec(0, 1_000_000), rec(1, 1_005_000)}, -1)
	if err := r.process(time.Now()); err != nil {
		t.Fatal(err)
	}
	// The task again over the same store entries, without its metadata (as
	// after a restore on another instance); a record late by a minute.
	r = &runner{task: newTask()}
	r.add("in", 0, []*kgo.Record{rec(2, 940_000)}, -1)
	if err := r.process(time.Now()); err != nil {
		t.Errorf("a late record after a restore without processor metadata: %v (want it dropped as late)", err)
	}
}

// reopened is a view of a store whose Close leaves the entries, as a
// Pebble store's view does.
type reopened struct{ state.KeyValueStore }

func (reopened) Close() error { return nil }
