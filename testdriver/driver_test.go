package testdriver_test

// Tests of the driver itself: piping and reading, stream time and the wall
// clock, store reading, errors that name what is missing, and the opt-in
// runtime store stack (record cache, changelogs, commits).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countTopology counts records per key of "in" into the store "counts"
// and writes the counts to "out".
func countTopology(t *testing.T) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts")).ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	ok(t, err)
	return topo
}

func newDriver(t *testing.T, topo *topology.Topology, opts ...testdriver.Option) *testdriver.Driver {
	t.Helper()
	d, err := testdriver.New(topo, opts...)
	ok(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// show renders records as "key=value@ts" ("key=<null>@ts" for a
// tombstone).
func show[V any](rs []operators.Record[string, V]) []string {
	var out []string
	for _, r := range rs {
		if r.Tombstone {
			out = append(out, fmt.Sprintf("%s=<null>@%d", r.Key, r.Timestamp))
			continue
		}
		out = append(out, fmt.Sprintf("%s=%v@%d", r.Key, r.Value, r.Timestamp))
	}
	return out
}

func read[V any](t *testing.T, out *testdriver.OutputTopic[string, V]) []string {
	t.Helper()
	rs, err := out.ReadRecords()
	ok(t, err)
	return show(rs)
}

func want(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// Each piped record's effects are visible when Pipe returns, with the
// record's timestamp; reading consumes.
func TestPipeAndRead(t *testing.T) {
	d := newDriver(t, countTopology(t))
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	ok(t, in.PipeAt("a", "x", 10))
	if n := out.QueueSize(); n != 1 {
		t.Fatalf("after one record: %d unread outputs, want 1", n)
	}
	ok(t, in.PipeAt("a", "y", 20))
	ok(t, in.PipeAt("b", "z", 15))
	want(t, "outputs", read(t, out), []string{"a=1@10", "a=2@20", "b=1@15"})
	if !out.IsEmpty() {
		t.Errorf("%d records left after ReadRecords", out.QueueSize())
	}
	if _, err := out.ReadRecord(); !errors.Is(err, testdriver.ErrNoRecord) {
		t.Errorf("ReadRecord on a read topic: %v, want ErrNoRecord", err)
	}
	// Pipe stamps the wall-clock time; the stream time is the largest
	// timestamp processed.
	ok(t, d.AdvanceWallClockTime(time.Second))
	ok(t, in.Pipe("b", "w"))
	r, err := out.ReadRecord()
	ok(t, err)
	if r.Key != "b" || r.Value != 2 || r.Timestamp != 1000 {
		t.Errorf("record piped at the wall-clock time: %+v, want b=2@1000", r)
	}
	if st := d.StreamTime(0); st != 1000 {
		t.Errorf("stream time %d, want 1000", st)
	}
	if st := d.StreamTime(7); st != -1 {
		t.Errorf("stream time of a sub-topology that does not exist: %d, want -1", st)
	}
}

// A record with a null key is dropped by the aggregation and counted.
func TestNullKeyDroppedAndCounted(t *testing.T) {
	topo := countTopology(t)
	d := newDriver(t, topo)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	ok(t, in.PipeValue("v"))
	want(t, "outputs of a null-key record", read(t, out), nil)
	var total int64
	for _, st := range topo.SubTopologies() {
		for _, n := range st.Nodes {
			total += d.DroppedRecords(n.Name, "null-key")
		}
	}
	if total != 1 {
		t.Errorf("%d records counted as dropped for a null key, want 1", total)
	}
}

// Wall-clock punctuations fire only when the test moves the clock, once
// per due interval, at the clock's time; stream-time ones follow record
// timestamps.
func TestPunctuation(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64)
	dsl.Process(s, func() operators.Processor[string, int64, string, int64] {
		return &operators.ProcessorFuncs[string, int64, string, int64]{
			InitFunc: func(ctx operators.ProcessorContext[string, int64]) error {
				for _, typ := range []operators.PunctuationType{operators.WallClockTime, operators.StreamTime} {
					name := typ.String()
					if _, err := ctx.Schedule(10*time.Second, typ, func(now int64) error {
						return ctx.Forward(operators.Record[string, int64]{Key: name, Value: now, Timestamp: now})
					}); err != nil {
						return err
					}
				}
				return nil
			},
		}
	}, dsl.Named("ticker")).To("ticks", serde.String, serde.Int64)
	topo, err := b.Build()
	ok(t, err)
	d := newDriver(t, topo, testdriver.WithWallClock(time.UnixMilli(5000)))
	out := testdriver.CreateOutputTopic(d, "ticks", serde.String, serde.Int64)
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)

	ok(t, d.AdvanceWallClockTime(9*time.Second))
	want(t, "after 9s of wall clock", read(t, out), nil)
	ok(t, d.AdvanceWallClockTime(time.Second))
	wc := operators.WallClockTime.String()
	want(t, "after 10s", read(t, out), []string{wc + "=15000@15000"})
	// 25s at once: one punctuation, the missed one is skipped.
	ok(t, d.AdvanceWallClockTime(25*time.Second))
	want(t, "after 35s", read(t, out), []string{wc + "=40000@40000"})
	if got := d.WallClockTime().UnixMilli(); got != 40000 {
		t.Errorf("wall clock %d, want 40000", got)
	}
	if err := d.AdvanceWallClockTime(-time.Millisecond); err == nil {
		t.Error("moving the wall clock back: no error")
	}

	stream := operators.StreamTime.String()
	ok(t, in.PipeAt("k", 1, 3))
	want(t, "first record", read(t, out), []string{stream + "=3@3"})
	ok(t, in.PipeAt("k", 1, 9999))
	want(t, "stream time 9999", read(t, out), nil)
	ok(t, in.PipeAt("k", 1, 10_000))
	want(t, "stream time 10000", read(t, out), []string{stream + "=10000@10000"})
}

// Stores read through the typed views: values of a timestamped store with
// or without their timestamps.
func TestStoreReading(t *testing.T) {
	d := newDriver(t, countTopology(t))
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	ok(t, in.PipeAt("a", "x", 10))
	ok(t, in.PipeAt("a", "x", 30))
	ok(t, in.PipeAt("b", "x", 20))
	kv, err := testdriver.KeyValueStore(d, "counts", serde.String, serde.Int64)
	ok(t, err)
	if n, found, err := kv.Get("a"); err != nil || !found || n != 2 {
		t.Errorf("counts[a] = %d, %v, %v; want 2", n, found, err)
	}
	if _, found, err := kv.Get("c"); err != nil || found {
		t.Errorf("counts[c] found=%v err=%v, want absent", found, err)
	}
	seq, err := testdriver.TimestampedKeyValueStore(d, "counts", serde.String, serde.Int64)
	ok(t, err)
	var got []string
	for k, v := range seq {
		got = append(got, fmt.Sprintf("%s=%d@%d", k, v.Value, v.Timestamp))
	}
	want(t, "timestamped entries", got, []string{"a=2@30", "b=1@20"})
	if d.Store("counts") == nil || d.Store("nope") != nil {
		t.Error("Store: want the store for counts and nil for nope")
	}
}

// Errors name what is missing: a topic the topology does not read, one it
// does not write, a store it does not have.
func TestUnknownNamesAreErrors(t *testing.T) {
	d := newDriver(t, countTopology(t))
	err := testdriver.CreateInputTopic(d, "inn", serde.String, serde.String).Pipe("a", "x")
	if err == nil || !strings.Contains(err.Error(), `"inn"`) || !strings.Contains(err.Error(), "in") {
		t.Errorf("piping into an unknown topic: %v; want an error naming it and the topics read", err)
	}
	_, err = testdriver.CreateOutputTopic(d, "outt", serde.String, serde.Int64).ReadRecords()
	if err == nil || !strings.Contains(err.Error(), `"outt"`) || !strings.Contains(err.Error(), "[out]") {
		t.Errorf("reading an unknown topic: %v; want an error naming it and the topics written", err)
	}
	if _, err := testdriver.CreateOutputTopic(d, "outt", serde.String, serde.Int64).ReadRecord(); err == nil || errors.Is(err, testdriver.ErrNoRecord) {
		t.Errorf("ReadRecord of an unknown topic: %v; want an error other than ErrNoRecord", err)
	}
	// Changelogs are readable only when the driver records them.
	if _, err := testdriver.CreateOutputTopic(d, "sluice-test-counts-changelog", serde.String, serde.Int64).ReadRecords(); err == nil {
		t.Error("reading a changelog without WithChangelogs: no error")
	}
	_, err = testdriver.KeyValueStore(d, "cnts", serde.String, serde.Int64)
	if err == nil || !strings.Contains(err.Error(), `"cnts"`) {
		t.Errorf("an unknown store: %v; want an error naming it", err)
	}
	if _, err := testdriver.New(countTopology(t), testdriver.WithRecordCache(-1)); err == nil {
		t.Error("a negative cache size: no error")
	}
	ok(t, d.Close())
	if err := testdriver.CreateInputTopic(d, "in", serde.String, serde.String).Pipe("a", "x"); err == nil {
		t.Error("piping after Close: no error")
	}
	if err := d.Commit(); err == nil {
		t.Error("Commit after Close: no error")
	}
	if err := d.AdvanceWallClockTime(time.Second); err == nil {
		t.Error("advancing the clock after Close: no error")
	}
}

// The record cache compacts the updates of a key within one commit into one
// output record and one changelog record, with the latest value and its
// timestamp, as the runtime does at commit; committing after each record
// (the default) forwards every update.
func TestRecordCacheCompactsUpdatesWithinACommit(t *testing.T) {
	const changelog = "sluice-test-counts-changelog"
	if got := newDriver(t, countTopology(t)).ChangelogTopic("counts"); got != changelog {
		t.Errorf("ChangelogTopic(counts) = %q, want %q", got, changelog)
	}
	if got := newDriver(t, countTopology(t), testdriver.WithApplicationID("app")).ChangelogTopic("counts"); got != "app-counts-changelog" {
		t.Errorf("ChangelogTopic(counts) with application ID app = %q, want app-counts-changelog", got)
	}
	var in *testdriver.InputTopic[string, string]
	pipe := func(d *testdriver.Driver) {
		in = testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
		for i, k := range []string{"a", "a", "a", "b"} {
			ok(t, in.PipeAt(k, "x", int64(10*(i+1))))
		}
	}

	t.Run("commit on request", func(t *testing.T) {
		d := newDriver(t, countTopology(t), testdriver.WithRecordCache(1<<20), testdriver.WithChangelogs(),
			testdriver.CommitOnRequest())
		out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
		log := testdriver.CreateOutputTopic(d, changelog, serde.String, serde.Int64)
		pipe(d)
		want(t, "outputs before the commit", read(t, out), nil)
		want(t, "changelog before the commit", read(t, log), nil)
		// The cache serves reads before the commit.
		kv, err := testdriver.KeyValueStore(d, "counts", serde.String, serde.Int64)
		ok(t, err)
		if n, _, err := kv.Get("a"); err != nil || n != 3 {
			t.Errorf("counts[a] before the commit: %d, %v; want 3", n, err)
		}
		ok(t, d.Commit())
		// Flushed in the order of their last write.
		want(t, "outputs after the commit", read(t, out), []string{"a=3@30", "b=1@40"})
		want(t, "changelog after the commit", read(t, log), []string{"a=3@30", "b=1@40"})
		ok(t, d.Commit())
		want(t, "outputs after a second commit with nothing new", read(t, out), nil)
		// Close commits what the caches hold.
		ok(t, in.PipeAt("b", "x", 50))
		want(t, "outputs before Close", read(t, out), nil)
		ok(t, d.Close())
		want(t, "outputs after Close", read(t, out), []string{"b=2@50"})
	})

	t.Run("commit after each record", func(t *testing.T) {
		d := newDriver(t, countTopology(t), testdriver.WithRecordCache(1<<20), testdriver.WithChangelogs())
		out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
		log := testdriver.CreateOutputTopic(d, changelog, serde.String, serde.Int64)
		pipe(d)
		every := []string{"a=1@10", "a=2@20", "a=3@30", "b=1@40"}
		want(t, "outputs", read(t, out), every)
		want(t, "changelog", read(t, log), every)
	})

	t.Run("no cache", func(t *testing.T) {
		d := newDriver(t, countTopology(t), testdriver.WithChangelogs(), testdriver.CommitOnRequest())
		out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
		log := testdriver.CreateOutputTopic(d, changelog, serde.String, serde.Int64)
		pipe(d)
		every := []string{"a=1@10", "a=2@20", "a=3@30", "b=1@40"}
		want(t, "outputs", read(t, out), every)
		want(t, "changelog", read(t, log), every)
	})
}

// A changelog record carries the position of the input record that caused
// it, as the runtime's do.
func TestChangelogInputHeader(t *testing.T) {
	d := newDriver(t, countTopology(t), testdriver.WithChangelogs())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	ok(t, in.PipeAt("a", "x", 1))
	ok(t, in.PipeAt("b", "x", 2))
	rs, err := testdriver.CreateOutputTopic(d, "sluice-test-counts-changelog", serde.String, serde.Int64).ReadRecords()
	ok(t, err)
	if len(rs) != 2 {
		t.Fatalf("%d changelog records, want 2", len(rs))
	}
	for i, r := range rs {
		if len(r.Headers) != 1 || r.Headers[0].Key != task.InputHeader {
			t.Fatalf("changelog record %d headers %v, want one %s", i, r.Headers, task.InputHeader)
		}
		topic, p, off, ok := task.ParseInputPosition(r.Headers[0].Value)
		if !ok || topic != "in" || p != 0 || off != int64(i) {
			t.Errorf("changelog record %d from %s/%d/%d (ok %v), want in/0/%d", i, topic, p, off, ok, i)
		}
	}
}

// Commit follows what a flush writes to a repartition topic into the
// sub-topology that reads it, and flushes that one's cache too: one commit
// leaves nothing unflushed.
func TestCommitFlushesThroughRepartition(t *testing.T) {
	b := dsl.NewBuilder()
	words := dsl.FromTopic(b, "in", serde.String, serde.String)
	firstLetter := dsl.GroupBy(words, func(_, v string) string { return v[:1] }, serde.String, dsl.Named("letters"))
	firstLetter.Count(dsl.Named("by-letter")).ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	ok(t, err)
	if len(topo.SubTopologies()) != 2 {
		t.Fatalf("%d sub-topologies, want 2 (split at the repartition topic)", len(topo.SubTopologies()))
	}
	d := newDriver(t, topo, testdriver.WithRecordCache(1<<20), testdriver.CommitOnRequest())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	for i, w := range []string{"apple", "avocado", "banana", "apricot"} {
		ok(t, in.PipeAt("k", w, int64(i+1)))
	}
	want(t, "before the commit", read(t, out), nil)
	ok(t, d.Commit())
	want(t, "after one commit", read(t, out), []string{"b=1@3", "a=3@4"})
}

// A cache too small to hold the updates of a commit evicts its least
// recently used entries before the commit, as in the runtime. Evicting a
// dirty entry flushes its whole store, as Kafka Streams' NamedCache.evict
// (flush(eldest) hands the evicted entry, then every other dirty entry of
// the store, to the flush listener). An entry of "counts" here takes 113
// bytes (a one-byte key, a 16-byte timestamped count and 96 bytes of
// overhead): 150 bytes hold one.
func TestRecordCacheEvicts(t *testing.T) {
	d := newDriver(t, countTopology(t), testdriver.WithRecordCache(150), testdriver.CommitOnRequest())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	for i, k := range []string{"a", "a", "b", "b"} {
		ok(t, in.PipeAt(k, "x", int64(i+1)))
	}
	// The first write of b evicts a, with its latest count, and flushes
	// the store's other dirty entry, b's first count (NamedCache.evict).
	want(t, "before the commit", read(t, out), []string{"a=2@2", "b=1@3"})
	ok(t, d.Commit())
	want(t, "at the commit", read(t, out), []string{"b=2@4"})
}

// The changelog of a table (a timestamped store) is written without the
// value's timestamp, which becomes the record's; a window store's keys are
// "key ‖ start ‖ seq".
func TestChangelogLayouts(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	g.Count(dsl.Named("counts"))
	windowSize := 10 * time.Second
	dsl.WindowedBy(g, window.Tumbling(windowSize, 0)).Count(dsl.Named("windowed"))
	topo, err := b.Build()
	ok(t, err)
	d := newDriver(t, topo, testdriver.WithChangelogs())
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	ok(t, in.PipeAt("a", "x", 12_000))
	want(t, "counts changelog", read(t, testdriver.CreateOutputTopic(d, "sluice-test-counts-changelog", serde.String, serde.Int64)),
		[]string{"a=1@12000"})
	rs, err := testdriver.CreateOutputTopic(d, "sluice-test-windowed-changelog", serde.Bytes, serde.Int64).ReadRecords()
	ok(t, err)
	if len(rs) != 1 {
		t.Fatalf("%d window changelog records, want 1", len(rs))
	}
	k := rs[0].Key
	if len(k) != 1+8+4 || string(k[:1]) != "a" || binary.BigEndian.Uint64(k[1:9]) != 10_000 || rs[0].Value != 1 {
		t.Errorf("window changelog record %x=%d, want a ‖ 10000 ‖ seq = 1", k, rs[0].Value)
	}
}

// A flushed update carries the value the store held at the last commit as
// its old value: a table filter downstream of a cached count sees 0 → 3 in
// one commit, and never the 2 it would turn into a delete.
func TestRecordCacheForwardsWithOldValue(t *testing.T) {
	build := func() *topology.Topology {
		b := dsl.NewBuilder()
		dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts")).
			Filter(func(_ string, n int64) bool { return n != 2 }, dsl.Named("not-two")).
			ToStream().To("out", serde.String, serde.Int64)
		topo, err := b.Build()
		ok(t, err)
		return topo
	}
	run := func(opts ...testdriver.Option) []string {
		d := newDriver(t, build(), append(opts, testdriver.WithRecordCache(1<<20))...)
		in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
		for i := range 3 {
			ok(t, in.PipeAt("a", "x", int64(i+1)))
		}
		ok(t, d.Commit())
		return read(t, testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64))
	}
	want(t, "one commit", run(testdriver.CommitOnRequest()), []string{"a=3@3"})
	// Committing after each record: 1 passes, 2 is filtered (a delete of
	// the 1 that passed), 3 passes.
	want(t, "a commit per record", run(), []string{"a=1@1", "a=<null>@2", "a=3@3"})
}
