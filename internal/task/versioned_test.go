package task_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// textSink collects what the sinks write, as "topic key=value@ts".
type textSink struct{ sent []string }

func (c *textSink) Send(topic string, _ int32, key, value []byte, _ []operators.Header, ts int64) error {
	c.sent = append(c.sent, fmt.Sprintf("%s %s=%s@%d", topic, key, value, ts))
	return nil
}

// versionedTopology is a versioned table ("users", history 1 minute) that
// a stream joins with a grace of 10 ms ("enrich", buffer "enrich-Buffer").
func versionedTopology(t *testing.T) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Minute}))
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.JoinTable(clicks, users, func(_, c, u string) string { return c + "@" + u }, dsl.JoinGrace(10*time.Millisecond), dsl.Named("enrich")).
		To("out", serde.String, serde.String)
	topo, err := b.Build()
	ok(t, err)
	return topo
}

// A versioned store's changelog is Kafka Streams': one record per version
// written, keyed by the key, with the value alone and the version's
// timestamp, a tombstone for a delete, an out-of-order version too; it is
// neither cached nor compacted by the record cache. The grace buffer logs
// each buffered record and a tombstone when it leaves. Restoring both
// through ChangelogRestorer gives back the very entries the bases hold.
func TestVersionedChangelogRestoresWhatWasLogged(t *testing.T) {
	topo := versionedTopology(t)
	var logged changelogs
	bases := map[string]state.KeyValueStore{}
	r := &textSink{}
	tk, err := task.New(task.Config{
		ApplicationID: "app",
		SubTopology:   topo.SubTopologies()[0],
		Partition:     2,
		Collector:     r,
		OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
			bases[spec.Name] = state.NewInMemoryKeyValueStore(spec.Name)
			return bases[spec.Name], nil
		},
		Changelog: &logged,
		Cache:     state.NewCache(1 << 20), // not used by either store
	})
	ok(t, err)
	defer tk.Close()
	in := []struct {
		topic, key, value string
		ts                int64
	}{
		{"users", "u1", "eu", 100}, {"users", "u1", "us", 200}, {"users", "u1", "asia", 150}, // out of order
		{"clicks", "u1", "c1", 160}, {"clicks", "u1", "c2", 205}, {"users", "u1", "", 300}, // a tombstone
		{"clicks", "u2", "c3", 190}, {"clicks", "u1", "c4", 230},
	}
	for i, rec := range in {
		raw := &operators.RawRecord{Topic: rec.topic, Partition: 2, Offset: int64(i), Timestamp: rec.ts, Key: []byte(rec.key)}
		if rec.value != "" {
			raw.Value = []byte(rec.value)
		}
		ok(t, tk.Process(raw))
	}
	ok(t, tk.Flush())
	// c1@160 is released by c2@205 (205 - 10 >= 160), c2 by c4@230; each
	// sees the table as of its time: c1 the version of 150, c2 that of 200
	// though u1 was deleted at 300 while it waited. c3@190 is older than
	// stream time minus the grace: joined at once, but u2 has no row.
	want(t, "output", r.sent, []string{"out u1=c1@asia@160", "out u1=c2@us@205"})

	var versions []string
	for _, rec := range logged {
		if rec.topic != "app-users-changelog" {
			continue
		}
		v := string(rec.value)
		if rec.value == nil {
			v = "<tombstone>"
		}
		if len(rec.headers) != 1 || rec.headers[0].Key != task.InputHeader {
			t.Errorf("changelog record %s=%s has headers %v, want the input position", rec.key, v, rec.headers)
		}
		versions = append(versions, fmt.Sprintf("%s=%s@%d", rec.key, v, rec.ts))
	}
	want(t, "versioned changelog", versions, []string{"u1=eu@100", "u1=us@200", "u1=asia@150", "u1=<tombstone>@300"})

	for _, spec := range topo.SubTopologies()[0].Stores {
		topic := task.ChangelogTopic("app", spec)
		restored := state.NewInMemoryKeyValueStore(spec.Name)
		rs, err := task.NewChangelogRestorer(spec, restored, nil, nil)
		ok(t, err)
		n := 0
		for _, rec := range logged {
			if rec.topic == topic {
				n++
				ok(t, rs.Apply(rec.key, rec.value, rec.ts))
			}
		}
		if n == 0 {
			t.Fatalf("store %s logged nothing", spec.Name)
		}
		if got, want := dump(restored), dump(bases[spec.Name]); !slices.Equal(got, want) {
			t.Errorf("store %s (%v) restored from %d changelog records:\n got  %v\n want %v", spec.Name, spec.Kind, n, got, want)
		}
	}
	var buffer int
	for _, rec := range logged {
		if rec.topic == "app-enrich-Buffer-changelog" {
			buffer++
		}
	}
	// c1, c2 and c4 buffered, c1 and c2 released (tombstones); c3 came
	// later than the grace allows and was joined at once.
	if buffer != 5 {
		t.Errorf("the buffer logged %d records, want 5 (3 buffered, 2 released)", buffer)
	}
}

