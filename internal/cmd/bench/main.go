// Command bench measures Sluice against the raw franz-go consume→produce
// loop on one broker in one run: records/s and CPU-seconds per million
// records for each workload, and the ratio of each to the raw loop.
//
//	go run ./internal/cmd/bench                      # on an embedded kfake broker
//	go run ./internal/cmd/bench -brokers host:9092   # on a real broker
//
// Every workload but the joins reads the same input topic (records of
// about 100 bytes: keys from a vocabulary of 10,000 words, values lines of
// words) and writes its own output topic. The joins read inputs of their
// own, written once before the first run that needs them: a stream-table
// join of -join-records stream records with a table of -table-keys keys
// (written first, with earlier timestamps, so that every stream record
// finds its row), and a stream-stream join of two streams of -join-records
// records each over -join-keys keys, joined in a one-minute time
// difference (event times spread so that each record meets about one
// record of the other stream), and a foreign-key join (fkjoin) of a table
// of -join-records orders, each naming one of the -table-keys rows of the
// stream-table join's table as its customer: the orders go through the
// subscription topic to the customers' tasks and back through the response
// topic. CPU time is this process's (user+system);
// with the embedded broker that includes the broker's work, with a real
// broker it does not.
//
// Issue 15's measurements have modes of their own. -table (table.go) runs
// the raw count loop, count per key with the record cache off and on, the
// window count with the cache off and the stream-stream join, each run in
// a child process so that its peak RSS is its own, and prints the medians
// with the ratios to the raw loop; -allocs (allocs.go) adds the
// allocations per record of the per-record Go benchmarks. -only latency
// (latency.go) feeds the raw count loop and Sluice's count per key (cache
// off, commit 100 ms) at half their measured maximum and reports the
// percentiles of the time from an input's produce to its output's arrival.
// make bench runs both; docs/performance.md explains the figures.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	kind    string // the workload's name in -only
	name    string
	records int
	elapsed time.Duration
	cpu     time.Duration
	written int64 // records in the output topic after the run (Sluice workloads)
	want    int64 // records it should hold, if known
	// dropped counts the records the app dropped on purpose (late,
	// null key, ...), by reason (Sluice workloads).
	dropped map[string]float64
}

func (r result) rate() float64 { return float64(r.records) / r.elapsed.Seconds() }
func (r result) cpuPerMillion() float64 {
	return r.cpu.Seconds() / (float64(r.records) / 1e6)
}

