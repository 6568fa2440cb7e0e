package dashboards_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dashboards"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// recordingRegistry is a registry that remembers every collector
// registered with it: the App's metrics and, as each Kafka client is made,
// kprom's.
type recordingRegistry struct {
	*prometheus.Registry
	mu sync.Mutex
	cs []prometheus.Collector
}

func (r *recordingRegistry) Register(c prometheus.Collector) error {
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return r.Registry.Register(c)
}

func (r *recordingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// families are the names of the families the registered collectors
// describe.
func (r *recordingRegistry) families() map[string]bool {
	r.mu.Lock()
	cs := slices.Clone(r.cs)
	r.mu.Unlock()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for _, c := range cs {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := re.FindStringSubmatch(d.String()); m != nil {
				names[m[1]] = true
			}
		}
	}
	return names
}

var (
	// Removed before the metric names are picked out of an expression.
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGroupings = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdents    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promKeywords  = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "offset": true, "and": true, "or": true, "unless": true, "inf": true, "nan": true, "Inf": true, "NaN": true}
)

// metricNames returns the metric names a PromQL expression selects: its
// identifiers that call nothing, are no keyword, and are outside label
// matchers, ranges and groupings.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGroupings.ReplaceAllString(e, " ")
	var names []string
	for _, id := range promIdents.FindAllString(e, -1) {
		name := strings.TrimSpace(id)
		if strings.HasSuffix(name, "(") || promKeywords[name] {
			continue // a function, an aggregation or a keyword
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (task) (rate(sluice_processed_records_total{application_id=~"$app"}[$__rate_interval]))`, []string{"sluice_processed_records_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on(x) group_left(y) b{z="by (q)"} > bool 1`, []string{"a_bucket", "b"}},
		{`max by (state) (sluice_application_state) == 1 or vector(0)`, []string{"sluice_application_state"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// exprs returns every PromQL expression of the dashboard: the panels'
// targets (rows' panels included) and the variables' label_values
// queries, by where they are.
func exprs(t *testing.T) map[string]string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Panels []json.RawMessage `json:"panels"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboards.Sluice, &d); err != nil {
		t.Fatalf("sluice.json: %v", err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Panels) > 0 {
			t.Fatalf("panel %q: collapsed rows' panels are not checked; keep rows open", p.Title)
		}
		for i, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q target %d has no expr", p.Title, i)
			}
			out["panel "+p.Title+" target "+string(rune('A'+i))] = tg.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(<metric>, <label>)", v.Name, q.Query)
		}
		out["variable "+v.Name] = m[1]
	}
	return out
}

// Every metric the dashboard's queries name is a family the App exports:
// its own (registered in New) or its Kafka clients' (kprom, registered as
// each client is made), gathered from the registry of an App that ran
// word count on kfake. A histogram's series (_bucket, _sum, _count) count
// as its family.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	c := kafkatest.New(t)
	appID, in, out := kafkatest.Topic(t, "app"), kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out")
	c.Create(t, 2, in, out)
	b := dsl.NewBuilder()
	words := dsl.FlatMapValues(dsl.FromTopic(b, in, serde.Bytes, serde.String), func(line string, emit func(string)) {
		for _, w := range strings.Fields(line) {
			emit(w)
		}
	})
	dsl.GroupByValue(words, func(w string) string { return w }, serde.String).Count(dsl.Named("counts")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	reg := &recordingRegistry{Registry: prometheus.NewRegistry()}
	a, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(c.Brokers...), runtime.StateDir(t.TempDir()),
		runtime.Registerer(reg), runtime.CommitInterval(100*time.Millisecond), runtime.NumStandbyReplicas(1))
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
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("a b a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for a.State() != runtime.Running {
		if time.Now().After(deadline) {
			t.Fatalf("the App is %s after a minute, not RUNNING", a.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fams := reg.families()
	for _, want := range []string{"sluice_processed_records_total", "sluice_kafka_connects_total"} {
		if !fams[want] {
			t.Fatalf("the App registered no %s: the registry records the wrong thing (%d families)", want, len(fams))
		}
	}
	n := 0
	for where, expr := range exprs(t) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, name := range names {
			n++
			if fams[name] {
				continue
			}
			if base, ok := cutAnySuffix(name, "_bucket", "_sum", "_count"); ok && fams[base] {
				continue
			}
			t.Errorf("%s: %s is not a metric the App exports (in %q)", where, name, expr)
		}
	}
	if n < 40 {
		t.Errorf("only %d metric names found in the dashboard's queries", n)
	}
}

func cutAnySuffix(s string, suffixes ...string) (string, bool) {
	for _, x := range suffixes {
		if base, ok := strings.CutSuffix(s, x); ok {
			return base, true
		}
	}
	return s, false
}
