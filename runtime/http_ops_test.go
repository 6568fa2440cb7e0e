package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// The operations endpoints (runtime/http_ops.go), on kfake: each test
// starts an App with HTTPAddr on a free loopback port.

// httpGet gets url and returns the status, the body and the content type.
func httpGet(t *testing.T, url string) (int, string, string) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}

// tryGet gets url and returns the status and the body; for goroutines
// other than the test's.
func tryGet(url string) (int, string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// getJSON gets url, decodes its JSON body into v and returns the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	status, body, ctype := httpGet(t, url)
	if ctype != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json; body %q", url, ctype, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %q", url, err, body)
	}
	return status
}

// readyz is the answer of /readyz (and, State alone, of /healthz).
type readyz struct {
	State          string   `json:"state"`
	Ready          bool     `json:"ready"`
	Reason         string   `json:"reason"`
	RestoringTasks []string `json:"restoring_tasks"`
}

// startHTTP starts an App serving HTTP on a free loopback port.
func startHTTP(t *testing.T, c *testCluster, appID, input, output string, opts ...runtime.Option) (*instance, string) {
	t.Helper()
	in := start(t, wordCount(t, input, output), append([]runtime.Option{runtime.ApplicationID(appID),
		runtime.Brokers(c.brokers...), runtime.HTTPAddr("127.0.0.1:0"), runtime.CommitInterval(100 * time.Millisecond)}, opts...)...)
	url := in.app.HTTPURL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("HTTPURL = %q, want http://127.0.0.1:<port>", url)
	}
	return in, url
}

// GET /topology serves Describe's text exactly, Mermaid and DOT, and the
// graph as JSON; an unknown format is refused naming the accepted ones.
func TestHTTPTopology(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	topo := wordCount(t, input, output)
	in, url := startHTTP(t, c, topic(t, "app"), input, output)
	defer in.stop(t)

	for _, tc := range []struct{ query, want string }{
		{"", topo.Describe()}, {"?format=text", topo.Describe()}, {"?format=mermaid", topo.Mermaid()}, {"?format=dot", topo.DOT()},
	} {
		status, body, ctype := httpGet(t, url+"/topology"+tc.query)
		if status != http.StatusOK || body != tc.want || !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("GET /topology%s = %d %q %q, want 200 text/plain:\n%s", tc.query, status, ctype, body, tc.want)
		}
	}

	type node struct {
		Name         string   `json:"name"`
		Kind         string   `json:"kind"`
		Topics       []string `json:"topics"`
		Topic        *string  `json:"topic"`
		Stores       []string `json:"stores"`
		Successors   []string `json:"successors"`
		Predecessors []string `json:"predecessors"`
	}
	var got struct {
		SubTopologies []struct {
			ID    int    `json:"id"`
			Nodes []node `json:"nodes"`
		} `json:"subtopologies"`
		GlobalStores []json.RawMessage `json:"global_stores"`
	}
	if status := getJSON(t, url+"/topology?format=json", &got); status != http.StatusOK {
		t.Fatalf("GET /topology?format=json: status %d", status)
	}
	// Word count: sub-topology 0 reads the input and writes the
	// repartition topic, sub-topology 1 reads it, counts into "counts"
	// and writes the output.
	if len(got.SubTopologies) != 2 || got.GlobalStores == nil || len(got.GlobalStores) != 0 {
		t.Fatalf("JSON topology: %d sub-topologies, global stores %v; want 2 and []", len(got.SubTopologies), got.GlobalStores)
	}
	byName := map[string]node{}
	kinds := map[int][]string{}
	for _, st := range got.SubTopologies {
		want := topo.SubTopology(st.ID)
		if want == nil || len(want.Nodes) != len(st.Nodes) {
			t.Fatalf("JSON sub-topology %d: %d nodes, not the topology's", st.ID, len(st.Nodes))
		}
		for i, n := range st.Nodes {
			if n.Name != want.Nodes[i].Name {
				t.Errorf("sub-topology %d node %d: %s, want %s", st.ID, i, n.Name, want.Nodes[i].Name)
			}
			byName[n.Name] = n
			kinds[st.ID] = append(kinds[st.ID], n.Kind)
		}
	}
	src := byName[topo.SubTopology(0).Sources[0].Name]
	if src.Kind != "source" || !slices.Equal(src.Topics, []string{input}) || len(src.Predecessors) != 0 || len(src.Successors) != 1 || src.Stores == nil {
		t.Errorf("source node %+v: want kind source, topics [%s], no predecessors, one successor, stores []", src, input)
	}
	var sink, counter *node
	for _, n := range byName {
		if n.Kind == "sink" && n.Topic != nil && *n.Topic == output {
			sink = &n
		}
		if slices.Contains(n.Stores, "counts") {
			counter = &n
		}
	}
	if sink == nil || counter == nil {
		t.Fatalf("JSON topology lacks the sink of %s or the processor of store counts: %+v", output, byName)
	}
	if len(sink.Successors) != 0 || len(sink.Predecessors) != 1 || sink.Topics != nil {
		t.Errorf("sink node %+v: want one predecessor, no successors, no topics", *sink)
	}
	for name, n := range byName {
		for _, s := range n.Successors {
			if !slices.Contains(byName[s].Predecessors, name) {
				t.Errorf("node %s lists successor %s, which does not list it as a predecessor", name, s)
			}
		}
	}
	for id, ks := range kinds {
		if ks[0] != "source" || ks[len(ks)-1] != "sink" {
			t.Errorf("sub-topology %d node kinds %v: want a source first and a sink last", id, ks)
		}
	}

	var e struct {
		Error string `json:"error"`
	}
	if status := getJSON(t, url+"/topology?format=svg", &e); status != http.StatusBadRequest ||
		!strings.Contains(e.Error, `"svg"`) || !strings.Contains(e.Error, "text, json, mermaid, dot") {
		t.Errorf("GET /topology?format=svg = %d %q, want 400 naming svg and the accepted formats", status, e.Error)
	}
}