func run() error {
	brokersFlag := flag.String("brokers", "", "Kafka brokers; empty starts an embedded kfake broker")
	n := flag.Int("records", 2_000_000, "input records")
	partitions := flag.Int("partitions", 4, "input partitions")
	workers := flag.Int("workers", 2, "Sluice worker goroutines")
	only := flag.String("only", "", "comma-separated workloads to run (raw,rawcount,stateless,count,count-alos,count-eos,count-alos-cache,count-eos-cache,windowcount,windowcount-nocache,suppresscount,rawwordcount,wordcount,stjoin,ssjoin,fkjoin; latency: latency.go; with -table its rows: table.go); empty runs all")
	joinRecords := flag.Int("join-records", 1_000_000, "records of the join workloads' stream (stjoin) and of each of their two streams (ssjoin)")
	tableKeys := flag.Int("table-keys", 100_000, "keys of the stream-table join's table (stjoin)")
	joinKeys := flag.Int("join-keys", 10_000, "keys of the stream-stream join's streams (ssjoin)")
	runs := flag.Int("runs", 3, "runs of each workload (interleaved); the median is reported")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the workloads (not of producing the input) to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the workloads (not of producing the input) to this file")
	traceFile := flag.String("trace", "", "write an execution trace of the in-process workloads (not of producing the input; the -table rows and the latency benchmark are not traced) to this file, for go tool trace and internal/cmd/bench/tracewait: where the worker and the poll loop wait (docs/performance.md)")
	flag.Parse()

	ctx := context.Background()
	if *compareBins != "" {
		return compareMode(ctx)
	}
	brokers := strings.Split(*brokersFlag, ",")
	where := "real Kafka at " + *brokersFlag
	if *brokersFlag == "" {
		e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
		if err != nil {
			return err
		}
		defer e.Close()
		brokers, where = e.Brokers(), "embedded kfake"
	}
	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	// -child, -table, -only latency, -allocs: modes.go.
	if done, err := runModes(ctx, brokers, where, run, *n, *workers, *runs, int32(*partitions), *only); done || err != nil {
		return err
	}
	input := run + "-input"
	if err := connectors.CreateTopics(ctx, brokers, int32(*partitions), input); err != nil {
		return err
	}
	fmt.Printf("Producing %d records of ~100 B (10,000 keys) to %s on %s...\n", *n, input, where)
	words, err := produceInput(ctx, brokers, input, *n)
	if err != nil {
		return err
	}

	var joins joinInputs
	joinInput := func() (joinInputs, error) {
		if joins.stream != "" {
			return joins, nil
		}
		fmt.Printf("Producing the joins' inputs: a table of %d keys and %d stream records; two streams of %d records (%d keys)...\n",
			*tableKeys, *joinRecords, *joinRecords, *joinKeys)
		var err error
		joins, err = produceJoinInputs(ctx, brokers, run, int32(*partitions), *joinRecords, *tableKeys, *joinKeys)
		return joins, err
	}

	workloads := []struct {
		name string
		run  func() (result, error)
	}{
		{"raw", func() (result, error) { return rawLoop(ctx, brokers, input, run+"-raw", *n, int32(*partitions)) }},
		{"stateless", func() (result, error) {
			return sluice(ctx, brokers, input, run, "stateless", *n, *n, *workers, int32(*partitions), stateless)
		}},
		{"count", func() (result, error) {
			return sluice(ctx, brokers, input, run, "count", *n, *n, *workers, int32(*partitions), countByKey)
		}},
		// Count per key at Kafka Streams' exactly-once commit interval
		// (100 ms), under each guarantee, with the record cache off (every
		// update written to the output and the changelog) and on (the
		// default 10 MiB): exactly-once's cost is the ratio of each pair.
		{"count-alos", func() (result, error) {
			return sluice(ctx, brokers, input, run, "count-alos", *n, *n, *workers, int32(*partitions),
				labelled(countByKey, "Sluice count, at-least-once, 100ms, no cache"), guaranteeOpts(runtime.AtLeastOnce, 0)...)
		}},
		{"count-eos", func() (result, error) {
			return sluice(ctx, brokers, input, run, "count-eos", *n, *n, *workers, int32(*partitions),
				labelled(countByKey, "Sluice count, exactly-once, 100ms, no cache"), guaranteeOpts(runtime.ExactlyOnce, 0)...)
		}},
		{"count-alos-cache", func() (result, error) {
			return sluice(ctx, brokers, input, run, "count-alos-cache", *n, *n, *workers, int32(*partitions),
				labelled(countByKey, "Sluice count, at-least-once, 100ms, cache"), guaranteeOpts(runtime.AtLeastOnce, -1)...)
		}},
		{"count-eos-cache", func() (result, error) {
			return sluice(ctx, brokers, input, run, "count-eos-cache", *n, *n, *workers, int32(*partitions),
				labelled(countByKey, "Sluice count, exactly-once, 100ms, cache"), guaranteeOpts(runtime.ExactlyOnce, -1)...)
		}},
		{"windowcount", func() (result, error) {
			return sluice(ctx, brokers, input, run, "windowcount", *n, *n, *workers, int32(*partitions), windowCount)
		}},
		{"windowcount-nocache", func() (result, error) {
			return sluice(ctx, brokers, input, run, "windowcount-nocache", *n, *n, *workers, int32(*partitions),
				labelled(windowCount, "Sluice 1m tumbling window count, cache off"), runtime.CacheMaxBytes(0))
		}},
		{"rawcount", func() (result, error) {
			return rawCount(ctx, brokers, input, run+"-rawcount", *n, int32(*partitions), time.Second)
		}},
		{"suppresscount", func() (result, error) {
			return sluice(ctx, brokers, input, run, "suppresscount", *n, *n, *workers, int32(*partitions), suppressedWindowCount)
		}},
		{"rawwordcount", func() (result, error) {
			return rawWordCount(ctx, brokers, input, run+"-rawwc", *n, words, int32(*partitions))
		}},
		{"wordcount", func() (result, error) {
			// Done when every word went through the repartition topic and
			// was counted, not when the lines were read.
			return sluice(ctx, brokers, input, run, "wordcount", *n, *n+words, *workers, int32(*partitions), wordCount)
		}},
		{"stjoin", func() (result, error) {
			in, err := joinInput()
			if err != nil {
				return result{}, err
			}
			// Done when the table and every stream record were processed;
			// records/s counts the stream records. Every stream record has
			// a row.
			r, err := sluice(ctx, brokers, "", run, "stjoin", *joinRecords, *joinRecords+*tableKeys, *workers, int32(*partitions), in.streamTable)
			r.want = int64(*joinRecords)
			return r, err
		}},
		{"fkjoin", func() (result, error) {
			in, err := joinInput()
			if err != nil {
				return result{}, err
			}
			// Each order is processed three times (the order, its
			// subscription, the response), each customer once; records/s
			// counts the orders. Every order has a customer.
			r, err := sluice(ctx, brokers, "", run, "fkjoin", *joinRecords, 3**joinRecords+*tableKeys, *workers, int32(*partitions), in.foreignKey)
			r.want = int64(*joinRecords)
			return r, err
		}},
		{"ssjoin", func() (result, error) {
			in, err := joinInput()
			if err != nil {
				return result{}, err
			}
			// records/s counts the records of both streams.
			r, err := sluice(ctx, brokers, "", run, "ssjoin", 2**joinRecords, 2**joinRecords, *workers, int32(*partitions), in.streamStream)
			r.want = in.pairs
			return r, err
		}},
	}
	selected := func(name string) bool { return *only == "" || strings.Contains(","+*only+",", ","+name+",") }
	if selected("stjoin") || selected("ssjoin") || selected("fkjoin") {
		// Before the profile starts, as the shared input.
		if _, err := joinInput(); err != nil {
			return err
		}
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			trace.Stop()
			if err := f.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: write the trace %s: %v\n", *traceFile, err)
			}
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		// Counts from here on only: the input's allocations are left out
		// by comparing with the profile at the start (pprof -diff_base),
		// or simply by reading alloc_space/alloc_objects of the workloads'
		// functions.
		defer func() {
			f, err := os.Create(*memprofile)
			if err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	var results []result
	// Each workload runs *runs times, the rounds interleaved so that drift
	// of the machine spreads over all of them; the median run counts. Odd
	// rounds run the workloads in the reverse order: a run right after
	// another pays for it (the broker's logs and the process's heap have
	// grown, the disk writes the previous run's files back), and in a
	// fixed order the same workload would always pay.
	base := run
	byKind := map[string][]result{}
	for round := range *runs {
		run = fmt.Sprintf("%s-%d", base, round)
		order := slices.Clone(workloads)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, w := range order {
			if !selected(w.name) {
				continue
			}
			var before goruntime.MemStats
			if *memprofile != "" {
				goruntime.ReadMemStats(&before)
			}
			r, err := w.run()
			if *memprofile != "" {
				var after goruntime.MemStats
				goruntime.ReadMemStats(&after)
				fmt.Printf("  %-46s %9.1f allocs/record  %7.0f B/record\n", w.name,
					float64(after.Mallocs-before.Mallocs)/float64(r.records), float64(after.TotalAlloc-before.TotalAlloc)/float64(r.records))
			}
			if err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			r.kind = w.name
			byKind[w.name] = append(byKind[w.name], r)
			fmt.Printf("  %-46s %9.0f records/s  %6.2f CPU-s/M", r.name, r.rate(), r.cpuPerMillion())
			if r.written > 0 {
				fmt.Printf("  (%d records written", r.written)
				if r.want > 0 {
					fmt.Printf(" of %d", r.want)
				}
				fmt.Print(")")
			}
			fmt.Println()
		}
	}
	// The exactly-once over at-least-once ratios of each round, before the
	// runs are sorted: the two runs of a round are next to each other in
	// time, so their ratio leaves out the machine's drift between rounds.
	paired := func(alos, eos string) []float64 {
		a, e := byKind[alos], byKind[eos]
		if len(a) != len(e) {
			return nil
		}
		rs := make([]float64, len(a))
		for i := range a {
			rs[i] = e[i].rate() / a[i].rate()
		}
		slices.Sort(rs)
		return rs
	}
	pairedOff, pairedOn := paired("count-alos", "count-eos"), paired("count-alos-cache", "count-eos-cache")
	for _, w := range workloads {
		rs := byKind[w.name]
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.rate(), b.rate()) })
		results = append(results, rs[len(rs)/2])
	}
	fmt.Printf("\nOn %s, %d records, %d partitions, %d workers, median of %d runs:\n", where, *n, *partitions, *workers, *runs)
	fmt.Printf("%-46s %12s %10s %12s %12s\n", "workload", "records/s", "CPU-s/M", "vs raw loop", "vs raw wc")
	var raw, rawWC float64
	for _, r := range results {
		switch r.kind {
		case "raw":
			raw = r.rate()
		case "rawwordcount":
			rawWC = r.rate()
		}
	}
	for _, r := range results {
		ratio, wc := "-", "-"
		if raw > 0 {
			ratio = fmt.Sprintf("%.2f", r.rate()/raw)
		}
		if rawWC > 0 && (r.kind == "wordcount" || r.kind == "rawwordcount") {
			wc = fmt.Sprintf("%.2f", r.rate()/rawWC)
		}
		fmt.Printf("%-46s %12.0f %10.2f %12s %12s\n", r.name, r.rate(), r.cpuPerMillion(), ratio, wc)
	}
	eosRatio := func(alos, eos, label string, paired []float64) {
		var a, e *result
		for i := range results {
			switch results[i].kind {
			case alos:
				a = &results[i]
			case eos:
				e = &results[i]
			}
		}
		if a != nil && e != nil {
			fmt.Printf("exactly-once / at-least-once, count per key, %s: records/s %.2f, CPU-s/M %.2f\n", label,
				e.rate()/a.rate(), e.cpuPerMillion()/a.cpuPerMillion())
		}
		if n := len(paired); n > 1 {
			fmt.Printf("  records/s, each round's pair (sorted):")
			for _, r := range paired {
				fmt.Printf(" %.2f", r)
			}
			fmt.Printf("; median %.2f\n", medianOfSorted(paired))
		}
	}
	if selected("count-alos") || selected("count-eos") || selected("count-alos-cache") || selected("count-eos-cache") {
		fmt.Println()
		eosRatio("count-alos", "count-eos", "cache off", pairedOff)
		eosRatio("count-alos-cache", "count-eos-cache", "cache on", pairedOn)
		fmt.Println("(count per key, commit 100 ms, median runs; issue 12's target for records/s: >= 0.95; Kafka Streams: 0.92;")
		fmt.Println("under exactly-once the records written, from the output's end offsets, include one marker per transaction)")
	}
	fmt.Println("\nRecords/s count input records. Word count moves ~30 records through Kafka per input line (the line,")
	fmt.Println("~14 words out to and in from the repartition (words) topic, the changed counts); \"vs raw wc\" compares")
	fmt.Println("it with the hand-written franz-go program doing the same work. The stream-table join counts its stream")
	fmt.Println("records (the time includes loading the table), the stream-stream join the records of both streams,")
	fmt.Println("the foreign-key join its orders (each also goes through the subscription and the response topic).")
	return nil
}

