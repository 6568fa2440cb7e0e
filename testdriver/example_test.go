package testdriver_test

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// With a record cache and commits on request, the updates of a key between
// two commits come out as one record, with the latest count, in the output
// and in the store's changelog, as the runtime writes them at the end of a
// commit interval.
func ExampleWithRecordCache() {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "clicks", serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts")).ToStream().To("click-counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := testdriver.New(topo, testdriver.WithRecordCache(10<<20), testdriver.WithChangelogs(),
		testdriver.CommitOnRequest())
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "click-counts", serde.String, serde.Int64)
	changelog := testdriver.CreateOutputTopic(d, d.ChangelogTopic("counts"), serde.String, serde.Int64)
	for _, user := range []string{"ann", "ann", "ann", "bob"} {
		if err := in.Pipe(user, "click"); err != nil {
			panic(err)
		}
	}
	fmt.Println("before the commit:", out.QueueSize(), "records")
	if err := d.Commit(); err != nil {
		panic(err)
	}
	for _, o := range []*testdriver.OutputTopic[string, int64]{out, changelog} {
		rs, err := o.ReadRecords()
		if err != nil {
			panic(err)
		}
		var line []string
		for _, r := range rs {
			line = append(line, fmt.Sprintf("%s=%d", r.Key, r.Value))
		}
		fmt.Println(strings.Join(line, " "))
	}
	// Output:
	// before the commit: 0 records
	// ann=3 bob=1
	// ann=3 bob=1
}

// Records that fail go to the dead-letter queue and the pipeline goes on:
// here an undecodable value (the deserialization handler) and a value the
// user's function panics on (the processing handler). Each dead-letter
// record is the input record as read, with Kafka Streams' error headers.
func ExampleWithDeadLetterQueue() {
	b := dsl.NewBuilder()
	orders := dsl.FromTopic(b, "orders", serde.String, serde.Int64, dsl.Named("orders"))
	dsl.MapValues(orders, func(qty int64) int64 {
		if qty == 0 {
			panic("zero quantity")
		}
		return 100 / qty
	}, dsl.Named("unit-price")).To("prices", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := testdriver.New(topo,
		testdriver.OnDeserializationError(operators.SendToDeadLetterQueue),
		testdriver.OnProcessingError(operators.SendToDeadLetterQueue),
		testdriver.WithDeadLetterQueue("orders-dlq"))
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "orders", serde.String, serde.Bytes)
	enc := func(v int64) []byte { b, _ := serde.Int64.Encode(nil, v); return b }
	for _, r := range []struct {
		key   string
		value []byte
	}{{"o1", enc(4)}, {"o2", []byte("four")}, {"o3", enc(0)}, {"o4", enc(5)}} {
		if err := in.PipeAt(r.key, r.value, 1000); err != nil {
			panic(err)
		}
	}
	prices, err := testdriver.ReadKeyValuesToMap(testdriver.CreateOutputTopic(d, "prices", serde.String, serde.Int64))
	if err != nil {
		panic(err)
	}
	fmt.Println("prices:", prices)
	dlq, err := testdriver.CreateOutputTopic(d, "orders-dlq", serde.String, serde.Bytes).ReadRecords()
	if err != nil {
		panic(err)
	}
	for _, r := range dlq {
		fmt.Printf("dead letter %s (offset %s): %s: %s\n", r.Key, hdr(r.Headers, operators.HeaderErrorOffset),
			hdr(r.Headers, operators.HeaderErrorException), hdr(r.Headers, operators.HeaderErrorMessage))
	}
	fmt.Println("dead-lettered by node unit-price:", d.DroppedRecords("unit-price", "dead-letter"))
	// Output:
	// prices: map[o1:25 o4:20]
	// dead letter o2 (offset 1): *operators.DeserializationError: sluice: source orders: cannot deserialize the value of the record at topic orders, partition 0, offset 1: sluice: serde int64: cannot decode 4 bytes: want 8
	// dead letter o3 (offset 2): *operators.PanicError: sluice: node unit-price panicked: zero quantity
	// dead-lettered by node unit-price: 1
}

func hdr(hs []operators.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
