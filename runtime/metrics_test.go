package runtime

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// metricsTopology keeps each key's last value in an in-memory store read
// back by a wall-clock punctuator (a range over the store), repartitions
// by key and counts in a Pebble store: two sub-topologies, record caches,
// stores that log, a repartition topic, punctuations. The in-memory store
// restores in full wherever its task moves (standbys keep only persistent
// stores).
func metricsTopology(t *testing.T, in, out string) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	last := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "last", InMemory: true}, serde.String, serde.Int64)
	s := dsl.FromTopic(b, in, serde.String, serde.Int64)
	p := dsl.Process(s, func() operators.Processor[string, int64, string, int64] {
		var store *state.KV[string, int64]
		return &operators.ProcessorFuncs[string, int64, string, int64]{
			InitFunc: func(ctx operators.ProcessorContext[string, int64]) (err error) {
				if store, err = last.Open(ctx); err != nil {
					return err
				}
				_, err = ctx.Schedule(10*time.Millisecond, operators.WallClockTime, func(int64) error {
					for range store.All() {
					}
					return nil
				})
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
				if err := store.Put(r.Key, r.Value); err != nil {
					return err
				}
				return ctx.Forward(r)
			},
		}
	}, dsl.ConnectStores(last))
	p.GroupByKey().Count(dsl.Named("counts")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// families returns the name of every metric family the App registers.
func families(m *metrics) []string {
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for _, c := range m.collectors() {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			names = append(names, re.FindStringSubmatch(d.String())[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// scrape is one gathering of a registry: each family's type and its
// series' values (a histogram's: its sample count), by label set.
type scrape map[string]scrapedFamily

type scrapedFamily struct {
	typ    dto.MetricType
	series map[string]float64
}

func gather(t *testing.T, g prometheus.Gatherer) scrape {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return toScrape(mfs)
}

// scrapeHTTP scrapes GET /metrics of a.
func scrapeHTTP(t *testing.T, a *App) scrape {
	t.Helper()
	resp, err := http.Get(a.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return toScrape(slices.Collect(maps.Values(byName)))
}

func toScrape(mfs []*dto.MetricFamily) scrape {
	s := scrape{}
	for _, mf := range mfs {
		f := scrapedFamily{typ: mf.GetType(), series: map[string]float64{}}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(ls)
			k := strings.Join(ls, ",")
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				f.series[k] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				f.series[k] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				f.series[k] = float64(m.GetHistogram().GetSampleCount())
			}
		}
		s[mf.GetName()] = f
	}
	return s
}

// moved reports whether family name moved from before to after: a
// counter's series increased, a histogram's observed more, a gauge's
// series appeared or changed value.
func moved(before, after scrape, name string) bool {
	f, ok := after[name]
	if !ok {
		return false
	}
	for k, v := range f.series {
		old, had := before[name].series[k]
		if f.typ == dto.MetricType_GAUGE {
			if !had || v != old {
				return true
			}
		} else if v > old {
			return true
		}
	}
	return false
}

// producer produces records to topic until stopped, each key k0..k19 in
// turn with an increasing value.
type loadProducer struct {
	stop func()
	done chan struct{}
	mu   sync.Mutex
	n    int
}

func startLoad(t *testing.T, cl *kgo.Client, topic string) *loadProducer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &loadProducer{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ctx.Err() == nil; i++ {
			v := binary.BigEndian.AppendUint64(nil, uint64(i))
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%20), Value: v}).FirstErr(); err != nil {
				if ctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
				return
			}
			p.mu.Lock()
			p.n++
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.stop(); <-p.done })
	return p
}

// TestMetricsMoveUnderLoad scrapes GET /metrics of running instances
// twice under load and sees every family of the App's move. Instance A (at
// MetricsRecordingLevel(MetricsDebug)) runs alone, processing a stream of
// records, and is scraped; then instance B (at the default INFO level)
// joins, which rebalances the tasks, restores B's from their changelogs
// and gives each instance standbys of the other's tasks; an undecodable
// record goes to the dead-letter queue. A family moves if it moved on A
// (between its two scrapes) or on B (between its registry before Run,
// when the server does not serve yet, and its scrape under load); at last
// A closes, and B promotes its standbys. (The Kafka client metrics are
// franz-go's: the dashboard test checks their names.)
// Families that need a fault to move are left out, named with the test
// that moves them.
func TestMetricsMoveUnderLoad(t *testing.T) {
	for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) { testMetricsMoveUnderLoad(t, g) })
	}
}

