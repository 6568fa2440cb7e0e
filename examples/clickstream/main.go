// Command clickstream enriches clicks, counts them per region and
// attributes purchases to clicks: a Sluice example of joins (stream-table,
// stream-global table and windowed stream-stream) and of a windowed count
// after a repartition.
//
// It reads four topics, all keyed by UTF-8 strings, with JSON values:
//
//	users      table   key user id    {"user":"u1","region":"eu"}
//	pages      global  key page path  {"page":"/home","category":"landing"}
//	clicks     stream  key user id    {"user":"u1","page":"/home","ts":1700000000000}
//	purchases  stream  key user id    {"user":"u1","amount":12.5,"ts":1700000000000}
//
// and writes three:
//
//	clicks-enriched       key user id  {"user","page","region","category","ts"}
//	region-clicks         key region   {"region","window_start","window_end","count"}
//	attributed-purchases  key user id  {"user","page","amount","click_ts","purchase_ts"}
//
// ts is the event time, in milliseconds since the Unix epoch. A click of a
// user in the users table is written to clicks-enriched with the user's
// region and its page's category (null when the page is not in pages);
// clicks of unknown users are not. region-clicks counts the enriched clicks
// of each region in one-minute tumbling windows, aligned to the epoch, and
// writes each window once, when it closes: when the stream time of the task
// counting the region (the largest event time it has seen) reaches the
// window's end plus 10 s of grace; a click for a closed window is late,
// dropped and counted. attributed-purchases pairs each purchase with every
// click of the same user whose ts is in [purchase ts - 10 min, purchase ts],
// one record per pair, as the records arrive (grace 1 min: the join keeps
// the clicks and purchases of the last 11 minutes of stream time).
//
// pages is a global table: every instance reads all of it, and processing
// starts only once it has caught up, so a click never misses a page that
// was in the topic when the program started. users is an ordinary table,
// partitioned like clicks and purchases (the three topics must have the
// same number of partitions).
//
//	clickstream                       run on the embedded broker until SIGINT/SIGTERM
//	clickstream -brokers host:9092    run on a Kafka cluster
//	clickstream -generate 10000       also feed 10,000 generated clicks, check the outputs and exit
//	clickstream -describe             print the compiled topology and exit
//	clickstream -http 127.0.0.1:8080  serve the web UI, /metrics, /healthz, /readyz and /topology there
//
// The app's HTTP server (runtime.HTTPAddr) runs on a free loopback port
// unless -http says otherwise ("" turns it off); the app prints its URL on
// stderr at start: "web UI and metrics: http://127.0.0.1:PORT/".
//
// With no -brokers it starts an in-process Kafka broker (kfake), so it runs
// on a bare machine. It creates its topics if they do not exist. The first
// SIGINT or SIGTERM shuts it down gracefully (offsets committed, group
// left) and it exits 0; a second one exits at once.
//
// Processing is at-least-once: after a crash, results written but not yet
// committed may be written again, identical.
//
// -generate writes users and pages, starts the application, and feeds
// clicks (some out of order, some of unknown users, some of unknown pages)
// and purchases over a few minutes of recent event time, in rounds: each
// round once the application has committed the previous one, so that the
// outputs depend on the input alone and can be checked exactly against a
// direct computation (see generate.go for why). It is a demonstration for
// a fresh application, which the embedded broker always is.
package main

