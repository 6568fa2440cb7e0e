package main

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
)

// testCluster is the broker the integration tests run against: a real
// Kafka broker when KAFKA_BROKERS is set (make test-kafka), else an
// embedded kfake cluster. (As in the runtime's tests.)
type testCluster struct {
	brokers []string
}

func newCluster(t *testing.T) *testCluster {
	t.Helper()
	kc := kafkatest.New(t)
	return &testCluster{brokers: kc.Brokers}
}

func topic(t *testing.T, name string) string { return kafkatest.Topic(t, name) }

func (c *testCluster) create(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	(&kafkatest.Cluster{Brokers: c.brokers}).Create(t, partitions, topics...)
}

func (c *testCluster) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return (&kafkatest.Cluster{Brokers: c.brokers}).Client(t, opts...)
}

// produce writes the generated records to topic and waits for them.
func (c *testCluster) produce(t *testing.T, topic string, recs []genRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := produceViews(ctx, c.brokers, topic, recs); err != nil {
		t.Fatal(err)
	}
}

// await reads the output topic from its start until done holds for the
// windows read, or fails the test after timeout.
func (c *testCluster) await(t *testing.T, topic string, timeout time.Duration, done func([]Emitted) bool) []Emitted {
	t.Helper()
	got, err := awaitWindows(context.Background(), c.brokers, topic, timeout, nil, done)
	if err != nil {
		t.Fatalf("%v; read %d windows", err, len(got))
	}
	return got
}

// readAll reads every record topic holds now: up to the end offsets of its
// partitions when it is called.
func (c *testCluster) readAll(t *testing.T, topic string) []Emitted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(c.client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return c.await(t, topic, 30*time.Second, func(es []Emitted) bool { return int64(len(es)) >= total })
}

// instance is an App running in the test process.
type instance struct {
	app  *runtime.App
	reg  *prometheus.Registry
	done chan error
	stop context.CancelFunc
}

// start runs a pageviews App with opts and a metrics registry; the test
// stops it at the latest at its end.
func start(t *testing.T, input, output string, size, grace time.Duration, opts ...runtime.Option) *instance {
	t.Helper()
	topo, err := Topology(input, output, size, grace)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	app, err := runtime.New(topo, append(opts, runtime.Registerer(reg))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{app: app, reg: reg, done: make(chan error, 1), stop: cancel}
	go func() { in.done <- app.Run(ctx) }()
	t.Cleanup(func() { in.shutdown(t) })
	return in
}

// shutdown stops the App gracefully and fails the test if it had failed;
// calling it again does nothing.
func (in *instance) shutdown(t *testing.T) {
	t.Helper()
	if in.done == nil {
		return
	}
	in.stop()
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("app: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("app still running a minute after it was stopped")
	}
	in.done = nil
}
