package dsl_test

import (
	"fmt"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// Clicks enriched with the user's region: a left join of a stream with a
// table. Table updates do not emit; a click of an unknown user gets None.
func ExampleLeftJoinTable() {
	b := dsl.NewBuilder()
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String, dsl.Named("users"))
	dsl.LeftJoinTable(clicks, users, func(_ dsl.Maybe[string], page string, region dsl.Maybe[string]) string {
		return page + " from " + region.Or("unknown")
	}).To("clicks-enriched", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	cin := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	uin := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "clicks-enriched", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(cin.PipeAt("u1", "/home", 1))
	must(uin.PipeAt("u1", "eu", 2))
	must(cin.PipeAt("u1", "/cart", 3))
	must(uin.PipeTombstone("u1", 4))
	must(cin.PipeAt("u1", "/exit", 5))
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(r.Key, r.Value, r.Timestamp)
	}
	// Output:
	// u1 /home from unknown 1
	// u1 /cart from eu 3
	// u1 /exit from unknown 5
}
