package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// standbyFixture is a count per key over a one-partition input, run by
// instance A (active on its only task, 0_0); tests start a second
// instance B that keeps the task as standby, given by the group's
// assignment or, for an instance outside the group (standbyOnly), by the
// test calling reconcileStandbysLocked as the group callback does.
type standbyFixture struct {
	c             *kafkatest.Cluster
	topo          *topology.Topology
	appID         string
	input, output string
	changelog     state.TopicPartition
	want          map[string]int64
	next          int // the next record's number
	cl            *kgo.Client
}

func newStandbyFixture(t *testing.T) *standbyFixture {
	t.Helper()
	return newStandbyFixtureN(t, 1)
}

// newStandbyFixtureN is newStandbyFixture with n input partitions (tasks).
func newStandbyFixtureN(t *testing.T, n int32) *standbyFixture {
	t.Helper()
	c := kafkatest.New(t)
	f := &standbyFixture{c: c, appID: kafkatest.Topic(t, "app"), input: kafkatest.Topic(t, "in"),
		output: kafkatest.Topic(t, "out"), want: map[string]int64{}}
	c.Create(t, n, f.input, f.output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, f.input, serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts")).ToStream().To(f.output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	f.topo = topo
	spec := topo.SubTopology(0).Stores[0]
	f.changelog = state.TopicPartition{Topic: task.ChangelogTopic(f.appID, spec), Partition: 0}
	f.cl = c.Client(t, kgo.DefaultProduceTopic(f.input))
	return f
}

// start runs an instance of the fixture's application with its own state
// directory; the instance is closed when the test ends.
func (f *standbyFixture) start(t *testing.T, dir string, reg *prometheus.Registry, opts ...Option) *App {
	t.Helper()
	opts = append([]Option{Logger(testLogger()), ApplicationID(f.appID), Brokers(f.c.Brokers...), StateDir(dir), Registerer(reg),
		CommitInterval(50 * time.Millisecond), CacheMaxBytes(0)}, opts...)
	a, err := New(f.topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = a.Close()
		if err := <-done; err != nil {
			t.Errorf("instance: %v", err)
		}
	})
	waitUntil(t, "the instance to start", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.client != nil
	})
	return a
}

// standbyOnly sets an instance of the fixture's application up as start
// does, without joining the group: the test alone decides its standby
// tasks (a member's would follow each assignment), and may commit the
// group's offsets itself. It is closed when the test ends.
func (f *standbyFixture) standbyOnly(t *testing.T, dir string, reg *prometheus.Registry, opts ...Option) *App {
	t.Helper()
	opts = append([]Option{Logger(testLogger()), ApplicationID(f.appID), Brokers(f.c.Brokers...), StateDir(dir),
		Registerer(reg), CommitInterval(50 * time.Millisecond)}, opts...)
	b, err := New(f.topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.runCtx, b.closeCtx = ctx, ctx
	if err := b.openStateDir(); err != nil {
		t.Fatal(err)
	}
	if b.admin, err = kgo.NewClient(b.baseClientOpts("admin")...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		b.closeStandbysLocked()
		b.mu.Unlock()
		cancel()
		b.stopCleanups()
		b.admin.Close()
		b.blockCache.Unref()
		_ = b.dirLock.Unlock()
	})
	adm := kadm.NewClient(b.admin)
	if b.layout, err = b.planTopics(ctx, adm); err != nil {
		t.Fatal(err)
	}
	if err := b.createInternalTopics(ctx, adm, b.layout); err != nil {
		t.Fatal(err)
	}
	return b
}