var vocabulary = func() []string {
	rng := rand.New(rand.NewPCG(7, 7))
	ws := make([]string, 10_000)
	for i := range ws {
		b := make([]byte, 4+rng.IntN(6))
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		ws[i] = string(b)
	}
	return ws
}()

// produceInput writes n records: a key from the vocabulary and a value of
// words making about 90 bytes. It returns the number of words written.
func produceInput(ctx context.Context, brokers []string, topic string, n int) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return 0, err
	}
	words := 0
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var perr error
	for i := range n {
		key := vocabulary[rng.IntN(len(vocabulary))]
		var sb strings.Builder
		for sb.Len() < 85 {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(vocabulary[rng.IntN(len(vocabulary))])
			words++
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(sb.String())}, func(_ *kgo.Record, err error) {
			if err != nil && perr == nil {
				perr = err
			}
		})
		_ = i
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	return words, perr
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawLoop is the ceiling: a franz-go group consumer that produces every
// record it reads to an output topic, flushing and committing every 100,000
// records and at the end.
func rawLoop(ctx context.Context, brokers []string, input, group string, n int, partitions int32) (result, error) {
	output := group + "-out"
	if err := connectors.CreateTopics(ctx, brokers, partitions, output); err != nil {
		return result{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.DefaultProduceTopic(output))
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	start, cpu := time.Now(), cpuTime()
	seen, sinceCommit := 0, 0
	for seen < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return result{}, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, nil)
			seen++
			sinceCommit++
		})
		if sinceCommit >= 100_000 || seen >= n {
			if err := cl.Flush(ctx); err != nil {
				return result{}, err
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return result{}, err
			}
			sinceCommit = 0
		}
	}
	// Leave the group inside the clock, as the Sluice workloads' Close
	// does (with their final flush and commit).
	if err := cl.LeaveGroupContext(ctx); err != nil {
		return result{}, err
	}
	r := result{name: "raw franz-go consume→produce", records: n, elapsed: time.Since(start), cpu: cpuTime() - cpu}
	return r, dropTopics(ctx, brokers, output)
}

