package dsl_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// Users and their latest order, as one table: a left join of two tables
// kept in the store "user-orders". Both sides emit; a delete of the order
// leaves the user joined with None.
func ExampleTableLeftJoin() {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
	orders := dsl.TableFromTopic(b, "orders", serde.String, serde.String)
	dsl.TableLeftJoin(users, orders, func(_ string, region string, order dsl.Maybe[string]) string {
		return region + "/" + order.Or("no order")
	}, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "user-orders"})).
		ToStream().To("user-orders", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	uin := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	oin := testdriver.CreateInputTopic(d, "orders", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "user-orders", serde.String, serde.String)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(oin.PipeAt("u1", "book", 1)) // no user yet: nothing
	must(uin.PipeAt("u1", "eu", 2))
	must(oin.PipeAt("u1", "pen", 3))
	must(oin.PipeTombstone("u1", 4))
	rs, err := out.ReadRecords()
	must(err)
	for _, r := range rs {
		fmt.Println(r.Key, r.Value, r.Timestamp)
	}
	kv, err := testdriver.KeyValueStore(d, "user-orders", serde.String, serde.String)
	must(err)
	v, _, err := kv.Get("u1")
	must(err)
	fmt.Println("stored:", v)
	// Output:
	// u1 eu/book 2
	// u1 eu/pen 3
	// u1 eu/no order 4
	// stored: eu/no order
}

// Build refuses a table join it cannot run, naming the join's node: a
// windowed aggregation's table (no getter reads a window store), tables of
// different builders, and a materialized result without a value serde.
func TestTableJoinBuildErrors(t *testing.T) {
	join := func(_, v, o string) string { return v + o }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{
		{"windowed table", func(b *dsl.Builder) {
			counts := dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(time.Minute, 0)).Count()
			other := dsl.TableFromTopic(b, "t", window.TimeKeySerde(serde.String, time.Minute), serde.Int64)
			dsl.TableJoin(other, counts.Filter(func(window.Windowed[string], int64) bool { return true }),
				func(_ window.Windowed[string], a, b int64) int64 { return a + b }, serde.Int64)
		}, "comes from a windowed aggregation, whose window store a table join cannot read"},
		{"different builders", func(b *dsl.Builder) {
			dsl.TableJoin(dsl.TableFromTopic(b, "a", serde.String, serde.String),
				dsl.TableFromTopic(dsl.NewBuilder(), "b", serde.String, serde.String), join, serde.String)
		}, "node KTABLE-MERGE-0000000003: TableJoin: the joined tables come from different builders"},
		{"no value serde", func(b *dsl.Builder) {
			dsl.TableOuterJoin(dsl.TableFromTopic(b, "a", serde.String, serde.String), dsl.TableFromTopic(b, "b", serde.String, serde.String),
				func(_ string, v, o dsl.Maybe[string]) string { return v.Or("") + o.Or("") }, nil, dsl.Named("j"), dsl.Materialized(dsl.StoreOptions{}))
		}, "missing value serde for store j"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
