package task_test

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
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

// changelogRecord is one record a store logged.
type changelogRecord struct {
	topic      string
	partition  int32
	key, value []byte
	headers    []operators.Header
	ts         int64
}

type changelogs []changelogRecord

func (c *changelogs) WriteChangelog(topic string, partition int32, key, value []byte, headers []operators.Header, ts int64) error {
	r := changelogRecord{topic: topic, partition: partition, key: bytes.Clone(key), value: bytes.Clone(value), ts: ts}
	for _, h := range headers {
		r.headers = append(r.headers, operators.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	*c = append(*c, r)
	return nil
}

func dump(kv state.KeyValueStore) []string {
	var out []string
	for k, v := range kv.Range(nil, nil) {
		out = append(out, fmt.Sprintf("%x=%x", k, v))
	}
	return out
}

// countTask opens the task of a count per key of topic "in" (string keys,
// store "counts") with cfg's changelog settings, logging to logged.
func countTask(t *testing.T, cfg task.Config, logged *changelogs) *task.Task {
	t.Helper()
	return loggedTask(t, func(b *dsl.Builder) {
		dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	}, cfg, logged)
}

// loggedTask opens the task of the first sub-topology build makes, of
// application "app", with cfg's other settings, logging to logged.
func loggedTask(t *testing.T, build func(b *dsl.Builder), cfg task.Config, logged *changelogs) *task.Task {
	t.Helper()
	b := dsl.NewBuilder()
	build(b)
	topo, err := b.Build()
	ok(t, err)
	cfg.ApplicationID, cfg.SubTopology, cfg.Collector, cfg.Changelog = "app", topo.SubTopologies()[0], &rig{}, logged
	tk, err := task.New(cfg)
	ok(t, err)
	return tk
}

// counts describes the records of a count's changelog as
// "key=count@timestamp from offset o" (o from the input header).
func (c changelogs) counts(t *testing.T) []string {
	t.Helper()
	var got []string
	for _, r := range c {
		_, _, off, _ := task.ParseInputPosition(r.header(task.InputHeader))
		if r.value == nil {
			got = append(got, fmt.Sprintf("%s=<tombstone>@%d from offset %d", r.key, r.ts, off))
			continue
		}
		n, err := serde.Int64.Decode(r.value)
		ok(t, err)
		got = append(got, fmt.Sprintf("%s=%d@%d from offset %d", r.key, n, r.ts, off))
	}
	return got
}

// header returns the value of the record's header key, nil without one.
func (r changelogRecord) header(key string) []byte {
	for _, h := range r.headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// unconfirmed reports whether a restore skips r: its input position is at
// or past its topic's committed offset (the runtime's taskState.confirmed).
func (r changelogRecord) unconfirmed(committed map[string]int64) bool {
	h := r.header(task.InputHeader)
	if h == nil {
		return false
	}
	topic, _, off, _ := task.ParseInputPosition(h)
	return off >= committed[topic]
}

// What the store stack logs restores, through ChangelogRestorer, to the
// very entries the stores' bases hold: key-value (timestamped), window and
// session stores, with a record cache in front or not (without one, the
// session aggregation's merges log tombstones; with one, a session created
// and merged away between two flushes never reaches the store or its
// changelog).
// The same with the changelog buffer (Config.ChangelogBuffer), large and
// small enough to log before the flush.
func TestChangelogRestoresWhatWasLogged(t *testing.T) {
	for _, mode := range []struct {
		cached bool
		buffer int
	}{{false, 0}, {true, 0}, {false, 1 << 20}, {false, 300}} {
		cached := mode.cached
		t.Run(fmt.Sprintf("cache=%v/buffer=%d", cached, mode.buffer), func(t *testing.T) {
			b := dsl.NewBuilder()
			g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
			g.Count(dsl.Named("counts"))
			dsl.WindowedBy(g, window.Tumbling(10*time.Second, 0)).Count(dsl.Named("windows"))
			dsl.WindowedBySession(g, window.Session{Gap: 5 * time.Second}).Count(dsl.Named("sessions"))
			topo, err := b.Build()
			ok(t, err)
			var logged changelogs
			bases := map[string]state.KeyValueStore{}
			cfg := task.Config{
				ApplicationID: "app",
				SubTopology:   topo.SubTopologies()[0],
				Partition:     3,
				Collector:     &rig{},
				OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
					bases[spec.Name] = state.NewInMemoryKeyValueStore(spec.Name)
					return bases[spec.Name], nil
				},
				Changelog:       &logged,
				ChangelogBuffer: mode.buffer,
			}
			if cached {
				cfg.Cache = state.NewCache(1 << 20)
			}
			tk, err := task.New(cfg)
			ok(t, err)
			defer tk.Close()
			recs := []struct {
				key string
				ts  int64
			}{{"a", 1000}, {"b", 2000}, {"a", 9000}, {"a", 4000}, {"a", 12_000}, {"b", 30_000}, {"a", 6500}}
			for i, r := range recs {
				ok(t, tk.Process(&operators.RawRecord{Topic: "in", Partition: 3, Offset: int64(i), Timestamp: r.ts,
					Key: []byte(r.key), Value: []byte("v")}))
			}
			ok(t, tk.Flush())
			for _, spec := range topo.SubTopologies()[0].Stores {
				topic := task.ChangelogTopic("app", spec)
				if want := "app-" + spec.Name + "-changelog"; topic != want {
					t.Errorf("changelog topic of %s: %s, want %s", spec.Name, topic, want)
				}
				restored := state.NewInMemoryKeyValueStore(spec.Name)
				rs, err := task.NewChangelogRestorer(spec, restored, nil, nil)
				ok(t, err)
				n, tombstones := 0, 0
				for _, r := range logged {
					if r.topic != topic {
						continue
					}
					if r.partition != 3 {
						t.Errorf("%s: a record on partition %d, want the task's, 3", topic, r.partition)
					}
					n++
					if r.value == nil {
						tombstones++
					}
					ok(t, rs.Apply(r.key, r.value, r.ts))
				}
				if n == 0 {
					t.Fatalf("store %s logged nothing", spec.Name)
				}
				if spec.Kind == topology.Session && !cached && tombstones == 0 {
					t.Errorf("the session store logged no tombstone though sessions merged")
				}
				got, want := dump(restored), dump(bases[spec.Name])
				if !slices.Equal(got, want) {
					t.Errorf("store %s restored from %d changelog records:\n got  %v\n want %v", spec.Name, n, got, want)
				}
			}
		})
	}
}

// The record cache compacts the changelog as it compacts the output: one
// record per key and commit.
func TestCachedStoreLogsOncePerFlush(t *testing.T) {
	var logged changelogs
	tk := countTask(t, task.Config{Cache: state.NewCache(1 << 20)}, &logged)
	defer tk.Close()
	for i, k := range []string{"a", "a", "b", "a"} {
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: int64(i), Timestamp: int64(10 * (i + 1)), Key: []byte(k), Value: []byte("v")}))
	}
	if len(logged) != 0 {
		t.Fatalf("%d changelog records before the flush, want 0", len(logged))
	}
	ok(t, tk.Flush())
	// Each record names the last input record processed before the flush:
	// the flush happens after it.
	want(t, "changelog", logged.counts(t), []string{"b=1@30 from offset 3", "a=3@40 from offset 3"})
}

