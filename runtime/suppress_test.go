package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// readUntil reads topic from the start until done holds for what it read
// or the deadline passes, and returns what it read.
func (c *testCluster) readUntil(t *testing.T, topic string, timeout time.Duration, done func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rs []*kgo.Record
	for !done(rs) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { rs = append(rs, r) })
	}
	return rs
}

// A suppressed windowed count keeps its buffer across a move of its task
// to another instance (a new state directory): the buffer is restored from
// its changelog (records in Kafka Streams' format: header v=3, a
// BufferValue and the buffer time), so windows buffered before the move
// are emitted after it, and a window emitted before it is not emitted
// again. Every window comes out exactly once, with its final count.
func TestSuppressBufferSurvivesTaskMove(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "final")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	keys := window.TimeKeySerde(serde.String, 10*time.Second)
	dsl.WindowedBy(dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey(), window.Tumbling(10*time.Second, 0)).
		Count(dsl.Named("counts")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To(output, keys, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	run := func() *instance {
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(t.TempDir()),
			runtime.CommitInterval(50*time.Millisecond))
	}
	// Recent event times: a real broker deletes changelog records older
	// than the topic's retention by their timestamps.
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 10000 * 10000
	cl := c.client(t, kgo.DefaultProduceTopic(input))
	produce := func(key string, ts int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v"), Timestamp: time.UnixMilli(ts)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	results := func(rs []*kgo.Record) map[string]int {
		n := map[string]int{}
		for _, r := range rs {
			k, err := keys.Decode(r.Key)
			if err != nil {
				t.Fatalf("output %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			n[fmt.Sprintf("%s@%d=%s", k.Key, k.Window.Start-base, int64Text(r.Value))]++
		}
		return n
	}
	has := func(want ...string) func([]*kgo.Record) bool {
		return func(rs []*kgo.Record) bool {
			got := results(rs)
			for _, w := range want {
				if got[w] == 0 {
					return false
				}
			}
			return true
		}
	}

	in := run()
	produce("a", base+1000)
	produce("b", base+2000)
	produce("a", base+3000)
	produce("a", base+11000) // closes the first window
	c.readUntil(t, output, 30*time.Second, has("a@0=2", "b@0=1"))
	produce("b", base+12000)
	produce("a", base+13000)
	// Wait until the buffer's changelog holds the second window of both
	// keys: committed, so the next instance restores them.
	changelog := appID + "-final-store-changelog"
	buffered := func(rs []*kgo.Record) map[string]string {
		m := map[string]string{}
		for _, r := range rs {
			k, err := keys.Decode(r.Key)
			if err != nil {
				t.Fatalf("changelog %s/%d@%d: key: %v", r.Topic, r.Partition, r.Offset, err)
			}
			name := fmt.Sprintf("%s@%d", k.Key, k.Window.Start-base)
			if r.Value == nil {
				delete(m, name)
				continue
			}
			if len(r.Headers) == 0 || r.Headers[0].Key != "v" || string(r.Headers[0].Value) != "\x03" {
				t.Fatalf("changelog %s/%d@%d: headers %v, want v=3 first", r.Topic, r.Partition, r.Offset, r.Headers)
			}
			e, err := nodes.DecodeBufferEntry(r.Key, r.Value)
			if err != nil {
				t.Fatalf("changelog %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			if e.Time != k.Window.End {
				t.Fatalf("changelog %s/%d@%d: buffer time %d, want the window end %d", r.Topic, r.Partition, r.Offset, e.Time, k.Window.End)
			}
			m[name] = int64Text(e.New)
		}
		return m
	}
	want := map[string]string{"a@10000": "2", "b@10000": "1"}
	if got := buffered(c.readUntil(t, changelog, 30*time.Second, func(rs []*kgo.Record) bool { return maps.Equal(buffered(rs), want) })); !maps.Equal(got, want) {
		t.Fatalf("buffer changelog holds %v, want %v", got, want)
	}
	in.stop(t)

	// The task moves: a new instance, a new state directory.
	in = run()
	produce("a", base+25000) // closes the second window
	produce("c", base+31000) // closes the third
	rs := c.readUntil(t, output, 30*time.Second, has("a@20000=1"))
	got := results(rs)
	wantOut := map[string]int{"a@0=2": 1, "b@0=1": 1, "a@10000=2": 1, "b@10000=1": 1, "a@20000=1": 1}
	if !maps.Equal(got, wantOut) {
		t.Fatalf("final windows (result → times emitted): got %v, want %v", got, wantOut)
	}
	in.stop(t)
}

// suppressWindow and suppressGrace are the windows of the kill -9 test's
// suppressed count.
const (
	suppressWindow = time.Second
	suppressGrace  = 500 * time.Millisecond
)

// suppressedCountTopology counts the records of each key per one-second
// window (grace 500 ms) and writes each window once, when it closes.
func suppressedCountTopology(input, output string) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	dsl.WindowedBy(dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey(), window.Tumbling(suppressWindow, suppressGrace)).
		Count(dsl.Named("counts")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To(output, window.TimeKeySerde(serde.String, suppressWindow), serde.Int64)
	return b.Build()
}

// kill -9 of the process running a suppressed windowed count in the
// middle of its input, twice (the second time after a restart on its state
// directory), then a restart on an empty state directory (the task moves:
// no local state, no processor metadata): every closed window is written,
// each time with its exact count. A window may be written twice (its
// result was produced, the commit covering it had not happened:
// at-least-once), never with another count, and no window is written that
// is not closed. The input is partly out of order and partly late (1 s
// behind, past the 500 ms grace half of the time), so the count must drop,
// after each restart and move, exactly the records it dropped before: a
// count restarting from its latest window start, not its stream time,
// would take some of them.
func TestKill9SuppressedWindowedCount(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "clicks"), topic(t, "final")
	// One partition: one task, so one stream time, which the oracle
	// follows.
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	// 12000 records of 40 keys, 5 ms apart, every 11th 300 ms behind and
	// every 7th 1 s behind (late when the stream time is past the middle of
	// a window, on time otherwise); then one record per key far later, whose
	// windows stay open and close all the others. The oracle counts a
	// record in its window unless stream time has reached the window's end
	// + grace.
	base := time.Now().Add(-30*time.Minute).UnixMilli() / 1000 * 1000
	size, grace := suppressWindow.Milliseconds(), suppressGrace.Milliseconds()
	want := map[string]int64{}
	var rs []*kgo.Record
	name := func(key string, start int64) string { return fmt.Sprintf("%s@%d", key, start-base) }
	streamTime, late := int64(-1), 0
	for i := range 12000 {
		key, ts := fmt.Sprintf("k%02d", i%40), base+int64(i)*5
		switch {
		case i%7 == 6:
			ts -= 1000
		case i%11 == 10:
			ts -= 300
		}
		streamTime = max(streamTime, ts)
		if start := ts / size * size; start+size+grace > streamTime {
			want[name(key, start)]++
		} else {
			late++
		}
		rs = append(rs, &kgo.Record{Topic: input, Key: []byte(key), Value: []byte("v"), Timestamp: time.UnixMilli(ts)})
	}
	if late == 0 {
		t.Fatal("no late record in the input")
	}
	for k := range 40 {
		rs = append(rs, &kgo.Record{Topic: input, Key: []byte(fmt.Sprintf("k%02d", k)), Value: []byte("v"), Timestamp: time.UnixMilli(base + 1_000_000)})
	}
	cl := c.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cancel()

	keys := window.TimeKeySerde(serde.String, suppressWindow)
	// results are the counts written per window, and the bad ones: a window
	// not closed, a count unlike the oracle's.
	results := func(rs []*kgo.Record) (map[string][]int64, []string) {
		got := map[string][]int64{}
		var bad []string
		for _, r := range rs {
			k, err := keys.Decode(r.Key)
			if err != nil {
				t.Fatalf("output %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			n := name(k.Key, k.Window.Start)
			v := int64(-1)
			if len(r.Value) == 8 {
				v = int64(binary.BigEndian.Uint64(r.Value))
			}
			got[n] = append(got[n], v)
			if want[n] != v {
				bad = append(bad, fmt.Sprintf("%s=%d (want %d) at %s/%d@%d", n, v, want[n], r.Topic, r.Partition, r.Offset))
			}
		}
		return got, bad
	}
	windowsOver := func(n int) func([]*kgo.Record) bool {
		return func(rs []*kgo.Record) bool { got, _ := results(rs); return len(got) > n }
	}
	written := 0
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SLUICE_TEST_CHILD=wordcount", "TOPOLOGY=suppress", "INPUT="+input, "OUTPUT="+output,
			"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the child has written more windows than before: in the
		// middle of the work, at a point the test does not choose.
		got, _ := results(c.readUntil(t, output, 2*time.Minute, windowsOver(written+len(want)/4)))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v before it was killed", round, err)
		}
		if len(got) <= written {
			t.Fatalf("round %d: the child wrote no new window", round)
		}
		written = len(got)
	}
	topo, err := suppressedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	// The task moves: an instance with an empty state directory.
	in := start(t, topo, childOptions(appID, c.brokers, t.TempDir())...)
	got, bad := results(c.readUntil(t, output, 2*time.Minute, windowsOver(len(want)-1)))
	in.stop(t)
	if len(bad) > 0 {
		t.Fatalf("%d windows written with a wrong count or not closed, e.g. %v", len(bad), bad[:min(len(bad), 5)])
	}
	if len(got) != len(want) {
		t.Fatalf("%d windows written, want %d", len(got), len(want))
	}
	repeated := 0
	for _, vs := range got {
		repeated += len(vs) - 1
	}
	t.Logf("%d windows, each with its exact count (%d late records dropped); %d written again after a kill or the move (at-least-once)", len(got), late, repeated)
}

// A suppression buffer over its bound with ShutDownWhenFull stops the
// App: Run returns the *dsl.BufferFullError, which names the node, its
// store and the bound (Kafka Streams' SuppressionIntegrationTest
// shouldShutdownWhenRecordConstraintIsViolated and ...BytesConstraint...).
func TestSuppressShutDownWhenFullStopsTheApp(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  dsl.BufferConfig
		want string
	}{
		{"records", dsl.BufferConfig{MaxRecords: 1, OnFull: dsl.ShutDownWhenFull}, "[2/1] records"},
		{"bytes", dsl.BufferConfig{MaxBytes: 100, OnFull: dsl.ShutDownWhenFull}, "/100] bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			input, output := topic(t, "in"), topic(t, "out")
			c.create(t, 1, input, output)
			b := dsl.NewBuilder()
			dsl.TableFromTopic(b, input, serde.String, serde.String).
				Suppress(dsl.UntilTimeLimit(time.Hour, tc.buf).WithName("bounded")).
				ToStream().To(output, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			in := start(t, topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
				runtime.CommitInterval(50*time.Millisecond))
			c.produceKeys(t, input, "a", "b")
			select {
			case <-in.finished:
			case <-time.After(2 * time.Minute):
				t.Fatal("Run did not return within two minutes of the buffer going over its bound")
			}
			err = <-in.done
			var full *dsl.BufferFullError
			if !errors.As(err, &full) || full.Node != "bounded" || full.Store != "bounded-store" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want a BufferFullError of node bounded containing %q", err, tc.want)
			}
		})
	}
}

