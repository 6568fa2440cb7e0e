package task_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// finalOutput collects the windows a suppressed windowed count writes:
// "key@start=count".
type finalOutput struct{ sent []string }

func (o *finalOutput) Send(_ string, _ int32, key, value []byte, _ []operators.Header, _ int64) error {
	k, err := window.TimeKeySerde(serde.String, 10*time.Second).Decode(key)
	if err != nil {
		return err
	}
	v := "<tombstone>"
	if value != nil {
		v = fmt.Sprint(int64(binary.BigEndian.Uint64(value)))
	}
	o.sent = append(o.sent, fmt.Sprintf("%s@%d=%s", k.Key, k.Window.Start, v))
	return nil
}

// The commit protocol, played out with one task of a suppressed windowed
// count and a crash at every point of its input: the task processes
// records from the committed offset, flushing its stores (record cache
// into the changelogs) and committing every 3 records; the crash comes
// after a record's outputs are written, either before the next flush or
// after it but before its commit. The restarted task restores every store
// from its changelog without the records of the incomplete commit (the
// runtime skips them by their input position), with no processor metadata
// (the task moved), and processes the input again from the committed
// offset. Whatever the crash point, every closed window is written, and
// every time with its exact count.
func TestSuppressCrashAtEveryPoint(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(10*time.Second, 0)).
		Count(dsl.Named("counts")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To("out", window.TimeKeySerde(serde.String, 10*time.Second), serde.Int64)
	topo, err := b.Build()
	ok(t, err)
	st := topo.SubTopologies()[0]
	type rec struct {
		key string
		ts  int64
	}
	input := []rec{{"a", 1000}, {"b", 2000}, {"a", 9000}, {"a", 12_000}, {"b", 5000}, {"b", 15_000}, {"a", 19_000},
		{"c", 21_000}, {"a", 25_000}, {"b", 28_000}, {"c", 33_000}, {"a", 41_000}}
	// The oracle: the windows closed by the last record, with their counts;
	// a record for a window already closed (its end reached by stream
	// time: b at 5000) is late and not counted.
	want := map[string]string{}
	counts := map[string]int{}
	var streamTime int64
	for _, r := range input {
		streamTime = max(streamTime, r.ts)
		if start := r.ts / 10_000 * 10_000; start+10_000 > streamTime {
			counts[fmt.Sprintf("%s@%d", r.key, start)]++
		}
	}
	for w, n := range counts {
		var key string
		var start int64
		_, err := fmt.Sscanf(strings.Replace(w, "@", " ", 1), "%s %d", &key, &start)
		ok(t, err)
		if start+10_000 <= streamTime {
			want[w] = fmt.Sprint(n)
		}
	}
	const commitEvery = 3
	for crashAt := range input {
		for _, afterFlush := range []bool{false, true} {
			t.Run(fmt.Sprintf("crash after record %d, flushed %v", crashAt, afterFlush), func(t *testing.T) {
				out := &finalOutput{}
				var logged changelogs
				committed := 0
				// start opens a task on stores restored from the records
				// of the changelogs that committed input caused.
				start := func() *task.Task {
					tk, err := task.New(task.Config{ApplicationID: "app", SubTopology: st, Collector: out, Changelog: &logged,
						Cache: state.NewCache(1 << 20),
						OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
							kv := state.NewInMemoryKeyValueStore(spec.Name)
							rs, err := task.NewChangelogRestorer(spec, kv, nil, nil)
							if err != nil {
								return nil, err
							}
							for _, r := range logged {
								if r.topic != task.ChangelogTopic("app", spec) {
									continue
								}
								var off int64 = -1
								for _, h := range r.headers {
									if h.Key == task.InputHeader {
										_, _, off, _ = task.ParseInputPosition(h.Value)
									}
								}
								if off >= int64(committed) {
									continue // an incomplete commit's
								}
								if err := rs.Apply(r.key, r.value, r.ts); err != nil {
									return nil, err
								}
							}
							return kv, nil
						}})
					ok(t, err)
					return tk
				}
				process := func(tk *task.Task, i int) {
					ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: int64(i), Timestamp: input[i].ts,
						Key: []byte(input[i].key), Value: []byte("v")}))
				}
				commit := func(tk *task.Task, next int) {
					ok(t, tk.Flush())
					committed = next
				}
				tk := start()
				for i := 0; i <= crashAt; i++ {
					process(tk, i)
					if i == crashAt {
						break
					}
					if (i+1)%commitEvery == 0 {
						commit(tk, i+1)
					}
				}
				if afterFlush {
					ok(t, tk.Flush()) // flushed, the offsets not committed
				}
				// kill -9: the task's memory is gone, what it wrote stays.
				tk = start()
				for i := committed; i < len(input); i++ {
					process(tk, i)
					if (i+1)%commitEvery == 0 {
						commit(tk, i+1)
					}
				}
				commit(tk, len(input))
				ok(t, tk.Close())
				got := map[string]string{}
				for _, s := range out.sent {
					var k, v string
					for j := range s {
						if s[j] == '=' {
							k, v = s[:j], s[j+1:]
							break
						}
					}
					if prev, seen := got[k]; seen && prev != v {
						t.Errorf("window %s written as %s and as %s", k, prev, v)
					}
					got[k] = v
				}
				if !maps.Equal(got, want) {
					t.Errorf("windows written %v\n want %v\n (all output: %v)", got, want, out.sent)
				}
				if len(out.sent) < len(want) || len(slices.Compact(slices.Clone(out.sent))) > len(out.sent) {
					t.Errorf("output %v", out.sent)
				}
			})
		}
	}
}
