package runtime_test

// Exactly-once: counts end to end, read_committed output, rollback after
// an abort, commit on revoke, processor metadata across a crash, the
// offsets-only commit, fencing by a second instance with the same
// InstanceID.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// eosOptions are the options of an exactly-once instance of the tests.
func eosOptions(c *testCluster, appID string, extra ...runtime.Option) []runtime.Option {
	return append([]runtime.Option{
		runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.ProcessingGuarantee(runtime.ExactlyOnce), runtime.CacheMaxBytes(0),
		runtime.CommitInterval(50 * time.Millisecond),
	}, extra...)
}

// startHooked starts an App as start does, with the committer's test hook.
func startHooked(t *testing.T, topo *topology.Topology, hook func(string) error, opts ...runtime.Option) *instance {
	t.Helper()
	app, err := runtime.New(topo, append([]runtime.Option{runtime.StateDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	runtime.SetCommitHook(app, hook)
	in := &instance{app: app, done: make(chan error, 1), finished: make(chan struct{})}
	go func() {
		in.done <- app.Run(context.Background())
		close(in.finished)
	}()
	t.Cleanup(func() { _ = app.Close() })
	return in
}

// updates reads topic as a read_committed consumer until every key of
// want has reached its count (string keys, int64 values) or timeout, and
// returns each key's values in offset order.
func (c *testCluster) updates(t *testing.T, topic string, want map[string]int64, timeout time.Duration) map[string][]int64 {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := map[string][]int64{}
	done := func() bool {
		for k, n := range want {
			vs := got[k]
			if len(vs) == 0 || vs[len(vs)-1] != n {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 8 {
				t.Errorf("record %s/%d@%d: value of %d bytes, want an 8-byte int64", r.Topic, r.Partition, r.Offset, len(r.Value))
				return
			}
			got[string(r.Key)] = append(got[string(r.Key)], int64(binary.BigEndian.Uint64(r.Value)))
		})
	}
	return got
}

// checkExactlyOnce checks that each key's updates are 1..want[k], each
// once, in order: nothing lost, nothing counted twice, nothing repeated.
func checkExactlyOnce(t *testing.T, got map[string][]int64, want map[string]int64) {
	t.Helper()
	bad := 0
	for k, n := range want {
		vs := got[k]
		ok := int64(len(vs)) == n
		for i, v := range vs {
			ok = ok && v == int64(i+1)
		}
		if !ok && bad < 5 {
			t.Errorf("key %s: updates %v, want 1..%d once each", k, vs, n)
		}
		if !ok {
			bad++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s: %v", k, got[k])
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d keys wrong", bad, len(want))
	}
}

// keyedInput produces n records over keys k0..k(keys-1) and returns the
// count per key.
func keyedInput(t *testing.T, c *testCluster, input string, from, n, keys int, want map[string]int64) {
	t.Helper()
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("k%d", (from+i)%keys)
		want[ks[i]]++
	}
	c.produceKeys(t, input, ks...)
}

func keyedCount(t *testing.T, input, output string) *topology.Topology {
	t.Helper()
	topo, err := keyedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// A keyed count and a word count (with a repartition topic) under
// exactly-once: every update of every key exactly once, read committed.
func TestExactlyOnceCounts(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 3, input, output)
	appID := topic(t, "app")
	reg := prometheus.NewRegistry()
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 3000, 97, want)
	in := start(t, keyedCount(t, input, output), eosOptions(c, appID, runtime.Registerer(reg))...)
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	keyedInput(t, c, input, 3000, 1000, 97, want)
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	if n := counter(t, reg, "sluice_transaction_commits_total", nil); n == 0 {
		t.Error("no transaction committed")
	}
	in.stop(t)

	// A repartition topic between two sub-topologies: the downstream
	// task's input is written and committed in the same transactions.
	lin, lout := topic(t, "lines"), topic(t, "counts")
	c.create(t, 2, lin, lout)
	words := map[string]int64{}
	c.produce(t, lin, lines(0, 1000, 37, words)...)
	in = start(t, wordCount(t, lin, lout), eosOptions(c, topic(t, "wc"))...)
	checkExactlyOnce(t, c.updates(t, lout, words, time.Minute), words)
	in.stop(t)
}

// Output is invisible to read_committed consumers until its transaction
// commits: with the commit held at "offsets", a read_uncommitted consumer
// sees the updates, a read_committed one none; after the release, all.
func TestExactlyOnceNoOutputBeforeCommit(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	held, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	hook := func(stage string) error {
		if stage == "offsets" && once.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
		return nil
	}
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 50, 5, want)
	in := startHooked(t, keyedCount(t, input, output), hook, eosOptions(c, appID)...)
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("no commit within a minute")
	}
	// Uncommitted: written, but not visible read_committed.
	unc := c.client(t, kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := 0
	for seen == 0 && ctx.Err() == nil {
		seen += unc.PollFetches(ctx).NumRecords()
	}
	if seen == 0 {
		t.Fatal("a read_uncommitted consumer saw no output of the open transaction")
	}
	com := c.client(t, kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
	n := com.PollFetches(pctx).NumRecords()
	pcancel()
	if n != 0 {
		t.Fatalf("a read_committed consumer saw %d records of an open transaction", n)
	}
	close(release)
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	in.stop(t)
}

// An abort after the offsets were added to the transaction rolls every
// task back (state, positions) and the input is processed again: the
// counts stay exact and no update is visible twice.
func TestExactlyOnceAbortRevives(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 3, input, output)
	appID := topic(t, "app")
	reg := prometheus.NewRegistry()
	var commits, injected atomic.Int64
	hook := func(stage string) error {
		// Abort every other transaction, five times.
		if stage == "offsets" && commits.Add(1)%2 == 1 && injected.Load() < 5 {
			injected.Add(1)
			return runtime.ErrInjected
		}
		return nil
	}
	want := map[string]int64{}
	in := startHooked(t, keyedCount(t, input, output), hook, eosOptions(c, appID, runtime.Registerer(reg), runtime.MaxPollRecords(50))...)
	for round := range 10 {
		keyedInput(t, c, input, round*300, 300, 41, want)
	}
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	if n := injected.Load(); n == 0 {
		t.Fatal("no abort was injected")
	}
	if n := counter(t, reg, "sluice_transaction_aborts_total", map[string]string{"reason": "injected"}); n != float64(injected.Load()) {
		t.Errorf("aborts metric %v, want %d", n, injected.Load())
	}
	in.stop(t)
}

// Committing offsets without output (a topology that filters everything
// out) leaves no transaction open: an offset fetch requiring stable
// offsets answers at once, and the offsets are the input's end.
func TestExactlyOnceOffsetsOnlyCommit(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 20, 5, want)
	in := start(t, filterAll(t, input, output), eosOptions(c, appID)...)
	adm := kadm.NewClient(c.client(t))
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(kadm.RequireStable(context.Background()), time.Second)
		resp, err := adm.FetchOffsets(ctx, appID)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // not before the first commit
			t.Fatalf("offset fetch requiring stable offsets: %v (an offsets-only transaction left open?)", err)
		}
		if o, ok := resp.Lookup(input, 0); err == nil && ok && o.At == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets not committed within a minute: %v", resp)
		}
		time.Sleep(20 * time.Millisecond) // polling the broker: nothing to wait on
	}
	in.stop(t)
}

