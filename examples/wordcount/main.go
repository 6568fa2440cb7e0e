// Command wordcount counts words: the flagship Sluice example.
//
// It reads lines of text from a topic (UTF-8 values; keys are ignored),
// splits them on whitespace into lowercased words, keeps a running count
// per word in a state store and writes every updated count to an output
// topic, with the word as a UTF-8 key and the count as an 8-byte big-endian
// int64 value (what Kafka's LongSerializer writes).
//
//	wordcount                       run on the embedded broker until SIGINT/SIGTERM
//	wordcount -brokers host:9092    run on a Kafka cluster
//	wordcount -generate 100000      also feed 100,000 generated lines, print the top words and exit
//	wordcount -describe             print the compiled topology and exit
//	wordcount -http 127.0.0.1:8080  serve the web UI, /metrics, /healthz, /readyz and /topology there
//	wordcount -dlq wordcount-dlq    send records that fail to the dead-letter topic wordcount-dlq
//
// -dlq TOPIC sets all three error handlers (deserialization, processing,
// production) to operators.SendToDeadLetterQueue with TOPIC as the
// dead-letter queue (created if it does not exist): an input line the app
// cannot process or whose output Kafka refuses (a line holding one word
// longer than the repartition topic takes) is written to TOPIC as read,
// with Kafka Streams' error headers, and counting goes on. Without it,
// such a line stops the app with an error naming its topic, partition and
// offset (the default, as in Kafka Streams).
//
// The app's HTTP server (runtime.HTTPAddr) runs on a free loopback port
// unless -http says otherwise ("" turns it off); the app prints its URL on
// stderr at start: "web UI and metrics: http://127.0.0.1:PORT/".
//
// With no -brokers it starts an in-process Kafka broker (kfake), so it runs
// on a bare machine. It creates its input and output topics if they do not
// exist. The first SIGINT or SIGTERM shuts it down gracefully (offsets
// committed, group left) and it exits 0; a second one exits at once.
package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/examples/internal/demo"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
)

func main() {
	ctx, stop := runtime.SignalContext(context.Background())
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	fs.SetOutput(logOut)
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers; empty starts an embedded broker")
	input := fs.String("input", "text-input", "topic of text lines")
	output := fs.String("output", "word-counts", "topic of word counts")
	appID := fs.String("app-id", "wordcount", "application ID (consumer group, internal topic prefix)")
	stateDir := fs.String("state-dir", "", "directory of local state (and of the embedded broker's data); empty: a temporary one with the embedded broker, the runtime's default with -brokers")
	partitions := fs.Int("partitions", 4, "partitions of the input and output topics, if they are created")
	generate := fs.Int("generate", 0, "feed this many generated lines, print the top words and exit")
	top := fs.Int("top", 10, "number of top words to print with -generate")
	describe := fs.Bool("describe", false, "print the topology and exit")
	verbose := fs.Bool("v", false, "log what the runtime does")
	httpAddr := demo.HTTPFlag(fs)
	dlq := fs.String("dlq", "", "dead-letter queue topic: records that fail to deserialize, process or produce go there and processing goes on; empty: they stop the app")
	if err := fs.Parse(args); err != nil {
		return err
	}
	topo, err := Topology(*input, *output)
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

	conn, err := connectors.Connect(*brokers, *stateDir, "wordcount")
	if err != nil {
		return err
	}
	defer conn.Close()
	addrs, where := conn.Brokers, conn.Where
	*stateDir = conn.StateDir
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	topics := []string{*input, *output}
	if *dlq != "" {
		topics = append(topics, *dlq)
	}
	err = connectors.CreateTopics(cctx, addrs, int32(*partitions), topics...)
	cancel()
	if err != nil {
		return err
	}

	opts := append([]runtime.Option{runtime.ApplicationID(*appID), runtime.Brokers(addrs...),
		runtime.StateDir(*stateDir), runtime.Logger(log), runtime.CommitInterval(time.Second), runtime.HTTPAddr(*httpAddr)}, errorOptions(*dlq)...)
	app, err := runtime.New(topo, opts...)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	demo.AnnounceHTTP(logOut, app)

	if *generate <= 0 {
		fmt.Fprintf(out, "Counting words from %s on %s into %s; Ctrl-C stops.\n", *input, where, *output)
		return <-done
	}

	lines := generateLines(*generate)
	want := map[string]int64{}
	words := 0
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			want[strings.ToLower(w)]++
			words++
		}
	}
	start := time.Now()
	if err := produceLines(ctx, addrs, *input, lines); err != nil {
		return err
	}
	counts, err := awaitCounts(ctx, addrs, *output, want, done)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	stopApp()
	if err := <-done; err != nil {
		return err
	}
	fmt.Fprintf(out, "Counted %d words (%d distinct) in %d lines on %s in %v.\n",
		words, len(counts), len(lines), where, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "Every count matches a direct count of the generated text. Top %d words:\n", *top)
	for _, w := range topWords(counts, *top) {
		fmt.Fprintf(out, "  %-10s %d\n", w, counts[w])
	}
	return nil
}

