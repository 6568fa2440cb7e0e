//go:build ui

// The web page in a real browser: make test-ui (headless Chromium, driven
// with chromedp; make screenshot writes docs/img/ui.png).

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
)

// chromiumPath is the browser the test drives: $SLUICE_CHROMIUM, else the
// first of Debian's and Google's names on $PATH.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on $PATH (chromium, chromium-browser, google-chrome): make test-ui installs Debian's; or set SLUICE_CHROMIUM")
	return ""
}

// Word count runs on the embedded broker with its HTTP server on; the page
// it serves, loaded in headless Chromium, draws the topology (the source
// topic's node among it), shows the application running with its eight
// tasks processing, and its lookup form finds the count of a word, equal
// to the count made directly from the input, and says "not found" for a
// word that was never seen. The page writes no error to the console. A
// screenshot of the whole page is saved ($SLUICE_UI_SCREENSHOT, else a
// temporary file; the test logs its path).
func TestWebPageInChromium(t *testing.T) {
	execPath := chromiumPath(t)
	cluster := kafkatest.New(t)
	// The example's own names on the embedded broker (the screenshot shows
	// them); names of the test's own on a shared real broker.
	input, output, appID := "text-input", "word-counts", "wordcount"
	if cluster.Real {
		input, output, appID = kafkatest.Topic(t, "text"), kafkatest.Topic(t, "counts"), kafkatest.Topic(t, "app")
	}
	cluster.Create(t, 4, input, output)
	topo, err := Topology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	app, err := runtime.New(topo, runtime.ApplicationID(appID),
		runtime.Brokers(cluster.Brokers...), runtime.StateDir(t.TempDir()),
		runtime.CommitInterval(200*time.Millisecond), runtime.HTTPAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	appCtx, stopApp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	defer func() {
		stopApp()
		if err := <-done; err != nil {
			t.Errorf("app: %v", err)
		}
	}()

	// The input, counted directly; the word looked up is the commonest.
	lines := generateLines(2000)
	want := map[string]int64{}
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			want[strings.ToLower(w)]++
		}
	}
	word := topWords(want, 1)[0]
	if err := produceLines(ctx, cluster.Brokers, input, lines); err != nil {
		t.Fatal(err)
	}
	if _, err := awaitCounts(ctx, cluster.Brokers, output, want, done); err != nil {
		t.Fatal(err)
	}
	// More lines while the page is open, so that its throughput is live;
	// none holds the word looked up, so that its count stays.
	stopFeed := feedLines(ctx, t, cluster, input, word)
	defer stopFeed()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	console := collectConsole(bctx)

	url := app.HTTPURL() + "/"
	t.Logf("page: %s", url)
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	// The screenshot is taken at the end, also when the test fails: it
	// shows what the page showed.
	defer screenshot(bctx, t)
	waitFor(bctx, t, "the topology with the source topic "+input, fmt.Sprintf(
		`document.querySelector('#topology-view svg g.topic[data-topic=%q]') !== null`, input), "topology-error")
	waitFor(bctx, t, "the source node and the counts store in the topology", `
		document.querySelector('#topology-view svg g.node.source[data-node="KSTREAM-SOURCE-0000000000"]') !== null &&
		document.querySelector('#topology-view svg g.store[data-store="counts"]') !== null`, "topology-error")
	waitFor(bctx, t, "the application state RUNNING",
		`document.getElementById('app-state').textContent === 'RUNNING'`, "state-error")
	// Two sub-topologies on four partitions: eight tasks, all here, and at
	// least one processing the lines fed meanwhile.
	waitFor(bctx, t, "eight tasks with live throughput", `(() => {
		const rows = document.querySelectorAll('#tasks tbody tr[data-task]');
		const rates = [...document.querySelectorAll('#tasks td.rate')].map(td => parseFloat(td.textContent.replace(/,/g, '')));
		return rows.length === 8 && rates.some(r => r > 0) && Number(document.getElementById('tasks').dataset.samples) >= 8;
	})()`, "tasks-error")
	waitFor(bctx, t, "the counts store in the lookup form",
		`document.querySelector('#store option[value="counts"]') !== null`, "stores-error")

	if os.Getenv("SLUICE_UI_SCREENSHOT") != "" {
		// The screenshot for the README (make screenshot): half a minute
		// of throughput in the sparklines.
		waitFor(bctx, t, "30 task samples", `Number(document.getElementById('tasks').dataset.samples) >= 30`, "tasks-error")
	}

	missing := "no-such-word-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	status, message, _ := lookup(bctx, t, missing)
	if status != "404" || message != "not found" {
		t.Errorf("lookup of %q: status %s, message %q; want 404, \"not found\"", missing, status, message)
	}
	status, message, value := lookup(bctx, t, word)
	if status != "200" {
		t.Fatalf("lookup of %q: status %s, message %q; want 200", word, status, message)
	}
	if wantValue := strconv.FormatInt(want[word], 10); value != wantValue {
		t.Errorf("lookup of %q shows %q, want its count %s", word, value, wantValue)
	}

	for _, m := range console() {
		// The browser logs each request answered with an error: the
		// lookup of the missing word is a 404 on purpose, and a lookup
		// answered 503 (the key's task moving) is retried by the page.
		if m.Source == "network" && (strings.Contains(m.URL, "/keys/"+missing) ||
			strings.Contains(m.URL, "/stores/") && strings.Contains(m.Text, "status of 503")) {
			continue
		}
		t.Errorf("console %s (%s:%d)", m, m.URL, m.Line)
	}
}

