package dsl_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/testdriver"
)

// Word count: lines in, a running count per word out, tested with the
// in-memory driver.
func Example() {
	b := dsl.NewBuilder()
	lines := dsl.FromTopic(b, "text-input", serde.String, serde.String)
	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
		for _, w := range strings.Fields(line) {
			emit(strings.ToLower(w))
		}
	})
	counts := dsl.GroupByValue(words, func(w string) string { return w }, serde.String).
		Count(dsl.Named("counts"))
	counts.ToStream().To("word-counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "text-input", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "word-counts", serde.String, serde.Int64)
	for _, line := range []string{"the quick brown fox", "The lazy dog", "the end"} {
		if err := in.Pipe("", line); err != nil {
			panic(err)
		}
	}
	m, err := testdriver.ReadKeyValuesToMap(out)
	if err != nil {
		panic(err)
	}
	for _, w := range slices.Sorted(maps.Keys(m)) {
		fmt.Println(w, m[w])
	}
	// Output:
	// brown 1
	// dog 1
	// end 1
	// fox 1
	// lazy 1
	// quick 1
	// the 3
}

// Describe prints the compiled topology in Kafka Streams' layout.
func ExampleBuilder_Build() {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.Int64).
		Filter(func(_ string, v int64) bool { return v > 0 }).
		To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	fmt.Print(topo.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [in])
	//       --> KSTREAM-FILTER-0000000001
	//     Processor: KSTREAM-FILTER-0000000001 (stores: [])
	//       --> KSTREAM-SINK-0000000002
	//       <-- KSTREAM-SOURCE-0000000000
	//     Sink: KSTREAM-SINK-0000000002 (topic: out)
	//       <-- KSTREAM-FILTER-0000000001
}

// Build reports every error it finds, each naming the node at fault.
func ExampleBuilder_Build_errors() {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.String)
	lengths := dsl.MapValues(s, func(v string) int { return len(v) })
	lengths.To("out", nil, nil) // no serde for int values
	_, err := b.Build()
	fmt.Println(err)
	// Output:
	// sluice: node KSTREAM-SINK-0000000002: missing value serde: the value type was changed upstream; pass a serde or set it with WithValueSerde
}

// Split routes each record to the first branch whose predicate holds.
func ExampleStream_Split() {
	b := dsl.NewBuilder()
	amounts := dsl.FromTopic(b, "payments", serde.String, serde.Int64)
	branches := amounts.Split(dsl.Named("payments-")).
		Branch("large", func(_ string, v int64) bool { return v >= 1000 }).
		DefaultBranch("small")
	branches["payments-large"].To("large-payments", nil, nil)
	branches["payments-small"].To("small-payments", nil, nil)
	topo, _ := b.Build()

	d, _ := testdriver.New(topo)
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "payments", serde.String, serde.Int64)
	_ = in.Pipe("alice", 5000)
	_ = in.Pipe("bob", 20)
	large, _ := testdriver.CreateOutputTopic(d, "large-payments", serde.String, serde.Int64).ReadRecords()
	small, _ := testdriver.CreateOutputTopic(d, "small-payments", serde.String, serde.Int64).ReadRecords()
	fmt.Println("large:", large[0].Key, large[0].Value)
	fmt.Println("small:", small[0].Key, small[0].Value)
	// Output:
	// large: alice 5000
	// small: bob 20
}

// A table regrouped by another key and counted: when a row moves to another
// group, the old group is decremented and the new one incremented.
func ExampleTableGroupBy() {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "user-regions", serde.String, serde.String)
	perRegion := dsl.TableGroupBy(users, func(user, region string) (dsl.Maybe[string], string) { return dsl.Some(region), user },
		serde.String, serde.String).Count(dsl.Named("users-per-region"))
	perRegion.ToStream().To("region-counts", serde.String, serde.Int64)
	topo, _ := b.Build()

	d, _ := testdriver.New(topo)
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "user-regions", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "region-counts", serde.String, serde.Int64)
	_ = in.Pipe("alice", "eu")
	_ = in.Pipe("bob", "eu")
	_ = in.Pipe("alice", "us") // alice moves: eu loses one, us gains one
	for _, r := range must(out.ReadRecords()) {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// eu 1
	// eu 2
	// eu 1
	// us 1
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A processor written with the Processor API: it keeps the last value per
// key in a store and emits the change, and reports a summary on a
// wall-clock punctuation.
func ExampleProcess() {
	b := dsl.NewBuilder()
	last := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "last-price"}, serde.String, serde.Int64)
	prices := dsl.FromTopic(b, "prices", serde.String, serde.Int64)
	deltas := dsl.Process(prices, func() operators.Processor[string, int64, string, int64] {
		var store *state.KV[string, int64]
		return &operators.ProcessorFuncs[string, int64, string, int64]{
			InitFunc: func(ctx operators.ProcessorContext[string, int64]) (err error) {
				store, err = last.Open(ctx)
				if err != nil {
					return err
				}
				_, err = ctx.Schedule(time.Minute, operators.WallClockTime, func(ts int64) error {
					n := 0
					for range store.All() {
						n++
					}
					return ctx.Forward(operators.Record[string, int64]{Key: "symbols", Value: int64(n), Timestamp: ts})
				})
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
				prev, _, err := store.Get(r.Key)
				if err != nil {
					return err
				}
				if err := store.Put(r.Key, r.Value); err != nil {
					return err
				}
				r.Value -= prev
				return ctx.Forward(r)
			},
		}
	}, dsl.ConnectStores(last))
	deltas.To("price-deltas", serde.String, serde.Int64)
	topo, _ := b.Build()

	d, _ := testdriver.New(topo)
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "prices", serde.String, serde.Int64)
	out := testdriver.CreateOutputTopic(d, "price-deltas", serde.String, serde.Int64)
	_ = in.Pipe("ACME", 100)
	_ = in.Pipe("ACME", 104)
	_ = in.Pipe("INIT", 7)
	_ = d.AdvanceWallClockTime(time.Minute)
	for _, r := range must(out.ReadRecords()) {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// ACME 100
	// ACME 4
	// INIT 7
	// symbols 2
}
