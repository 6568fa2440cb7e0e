package dsl_test

import (
	"fmt"
	"strconv"
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

// Build refuses a table join it cannot run, naming the join's node: tables
// of different builders, and a materialized result without a value serde.
func TestTableJoinBuildErrors(t *testing.T) {
	join := func(_, v, o string) string { return v + o }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{
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

// Tables of windowed aggregations join window by window: each side reads
// the other's window store (Kafka Streams' KStreamWindowAggregateValueGetter)
// or session store (KStreamSessionWindowAggregateValueGetter, a session's
// row stamped with its end) by the key's window.
func TestTableJoinWindowed(t *testing.T) {
	const size = 10 * time.Millisecond
	for _, tc := range []struct {
		name  string
		count func(g dsl.Grouped[string, string]) dsl.Table[window.Windowed[string], int64]
		keys  serde.Serde[window.Windowed[string]]
		steps [][3]string // topic, ts, the records written to out
	}{
		{"tumbling", func(g dsl.Grouped[string, string]) dsl.Table[window.Windowed[string], int64] {
			return dsl.WindowedBy(g, window.Tumbling(size, 0)).Count()
		}, window.TimeKeySerde(serde.String, size), [][3]string{
			{"a", "1", "k[0,10)=1+null@1"},
			{"b", "2", "k[0,10)=1+1@2"},
			{"b", "5", "k[0,10)=1+2@5"},
			{"a", "12", "k[10,20)=1+null@12"},
			// b's window [0,10) is still open in b's aggregation (its
			// stream time is 5), but a's store no longer holds it: a's
			// stream time 12 is past its retention (size + grace), and
			// the getter reads none, as Kafka Streams' window store.
			{"b", "8", "k[0,10)=null+3@8"},
			{"b", "15", "k[10,20)=1+1@15"},
		}},
		{"session", func(g dsl.Grouped[string, string]) dsl.Table[window.Windowed[string], int64] {
			return dsl.WindowedBySession(g, window.Session{Gap: 5 * time.Millisecond}).Count()
		}, window.SessionKeySerde(serde.String), [][3]string{
			{"a", "1", "k[1,1]=1+null@1"},
			{"b", "1", "k[1,1]=1+1@1"},
			// a's session [1,1] merges into [1,3]: its delete (stamped
			// with the session's end, as Kafka Streams stamps it) joins
			// b's [1,1] with None, and [1,3] has no partner in b.
			{"a", "3", "k[1,1]=null+1@1 k[1,3]=2+null@3"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			ca := tc.count(dsl.FromTopic(b, "a", serde.String, serde.String).GroupByKey())
			cb := tc.count(dsl.FromTopic(b, "b", serde.String, serde.String).GroupByKey())
			dsl.TableOuterJoin(ca, cb, func(_ window.Windowed[string], x, y dsl.Maybe[int64]) string {
				show := func(m dsl.Maybe[int64]) string {
					if n, ok := m.Get(); ok {
						return fmt.Sprint(n)
					}
					return "null"
				}
				return show(x) + "+" + show(y)
			}, serde.String).ToStream().To("out", tc.keys, serde.String)
			d, _ := opsDriver(t, b)
			ins := map[string]*testdriver.InputTopic[string, string]{
				"a": testdriver.CreateInputTopic(d, "a", serde.String, serde.String),
				"b": testdriver.CreateInputTopic(d, "b", serde.String, serde.String),
			}
			out := testdriver.CreateOutputTopic(d, "out", tc.keys, serde.String)
			for _, st := range tc.steps {
				ts, _ := strconv.ParseInt(st[1], 10, 64)
				opsOK(t, ins[st[0]].PipeAt("k", "v", ts))
				rs, err := out.ReadRecords()
				opsOK(t, err)
				var got []string
				for _, r := range rs {
					w := r.Key.Window
					if tc.name == "session" {
						got = append(got, fmt.Sprintf("%s[%d,%d]=%s@%d", r.Key.Key, w.Start, w.End, r.Value, r.Timestamp))
					} else {
						got = append(got, fmt.Sprintf("%s[%d,%d)=%s@%d", r.Key.Key, w.Start, w.End, r.Value, r.Timestamp))
					}
				}
				if strings.Join(got, " ") != st[2] {
					t.Fatalf("%s@%s: got %q, want %q", st[0], st[1], strings.Join(got, " "), st[2])
				}
			}
		})
	}
}
