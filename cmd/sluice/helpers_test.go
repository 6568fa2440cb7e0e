package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// wordCount is examples/wordcount's topology (a main package cannot be
// imported): words of the input lines, lowercased, counted in store
// "counts" behind a repartition topic; every updated count written to
// output as an 8-byte big-endian int64.
func wordCount(t testing.TB, input, output string) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	lines := dsl.FromTopic(b, input, serde.Bytes, serde.String)
	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
		for _, w := range strings.Fields(line) {
			emit(strings.ToLower(w))
		}
	})
	counts := dsl.GroupByValue(words, func(w string) string { return w }, serde.String).
		Count(dsl.Named("counts"))
	counts.ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build(dsl.RequireNamedStores())
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// testLines returns n lines of words drawn from a small vocabulary, the
// same for the same seed, and the count of each word.
func testLines(n int, seed uint64) ([]string, map[string]int64) {
	vocab := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi")
	rng := rand.New(rand.NewPCG(seed, 7))
	want := map[string]int64{}
	lines := make([]string, n)
	for i := range lines {
		var ws []string
		for range 1 + rng.IntN(6) {
			w := vocab[rng.IntN(len(vocab))]
			if rng.IntN(4) == 0 {
				w = strings.ToUpper(w)
			}
			ws = append(ws, w)
			want[strings.ToLower(w)]++
		}
		lines[i] = strings.Join(ws, " ")
	}
	return lines, want
}

// produceLines writes lines to topic with null keys (spread over its
// partitions) and waits for them.
func produceLines(t testing.TB, c *kafkatest.Cluster, topic string, lines []string) {
	t.Helper()
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		rs[i] = &kgo.Record{Value: []byte(l)}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// runningApp is an App running word count in the background.
type runningApp struct {
	app  *runtime.App
	done chan error
	stop context.CancelFunc
}

// startApp starts an App of topo in the background; the test ends it if
// it did not (stopApp).
func startApp(t testing.TB, c *kafkatest.Cluster, topo *topology.Topology, appID, stateDir string, opts ...runtime.Option) *runningApp {
	t.Helper()
	all := append([]runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.Brokers...),
		runtime.StateDir(stateDir), runtime.CommitInterval(100 * time.Millisecond)}, opts...)
	app, err := runtime.New(topo, all...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningApp{app: app, done: make(chan error, 1), stop: cancel}
	go func() { ra.done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ra.done:
		case <-time.After(time.Minute):
			t.Error("the App did not stop within a minute")
		}
	})
	return ra
}

// stopApp stops the App and fails the test if Run failed.
func (ra *runningApp) stopApp(t testing.TB) {
	t.Helper()
	ra.stop()
	select {
	case err := <-ra.done:
		ra.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the App did not stop within a minute")
	}
}

// awaitRunning waits until the App is Running.
func (ra *runningApp) awaitRunning(t testing.TB) {
	t.Helper()
	waitFor(t, time.Minute, "the App to be RUNNING", func() (bool, string) {
		select {
		case err := <-ra.done:
			ra.done <- err
			t.Fatalf("Run returned: %v", err)
		default:
		}
		s := ra.app.State()
		return s == runtime.Running, "state " + s.String()
	})
}

// waitFor polls cond until it holds, failing the test after d with what
// cond said last.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", d, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countReader reads the word counts of an output topic from given offsets
// on, keeping the last count of each word.
type countReader struct {
	cl   *kgo.Client
	last map[string]int64
}

// newCountReader reads topic from offsets (nil: from the start).
func newCountReader(t testing.TB, c *kafkatest.Cluster, topic string, from map[int32]int64) *countReader {
	t.Helper()
	opts := []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}
	if from == nil {
		opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	} else {
		ps := map[int32]kgo.Offset{}
		for p, o := range from {
			ps[p] = kgo.NewOffset().At(o)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: ps}))
	}
	return &countReader{cl: c.Client(t, opts...), last: map[string]int64{}}
}

// await reads until the last count of every word is want's; a count above
// want's fails at once (input counted twice).
func (r *countReader) await(t testing.TB, want map[string]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for !maps.Equal(r.last, want) {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("counts not reached in 90s: got %v, want %v", r.last, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s partition %d: %v", topic, p, err)
		})
		fs.EachRecord(func(rec *kgo.Record) {
			if len(rec.Value) != 8 {
				t.Fatalf("output record at offset %d of partition %d: value %x is not an int64", rec.Offset, rec.Partition, rec.Value)
			}
			w, n := string(rec.Key), int64(binary.BigEndian.Uint64(rec.Value))
			if n > want[w] {
				t.Fatalf("count of %q is %d, more than the %d in the input: input counted twice", w, n, want[w])
			}
			r.last[w] = n
		})
	}
}

// testAdmin is an admin client of c whose topic listings are fresh (kadm
// answers them from the metadata cache, MetadataMinAge old).
func testAdmin(t testing.TB, c *kafkatest.Cluster) *kadm.Client {
	return kadm.NewClient(c.Client(t, kgo.MetadataMinAge(10*time.Millisecond)))
}

// endOffsets lists the end offset of each partition of topic.
func endOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	m := map[int32]int64{}
	for p, o := range ends[topic] {
		m[p] = o.Offset
	}
	return m
}

// committed returns the group's committed offsets, topic -> partition ->
// offset.
func committed(t testing.TB, adm *kadm.Client, group string) map[string]map[int32]int64 {
	t.Helper()
	os, err := adm.FetchOffsets(context.Background(), group)
	if err == nil {
		err = os.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	m := map[string]map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if m[o.Topic] == nil {
			m[o.Topic] = map[int32]int64{}
		}
		m[o.Topic][o.Partition] = o.At
	})
	return m
}

// topicNames lists the cluster's topics.
func topicNames(t testing.TB, adm *kadm.Client) []string {
	t.Helper()
	td, err := adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

// runCLI runs sluice with args in-process, returning its standard output
// and error output.
func runCLI(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustContain fails the test unless s contains each of subs.
func mustContain(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

// internalTopics are the Kafka names of topo's internal topics for appID.
func internalTopics(topo *topology.Topology, appID string) []string {
	var ts []string
	for _, it := range topo.InternalTopics() {
		ts = append(ts, task.TopicName(appID, it.Name))
	}
	slices.Sort(ts)
	return ts
}