// screenshot saves a full-page screenshot as $SLUICE_UI_SCREENSHOT, else
// in a temporary file, and logs its path.
func screenshot(ctx context.Context, t *testing.T) {
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := os.Getenv("SLUICE_UI_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "ui.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// waitFor waits until the JavaScript expression cond is true in the page,
// for up to a minute; then it fails the test naming what, with the message
// the page shows in the element errorID (an endpoint missing or failing).
func waitFor(ctx context.Context, t *testing.T, what, cond, errorID string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Minute)))
	if err == nil {
		return
	}
	shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(e => e && !e.hidden ? e.textContent : '(no error shown)')(document.getElementById(%q))`, errorID)))
	t.Fatalf("the page did not show %s: %v; the page says: %s", what, err, shown)
}

// lookup types key into the page's lookup form, submits it and returns the
// result's status ("200", "404", ...; a 503 is retried by the page), the
// message and the value shown.
func lookup(ctx context.Context, t *testing.T, key string) (status, message, value string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#store`), "counts"),
		// Empty the field first (chromedp.Clear resets the attribute only).
		chromedp.Evaluate[chromedp.Void](`document.getElementById('key').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#key`), key),
		chromedp.SetAttributeValue(chromedp.CSS(`#lookup-result`), "data-status", ""),
		chromedp.Click(chromedp.CSS(`#lookup button[type=submit]`)),
	); err != nil {
		t.Fatalf("lookup of %q: %v", key, err)
	}
	status, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
		const s = document.getElementById('lookup-result').dataset.status;
		return s !== '' && s !== 'pending' && s !== '503' ? s : false;
	})()`, chromedp.WithPollingTimeout(time.Minute)))
	if err != nil {
		t.Fatalf("lookup of %q: no answer shown: %v", key, err)
	}
	if message, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#lookup-message`))); err != nil {
		t.Fatal(err)
	}
	if value, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#lookup-value`))); err != nil {
		t.Fatal(err)
	}
	return status, strings.TrimSpace(message), strings.TrimSpace(value)
}

// collectConsole gathers the page's console errors and uncaught exceptions
// (and the browser log's errors: failed requests, refused content) from
// now on; the returned func returns those so far.
func collectConsole(ctx context.Context) func() []chromedp.ConsoleMessage {
	var mu sync.Mutex
	var msgs []chromedp.ConsoleMessage
	it := chromedp.Console(ctx)
	go func() {
		for m, err := range it {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				msgs = append(msgs, m)
				mu.Unlock()
			}
		}
	}()
	return func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage(nil), msgs...)
	}
}

// feedLines writes generated lines without the word skip to topic, four
// hundred a second over all its partitions, until the returned stop is
// called.
func feedLines(ctx context.Context, t *testing.T, cluster *kafkatest.Cluster, topic, skip string) (stop func()) {
	cl := cluster.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var feed []string
	for _, l := range generateLines(5000) {
		var kept []string
		for _, w := range strings.Fields(l) {
			if strings.ToLower(w) != skip {
				kept = append(kept, w)
			}
		}
		if len(kept) > 0 {
			feed = append(feed, strings.Join(kept, " "))
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for j := range 4 {
				cl.Produce(ctx, &kgo.Record{Value: []byte(feed[(i*4+j)%len(feed)])}, nil)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
