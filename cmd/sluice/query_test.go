package main

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
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
