package dsl_test

// Data-driven tests of tables through the test driver: tables read from a
// topic, table filters and mapValues, tables regrouped and aggregated with
// an adder and a subtractor, toStream and tombstones. Each file in
// testdata/tables is a datadriven file (internal/datadriven; go test
// -rewrite rewrites the outputs) of these commands:
//
//	build <topology> [args]
//	    a new driver running one of the topologies of tableTopologies,
//	    reading the topic "in" and writing the topic "out". Prints the
//	    result table's store ("table store: <name>|none") and the
//	    topology's repartition topics.
//	in <key>=<value>[@<ts>] [<header>:<value>...]
//	    pipes a record (at the wall-clock time without @ts); <null> as the
//	    key or the value is a Kafka null. Values are bytes as they are
//	    (JSON for the accounts topology). Prints the records written to
//	    out, as <key>=<value>@<ts> [headers], a null as <null>.
//	pipe
//	<record>...
//	    pipes the records of its input, reading no output.
//	map
//	    reads the unread output with testdriver.ReadKeyValuesToMap; prints
//	    key=value in key order.
//	store <name>
//	    prints the entries of a timestamped store: <key>=<value>@<ts>.
//	get <store> <key>
//	    the value of key in the store, or "absent".
//	dropped <node> <reason>
//	    the number of records node dropped for reason.
//
// The expectations follow Kafka Streams: KTableSource, KTableFilter,
// KTableMapValues, KTableRepartitionMap and KTableAggregate/KTableReduce.

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// tableCase is a running topology of a table data file.
type tableCase struct {
	d       *testdriver.Driver
	in      *testdriver.InputTopic[string, []byte]
	read    func() []string            // the unread records of out
	readMap func() []string            // the unread records of out, by ReadKeyValuesToMap
	stores  map[string]func() []string // the entries of each timestamped store
	gets    map[string]func(key string) string
}

// tableOutput returns the readers of the topic out.
func tableOutput[V any](t *testing.T, tc *tableCase, values serde.Serde[V]) {
	out := testdriver.CreateOutputTopic(tc.d, "out", serde.String, values)
	tc.read = func() []string { return opsRead(t, out) }
	tc.readMap = func() []string {
		m, err := testdriver.ReadKeyValuesToMap(out)
		opsOK(t, err)
		var got []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			got = append(got, fmt.Sprintf("%s=%v", k, m[k]))
		}
		return got
	}
}

// tableStore registers the readers of the store name.
func tableStore[V any](t *testing.T, tc *tableCase, name string, values serde.Serde[V]) {
	if tc.stores == nil {
		tc.stores = map[string]func() []string{}
		tc.gets = map[string]func(string) string{}
	}
	tc.stores[name] = func() []string { return opsStore(t, tc.d, name, serde.String, values) }
	tc.gets[name] = func(key string) string {
		kv, err := testdriver.KeyValueStore(tc.d, name, serde.String, values)
		opsOK(t, err)
		v, ok, err := kv.Get(key)
		opsOK(t, err)
		if !ok {
			return "absent"
		}
		return fmt.Sprint(v)
	}
}

