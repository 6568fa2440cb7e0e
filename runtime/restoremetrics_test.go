package runtime

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

// Restores run concurrently, one per task, so the partitions of one
// store restore at the same time: the remaining-records gauge of the
// store is their sum, and one partition's read ending does not zero what
// another still has to read. (The second read is made from inside the
// first's callback: the two overlap deterministically.)
func TestRestoreRemainingSumsConcurrentReads(t *testing.T) {
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := "remaining-changelog"
	if err := connectors.CreateTopics(ctx, e.Brokers(), 2, topic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for p, n := range map[int32]int{0: 4, 1: 10} {
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Partition: p}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg := prometheus.NewRegistry()
	m, err := newMetrics("remaining-test", reg)
	if err != nil {
		t.Fatal(err)
	}
	cr := &changelogReader{clientOpts: []kgo.Opt{kgo.SeedBrokers(e.Brokers()...)}, admin: kadm.NewClient(cl),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), restored: m.restored, remaining: m.restoreRemaining}
	gauge := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var v float64
		for _, mf := range mfs {
			if mf.GetName() == "sluice_restore_remaining_records" {
				for _, m := range mf.GetMetric() {
					v += m.GetGauge().GetValue()
				}
			}
		}
		return v
	}

	first := true
	if _, _, err := cr.read(ctx, topic, 1, -1, "s", func(*kgo.Record) error {
		if !first {
			return nil
		}
		first = false
		// Partition 1 has 10 records to read; partition 0 restores
		// meanwhile, and ends first.
		if _, _, err := cr.read(ctx, topic, 0, -1, "s", func(*kgo.Record) error {
			if got := gauge(); got < 10 {
				t.Errorf("while both partitions restore: remaining = %v, want at least partition 1's 10", got)
			}
			return nil
		}); err != nil {
			return err
		}
		if got := gauge(); got != 10 {
			t.Errorf("after partition 0's restore: remaining = %v, want partition 1's 10", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := gauge(); got != 0 {
		t.Errorf("after both restores: remaining = %v, want 0", got)
	}
}
