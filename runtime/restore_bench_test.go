package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// BenchmarkRestore measures restoring a changelog partition of
// SLUICE_RESTORE_KEYS distinct keys (default 1,000,000; 16-byte keys,
// 8-byte timestamped values, the layout of a count store) into a task's
// Pebble DB on the OS file system, through the runtime's restore path: a
// client of its own, bulk batches, the check of each record's input
// position. The broker is an embedded kfake one, or KAFKA_BROKERS. One op
// is one full restore into an empty DB.
//
//	go test -run '^$' -bench Restore -benchtime 3x ./runtime/
func BenchmarkRestore(b *testing.B) {
	keys := 1_000_000
	if s := os.Getenv("SLUICE_RESTORE_KEYS"); s != "" {
		var err error
		if keys, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	brokers := []string{os.Getenv("KAFKA_BROKERS")}
	if brokers[0] == "" {
		e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		brokers = e.Brokers()
	}
	topic := fmt.Sprintf("bench-restore-%d-changelog", time.Now().UnixNano())
	if err := connectors.CreateTopics(ctx, brokers, 1, topic); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for i := range keys {
		k := []byte(fmt.Sprintf("key-%012d", i))
		v := binary.BigEndian.AppendUint64(nil, uint64(i))
		bytes += int64(len(k) + len(v))
		cl.Produce(ctx, &kgo.Record{Key: k, Value: v, Partition: 0}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cl.Close()

	bld := dsl.NewBuilder()
	dsl.FromTopic(bld, "in", serde.Bytes, serde.Bytes).To("out", serde.Bytes, serde.Bytes)
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(topo, ApplicationID("bench-restore"), Brokers(brokers...), StateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	if a.admin, err = kgo.NewClient(kgo.SeedBrokers(brokers...)); err != nil {
		b.Fatal(err)
	}
	defer a.admin.Close()
	a.changelogs = a.newChangelogReader()
	if err := a.openStateDir(); err != nil {
		b.Fatal(err)
	}
	defer a.release()
	spec := &topology.StoreSpec{Name: "counts", Timestamped: true}

	b.SetBytes(bytes)
	b.ResetTimer()
	var restored int64
	for i := range b.N {
		id := taskID{sub: i, partition: 0}
		ts, err := a.openTaskState(id, nil, true)
		if err != nil {
			b.Fatal(err)
		}
		n, err := a.restoreStore(ctx, ts, ts.db.KeyValueStore(spec.Name), spec, topic, 0)
		if err == nil {
			err = a.finishRestore(ts)
		}
		if err != nil {
			b.Fatal(err)
		}
		if n != int64(keys) {
			b.Fatalf("restored %d records, want %d", n, keys)
		}
		restored += n
		b.StopTimer()
		if got := ts.db.KeyValueStore(spec.Name).ApproximateCount(); got < int64(keys)*9/10 {
			b.Fatalf("the store holds about %d keys after the restore, want %d", got, keys)
		}
		if err := ts.close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(restored)/b.Elapsed().Seconds(), "records/s")
}
