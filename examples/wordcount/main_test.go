package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"Hello", []string{"hello"}},
		{"  The quick\tBROWN\nfox  ", []string{"the", "quick", "brown", "fox"}},
		{"Ünïcode\u00a0WÖRDS", []string{"ünïcode", "wörds"}},
	} {
		var got []string
		splitWords(tc.line, func(w string) { got = append(got, w) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// The counts the topology writes equal the counts made directly from the
// generated lines.
func TestWordCountMatchesDirectCount(t *testing.T) {
	topo, err := Topology("text-input", "word-counts")
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "text-input", serde.Bytes, serde.String)
	out := testdriver.CreateOutputTopic(d, "word-counts", serde.String, serde.Int64)
	want := map[string]int64{}
	updates := 0
	for _, line := range generateLines(2000) {
		for _, w := range strings.Fields(line) {
			want[strings.ToLower(w)]++
			updates++
		}
		if err := in.PipeValue(line); err != nil {
			t.Fatal(err)
		}
	}
	if n := out.QueueSize(); n != updates {
		t.Errorf("got %d count updates, want one per word: %d", n, updates)
	}
	got, err := testdriver.ReadKeyValuesToMap(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("got %d distinct words, want %d", len(got), len(want))
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("count of %q = %d, want %d", w, got[w], n)
		}
	}
	store, err := testdriver.KeyValueStore(d, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, err := store.Get("the"); err != nil || !ok || n != want["the"] {
		t.Errorf(`store "counts" has the=%d (%v, %v), want %d`, n, ok, err, want["the"])
	}
}

func TestRunDescribe(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-describe"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"Sub-topology: 0", "Sub-topology: 1", "(topic: counts-repartition)", "(stores: [counts])", "(topic: word-counts)"} {
		if !strings.Contains(s, want) {
			t.Errorf("-describe output lacks %q:\n%s", want, s)
		}
	}
}

// -generate on the embedded broker feeds the lines, waits for the exact
// counts, prints the top words and returns.
func TestRunGenerateOnEmbeddedBroker(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-generate", "2000", "-top", "3"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "Counted ") || !strings.HasPrefix(strings.TrimSpace(lines[2]), "the ") {
		t.Errorf("unexpected output:\n%s", out.String())
	}
}

// The program runs until SIGTERM, then shuts down gracefully and exits 0.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wordcount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-v")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the banner: the app is running.
	banner, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, "Counting words") {
		t.Fatalf("banner = %q, %v; stderr:\n%s", banner, err, logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("still running a minute after SIGTERM; stderr:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the app's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The app serves HTTP on a free loopback port by default and prints its
// URL on stderr at start; -http "" turns it off.
func TestRunServesHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-state-dir", t.TempDir()}, io.Discard, &logs) }()
	announce := regexp.MustCompile(`(?m)^web UI and metrics: (http://127\.0\.0\.1:[0-9]+)/$`)
	var url string
	deadline := time.Now().Add(time.Minute)
	for url == "" {
		if m := announce.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no line %q within a minute; stderr:\n%s", announce, logs.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	topo, err := Topology("text-input", "word-counts")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url + "/topology")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != topo.Describe() {
		t.Errorf("GET %s/topology = %d %q, %v; want the topology", url, resp.StatusCode, body, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	var quiet syncBuffer
	if err := run(context.Background(), []string{"-generate", "100", "-http", ""}, io.Discard, &quiet); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(quiet.String(), "web UI") {
		t.Errorf("-http \"\" printed a URL:\n%s", quiet.String())
	}
}
