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
