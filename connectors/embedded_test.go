package connectors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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

// Connect with no brokers starts an embedded broker and, without a state
// directory, a temporary one that Close removes; with brokers it starts
// nothing.
func TestConnect(t *testing.T) {
	c, err := Connect("", "", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) == 0 || c.StateDir == "" || c.Where != "the embedded broker" {
		t.Fatalf("Connect(\"\", \"\") = %+v", c)
	}
	if _, err := os.Stat(c.StateDir); err != nil {
		t.Fatalf("state dir: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary state dir not removed: %v", err)
	}
	dir := t.TempDir()
	c, err = Connect("", dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != dir {
		t.Errorf("StateDir = %q, want %q", c.StateDir, dir)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "embedded-broker")); err != nil {
		t.Errorf("the embedded broker keeps no data in the state dir: %v", err)
	}
	c, err = Connect("a:1,b:2", "", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Where != "Kafka at a:1,b:2" || c.StateDir != "" {
		t.Errorf("Connect(brokers) = %+v", c)
	}
	_ = c.Close()
}