// The buffers' changelog topics are created as Kafka Streams creates them:
// compacted, with the configs WithLoggingEnabled gives, and none for a
// buffer WithLoggingDisabled (SuppressionIntegrationTest's
// shouldCreateChangelogByDefault, shouldAllowOverridingChangelogConfig,
// shouldAllowDisablingChangelog).
func TestSuppressChangelogTopics(t *testing.T) {
	c := newCluster(t)
	input := topic(t, "in")
	c.create(t, 1, input)
	b := dsl.NewBuilder()
	tb := dsl.TableFromTopic(b, input, serde.String, serde.String)
	for _, s := range []dsl.Suppressed{
		dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("default"),
		dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("overridden").WithLoggingEnabled(map[string]string{"retention.bytes": "1000"}),
		dsl.UntilTimeLimit(time.Second, dsl.BufferConfig{}).WithName("unlogged").WithLoggingDisabled(),
	} {
		tb.Suppress(s).ToStream().Foreach(func(string, string) {})
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...))
	waitTasks(t, []*instance{in}, 1)
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changelog := func(name string) string { return appID + "-" + name + "-store-changelog" }
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has(changelog("default")) || !topics.Has(changelog("overridden")) || topics.Has(changelog("unlogged")) {
		t.Fatalf("topics %v: want the changelogs of default and overridden, none of unlogged", topics.Names())
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, changelog("default"), changelog("overridden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("%s: %v", rc.Name, rc.Err)
		}
		got := map[string]string{}
		for _, cfg := range rc.Configs {
			if cfg.Value != nil {
				got[cfg.Key] = *cfg.Value
			}
		}
		if got["cleanup.policy"] != "compact" {
			t.Errorf("%s: cleanup.policy %q, want compact", rc.Name, got["cleanup.policy"])
		}
		if want := map[bool]string{true: "1000"}[rc.Name == changelog("overridden")]; want != "" && got["retention.bytes"] != want {
			t.Errorf("%s: retention.bytes %q, want %s", rc.Name, got["retention.bytes"], want)
		}
	}
	in.stop(t)
}