// produce produces n records over 7 keys, one changelog record each (no
// record cache).
func (f *standbyFixture) produce(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range n {
		k := fmt.Sprintf("k%d", f.next%7)
		f.next++
		f.want[k]++
		if err := f.cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// end returns the end offset of topic partition tp.
func (f *standbyFixture) end(t *testing.T, tp state.TopicPartition) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(f.cl).ListEndOffsets(ctx, tp.Topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(tp.Topic, tp.Partition)
	if !ok || o.Err != nil {
		return -1 // not created yet
	}
	return o.Offset
}

// waitCommitted waits until the group has committed the whole input.
func (f *standbyFixture) waitCommitted(t *testing.T) {
	t.Helper()
	end := f.end(t, state.TopicPartition{Topic: f.input})
	waitUntil(t, "the group to commit the input", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := kadm.NewClient(f.cl).FetchOffsets(ctx, f.appID)
		if err != nil {
			return false
		}
		o, ok := resp.Lookup(f.input, 0)
		return ok && o.At == end
	})
}

// waitApplied waits until standby 0_0 of b has applied its changelog to
// the end, and returns that end.
func (f *standbyFixture) waitApplied(t *testing.T, b *App) int64 {
	t.Helper()
	var end int64
	waitUntil(t, "the standby to apply the changelog", func() bool {
		end = f.end(t, f.changelog)
		next, ok := b.standbys.standbyState(taskID{0, 0})
		return ok && end > 0 && next[f.changelog] == end
	})
	return end
}

// counts reads the counts standby 0_0 of b holds for the fixture's keys.
func (f *standbyFixture) counts(t *testing.T, b *App) map[string]int64 {
	t.Helper()
	sb := b.standbys
	sb.mu.Lock()
	defer sb.mu.Unlock()
	st := sb.tasks[taskID{0, 0}]
	if st == nil {
		t.Fatal("no standby task 0_0")
	}
	kv := st.st.db.KeyValueStore("counts")
	got := map[string]int64{}
	for k := range f.want {
		v, ok, err := kv.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			// A timestamped store: the timestamp, then the count.
			got[k] = int64(binary.BigEndian.Uint64(v[8:]))
		}
	}
	return got
}

// outputCounts reads the latest count per key on the output topic until it
// equals want.
func (f *standbyFixture) outputCounts(t *testing.T) map[string]int64 {
	t.Helper()
	cl := f.c.Client(t, kgo.ConsumeTopics(f.output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for !equalMaps(got, f.want) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
		})
	}
	return got
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func reconcile(a *App, ids ...taskID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reconcileStandbysLocked(ids)
}

// metricValue sums the samples of metric name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			}
		}
	}
	return v
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A standby task, given by the group's assignment (NumStandbyReplicas) to
// the instance that does not run the task, follows the active's changelog
// to the active's content; when the task moves to it,
// the standby is promoted and the task restores only what the standby
// had not applied, then counts on exactly.
func TestStandbyFollowsActiveAndPromotionRestoresOnlyLag(t *testing.T) {
	f := newStandbyFixture(t)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := f.start(t, t.TempDir(), regA, NumStandbyReplicas(1))
	f.produce(t, 200)
	f.waitCommitted(t)
	b := f.start(t, t.TempDir(), regB, NumStandbyReplicas(1))
	waitUntil(t, "the group to give B the task's standby", func() bool { return b.standbys.has(taskID{0, 0}) })
	if ids, _ := b.Tasks(); len(ids) != 0 {
		t.Fatalf("instance B runs tasks %v, want none (A keeps its task)", ids)
	}
	end := f.waitApplied(t, b)
	if got := f.counts(t, b); !equalMaps(got, f.want) {
		t.Fatalf("standby counts %v, want the active's %v", got, f.want)
	}
	if n := metricValue(t, regB, "sluice_standby_records_applied_total"); n != float64(end) {
		t.Errorf("standby applied %v records, want the changelog's %d", n, end)
	}
	// It keeps following.
	f.produce(t, 50)
	f.waitCommitted(t)
	end = f.waitApplied(t, b)
	if got := f.counts(t, b); !equalMaps(got, f.want) {
		t.Fatalf("standby counts after more input %v, want %v", got, f.want)
	}
	waitUntil(t, "a standby commit at the changelog end", func() bool {
		b.standbys.mu.Lock()
		defer b.standbys.mu.Unlock()
		return b.standbys.tasks[taskID{0, 0}].st.loggedEnds[topicPartition{f.changelog.Topic, 0}] == end
	})
	if sum := b.offsets.snapshot()[taskID{0, 0}]; sum != end {
		t.Errorf("offset sum of the standby for the member metadata: %d, want %d", sum, end)
	}
	if lag := metricValue(t, regB, "sluice_standby_lag_records"); lag != 0 {
		t.Errorf("standby lag %v, want 0", lag)
	}

	// The standby stops fetching while 30 more records are processed by
	// A: it lags by the changelog records A writes for them (one per key
	// and commit: the changelog buffer) when A stops and B takes over.
	b.standbys.cl.PauseFetchPartitions(map[string][]int32{f.changelog.Topic: {0}})
	f.produce(t, 30)
	f.waitCommitted(t)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lag := f.end(t, f.changelog) - end
	if lag < int64(len(f.want)) {
		t.Fatalf("A wrote %d changelog records for 30 records over %d keys, want at least one per key", lag, len(f.want))
	}
	waitUntil(t, "instance B to run the task", func() bool {
		ids, _ := b.Tasks()
		return len(ids) == 1
	})
	f.produce(t, 20)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("after the promotion: output counts %v, want %v", got, f.want)
	}
	if n := metricValue(t, regB, "sluice_restored_records_total"); n != float64(lag) {
		t.Errorf("the promoted task restored %v records, want the standby's lag of %d", n, lag)
	}
	if n := metricValue(t, regB, "sluice_standby_promotions_total"); n != 1 {
		t.Errorf("promotions: %v, want 1", n)
	}
	if b.standbys.has(taskID{0, 0}) {
		t.Error("task 0_0 is still a standby on the instance running it")
	}
}

