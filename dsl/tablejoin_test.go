package dsl_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
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
			// the getter reads none, as Kafka Streams' window store
			// without a record cache (its caching store would still
			// serve the cached window: docs/kafka-streams.md).
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

// Ports KTableKTableLeftJoinTest.shouldNotThrowIllegalStateExceptionWhenMultiCacheEvictions
// (KAFKA-4492): an aggregation left-joined with five tables and with the
// left join of two more, one of them mapped, all behind one small record
// cache that evicts while other caches flush. Processing must not fail,
// and once everything is flushed the result (materialized here, mapped to
// upper case as in the Java test) must equal the chain of left joins
// computed from the stores of its inputs.
func TestTableJoinMultiCacheEvictions(t *testing.T) {
	mem := func(name string) dsl.MaterializedOption {
		return dsl.Materialized(dsl.StoreOptions{Name: name, InMemory: true})
	}
	b := dsl.NewBuilder()
	adder := func(a, v string) string { return a + "+" + v } // MockReducer.STRING_ADDER
	table := func(topic, store string) dsl.Table[int64, string] {
		return dsl.TableFromTopic(b, topic, serde.Int64, serde.String, mem(store))
	}
	agg := dsl.TableGroupBy(table("agg", "agg-base-store"), func(k int64, v string) (dsl.Maybe[int64], string) { return dsl.Some(k), v },
		serde.Int64, serde.String).Reduce(adder, adder, mem("agg-store"))
	one, two, three := table("tableOne", "tableOne-base-store"), table("tableTwo", "tableTwo-base-store"), table("tableThree", "tableThree-base-store")
	four, five, six := table("tableFour", "tableFour-base-store"), table("tableFive", "tableFive-base-store"), table("tableSix", "tableSix-base-store")
	join := func(_ int64, v string, o dsl.Maybe[string]) string { return v + "+" + o.Or("null") } // MockValueJoiner.TOSTRING_JOINER
	seven := dsl.TableMapValues(one, strings.ToUpper, nil)
	eight := dsl.TableLeftJoin(six, seven, join, nil)
	j := agg
	for _, other := range []dsl.Table[int64, string]{one, two, three, four, five, eight} {
		j = dsl.TableLeftJoin(j, other, join, nil)
	}
	dsl.TableMapValues(j, strings.ToUpper, serde.String, mem("result"))
	d, _ := opsDriver(t, b, testdriver.WithRecordCache(2048))

	topics := []string{"agg", "tableOne", "tableTwo", "tableThree", "tableFour", "tableFive", "tableSix"}
	ins := map[string]*testdriver.InputTopic[int64, string]{}
	for _, tp := range topics {
		ins[tp] = testdriver.CreateInputTopic(d, tp, serde.Int64, serde.String)
	}
	values := []string{"a", "AA", "BBB", "CCCC", "DD", "EEEEEEEE", "F", "GGGGGGGGGGGGGGG", "HHH", "IIIIIIIIII",
		"J", "KK", "LLLL", "MMMMMMMMMMMMMMMMMMMMMM", "NNNNN", "O", "P", "QQQQQ", "R", "SSSS", "T", "UU", "VVVVVVVVVVVVVVVVVVV"}
	rnd := rand.New(rand.NewPCG(4492, 1))
	for i := range 300 {
		for _, tp := range topics {
			opsOK(t, ins[tp].PipeAt(int64(rnd.IntN(50)), values[rnd.IntN(len(values))], int64(i)))
		}
	}
	opsOK(t, d.Commit())

	rows := func(store string) map[int64]string {
		kv, err := testdriver.KeyValueStore(d, store, serde.Int64, serde.String)
		opsOK(t, err)
		m := map[int64]string{}
		for k, v := range kv.All() {
			m[k] = v
		}
		opsOK(t, kv.Err())
		return m
	}
	in := map[string]map[int64]string{}
	for _, s := range []string{"agg-store", "tableOne-base-store", "tableTwo-base-store", "tableThree-base-store",
		"tableFour-base-store", "tableFive-base-store", "tableSix-base-store"} {
		in[s] = rows(s)
	}
	lookup := func(m map[int64]string, k int64) dsl.Maybe[string] {
		if v, ok := m[k]; ok {
			return dsl.Some(v)
		}
		return dsl.None[string]()
	}
	want := map[int64]string{}
	for k, v := range in["agg-store"] {
		for _, s := range []string{"tableOne-base-store", "tableTwo-base-store", "tableThree-base-store", "tableFour-base-store", "tableFive-base-store"} {
			v = join(k, v, lookup(in[s], k))
		}
		eightRow := dsl.None[string]()
		if sixRow, ok := in["tableSix-base-store"][k]; ok {
			oneRow := dsl.None[string]()
			if o, ok := in["tableOne-base-store"][k]; ok {
				oneRow = dsl.Some(strings.ToUpper(o))
			}
			eightRow = dsl.Some(join(k, sixRow, oneRow))
		}
		want[k] = strings.ToUpper(join(k, v, eightRow))
	}
	got := rows("result")
	if len(want) == 0 || !maps.Equal(got, want) {
		t.Fatalf("result store (%d rows) differs from the joins of its inputs' stores (%d rows):\n got  %v\n want %v", len(got), len(want), got, want)
	}
}

// The same flaw as TestForeignKeyJoinRetractsAnswerOfUnflushedRightRow in a
// table-table join: an update of the uncached left table joins with the
// right table's row read through its cache before the cache flushed it;
// the row's delete before the flush must still reach the join (as a
// delete with no old value), or the joined row stays although the right
// row is gone.
func TestTableJoinRetractsJoinWithUnflushedRow(t *testing.T) {
	b := dsl.NewBuilder()
	left := dsl.TableFromTopic(b, "left", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "left", DisableCaching: true}))
	right := dsl.TableFromTopic(b, "right", serde.String, serde.String)
	dsl.TableJoin(left, right, func(_, v, o string) string { return v + "+" + o }, nil).ToStream().To("out", serde.String, serde.String)
	d, _ := opsDriver(t, b, testdriver.WithRecordCache(1<<20), testdriver.CommitOnRequest())
	l := testdriver.CreateInputTopic(d, "left", serde.String, serde.String)
	r := testdriver.CreateInputTopic(d, "right", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	opsOK(t, r.PipeAt("a", "B", 1))
	opsOK(t, l.PipeAt("a", "L", 2))
	opsWant(t, "the left update's join", opsRead(t, out), []string{"a=L+B@2"})
	opsOK(t, r.PipeTombstone("a", 3))
	opsOK(t, d.Commit())
	opsWant(t, "the flush of the right row's delete", opsRead(t, out), []string{"a=<null>@3"})
}
