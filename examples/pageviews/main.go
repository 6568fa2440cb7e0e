// Command pageviews counts page views per page in tumbling event-time
// windows: a Sluice example of windowed aggregation.
//
// It reads page views from a topic as JSON values (keys are ignored),
//
//	{"user":"u1","page":"/home","ts":1700000000000}
//
// takes each view's ts (milliseconds since the Unix epoch) as its event
// time, counts the views of each page per window (one minute by default,
// aligned to the epoch), and when a window closes writes its count once
// to an output topic, with the page as a UTF-8 key and the JSON value
//
//	{"page":"/home","window_start":1699999980000,"window_end":1700000040000,"count":42}
//
// (window_end is exclusive). A window closes when stream time, the largest
// event time seen so far by the task counting the page (there is one per
// partition), reaches its end plus a grace period (10 seconds by default):
// views that arrive out of order are still counted until then, and a view
// for a window that has closed is late, dropped and counted. Windows close
// only as stream time moves, that is when newer views arrive: the last
// window of a quiet topic stays open. Malformed JSON (an empty value
// too), views without a ts and tombstones are skipped and counted too,
// each by what it is, never fatal.
//
//	pageviews                       run on the embedded broker until SIGINT/SIGTERM
//	pageviews -brokers host:9092    run on a Kafka cluster
//	pageviews -generate 10000       also feed 10,000 generated views, print the windows and exit
//	pageviews -describe             print the compiled topology and exit
//	pageviews -http 127.0.0.1:8080  serve the web UI, /metrics, /healthz, /readyz and /topology there
//
// The app's HTTP server (runtime.HTTPAddr) runs on a free loopback port
// unless -http says otherwise ("" turns it off); the app prints its URL on
// stderr at start: "web UI and metrics: http://127.0.0.1:PORT/".
//
// With no -brokers it starts an in-process Kafka broker (kfake), so it runs
// on a bare machine. It creates its input and output topics if they do not
// exist. The first SIGINT or SIGTERM shuts it down gracefully (offsets
// committed, group left) and it exits 0; a second one exits at once.
//
// Processing is at-least-once: after a crash, a window whose count was
// written but not yet committed may be written a second time, with the
// same count.
//
// -generate is a demonstration for a fresh application, which the embedded
// broker always is: its views have event times in the last few windows
// before now, and an application that has already seen later event times
// (a reused -app-id on a cluster) would count them as late.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/examples/internal/demo"
	"github.com/sluicehq/sluice/runtime"
)