// rawWordCount is the hand-written franz-go equivalent of the word count
// topology, the ceiling for it: one group consumer reads the lines and a
// topic of words, splits each line and produces its words keyed by word to
// the words topic (so that with several instances each word is counted in
// one place, as the topology's repartition topic does), counts the words it
// reads from there in a map, and at each commit (every 100,000 records)
// produces the changed counts, flushes and commits. Done when every word
// was counted.
func rawWordCount(ctx context.Context, brokers []string, input, group string, n, words int, partitions int32) (result, error) {
	output, repart := group+"-out", group+"-words"
	if err := connectors.CreateTopics(ctx, brokers, partitions, output, repart); err != nil {
		return result{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input, repart),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	start, cpu := time.Now(), cpuTime()
	counts := map[string]int64{}
	dirty := map[string]struct{}{}
	counted, since := 0, 0
	for counted < words {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return result{}, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			since++
			if r.Topic == input {
				for w := range bytes.FieldsSeq(r.Value) {
					cl.Produce(ctx, &kgo.Record{Topic: repart, Key: w, Value: []byte{}}, nil)
				}
				return
			}
			counts[string(r.Key)]++
			dirty[string(r.Key)] = struct{}{}
			counted++
		})
		if since >= 100_000 || counted >= words {
			for w := range dirty {
				cl.Produce(ctx, &kgo.Record{Topic: output, Key: []byte(w), Value: binary.BigEndian.AppendUint64(nil, uint64(counts[w]))}, nil)
			}
			clear(dirty)
			if err := cl.Flush(ctx); err != nil {
				return result{}, err
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return result{}, err
			}
			since = 0
		}
	}
	// Leave the group inside the clock, as the Sluice workloads' Close
	// does (with their final flush and commit).
	if err := cl.LeaveGroupContext(ctx); err != nil {
		return result{}, err
	}
	r := result{name: "raw franz-go word count (words topic)", records: n, elapsed: time.Since(start), cpu: cpuTime() - cpu}
	return r, dropTopics(ctx, brokers, group+"-")
}

