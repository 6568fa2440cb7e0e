package dsl_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

func TestForeignKeyJoinBuildErrors(t *testing.T) {
	fk := func(_, v string) dsl.Maybe[string] { return dsl.Some(v) }
	join := func(_, v, o string) string { return v + o }
	upper := func(v string) string { return strings.ToUpper(v) }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{
		{"different builders", func(b *dsl.Builder) {
			dsl.TableJoinForeignKey(dsl.TableFromTopic(b, "a", serde.String, serde.String),
				dsl.TableFromTopic(dsl.NewBuilder(), "b", serde.String, serde.String), fk, join, serde.String)
		}, "node KTABLE-FK-JOIN-OUTPUT-0000000015: TableJoinForeignKey: the joined tables come from different builders"},
		{"no left value serde", func(b *dsl.Builder) {
			l := dsl.TableMapValues(dsl.TableFromTopic(b, "a", serde.String, serde.String), upper, nil)
			dsl.TableJoinForeignKey(l, dsl.TableFromTopic(b, "b", serde.String, serde.String), fk, join, serde.String, dsl.Named("j"))
		}, "node j-result: TableJoinForeignKey: the key serdes of both tables and the left table's value serde are required"},
		{"no right value serde", func(b *dsl.Builder) {
			r := dsl.TableMapValues(dsl.TableFromTopic(b, "b", serde.String, serde.String), upper, nil)
			dsl.TableLeftJoinForeignKey(dsl.TableFromTopic(b, "a", serde.String, serde.String), r, fk,
				func(_, v string, o dsl.Maybe[string]) string { return v }, serde.String, dsl.Named("j"))
		}, "node j-result: TableLeftJoinForeignKey: the right table's value serde is required"},
		{"no result value serde for its store", func(b *dsl.Builder) {
			dsl.TableJoinForeignKey(dsl.TableFromTopic(b, "a", serde.String, serde.String), dsl.TableFromTopic(b, "b", serde.String, serde.String),
				fk, join, nil, dsl.Materialized(dsl.StoreOptions{Name: "s"}))
		}, "missing value serde for store s"},
		{"no result value serde for the store a join needs", func(b *dsl.Builder) {
			a := dsl.TableFromTopic(b, "a", serde.String, serde.String)
			j := dsl.TableJoinForeignKey(a, dsl.TableFromTopic(b, "b", serde.String, serde.String), fk, join, nil)
			dsl.TableJoin(a, j, join, serde.String)
		}, "so it is kept in store KTABLE-FK-JOIN-OUTPUT-STATE-STORE-0000000019, which needs the result's value serde"},
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

// Ports KTableKTableForeignKeyJoinScenarioTest.shouldWorkWithDefaultSerdes
// (its variants differ in how Kafka Streams finds default serdes, which
// Sluice has not: every serde is given): integer keys, the foreign key
// parsed from the value, the FK join's result materialized as "asdf" and
// joined again, on the primary key, with the left table.
func TestForeignKeyJoinScenarioDefaultSerdes(t *testing.T) {
	b := dsl.NewBuilder()
	a := dsl.TableFromTopic(b, "A", serde.Int32, serde.String)
	bt := dsl.TableFromTopic(b, "B", serde.Int32, serde.String)
	fk := dsl.TableJoinForeignKey(a, bt, func(_ int32, v string) dsl.Maybe[int32] {
		n, err := strconv.ParseInt(strings.Split(v, "-")[0], 10, 32)
		if err != nil {
			t.Fatalf("value %q: %v", v, err)
		}
		return dsl.Some(int32(n))
	}, func(_ int32, av, bv string) string { return "(" + av + "," + bv + ")" }, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "asdf"}))
	dsl.TableJoin(a, fk, func(_ int32, av, fv string) string { return "(" + av + "," + fv + ")" }, serde.String).
		ToStream().To("output", serde.Int32, serde.String)
	d, _ := opsDriver(t, b)
	opsOK(t, testdriver.CreateInputTopic(d, "A", serde.Int32, serde.String).PipeAt(1, "999-alpha", 1))
	opsOK(t, testdriver.CreateInputTopic(d, "B", serde.Int32, serde.String).PipeAt(999, "beta", 2))
	got := opsRead(t, testdriver.CreateOutputTopic(d, "output", serde.Int32, serde.String))
	opsWant(t, "output", got, []string{"1=(999-alpha,(999-alpha,beta))@2"})
}