// tableTopologies are the topologies a build command names. Each builds
// its pipeline on b from the topic "in" to the topic "out", and returns the
// result table's store name and a function that, given the running
// driver's case, registers the readers of its output and stores.
var tableTopologies = map[string]func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) (string, func(*tableCase)){
	// table name=N: a table named N (its source node and store), toStream.
	"table": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) (string, func(*tableCase)) {
		name, _ := td.Arg("name")
		var opts []dsl.TableSourceOption
		if name != "" {
			opts = append(opts, dsl.Named(name))
		}
		tb := dsl.TableFromTopic(b, "in", serde.String, serde.String, opts...)
		tb.ToStream().To("out", nil, nil)
		return tb.StoreName(), func(tc *tableCase) {
			tableOutput(t, tc, serde.String)
			if name != "" {
				tableStore(t, tc, name, serde.String)
			}
		}
	},
	// filter op=Filter|FilterNot [store=S]: Filter(v != "x") or
	// FilterNot(v == "x"), materialized in S if given.
	"filter": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) (string, func(*tableCase)) {
		op, _ := td.Arg("op")
		store, _ := td.Arg("store")
		var opts []dsl.StoreOption
		if store != "" {
			opts = append(opts, dsl.Materialized(dsl.StoreOptions{Name: store}))
		}
		tb := dsl.TableFromTopic(b, "in", serde.String, serde.String)
		switch op {
		case "Filter":
			tb = tb.Filter(func(_ string, v string) bool { return v != "x" }, opts...)
		case "FilterNot":
			tb = tb.FilterNot(func(_ string, v string) bool { return v == "x" }, opts...)
		default:
			td.Fatalf(t, "op=%q: want Filter or FilterNot", op)
		}
		tb.ToStream().To("out", nil, nil)
		return tb.StoreName(), func(tc *tableCase) {
			tableOutput(t, tc, serde.String)
			if store != "" {
				tableStore(t, tc, store, serde.String)
			}
		}
	},
	// mapvalues [store=S]: the length of each value, materialized in S if
	// given.
	"mapvalues": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) (string, func(*tableCase)) {
		store, _ := td.Arg("store")
		var opts []dsl.StoreOption
		if store != "" {
			opts = append(opts, dsl.Materialized(dsl.StoreOptions{Name: store}))
		}
		tb := dsl.TableMapValues(dsl.TableFromTopic(b, "in", serde.String, serde.String),
			func(v string) int64 { return int64(len(v)) }, serde.Int64, opts...)
		tb.ToStream().To("out", nil, nil)
		return tb.StoreName(), func(tc *tableCase) {
			tableOutput(t, tc, serde.Int64)
			if store != "" {
				tableStore(t, tc, store, serde.Int64)
			}
		}
	},
	// accounts agg=count|reduce|aggregate: a table "accounts" of account →
	// {"region","balance"} (JSON) regrouped by region ("by-region") into
	// the store "per-region": the accounts per region, the sum of their
	// balances, or both ({accounts total}).
	"accounts": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) (string, func(*tableCase)) {
		accounts := dsl.TableFromTopic(b, "in", serde.String, serde.JSON[account](), dsl.Named("accounts"))
		g := dsl.TableGroupBy(accounts, func(_ string, a account) (dsl.Maybe[string], int64) { return dsl.Some(a.Region), a.Balance },
			serde.String, serde.Int64, dsl.Named("by-region"))
		agg, _ := td.Arg("agg")
		switch agg {
		case "count", "reduce":
			var tb dsl.Table[string, int64]
			if agg == "count" {
				tb = g.Count(dsl.Named("per-region"))
			} else {
				tb = g.Reduce(sum, func(agg, v int64) int64 { return agg - v }, dsl.Named("per-region"))
			}
			tb.ToStream().To("out", nil, nil)
			return tb.StoreName(), func(tc *tableCase) {
				tableOutput(t, tc, serde.Int64)
				tableStore(t, tc, "per-region", serde.Int64)
			}
		case "aggregate":
			tb := dsl.TableAggregate(g, func() regionStats { return regionStats{} },
				func(_ string, balance int64, s regionStats) regionStats {
					return regionStats{Accounts: s.Accounts + 1, Total: s.Total + balance}
				},
				func(_ string, balance int64, s regionStats) regionStats {
					return regionStats{Accounts: s.Accounts - 1, Total: s.Total - balance}
				}, serde.JSON[regionStats](), dsl.Named("per-region"))
			tb.ToStream().To("out", nil, nil)
			return tb.StoreName(), func(tc *tableCase) {
				tableOutput(t, tc, serde.JSON[regionStats]())
				tableStore(t, tc, "per-region", serde.JSON[regionStats]())
			}
		}
		td.Fatalf(t, "agg=%q: want count, reduce or aggregate", agg)
		return "", nil
	},
	// users: a table of user → region regrouped by region and counted in
	// the store "users-per-region".
	"users": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) (string, func(*tableCase)) {
		users := dsl.TableFromTopic(b, "in", serde.String, serde.String)
		tb := dsl.TableGroupBy(users, func(user, region string) (dsl.Maybe[string], string) { return dsl.Some(region), user }, serde.String, serde.String).
			Count(dsl.Named("users-per-region"))
		tb.ToStream().To("out", nil, nil)
		return tb.StoreName(), func(tc *tableCase) {
			tableOutput(t, tc, serde.Int64)
			tableStore(t, tc, "users-per-region", serde.Int64)
		}
	},
}