// A standby closed without committing (as in a crash) reopens from the
// changelog offsets of its last commit, in its DB's meta record, and
// applies what it lost again; a standby closed cleanly commits its
// position first.
func TestStandbyReopensFromItsLastCommit(t *testing.T) {
	f := newStandbyFixture(t)
	f.start(t, t.TempDir(), prometheus.NewRegistry())
	f.produce(t, 100)
	f.waitCommitted(t)
	// B's own commit interval is long: its standby commits only on close.
	b := f.standbyOnly(t, t.TempDir(), prometheus.NewRegistry(), CommitInterval(time.Hour))
	id := taskID{0, 0}
	reconcile(b, id)
	first := f.waitApplied(t, b)
	reconcile(b) // closes it, committing
	reconcile(b, id)
	if next, _ := b.standbys.standbyState(id); next[f.changelog] != first {
		t.Fatalf("after a clean close the standby reopens at %d, want its committed %d", next[f.changelog], first)
	}
	f.produce(t, 40)
	f.waitCommitted(t)
	if second := f.waitApplied(t, b); second <= first {
		t.Fatalf("the changelog did not grow: %d, then %d", first, second)
	}
	// A crash: what was applied since the last commit is lost. The
	// standby is reopened, and its position read, under the lock its
	// reader applies records under: once it is released, the reader may
	// apply the records again at once (standbyState reads the live
	// position), which reconcile and then standbyState would race with.
	b.mu.Lock()
	committed, _, err := b.committedOffsets(b.runCtx)
	if err != nil {
		b.mu.Unlock()
		t.Fatal(err)
	}
	b.standbys.mu.Lock()
	b.standbys.closeLocked(id, false)
	err = b.standbys.openLocked(b.runCtx, id, committed)
	b.standbys.publishLocked()
	var reopened int64 = -1
	if st := b.standbys.tasks[id]; st != nil {
		for _, sp := range st.parts {
			if sp.tp == f.changelog {
				reopened = sp.next
			}
		}
	}
	b.standbys.mu.Unlock()
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if reopened != first {
		t.Fatalf("after a crash the standby reopens at %d, want its last commit's %d", reopened, first)
	}
	f.waitApplied(t, b)
	if got := f.counts(t, b); !equalMaps(got, f.want) {
		t.Fatalf("standby counts after the crash %v, want %v", got, f.want)
	}
}