import (
	"cmp"
	"context"
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
		fmt.Fprintln(os.Stderr, "clickstream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("clickstream", flag.ContinueOnError)
	fs.SetOutput(logOut)
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers; empty starts an embedded broker")
	appID := fs.String("app-id", "clickstream", "application ID (consumer group, internal topic prefix)")
	stateDir := fs.String("state-dir", "", "directory of local state (and of the embedded broker's data); empty: a temporary one with the embedded broker, the runtime's default with -brokers")
	partitions := fs.Int("partitions", 4, "partitions of the topics, if they are created")
	clicks := fs.Int("generate", 0, "feed about this many generated clicks (and purchases), check the outputs and exit")
	windows := fs.Int("windows", 5, "number of one-minute windows the generated clicks span, with -generate")
	seed := fs.Uint64("seed", 1, "seed of the generated input, with -generate")
	describe := fs.Bool("describe", false, "print the topology and exit")
	verbose := fs.Bool("v", false, "log what the runtime does")
	httpAddr := demo.HTTPFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *windows < 1 || *partitions < 1 {
		return fmt.Errorf("-windows and -partitions must be at least 1 (got %d, %d)", *windows, *partitions)
	}
	topics := defaultTopics
	topo, err := Topology(topics)
	if err != nil {
		return err
	}
	if *describe {
		fmt.Fprint(out, topo.Describe())
		return nil
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	conn, err := connectors.Connect(*brokers, *stateDir, "clickstream")
	if err != nil {
		return err
	}
	defer conn.Close()
	addrs, where := conn.Brokers, conn.Where
	*stateDir = conn.StateDir
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = connectors.CreateTopics(cctx, addrs, int32(*partitions), append(topics.inputs(), topics.outputs()...)...)
	cancel()
	if err != nil {
		return err
	}

	var g *generation
	if *clicks > 0 {
		// Event times in the last windows before now, so that the closing
		// clicks (at the last window's end + grace) are about now. The
		// tables go first: pages is complete before the application
		// starts, which waits for it.
		sz := regionWindow.Milliseconds()
		g = generate(*clicks, *windows, time.Now().UnixMilli()/sz*sz-int64(*windows)*sz, *seed)
		if err := produceTables(ctx, addrs, topics, g); err != nil {
			return err
		}
	}

	commit := time.Second
	if g != nil {
		// Each round of generated input waits for a commit.
		commit = 100 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	app, err := runtime.New(topo, runtime.ApplicationID(*appID), runtime.Brokers(addrs...),
		runtime.StateDir(*stateDir), runtime.Logger(log), runtime.CommitInterval(commit),
		runtime.SkipUndecodableRecords(), runtime.Registerer(reg), runtime.HTTPAddr(*httpAddr))
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	demo.AnnounceHTTP(logOut, app)

	if g == nil {
		fmt.Fprintf(out, "Joining %s with %s and %s, and %s with %s, on %s into %s, %s and %s; Ctrl-C stops.\n",
			topics.Clicks, topics.Users, topics.Pages, topics.Purchases, topics.Clicks, where,
			topics.Enriched, topics.RegionClicks, topics.Attributed)
		return <-done
	}

	start := time.Now()
	wait := time.Minute + time.Duration(len(g.clicks))*50*time.Microsecond
	if err := feed(ctx, addrs, *appID, topics, g, wait, done, nil); err != nil {
		return err
	}
	got, err := awaitOutputs(ctx, addrs, topics, wait, done, g.covers)
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
	printReport(out, g, got, demo.Dropped(reg), where, topics, elapsed)
	return nil
}

// printReport tells what was generated and what each output holds.
func printReport(out io.Writer, g *generation, got *outputs, drops map[string]int64, where string, t Topics, elapsed time.Duration) {
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05") }
	size := regionWindow.Milliseconds()
	known := map[string]bool{}
	for _, p := range g.pages {
		known[p.Page] = true
	}
	fmt.Fprintf(out, "Produced to %s: %d users in %d regions to %s, %d pages to %s, then, in %d rounds,\n",
		where, len(g.users), len(regions), t.Users, len(g.pages), t.Pages, len(g.rounds))
	fmt.Fprintf(out, "%d clicks to %s and %d purchases to %s, with event times (UTC) in %d one-minute windows from %s to %s:\n",
		len(g.clicks), t.Clicks, len(g.buys), t.Purchases, g.windows, clock(g.first), clock(g.first+int64(g.windows)*size))
	fmt.Fprintf(out, "  %6d clicks out of order (behind the latest event time), %d of them in the previous window,\n", g.outOfOrder, g.previousWindow)
	fmt.Fprintf(out, "         which its %v of grace kept open\n", regionGrace)
	fmt.Fprintf(out, "  %6d clicks of users not in %s: not enriched, not counted (still attributed)\n", g.unknownUsers, t.Users)
	fmt.Fprintf(out, "  %6d clicks of pages not in %s: enriched with a null category\n", g.unknownPages, t.Pages)
	fmt.Fprintf(out, "  %6d clicks, one per region, at %s (the last window's end + grace): they close the last window\n",
		len(regions), clock(g.closeAt))
	fmt.Fprintf(out, "Each round went in once the application had committed the one before (the outputs are then\n")
	fmt.Fprintf(out, "those of the input alone, whatever the order of the tasks); all written in %v.\n\n", elapsed.Round(time.Millisecond))

	nullCategory := 0
	for k, n := range g.want.enriched {
		if strings.Contains(k.value, `"category":null`) {
			nullCategory += n
		}
	}
	fmt.Fprintf(out, "%-21s %6d clicks with region and category (%d with a null category)\n", t.Enriched, len(got.enriched), nullCategory)
	fmt.Fprintf(out, "%-21s %6d windows, each written once when it closed:\n", t.RegionClicks, len(got.regions))
	counts := map[int64]map[string]int64{}
	for k, w := range g.want.windows {
		if counts[k.start] == nil {
			counts[k.start] = map[string]int64{}
		}
		counts[k.start][k.region] = w.count
	}
	fmt.Fprintf(out, "  %-17s", "window (UTC)")
	for _, r := range regions {
		fmt.Fprintf(out, " %6s", r)
	}
	fmt.Fprintln(out)
	for _, start := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(out, "  %-17s", clock(start)+"-"+clock(start+size))
		for _, r := range regions {
			if n, ok := counts[start][r]; ok {
				fmt.Fprintf(out, " %6d", n)
			} else {
				fmt.Fprintf(out, " %6s", "-") // no click, no window
			}
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "%-21s %6d purchase-click pairs (%d purchases, each with its user's clicks in the 10 minutes before)\n",
		t.Attributed, len(got.attributed), len(g.buys))
	fmt.Fprintf(out, "Every record of the three topics matches a direct computation from the input.\n")
	if len(drops) > 0 {
		var ds []string
		for _, reason := range slices.Sorted(maps.Keys(drops)) {
			ds = append(ds, fmt.Sprintf("%d %s", drops[reason], reason))
		}
		fmt.Fprintf(out, "Dropped and counted (metric sluice_dropped_records_total, by reason): %s.\n", strings.Join(ds, ", "))
	}
}

// produceTables writes the pages and the users.
func produceTables(ctx context.Context, brokers []string, t Topics, g *generation) error {
	recs := pageRecords(t, g.pages)
	for _, u := range g.users {
		recs = append(recs, &kgo.Record{Topic: t.Users, Key: []byte(u.User), Value: mustJSON(u)})
	}
	_, err := demo.Produce(ctx, brokers, recs)
	return err
}

// pageRecords are the records of the pages topic of t for pages.
func pageRecords(t Topics, pages []Page) []*kgo.Record {
	recs := make([]*kgo.Record, len(pages))
	for i, p := range pages {
		recs[i] = &kgo.Record{Topic: t.Pages, Key: []byte(p.Page), Value: mustJSON(p)}
	}
	return recs
}

// feed writes the generated clicks and purchases, round by round: before
// each round, and after the last, it waits until the application (consumer
// group appID) has committed every record produced so far, the users
// included. between, if not nil, is called after each round is produced
// (with its index), before that wait. It fails if the application stops,
// or a round is not committed within timeout. (After a crash, an instance
// whose local state reflects input the group had not committed resumes
// after that input and commits that position at its next commit.)
func feed(ctx context.Context, brokers []string, appID string, t Topics, g *generation, timeout time.Duration,
	appDone <-chan error, between func(round int) error) error {
	rounds := make([][]*kgo.Record, len(g.rounds))
	for i, r := range g.rounds {
		rounds[i] = r.kafkaRecords(t)
	}
	// The users were written before the application started: the end
	// offsets of their topic are the first round's mark.
	f := demo.Feed{Brokers: brokers, Group: appID, Written: []string{t.Users}, Timeout: timeout, AppDone: appDone, Between: between}
	return f.Run(ctx, rounds)
}

// kafkaRecords are the records of the round for the clicks and purchases
// topics of t.
func (r round) kafkaRecords(t Topics) []*kgo.Record {
	recs := make([]*kgo.Record, len(r.records))
	for i, rec := range r.records {
		topic := t.Clicks
		if rec.purchase {
			topic = t.Purchases
		}
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(rec.user), Value: rec.value}
	}
	return recs
}

// awaitOutputs reads the output topics from their start until done holds
// for the records read, the application stops (if appDone is not nil), or
// timeout passes. It returns the records read, in the order read.
func awaitOutputs(ctx context.Context, brokers []string, t Topics, timeout time.Duration, appDone <-chan error, done func(*outputs) bool) (*outputs, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(t.outputs()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := &outputs{}
	for !done(got) {
		select {
		case err := <-appDone:
			return got, cmp.Or(err, errors.New("the application stopped before every output was written"))
		default:
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, fmt.Errorf("outputs incomplete after %v: %d records read (%d %s, %d %s, %d %s)", timeout, got.total(),
				len(got.enriched), t.Enriched, len(got.regions), t.RegionClicks, len(got.attributed), t.Attributed)
		}
		fs.EachRecord(func(r *kgo.Record) {
			e := Emitted{Key: string(r.Key), Value: r.Value, Timestamp: r.Timestamp.UnixMilli()}
			switch r.Topic {
			case t.Enriched:
				got.enriched = append(got.enriched, e)
			case t.RegionClicks:
				got.regions = append(got.regions, e)
			case t.Attributed:
				got.attributed = append(got.attributed, e)
			}
		})
	}
	return got, nil
}
