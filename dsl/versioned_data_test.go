package dsl_test

// Data-driven tests of versioned tables and of the stream-table join with
// a grace period, through the test driver. Each file in
// testdata/versioned is a datadriven file (internal/datadriven; go test
// -rewrite rewrites the outputs) of these commands:
//
//	build <topology> [args]
//	    a new driver running one of the topologies of versionedTopologies,
//	    reading the topics "stream", "table" and "table2" with string keys
//	    and values, writing "out". The argument history=MS sets the history
//	    retention of the versioned stores (default 300000, five minutes).
//	    Prints the Build error, if any; with the argument describe,
//	    Describe() (without its blank lines).
//	stream|table|table2 <key>=<value>[@<ts>]
//	    pipes a record into the topic (<null>: a Kafka null) and prints
//	    what the topology wrote to "out", as <key>=<value>@<ts>.
//	asof <store> <key> <ts>
//	    the version of key valid at ts in the versioned store:
//	    <value>@<validFrom>-<validTo> (validTo "latest" for the latest
//	    version), or "absent".
//	get <store> <key>
//	    the latest value of key in the versioned store, as asof prints it.
//	dropped <node> <reason>
//	    the number of records node dropped for reason.
//
// The expectations are Kafka Streams 4.3.1's: the files were run through
// testdata/versioned/oracle/VersionedOracle.java (Kafka Streams' own
// TopologyTestDriver), which prints the same outputs for the same
// commands, and name the Java tests they port. The oracle leaves the
// outputs of dropped (Sluice's drop counters) and of builds as they are.

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// versionedCase is a running topology of a versioned data file.
type versionedCase struct {
	d    *testdriver.Driver
	ins  map[string]*testdriver.InputTopic[string, []byte]
	read func() []string
}

// versionedArgs are the arguments of a build.
type versionedArgs struct {
	history time.Duration
	td      *datadriven.TestData
}

func (a versionedArgs) versioned(name string) dsl.StoreOptions {
	return dsl.StoreOptions{Name: name, HistoryRetention: a.history}
}

func (a versionedArgs) table(b *dsl.Builder, topic, store string) dsl.Table[string, string] {
	return dsl.TableFromTopic(b, topic, serde.String, serde.String, dsl.Materialized(a.versioned(store)))
}

// notX is the predicate of the filters: values that do not start with "x".
func notX(_ string, v string) bool { return !strings.HasPrefix(v, "x") }