// An open standby's directory is neither swept as stale nor deleted by a
// cleanup timer; once the standby is closed (no longer assigned here), its
// directory is deleted after the cleanup delay.
func TestStandbyDirectoryKeptWhileStandby(t *testing.T) {
	f := newStandbyFixture(t)
	f.start(t, t.TempDir(), prometheus.NewRegistry())
	f.produce(t, 20)
	f.waitCommitted(t)
	const delay = 100 * time.Millisecond
	dir := t.TempDir()
	b := f.standbyOnly(t, dir, prometheus.NewRegistry(), StateCleanupDelay(delay))
	id := taskID{0, 0}
	reconcile(b, id)
	f.waitApplied(t, b)
	taskDir := filepath.Join(dir, f.appID, id.String())
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(taskDir, old, old); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.sweepStateDirLocked()
	b.mu.Unlock()
	b.scheduleCleanup(id)
	waitUntil(t, "the cleanup timer to fire", func() bool {
		b.cleanupMu.Lock()
		defer b.cleanupMu.Unlock()
		return b.cleanups[id] == nil
	})
	if _, err := os.Stat(taskDir); err != nil {
		t.Fatalf("the standby's directory is gone: %v", err)
	}
	reconcile(b)
	waitUntil(t, "the closed standby's directory to be deleted", func() bool {
		_, err := os.Stat(taskDir)
		return os.IsNotExist(err)
	})
}

func testLogger() *slog.Logger {
	if os.Getenv("STANDBY_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Under at-least-once, a changelog record whose input the group has not
// committed yet (its flush may belong to a commit that never completed)
// waits: the standby applies it once the group's offsets pass its input,
// and until then it counts in the standby's lag. (The group has no
// member: the test commits its offsets.)
func TestStandbyWaitsForTheGroupToConfirmInput(t *testing.T) {
	f := newStandbyFixture(t)
	reg := prometheus.NewRegistry()
	b := f.standbyOnly(t, t.TempDir(), reg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(f.cl)
	// The active's changelog writes for input offsets 0, 1 and 2.
	for i := range 3 {
		r := &kgo.Record{Topic: f.changelog.Topic, Key: []byte("k"), Value: binary.BigEndian.AppendUint64(nil, uint64(i+1)),
			Headers: []kgo.RecordHeader{{Key: task.InputHeader, Value: task.AppendInputPosition(nil, f.input, 0, int64(i))}}}
		if err := f.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(off int64) {
		t.Helper()
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: f.input, Partition: 0, At: off})
		if err := adm.CommitAllOffsets(ctx, f.appID, offs); err != nil {
			t.Fatal(err)
		}
	}
	commit(2) // inputs 0 and 1 committed, 2 not
	id := taskID{0, 0}
	reconcile(b, id)
	waitUntil(t, "the confirmed records to apply", func() bool {
		next, _ := b.standbys.standbyState(id)
		return next[f.changelog] == 2 && metricValue(t, reg, "sluice_standby_lag_records") == 1
	})
	// It waits, as long as the group's offsets do not move.
	b.standbys.mu.Lock()
	held := len(b.standbys.tasks[id].parts[0].held)
	b.standbys.mu.Unlock()
	if held != 1 {
		t.Fatalf("%d records wait, want 1 (input offset 2)", held)
	}
	commit(3)
	waitUntil(t, "the last record to apply once its input is committed", func() bool {
		next, _ := b.standbys.standbyState(id)
		return next[f.changelog] == 3
	})
	waitUntil(t, "a standby commit with the input positions", func() bool {
		b.standbys.mu.Lock()
		defer b.standbys.mu.Unlock()
		st := b.standbys.tasks[id].st
		return st.loggedEnds[topicPartition{f.changelog.Topic, 0}] == 3 && st.positions[topicPartition{f.input, 0}] == 3
	})
}

// A new instance gets warm-up replicas of the tasks the balanced
// assignment wants on it; they are standby tasks, which catch up on the
// changelogs, report their offsets in the member metadata, and the
// probing rebalance then moves the tasks: each is promoted (restoring
// only what its warm-up lacked) and the instance that ran it keeps it as a
// standby (an active task becoming a standby on one instance). Counts stay
// exact throughout.
func TestWarmupCatchesUpAndTheTaskMovesToIt(t *testing.T) {
	f := newStandbyFixtureN(t, 2)
	opts := []Option{NumStandbyReplicas(1), AcceptableRecoveryLag(5), MaxWarmupReplicas(2), ProbingRebalanceInterval(time.Second)}
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := f.start(t, t.TempDir(), regA, opts...)
	f.produce(t, 300)
	f.waitCommitted(t)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("before the new instance: output counts %v, want %v", got, f.want)
	}
	b := f.start(t, t.TempDir(), regB, opts...)
	var moved taskID
	waitUntil(t, "one task on each instance", func() bool {
		ia, _ := a.Tasks()
		ib, _ := b.Tasks()
		if len(ia) != 1 || len(ib) != 1 {
			return false
		}
		id, err := parseTaskID(ib[0])
		moved = id
		return err == nil
	})
	if n := metricValue(t, regB, "sluice_standby_promotions_total"); n != 1 {
		t.Errorf("the new instance promoted %v standbys, want its warm-up of task %s", n, moved)
	}
	if n := metricValue(t, regB, "sluice_standby_records_applied_total"); n == 0 {
		t.Errorf("the warm-up of task %s applied no changelog record", moved)
	}
	if n := metricValue(t, regB, "sluice_restored_records_total"); n > 5 {
		t.Errorf("the promoted task %s restored %v records, more than the acceptable recovery lag of 5", moved, n)
	}
	waitUntil(t, "the former active to keep the moved task as standby", func() bool { return a.standbys.has(moved) })
	f.produce(t, 100)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("after the move: output counts %v, want %v", got, f.want)
	}
}