func testMetricsMoveUnderLoad(t *testing.T, g Guarantee) {
	c := kafkatest.New(t)
	appID, in, out, dlq := kafkatest.Topic(t, "app"), kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "dlq")
	c.Create(t, 2, in, out, dlq)
	topo := metricsTopology(t, in, out)
	cl := c.Client(t)

	start := func(reg *prometheus.Registry, opts ...Option) (*App, func()) {
		if reg != nil {
			opts = append(opts, Registerer(reg))
		}
		opts = append([]Option{Logger(testLogger()), ApplicationID(appID), Brokers(c.Brokers...), StateDir(t.TempDir()),
			HTTPAddr("127.0.0.1:0"), ProcessingGuarantee(g), CommitInterval(100 * time.Millisecond), NumStandbyReplicas(1),
			DeadLetterQueue(dlq), OnDeserializationError(operators.SendToDeadLetterQueue)}, opts...)
		a, err := New(topo, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return a, func() {
			done := make(chan error, 1)
			go func() { done <- a.Run(context.Background()) }()
			var once sync.Once
			t.Cleanup(func() {
				once.Do(func() {
					_ = a.Close()
					if err := <-done; err != nil {
						t.Errorf("instance: %v", err)
					}
				})
			})
		}
	}
	value := func(s scrape, name string) float64 {
		var v float64
		for _, x := range s[name].series {
			v += x
		}
		return v
	}

	// A has a registry of its own (no Registerer), B is given one.
	var regA *prometheus.Registry
	regB := prometheus.NewRegistry()
	a, runA := start(regA, MetricsRecordingLevel(MetricsDebug))
	runA()
	load := startLoad(t, cl, in)
	waitUntil(t, "A to run its 4 tasks and process records", func() bool {
		s := scrapeHTTP(t, a)
		return a.State() == Running && value(s, "sluice_active_tasks") == 4 && value(s, "sluice_processed_records_total") > 100
	})
	a1 := scrapeHTTP(t, a)

	b, runB := start(regB)
	b1 := gather(t, regB)
	runB()
	// An undecodable value (3 bytes for an int64) goes to the dead-letter
	// queue.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: in, Key: []byte("bad"), Value: []byte{1, 2, 3}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	excluded := map[string]string{
		"sluice_fenced_total":                             "a zombie instance: TestZombieFencedByInstanceID and the EOS zombie tests",
		"sluice_changelog_stale_generation_skipped_total": "a zombie's changelog writes: the zombie tests",
		"sluice_transaction_aborts_total":                 "a failed transaction: TestEOS* abort tests",
		"sluice_task_state_deleted_total":                 "a task moving away with no standby left here: the state directory cleanup tests",
		"sluice_standby_promotions_total":                 "checked below, once A closes",
	}
	if g == AtLeastOnce {
		excluded["sluice_transaction_commits_total"] = "ExactlyOnce only"
	}
	names := families(a.metrics)
	var a2, b2 scrape
	var missing []string
	deadline := time.Now().Add(time.Minute)
	for {
		a2, b2 = scrapeHTTP(t, a), scrapeHTTP(t, b)
		missing = missing[:0]
		for _, name := range names {
			if excluded[name] == "" && !moved(a1, a2, name) && !moved(b1, b2, name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Logf("A: active %v standby %v; B: active %v standby %v processed %v", value(a2, "sluice_active_tasks"), value(a2, "sluice_standby_tasks"),
			value(b2, "sluice_active_tasks"), value(b2, "sluice_standby_tasks"), b2["sluice_processed_records_total"].series)
		t.Fatalf("families that did not move under load: %v", missing)
	}
	// MetricsDebug times store operations; INFO (B) does not.
	if _, ok := b2["sluice_store_operation_duration_seconds"]; ok {
		t.Errorf("instance B at MetricsInfo has store operation latencies: %v", b2["sluice_store_operation_duration_seconds"].series)
	}
	for _, op := range []string{"get", "put", "range"} {
		found := false
		for k, v := range a2["sluice_store_operation_duration_seconds"].series {
			found = found || strings.Contains(k, "op="+op) && v > 0
		}
		if !found {
			t.Errorf("instance A at MetricsDebug: no %s timed: %v", op, slices.Sorted(maps.Keys(a2["sluice_store_operation_duration_seconds"].series)))
		}
	}
	// One series per state, the current one at 1.
	if got := a2["sluice_application_state"].series; len(got) != 7 || got["application_id="+appID+",state=RUNNING"] != 1 || value(a2, "sluice_application_state") != 1 {
		t.Errorf("sluice_application_state of a running instance = %v", got)
	}

	// A closes: B promotes its standbys of A's tasks.
	load.stop()
	<-load.done
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "B to promote its standbys of A's tasks", func() bool {
		return value(scrapeHTTP(t, b), "sluice_standby_promotions_total") > 0
	})
	if got := gather(t, a.gatherer)["sluice_application_state"].series["application_id="+appID+",state=NOT_RUNNING"]; got != 1 {
		t.Errorf("sluice_application_state{state=NOT_RUNNING} of the closed instance = %v, want 1", got)
	}
	// Every completed commit, and only those, timed each of its phases;
	// ExactlyOnce alone has a transaction.
	final := gather(t, a.gatherer)
	commits := value(final, "sluice_commits_total")
	phases := map[string]float64{}
	for k, n := range final["sluice_commit_phase_duration_seconds"].series {
		phases[strings.TrimPrefix(k, "application_id="+appID+",phase=")] = n
	}
	want := []string{"local", "offsets", "produce", "stores"}
	if g == ExactlyOnce {
		want = []string{"local", "offsets", "produce", "stores", "transaction"}
	}
	if got := slices.Sorted(maps.Keys(phases)); commits == 0 || !slices.Equal(got, want) {
		t.Errorf("commit phases timed %v after %v commits, want %v", phases, commits, want)
	}
	for p, n := range phases {
		if n != commits {
			t.Errorf("commit phase %s timed %v times, in %v commits", p, n, commits)
		}
	}
}

