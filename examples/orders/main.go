// Command orders joins orders with their customers on a foreign key and
// totals each customer's orders per hour, writing each hour's total once,
// when it is final: a Sluice example of a foreign-key table-table join and
// of suppression.
//
// It reads two tables, keyed by UTF-8 strings, with JSON values:
//
//	customers  key customer id  {"customer":"c01","name":"Ada1","tier":"gold"}
//	orders     key order id     {"order":"o000001","customer":"c01","cents":1250,"ts":1700000000000}
//
// and writes two topics:
//
//	orders-enriched  key order id     {"order","customer","name","tier","cents","ts"}
//	customer-totals  key customer id  {"customer","window_start","window_end","orders","cents"}
//
// ts is the order's event time, in milliseconds since the Unix epoch.
// orders-enriched is the orders table joined with the customers table on the
// order's customer id (a left join: name and tier are null when the
// customer is unknown); a deleted order (a tombstone) deletes its row there
// too. The orders and customers topics need not have the same number of
// partitions: the join routes each order to its customer's partition and
// back through internal topics. customer-totals sums the enriched orders of
// each customer in one-hour tumbling windows aligned to the epoch, with 10
// minutes of grace, and writes each window once, when it closes (Kafka
// Streams' suppress(untilWindowCloses)): when the largest event time the
// totals have seen reaches the window's end plus the grace.
//
//	orders                       run on the embedded broker until SIGINT/SIGTERM
//	orders -brokers host:9092    run on a Kafka cluster
//	orders -generate 5000        also feed 5,000 generated orders, check the outputs and exit
//	orders -describe             print the compiled topology and exit
//	orders -http 127.0.0.1:8080  serve the web UI, /metrics, /healthz, /readyz and /topology there
//
// The app's HTTP server (runtime.HTTPAddr) runs on a free loopback port
// unless -http says otherwise ("" turns it off); the app prints its URL on
// stderr at start: "web UI and metrics: http://127.0.0.1:PORT/".
//
// With no -brokers it starts an in-process Kafka broker (kfake), so it runs
// on a bare machine. It creates its topics if they do not exist (orders and
// the outputs with -partitions partitions, customers with
// -customer-partitions). The first SIGINT or SIGTERM shuts it down
// gracefully and it exits 0; a second one exits at once.
//
// Processing is at-least-once: after a crash, results written but not yet
// committed may be written again, identical; the suppression buffer is
// kept in a changelog, so a final total is never lost nor written twice
// with different values.
//
// -generate writes the customers, starts the application, waits until it
// has read them, then feeds orders in rounds (see generate.go), each once
// the application has committed the one before, and checks every output
// record against a direct computation from the input.
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
	"github.com/sluicehq/sluice/topology"
)

