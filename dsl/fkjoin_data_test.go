package dsl_test

// Data-driven tests of foreign-key table-table joins through the test
// driver. Each file in testdata/fkjoins is a datadriven file
// (internal/datadriven; go test -rewrite rewrites the outputs) of these
// commands, those of Kafka Streams' KTableKTableForeignKeyJoinIntegrationTest:
//
//	build kind=inner|left [materialized[=anon]] [versioned=left|right|both] [rejoin] [groupby] [views] [extractor=split|null|returnNull] [name=N] [cache=on] [describe]
//	    a new driver running left_table (string keys and values) joined by
//	    foreign key with right_table, to "output-topic", with the joiner
//	    "(<left>,<right>)" ("null" for an absent right). The foreign key is
//	    the part of the left value after "|" (extractor=split, the
//	    default), always None (null), or None when that part is
//	    "returnNull" (returnNull). With materialized the result is kept in
//	    the uncached store "store"; materialized=anon passes Materialized
//	    without a store name (Kafka Streams' Materialized.with(null,
//	    valueSerde)), which keeps no store; with rejoin the result is joined again
//	    with left_table, left or inner as kind says, into the uncached
//	    store "store-rejoin", "rejoin(<result>,<left>)", to
//	    "rejoin-output-topic"; with groupby the results are counted by
//	    their right value (TableGroupBy, Count) to "count-topic". Both make
//	    the result materialized when it is not (as Kafka Streams does).
//	    name=N names the join (TableJoined.as).
//	    versioned keeps left_table, right_table or both in versioned stores
//	    ("left", "right") of 5 minutes' history.
//	    With views the join's inputs are not materialized: left_table
//	    mapped to "m<value>" (TableMapValues) and right_table without the
//	    values that start with "x" (Filter), read through value getters.
//	    With cache=on the driver has a record cache (flushed after each
//	    record, as Kafka Streams' TopologyTestDriver flushes its cache) and
//	    the stores "store" and "store-rejoin" use it.
//	    Prints the co-partition groups and the internal topics, and
//	    Describe() with describe.
//	left|right <key>=<value>[@<ts>]
//	    pipes a record into left_table or right_table (<null>: a Kafka
//	    null) and prints what the topology wrote, <key>=<value>@<ts>,
//	    rejoin-output-topic's prefixed by "rejoin: ", count-topic's by
//	    "count: ".
//	store <name>
//	    prints the entries of a timestamped store: <key>=<value>@<ts>.
//	subscriptions
//	    prints the subscription store: <foreign key>/<primary key>=<instruction>.
//	dropped <node> <reason>
//	    the number of records node dropped for reason.
//
// The expected outputs were made by Kafka Streams 4.3.1 itself, with the
// program testdata/fkjoins/oracle/FKJoinOracle.java (its header says how
// to run it).

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
)

type fkCase struct {
	d      *testdriver.Driver
	topo   *topology.Topology
	left   *testdriver.InputTopic[string, []byte]
	right  *testdriver.InputTopic[string, []byte]
	out    *testdriver.OutputTopic[string, string]
	rejoin *testdriver.OutputTopic[string, string]
	counts *testdriver.OutputTopic[string, int64]
}

func fkExtractor(t *testing.T, td *datadriven.TestData) func(k, v string) dsl.Maybe[string] {
	split := func(v string) string {
		parts := strings.Split(v, "|")
		if len(parts) < 2 {
			t.Fatalf("left value %q has no foreign key after |", v)
		}
		return parts[1]
	}
	e, _ := td.Arg("extractor")
	switch e {
	case "", "split":
		return func(_, v string) dsl.Maybe[string] { return dsl.Some(split(v)) }
	case "null":
		return func(_, _ string) dsl.Maybe[string] { return dsl.None[string]() }
	case "returnNull":
		return func(_, v string) dsl.Maybe[string] {
			if fk := split(v); fk != "returnNull" {
				return dsl.Some(fk)
			}
			return dsl.None[string]()
		}
	}
	td.Fatalf(t, "extractor=%q: want split, null or returnNull", e)
	return nil
}