func stateless(in, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, in, serde.Bytes, serde.Bytes).
		Filter(func(_, v []byte) bool { return len(v) > 0 })
	dsl.MapValues(s, func(v []byte) []byte { return v[:len(v)-1] }).To(out, serde.Bytes, serde.Bytes)
	topo, _ := b.Build()
	return topo, "Sluice filter→mapValues→to"
}

// labelled renames a workload.
func labelled(build func(in, out string) (*topology.Topology, string), label string) func(in, out string) (*topology.Topology, string) {
	return func(in, out string) (*topology.Topology, string) {
		topo, _ := build(in, out)
		return topo, label
	}
}

// guaranteeOpts are the options of the exactly-once comparison: the
// guarantee, a 100 ms commit interval and the record cache's size (-1:
// the default).
func guaranteeOpts(g runtime.Guarantee, cacheBytes int64) []runtime.Option {
	opts := []runtime.Option{runtime.ProcessingGuarantee(g), runtime.CommitInterval(100 * time.Millisecond)}
	if cacheBytes >= 0 {
		opts = append(opts, runtime.CacheMaxBytes(cacheBytes))
	}
	return opts
}

func countByKey(in, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, in, serde.String, serde.Bytes).GroupByKey().Count(dsl.Named("counts")).
		ToStream().To(out, serde.String, serde.Int64)
	topo, _ := b.Build()
	return topo, "Sluice count per key (10k keys)"
}

