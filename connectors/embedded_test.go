package connectors

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// With a data dir, topics and their records survive a restart of the
// embedded broker.
func TestEmbeddedDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	e, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateTopics(ctx, e.Brokers(), 2, "kept"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "kept", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	e.Close()

	e, err = StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.ConsumeTopics("kept"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "v" {
		t.Fatalf("after restart read %d records %v, want the one written before", len(recs), recs)
	}
}

// CreateTopics leaves existing topics alone.
func TestCreateTopicsIdempotent(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	for range 2 {
		if err := CreateTopics(ctx, e.Brokers(), 3, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.Cluster().PartitionInfos("t")); n != 3 {
		t.Errorf("topic has %d partitions, want 3", n)
	}
}
