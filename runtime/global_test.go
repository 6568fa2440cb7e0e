package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// globalPipeline is clicks (key: click ID, value: page) left-joined with the
// global table of pages (key: page, value: category), to out: the value is
// "<page>=<category>", or "<page>=?" for a page without a row.
func globalPipeline(t *testing.T, pages, clicks, out string, opts ...dsl.TableSourceOption) *topology.Topology {
	t.Helper()
	return globalPipelineWatched(t, pages, clicks, out, serde.String, nil, opts...)
}

// globalPipelineWatched is globalPipeline with the global table's keys
// read by keys, and watch (if not nil) called by the joiner before each
// join.
func globalPipelineWatched(t *testing.T, pages, clicks, out string, keys serde.Serde[string], watch func(), opts ...dsl.TableSourceOption) *topology.Topology {
	t.Helper()
	topo, err := globalJoinTopologyWatched(pages, clicks, out, keys, watch, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// globalJoinTopology is globalPipeline's topology with the store named
// "pages-store", for the child process of TestGlobalTableKill9AndRestart.
func globalJoinTopology(pages, clicks, out string) (*topology.Topology, error) {
	return globalJoinTopologyWatched(pages, clicks, out, serde.String, nil, dsl.Named("pages-store"))
}

func globalJoinTopologyWatched(pages, clicks, out string, keys serde.Serde[string], watch func(), opts ...dsl.TableSourceOption) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, pages, keys, serde.String, opts...)
	s := dsl.FromTopic(b, clicks, serde.String, serde.String)
	dsl.LeftJoinGlobal(s, g, func(_ dsl.Maybe[string], page string) dsl.Maybe[string] { return dsl.Some(page) },
		func(_ dsl.Maybe[string], page string, cat dsl.Maybe[string]) string {
			if watch != nil {
				watch()
			}
			return page + "=" + cat.Or("?")
		}).
		To(out, serde.String, serde.String)
	return b.Build()
}

// countingSerde counts the keys or values it decodes.
type countingSerde struct {
	serde.Serde[string]
	n *atomic.Int64
}

func (s countingSerde) Decode(b []byte) (string, error) {
	s.n.Add(1)
	return s.Serde.Decode(b)
}

