package dsl_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// Purchases attributed to the same user's clicks of the 10 minutes before
// (an inner join whose windows reach 10 minutes back from a purchase and
// nothing forward): one result per pair, stamped with the later of the two
// timestamps.
func ExampleJoin() {
	b := dsl.NewBuilder()
	purchases := dsl.FromTopic(b, "purchases", serde.String, serde.String)
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	w := window.Join{Before: 10 * time.Minute, Grace: time.Minute}
	dsl.Join(purchases, clicks, func(user, item, page string) string { return item + " after " + page }, w).
		To("attributed", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	pin := testdriver.CreateInputTopic(d, "purchases", serde.String, serde.String)
	cin := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "attributed", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	const minute = 60_000
	must(cin.PipeAt("u1", "/shoes", 1*minute))
	must(cin.PipeAt("u1", "/hats", 5*minute))
	must(pin.PipeAt("u1", "boots", 8*minute))  // meets both clicks
	must(cin.PipeAt("u1", "/socks", 9*minute)) // after the purchase: no match
	must(pin.PipeAt("u1", "cap", 14*minute))   // meets /hats and /socks
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(r.Key, r.Value, r.Timestamp/minute)
	}
	// Output:
	// u1 boots after /shoes 8
	// u1 boots after /hats 8
	// u1 cap after /hats 14
	// u1 cap after /socks 14
}

// A left join of orders with their shipments within an hour: an order
// shipped in time is joined with its shipment; one not shipped within the
// hour comes out with None once the hour has passed in stream time (here
// when a later order arrives), never before.
func ExampleLeftJoin() {
	b := dsl.NewBuilder()
	orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
	shipments := dsl.FromTopic(b, "shipments", serde.String, serde.String)
	w := window.Join{After: time.Hour}
	dsl.LeftJoin(orders, shipments, func(id, order string, shipment dsl.Maybe[string]) string {
		return order + ": " + shipment.Or("not shipped")
	}, w).To("order-status", serde.String, serde.String)
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
	sin := testdriver.CreateInputTopic(d, "shipments", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "order-status", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	const minute = 60_000
	must(oin.PipeAt("o1", "book", 0))
	must(oin.PipeAt("o2", "lamp", 10*minute))
	must(sin.PipeAt("o1", "parcel 1", 30*minute))
	must(oin.PipeAt("o3", "desk", 80*minute)) // o2's hour has passed
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(r.Key, r.Value, r.Timestamp/minute)
	}
	// Output:
	// o1 book: parcel 1 30
	// o2 lamp: not shipped 10
}
