package task_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// The next record is the head with the smallest event time across the
// task's partitions, the partition added first on a tie; the source's
// timestamp extractor decides a record's event time.
func TestPartitionGroupChoosesByHeadEventTime(t *testing.T) {
	b := dsl.NewBuilder()
	// The event time is in the value; the Kafka timestamp is ignored.
	extract := dsl.Timestamps(func(_ dsl.Maybe[string], v dsl.Maybe[int64], _ []operators.Header, _ int64) int64 { return v.Or(-1) })
	s := dsl.FromTopics(b, []string{"x", "y"}, serde.String, serde.Int64, extract)
	s.To("out", nil, nil)
	topo, err := b.Build()
	ok(t, err)
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: &rig{}})
	ok(t, err)
	defer tk.Close()

	type rec struct {
		topic string
		ts    int64
	}
	var g task.PartitionGroup[rec]
	g.Raw = func(r rec, raw *operators.RawRecord) {
		v, _ := serde.Int64.Encode(nil, r.ts)
		*raw = operators.RawRecord{Topic: r.topic, Key: []byte("k"), Value: v, Timestamp: 1_000_000 - r.ts}
	}
	x, y := g.Queue("x", 0), g.Queue("y", 0)
	if again := g.Queue("x", 0); again != x || x == y {
		t.Fatalf("queue indexes x=%d (again %d), y=%d", x, again, y)
	}
	g.Add(x, rec{"x", 5}, rec{"x", 1}, rec{"x", 7})
	g.Add(y, rec{"y", 3}, rec{"y", 5}, rec{"y", 6})
	var got []string
	take := func(n int) {
		for range n {
			i, r, more := g.Next(tk)
			if !more {
				got = append(got, "none")
				return
			}
			if (i == x) != (r.topic == "x") {
				t.Fatalf("record of %s returned with queue index %d", r.topic, i)
			}
			got = append(got, fmt.Sprintf("%s%d", r.topic, r.ts))
		}
	}
	take(4)
	// x5 waits behind y3; then the tie of x5 and y5 goes to x, the
	// partition added first; x1 follows as x's head, however old.
	want(t, "first four", got, []string{"y3", "x5", "x1", "y5"})
	g.Reset()
	if n := g.Len(); n != 2 {
		t.Fatalf("%d records queued after Reset, want the 2 not taken", n)
	}
	g.Add(y, rec{"y", 2})
	got = nil
	take(4)
	want(t, "after Reset", got, []string{"y6", "y2", "x7", "none"})
}
