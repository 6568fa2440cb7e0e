package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
)

func wordCount(t *testing.T, input, output string) *topology.Topology {
	t.Helper()
	topo, err := wordCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func wordCountTopology(input, output string) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	lines := dsl.FromTopic(b, input, serde.Bytes, serde.String)
	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
		for _, w := range strings.Fields(line) {
			emit(strings.ToLower(w))
		}
	})
	dsl.GroupByValue(words, func(w string) string { return w }, serde.String).
		Count(dsl.Named("counts")).
		ToStream().To(output, serde.String, serde.Int64)
	return b.Build()
}

// lines makes n lines over a vocabulary of words word0..word{vocab-1}, and
// adds their word counts to want.
func lines(start, n, vocab int, want map[string]int64) []string {
	out := make([]string, n)
	for i := range out {
		var ws []string
		for j := range 1 + (start+i)%5 {
			w := fmt.Sprintf("Word%d", ((start+i)*7+j*13)%vocab)
			ws = append(ws, w)
			want[strings.ToLower(w)]++
		}
		out[i] = strings.Join(ws, " ")
	}
	return out
}

// instance is one App running in the background.
type instance struct {
	app      *runtime.App
	done     chan error
	finished chan struct{} // closed when Run returns
}

func start(t *testing.T, topo *topology.Topology, opts ...runtime.Option) *instance {
	t.Helper()
	base := []runtime.Option{runtime.StateDir(t.TempDir())}
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		// Debugging: the instances' logs on stderr.
		base = append(base, runtime.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	app, err := runtime.New(topo, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{app: app, done: make(chan error, 1), finished: make(chan struct{})}
	go func() {
		in.done <- app.Run(context.Background())
		close(in.finished)
	}()
	t.Cleanup(func() { _ = app.Close() })
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	if err := in.app.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of Close")
	}
}

// Word count on the broker gives the exact counts, the same as the test
// driver gives for the same input.
func TestWordCountExact(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 4, input, output)
	want := map[string]int64{}
	ls := lines(0, 2000, 97, want)
	c.produce(t, input, ls...)

	topo := wordCount(t, input, output)
	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(100*time.Millisecond), runtime.Workers(2))
	got, _ := c.counts(t, output, time.Minute, equalCounts(want))
	if d := diffCounts(got, want); d != "" {
		t.Fatalf("counts differ: %s", d)
	}
	in.stop(t)

	// A graceful stop committed every input offset, left the group, and
	// purged the consumed records of the repartition topic.
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if c, ok := committed.Lookup(o.Topic, o.Partition); !ok || c.At != o.Offset {
			t.Errorf("partition %d: committed %d, end offset %d", o.Partition, c.At, o.Offset)
		}
	})
	groups, err := adm.DescribeGroups(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[appID]; len(g.Members) != 0 {
		t.Errorf("group still has %d members after a graceful stop", len(g.Members))
	}
	starts, err := adm.ListStartOffsets(ctx, appID+"-counts-repartition")
	if err != nil {
		t.Fatal(err)
	}
	var purged int64
	starts.Each(func(o kadm.ListedOffset) { purged += o.Offset })
	if purged == 0 {
		t.Error("no record of the repartition topic was purged after commit")
	}

	// The same input through the test driver.
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipe := testdriver.CreateInputTopic(d, input, serde.Bytes, serde.String)
	for _, l := range ls {
		if err := pipe.PipeValue(l); err != nil {
			t.Fatal(err)
		}
	}
	driven, err := testdriver.ReadKeyValuesToMap(testdriver.CreateOutputTopic(d, output, serde.String, serde.Int64))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(driven, got) {
		t.Errorf("broker and test driver differ: %s", diffCounts(got, driven))
	}
}