// A second App with the same InstanceID fences the first: its Run returns
// a *FencedError, and the second counts exactly from the last commit.
func TestExactlyOnceFencedBySameInstanceID(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 200, 11, want)
	opts := eosOptions(c, appID, runtime.InstanceID("one"), runtime.SessionTimeout(6*time.Second))
	first := start(t, keyedCount(t, input, output), opts...)
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	second := start(t, keyedCount(t, input, output), opts...)
	select {
	case err := <-first.done:
		var fe *runtime.FencedError
		if !errors.As(err, &fe) {
			t.Fatalf("the first instance's Run = %v, want a *FencedError", err)
		}
		if fe.InstanceID != "one" || fe.TransactionalID != appID+"-one" {
			t.Errorf("FencedError %+v: want instance ID one, transactional ID %s-one", fe, appID)
		}
	case <-time.After(time.Minute):
		t.Fatal("the first instance is still running a minute after the second started")
	}
	keyedInput(t, c, input, 200, 200, 11, want)
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	second.stop(t)
}

// filterAll passes no record of input to output.
func filterAll(t *testing.T, input, output string) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).
		Filter(func(string, string) bool { return false }).
		To(output, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// The processor metadata of a committed transaction survives a crash
// before the local state applied it (between EndTxn and the local commit):
// it comes back from the committed offsets' metadata, so an emit-final
// window is not emitted twice, though the restored window store still
// holds it.
func TestExactlyOnceProcessorMetadataSurvivesCrash(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey()
	// Windows kept for an hour: a closed window stays in the store, so a
	// lost "last emitted" metadata would emit it again.
	counts := dsl.WindowedBy(g, window.Tumbling(time.Minute, 0)).EmitFinal().
		Count(dsl.Named("final"), dsl.Materialized(dsl.StoreOptions{Retention: time.Hour})).ToStream()
	dsl.Map(counts, func(k window.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%d", k.Key, k.Window.Start), n
	}).To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 60_000 * 60_000 // recent: kept by a real broker
	cl := c.client(t, kgo.DefaultProduceTopic(input))
	produce := func(ts ...int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, at := range ts {
			r := &kgo.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(at)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Window 0 gets 3 records, window 1 one, which closes window 0.
	produce(base+1000, base+2000, base+3000, base+60_000+1000)
	var crashed atomic.Bool
	crash := func(stage string) error {
		if stage == "ended" && crashed.CompareAndSwap(false, true) {
			return errors.New("crash between EndTxn and the local commit")
		}
		return nil
	}
	opts := eosOptions(c, appID, runtime.StateDir(dir))
	first := startHooked(t, topo, crash, opts...)
	select {
	case err := <-first.done:
		if err == nil || !crashed.Load() {
			t.Fatalf("first run ended with %v, want the crash", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the first run did not crash within a minute")
	}
	w0 := fmt.Sprintf("k@%d", base)
	if got := c.updates(t, output, map[string]int64{w0: 3}, time.Minute); len(got[w0]) != 1 {
		t.Fatalf("before the restart: window 0 emitted %v, want [3]", got[w0])
	}
	// After the restart, a record in window 2 closes window 1: window 0
	// must not come again.
	second := start(t, topo, opts...)
	produce(base + 120_000 + 1000)
	w1 := fmt.Sprintf("k@%d", base+60_000)
	got := c.updates(t, output, map[string]int64{w0: 3, w1: 1}, time.Minute)
	second.stop(t)
	if len(got[w0]) != 1 || len(got[w1]) != 1 {
		t.Fatalf("windows emitted %v, want window 0 once ([3]) and window 1 once ([1])", got)
	}
	// Read to the end: window 0 must not come after window 1 either.
	all := c.updates(t, output, map[string]int64{w0: 3, w1: 1}, 3*time.Second)
	if len(all[w0]) != 1 {
		t.Fatalf("window 0 emitted %v, want once", all[w0])
	}
}

// Two instances under exactly-once: when the second joins, the first
// commits all its tasks on the revoke (one transaction), and no update
// is lost or visible twice.
func TestExactlyOnceRevokeCommitsAll(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 4, input, output)
	appID := topic(t, "app")
	topo := keyedCount(t, input, output)
	want := map[string]int64{}
	a := start(t, topo, eosOptions(c, appID, runtime.MaxPollRecords(100), runtime.CommitInterval(time.Second))...)
	waitTasks(t, []*instance{a}, 4)
	keyedInput(t, c, input, 0, 2000, 53, want)
	b := start(t, topo, eosOptions(c, appID, runtime.MaxPollRecords(100), runtime.CommitInterval(time.Second))...)
	keyedInput(t, c, input, 2000, 2000, 53, want)
	waitTasks(t, []*instance{a, b}, 2, 2)
	keyedInput(t, c, input, 4000, 1000, 53, want)
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	a.stop(t)
	keyedInput(t, c, input, 5000, 500, 53, want)
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	b.stop(t)
}

// kill -9 of an exactly-once instance in the middle of processing, twice,
// then a restart: a read_committed consumer sees, per key, the counts 1..n
// each exactly once, in order (no update lost, none repeated: the killed
// instances' open transactions are aborted, their input processed again
// from the committed offsets, their local state at most one commit
// behind).
func TestKill9AndRestartExactlyOnce(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "words"), topic(t, "counts")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 20000, 211, want)

	kill9Rounds(t, c, output, 2, 3000, "TOPOLOGY=keyed", "GUARANTEE=eos", "INPUT="+input, "OUTPUT="+output,
		"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
	opts := append(childOptions(appID, c.brokers, dir), runtime.ProcessingGuarantee(runtime.ExactlyOnce), runtime.CacheMaxBytes(0))
	in := start(t, keyedCount(t, input, output), opts...)
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	in.stop(t)
}

// A transaction held open past the transaction timeout (a paused
// instance) is aborted by the broker. The instance learns it when it ends
// the transaction, and the abort decides: on a broker that re-initialises
// the producer (real Kafka without KIP-890 part 2) the tasks are rolled
// back and the instance goes on; under KIP-890 part 2 rules (kfake) the
// producer is fenced and Run returns a *FencedError. Either way nothing of
// the held transaction is visible read_committed, and the counts are
// exact once an instance runs on.
func TestExactlyOnceTransactionTimeout(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	reg := prometheus.NewRegistry()
	adm := kadm.NewClient(c.client(t))
	var held, expired atomic.Bool
	hook := func(stage string) error {
		if stage != "offsets" || !held.CompareAndSwap(false, true) {
			return nil
		}
		// The pause under test: until the broker has aborted the
		// transaction (a real broker looks for expired transactions every
		// 10 s by default).
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d, err := adm.DescribeTransactions(ctx, appID+"-z")
			cancel()
			if tx, ok := d[appID+"-z"]; err == nil && ok && tx.Err == nil && tx.State != "Ongoing" {
				expired.Store(true)
				return nil
			}
			time.Sleep(100 * time.Millisecond) // polling the broker: nothing to wait on
		}
		return nil
	}
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 300, 17, want)
	opts := eosOptions(c, appID, runtime.TransactionTimeout(time.Second), runtime.Registerer(reg), runtime.InstanceID("z"))
	in := startHooked(t, keyedCount(t, input, output), hook, opts...)
	deadline := time.After(time.Minute)
	for {
		select {
		case err := <-in.done:
			var fe *runtime.FencedError
			if !errors.As(err, &fe) {
				t.Fatalf("Run = %v, want nil or a *FencedError", err)
			}
			t.Logf("fenced: %v", err)
			if counter(t, reg, "sluice_fenced_total", nil) != 1 {
				t.Error("sluice_fenced_total is not 1")
			}
			if !expired.Load() {
				t.Fatal("the broker did not abort the held transaction within a minute")
			}
			next := start(t, keyedCount(t, input, output), eosOptions(c, appID, runtime.InstanceID("z"))...)
			checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
			next.stop(t)
			return
		case <-deadline:
			t.Fatal("the instance neither went on nor stopped within a minute")
		default:
		}
		if held.Load() && counter(t, reg, "sluice_transaction_aborts_total", nil) > 0 &&
			counter(t, reg, "sluice_transaction_commits_total", nil) > 0 {
			break // recovered and committed again
		}
		time.Sleep(20 * time.Millisecond) // polling metrics: nothing to wait on
	}
	if !expired.Load() {
		t.Fatal("the broker did not abort the held transaction within a minute")
	}
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	in.stop(t)
}

// Under exactly-once a commit interval at or past the transaction timeout
// is refused: every transaction would time out before its commit.
func TestExactlyOnceCommitIntervalBelowTransactionTimeout(t *testing.T) {
	_, err := runtime.New(keyedCount(t, "in", "out"), runtime.ApplicationID("app"), runtime.Brokers("localhost:9092"),
		runtime.ProcessingGuarantee(runtime.ExactlyOnce), runtime.CommitInterval(30*time.Second))
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) || ce.Key != "CommitInterval" {
		t.Fatalf("New = %v, want a ConfigError for CommitInterval", err)
	}
	if _, err := runtime.New(keyedCount(t, "in", "out"), runtime.ApplicationID("app"), runtime.Brokers("localhost:9092"),
		runtime.ProcessingGuarantee(runtime.ExactlyOnce), runtime.CommitInterval(time.Second)); err != nil {
		t.Fatalf("New with a 1s commit interval: %v", err)
	}
}

// A cluster whose transaction.version is 1 (a Kafka cluster upgraded from
// 3.x, without KIP-890 part 2 transactions): the offsets partition is
// added to each transaction with AddOffsetsToTxn and TxnOffsetCommit goes
// at v4, as franz-go does for its own produces then; the counts are
// exactly once.
func TestExactlyOnceTransactionVersion1(t *testing.T) {
	_, c := embeddedCluster(t)
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 3})
	if err == nil {
		for _, r := range res {
			if err == nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		t.Fatalf("set transaction.version 1: %v", err)
	}
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	want := map[string]int64{}
	keyedInput(t, c, input, 0, 1000, 31, want)
	var lines strings.Builder
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &lines}, nil))
	in := start(t, keyedCount(t, input, output), eosOptions(c, topic(t, "app"), runtime.Logger(log))...)
	checkExactlyOnce(t, c.updates(t, output, want, time.Minute), want)
	in.stop(t)
	if !strings.Contains(lines.String(), "add_offsets_to_txn=true") {
		t.Error("the App did not see the cluster's transaction.version 1")
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