// A task that starts on restored stores carries on as the first one
// would have: the waiting records come out with the versions of their time
// (the buffer's stream time is read back from what it holds).
func TestVersionedJoinResumesOnRestoredStores(t *testing.T) {
	topo := versionedTopology(t)
	run := func(bases map[string]state.KeyValueStore, logged *changelogs, from, to int, in []operators.RawRecord) []string {
		r := &textSink{}
		tk, err := task.New(task.Config{
			ApplicationID: "app", SubTopology: topo.SubTopologies()[0], Collector: r, Changelog: logged,
			OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
				if bases[spec.Name] == nil {
					bases[spec.Name] = state.NewInMemoryKeyValueStore(spec.Name)
				}
				return bases[spec.Name], nil
			},
		})
		ok(t, err)
		for i := from; i < to; i++ {
			ok(t, tk.Process(&in[i]))
		}
		ok(t, tk.Flush())
		ok(t, tk.Close())
		return r.sent
	}
	rec := func(topic, key, value string, ts int64) operators.RawRecord {
		return operators.RawRecord{Topic: topic, Key: []byte(key), Value: []byte(value), Timestamp: ts}
	}
	in := []operators.RawRecord{
		rec("users", "a", "A1", 10), rec("clicks", "a", "x", 15), rec("clicks", "b", "y", 40), rec("users", "a", "A2", 12),
		rec("users", "b", "B", 30), rec("clicks", "a", "late", 20), rec("clicks", "a", "z", 60),
	}
	for i := range in {
		in[i].Offset = int64(i)
	}
	whole := run(map[string]state.KeyValueStore{}, &changelogs{}, 0, len(in), in)
	for cut := 1; cut < len(in); cut++ {
		var logged changelogs
		first := run(map[string]state.KeyValueStore{}, &logged, 0, cut, in)
		restored := map[string]state.KeyValueStore{}
		for _, spec := range topo.SubTopologies()[0].Stores {
			restored[spec.Name] = state.NewInMemoryKeyValueStore(spec.Name)
			rs, err := task.NewChangelogRestorer(spec, restored[spec.Name], nil, nil)
			ok(t, err)
			for _, r := range logged {
				if r.topic == task.ChangelogTopic("app", spec) {
					ok(t, rs.Apply(r.key, r.value, r.ts))
				}
			}
		}
		second := run(restored, &changelogs{}, cut, len(in), in)
		if got := append(first, second...); !slices.Equal(got, whole) {
			t.Errorf("moved after %d records:\n got  %q\n want %q", cut, got, whole)
		}
	}
	// x@15 is released by y@40, before A2@12 arrives; late@20 is joined
	// at once (40 - 10 > 20) and sees A2; y@40 is released by z@60.
	want(t, "uninterrupted", whole, []string{"out a=x@A1@15", "out a=late@A2@20", "out b=y@B@40"})
}
