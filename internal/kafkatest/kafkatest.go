// Package kafkatest gives integration tests their broker: a real Kafka
// broker when KAFKA_BROKERS is set (make test-kafka starts one), else an
// embedded kfake cluster, with helpers for unique topic names, topics and
// clients.
package kafkatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

// Cluster is the broker a test runs against.
type Cluster struct {
	// Brokers are the seed brokers.
	Brokers []string
	// Real is true for a real Kafka broker (KAFKA_BROKERS).
	Real bool
}

// New returns the test's broker: KAFKA_BROKERS, or an embedded cluster
// stopped when the test ends.
func New(t testing.TB) *Cluster {
	t.Helper()
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		return &Cluster{Brokers: strings.Split(b, ","), Real: true}
	}
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return &Cluster{Brokers: e.Brokers()}
}

// Topic returns a topic name unique to the test, so tests can share a
// real broker.
func Topic(t testing.TB, name string) string {
	return fmt.Sprintf("%s-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), name, time.Now().UnixNano())
}

// Create creates topics with the given partitions, failing the test on
// error.
func (c *Cluster) Create(t testing.TB, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := connectors.CreateTopics(ctx, c.Brokers, partitions, topics...); err != nil {
		t.Fatal(err)
	}
}

// Client returns a client of the cluster with opts, closed when the test
// ends.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