func buildFKCase(t *testing.T, td *datadriven.TestData) (*fkCase, string) {
	b := dsl.NewBuilder()
	ver, _ := td.Arg("versioned")
	tableOpts := func(side string) []dsl.TableSourceOption {
		if ver == side || ver == "both" {
			return []dsl.TableSourceOption{dsl.Materialized(dsl.StoreOptions{Name: side, HistoryRetention: 5 * time.Minute})}
		}
		return nil
	}
	left := dsl.TableFromTopic(b, "left_table", serde.String, serde.String, tableOpts("left")...)
	right := dsl.TableFromTopic(b, "right_table", serde.String, serde.String, tableOpts("right")...)
	if td.HasArg("views") {
		left = dsl.TableMapValues(left, func(v string) string { return "m" + v }, serde.String)
		right = right.Filter(func(_, v string) bool { return !strings.HasPrefix(v, "x") })
	}
	var opts []dsl.StoreOption
	materialized := td.HasArg("materialized")
	c, _ := td.Arg("cache")
	cached := c == "on"
	if m, _ := td.Arg("materialized"); m == "anon" {
		// Materialized without a store name: not materialized, as Kafka
		// Streams' Materialized.with(null, valueSerde).
		opts = append(opts, dsl.Materialized(dsl.StoreOptions{InMemory: true, DisableCaching: !cached}))
	} else if materialized {
		opts = append(opts, dsl.Materialized(dsl.StoreOptions{Name: "store", InMemory: true, DisableCaching: !cached}))
	}
	if name, ok := td.Arg("name"); ok {
		opts = append(opts, dsl.Named(name))
	}
	fk := fkExtractor(t, td)
	kind, _ := td.Arg("kind")
	var j dsl.Table[string, string]
	switch kind {
	case "inner":
		j = dsl.TableJoinForeignKey(left, right, fk, func(_, v, o string) string { return "(" + v + "," + o + ")" }, serde.String, opts...)
	case "left":
		j = dsl.TableLeftJoinForeignKey(left, right, fk, func(_, v string, o dsl.Maybe[string]) string { return "(" + v + "," + o.Or("null") + ")" }, serde.String, opts...)
	default:
		td.Fatalf(t, "kind=%q: want inner or left", kind)
	}
	j.ToStream().To("output-topic", nil, nil)
	if td.HasArg("rejoin") {
		ropts := dsl.Materialized(dsl.StoreOptions{Name: "store-rejoin", InMemory: true, DisableCaching: !cached})
		rejoiner := func(_, v string, o dsl.Maybe[string]) string { return "rejoin(" + v + "," + o.Or("null") + ")" }
		var r dsl.Table[string, string]
		if kind == "left" {
			r = dsl.TableLeftJoin(j, left, rejoiner, serde.String, ropts)
		} else {
			r = dsl.TableJoin(j, left, func(k, v, o string) string { return rejoiner(k, v, dsl.Some(o)) }, serde.String, ropts)
		}
		r.ToStream().To("rejoin-output-topic", nil, nil)
	}
	if td.HasArg("groupby") {
		// Counts the results by their right value.
		dsl.TableGroupBy(j, func(_, v string) (dsl.Maybe[string], string) {
			_, rv, _ := strings.Cut(strings.TrimSuffix(v, ")"), ",")
			return dsl.Some(rv), v
		}, serde.String, serde.String).Count(dsl.Named("counts")).ToStream().To("count-topic", nil, nil)
	}
	var dopts []testdriver.Option
	if cached {
		// The cache of Kafka Streams' TopologyTestDriver: flushed after
		// each record.
		dopts = append(dopts, testdriver.WithRecordCache(10<<20))
	}
	d, topo := opsDriver(t, b, dopts...)
	fc := &fkCase{d: d, topo: topo,
		left:  testdriver.CreateInputTopic(d, "left_table", serde.String, serde.Bytes),
		right: testdriver.CreateInputTopic(d, "right_table", serde.String, serde.Bytes),
		out:   testdriver.CreateOutputTopic(d, "output-topic", serde.String, serde.String),
	}
	if td.HasArg("rejoin") {
		fc.rejoin = testdriver.CreateOutputTopic(d, "rejoin-output-topic", serde.String, serde.String)
	}
	if td.HasArg("groupby") {
		fc.counts = testdriver.CreateOutputTopic(d, "count-topic", serde.String, serde.Int64)
	}
	var got []string
	for _, g := range topo.CoPartitionGroups() {
		var ts []string
		for _, tp := range g.Topics {
			ts = append(ts, tp.Name)
		}
		got = append(got, "co-partitioned: "+strings.Join(ts, " "))
	}
	for _, it := range topo.InternalTopics() {
		got = append(got, fmt.Sprintf("internal topic: %s (%s)", it.Name, it.Kind))
	}
	if td.HasArg("describe") {
		for _, l := range strings.Split(topo.Describe(), "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
	}
	return fc, strings.Join(got, "\n")
}

func TestForeignKeyJoinData(t *testing.T) {
	files, err := filepath.Glob("testdata/fkjoins/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/fkjoins")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var fc *fkCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && fc == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					var out string
					fc, out = buildFKCase(t, td)
					return out
				case "left", "right":
					in := fc.left
					if td.Cmd == "right" {
						in = fc.right
					}
					opsOK(t, in.PipeRecord(parseTableRecord(t, td, fc.d, td.Args)))
					got := opsRead(t, fc.out)
					if fc.rejoin != nil {
						for _, r := range opsRead(t, fc.rejoin) {
							got = append(got, "rejoin: "+r)
						}
					}
					if fc.counts != nil {
						for _, r := range opsRead(t, fc.counts) {
							got = append(got, "count: "+r)
						}
					}
					return strings.Join(got, "\n")
				case "store":
					if len(td.Args) != 1 {
						td.Fatalf(t, "want store <name>")
					}
					return strings.Join(opsStore(t, fc.d, td.Args[0], serde.String, serde.String), "\n")
				case "subscriptions":
					return strings.Join(fkSubscriptions(t, fc), "\n")
				case "dropped":
					if len(td.Args) != 2 {
						td.Fatalf(t, "want dropped <node> <reason>")
					}
					return strconv.FormatInt(fc.d.DroppedRecords(td.Args[0], td.Args[1]), 10)
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}

// fkSubscriptions lists the subscription store of the topology's one
// foreign-key join.
func fkSubscriptions(t *testing.T, fc *fkCase) []string {
	var name string
	for _, s := range fc.topo.Stores() {
		if strings.Contains(s.Name, "SUBSCRIPTION-STATE-STORE") || strings.HasSuffix(s.Name, "-subscription-store") {
			name = s.Name
		}
	}
	if name == "" {
		t.Fatal("no subscription store in the topology")
	}
	seq, err := testdriver.TimestampedKeyValueStore(fc.d, name, serde.Bytes, nodes.SubscriptionSerde(serde.String))
	opsOK(t, err)
	got := []string{}
	for k, v := range seq {
		fk, pk, err := nodes.SplitCombinedKey(k)
		opsOK(t, err)
		got = append(got, fmt.Sprintf("%s/%s=%v@%d", fk, pk, v.Value.Instruction, v.Timestamp))
	}
	return got
}
