package runtime

import (
	"errors"
	"fmt"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
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

// eachTask calls f for 0..n-1, one after the other or, with parallel, on
// at most GOMAXPROCS goroutines (the variant BenchmarkCommitLocalState
// compares commitLocalState's sequential commits with), and joins the
// errors.
func eachTask(n int, parallel bool, f func(i int) error) error {
	workers := min(goruntime.GOMAXPROCS(0), n)
	if !parallel || workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkCommitLocalState measures one commit round of the local state
// of 8 and 32 tasks, 200 or 2000 changed keys each (100-byte values):
// durable (at-least-once: each DB synced) against not durable
// (exactly-once: no sync), each with the tasks one after the other (what
// commitLocalState does) and in parallel over GOMAXPROCS goroutines. The
// figures and the decision are in docs/state.md.
func BenchmarkCommitLocalState(b *testing.B) {
	value := make([]byte, 100)
	for _, tk := range []struct{ tasks, keys int }{{8, 200}, {32, 200}, {32, 2000}} {
		tasks, keys := tk.tasks, tk.keys
		for _, mode := range []struct {
			name              string
			durable, parallel bool
		}{
			{"sync-sequential", true, false},
			{"sync-parallel", true, true},
			{"nosync-sequential", false, false},
			{"nosync-parallel", false, true},
		} {
			b.Run(fmt.Sprintf("tasks=%d/keys=%d/%s", tasks, keys, mode.name), func(b *testing.B) {
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
