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

// Employees joined with their department's name: an inner foreign-key
// join emits only for employees whose department exists, deletes the
// result when the department goes, and gives a tombstone when an employee
// moves to a department that does not exist (the join cannot tell whether
// a result was out before, so it deletes it to be sure).
func ExampleTableJoinForeignKey() {
	b := dsl.NewBuilder()
	employees := dsl.TableFromTopic(b, "employees", serde.String, serde.String) // name → department ID
	departments := dsl.TableFromTopic(b, "departments", serde.String, serde.String)
	dsl.TableJoinForeignKey(employees, departments, func(_, dept string) dsl.Maybe[string] { return dsl.Some(dept) },
		func(name, _, deptName string) string { return name + " works in " + deptName }, serde.String).
		ToStream().To("staff", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	ein := testdriver.CreateInputTopic(d, "employees", serde.String, serde.String)
	din := testdriver.CreateInputTopic(d, "departments", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "staff", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(ein.PipeAt("ann", "d1", 1)) // no department d1 yet: nothing
	must(din.PipeAt("d1", "R&D", 2))
	must(ein.PipeAt("bob", "d1", 3))
	must(ein.PipeAt("bob", "d9", 4)) // d9 does not exist
	must(din.PipeTombstone("d1", 5))
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(fkShow(r))
	}
	// Output:
	// ann ann works in R&D 2
	// bob bob works in R&D 3
	// bob <deleted> 4
	// ann <deleted> 5
}
