package runtime_test

// Durable state: word count keeps exact counts across a graceful restart
// (restoring only the delta since the checkpoint), kill -9 of the process
// and a restart, a restart with the state directory deleted (a full
// restore), and tasks moving to another instance (whose state is then
// deleted from the first one after the cleanup delay).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// TestMain runs the child process of TestKill9AndRestart when asked to,
// and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_CHILD") == "wordcount" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild runs word count until killed, configured by the environment;
// with SIGNALS set, until a SIGTERM or SIGINT (runtime.SignalContext).
// SESSION_TIMEOUT and SHUTDOWN_TIMEOUT (Go durations) override the
// options' defaults; INSTANCE_ID makes it a static member; with LOG set,
// the App logs to stderr.
func runChild() error {
	topo, err := wordCountTopology(os.Getenv("INPUT"), os.Getenv("OUTPUT"))
	if os.Getenv("TOPOLOGY") == "keyed" {
		topo, err = keyedCountTopology(os.Getenv("INPUT"), os.Getenv("OUTPUT"))
	}
	if os.Getenv("TOPOLOGY") == "suppress" {
		topo, err = suppressedCountTopology(os.Getenv("INPUT"), os.Getenv("OUTPUT"))
	}
	if os.Getenv("TOPOLOGY") == "global" {
		topo, err = globalJoinTopology(os.Getenv("PAGES"), os.Getenv("INPUT"), os.Getenv("OUTPUT"))
	}
	if os.Getenv("TOPOLOGY") == "fkjoin" {
		topo, err = fkJoinTopology(os.Getenv("INPUT"), os.Getenv("RIGHT"), os.Getenv("OUTPUT"), true)
	}
	if err != nil {
		return err
	}
	opts := childOptions(os.Getenv("APP_ID"), strings.Split(os.Getenv("BROKERS"), ","), os.Getenv("STATE_DIR"))
	if s := os.Getenv("SESSION_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		opts = append(opts, runtime.SessionTimeout(d))
	}
	if s := os.Getenv("SHUTDOWN_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		opts = append(opts, runtime.ShutdownTimeout(d))
	}
	if os.Getenv("GUARANTEE") == "eos" {
		opts = append(opts, runtime.ProcessingGuarantee(runtime.ExactlyOnce), runtime.CacheMaxBytes(0))
	}
	if os.Getenv("LOG") != "" {
		opts = append(opts, runtime.Logger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	if id := os.Getenv("INSTANCE_ID"); id != "" { // a static member (static_kill_test.go)
		opts = append(opts, runtime.InstanceID(id))
	}
	if os.Getenv("STANDBYS") != "" { // standby_failover_test.go
		opts = append(opts, runtime.NumStandbyReplicas(1))
	}
	app, err := runtime.New(topo, opts...)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if os.Getenv("SIGNALS") != "" {
		var stop func()
		ctx, stop = runtime.SignalContext(ctx)
		defer stop()
	}
	return app.Run(ctx)
}

// childOptions are the options of the killed instance and of the one that
// replaces it: a short session timeout, so the group notices the killed
// member soon, and a short commit interval, so kills land between commits,
// inside them, or between a changelog write and the commit that covers it.
func childOptions(appID string, brokers []string, stateDir string) []runtime.Option {
	return []runtime.Option{
		runtime.ApplicationID(appID), runtime.Brokers(brokers...), runtime.StateDir(stateDir),
		runtime.CommitInterval(20 * time.Millisecond), runtime.MaxPollRecords(200),
		// runtime.SessionTimeout, not kgo.SessionTimeout in ClientOptions:
		// the App sets the group client's session timeout after those.
		runtime.SessionTimeout(6 * time.Second), runtime.ClientOptions(kgo.HeartbeatInterval(500 * time.Millisecond)),
	}
}

// restored sums the restored-records counter of reg.
func restored(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "sluice_restored_records_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// changelogRecords counts the records a topic holds.
func changelogRecords(t *testing.T, c *testCluster, topic string) int64 {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		n += o.Offset - s.Offset
	})
	return n
}

// (a) A graceful restart restores nothing (the checkpoint covers the whole
// changelog) and goes on counting exactly; (c) a restart after the state
// directory was deleted restores the whole changelog and counts exactly.
func TestRestartKeepsExactCounts(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 3, input, output)
	topo := wordCount(t, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	run := func() (*instance, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50*time.Millisecond), runtime.Registerer(reg)), reg
	}
	want := map[string]int64{}
	c.produce(t, input, lines(0, 1500, 61, want)...)
	in, _ := run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	in.stop(t)
	changelog := appID + "-counts-changelog"
	logged := changelogRecords(t, c, changelog)
	if logged == 0 {
		t.Fatal("the changelog is empty after the first run")
	}

	// (a) graceful restart: only the delta since the checkpoint, none.
	in, reg := run()
	c.produce(t, input, lines(1500, 500, 61, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after a graceful restart: %s", diffCounts(got, want))
	}
	if n := restored(t, reg); n != 0 {
		t.Errorf("graceful restart restored %v records, want 0 (the checkpoint covers all %d)", n, logged)
	}
	in.stop(t)

	// (c) the state directory deleted: a full restore.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	logged = changelogRecords(t, c, changelog)
	in, reg = run()
	c.produce(t, input, lines(2000, 500, 61, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after deleting the state directory: %s", diffCounts(got, want))
	}
	if n := restored(t, reg); n != float64(logged) {
		t.Errorf("restart without local state restored %v records, want the changelog's %d", n, logged)
	}
	in.stop(t)
}

// keyedCountTopology counts the records of each key of input: one
// sub-topology, no repartition topic.
func keyedCountTopology(input, output string) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts")).
		ToStream().To(output, serde.String, serde.Int64)
	return b.Build()
}