// ChangelogBufferBytes(0) logs every write of a store without a record
// cache, as Kafka Streams does; by default each key's latest write per
// commit is logged (one per key and commit, after the task's first write),
// and the counts restored from either are the same.
func TestChangelogBufferBytes(t *testing.T) {
	for _, every := range []bool{true, false} {
		t.Run(map[bool]string{true: "every-write", false: "per-commit"}[every], func(t *testing.T) {
			f := newStandbyFixture(t)
			var opts []Option
			if every {
				opts = append(opts, ChangelogBufferBytes(0))
			}
			a := f.start(t, t.TempDir(), prometheus.NewRegistry(), opts...)
			f.produce(t, 70)
			f.waitCommitted(t)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			end := f.end(t, f.changelog)
			switch {
			case every && end != 70:
				t.Fatalf("%d changelog records for 70 writes with ChangelogBufferBytes(0), want 70", end)
			case !every && (end >= 70 || end < 7):
				t.Fatalf("%d changelog records for 70 writes of 7 keys, want fewer than one per write and one per key at least", end)
			}
			// A new instance restores the counts from the changelog alone.
			b := f.start(t, t.TempDir(), prometheus.NewRegistry(), opts...)
			waitUntil(t, "the new instance to restore the task", func() bool {
				ids, _ := b.Tasks()
				return len(ids) == 1
			})
			f.produce(t, 7)
			if got := f.outputCounts(t); !equalMaps(got, f.want) {
				t.Fatalf("counts after a restore from %d changelog records: %v, want %v", end, got, f.want)
			}
		})
	}
	if _, err := New(newStandbyFixture(t).topo, ApplicationID("x"), Brokers("b"), ChangelogBufferBytes(-1)); err == nil || !strings.Contains(err.Error(), "ChangelogBufferBytes") {
		t.Errorf("ChangelogBufferBytes(-1): %v, want a ConfigError naming it", err)
	}
}
