package runtime

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// benchTaskStates opens n task states, each with a Pebble DB buffering its
// writes in t's temporary directory, closed when t ends.
func benchTaskStates(tb testing.TB, n int) []*taskState {
	tb.Helper()
	dir := tb.TempDir()
	sts := make([]*taskState, n)
	for i := range sts {
		db, err := state.OpenPebble(filepath.Join(dir, strconv.Itoa(i)), state.PebbleOptions{BufferWrites: true})
		if err != nil {
			tb.Fatal(err)
		}
		ts := &taskState{dir: filepath.Join(dir, strconv.Itoa(i)), db: db, positions: map[topicPartition]int64{},
			checkpoint: map[state.TopicPartition]int64{},
			changelogs: []state.TopicPartition{{Topic: "app-counts-changelog", Partition: int32(i)}}}
		sts[i] = ts
		tb.Cleanup(func() { _ = ts.close() })
	}
	return sts
}

// BenchmarkCommitLocalState measures one commit round of the local state
// of 8 and 32 tasks, 200 changed keys each (100-byte values): durable
// (at-least-once: each DB synced, one after the other) against not
// durable (exactly-once: no sync, the tasks in parallel), and the two
// other combinations for comparison. The figures and the decision are in
// docs/state.md.
func BenchmarkCommitLocalState(b *testing.B) {
	const keys = 200
	value := make([]byte, 100)
	for _, tasks := range []int{8, 32} {
		for _, mode := range []struct {
			name              string
			durable, parallel bool
		}{
			{"sync-sequential", true, false},
			{"sync-parallel", true, true},
			{"nosync-sequential", false, false},
			{"nosync-parallel", false, true},
		} {
			b.Run(fmt.Sprintf("tasks=%d/%s", tasks, mode.name), func(b *testing.B) {
				sts := benchTaskStates(b, tasks)
				kvs := make([]state.KeyValueStore, tasks)
				for i, ts := range sts {
					kvs[i] = ts.db.KeyValueStore("counts")
				}
				round := 0
				for b.Loop() {
					b.StopTimer()
					round++
					for i, kv := range kvs {
						for k := range keys {
							if err := kv.Put([]byte(fmt.Sprintf("key-%d-%d", i, (round*keys+k)%100000)), value); err != nil {
								b.Fatal(err)
							}
						}
					}
					ends := map[state.TopicPartition]int64{}
					for _, ts := range sts {
						ends[ts.changelogs[0]] = int64(round * keys)
					}
					b.StartTimer()
					err := eachTask(tasks, mode.parallel, func(i int) error {
						in := topicPartition{"input", int32(i)}
						return sts[i].commitLocal(map[topicPartition]int64{in: int64(round * keys)}, nil, ends, mode.durable)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/round")
			})
		}
	}
}