// windowCount counts per key in one-minute tumbling windows of the
// records' Kafka timestamps (the time they were produced, so the input
// falls in one or two windows), forwarding every update through the record
// cache, the default: each commit writes the changed windows.
func windowCount(in, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, in, serde.String, serde.Bytes).GroupByKey()
	dsl.WindowedBy(g, window.Tumbling(time.Minute, 10*time.Second)).Count(dsl.Named("counts")).
		ToStream().To(out, window.TimeKeySerde(serde.String, time.Minute), serde.Int64)
	topo, _ := b.Build()
	return topo, "Sluice 1m tumbling window count (10k keys)"
}

// suppressedWindowCount is windowCount with each window written once, when
// it closes (Suppress until the window closes): every update of the count
// goes through the suppression buffer and its changelog.
func suppressedWindowCount(in, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, in, serde.String, serde.Bytes).GroupByKey()
	dsl.WindowedBy(g, window.Tumbling(time.Minute, 10*time.Second)).Count(dsl.Named("counts")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final")).
		ToStream().To(out, window.TimeKeySerde(serde.String, time.Minute), serde.Int64)
	topo, _ := b.Build()
	return topo, "Sluice 1m window count, suppressed to final"
}

func wordCount(in, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	lines := dsl.FromTopic(b, in, serde.Bytes, serde.String)
	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
		for w := range strings.FieldsSeq(line) {
			emit(w)
		}
	})
	dsl.GroupByValue(words, func(w string) string { return w }, serde.String).
		Count(dsl.Named("counts")).ToStream().To(out, serde.String, serde.Int64)
	topo, _ := b.Build()
	return topo, "Sluice word count (repartition, ~14 words/rec)"
}

// joinInputs are the topics of the join workloads.
type joinInputs struct {
	table, stream, left, right, orders string
	tableKeys, joinKeys                int
	// pairs is the number of results of the stream-stream join that a
	// direct computation from the input gives: left and right records of
	// one key at most a minute apart.
	pairs int64
}