// The records lag gauge of each input partition comes down to 0 once the
// task has processed everything up to the fetch's high watermark, and the
// task view shows it.
func TestRecordsLagCatchesUp(t *testing.T) {
	c := kafkatest.New(t)
	appID, in, out := kafkatest.Topic(t, "app"), kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 2, in, out)
	cl := c.Client(t)
	for i := range 200 {
		v := binary.BigEndian.AppendUint64(nil, uint64(i))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: in, Partition: int32(i % 2), Key: fmt.Appendf(nil, "k%d", i%20), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	a, err := New(metricsTopology(t, in, out), Logger(testLogger()), ApplicationID(appID), Brokers(c.Brokers...), StateDir(t.TempDir()),
		Registerer(reg), CommitInterval(100*time.Millisecond), MaxPollRecords(20))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	defer func() {
		_ = a.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitUntil(t, "the lag of the input partitions to reach 0 with every record processed", func() bool {
		s := gather(t, reg)
		zero := 0
		for k, v := range s["sluice_records_lag"].series {
			if strings.HasSuffix(k, ",topic="+in) && v == 0 {
				zero++
			}
		}
		var processed float64
		for k, v := range s["sluice_processed_records_total"].series {
			if strings.Contains(k, "task=0_") {
				processed += v
			}
		}
		return zero == 2 && processed == 200
	})
}

// The lag of a task's input partition is its end in the latest fetch
// minus the task's position: after the last record processed, past the
// transaction markers once every fetched record is processed, the
// committed offset before any record; unknown (no series) until a fetch
// told the end.
func TestTaskRoundLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics("lag-test", reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{id: taskID{0, 3}}
	for _, tc := range []struct {
		name                          string
		next, committed, fetched, end int64
		want                          float64 // -1: no series
	}{
		{"unknown end", -1, 10, -1, -1, -1},
		{"committed offset, nothing processed", -1, 10, -1, 25, 15},
		{"processed up to 20 of 25", 20, 10, 20, 25, 5},
		{"every fetched record processed, markers after them", 20, 10, 22, 22, 0},
		{"the end moves on", 20, 10, 22, 30, 8},
	} {
		r.queues = nil
		r.group.Raw = nil
		i := r.queue("in", 3)
		q := r.queues[i]
		q.next, q.committed, q.fetched, q.end = tc.next, tc.committed, tc.fetched, tc.end
		m.taskRound(r)
		got, ok := gather(t, reg)["sluice_records_lag"].series["application_id=lag-test,partition=3,topic=in"]
		switch {
		case tc.want < 0 && ok:
			t.Errorf("%s: lag %v, want no series", tc.name, got)
		case tc.want >= 0 && got != tc.want:
			t.Errorf("%s: lag %v (series: %v), want %v", tc.name, got, ok, tc.want)
		}
	}
	m.taskClosed(r.id)
	if _, ok := gather(t, reg)["sluice_records_lag"]; ok {
		t.Error("the lag series of a closed task's partition is still there")
	}
}

// getTasks answers GET /api/tasks of a.
func getTasks(t *testing.T, a *App) tasksJSON {
	t.Helper()
	resp, err := http.Get(a.HTTPURL() + "/api/tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/tasks: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var v tasksJSON
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// GET /api/tasks shows the instance's active tasks with what they
// processed, their rate and the lag of their input partitions, and the
// standby tasks with their changelog partitions; before Run and after it
// returned, no task.
func TestTasksEndpoint(t *testing.T) {
	c := kafkatest.New(t)
	appID, in, out := kafkatest.Topic(t, "app"), kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 2, in, out)
	cl := c.Client(t)
	for i := range 200 {
		v := binary.BigEndian.AppendUint64(nil, uint64(i))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: in, Partition: int32(i % 2), Key: fmt.Appendf(nil, "k%d", i%20), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	topo := metricsTopology(t, in, out)
	newApp := func() *App {
		a, err := New(topo, Logger(testLogger()), ApplicationID(appID), Brokers(c.Brokers...), StateDir(t.TempDir()), HTTPAddr("127.0.0.1:0"),
			CommitInterval(100*time.Millisecond), NumStandbyReplicas(1))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := newApp()
	rec := httptest.NewRecorder()
	a.serveTasks(rec, httptest.NewRequest("GET", "/api/tasks", nil))
	if got, want := strings.TrimSpace(rec.Body.String()), `{"instance":"`+a.httpLn.Addr().String()+`","state":"CREATED","tasks":[]}`; got != want {
		t.Errorf("before Run: %s, want %s", got, want)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	stopped := false
	defer func() {
		if !stopped {
			_ = a.Close()
			<-done
		}
	}()

	sawRate := false
	var v tasksJSON
	waitUntil(t, "the 4 tasks, every input record processed, no lag", func() bool {
		v = getTasks(t, a)
		var processed int64
		caughtUp := 0
		for _, tk := range v.Tasks {
			sawRate = sawRate || tk.RecordsPerSecond > 0
			if strings.HasPrefix(tk.ID, "0_") {
				processed += tk.ProcessedTotal
				if len(tk.Partitions) == 1 && tk.Partitions[0].Topic == in && tk.Partitions[0].Lag == 0 && tk.Lag == 0 {
					caughtUp++
				}
			}
		}
		return v.State == "RUNNING" && len(v.Tasks) == 4 && processed == 200 && caughtUp == 2
	})
	if !sawRate {
		t.Error("no task showed a positive records_per_second while it processed its records")
	}
	if v.Instance != a.httpLn.Addr().String() {
		t.Errorf("instance = %q, want %q", v.Instance, a.httpLn.Addr().String())
	}
	for i, tk := range v.Tasks {
		if want := fmt.Sprintf("%d_%d", i/2, i%2); tk.ID != want || tk.Kind != "active" || tk.Restoring {
			t.Errorf("task %d = %+v, want %s, active, restored (tasks in ID order)", i, tk, want)
		}
	}

	// A second instance: each keeps standbys of the other's tasks.
	b := newApp()
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(context.Background()) }()
	defer func() { _ = b.Close(); <-doneB }()
	waitUntil(t, "a standby task in the view of an instance", func() bool {
		for _, x := range []*App{a, b} {
			for _, tk := range getTasks(t, x).Tasks {
				if tk.Kind == "standby" && len(tk.Partitions) > 0 && strings.HasSuffix(tk.Partitions[0].Topic, "-changelog") {
					return true
				}
			}
		}
		return false
	})

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopped = true
	rec = httptest.NewRecorder()
	a.serveTasks(rec, httptest.NewRequest("GET", "/api/tasks", nil))
	var after tasksJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &after); err != nil || after.State != "NOT_RUNNING" || len(after.Tasks) != 0 {
		t.Errorf("after Run returned: %s (%v), want NOT_RUNNING and no task", rec.Body.String(), err)
	}
}