func main() {
	ctx, stop := runtime.SignalContext(context.Background())
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	fs.SetOutput(logOut)
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers; empty starts an embedded broker")
	appID := fs.String("app-id", "orders", "application ID (consumer group, internal topic prefix)")
	stateDir := fs.String("state-dir", "", "directory of local state (and of the embedded broker's data); empty: a temporary one with the embedded broker, the runtime's default with -brokers")
	partitions := fs.Int("partitions", 4, "partitions of orders and of the outputs, if they are created")
	customerPartitions := fs.Int("customer-partitions", 2, "partitions of customers, if it is created")
	orders := fs.Int("generate", 0, "feed about this many generated orders, check the outputs and exit")
	hours := fs.Int("hours", 3, "number of one-hour windows the generated orders span, with -generate")
	seed := fs.Uint64("seed", 1, "seed of the generated input, with -generate")
	describe := fs.Bool("describe", false, "print the topology and exit")
	verbose := fs.Bool("v", false, "log what the runtime does")
	httpAddr := demo.HTTPFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hours < 1 || *partitions < 1 || *customerPartitions < 1 {
		return fmt.Errorf("-hours, -partitions and -customer-partitions must be at least 1 (got %d, %d, %d)", *hours, *partitions, *customerPartitions)
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

	conn, err := connectors.Connect(*brokers, *stateDir, "orders")
	if err != nil {
		return err
	}
	defer conn.Close()
	addrs, where := conn.Brokers, conn.Where
	*stateDir = conn.StateDir
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = connectors.CreateTopics(cctx, addrs, int32(*partitions), topics.Orders, topics.Enriched, topics.Totals)
	if err == nil {
		err = connectors.CreateTopics(cctx, addrs, int32(*customerPartitions), topics.Customers)
	}
	cancel()
	if err != nil {
		return err
	}

	var g *generation
	if *orders > 0 {
		// Event times in the last hours before now, so that the closing
		// orders are about now.
		size := totalsWindow.Milliseconds()
		g = generate(*orders, *hours, time.Now().UnixMilli()/size*size-int64(*hours)*size, *seed)
		if _, err := demo.Produce(ctx, addrs, customerRecords(topics, g)); err != nil {
			return err
		}
	}

	commit := time.Second
	if g != nil {
		commit = 100 * time.Millisecond // each round of generated input waits for a commit
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
		fmt.Fprintf(out, "Joining %s with %s on %s into %s, totals per hour into %s; Ctrl-C stops.\n",
			topics.Orders, topics.Customers, where, topics.Enriched, topics.Totals)
		return <-done
	}

	start := time.Now()
	wait := time.Minute + time.Duration(g.orders)*100*time.Microsecond
	// The customers were written before the application started; between
	// rounds the feed waits for the join's internal topics and the
	// repartition topic too: else the next round could overtake this one
	// inside the join.
	var internal []string
	for _, it := range topo.InternalTopics() {
		if it.Kind != topology.Changelog {
			internal = append(internal, *appID+"-"+it.Name)
		}
	}
	rounds := make([][]*kgo.Record, len(g.rounds))
	for i, r := range g.rounds {
		rounds[i] = r.kafkaRecords(topics)
	}
	f := demo.Feed{Brokers: addrs, Group: *appID, Written: []string{topics.Customers}, Internal: internal, Timeout: wait, AppDone: done}
	if err := f.Run(ctx, rounds); err != nil {
		return err
	}
	got, err := awaitOutputs(ctx, addrs, topics, wait, done, g.covers)
	if err != nil {
		if cerr := g.check(got); cerr != nil {
			return fmt.Errorf("%w; so far, %w", err, cerr)
		}
		return err
	}
	elapsed := time.Since(start)
	stopApp()
	if err := <-done; err != nil {
		return err
	}
	if err := g.check(got); err != nil {
		return err
	}
	printReport(out, g, got, demo.Dropped(reg), where, topics, elapsed)
	return nil
}

// printReport tells what was generated and what each output holds.
func printReport(out io.Writer, g *generation, got *outputs, drops map[string]int64, where string, t Topics, elapsed time.Duration) {
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }
	size := totalsWindow.Milliseconds()
	fmt.Fprintf(out, "Produced to %s: %d customers to %s, then, in %d rounds, %d orders to %s\n",
		where, len(g.customers), t.Customers, len(g.rounds), g.orders, t.Orders)
	fmt.Fprintf(out, "with event times (UTC) in %d one-hour windows from %s to %s:\n", g.hours, clock(g.first), clock(g.first+int64(g.hours)*size))
	fmt.Fprintf(out, "  %6d orders out of order (written after a later order)\n", g.shuffled)
	fmt.Fprintf(out, "  %6d orders of customers not in %s: enriched with a null name and tier\n", g.unknown, t.Customers)
	fmt.Fprintf(out, "  %6d orders deleted afterwards: a tombstone in %s, still in the totals\n", g.deleted, t.Enriched)
	fmt.Fprintf(out, "  %6d orders, one per customer, at %s (the last window's end + grace): they close the last windows\n",
		len(g.rounds[len(g.rounds)-1].records), clock(g.closeAt))
	fmt.Fprintf(out, "All written in %v.\n\n", elapsed.Round(time.Millisecond))

	tombstones := 0
	for _, e := range got.enriched {
		if e.Value == nil {
			tombstones++
		}
	}
	fmt.Fprintf(out, "%-16s %6d records (%d tombstones)\n", t.Enriched, len(got.enriched), tombstones)
	fmt.Fprintf(out, "%-16s %6d windows, each written once when it closed; orders (amount) per customer and hour:\n", t.Totals, len(got.totals))
	starts := map[int64]bool{}
	customers := map[string]bool{}
	for k := range g.want.totals {
		starts[k.start], customers[k.customer] = true, true
	}
	fmt.Fprintf(out, "  %-8s", "customer")
	for _, s := range slices.Sorted(maps.Keys(starts)) {
		fmt.Fprintf(out, " %16s", clock(s)+"-"+clock(s+size))
	}
	fmt.Fprintln(out)
	for _, c := range slices.Sorted(maps.Keys(customers)) {
		fmt.Fprintf(out, "  %-8s", c)
		for _, s := range slices.Sorted(maps.Keys(starts)) {
			if w, ok := g.want.totals[totalKey{customer: c, start: s}]; ok {
				fmt.Fprintf(out, " %16s", fmt.Sprintf("%d (%.2f)", w.total.Orders, float64(w.total.Cents)/100))
			} else {
				fmt.Fprintf(out, " %16s", "-")
			}
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Every record of the two topics matches a direct computation from the input.\n")
	if len(drops) > 0 {
		var ds []string
		for _, reason := range slices.Sorted(maps.Keys(drops)) {
			ds = append(ds, fmt.Sprintf("%d %s", drops[reason], reason))
		}
		fmt.Fprintf(out, "Dropped and counted (metric sluice_dropped_records_total, by reason): %s.\n", strings.Join(ds, ", "))
	}
}

// customerRecords are the records of the customers topic, timestamped an
// hour before the first order.
func customerRecords(t Topics, g *generation) []*kgo.Record {
	recs := make([]*kgo.Record, len(g.customers))
	for i, c := range g.customers {
		recs[i] = &kgo.Record{Topic: t.Customers, Key: []byte(c.Customer), Value: mustJSON(c),
			Timestamp: time.UnixMilli(g.first - totalsWindow.Milliseconds())}
	}
	return recs
}

// kafkaRecords are the records of the round for the orders topic.
func (r round) kafkaRecords(t Topics) []*kgo.Record {
	recs := make([]*kgo.Record, len(r.records))
	for i, rec := range r.records {
		recs[i] = &kgo.Record{Topic: t.Orders, Key: []byte(rec.order), Value: rec.value, Timestamp: time.UnixMilli(rec.ts)}
	}
	return recs
}

// awaitOutputs reads the output topics from their start until done holds
// for the records read, the application stops, or timeout passes.
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
			return got, fmt.Errorf("outputs incomplete after %v: %d records read (%d %s, %d %s)", timeout, got.total(),
				len(got.enriched), t.Enriched, len(got.totals), t.Totals)
		}
		fs.EachRecord(func(r *kgo.Record) {
			e := Emitted{Key: string(r.Key), Value: r.Value, Timestamp: r.Timestamp.UnixMilli()}
			switch r.Topic {
			case t.Enriched:
				got.enriched = append(got.enriched, e)
			case t.Totals:
				got.totals = append(got.totals, e)
			}
		})
	}
	return got, nil
}
