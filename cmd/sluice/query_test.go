package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// query reads word count's store "counts" from a running App (h14iq's
// /stores endpoints): each word's count, a missing word's 404 (exit
// status 1, the server's message), key ranges.
func TestQuery(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 3, in, out)
	topo := wordCount(t, in, out)
	lines, want := testLines(200, 8)
	produceLines(t, c, in, lines)
	ra := startApp(t, c, topo, appID, t.TempDir(), runtime.HTTPAddr("127.0.0.1:0"))
	newCountReader(t, c, out, nil).await(t, want)
	url := ra.app.HTTPURL()

	type entry struct {
		Key   string `json:"key"`
		Value int64  `json:"value"`
	}
	for w, n := range want {
		stdout, stderr, err := runCLI(t, "query", "-url", url, "-v", "counts", w)
		if err != nil {
			t.Fatalf("query counts %s: %v", w, err)
		}
		var got entry
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("query counts %s: %v\n%s", w, err, stdout)
		}
		if got.Key != w || got.Value != n {
			t.Errorf("query counts %s = %+v, want value %d", w, got, n)
		}
		mustContain(t, "query -v's standard error", stderr, "served by ")
	}

	// A word never seen: 404, exit status 1, the server's message.
	_, _, err := runCLI(t, "query", "-url", url, "counts", "no such word")
	var he *httpError
	if !errors.As(err, &he) || !strings.Contains(he.status, "404") {
		t.Fatalf("query of a missing key: %v, want a 404", err)
	}
	mustContain(t, "the error", err.Error(), "/stores/counts/keys/no%20such%20word", "not found")
	if code := exitCode(err, &strings.Builder{}); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	// A store that does not exist: the server's error too.
	_, _, err = runCLI(t, "query", "-url", url, "nostore", "x")
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "nostore") {
		t.Errorf("query of a missing store: %v, want an error naming it", err)
	}

	// Ranges: all, bounded (inclusive), open at one end.
	words := slices.Sorted(maps.Keys(want))
	for _, tc := range []struct {
		bounds string
		keep   func(string) bool
	}{
		{":", func(string) bool { return true }},
		{"beta:kappa", func(w string) bool { return w >= "beta" && w <= "kappa" }},
		{"mu:", func(w string) bool { return w >= "mu" }},
		{":delta", func(w string) bool { return w <= "delta" }},
	} {
		stdout, _, err := runCLI(t, "query", "-url", url, "-range", tc.bounds, "counts")
		if err != nil {
			t.Fatalf("query -range %s: %v", tc.bounds, err)
		}
		var got struct {
			Results []entry `json:"results"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("query -range %s: %v\n%s", tc.bounds, err, stdout)
		}
		gotMap := map[string]int64{}
		for _, e := range got.Results {
			gotMap[e.Key] = e.Value
		}
		wantMap := map[string]int64{}
		for _, w := range words {
			if tc.keep(w) {
				wantMap[w] = want[w]
			}
		}
		if len(wantMap) == 0 || !maps.Equal(gotMap, wantMap) || len(got.Results) != len(wantMap) {
			t.Errorf("query -range %s = %v, want %v", tc.bounds, gotMap, wantMap)
		}
	}

	// Usage errors never reach the server.
	for _, args := range [][]string{{"counts"}, {"-range", "a", "counts"}, {"-range", "a:b", "counts", "x"}, {"-window", "x:y", "counts", "k"}} {
		_, _, err := runCLI(t, append([]string{"query", "-url", url}, args...)...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("query %q: %v, want a usage error", args, err)
		}
	}
}

// A query sent while the App starts (its tasks not yet running or
// restoring: 503 with Retry-After) is retried until the store answers, and
// the answer is the count the restored store holds.
func TestQueryRetriesWhileStarting(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 2, in, out)
	topo := wordCount(t, in, out)
	lines, want := testLines(100, 9)
	produceLines(t, c, in, lines)
	stateDir := t.TempDir()
	first := startApp(t, c, topo, appID, stateDir)
	newCountReader(t, c, out, nil).await(t, want)
	first.stopApp(t)

	// Restart on an empty state directory: the store restores from its
	// changelog before it answers.
	second := startApp(t, c, topo, appID, t.TempDir(), runtime.HTTPAddr("127.0.0.1:0"))
	stdout, stderr, err := runCLI(t, "query", "-url", second.app.HTTPURL(), "-v", "-retries", "100", "counts", "alpha")
	if err != nil {
		t.Fatalf("query during start-up: %v\nstderr:\n%s", err, stderr)
	}
	var got struct {
		Key   string `json:"key"`
		Value int64  `json:"value"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Value != want["alpha"] {
		t.Errorf("query during start-up = %s, want alpha's count %d", stdout, want["alpha"])
	}
	if strings.Contains(stderr, "retrying") {
		mustContain(t, "the retry note", stderr, http.StatusText(http.StatusServiceUnavailable), "retrying in 1s")
	}
	t.Logf("query's standard error:\n%s", stderr)
}

// query -window fetches a window store's windows of a key by window start
// (GET /stores/{store}/keys/{key}?from=&to=).
func TestQueryWindowStore(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 1, in, out)
	b := dsl.NewBuilder()
	lines := dsl.FromTopic(b, in, serde.Bytes, serde.String)
	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
		for _, w := range strings.Fields(line) {
			emit(w)
		}
	})
	counts := dsl.WindowedBy(dsl.GroupByValue(words, func(w string) string { return w }, serde.String),
		window.Tumbling(time.Minute, time.Hour)).Count(dsl.Named("per-minute"))
	dsl.Map(counts.ToStream(), func(k window.Windowed[string], n int64) (string, int64) { return k.Key, n }).
		To(out, serde.String, serde.Int64)
	topo, err := b.Build(dsl.RequireNamedStores())
	if err != nil {
		t.Fatal(err)
	}
	// Recent event times (a broker's retention deletes old ones).
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	var rs []*kgo.Record
	for _, r := range []struct {
		after time.Duration
		line  string
	}{{0, "alpha beta"}, {10 * time.Second, "alpha"}, {70 * time.Second, "alpha"}} {
		rs = append(rs, &kgo.Record{Value: []byte(r.line), Timestamp: base.Add(r.after)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ra := startApp(t, c, topo, appID, t.TempDir(), runtime.HTTPAddr("127.0.0.1:0"))
	ra.awaitRunning(t) // queries during start-up: TestQueryRetriesWhileStarting
	url := ra.app.HTTPURL()
	b0, b1 := base.UnixMilli(), base.Add(time.Minute).UnixMilli()
	type result struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
		Value int64 `json:"value"`
	}
	fetch := func(from, to int64) (string, []result) {
		stdout, _, err := runCLI(t, "query", "-url", url, "-retries", "20", "-window", fmt.Sprintf("%d:%d", from, to), "per-minute", "alpha")
		if err != nil {
			var he *httpError
			if errors.As(err, &he) && strings.Contains(he.status, "404") {
				return err.Error(), nil // not counted yet
			}
			t.Fatalf("query -window: %v", err)
		}
		var got struct {
			Key     string   `json:"key"`
			Results []result `json:"results"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("query -window: %v\n%s", err, stdout)
		}
		if got.Key != "alpha" {
			t.Errorf("query -window: key %q, want alpha", got.Key)
		}
		return stdout, got.Results
	}
	both := []result{{b0, b0 + 60000, 2}, {b1, b1 + 60000, 1}}
	waitFor(t, time.Minute, "alpha's two windows", func() (bool, string) {
		s, got := fetch(b0, b1)
		return slices.Equal(got, both), s
	})
	if s, got := fetch(b1, b1); !slices.Equal(got, both[1:]) {
		t.Errorf("query -window %d:%d = %s, want only the second window", b1, b1, s)
	}
}