// (b) kill -9 of the process in the middle of processing, twice, then a
// restart: the final counts are exact (no input lost, none applied twice).
// The guarantee is the task's: its state and the input positions it
// reflects commit together. A topology with a repartition topic is not
// exact under at-least-once: input processed again after a crash writes
// its repartition records again, and the downstream task counts them (as
// in Kafka Streams; exactly-once removes it).
func TestKill9AndRestart(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "words"), topic(t, "counts")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	want := map[string]int64{}
	var words []string
	for _, l := range lines(0, 20000, 211, map[string]int64{}) {
		for _, w := range strings.Fields(l) {
			words = append(words, strings.ToLower(w))
			want[strings.ToLower(w)]++
		}
	}
	c.produceKeys(t, input, words...)

	kill9Rounds(t, c, output, 2, 5000, "TOPOLOGY=keyed", "INPUT="+input, "OUTPUT="+output,
		"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
	topo, err := keyedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, topo, childOptions(appID, c.brokers, dir)...)
	if got, _ := c.counts(t, output, 2*time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after kill -9 and restart: %s", diffCounts(got, want))
	}
	in.stop(t)
}

// kill9Rounds runs the word-count child process (SLUICE_TEST_CHILD=wordcount
// with env) rounds times, each time killing it with SIGKILL once the
// output's counts add up to step more words than at the previous kill: in
// the middle of the work (under exactly-once, read uncommitted: in the
// middle of a transaction), at a point the test does not choose. Each
// round must count something new.
func kill9Rounds(t *testing.T, c *testCluster, output string, rounds int, step int64, env ...string) {
	t.Helper()
	var counted int64
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "SLUICE_TEST_CHILD=wordcount"), env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got, _ := c.counts(t, output, 2*time.Minute, countedOver(counted+step))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v before it was killed", round, err)
		}
		n := sum(got)
		if n <= counted {
			t.Fatalf("round %d: the child counted nothing new", round)
		}
		counted = n
	}
}

// countedOver is a done function for counts: the latest counts add up to
// more than n words.
func countedOver(n int64) func(map[string]int64) bool {
	return func(m map[string]int64) bool { return sum(m) > n }
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// (d) Tasks move to a second instance, which restores their state; the
// counts stay exact, the first instance deletes the state of the tasks it
// gave away once the cleanup delay has passed, and a second App cannot
// use a state directory in use.
func TestTasksMoveWithTheirState(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 4, input, output)
	topo := wordCount(t, input, output)
	appID := topic(t, "app")
	dirA, dirB := t.TempDir(), t.TempDir()
	opts := func(dir string) []runtime.Option {
		return []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50 * time.Millisecond), runtime.StateCleanupDelay(200 * time.Millisecond)}
	}
	want := map[string]int64{}
	a := start(t, topo, opts(dirA)...)
	waitTasks(t, []*instance{a}, 8)
	c.produce(t, input, lines(0, 1000, 53, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("one instance: %s", diffCounts(got, want))
	}

	// The state directory is locked while a uses it.
	other, err := runtime.New(topo, opts(dirA)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); !errors.Is(err, state.ErrStateDirLocked) {
		t.Fatalf("a second App on the same state directory: Run = %v, want ErrStateDirLocked", err)
	}

	b := start(t, topo, opts(dirB)...)
	waitTasks(t, []*instance{a, b}, 4, 4)
	c.produce(t, input, lines(1000, 1000, 53, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after tasks moved: %s", diffCounts(got, want))
	}
	// The stateful tasks (sub-topology 1) that moved to b have their state
	// in b's directory, and a deletes its copy after the cleanup delay.
	moved, _ := b.app.Tasks()
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range moved {
		if !strings.HasPrefix(id, "1_") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dirB, appID, id)); err != nil {
			t.Errorf("task %s moved to b, but b has no state for it: %v", id, err)
		}
		for {
			_, err := os.Stat(filepath.Join(dirA, appID, id))
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a still has the state of task %s, which moved away: %v", id, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the file system: there is nothing to wait on
		}
	}
	a.stop(t)
	b.stop(t)
}