// Store specs that disable logging or caching get neither.
func TestStoreStackHonoursSpec(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().
		Count(dsl.Materialized(dsl.StoreOptions{Name: "plain", DisableLogging: true, DisableCaching: true}))
	topo, err := b.Build()
	ok(t, err)
	var logged changelogs
	tk, err := task.New(task.Config{SubTopology: topo.SubTopologies()[0], Collector: &rig{},
		Changelog: &logged, Cache: state.NewCache(1 << 20)})
	ok(t, err)
	defer tk.Close()
	if _, isCache := tk.Store("plain").(*state.CachingStore); isCache {
		t.Error("a store with caching disabled has a record cache")
	}
	ok(t, tk.Process(&operators.RawRecord{Topic: "in", Key: []byte("a"), Value: []byte("v")}))
	ok(t, tk.Flush())
	if len(logged) != 0 {
		t.Errorf("a store with logging disabled logged %d records", len(logged))
	}
}

func FuzzParseInputPosition(f *testing.F) {
	f.Add(task.AppendInputPosition(nil, "in", 3, 42))
	f.Add([]byte{})
	f.Add(make([]byte, 11))
	f.Fuzz(func(t *testing.T, b []byte) {
		topic, p, off, ok := task.ParseInputPosition(b)
		if !ok {
			if len(b) >= 12 {
				t.Fatalf("%x: refused a value of %d bytes", b, len(b))
			}
			return
		}
		if again := task.AppendInputPosition(nil, topic, p, off); !bytes.Equal(again, b) {
			t.Fatalf("%x parsed to (%q, %d, %d), which encodes to %x", b, topic, p, off, again)
		}
	})
}

// With the changelog buffer a store logs the latest write of each key at
// the task's flush (or earlier when the buffer is full), and what it logs
// restores what the runtime's restore must: the state as of the last
// commit whose offsets moved, after a crash that left the records of later
// flushes (and early ones of a full buffer) in the changelog. The restore
// skips each record whose input position the committed offsets do not
// cover, as the runtime's does (taskState.confirmed). Input from two
// topics, random keys, random commit points; a model count per key.
//
// The store below is in memory, or a Pebble DB that buffers its writes
// with a cache of recent writes so small that it evicts all the time:
// the buffer then finds keys through the cache's slots (state.SlotPutter),
// which the evictions and the buffer's resets make stale.
func TestChangelogBufferRestoresLastCommit(t *testing.T) {
	for _, base := range []string{"memory", "pebble"} {
		for _, buffer := range []int{0, 1 << 20, 400} {
			t.Run(fmt.Sprintf("%s/buffer=%d", base, buffer), func(t *testing.T) {
				testChangelogBufferRestores(t, base, buffer)
			})
		}
	}
}

