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
	*kafkatest.Cluster
}

func newCluster(t *testing.T) *testCluster {
	t.Helper()
	return &testCluster{kafkatest.New(t)}
}

// testTopics returns topic names unique to the test and creates them with
// the given partitions.
func (c *testCluster) testTopics(t *testing.T, partitions int32) Topics {
	t.Helper()
	topics := Topics{
		Users: kafkatest.Topic(t, "users"), Pages: kafkatest.Topic(t, "pages"),
		Clicks: kafkatest.Topic(t, "clicks"), Purchases: kafkatest.Topic(t, "purchases"),
		Enriched: kafkatest.Topic(t, "enriched"), RegionClicks: kafkatest.Topic(t, "region-clicks"),
		Attributed: kafkatest.Topic(t, "attributed"),
	}
	c.Create(t, partitions, append(topics.inputs(), topics.outputs()...)...)
	return topics
}

// produceTables writes the generation's pages and users.
func (c *testCluster) produceTables(t *testing.T, topics Topics, g *generation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := produceTables(ctx, c.Brokers, topics, g); err != nil {
		t.Fatal(err)
	}
}

// feed writes the generation's clicks and purchases in rounds, each once
// the application appID has committed the previous one (see feed).
func (c *testCluster) feed(t *testing.T, appID string, topics Topics, g *generation, between func(round int) error) {
	t.Helper()
	if err := feed(context.Background(), c.Brokers, appID, topics, g, 2*time.Minute, nil, between); err != nil {
		t.Fatal(err)
	}
}

// await reads the output topics from their start until done holds for
// the records read, or fails the test after timeout.
func (c *testCluster) await(t *testing.T, topics Topics, timeout time.Duration, done func(*outputs) bool) *outputs {
	t.Helper()
	got, err := awaitOutputs(context.Background(), c.Brokers, topics, timeout, nil, done)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// readAll reads every record the output topics hold now: up to the end
// offsets of their partitions when it is called.
func (c *testCluster) readAll(t *testing.T, topics Topics) *outputs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(c.Client(t)).ListEndOffsets(ctx, topics.outputs()...)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return c.await(t, topics, 30*time.Second, func(o *outputs) bool { return int64(o.total()) >= total })
}

// instance is an App running in the test process.
type instance struct {
	app  *runtime.App
	reg  *prometheus.Registry
	done chan error
	stop context.CancelFunc
}

// start runs a clickstream App with opts and a metrics registry; the test
// stops it at the latest at its end.
func start(t *testing.T, topics Topics, opts ...runtime.Option) *instance {
	t.Helper()
	topo, err := Topology(topics)
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

// instanceOptions are the options of the tests' instances: a short
// session timeout, so the group notices a killed member soon, and a short
// commit interval, so that the rounds of input follow each other fast and
// a kill lands between commits, inside one, or between a result's write
// and the commit that covers it.
func instanceOptions(appID string, brokers []string, stateDir string) []runtime.Option {
	return []runtime.Option{
		runtime.ApplicationID(appID), runtime.Brokers(brokers...), runtime.StateDir(stateDir),
		runtime.CommitInterval(50 * time.Millisecond), runtime.MaxPollRecords(200),
		runtime.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)),
	}
}