type account struct {
	Region  string `json:"region"`
	Balance int64  `json:"balance"`
}

type regionStats struct {
	Accounts int64 `json:"accounts"`
	Total    int64 `json:"total"`
}

// parseTableRecord parses <key>=<value>[@<ts>] [<header>:<value>...].
func parseTableRecord(t *testing.T, td *datadriven.TestData, d *testdriver.Driver, fields []string) operators.Record[string, []byte] {
	if len(fields) == 0 {
		td.Fatalf(t, "no record")
	}
	k, v, ok := strings.Cut(fields[0], "=")
	if !ok {
		td.Fatalf(t, "record %q is not key=value[@ts]", fields[0])
	}
	r := operators.Record[string, []byte]{Key: k, Timestamp: d.WallClockTime().UnixMilli()}
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		ts, err := strconv.ParseInt(v[i+1:], 10, 64)
		if err != nil {
			td.Fatalf(t, "record %q: timestamp: %v", fields[0], err)
		}
		v, r.Timestamp = v[:i], ts
	}
	if k == "<null>" {
		r.Key, r.NullKey = "", true
	}
	if v == "<null>" {
		r.Tombstone = true
	} else {
		r.Value = []byte(v)
	}
	for _, h := range fields[1:] {
		hk, hv, ok := strings.Cut(h, ":")
		if !ok {
			td.Fatalf(t, "header %q is not key:value", h)
		}
		r.Headers = append(r.Headers, operators.Header{Key: hk, Value: []byte(hv)})
	}
	return r
}

func TestTableData(t *testing.T) {
	files, err := filepath.Glob("testdata/tables/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/tables")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var tc *tableCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && tc == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					if len(td.Args) == 0 {
						td.Fatalf(t, "no topology")
					}
					build, ok := tableTopologies[td.Args[0]]
					if !ok {
						td.Fatalf(t, "unknown topology %q", td.Args[0])
					}
					b := dsl.NewBuilder()
					store, readers := build(t, td, b)
					d, topo := opsDriver(t, b)
					tc = &tableCase{d: d, in: testdriver.CreateInputTopic(d, "in", serde.String, serde.Bytes)}
					readers(tc)
					got := []string{"table store: none"}
					if store != "" {
						if topo.Store(store) == nil {
							td.Fatalf(t, "the result table's store %s is not in the topology", store)
						}
						got[0] = "table store: " + store
					}
					rp := opsRepartitionTopics(topo)
					if len(rp) == 0 {
						rp = []string{"none"}
					}
					return strings.Join(append(got, "repartition topics: "+strings.Join(rp, " ")), "\n")
				case "in":
					opsOK(t, tc.in.PipeRecord(parseTableRecord(t, td, tc.d, td.Args)))
					return strings.Join(tc.read(), "\n")
				case "pipe":
					for _, line := range strings.Split(td.Input, "\n") {
						opsOK(t, tc.in.PipeRecord(parseTableRecord(t, td, tc.d, strings.Fields(line))))
					}
					return ""
				case "map":
					return strings.Join(tc.readMap(), "\n")
				case "store", "get":
					if len(td.Args) != map[string]int{"store": 1, "get": 2}[td.Cmd] {
						td.Fatalf(t, "want store <name> or get <store> <key>")
					}
					if _, ok := tc.stores[td.Args[0]]; !ok {
						td.Fatalf(t, "no store %s in this topology", td.Args[0])
					}
					if td.Cmd == "get" {
						return tc.gets[td.Args[0]](td.Args[1])
					}
					return strings.Join(tc.stores[td.Args[0]](), "\n")
				case "dropped":
					if len(td.Args) != 2 {
						td.Fatalf(t, "want dropped <node> <reason>")
					}
					return strconv.FormatInt(tc.d.DroppedRecords(td.Args[0], td.Args[1]), 10)
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}