// GET /api/state names the application, its state and this instance.
func TestHTTPState(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	in, url := startHTTP(t, c, appID, input, output)
	defer in.stop(t)
	type state struct {
		ApplicationID string `json:"application_id"`
		State         string `json:"state"`
		Instance      string `json:"instance"`
		HTTPURL       string `json:"http_url"`
	}
	var got state
	waitFor(t, time.Minute, "state RUNNING", func() bool {
		if status := getJSON(t, url+"/api/state", &got); status != http.StatusOK {
			t.Fatalf("GET /api/state: status %d", status)
		}
		return got.State == "RUNNING"
	})
	if want := (state{appID, "RUNNING", strings.TrimPrefix(url, "http://"), url}); got != want {
		t.Errorf("GET /api/state = %+v, want %+v", got, want)
	}
}

// GET /metrics serves the App's own registry when no Registerer is given:
// the App's families, the Kafka client metrics of kprom per client, and
// the Go collector's.
func TestHTTPMetricsOwnRegistry(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	in, url := startHTTP(t, c, appID, input, output)
	defer in.stop(t)
	want := map[string]int64{}
	c.produce(t, input, lines(0, 50, 7, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !equalCounts(want)(got) {
		t.Fatalf("counts: %s", diffCounts(got, want))
	}
	app := regexp.QuoteMeta(`application_id="` + appID + `"`)
	patterns := []string{
		// The App's own: 50 lines processed by the two tasks of the
		// first sub-topology.
		`sluice_processed_records_total\{` + app + `,task="0_[01]"\} [1-9]`,
		`sluice_commits_total\{` + app + `\} [1-9]`,
		// kprom, per client: the group member fetched the input and
		// produced the output, the admin client connected.
		`sluice_kafka_fetch_bytes_total\{` + app + `,client="main",node_id="[^"]+",topic="` + regexp.QuoteMeta(input) + `"\} [1-9]`,
		`sluice_kafka_produce_bytes_total\{` + app + `,client="main",node_id="[^"]+",topic="` + regexp.QuoteMeta(output) + `"\} [1-9]`,
		`sluice_kafka_connects_total\{` + app + `,client="admin",node_id="[^"]+"\} [1-9]`,
		`go_goroutines [1-9]`,
	}
	var body string
	waitFor(t, time.Minute, "every family in /metrics", func() bool {
		var status int
		var ctype string
		status, body, ctype = httpGet(t, url+"/metrics")
		if status != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
			t.Fatalf("GET /metrics = %d %q", status, ctype)
		}
		for _, p := range patterns {
			if !regexp.MustCompile(`(?m)^` + p).MatchString(body) {
				return false
			}
		}
		return true
	})
	if processed := sumSamples(t, body, "sluice_processed_records_total", `task="0_`); processed != 50 {
		t.Errorf("sluice_processed_records_total of sub-topology 0's tasks sums to %v, want the 50 lines", processed)
	}
}

// sumSamples sums the samples of family name in a text exposition whose
// labels contain label.
func sumSamples(t *testing.T, exposition, name, label string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`\{([^}]*)\} (\S+)$`).FindAllStringSubmatch(exposition, -1) {
		if !strings.Contains(m[1], label) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(m[2], &v); err != nil {
			t.Fatalf("sample %q: %v", m[0], err)
		}
		sum += v
	}
	return sum
}

