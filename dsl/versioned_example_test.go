package dsl_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// Orders priced as of their own time: the prices table is versioned, so
// the join reads the price valid when the order was placed, and the grace
// period holds each order back until a price update up to a second late
// has arrived.
func ExampleJoinGrace() {
	b := dsl.NewBuilder()
	orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
	prices := dsl.TableFromTopic(b, "prices", serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "prices", HistoryRetention: time.Hour}))
	dsl.JoinTable(orders, prices, func(item, order, price string) string {
		return order + " " + item + " at " + price
	}, dsl.JoinGrace(time.Second)).To("priced", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	oin := testdriver.CreateInputTopic(d, "orders", serde.String, serde.String)
	pin := testdriver.CreateInputTopic(d, "prices", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "priced", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(pin.PipeAt("tea", "3.00", 0))
	must(oin.PipeAt("tea", "order-1", 1000))
	must(pin.PipeAt("tea", "3.50", 5000))
	must(pin.PipeAt("tea", "2.90", 800)) // late: the price from 800 ms on
	must(oin.PipeAt("tea", "order-2", 6000))
	must(oin.PipeAt("tea", "order-3", 9000)) // releases the orders up to 8 s
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(r.Value, r.Timestamp)
	}

	// The price history, as a processor reads it with
	// dsl.OpenVersionedTableStore.
	vs, err := testdriver.VersionedKeyValueStore(d, "prices", serde.String, serde.String)
	must(err)
	price, from, to, _, err := vs.GetAsOf("tea", 1000)
	must(err)
	fmt.Println("at 1000:", price, "valid from", from, "to", to)
	// Output:
	// order-1 tea at 2.90 1000
	// order-2 tea at 3.50 6000
	// at 1000: 2.90 valid from 800 to 5000
}