// produceKV writes key/value records to topic, partitioned by key, and
// waits for them.
func (c *testCluster) produceKV(t *testing.T, topic string, kvs ...string) {
	t.Helper()
	cl := c.client(t, kgo.DefaultProduceTopic(topic))
	var rs []*kgo.Record
	for i := 0; i+1 < len(kvs); i += 2 {
		rs = append(rs, &kgo.Record{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// pageRows are n rows of the pages table: "/p<i>" → "cat<i>".
func pageRows(n int, suffix string) []string {
	var kvs []string
	for i := range n {
		kvs = append(kvs, fmt.Sprintf("/p%d", i), fmt.Sprintf("cat%d%s", i, suffix))
	}
	return kvs
}

// clickRows are clicks "<prefix><j>" → "/p<j mod pages>", for j in [0, n).
func clickRows(prefix string, n, pages int) ([]string, map[string]string) {
	var kvs []string
	want := map[string]string{}
	for j := range n {
		k, page := fmt.Sprintf("%s%d", prefix, j), fmt.Sprintf("/p%d", j%pages)
		kvs = append(kvs, k, page)
		want[k] = fmt.Sprintf("%s=cat%d", page, j%pages)
	}
	return kvs, want
}

// pick returns the entries of m whose key starts with prefix.
func pick(m map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func diffStrings(got, want map[string]string) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			d = append(d, fmt.Sprintf("%s: got %q, want %q", k, g, w))
		}
	}
	slices.Sort(d)
	if len(d) > 10 {
		d = append(d[:10], fmt.Sprintf("... %d more", len(d)-10))
	}
	return strings.Join(d, "; ")
}

// Two instances each hold all partitions of a 4-partition global topic.
// The global table is complete before the first stream record is joined:
// the pages and the first clicks are written before the first instance
// starts, and every click finds its page. The second instance restores
// the table before it joins the group: once each instance has one task of
// the two, clicks of both partitions find their pages. An update of the
// global topic while they run is seen. No changelog topic is created for
// the global store.
func TestGlobalTableOnTwoInstances(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out, app := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 4, pages)
	c.create(t, 2, clicks, out)
	// Each instance counts the global table's records as it reads them
	// (the keys its global source decodes: the join only encodes keys),
	// and each of its joins checks that it had read all of the table by
	// then: an instance reads the table whole before it joins any click.
	const nPages = 4000
	var early atomic.Int64
	watched := func() *topology.Topology {
		var decoded atomic.Int64
		return globalPipelineWatched(t, pages, clicks, out, countingSerde{Serde: serde.String, n: &decoded}, func() {
			if decoded.Load() < nPages {
				early.Add(1)
			}
		}, dsl.Named("pages-store"))
	}
	c.produceKV(t, pages, pageRows(nPages, "")...)
	first, want := clickRows("a", 200, nPages)
	c.produceKV(t, clicks, first...)

	opts := []runtime.Option{runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100 * time.Millisecond)}
	a := start(t, watched(), opts...)
	got := c.latestValues(t, out, len(want), time.Minute)
	if d := diffStrings(got, want); d != "" {
		t.Fatalf("clicks joined by the first instance: %s", d)
	}
	if n := early.Load(); n > 0 {
		t.Fatalf("%d clicks were joined before the global table was read whole", n)
	}

	bi := start(t, watched(), opts...)
	waitTasks(t, []*instance{a, bi}, 1, 1)
	second, want2 := clickRows("b", 200, nPages)
	c.produceKV(t, clicks, second...)
	for k, v := range want2 {
		want[k] = v
	}
	got = c.latestValues(t, out, len(want), time.Minute)
	if d := diffStrings(pick(got, "b"), want2); d != "" {
		t.Fatalf("clicks joined by both instances: %s", d)
	}
	if n := early.Load(); n > 0 {
		t.Fatalf("%d clicks were joined before the instance had read the global table whole", n)
	}

	// An update after start: the reader applies it while the instances
	// run; clicks of both partitions see it once it is applied.
	c.produceKV(t, pages, "/p1", "updated", "/new", "fresh")
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := c.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	for i := 0; len(seen) < 4; i++ {
		if ctx.Err() != nil {
			t.Fatalf("the global update was not seen by every partition within a minute: %v", seen)
		}
		// One click of each page per round, to every partition (keys
		// spread them); the update is seen when the joined value shows it.
		var kvs []string
		for p := range 8 {
			kvs = append(kvs, fmt.Sprintf("u%d-%d", i, p), []string{"/p1", "/new"}[p%2])
		}
		c.produceKV(t, clicks, kvs...)
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if v := string(r.Value); v == "/p1=updated" || v == "/new=fresh" {
				seen[fmt.Sprintf("%d:%s", r.Partition, v)] = true
			}
		})
	}

	adm := kadm.NewClient(c.client(t))
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.Contains(name, "pages-store") {
			t.Errorf("topic %s exists: a global store has no changelog", name)
		}
	}
	a.stop(t)
	bi.stop(t)
}