// registererOnly hides the Gatherer of a registry: a Registerer that
// cannot be served.
type registererOnly struct{ prometheus.Registerer }

// With a Registerer given, the App's metrics are registered there; if it
// is a Gatherer, /metrics serves it, the caller's own metrics included; if
// not, /metrics serves a registry of the App's own holding the same
// metrics.
func TestHTTPMetricsGivenRegisterer(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	for _, gatherer := range []bool{true, false} {
		name := "gatherer" // a subtest's name is part of its topics' names: no '='
		if !gatherer {
			name = "registerer-only"
		}
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			mine := promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "caller_own_total", Help: "The caller's."})
			mine.Add(7)
			var r prometheus.Registerer = reg
			if !gatherer {
				r = registererOnly{reg}
			}
			appID := topic(t, "app")
			in, url := startHTTP(t, c, appID, input, output, runtime.Registerer(r))
			defer in.stop(t)
			want := map[string]int64{}
			c.produce(t, input, lines(0, 10, 3, want)...)
			var body string
			waitFor(t, time.Minute, "10 records processed in /metrics", func() bool {
				_, body, _ = httpGet(t, url+"/metrics")
				return sumSamples(t, body, "sluice_processed_records_total", `task="0_`) >= 10 &&
					strings.Contains(body, `sluice_kafka_fetch_bytes_total{application_id="`+appID+`",client="main"`)
			})
			if got := strings.Contains(body, "caller_own_total 7"); got != gatherer {
				t.Errorf("/metrics serves the caller's counter: %v, want %v", got, gatherer)
			}
			// The caller's registry holds the App's metrics either way.
			fams, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, f := range fams {
				names[f.GetName()] = true
			}
			if !names["sluice_processed_records_total"] || !names["sluice_kafka_fetch_bytes_total"] || names["go_goroutines"] != false {
				t.Errorf("the given registry holds %v: want the App's and the Kafka client families, not the Go collector's", slices.Sorted(func(yield func(string) bool) {
					for n := range names {
						if !yield(n) {
							return
						}
					}
				}))
			}
			if got := strings.Contains(body, "go_goroutines"); got == gatherer {
				t.Errorf("/metrics has the Go collector: %v, want %v (only in the App's own registry)", got, !gatherer)
			}
		})
	}
}

