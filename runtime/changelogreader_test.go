package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/internal/kafkatest"
)

// The changelog reader reads a partition from an offset to the end offset
// listed when it starts (not what is written after), passes transaction
// markers over, counts what it hands on, and stops when its context ends.
func TestChangelogReader(t *testing.T) {
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := "reader-changelog"
	if err := connectors.CreateTopics(ctx, e.Brokers(), 2, topic); err != nil {
		t.Fatal(err)
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("reader-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v"), Partition: 1}
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil { // a marker at offset 10
		t.Fatal(err)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	plain, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	reg := prometheus.NewRegistry()
	m, err := newMetrics("reader-test", reg)
	if err != nil {
		t.Fatal(err)
	}
	cr := &changelogReader{clientOpts: []kgo.Opt{kgo.SeedBrokers(e.Brokers()...)}, admin: kadm.NewClient(admin),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), restored: m.restored, remaining: m.restoreRemaining}

	var keys []string
	n, end, err := cr.read(ctx, topic, 1, 3, "s", func(r *kgo.Record) error {
		keys = append(keys, string(r.Key))
		if len(keys) == 2 {
			// Written after the read started: not read.
			late := &kgo.Record{Key: []byte("late"), Value: []byte("v"), Topic: topic, Partition: 1}
			return plain.ProduceSync(ctx, late).FirstErr()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "3 4 5 6 7 8 9"; n != 7 || end != 11 || strings.Join(keys, " ") != want {
		t.Errorf("read from 3 = %d records %q to %d, want 7 records %q to 11 (past the marker)", n, strings.Join(keys, " "), end, want)
	}
	if got := restoredRecords(t, reg); got != 7 {
		t.Errorf("restored counter = %v, want 7", got)
	}

	// An empty partition, and a start past the end: nothing to read.
	if n, end, err := cr.read(ctx, topic, 0, -1, "s", nil); n != 0 || end != 0 || err != nil {
		t.Errorf("read of an empty partition = %d, %d, %v; want 0, 0, nil", n, end, err)
	}

	// A cancelled context stops the read with its error.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	_, _, err = cr.read(cctx, topic, 1, -1, "s", func(*kgo.Record) error {
		t.Error("a record handed on after the context ended")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("read with its context cancelled = %v, want context.Canceled", err)
	}
}

// restoredRecords sums the restored-records counter of reg.
func restoredRecords(t *testing.T, reg *prometheus.Registry) float64 {
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

// Under exactly-once the reader reads committed records to the last
// stable offset. A partition whose records below that end are an aborted
// transaction's, with another producer's transaction open at the end, has
// no visible record at end-1: the read ends once a record at or past the
// end arrives (the open transaction ended) instead of waiting for a record
// that never comes, and hands on neither the aborted records nor those at
// or past the end.
func TestChangelogReaderReadCommittedAbortedTail(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.Topic(t, "reader-committed")
	kc.Create(t, 1, topic)
	txnClient := func(id string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(topic+"-"+id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	produce := func(cl *kgo.Client, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	committed, aborted, open := txnClient("committed"), txnClient("aborted"), txnClient("open")
	// Offsets 0-2 committed (marker 3), 4-5 aborted, 6 open, then the
	// abort marker at 7: the last stable offset is 6.
	for _, step := range []func() error{
		committed.BeginTransaction,
		func() error { produce(committed, "c0", "c1", "c2"); return nil },
		func() error { return committed.EndTransaction(ctx, kgo.TryCommit) },
		aborted.BeginTransaction,
		func() error { produce(aborted, "a4", "a5"); return nil },
		open.BeginTransaction,
		func() error { produce(open, "o6"); return nil },
		func() error { return aborted.EndTransaction(ctx, kgo.TryAbort) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	lso, err := kadm.NewClient(admin).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup(topic, 0); o.Offset != 6 {
		t.Fatalf("last stable offset = %d, want 6 (the open transaction's first record)", o.Offset)
	}
	reg := prometheus.NewRegistry()
	m, err := newMetrics("reader-committed", reg)
	if err != nil {
		t.Fatal(err)
	}
	cr := &changelogReader{clientOpts: []kgo.Opt{kgo.SeedBrokers(kc.Brokers...)}, admin: kadm.NewClient(admin),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), restored: m.restored, remaining: m.restoreRemaining,
		readCommitted: true, stall: 15 * time.Second}
	var keys []string
	n, end, err := cr.read(ctx, topic, 0, -1, "s", func(r *kgo.Record) error {
		keys = append(keys, string(r.Key))
		if len(keys) == 3 {
			// The end is listed (the read started); the open transaction
			// ends now, so its records and marker come past the end.
			// Without the rule the read would wait for offset 5, which
			// read_committed never returns, and stall.
			produce(open, "o8")
			return open.EndTransaction(ctx, kgo.TryCommit)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "c0 c1 c2"; n != 3 || end != 6 || strings.Join(keys, " ") != want {
		t.Errorf("read committed = %d records %q to %d, want 3 records %q to 6", n, strings.Join(keys, " "), end, want)
	}
	if got := restoreRemainingGauge(t, reg); got != 0 {
		t.Errorf("remaining gauge after the read = %v, want 0", got)
	}

	// The same partition now: everything committed is read, the aborted
	// records are not, and the read ends at the last stable offset (the
	// high watermark: no transaction is open).
	keys = nil
	n, end, err = cr.read(ctx, topic, 0, -1, "s", func(r *kgo.Record) error {
		keys = append(keys, string(r.Key))
		return nil
	})
	if want := "c0 c1 c2 o6 o8"; err != nil || n != 5 || end != 10 || strings.Join(keys, " ") != want {
		t.Errorf("second read = %d records %q to %d, %v; want 5 records %q to 10", n, strings.Join(keys, " "), end, err, want)
	}
}

// restoreRemainingGauge sums the restore-remaining gauge of reg.
func restoreRemainingGauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "sluice_restore_remaining_records" {
			for _, m := range mf.GetMetric() {
				n += m.GetGauge().GetValue()
			}
		}
	}
	return n
}

// A task's restore under exactly-once reads to the log end offset, not to
// the last stable offset: another producer's open transaction (a zombie's,
// until its transaction timeout) can hold the last stable offset below
// transactions the task's owner committed after it. A local state that
// lags its last commit (a crash between the transaction's commit and the
// local apply) has its changelog offset past that last stable offset; a
// read to the last stable offset would restore nothing and the task would
// resume at the group's committed offsets without the last commit's
// changes (the chaos run's lost and duplicated counts). The read waits for
// the open transaction to end and hands on the committed records below the
// log end.
func TestChangelogReaderToLogEndPastOpenTransaction(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.Topic(t, "reader-log-end")
	kc.Create(t, 1, topic)
	txnClient := func(id string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(topic+"-"+id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	produce := func(cl *kgo.Client, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	zombie, owner := txnClient("zombie"), txnClient("owner")
	// The zombie's transaction is open from offset 0; the owner commits
	// 1-2 (marker 3) and 4 (marker 5): the last stable offset is 0, the
	// high watermark 6. The local state holds the first commit (offset 4).
	for _, step := range []func() error{
		zombie.BeginTransaction,
		func() error { produce(zombie, "z0"); return nil },
		owner.BeginTransaction,
		func() error { produce(owner, "b1", "b2"); return nil },
		func() error { return owner.EndTransaction(ctx, kgo.TryCommit) },
		owner.BeginTransaction,
		func() error { produce(owner, "b4"); return nil },
		func() error { return owner.EndTransaction(ctx, kgo.TryCommit) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	lso, err := kadm.NewClient(admin).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup(topic, 0); o.Offset != 0 {
		t.Fatalf("last stable offset = %d, want 0 (the zombie's open transaction)", o.Offset)
	}
	reg := prometheus.NewRegistry()
	m, err := newMetrics("reader-log-end", reg)
	if err != nil {
		t.Fatal(err)
	}
	cr := &changelogReader{clientOpts: []kgo.Opt{kgo.SeedBrokers(kc.Brokers...)}, admin: kadm.NewClient(admin),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), restored: m.restored, remaining: m.restoreRemaining,
		readCommitted: true, stall: 30 * time.Second}
	type result struct {
		keys   []string
		n, end int64
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		res.n, res.end, res.err = cr.readToLogEnd(ctx, topic, 0, 4, "s", func(r *kgo.Record) error {
			res.keys = append(res.keys, string(r.Key))
			return nil
		})
		done <- res
	}()
	// Once the read has listed its end (the remaining gauge holds what it
	// waits for), the zombie's transaction ends: it is aborted, as the
	// transaction timeout or the zombie's successor would.
	var res result
	aborted := false
	for finished := false; !finished; {
		select {
		case res = <-done:
			finished = true
		case <-time.After(10 * time.Millisecond):
			if !aborted && restoreRemainingGauge(t, reg) > 0 {
				aborted = true
				if err := zombie.EndTransaction(ctx, kgo.TryAbort); err != nil {
					t.Fatal(err)
				}
			}
		case <-ctx.Done():
			t.Fatal("the read did not end")
		}
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if !aborted || res.n != 1 || res.end != 6 || strings.Join(res.keys, " ") != "b4" {
		t.Errorf("read from 4 to the log end = %d records %q to %d (waited for the open transaction: %v); want 1 record \"b4\" to 6 after the zombie's abort",
			res.n, strings.Join(res.keys, " "), res.end, aborted)
	}
	// The reads to the last stable offset (global stores) stop at it.
	if n, end, err := cr.read(ctx, topic, 0, 7, "s", nil); err != nil || n != 0 || end != 7 {
		t.Errorf("read to the last stable offset after the abort = %d, %d, %v; want 0, 7, nil", n, end, err)
	}
}