// errorOptions are the runtime options of -dlq: with a topic, every error
// handler sends the failed input record to it and processing goes on;
// without, none (every handler fails, the default).
func errorOptions(dlq string) []runtime.Option {
	if dlq == "" {
		return nil
	}
	return []runtime.Option{
		runtime.DeadLetterQueue(dlq),
		runtime.OnDeserializationError(operators.SendToDeadLetterQueue),
		runtime.OnProcessingError(operators.SendToDeadLetterQueue),
		runtime.OnProductionError(operators.SendToDeadLetterQueue),
	}
}

// produceLines writes lines to topic with null keys and waits for them.
func produceLines(ctx context.Context, brokers []string, topic string, lines []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, l := range lines {
		cl.Produce(ctx, &kgo.Record{Value: []byte(l)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce input: %w", err)
	}
	return nil
}

// awaitCounts reads the output topic until the latest count of every word
// is the expected one, the app fails, or a minute passes.
func awaitCounts(ctx context.Context, brokers []string, topic string, want map[string]int64, appDone <-chan error) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	got := map[string]int64{}
	matching := 0
	for matching < len(want) {
		select {
		case err := <-appDone:
			return nil, cmp.Or(err, errors.New("the app stopped before the counts were complete"))
		default:
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, fmt.Errorf("counts incomplete after a minute: %d of %d words have their final count", matching, len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 8 {
				return
			}
			w, n := string(r.Key), int64(binary.BigEndian.Uint64(r.Value))
			if got[w] == want[w] {
				matching--
			}
			got[w] = n
			if n == want[w] {
				matching++
			}
		})
	}
	return got, nil
}

// topWords returns the n most frequent words, ties by word.
func topWords(counts map[string]int64, n int) []string {
	ws := make([]string, 0, len(counts))
	for w := range counts {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return ws[:min(n, len(ws))]
}

// vocabulary is drawn from with a Zipf distribution, so a few words are
// common and most are rare, as in real text.
var vocabulary = strings.Fields(`the of and to a in is it you that he was for on are with as I his they
be at one have this from or had by hot word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no most people
my over know water than call first who may down side been now find any new work part take get place
made live where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move right
boy old too same tell does set three want air well also play small end put home read hand port large
spell add even land here must big high such follow act why ask men change went light kind off need house
picture try us again animal point mother world near build self earth father head stand own page should
country found answer school grow study still learn plant cover food sun four between state keep eye never
last let thought city tree cross farm hard start might story saw far sea draw left late run while press`)

// generateLines makes n lines of 5 to 15 words, the same on every run.
func generateLines(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocabulary)-1))
	lines := make([]string, n)
	var sb strings.Builder
	for i := range lines {
		sb.Reset()
		for j := range 5 + rng.IntN(11) {
			if j > 0 {
				sb.WriteByte(' ')
			}
			w := vocabulary[zipf.Uint64()]
			if rng.IntN(10) == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			sb.WriteString(w)
		}
		lines[i] = sb.String()
	}
	return lines
}