// produceJoinInputs writes the join workloads' inputs: the table (keys
// k000000..., values of ~50 bytes) with timestamps an hour before the
// stream's, the stream (n records of ~100 bytes, keys drawn from the
// table's), and the two streams of the stream-stream join (n records each,
// keys drawn from joinKeys, timestamps 12 ms apart ending about now, the
// right stream's 6 ms after the left's, so that with joinKeys = 10,000 a
// key recurs every ~2 minutes of event time in each stream: a record meets
// about one of the other stream within a minute either side).
func produceJoinInputs(ctx context.Context, brokers []string, run string, partitions int32, n, tableKeys, joinKeys int) (joinInputs, error) {
	in := joinInputs{table: run + "-jtable", stream: run + "-jstream", left: run + "-jleft", right: run + "-jright", orders: run + "-jorders",
		tableKeys: tableKeys, joinKeys: joinKeys}
	if err := connectors.CreateTopics(ctx, brokers, partitions, in.table, in.stream, in.left, in.right, in.orders); err != nil {
		return in, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return in, err
	}
	defer cl.Close()
	var perr error
	produce := func(topic, key string, value []byte, ts int64) {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Timestamp: time.UnixMilli(ts)},
			func(_ *kgo.Record, err error) {
				if err != nil && perr == nil {
					perr = err
				}
			})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	value := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return b
	}
	now := time.Now().UnixMilli()
	for i := range tableKeys {
		produce(in.table, fmt.Sprintf("k%06d", i), value(50), now-time.Hour.Milliseconds())
	}
	// The table first, all of it, so that no stream record overtakes it.
	if err := cl.Flush(ctx); err != nil {
		return in, err
	}
	for range n {
		produce(in.stream, fmt.Sprintf("k%06d", rng.IntN(tableKeys)), value(90), now)
	}
	for i := range n {
		produce(in.orders, fmt.Sprintf("o%07d", i), append([]byte(fmt.Sprintf("k%06d|", rng.IntN(tableKeys))), value(82)...), now)
	}
	in.pairs = produceStreams(produce, value, in.left, in.right, n, joinKeys, now, rng)
	if err := cl.Flush(ctx); err != nil {
		return in, err
	}
	return in, perr
}

// streamTable joins each stream record with its key's row of the table,
// writing the stream value followed by the row's.
func (in joinInputs) streamTable(_, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	table := dsl.TableFromTopic(b, in.table, serde.String, serde.Bytes, dsl.Named("table"))
	stream := dsl.FromTopic(b, in.stream, serde.String, serde.Bytes)
	dsl.JoinTable(stream, table, concat).To(out, serde.String, serde.Bytes)
	topo, _ := b.Build()
	return topo, fmt.Sprintf("Sluice stream-table join (%dk-key table)", in.tableKeys/1000)
}

// streamStream joins the two streams with a one-minute time difference
// (no grace), writing the left value followed by the right one.
func (in joinInputs) streamStream(_, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	left := dsl.FromTopic(b, in.left, serde.String, serde.Bytes)
	right := dsl.FromTopic(b, in.right, serde.String, serde.Bytes)
	dsl.Join(left, right, concat, window.JoinTimeDifference(time.Minute)).To(out, serde.String, serde.Bytes)
	topo, _ := b.Build()
	return topo, fmt.Sprintf("Sluice stream-stream join (%dk keys, 1m window)", in.joinKeys/1000)
}