// A restart restores a global store from its checkpoint and the records
// written to its topic since: only those are read again, and the joins
// after the restart see them.
func TestGlobalTableRestartRestoresFromCheckpoint(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out, app := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 4, pages)
	c.create(t, 2, clicks, out)
	topo := globalPipeline(t, pages, clicks, out, dsl.Named("pages-store"))
	dir := t.TempDir()
	const nPages = 100
	c.produceKV(t, pages, pageRows(nPages, "")...)
	// run runs the app until out has total distinct keys, after writing
	// 50 clicks "<prefix><j>" and the extra ones; it returns the records
	// the global store restored and the joined clicks of prefix.
	run := func(prefix string, total int, extra ...string) (float64, map[string]string) {
		t.Helper()
		reg := prometheus.NewRegistry()
		in := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(100*time.Millisecond), runtime.Registerer(reg))
		kvs, _ := clickRows(prefix, 50, nPages)
		c.produceKV(t, clicks, append(kvs, extra...)...)
		got := pick(c.latestValues(t, out, total, time.Minute), prefix)
		in.stop(t)
		return restoredRecords(t, reg, "pages-store"), got
	}

	restored, got := run("a", 50)
	_, want := clickRows("a", 50, nPages)
	if d := diffStrings(got, want); d != "" {
		t.Fatalf("first run: %s", d)
	}
	if restored != nPages {
		t.Errorf("first run restored %v records, want all %d", restored, nPages)
	}
	cp, err := state.ReadCheckpoint(vfs.Default, filepath.Join(dir, app, "global", "pages-store.checkpoint"))
	if err != nil {
		t.Fatalf("checkpoint of the global stores: %v", err)
	}
	var sum int64
	for tp, off := range cp {
		if tp.Topic != pages {
			t.Errorf("checkpoint has %s/%d", tp.Topic, tp.Partition)
		}
		sum += off
	}
	if len(cp) != 4 || sum != nPages {
		t.Errorf("checkpoint %v: want the end offsets of the 4 partitions, %d records in all", cp, nPages)
	}

	// While it is down: an update, a delete and a new row.
	c.produceKV(t, pages, "/p1", "changed", "/extra", "new")
	tomb := c.client(t, kgo.DefaultProduceTopic(pages))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tomb.ProduceSync(ctx, &kgo.Record{Key: []byte("/p2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	restored, got = run("b", 103, "bx1", "/p1", "bx2", "/extra", "bx3", "/p2")
	if restored != 3 {
		t.Errorf("the restart restored %v records, want the 3 written since the checkpoint", restored)
	}
	for k, w := range map[string]string{"bx1": "/p1=changed", "bx2": "/extra=new", "bx3": "/p2=?"} {
		if got[k] != w {
			t.Errorf("after the restart, %s = %q, want %q", k, got[k], w)
		}
	}

	// A checkpoint past the end of the topic (as after the topic was
	// recreated) makes the instance delete the global store and restore
	// all of the topic: 100 rows, the update, the new row, the tombstone.
	cpPath := filepath.Join(dir, app, "global", "pages-store.checkpoint")
	cp, err = state.ReadCheckpoint(vfs.Default, cpPath)
	if err != nil {
		t.Fatal(err)
	}
	for tp := range cp {
		cp[tp] += 1000
	}
	if err := state.WriteCheckpoint(vfs.Default, cpPath, cp); err != nil {
		t.Fatal(err)
	}
	restored, got = run("c", 155, "cx1", "/p1", "cx2", "/p2")
	if restored != nPages+3 {
		t.Errorf("with a checkpoint past the topic's end, the restart restored %v records, want all %d", restored, nPages+3)
	}
	for k, w := range map[string]string{"cx1": "/p1=changed", "cx2": "/p2=?"} {
		if got[k] != w {
			t.Errorf("after the restore from the start, %s = %q, want %q", k, got[k], w)
		}
	}

	// Local global state without a checkpoint (a crash before the first
	// one) is deleted and restored from the start too: a row only the
	// local store holds (as one whose delete compaction removed) is gone.
	if err := os.Remove(cpPath); err != nil {
		t.Fatal(err)
	}
	db, err := state.OpenPebble(filepath.Join(dir, app, "global"), state.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.KeyValueStore("pages-store").Put([]byte("/ghost"), append(make([]byte, 8), "stale"...)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	restored, got = run("d", 206, "dx1", "/ghost")
	if restored != nPages+3 {
		t.Errorf("without a checkpoint, the restart restored %v records, want all %d", restored, nPages+3)
	}
	if got["dx1"] != "/ghost=?" {
		t.Errorf("a row only the local store held, without a checkpoint: %q, want /ghost=?", got["dx1"])
	}
}

// restoredRecords is sluice_restored_records_total of store.
func restoredRecords(t *testing.T, reg *prometheus.Registry, store string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_restored_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "store" && l.GetValue() == store {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A record of a global topic that cannot be deserialized follows the
// deserialization policy: by default Run fails naming the topic, partition
// and offset; with SkipUndecodableRecords it is counted and skipped.
func TestGlobalTableUndecodableRecord(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 1, pages, clicks, out)
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, pages, serde.String, serde.Int64)
	s := dsl.FromTopic(b, clicks, serde.String, serde.String)
	dsl.LeftJoinGlobal(s, g, func(_ dsl.Maybe[string], page string) dsl.Maybe[string] { return dsl.Some(page) },
		func(_ dsl.Maybe[string], page string, n dsl.Maybe[int64]) string {
			return fmt.Sprintf("%s=%d", page, n.Or(-1))
		}).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.produceKV(t, pages, "/bad", "abc")

	app, err := runtime.New(topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...), runtime.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = app.Run(ctx)
	var ne *operators.NodeError
	if !errors.As(err, &ne) || ne.Topic != pages || ne.Partition != 0 || ne.Offset != 0 {
		t.Fatalf("Run = %v, want a NodeError at %s partition 0 offset 0", err, pages)
	}

	// While running: a bad record after good ones stops the instance,
	// naming its offset; the live reader reads it (a click is joined with
	// the restored table before the bad record is written).
	pages2, clicks2, out2 := topic(t, "pages2"), topic(t, "clicks2"), topic(t, "out2")
	c.create(t, 1, pages2, clicks2, out2)
	b2 := dsl.NewBuilder()
	dsl.LeftJoinGlobal(dsl.FromTopic(b2, clicks2, serde.String, serde.String), dsl.GlobalTableFromTopic(b2, pages2, serde.String, serde.Int64),
		func(_ dsl.Maybe[string], page string) dsl.Maybe[string] { return dsl.Some(page) },
		func(_ dsl.Maybe[string], page string, n dsl.Maybe[int64]) string {
			return fmt.Sprintf("%s=%d", page, n.Or(-1))
		}).
		To(out2, serde.String, serde.String)
	topo2, err := b2.Build()
	if err != nil {
		t.Fatal(err)
	}
	good := []byte{0, 0, 0, 0, 0, 0, 0, 7}
	prod := c.client(t, kgo.DefaultProduceTopic(pages2))
	if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("/a"), Value: good}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	running := start(t, topo2, runtime.ApplicationID(topic(t, "app3")), runtime.Brokers(c.brokers...))
	c.produceKV(t, clicks2, "probe", "/a")
	if got := c.latestValues(t, out2, 1, time.Minute); got["probe"] != "/a=7" {
		t.Fatalf("probe click: %q, want /a=7", got["probe"])
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("/b"), Value: good}, &kgo.Record{Key: []byte("/c"), Value: []byte("bad")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-running.done:
		if !errors.As(err, &ne) || ne.Topic != pages2 || ne.Partition != 0 || ne.Offset != 2 || !strings.Contains(err.Error(), "global reader") {
			t.Fatalf("Run = %v, want the global reader's NodeError at %s partition 0 offset 2", err, pages2)
		}
	case <-ctx.Done():
		t.Fatal("Run did not fail on an undecodable global record within a minute")
	}

	reg := prometheus.NewRegistry()
	in := start(t, topo, runtime.ApplicationID(topic(t, "app2")), runtime.Brokers(c.brokers...),
		runtime.SkipUndecodableRecords(), runtime.Registerer(reg), runtime.CommitInterval(100*time.Millisecond))
	c.produceKV(t, clicks, "c1", "/bad")
	got := c.latestValues(t, out, 1, time.Minute)
	if got["c1"] != "/bad=-1" {
		t.Errorf("click of the undecodable page: %q, want /bad=-1", got["c1"])
	}
	in.stop(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dropped float64
	for _, mf := range mfs {
		if mf.GetName() == "sluice_dropped_records_total" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == "deserialization-error" {
						dropped += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if dropped != 1 {
		t.Errorf("dropped for deserialization errors: %v, want 1", dropped)
	}
}

// An in-memory global store is restored from its topic's start at every
// start (it has no checkpoint), and read by the tasks of two workers while
// the reader writes it.
func TestGlobalTableInMemory(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out, app := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 4, pages)
	c.create(t, 2, clicks, out)
	topo := globalPipeline(t, pages, clicks, out, dsl.Materialized(dsl.StoreOptions{Name: "pages-mem", InMemory: true}))
	dir := t.TempDir()
	const nPages = 50
	c.produceKV(t, pages, pageRows(nPages, "")...)
	for i, prefix := range []string{"a", "b"} {
		reg := prometheus.NewRegistry()
		in := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(100*time.Millisecond), runtime.Registerer(reg), runtime.Workers(2))
		kvs, want := clickRows(prefix, 400, nPages)
		// Rounds of updates of other pages and of clicks, so that the
		// reader writes while two workers read (-race watches).
		for r := range 20 {
			var upd []string
			for u := range 10 {
				upd = append(upd, fmt.Sprintf("/other%s%d", prefix, u), fmt.Sprint(r))
			}
			c.produceKV(t, pages, upd...)
			c.produceKV(t, clicks, kvs[r*40:(r+1)*40]...)
		}
		got := pick(c.latestValues(t, out, 400*(i+1), time.Minute), prefix)
		in.stop(t)
		if d := diffStrings(got, want); d != "" {
			t.Fatalf("run %d: %s", i+1, d)
		}
		if n := restoredRecords(t, reg, "pages-mem"); n < nPages {
			t.Errorf("run %d restored %v records, want all %d of the topic at least", i+1, n, nPages)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, app, "global", "pages-mem.checkpoint")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint of an in-memory global store: %v", err)
	}
}

// A global topic that does not exist fails the start-up with a
// MissingTopicError naming it.
func TestGlobalTableMissingTopic(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched")
	c.create(t, 1, clicks, out)
	topo := globalPipeline(t, pages, clicks, out)
	app, err := runtime.New(topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...), runtime.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = app.Run(ctx)
	var mte *runtime.MissingTopicError
	if !errors.As(err, &mte) || !slices.Equal(mte.Topics, []string{pages}) {
		t.Fatalf("Run = %v, want a MissingTopicError naming %s", err, pages)
	}
}

// kill -9 of an instance while its global reader applies updates, then a
// restart on the same state directory: the global store equals the topic
// (updated rows, deleted rows), restored from the checkpoint the killed
// instance left (never past what its store held) and the records since,
// not from the topic's start.
func TestGlobalTableKill9AndRestart(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out, appID := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 4, pages)
	c.create(t, 2, clicks, out)
	dir := t.TempDir()
	const nPages = 2000
	c.produceKV(t, pages, pageRows(nPages, "")...)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_TEST_CHILD=wordcount", "TOPOLOGY=global", "PAGES="+pages, "INPUT="+clicks, "OUTPUT="+out,
		"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child has restored the table (and checkpointed it) once it joins
	// a click.
	c.produceKV(t, clicks, "first", "/p0")
	if got := c.latestValues(t, out, 1, 2*time.Minute); got["first"] != "/p0=cat0" {
		t.Fatalf("the child joined %q, want /p0=cat0", got["first"])
	}
	// Updates of every row and deletes of the first 100, then the kill,
	// while the child is applying them: the first half of the updates, a
	// wait until the child has checkpointed some of them, then the rest.
	updates := pageRows(nPages, "-v2")
	c.produceKV(t, pages, updates[:nPages]...)
	cpPath := filepath.Join(dir, appID, "global", "pages-store.checkpoint")
	// Another process writes the file: poll it, with a deadline.
	deadline := time.Now().Add(2 * time.Minute)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		cp, err := state.ReadCheckpoint(vfs.Default, cpPath)
		var sum int64
		for _, off := range cp {
			sum += off
		}
		if err == nil && sum > nPages {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child checkpointed no update within 2 minutes (checkpoint %v, %v)", cp, err)
		}
		<-poll.C
	}
	c.produceKV(t, pages, updates[nPages:]...)
	cl := c.client(t, kgo.DefaultProduceTopic(pages))
	var tombs []*kgo.Record
	for i := range 100 {
		tombs = append(tombs, &kgo.Record{Key: []byte(fmt.Sprintf("/p%d", i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, tombs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v before it was killed", err)
	}

	topo, err := globalJoinTopology(pages, clicks, out)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	in := start(t, topo, append(childOptions(appID, c.brokers, dir), runtime.Registerer(reg))...)
	var kvs []string
	want := map[string]string{}
	for i := range nPages {
		k, page := fmt.Sprintf("k%d", i), fmt.Sprintf("/p%d", i)
		kvs = append(kvs, k, page)
		want[k] = fmt.Sprintf("%s=cat%d-v2", page, i)
		if i < 100 {
			want[k] = page + "=?"
		}
	}
	c.produceKV(t, clicks, kvs...)
	got := pick(c.latestValues(t, out, nPages+1, 2*time.Minute), "k")
	if d := diffStrings(got, want); d != "" {
		t.Fatalf("after kill -9 and restart: %s", d)
	}
	// The killed child checkpointed some of the updates: the restart
	// restores less than all of them.
	if n := restoredRecords(t, reg, "pages-store"); n >= nPages+100 {
		t.Errorf("the restart restored %v records: not less than the %d written after the first checkpoint", n, nPages+100)
	}
	in.stop(t)
}

// A global store's checkpoint is its own: a store whose name changed (an
// edited Named, or a generated name moved by an operation added before it)
// restores its topic from the start rather than take the old store's
// offsets, and the old store's rows and checkpoint are deleted, so going
// back to the old name restores from the start too.
func TestGlobalTableStoreRenamed(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out, app := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 1, pages, clicks, out)
	dir := t.TempDir()
	c.produceKV(t, pages, pageRows(10, "")...)
	run := func(store, prefix string, total int) map[string]string {
		t.Helper()
		topo := globalPipeline(t, pages, clicks, out, dsl.Named(store))
		in := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(100*time.Millisecond))
		kvs, _ := clickRows(prefix, 5, 10)
		c.produceKV(t, clicks, kvs...)
		got := pick(c.latestValues(t, out, total, time.Minute), prefix)
		in.stop(t)
		return got
	}
	for i, r := range []struct{ store, prefix string }{{"pages-v1", "a"}, {"pages-v2", "b"}, {"pages-v1", "c"}} {
		_, want := clickRows(r.prefix, 5, 10)
		if d := diffStrings(run(r.store, r.prefix, 5*(i+1)), want); d != "" {
			t.Fatalf("run %d, store %s: %s", i+1, r.store, d)
		}
		var files []string
		entries, err := os.ReadDir(filepath.Join(dir, app, "global"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".checkpoint") {
				files = append(files, e.Name())
			}
		}
		if want := []string{r.store + ".checkpoint"}; !slices.Equal(files, want) {
			t.Errorf("run %d: checkpoint files %v, want %v", i+1, files, want)
		}
	}
}

// A start-up that fails before the restore (the broker fails to list the
// global topic's offsets) leaves the global checkpoint as it was: the next
// start restores nothing again.
func TestGlobalTableEarlyFailureKeepsCheckpoint(t *testing.T) {
	e, c := embeddedCluster(t)
	pages, clicks, out, app := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 1, pages, clicks, out)
	dir := t.TempDir()
	c.produceKV(t, pages, pageRows(10, "")...)
	topo := globalPipeline(t, pages, clicks, out, dsl.Named("pages-store"))
	opts := []runtime.Option{runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.StateDir(dir)}
	in := start(t, topo, opts...)
	c.produceKV(t, clicks, "a", "/p1")
	c.latestValues(t, out, 1, time.Minute)
	in.stop(t)
	cpPath := filepath.Join(dir, app, "global", "pages-store.checkpoint")
	before, err := state.ReadCheckpoint(vfs.Default, cpPath)
	if err != nil || len(before) != 1 {
		t.Fatalf("checkpoint after the first run: %v, %v", before, err)
	}

	var failing atomic.Bool
	failing.Store(true)
	e.Cluster().ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		lreq := req.(*kmsg.ListOffsetsRequest)
		resp := lreq.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range lreq.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.UnknownServerError.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	app2, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app2.Run(ctx); err == nil || !strings.Contains(err.Error(), "global stores: list start offsets") {
		t.Fatalf("Run with ListOffsets failing = %v, want the global stores' error", err)
	}
	after, err := state.ReadCheckpoint(vfs.Default, cpPath)
	if err != nil || !maps.Equal(after, before) {
		t.Fatalf("checkpoint after a failed start-up: %v, %v; want %v as before", after, err, before)
	}

	failing.Store(false)
	reg := prometheus.NewRegistry()
	in = start(t, topo, append(opts, runtime.Registerer(reg))...)
	c.produceKV(t, clicks, "b", "/p2")
	if got := c.latestValues(t, out, 2, time.Minute); got["b"] != "/p2=cat2" {
		t.Errorf("after the failed start-up: %q, want /p2=cat2", got["b"])
	}
	in.stop(t)
	if n := restoredRecords(t, reg, "pages-store"); n != 0 {
		t.Errorf("the start after the failed one restored %v records, want none", n)
	}
}