// GET /readyz answers 503 naming the task while it restores its store's
// changelog (held back by kfake), and 200 once it is restored and the App
// Running.
func TestHTTPReadyzWhileRestoring(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().Count(dsl.Named("n")).
		ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
		runtime.CommitInterval(50 * time.Millisecond), runtime.HTTPAddr("127.0.0.1:0")}
	c.produceKeys(t, input, "a", "a", "b")
	in := start(t, topo, opts...)
	want := map[string]int64{"a": 2, "b": 1}
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !equalCounts(want)(got) {
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	var r readyz
	if status := getJSON(t, in.app.HTTPURL()+"/readyz", &r); status != http.StatusOK || !r.Ready || r.State != "RUNNING" {
		t.Fatalf("first run: /readyz = %d %+v, want 200 ready RUNNING", status, r)
	}
	in.stop(t)
	// Without local state, task 0_0 restores its changelog, held back.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	release := stallFetchPartition(t, e, appID+"-n-changelog", 0)
	defer release()
	in = start(t, topo, opts...)
	defer in.stop(t)
	url := in.app.HTTPURL()
	waitFor(t, time.Minute, "/readyz naming task 0_0 restoring", func() bool {
		r = readyz{}
		status := getJSON(t, url+"/readyz", &r)
		if status == http.StatusOK || r.Ready {
			t.Fatalf("/readyz = %d %+v while task 0_0 cannot restore", status, r)
		}
		return slices.Equal(r.RestoringTasks, []string{"0_0"})
	})
	if r.State != "REBALANCING" || !strings.Contains(r.Reason, "0_0") {
		t.Errorf("/readyz while restoring = %+v, want state REBALANCING and a reason naming 0_0", r)
	}
	// /healthz: restoring is alive.
	var h readyz
	if status := getJSON(t, url+"/healthz", &h); status != http.StatusOK || h.State != "REBALANCING" {
		t.Errorf("/healthz while restoring = %d %+v, want 200 REBALANCING", status, h)
	}
	release()
	waitFor(t, time.Minute, "/readyz 200 after the restore", func() bool {
		r = readyz{}
		status := getJSON(t, url+"/readyz", &r)
		return status == http.StatusOK
	})
	if !r.Ready || r.State != "RUNNING" || r.Reason != "" || len(r.RestoringTasks) != 0 {
		t.Errorf("/readyz after the restore = %+v, want ready RUNNING", r)
	}
	// The restored count goes on.
	c.produceKeys(t, input, "a")
	want["a"]++
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !equalCounts(want)(got) {
		t.Fatalf("after the restore: %s", diffCounts(got, want))
	}
}

// GET /healthz answers 200 while the App runs and 503 ERROR after a fatal
// error (an undecodable value with the default policy), asked from the
// state listener as the App reaches Error: the server stops only after
// the final state.
func TestHTTPHealthzAfterFatalError(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.Int64).To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var url string // set before Run starts
	atError := make(chan [2]string, 1)
	in := start(t, topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...), runtime.HTTPAddr("127.0.0.1:0"),
		runtime.OnStateChange(func(s, _ runtime.State) {
			if s == runtime.Error {
				status, body, err := tryGet(url + "/healthz")
				atError <- [2]string{fmt.Sprint(status, " ", err), strings.TrimSpace(body)}
			}
		}))
	url = in.app.HTTPURL()
	waitFor(t, time.Minute, "state RUNNING", func() bool { return in.app.State() == runtime.Running })
	if status, body, _ := httpGet(t, url+"/healthz"); status != http.StatusOK || strings.TrimSpace(body) != `{"state":"RUNNING"}` {
		t.Fatalf("/healthz while running = %d %s, want 200 RUNNING", status, body)
	}
	c.produce(t, input, "not an int64")
	select {
	case <-in.finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within two minutes of a fatal error")
	}
	if err := <-in.done; err == nil || !strings.Contains(err.Error(), input) {
		t.Fatalf("Run = %v, want the deserialization error naming topic %s", err, input)
	}
	select {
	case got := <-atError:
		if got != [2]string{"503 <nil>", `{"state":"ERROR"}`} {
			t.Errorf("/healthz at Error = %s %s, want 503 {\"state\":\"ERROR\"}", got[0], got[1])
		}
	default:
		t.Fatal("the state listener never saw Error")
	}
	// Run has returned: the server is closed, the port free.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(url + "/healthz"); err == nil {
		t.Errorf("GET /healthz after Run returned: answered, want the server closed")
	}
}