// foreignKey joins each order with its customer, the table's row named
// before the "|" of its value, writing the order's value followed by the
// customer's.
func (in joinInputs) foreignKey(_, out string) (*topology.Topology, string) {
	b := dsl.NewBuilder()
	customers := dsl.TableFromTopic(b, in.table, serde.String, serde.Bytes, dsl.Named("customers"))
	orders := dsl.TableFromTopic(b, in.orders, serde.String, serde.Bytes, dsl.Named("orders"))
	customer := func(_ string, v []byte) dsl.Maybe[string] {
		if i := bytes.IndexByte(v, '|'); i >= 0 {
			return dsl.Some(string(v[:i]))
		}
		return dsl.None[string]()
	}
	dsl.TableJoinForeignKey(orders, customers, customer, concat, serde.Bytes, dsl.Named("fk")).
		ToStream().To(out, serde.String, serde.Bytes)
	topo, _ := b.Build()
	return topo, fmt.Sprintf("Sluice foreign-key join (%dk customers)", in.tableKeys/1000)
}

func concat(_ string, v, o []byte) []byte {
	return append(append(make([]byte, 0, len(v)+len(o)), v...), o...)
}

// sluice runs a topology until it has processed every input record, then
// closes the app (final flush and commit) and stops the clock.
// records is the number of input records, n the number of records the
// tasks process in all (more than records with a repartition topic).
func sluice(ctx context.Context, brokers []string, input, run, name string, records, n, workers int, partitions int32,
	build func(in, out string) (*topology.Topology, string), extra ...runtime.Option) (result, error) {
	output := run + "-" + name + "-out"
	stateDir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(stateDir)
	if err := connectors.CreateTopics(ctx, brokers, partitions, output); err != nil {
		return result{}, err
	}
	topo, label := build(input, output)
	reg := prometheus.NewRegistry()
	opts := []runtime.Option{runtime.ApplicationID(run + "-" + name), runtime.Brokers(brokers...),
		runtime.Workers(workers), runtime.CommitInterval(time.Second), runtime.Registerer(reg), runtime.StateDir(stateDir)}
	app, err := runtime.New(topo, append(opts, extra...)...)
	if err != nil {
		return result{}, err
	}
	start, cpu := time.Now(), cpuTime()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for processed(reg) < float64(n) {
		select {
		case err := <-done:
			return result{}, fmt.Errorf("app stopped early: %v", err)
		case <-tick.C:
		}
	}
	if err := app.Close(); err != nil {
		return result{}, err
	}
	if err := <-done; err != nil {
		return result{}, err
	}
	r := result{name: label, records: records, elapsed: time.Since(start), cpu: cpuTime() - cpu}
	if *commitStats {
		printCommits(reg, r.elapsed)
	}
	written, err := endOffsets(ctx, brokers, output)
	if err != nil {
		return result{}, err
	}
	r.written = written
	r.dropped = droppedByReason(reg)
	return r, dropTopics(ctx, brokers, run+"-"+name+"-")
}

// dropTopics deletes the topics whose names start with prefix: a run's own
// (its output, changelog and repartition topics), once it is measured. Left
// behind, each run's records would weigh on the runs after it: gigabytes
// the kernel writes back to disk under them (real Kafka) or the embedded
// broker keeps in memory (kfake). The runs are sequential, so a prefix that
// is also another workload's (count-alos-, count-alos-cache-...) only
// matches topics of a run that is over.
func dropTopics(ctx context.Context, brokers []string, prefix string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	var drop []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, prefix) {
			drop = append(drop, t)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	resp, err := adm.DeleteTopics(ctx, drop...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		// The run is measured: a topic left behind weighs on the next
		// runs, not on this one's figures.
		fmt.Fprintf(os.Stderr, "warning: delete the run's topics %v: %v\n", drop, err)
	}
	return nil
}

// endOffsets is the sum of the end offsets of topic's partitions: the
// records written to it.
func endOffsets(ctx context.Context, brokers []string, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, ends.Error()
}

// processed sums the records processed by the tasks.
// medianOfSorted is the median of xs, sorted and not empty: the mean of
// the middle two of an even count. The rounds' ratios take it; a
// workload's figures are its median run instead, a run that happened.
func medianOfSorted(xs []float64) float64 {
	n := len(xs)
	return (xs[(n-1)/2] + xs[n/2]) / 2
}

func processed(reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "sluice_processed_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
