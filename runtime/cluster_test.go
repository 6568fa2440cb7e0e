package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/topology"
)

// testCluster is the broker the integration tests run against: a real
// Kafka broker when KAFKA_BROKERS is set (make test-kafka), else an
// embedded kfake cluster.
type testCluster struct {
	brokers []string
	real    bool
	// opts are options of every client the test makes (the secured
	// broker's TLS and SASL: security_kafka_test.go).
	opts []kgo.Opt
}

func newCluster(t *testing.T) *testCluster {
	t.Helper()
	kc := kafkatest.New(t)
	return &testCluster{brokers: kc.Brokers, real: kc.Real}
}

func topic(t *testing.T, name string) string { return kafkatest.Topic(t, name) }

func (c *testCluster) create(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	(&kafkatest.Cluster{Brokers: c.brokers}).Create(t, partitions, topics...)
}

func (c *testCluster) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return (&kafkatest.Cluster{Brokers: c.brokers}).Client(t, append(slices.Clone(c.opts), opts...)...)
}

// produceKeys writes records with the given keys (and the value "x") to
// topic, partitioned by key, and waits for them.
func (c *testCluster) produceKeys(t *testing.T, topic string, keys ...string) {
	t.Helper()
	cl := c.client(t, kgo.DefaultProduceTopic(topic))
	rs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		rs[i] = &kgo.Record{Key: []byte(k), Value: []byte("x")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// embeddedCluster starts a kfake cluster of the test's own, stopped when
// the test ends, for tests that inject faults through its control hooks
// (and so cannot share a real broker).
func embeddedCluster(t *testing.T) (*connectors.Embedded, *testCluster) {
	t.Helper()
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, &testCluster{brokers: e.Brokers()}
}

// latestValues reads topic from its start until it has seen n distinct
// keys, and returns the latest value of each (string keys and values); it
// fails the test after timeout.
func (c *testCluster) latestValues(t *testing.T, topic string, n int, timeout time.Duration) map[string]string {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := map[string]string{}
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after %v: %d of %d keys in %s: %v", timeout, len(got), n, topic, got)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	return got
}

// wantCoPartitionError runs topo and checks that it fails at start-up with
// a CoPartitionError naming each of want ("<topic> (<n> partitions)").
func (c *testCluster) wantCoPartitionError(t *testing.T, topo *topology.Topology, want ...string) {
	t.Helper()
	app, err := runtime.New(topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...), runtime.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = app.Run(ctx)
	var cpe *runtime.CoPartitionError
	if !errors.As(err, &cpe) {
		t.Fatalf("Run = %v, want a CoPartitionError", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
}

// produce writes values (null keys) to topic and waits for them.
func (c *testCluster) produce(t *testing.T, topic string, values ...string) {
	t.Helper()
	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Value: []byte(v)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// counts reads a topic of string keys and int64 values into the latest
// value per key until done(latest) holds or the deadline passes; it returns
// the latest values and the number of records read.
func (c *testCluster) counts(t *testing.T, topic string, timeout time.Duration, done func(map[string]int64) bool) (map[string]int64, int) {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	latest := map[string]int64{}
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !done(latest) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return latest, n
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if len(r.Value) != 8 {
				t.Errorf("record %s/%d@%d: value of %d bytes, want an 8-byte int64", r.Topic, r.Partition, r.Offset, len(r.Value))
				return
			}
			latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
		})
	}
	return latest, n
}

// equalCounts is a done function for counts: the latest values equal want.
func equalCounts(want map[string]int64) func(map[string]int64) bool {
	return func(got map[string]int64) bool {
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
}

func diffCounts(got, want map[string]int64) string {
	var sb strings.Builder
	for k, v := range want {
		if got[k] != v {
			fmt.Fprintf(&sb, "%s: got %d, want %d; ", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&sb, "%s: got %d, want none; ", k, v)
		}
	}
	return sb.String()
}
