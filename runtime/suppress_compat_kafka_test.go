//go:build kafka

package runtime_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// A Kafka Streams 4.3.1 application takes over from a Sluice application
// with a suppressed window count (compat/java/SuppressTakeover: the same
// application ID, stores and changelogs): it restores the suppression
// buffer from the changelog Sluice wrote, and emits the windows Sluice had
// buffered, with their counts, once a new record closes them. Sluice's
// buffer changelog is thus Kafka Streams' own, as its restore reads it.
//
// Built with the kafka tag only (make test-kafka): it needs the real
// broker and a JDK.
func TestKafkaStreamsRestoresSluiceSuppressBuffer(t *testing.T) {
	if os.Getenv("KAFKA_BROKERS") == "" {
		t.Fatal("KAFKA_BROKERS is not set: run it with make test-kafka, which starts a real broker")
	}
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "final")
	c.create(t, 1, input, output)
	const size = 10 * time.Second
	keys := window.TimeKeySerde(serde.String, size)
	b := dsl.NewBuilder()
	dsl.WindowedBy(dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey(), window.Tumbling(size, 0)).
		Count(dsl.Named("counts")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To(output, keys, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(50*time.Millisecond))
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
	produce("a", base+1000)
	produce("b", base+2000)
	produce("a", base+3000)
	// Wait until the buffer's changelog holds both windows (committed):
	// the last record of each key, not a tombstone.
	changelog := appID + "-final-store-changelog"
	holds := func(rs []*kgo.Record) bool {
		last := map[string]bool{}
		for _, r := range rs {
			last[string(r.Key)] = r.Value != nil
		}
		return len(last) == 2 && last[string(keyBytes(t, keys, "a", base))] && last[string(keyBytes(t, keys, "b", base))]
	}
	if !holds(c.readUntil(t, changelog, 30*time.Second, holds)) {
		t.Fatal("the buffer changelog does not hold the two windows")
	}
	in.stop(t)
	if rs := c.readUntil(t, output, time.Second, func(rs []*kgo.Record) bool { return len(rs) > 0 }); len(rs) > 0 {
		t.Fatalf("Sluice emitted %d windows before any closed", len(rs))
	}
	produce("c", base+11000) // closes the first window

	script, err := filepath.Abs("../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer jcancel()
	cmd := exec.CommandContext(jctx, script, "java", "SuppressTakeover", "emit", strings.Join(c.brokers, ","), appID, input, output,
		strconv.FormatInt(size.Milliseconds(), 10), t.TempDir(), "2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("SuppressTakeover: %v\n%s", err, stderr.String())
	}
	got := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		got[strings.TrimSpace(line)] = true
	}
	want := map[string]bool{fmt.Sprintf("a@%d=2", base): true, fmt.Sprintf("b@%d=1", base): true}
	if !maps.Equal(got, want) {
		t.Fatalf("Kafka Streams emitted %v after restoring Sluice's buffer, want %v\n%s", got, want, stderr.String())
	}
}

// The other way round: a Sluice application takes over from a Kafka
// Streams 4.3.1 one (compat/java/SuppressTakeover in mode buffer) that
// buffered two windows and stopped. Sluice restores the buffer from the
// changelog Kafka Streams wrote (records with only the "v" header, no
// input position: all applied) and emits the two windows, with their
// counts, once a new record closes them.
func TestSluiceRestoresKafkaStreamsSuppressBuffer(t *testing.T) {
	if os.Getenv("KAFKA_BROKERS") == "" {
		t.Fatal("KAFKA_BROKERS is not set: run it with make test-kafka, which starts a real broker")
	}
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "final")
	c.create(t, 1, input, output)
	const size = 10 * time.Second
	keys := window.TimeKeySerde(serde.String, size)
	appID := topic(t, "app")
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
	produce("a", base+1000)
	produce("b", base+2000)
	produce("a", base+3000)

	script, err := filepath.Abs("../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer jcancel()
	cmd := exec.CommandContext(jctx, script, "java", "SuppressTakeover", "buffer", strings.Join(c.brokers, ","), appID, input, output,
		strconv.FormatInt(size.Milliseconds(), 10), t.TempDir(), "2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("SuppressTakeover buffer: %v\n%s%s", err, out, stderr.String())
	}
	// Kafka Streams' buffer changelog: the two windows, header v=3 alone.
	changelog := appID + "-final-store-changelog"
	last := map[string]bool{}
	for _, r := range c.readUntil(t, changelog, 30*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= 2 }) {
		if r.Value != nil && (len(r.Headers) != 1 || r.Headers[0].Key != "v" || string(r.Headers[0].Value) != "\x03") {
			t.Fatalf("Kafka Streams' buffer changelog record %s/%d@%d has headers %v", r.Topic, r.Partition, r.Offset, r.Headers)
		}
		last[string(r.Key)] = r.Value != nil
	}
	if !last[string(keyBytes(t, keys, "a", base))] || !last[string(keyBytes(t, keys, "b", base))] {
		t.Fatalf("Kafka Streams' buffer changelog does not hold the two windows: %v", last)
	}

	b := dsl.NewBuilder()
	dsl.WindowedBy(dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey(), window.Tumbling(size, 0)).
		Count(dsl.Named("counts")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To(output, keys, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(50*time.Millisecond))
	produce("c", base+11000) // closes the first window
	got := map[string]int{}
	for _, r := range c.readUntil(t, output, 30*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= 2 }) {
		k, err := keys.Decode(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s@%d=%s", k.Key, k.Window.Start-base, int64Text(r.Value))]++
	}
	in.stop(t)
	if want := map[string]int{"a@0=2": 1, "b@0=1": 1}; !maps.Equal(got, want) {
		t.Fatalf("Sluice emitted %v after restoring Kafka Streams' buffer, want %v", got, want)
	}
}

func keyBytes(t *testing.T, keys serde.Serde[window.Windowed[string]], key string, start int64) []byte {
	t.Helper()
	b, err := keys.Encode(nil, window.Windowed[string]{Key: key, Window: window.Window{Start: start}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
