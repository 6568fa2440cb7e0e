package dsl_test

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// Orders joined with their customer by a foreign key: the customer ID is
// part of the order's value. The orders and customers topics need not be
// co-partitioned. An order that moves to another customer, or whose
// customer changes, gets a new result; an order of an unknown customer
// joins None in a left join.
func ExampleTableLeftJoinForeignKey() {
	b := dsl.NewBuilder()
	orders := dsl.TableFromTopic(b, "orders", serde.String, serde.String)       // order ID → "customer ID,amount"
	customers := dsl.TableFromTopic(b, "customers", serde.String, serde.String) // customer ID → name
	customerOf := func(_ string, order string) dsl.Maybe[string] {
		c, _, _ := strings.Cut(order, ",")
		return dsl.Some(c)
	}
	dsl.TableLeftJoinForeignKey(orders, customers, customerOf, func(_, order string, name dsl.Maybe[string]) string {
		_, amount, _ := strings.Cut(order, ",")
		return amount + " by " + name.Or("unknown")
	}, serde.String, dsl.Named("order-customer")).ToStream().To("orders-enriched", serde.String, serde.String)
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
	cin := testdriver.CreateInputTopic(d, "customers", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "orders-enriched", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(cin.PipeAt("c1", "Ada", 1))
	must(oin.PipeAt("o1", "c1,10", 2)) // joins Ada
	must(oin.PipeAt("o2", "c2,20", 3)) // c2 unknown
	must(cin.PipeAt("c2", "Brian", 4)) // o2 now joins Brian
	must(oin.PipeAt("o1", "c2,15", 5)) // o1 moves to Brian
	must(cin.PipeTombstone("c2", 6))   // both orders lose their customer
	must(oin.PipeTombstone("o2", 7))   // o2 deleted
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(fkShow(r))
	}
	// Output:
	// o1 10 by Ada 2
	// o2 20 by unknown 3
	// o2 20 by Brian 4
	// o1 15 by Brian 5
	// o1 15 by unknown 6
	// o2 20 by unknown 6
	// o2 <deleted> 7
}

func fkShow(r operators.Record[string, string]) string {
	if r.Tombstone {
		return fmt.Sprintf("%s <deleted> %d", r.Key, r.Timestamp)
	}
	return fmt.Sprintf("%s %s %d", r.Key, r.Value, r.Timestamp)
}