func main() {
	ctx, stop := runtime.SignalContext(context.Background())
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pageviews:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("pageviews", flag.ContinueOnError)
	fs.SetOutput(logOut)
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers; empty starts an embedded broker")
	input := fs.String("input", "pageviews", "topic of page views (JSON values)")
	output := fs.String("output", "pageview-counts", "topic of views per page and window (JSON values)")
	size := fs.Duration("window", time.Minute, "window size")
	grace := fs.Duration("grace", 10*time.Second, "how long after a window's end (in event time) views are still counted")
	appID := fs.String("app-id", "pageviews", "application ID (consumer group, internal topic prefix)")
	stateDir := fs.String("state-dir", "", "directory of local state (and of the embedded broker's data); empty: a temporary one with the embedded broker, the runtime's default with -brokers")
	partitions := fs.Int("partitions", 4, "partitions of the input and output topics, if they are created")
	views := fs.Int("generate", 0, "feed this many generated page views, print the windows and exit")
	windows := fs.Int("windows", 5, "number of windows the generated views span, with -generate")
	top := fs.Int("top", 3, "number of top pages to print per window with -generate")
	describe := fs.Bool("describe", false, "print the topology and exit")
	verbose := fs.Bool("v", false, "log what the runtime does")
	httpAddr := demo.HTTPFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < time.Millisecond || *grace < 0 || *windows < 1 {
		return fmt.Errorf("-window must be at least 1ms, -grace not negative and -windows at least 1 (got %v, %v, %d)", *size, *grace, *windows)
	}
	topo, err := Topology(*input, *output, *size, *grace)
	if err != nil {
		return err
	}
	if *describe {
		fmt.Fprint(out, topo.Describe())
		return nil
	}
	level := slog.LevelWarn
	if *views > 0 {
		// The generated input is bad on purpose: a warning per skipped
		// record would drown the report, which counts them.
		level = slog.LevelError
	}
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	conn, err := connectors.Connect(*brokers, *stateDir, "pageviews")
	if err != nil {
		return err
	}
	defer conn.Close()
	addrs, where := conn.Brokers, conn.Where
	*stateDir = conn.StateDir
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = connectors.CreateTopics(cctx, addrs, int32(*partitions), *input, *output)
	cancel()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	app, err := runtime.New(topo, runtime.ApplicationID(*appID), runtime.Brokers(addrs...),
		runtime.StateDir(*stateDir), runtime.Logger(log), runtime.CommitInterval(time.Second),
		runtime.SkipUndecodableRecords(), runtime.Registerer(reg), runtime.HTTPAddr(*httpAddr))
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	demo.AnnounceHTTP(logOut, app)

	if *views <= 0 {
		fmt.Fprintf(out, "Counting page views from %s on %s per %v window (grace %v) into %s; Ctrl-C stops.\n",
			*input, where, *size, *grace, *output)
		return <-done
	}

	// Event times in the last windows before now, so that the closing
	// views (at the last window's end + grace) are about now.
	sz := size.Milliseconds()
	first := time.Now().UnixMilli()/sz*sz - int64(*windows)*sz
	g := generate(*views, *windows, first, *size, *grace, 1)
	start := time.Now()
	if err := produceViews(ctx, addrs, *input, g.records); err != nil {
		return err
	}
	wait := time.Minute + time.Duration(len(g.records))*50*time.Microsecond
	got, err := awaitWindows(ctx, addrs, *output, wait, done, g.covers)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	stopApp()
	if err := <-done; err != nil {
		return err
	}
	if err := g.check(got, false); err != nil {
		return err
	}
	drops := demo.Dropped(reg)
	if drops["late"] != int64(g.kinds[late]) || drops["deserialization-error"] != int64(g.kinds[malformed]) ||
		drops["invalid-timestamp"] != int64(g.kinds[noTS]) || drops["null-value"] != int64(g.kinds[tombstone]) {
		return fmt.Errorf("dropped records by reason: %v; the generator made %d late, %d malformed, %d without a ts, %d tombstones",
			drops, g.kinds[late], g.kinds[malformed], g.kinds[noTS], g.kinds[tombstone])
	}
	printReport(out, g, got, drops, where, *input, *output, *top, elapsed)
	return nil
}