// Local state built on topics that were since deleted and created again
// (offsets past the new topics' ends) is deleted and rebuilt from the new
// changelog, not trusted: the counts are those of the new input.
func TestLocalStateOfRecreatedTopicsIsDiscarded(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 2, input, output)
	topo := wordCount(t, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
		runtime.CommitInterval(50 * time.Millisecond)}
	first := map[string]int64{}
	c.produce(t, input, lines(0, 800, 41, first)...)
	in := start(t, topo, opts...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(first)); !maps.Equal(got, first) {
		t.Fatalf("first run: %s", diffCounts(got, first))
	}
	in.stop(t)

	// Delete every topic of the application (and its group), then start
	// over with other input.
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := []string{input, output, appID + "-counts-changelog", appID + "-counts-repartition"}
	if _, err := adm.DeleteTopics(ctx, all...); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteGroups(ctx, appID); err != nil {
		t.Fatal(err)
	}
	for {
		listed, err := adm.ListTopics(ctx, all...)
		if err != nil {
			t.Fatal(err)
		}
		gone := true
		for _, tp := range all {
			if listed.Has(tp) {
				gone = false
			}
		}
		if gone {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("topics not deleted within a minute")
		}
		time.Sleep(50 * time.Millisecond) // polling the broker: deletion has nothing to wait on
	}
	for {
		err := connectors.CreateTopics(ctx, c.brokers, 2, input, output)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("recreate topics: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // a real broker may still be removing the old ones
	}
	second := map[string]int64{}
	c.produce(t, input, lines(5000, 300, 41, second)...)
	in = start(t, topo, opts...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(second)); !maps.Equal(got, second) {
		t.Fatalf("after the topics were recreated: %s", diffCounts(got, second))
	}
	in.stop(t)
}

// A changelog written transactionally ends with a commit marker, at the
// last offset: restoring it ends at the marker instead of waiting for a
// record that never comes, and the restored count goes on.
func TestRestoreChangelogEndingInTransactionMarker(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	changelog := appID + "-counts-changelog"
	c.create(t, 1, changelog)
	txn := c.client(t, kgo.TransactionalID(appID+"-writer"), kgo.DefaultProduceTopic(changelog))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	recent := time.Now().Add(-10 * time.Minute).UnixMilli() // kept by a real broker's retention
	for i, n := range []int64{1, 2, 41} {
		v := binary.BigEndian.AppendUint64(nil, uint64(n))
		r := &kgo.Record{Key: []byte("apple"), Value: v, Timestamp: time.UnixMilli(recent + int64(i))}
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	in := start(t, wordCount(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(50*time.Millisecond), runtime.Registerer(reg))
	c.produce(t, input, "Apple")
	want := map[string]int64{"apple": 42}
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("count after restoring a transactional changelog: %s", diffCounts(got, want))
	}
	if n := restored(t, reg); n != 3 {
		t.Errorf("restored %v records, want the changelog's 3", n)
	}
	in.stop(t)
}

// A windowed count restores its window store from the changelog (key ‖
// start ‖ seq records, compact,delete) after the state directory is
// deleted, and goes on counting each window exactly.
func TestWindowStoreRestoresFromChangelog(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "views"), topic(t, "counts")
	c.create(t, 2, input, output)
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey()
	counts := dsl.WindowedBy(g, window.Tumbling(time.Minute, time.Hour)).Count(dsl.Named("views")).ToStream()
	dsl.Map(counts, func(k window.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%d", k.Key, k.Window.Start), n
	}).To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	want := map[string]int64{}
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 60_000 * 60_000
	cl := c.client(t, kgo.DefaultProduceTopic(input))
	produce := func(n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range n {
			page := fmt.Sprintf("page%d", i%7)
			// Event times in the last minutes: a real broker deletes
			// records older than the changelog's retention (a day past the
			// window's) by their timestamps, whatever the store thinks.
			ts := base + int64(i%5)*60_000 + int64(i%13)*1000
			want[fmt.Sprintf("%s@%d", page, ts/60_000*60_000)]++
			r := &kgo.Record{Key: []byte(page), Value: []byte("v"), Timestamp: time.UnixMilli(ts)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func() *instance {
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50*time.Millisecond))
	}
	produce(300)
	in := run()
	if got, _ := c.counts(t, output, 10*time.Second, equalCounts(want)); !maps.Equal(got, want) {
		select {
		case err := <-in.done:
			t.Fatalf("first run stopped: %v", err)
		default:
		}
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	in.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	produce(200)
	in = run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after a full restore of the window store: %s", diffCounts(got, want))
	}
	in.stop(t)
}