// versionedTopologies build the topologies of the data files; they return
// whether "out" has int64 values (else strings).
var versionedTopologies = map[string]func(t *testing.T, b *dsl.Builder, a versionedArgs) (counts bool){
	// join [grace=MS] [left] [unversioned] [filter] [name=N]: "stream"
	// joined with the table of "table", kept in the versioned store
	// "V-grace" (unversioned: a timestamped store "V-grace", uncached),
	// filtered (values starting with "x" left out, not materialized) with
	// filter; joiner "<stream>+<table>" ("null" for an absent table value,
	// left join). With grace the join is named "Grace" (name=N: N), as in
	// KStreamKTableJoinTest.makeJoin.
	"join": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		s := dsl.FromTopic(b, "stream", serde.String, serde.String)
		var tb dsl.Table[string, string]
		if a.td.HasArg("unversioned") {
			tb = dsl.TableFromTopic(b, "table", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "V-grace", DisableCaching: true}))
		} else {
			tb = a.table(b, "table", "V-grace")
		}
		if a.td.HasArg("filter") {
			tb = tb.Filter(notX)
		}
		var opts []dsl.TableJoinOption
		name, named := a.td.Arg("name")
		if g, ok := a.td.Arg("grace"); ok {
			ms, err := strconv.ParseInt(g, 10, 64)
			opsOK(t, err)
			opts = append(opts, dsl.JoinGrace(time.Duration(ms)*time.Millisecond))
			if !named {
				name, named = "Grace", true
			}
		}
		if named {
			opts = append(opts, dsl.Named(name))
		}
		var out dsl.Stream[string, string]
		if a.td.HasArg("left") {
			out = dsl.LeftJoinTable(s, tb, func(_ dsl.Maybe[string], v string, tv dsl.Maybe[string]) string { return v + "+" + tv.Or("null") }, opts...)
		} else {
			out = dsl.JoinTable(s, tb, func(_, v, tv string) string { return v + "+" + tv }, opts...)
		}
		out.To("out", serde.String, serde.String)
		return false
	},
	// table: the versioned table of "table" (store "V") to "out".
	"table": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		a.table(b, "table", "V").ToStream().To("out", nil, nil)
		return false
	},
	// filtered [materialized=versioned|plain]: the versioned table of
	// "table" (store "V") without the values starting with "x", not
	// materialized, or materialized in the versioned store "F" or the
	// timestamped store "F" (uncached), to "out".
	"filtered": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		var opts []dsl.StoreOption
		switch m, _ := a.td.Arg("materialized"); m {
		case "versioned":
			opts = append(opts, dsl.Materialized(a.versioned("F")))
		case "plain":
			opts = append(opts, dsl.Materialized(dsl.StoreOptions{Name: "F", DisableCaching: true}))
		}
		a.table(b, "table", "V").Filter(notX, opts...).ToStream().To("out", nil, nil)
		return false
	},
	// filteredcount: the versioned table of "table" (store "V") filtered
	// into the timestamped store "F" (uncached), grouped by value and
	// counted into "C", to "out".
	"filteredcount": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		f := a.table(b, "table", "V").Filter(notX, dsl.Materialized(dsl.StoreOptions{Name: "F", DisableCaching: true}))
		dsl.TableGroupBy(f, func(_ string, v string) (dsl.Maybe[string], string) { return dsl.Some(v), v },
			serde.String, serde.String).Count(dsl.Materialized(dsl.StoreOptions{Name: "C", DisableCaching: true})).
			ToStream().To("out", serde.String, serde.Int64)
		return true
	},
	// mappedcount: the versioned table of "table" (store "V") mapped to
	// "m<value>" into the timestamped store "M" (uncached), grouped by
	// value and counted into "C", to "out".
	"mappedcount": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		m := dsl.TableMapValues(a.table(b, "table", "V"), func(v string) string { return "m" + v }, serde.String,
			dsl.Materialized(dsl.StoreOptions{Name: "M", DisableCaching: true}))
		dsl.TableGroupBy(m, func(_ string, v string) (dsl.Maybe[string], string) { return dsl.Some(v), v },
			serde.String, serde.String).Count(dsl.Materialized(dsl.StoreOptions{Name: "C", DisableCaching: true})).
			ToStream().To("out", serde.String, serde.Int64)
		return true
	},
	// mapped: the versioned table of "table" (store "V") mapped to
	// "m<value>" into the versioned store "M", to "out".
	"mapped": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		dsl.TableMapValues(a.table(b, "table", "V"), func(v string) string { return "m" + v }, serde.String,
			dsl.Materialized(a.versioned("M"))).ToStream().To("out", nil, nil)
		return false
	},
	// count: the versioned table of "table" (store "V") grouped by value
	// and counted into "C", to "out".
	"count": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		dsl.TableGroupBy(a.table(b, "table", "V"), func(_ string, v string) (dsl.Maybe[string], string) { return dsl.Some(v), v },
			serde.String, serde.String).Count(dsl.Materialized(dsl.StoreOptions{Name: "C", DisableCaching: true})).
			ToStream().To("out", serde.String, serde.Int64)
		return true
	},
	// agg: KTableAggregateTest.testAggOfVersionedStore's topology: the
	// versioned table of "table" (store "V") grouped by value, but keys
	// "null" and "NULL" left out (a null key, a null KeyValue in the Java
	// test), aggregated into "topic1-Canonized" with
	// MockAggregator.TOSTRING_ADDER and TOSTRING_REMOVER from "0", to "out".
	"agg": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		g := dsl.TableGroupBy(a.table(b, "table", "V"), func(k string, v string) (dsl.Maybe[string], string) {
			if k == "null" || k == "NULL" {
				return dsl.None[string](), v
			}
			return dsl.Some(v), v
		}, serde.String, serde.String)
		dsl.TableAggregate(g, func() string { return "0" },
			func(_ string, v string, agg string) string { return agg + "+" + v },
			func(_ string, v string, agg string) string { return agg + "-" + v },
			serde.String, dsl.Materialized(dsl.StoreOptions{Name: "topic1-Canonized", DisableCaching: true})).
			ToStream().To("out", nil, nil)
		return false
	},
	// tablejoin [materialized]: the versioned tables of "table" (store
	// "V") and "table2" (store "V2") inner-joined, "<left>+<right>", to
	// "out"; materialized: into the versioned store "J".
	"tablejoin": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		var opts []dsl.StoreOption
		if a.td.HasArg("materialized") {
			opts = append(opts, dsl.Materialized(a.versioned("J")))
		}
		dsl.TableJoin(a.table(b, "table", "V"), a.table(b, "table2", "V2"), func(_, v, o string) string { return v + "+" + o }, serde.String, opts...).
			ToStream().To("out", nil, nil)
		return false
	},
	// countagg: "stream" counted by key into the versioned store "C".
	"countagg": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		dsl.FromTopic(b, "stream", serde.String, serde.String).GroupByKey().Count(dsl.Materialized(a.versioned("C"))).
			ToStream().To("out", serde.String, serde.Int64)
		return true
	},
	// global: a global table materialized with a history retention,
	// which Kafka Streams refuses ("GlobalTables cannot be versioned").
	"global": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		g := dsl.GlobalTableFromTopic(b, "table", serde.String, serde.String, dsl.Materialized(a.versioned("G")))
		dsl.JoinGlobal(dsl.FromTopic(b, "stream", serde.String, serde.String), g, func(k dsl.Maybe[string], _ string) dsl.Maybe[string] { return k },
			func(_ dsl.Maybe[string], v, gv string) string { return v + "+" + gv }).To("out", serde.String, serde.String)
		return false
	},
	// inmemory: a table source materialized with a history retention in
	// memory, which Kafka Streams has no store for.
	"inmemory": func(t *testing.T, b *dsl.Builder, a versionedArgs) bool {
		o := a.versioned("V")
		o.InMemory = true
		dsl.TableFromTopic(b, "table", serde.String, serde.String, dsl.Materialized(o)).ToStream().To("out", nil, nil)
		return false
	},
}