func testChangelogBufferRestores(t *testing.T, base string, buffer int) {
	for seed := range int64(20) {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(buffer)))
		var logged changelogs
		var spec *topology.StoreSpec
		open := func(s *topology.StoreSpec) (state.KeyValueStore, error) {
			spec = s
			if base == "memory" {
				return state.NewInMemoryKeyValueStore(s.Name), nil
			}
			db, err := state.OpenPebble(t.TempDir(), state.PebbleOptions{BufferWrites: true, RecentBytes: 1000})
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { db.Close() })
			return db.KeyValueStore(s.Name), nil
		}
		tk := loggedTask(t, func(b *dsl.Builder) {
			dsl.FromTopic(b, "x", serde.String, serde.String).
				Merge(dsl.FromTopic(b, "y", serde.String, serde.String)).
				GroupByKey().Count(dsl.Named("counts"))
		}, task.Config{ChangelogBuffer: buffer, OpenBase: open}, &logged)
		next := map[string]int64{}      // next offset per topic
		committed := map[string]int64{} // committed offset per topic
		type in struct {
			topic, key string
			off        int64
		}
		var input []in
		early := 0
		for range 40 + rng.IntN(200) {
			topic := []string{"x", "y"}[rng.IntN(2)]
			k := fmt.Sprintf("k%d", rng.IntN(12))
			before := len(logged)
			ok(t, tk.Process(&operators.RawRecord{Topic: topic, Offset: next[topic], Timestamp: 1000,
				Key: []byte(k), Value: []byte("v")}))
			if buffer > 0 && len(logged) > before {
				early++
			}
			input = append(input, in{topic, k, next[topic]})
			next[topic]++
			if rng.IntN(10) == 0 {
				// A commit: the task flushes, then the offsets move.
				ok(t, tk.Flush())
				maps.Copy(committed, next)
			}
		}
		if buffer == 1<<20 && early > 1 {
			t.Fatalf("seed %d: %d records logged before a flush with a buffer of 1 MiB, want only the first write's", seed, early)
		}
		// The crash: a last flush whose commit never completed.
		ok(t, tk.Flush())
		tk.Close()
		restored := state.NewInMemoryKeyValueStore("counts")
		rs, err := task.NewChangelogRestorer(spec, restored, nil, nil)
		ok(t, err)
		for _, r := range logged {
			if h := r.header(task.InputHeader); h != nil {
				if _, _, _, okp := task.ParseInputPosition(h); !okp {
					t.Fatalf("bad input header %x", h)
				}
			}
			if !r.unconfirmed(committed) {
				ok(t, rs.Apply(r.key, r.value, r.ts))
			}
		}
		want := map[string]int64{}
		for _, r := range input {
			if r.off < committed[r.topic] {
				want[r.key]++
			}
		}
		got := map[string]int64{}
		for k, v := range restored.Range(nil, nil) {
			n, err := serde.Int64.Decode(v[8:]) // timestamped: the count after the timestamp
			ok(t, err)
			got[string(k)] = n
		}
		if !maps.Equal(got, want) {
			t.Fatalf("seed %d: restored %v, want the committed counts %v (%d changelog records)", seed, got, want, len(logged))
		}
	}
}

// A key written many times between two flushes is logged once, with its
// latest value, timestamp and input position; a deleted one as a
// tombstone. The task's first write to the store is logged at once (the
// new owner's generation in the changelog for the zombie filter).
func TestChangelogBufferLogsLatestWrite(t *testing.T) {
	var logged changelogs
	tk := countTask(t, task.Config{ChangelogBuffer: 1 << 20}, &logged)
	defer tk.Close()
	for i, k := range []string{"a", "a", "b", "a"} {
		ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: int64(i), Timestamp: int64(10 * (i + 1)), Key: []byte(k), Value: []byte("v")}))
	}
	if len(logged) != 1 {
		t.Fatalf("%d changelog records before the flush, want 1 (the first write)", len(logged))
	}
	ok(t, tk.Flush())
	got := func() []string { return logged.counts(t) }
	// In the order the keys were first written; each with the input
	// position of its own latest write.
	want(t, "changelog", got(), []string{"a=1@10 from offset 0", "a=3@40 from offset 3", "b=1@30 from offset 2"})
	logged = nil
	kv := tk.Store("counts").(state.KeyValueStore)
	ok(t, tk.Process(&operators.RawRecord{Topic: "in", Offset: 4, Timestamp: 50, Key: []byte("b"), Value: []byte("v")}))
	// Outside a record's processing (the position of the last record
	// processed): logged at once, after the key's buffered write.
	ok(t, kv.Delete([]byte("b")))
	want(t, "changelog after a delete outside processing", got(), []string{"b=2@50 from offset 4", "b=<tombstone>@50 from offset 4"})
	ok(t, tk.Flush())
	want(t, "changelog after the flush", got(), []string{"b=2@50 from offset 4", "b=<tombstone>@50 from offset 4"})
}