// Three instances share the tasks; one is stopped, later another joins;
// every input record is reflected in the final counts.
func TestScaleOutAndIn(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 6, input, output)
	topo := wordCount(t, input, output)
	appID := topic(t, "app")
	opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100 * time.Millisecond)}

	want := map[string]int64{}
	insts := []*instance{start(t, topo, opts...), start(t, topo, opts...), start(t, topo, opts...)}
	// 12 tasks: two sub-topologies on 6 partitions, 4 for each instance.
	waitTasks(t, insts, 4, 4, 4)
	c.produce(t, input, lines(0, 1000, 50, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("with three instances: %s", diffCounts(got, want))
	}

	insts[1].stop(t)
	waitTasks(t, []*instance{insts[0], insts[2]}, 6, 6)
	c.produce(t, input, lines(1000, 1000, 50, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after stopping one instance: %s", diffCounts(got, want))
	}

	insts = append(insts, start(t, topo, opts...))
	waitTasks(t, []*instance{insts[0], insts[2], insts[3]}, 4, 4, 4)
	c.produce(t, input, lines(2000, 1000, 50, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after adding an instance: %s", diffCounts(got, want))
	}
	for _, in := range []*instance{insts[0], insts[2], insts[3]} {
		in.stop(t)
	}
}

// Inputs of a stateful sub-topology with different partition counts are
// refused at start-up, naming both topics and counts.
func TestCoPartitioningValidated(t *testing.T) {
	c := newCluster(t)
	a, b := topic(t, "a"), topic(t, "b")
	c.create(t, 4, a)
	c.create(t, 3, b)
	bld := dsl.NewBuilder()
	dsl.FromTopics(bld, []string{a, b}, serde.String, serde.String).GroupByKey().Count(dsl.Named("n"))
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.wantCoPartitionError(t, topo, a+" (4 partitions)", b+" (3 partitions)")
}

// A broker that does not answer gives a clear error once the start-up
// timeout has passed, not a hang.
func TestUnreachableBroker(t *testing.T) {
	topo := wordCount(t, "in", "out")
	app, err := runtime.New(topo, runtime.ApplicationID("unreachable"), runtime.Brokers("127.0.0.1:1"), runtime.StateDir(t.TempDir()),
		runtime.StartupTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	select {
	case err := <-done:
		var be *runtime.BrokerError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("Run = %v, want a BrokerError naming the broker", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run hung on an unreachable broker")
	}
}

func TestConfigErrorsNameTheOption(t *testing.T) {
	topo := wordCount(t, "in", "out")
	_, err := runtime.New(topo, runtime.Brokers("x:1"), runtime.Workers(0))
	for _, key := range []string{"ApplicationID", "Workers"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("New = %v, want an error naming %s", err, key)
		}
	}
}

// waitTasks waits until the instances hold the given numbers of tasks.
func waitTasks(t *testing.T, insts []*instance, want ...int) {
	t.Helper()
	// Two minutes: on a loaded machine a member can miss a rebalance, and
	// the group then waits for the rebalance timeout (one minute) before it
	// goes on without it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deadline := ctx.Done()
	for {
		got := make([]int, len(insts))
		wake := make(chan struct{}, len(insts))
		for i, in := range insts {
			ids, changed := in.app.Tasks()
			got[i] = len(ids)
			go func() {
				select {
				case <-changed:
					wake <- struct{}{}
				case <-deadline:
				}
			}()
		}
		if slices.Equal(got, want) {
			return
		}
		for i, in := range insts {
			select {
			case <-in.finished:
				t.Fatalf("instance %d stopped: %v", i, <-in.done)
			default:
			}
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("tasks per instance = %v, want %v", got, want)
		}
	}
}

// A crash between flushing the changelog and committing the offsets leaves
// the changelog ahead of the committed offsets. The restarted task resumes
// after the input its restored state reflects: no input record is counted
// twice. The crash is injected with kfake: every offset commit of the first
// run fails.
func TestNoDoubleApplyAfterCrashBeforeCommit(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.client(t, kgo.DefaultProduceTopic(input))
	var rs []*kgo.Record
	for range 100 {
		rs = append(rs, &kgo.Record{Key: []byte("k"), Value: []byte("v")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var failing atomic.Bool
	failing.Store(true)
	e.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		creq := req.(*kmsg.OffsetCommitRequest)
		resp := creq.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range creq.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.GroupAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	appID := topic(t, "app")
	first, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(time.Millisecond),
		runtime.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Run(ctx); err == nil || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("first run = %v, want the failed commit", err)
	}
	// The first run's output shows the changelog got ahead of the commit.
	if got, _ := c.counts(t, output, 10*time.Second, equalCounts(map[string]int64{"k": 100})); got["k"] != 100 {
		t.Fatalf("first run counted %d before failing, want all 100", got["k"])
	}
	failing.Store(false)

	second := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	// One more record: the count must reach exactly 101.
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.counts(t, output, 30*time.Second, func(m map[string]int64) bool { return m["k"] >= 101 })
	if got["k"] != 101 {
		t.Errorf("count after restart = %d, want 101 (each input counted once)", got["k"])
	}
	second.stop(t)
}
