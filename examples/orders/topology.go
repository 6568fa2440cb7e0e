package main

import (
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// Customer is a value of the customers table.
type Customer struct {
	Customer string `json:"customer"`
	Name     string `json:"name"`
	Tier     string `json:"tier"`
}

// Order is a value of the orders table: an order of a customer (the
// foreign key), for an amount in cents, placed at TS (milliseconds since the Unix
// epoch: the event time). An order without a ts (absent, null or 0) has no
// event time and is skipped.
type Order struct {
	Order    string `json:"order"`
	Customer string `json:"customer"`
	Cents    int64  `json:"cents"`
	TS       int64  `json:"ts,omitempty"`
}

// EnrichedOrder is a value of orders-enriched: an order with its
// customer's name and tier, both nil (JSON null) when the customer is not
// in the customers table.
type EnrichedOrder struct {
	Order    string  `json:"order"`
	Customer string  `json:"customer"`
	Name     *string `json:"name"`
	Tier     *string `json:"tier"`
	Cents    int64   `json:"cents"`
	TS       int64   `json:"ts"`
}

// Total is a value of customer-totals: the orders of Customer placed in
// [WindowStart, WindowEnd) (epoch ms), how many and their amount in cents.
type Total struct {
	Customer    string `json:"customer"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Orders      int64  `json:"orders"`
	Cents       int64  `json:"cents"`
}

// Topics are the topics the topology reads and writes.
type Topics struct {
	Customers, Orders string // inputs
	Enriched, Totals  string // outputs
}

// defaultTopics are the program's topics.
var defaultTopics = Topics{Customers: "customers", Orders: "orders", Enriched: "orders-enriched", Totals: "customer-totals"}

func (t Topics) outputs() []string { return []string{t.Enriched, t.Totals} }

// The windows of customer-totals: tumbling hours, aligned to the epoch,
// each final once stream time passes its end plus the grace.
const (
	totalsWindow = time.Hour
	totalsGrace  = 10 * time.Minute
)

// Names in the topology, which also name its stores and internal topics.
const (
	customersTable = "customers"
	ordersTable    = "orders"
	orderCustomer  = "order-customer"
	byCustomer     = "by-customer"
	hourlyTotals   = "hourly-totals"
	finalTotals    = "final-totals"
)

// Topology builds the orders pipeline on the given topics:
//
//   - orders-enriched: the orders table joined on its foreign key, the
//     order's customer id, with the customers table (a left foreign-key
//     join: an order of an unknown customer is written with a null name and
//     tier), keyed by order id; a deleted order is a tombstone;
//   - customer-totals: the enriched orders regrouped by customer (through
//     the repartition topic "by-customer-repartition") and summed per
//     customer in one-hour tumbling windows of order time, with 10 minutes
//     of grace, suppressed until the window closes: each window is written
//     once, final, keyed by customer id.
//
// The two tables need not be partitioned alike: the join sends each
// order's subscription to the partition of its customer and the customer's
// answer back to the partition of the order, through internal topics.
//
// The totals add up the enriched orders as the join emits them, as Kafka
// Streams' windowed aggregation of a table's changelog stream does: an
// order written again, or re-joined because its customer changed, counts
// again (at the time of the record that caused it); a tombstone counts for
// nothing. The generator (generate.go) writes each order once, after every
// customer, so that each counts once.
func Topology(t Topics) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	customers := dsl.TableFromTopic(b, t.Customers, serde.String, serde.JSON[Customer](), dsl.Named(customersTable))
	orders := dsl.TableFromTopic(b, t.Orders, serde.String, serde.JSON[Order](), dsl.Named(ordersTable),
		dsl.Timestamps(orderTime), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))

	enriched := dsl.TableLeftJoinForeignKey(orders, customers,
		func(_ string, o Order) dsl.Maybe[string] { return dsl.Some(o.Customer) },
		func(_ string, o Order, c dsl.Maybe[Customer]) EnrichedOrder {
			e := EnrichedOrder{Order: o.Order, Customer: o.Customer, Cents: o.Cents, TS: o.TS}
			if c, ok := c.Get(); ok {
				e.Name, e.Tier = &c.Name, &c.Tier
			}
			return e
		}, serde.JSON[EnrichedOrder](), dsl.Named(orderCustomer))
	placed := enriched.ToStream(dsl.Named("enriched-orders"))
	placed.To(t.Enriched, serde.String, serde.JSON[EnrichedOrder](), dsl.Named("to-orders-enriched"))

	perCustomer := dsl.GroupByValue(placed, func(e EnrichedOrder) string { return e.Customer }, serde.String, dsl.Named(byCustomer))
	totals := dsl.WindowedAggregate(dsl.WindowedBy(perCustomer, window.Tumbling(totalsWindow, totalsGrace)),
		func() Total { return Total{} },
		func(customer string, e EnrichedOrder, t Total) Total {
			t.Customer, t.Orders, t.Cents = customer, t.Orders+1, t.Cents+e.Cents
			return t
		}, serde.JSON[Total](), dsl.Named(hourlyTotals))
	final := totals.Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName(finalTotals))
	dsl.Map(final.ToStream(dsl.Named("closed-windows")), func(k window.Windowed[string], t Total) (string, Total) {
		t.WindowStart, t.WindowEnd = k.Window.Start, k.Window.End
		return k.Key, t
	}, dsl.Named("totals-to-json")).To(t.Totals, serde.String, serde.JSON[Total](), dsl.Named("to-customer-totals"))
	return b.Build(dsl.RequireNamedStores())
}

// orderTime is the orders' timestamp extractor: the order's ts, or -1
// (invalid, so the source skips and counts the record) when it has none.
// A tombstone (a deleted order) keeps its record's timestamp.
func orderTime(_ dsl.Maybe[string], order dsl.Maybe[Order], _ []operators.Header, recordTS int64) int64 {
	o, ok := order.Get()
	if !ok {
		return recordTS
	}
	if o.TS <= 0 {
		return -1
	}
	return o.TS
}