// printReport tells what was generated, what the windows counted and what
// was dropped.
func printReport(out io.Writer, g *generation, got []Emitted, drops map[string]int64, where, input, output string, top int, elapsed time.Duration) {
	layout := "15:04:05"
	if g.size%1000 != 0 || g.grace%1000 != 0 {
		layout = "15:04:05.000"
	}
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(layout) }
	size := time.Duration(g.size) * time.Millisecond
	grace := time.Duration(g.grace) * time.Millisecond
	fmt.Fprintf(out, "Produced %d page views of %d pages to %s on %s, with event times (UTC)\n",
		len(g.records)-g.kinds[closing], len(pages), input, where)
	fmt.Fprintf(out, "in %d windows of %v, from %s to %s:\n", g.windows, size, clock(g.first), clock(g.first+int64(g.windows)*g.size))
	fmt.Fprintf(out, "  %6d in event-time order\n", g.kinds[inOrder])
	fmt.Fprintf(out, "  %6d out of order (behind the latest event time, in a window still open): counted;\n", g.kinds[outOfOrder])
	fmt.Fprintf(out, "         %d of them in the previous window, which the %v grace period kept open\n", g.previousWindow, grace)
	fmt.Fprintf(out, "  %6d late (for a window already closed: stream time had passed its end + grace): dropped\n", g.kinds[late])
	fmt.Fprintf(out, "  %6d malformed JSON (empty values among them), %d without a ts and %d tombstones: skipped\n",
		g.kinds[malformed], g.kinds[noTS], g.kinds[tombstone])
	fmt.Fprintf(out, "then one view of each page at %s. Windows close only when stream time (the latest event\n", clock(g.closeAt))
	fmt.Fprintf(out, "time seen) moves: this moves it to the last window's end + grace, which closes it. (These\n")
	fmt.Fprintf(out, "views open a next window, which stays open.)\n\n")

	fmt.Fprintf(out, "Each window was written to %s once, when it closed (the last %v after producing started):\n",
		output, elapsed.Round(time.Millisecond))
	byWindow := map[int64][]Emitted{}
	for _, e := range got {
		byWindow[e.Value.WindowStart] = append(byWindow[e.Value.WindowStart], e)
	}
	width := len(clock(0))*2 + 1
	fmt.Fprintf(out, "  %-*s  %6s  %s\n", width, "window (UTC)", "views", "top pages")
	for _, start := range slices.Sorted(maps.Keys(byWindow)) {
		es := byWindow[start]
		slices.SortFunc(es, func(a, b Emitted) int {
			return cmp.Or(cmp.Compare(b.Value.Count, a.Value.Count), strings.Compare(a.Value.Page, b.Value.Page))
		})
		var total int64
		tops := make([]string, 0, top)
		for i, e := range es {
			total += e.Value.Count
			if i < top {
				tops = append(tops, fmt.Sprintf("%s %d", e.Value.Page, e.Value.Count))
			}
		}
		fmt.Fprintf(out, "  %-*s  %6d  %s\n", width, clock(start)+"-"+clock(start+g.size), total, strings.Join(tops, ", "))
	}
	fmt.Fprintf(out, "Every count matches a direct count of the generated views.\n")
	fmt.Fprintf(out, "Dropped and counted (metric sluice_dropped_records_total, by reason): %d late, %d deserialization-error, %d invalid-timestamp, %d null-value.\n",
		drops["late"], drops["deserialization-error"], drops["invalid-timestamp"], drops["null-value"])
}

// produceViews writes the generated records, keyed by page, and waits for
// them.
func produceViews(ctx context.Context, brokers []string, topic string, recs []genRecord) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, r := range recs {
		cl.Produce(ctx, &kgo.Record{Key: []byte(r.page), Value: r.value}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce input: %w", err)
	}
	return nil
}

// Emitted is a record of the output topic.
type Emitted struct {
	Key       string
	Value     WindowCount
	Timestamp int64 // ms
}

// awaitWindows reads the output topic from its start until done holds for
// the records read, the app stops (if appDone is not nil), or timeout
// passes. It returns the records read, in the order read.
func awaitWindows(ctx context.Context, brokers []string, topic string, timeout time.Duration, appDone <-chan error, done func([]Emitted) bool) ([]Emitted, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var got []Emitted
	var bad error
	for !done(got) {
		select {
		case err := <-appDone:
			return got, cmp.Or(err, errors.New("the app stopped before every window was written"))
		default:
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, fmt.Errorf("windows incomplete after %v: %d records read", timeout, len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			var wc WindowCount
			if err := json.Unmarshal(r.Value, &wc); err != nil {
				bad = cmp.Or(bad, fmt.Errorf("record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
				return
			}
			got = append(got, Emitted{Key: string(r.Key), Value: wc, Timestamp: r.Timestamp.UnixMilli()})
		})
		if bad != nil {
			return got, bad
		}
	}
	return got, nil
}