// OnStateChange sees every change in order: Created → Rebalancing →
// Running → PendingShutdown → NotRunning (a rebalance may add Running →
// Rebalancing → Running), with the old state of each the new of the one
// before; at NotRunning /healthz and /readyz answer 503.
func TestOnStateChangeOrder(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	var (
		mu      sync.Mutex
		changes [][2]runtime.State
		url     string
		atEnd   [2]int
	)
	in, _ := startHTTP(t, c, topic(t, "app"), input, output, runtime.OnStateChange(func(s, old runtime.State) {
		mu.Lock()
		changes = append(changes, [2]runtime.State{old, s})
		mu.Unlock()
		if s == runtime.NotRunning {
			atEnd[0], _, _ = tryGet(url + "/healthz")
			atEnd[1], _, _ = tryGet(url + "/readyz")
		}
	}))
	url = in.app.HTTPURL()
	if s := in.app.State(); s != runtime.Created && s != runtime.Rebalancing {
		t.Fatalf("state at start: %v", s)
	}
	waitFor(t, time.Minute, "state RUNNING", func() bool { return in.app.State() == runtime.Running })
	in.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if n := len(changes); n < 4 || changes[0] != [2]runtime.State{runtime.Created, runtime.Rebalancing} ||
		changes[n-2] != [2]runtime.State{runtime.Running, runtime.PendingShutdown} ||
		changes[n-1] != [2]runtime.State{runtime.PendingShutdown, runtime.NotRunning} {
		t.Fatalf("state changes %v: want CREATED→REBALANCING first, RUNNING→PENDING_SHUTDOWN→NOT_RUNNING last", changes)
	}
	for i, ch := range changes[1 : len(changes)-2] {
		want := [2]runtime.State{runtime.Rebalancing, runtime.Running}
		if i%2 == 1 {
			want = [2]runtime.State{runtime.Running, runtime.Rebalancing}
		}
		if ch != want {
			t.Errorf("state change %d: %v→%v, want %v→%v (changes %v)", i+1, ch[0], ch[1], want[0], want[1], changes)
		}
	}
	if atEnd != [2]int{http.StatusServiceUnavailable, http.StatusServiceUnavailable} {
		t.Errorf("at NOT_RUNNING: /healthz %d, /readyz %d, want 503 both", atEnd[0], atEnd[1])
	}
	if s := in.app.State(); s != runtime.NotRunning {
		t.Errorf("State after Run = %v, want NOT_RUNNING", s)
	}
}

// An HTTPAddr that cannot be bound fails New with a ConfigError naming the
// option and the address.
func TestHTTPAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, err = runtime.New(wordCount(t, "in", "out"), runtime.ApplicationID("bind-test"), runtime.Brokers("127.0.0.1:1"),
		runtime.StateDir(t.TempDir()), runtime.HTTPAddr(addr))
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) || ce.Key != "runtime.HTTPAddr" || !strings.Contains(err.Error(), addr) {
		t.Fatalf("New with HTTPAddr %s in use = %v, want a ConfigError naming runtime.HTTPAddr and the address", addr, err)
	}
}

// A Kafka client metric that clashes with one already in the given
// registry (same name, other labels) is left out, not a panic in
// kgo.NewClient: the App runs, with the other Kafka client metrics.
func TestKafkaMetricsClashIsLeftOut(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	reg := prometheus.NewRegistry()
	promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "sluice_kafka_connects_total", Help: "Not kprom's."}).Add(3)
	appID := topic(t, "app")
	in, url := startHTTP(t, c, appID, input, output, runtime.Registerer(reg))
	defer in.stop(t)
	want := map[string]int64{}
	c.produce(t, input, lines(0, 5, 3, want)...)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !equalCounts(want)(got) {
		t.Fatalf("counts: %s", diffCounts(got, want))
	}
	var body string
	waitFor(t, time.Minute, "Kafka client metrics in /metrics", func() bool {
		_, body, _ = httpGet(t, url+"/metrics")
		return strings.Contains(body, `sluice_kafka_fetch_bytes_total{application_id="`+appID+`",client="main"`)
	})
	if !strings.Contains(body, "\nsluice_kafka_connects_total 3\n") || strings.Contains(body, `sluice_kafka_connects_total{`) {
		t.Errorf("/metrics: want the registry's own sluice_kafka_connects_total and no kprom one:\n%s", body)
	}
}
