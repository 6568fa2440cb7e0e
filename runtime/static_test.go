package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// countTopology counts records per key: one stateful sub-topology.
func countTopology(t *testing.T, in, out string) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.FromTopic(b, in, serde.String, serde.String).GroupByKey().Count(dsl.Named("counts")).
		ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// haApp is an App running in the background (internal tests).
type haApp struct {
	app  *App
	dir  string
	done chan error
}

func startHAApp(t *testing.T, topo *topology.Topology, dir string, opts ...Option) *haApp {
	t.Helper()
	base := []Option{StateDir(dir), CommitInterval(100 * time.Millisecond)}
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		base = append(base, Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	a, err := New(topo, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := &haApp{app: a, dir: dir, done: make(chan error, 1)}
	go func() { h.done <- a.Run(context.Background()) }()
	t.Cleanup(func() { _ = a.Close() })
	return h
}

func (h *haApp) stop(t *testing.T) {
	t.Helper()
	if err := h.app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// waitFor waits until cond holds, waking on the apps' task changes and
// every 50ms (standby assignments change without a task change), or fails
// after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, apps []*haApp, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		for _, h := range apps {
			select {
			case err := <-h.done:
				t.Fatalf("%s: an instance stopped: %v", what, err)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		<-tick.C
	}
}

// outputWatcher records when each key first appears in a topic.
type outputWatcher struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func watchOutput(t *testing.T, c *kafkatest.Cluster, topic string) *outputWatcher {
	t.Helper()
	w := &outputWatcher{seen: map[string]time.Time{}}
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			w.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				if _, ok := w.seen[string(r.Key)]; !ok {
					w.seen[string(r.Key)] = now
				}
			})
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *outputWatcher) at(key string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.seen[key]
	return at, ok
}

func produceTo(t *testing.T, c *kafkatest.Cluster, topic string, partition int32, keys ...string) {
	t.Helper()
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for _, k := range keys {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(k), Value: []byte("v")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (h *haApp) runnersSnapshot() map[taskID]*runner {
	h.app.mu.Lock()
	defer h.app.mu.Unlock()
	return maps.Clone(h.app.runners)
}

// A static member (InstanceID) closed without leaving the group and
// restarted with the same instance ID and state directory gets its tasks
// back and processes again within 5s; the other member's tasks are
// untouched (not revoked, not reopened). On a real broker the group does
// not even rebalance (the generation stays); kfake rebalances, because it
// compares the whole join metadata of the returning member (Kafka only its
// protocol), and the cooperative, sticky assignment keeps every task where
// it was.
func TestStaticMemberRestartKeepsTasks(t *testing.T) {
	c := kafkatest.New(t)
	in, out := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 4, in, out)
	topo := countTopology(t, in, out)
	app := kafkatest.Topic(t, "app")
	opts := func(id string) []Option {
		return []Option{ApplicationID(app), Brokers(c.Brokers...), InstanceID(id), SessionTimeout(30 * time.Second)}
	}
	dir1, dir2 := t.TempDir(), t.TempDir()
	a1 := startHAApp(t, topo, dir1, opts("i1")...)
	a2 := startHAApp(t, topo, dir2, opts("i2")...)
	apps := []*haApp{a1, a2}
	waitFor(t, 2*time.Minute, "two tasks each", apps, func() bool {
		ids1, _ := a1.app.Tasks()
		ids2, _ := a2.app.Tasks()
		return len(ids1) == 2 && len(ids2) == 2
	})
	w := watchOutput(t, c, out)
	for p := range int32(4) {
		produceTo(t, c, in, p, fmt.Sprintf("before-%d", p))
	}
	waitFor(t, time.Minute, "output before the restart", apps, func() bool {
		for p := range 4 {
			if _, ok := w.at(fmt.Sprintf("before-%d", p)); !ok {
				return false
			}
		}
		return true
	})
	tasks1, _ := a1.app.Tasks()
	runners2 := a2.runnersSnapshot()
	_, gen := a2.app.client.GroupMetadata()

	a1.stop(t) // a static member: closes without leaving the group
	start := time.Now()
	a1 = startHAApp(t, topo, dir1, opts("i1")...)
	apps = []*haApp{a1, a2}
	var mine []int32
	for _, s := range tasks1 {
		id, err := parseTaskID(s)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, id.partition)
	}
	for _, p := range mine {
		produceTo(t, c, in, p, fmt.Sprintf("after-%d", p))
	}
	waitFor(t, time.Minute, "output of the restarted member", apps, func() bool {
		for _, p := range mine {
			if _, ok := w.at(fmt.Sprintf("after-%d", p)); !ok {
				return false
			}
		}
		return true
	})
	var took time.Duration
	for _, p := range mine {
		at, _ := w.at(fmt.Sprintf("after-%d", p))
		took = max(took, at.Sub(start))
	}
	t.Logf("static member restart: processing again %v after the restart (real broker: %v)", took, c.Real)
	if took > 5*time.Second {
		t.Errorf("the restarted static member processed again after %v, want within 5s", took)
	}
	if got, _ := a1.app.Tasks(); !slices.Equal(got, tasks1) {
		t.Errorf("restarted member's tasks %v, want its tasks before %v", got, tasks1)
	}
	if got := a2.runnersSnapshot(); !maps.Equal(got, runners2) {
		t.Errorf("the other member's tasks changed across the restart: %v, before %v", slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(runners2)))
	}
	_, gen2 := a2.app.client.GroupMetadata()
	t.Logf("group generation %d before the restart, %d after", gen, gen2)
	if c.Real && gen2 != gen {
		t.Errorf("the group rebalanced: generation %d, before %d", gen2, gen)
	}
}