func TestVersionedData(t *testing.T) {
	files, err := filepath.Glob("testdata/versioned/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/versioned")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var vc *versionedCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && vc == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					var out string
					vc, out = buildVersionedCase(t, td)
					return out
				case "stream", "table", "table2":
					in, ok := vc.ins[td.Cmd]
					if !ok {
						td.Fatalf(t, "this topology reads no topic %s", td.Cmd)
					}
					opsOK(t, in.PipeRecord(parseTableRecord(t, td, vc.d, td.Args)))
					return strings.Join(vc.read(), "\n")
				case "asof", "get":
					if len(td.Args) != map[string]int{"asof": 3, "get": 2}[td.Cmd] {
						td.Fatalf(t, "want asof <store> <key> <ts> or get <store> <key>")
					}
					if td.Args[0] == "C" {
						return versionedRead(t, td, vc.d, serde.Int64)
					}
					return versionedRead(t, td, vc.d, serde.String)
				case "dropped":
					if len(td.Args) != 2 {
						td.Fatalf(t, "want dropped <node> <reason>")
					}
					return strconv.FormatInt(vc.d.DroppedRecords(td.Args[0], td.Args[1]), 10)
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}

func buildVersionedCase(t *testing.T, td *datadriven.TestData) (*versionedCase, string) {
	if len(td.Args) == 0 {
		td.Fatalf(t, "no topology")
	}
	build, ok := versionedTopologies[td.Args[0]]
	if !ok {
		td.Fatalf(t, "unknown topology %q", td.Args[0])
	}
	a := versionedArgs{history: 5 * time.Minute, td: td}
	if h, ok := td.Arg("history"); ok {
		ms, err := strconv.ParseInt(h, 10, 64)
		opsOK(t, err)
		a.history = time.Duration(ms) * time.Millisecond
	}
	b := dsl.NewBuilder()
	counts := build(t, b, a)
	topo, err := b.Build()
	if err != nil {
		return nil, "error: " + err.Error()
	}
	d, err := testdriver.New(topo)
	opsOK(t, err)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	vc := &versionedCase{d: d, ins: map[string]*testdriver.InputTopic[string, []byte]{}}
	for _, src := range topo.SourceTopics() {
		vc.ins[src] = testdriver.CreateInputTopic(d, src, serde.String, serde.Bytes)
	}
	if counts {
		o := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
		vc.read = func() []string { return opsRead(t, o) }
	} else {
		o := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
		vc.read = func() []string { return opsRead(t, o) }
	}
	got := []string{"ok"}
	if td.HasArg("describe") {
		for _, l := range strings.Split(topo.Describe(), "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
	}
	return vc, strings.Join(got, "\n")
}

// versionedRead runs the asof or get command td on the versioned store it
// names, whose values values decodes.
func versionedRead[V any](t *testing.T, td *datadriven.TestData, d *testdriver.Driver, values serde.Serde[V]) string {
	vs, err := testdriver.VersionedKeyValueStore(d, td.Args[0], serde.String, values)
	opsOK(t, err)
	if td.Cmd == "get" {
		v, ts, ok, err := vs.Get(td.Args[1])
		opsOK(t, err)
		if !ok {
			return "absent"
		}
		return fmt.Sprintf("%v@%d-latest", v, ts)
	}
	asOf, err := strconv.ParseInt(td.Args[2], 10, 64)
	opsOK(t, err)
	v, from, to, ok, err := vs.GetAsOf(td.Args[1], asOf)
	opsOK(t, err)
	if !ok {
		return "absent"
	}
	end := strconv.FormatInt(to, 10)
	if to == math.MaxInt64 {
		end = "latest"
	}
	return fmt.Sprintf("%v@%d-%s", v, from, end)
}
