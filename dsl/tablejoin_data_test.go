package dsl_test

// Data-driven tests of table-table joins through the test driver. Each file
// in testdata/tablejoins is a datadriven file (internal/datadriven; go test
// -rewrite rewrites the outputs) of these commands:
//
//	build <topology> [args]
//	    a new driver running one of the topologies of tableJoinTopologies,
//	    reading the topics "topic1", "topic2" (and "topic3") with string
//	    keys and values. With cache=on the driver has a record cache,
//	    flushed after each record as Kafka Streams' TopologyTestDriver
//	    flushes its cache; cache=off also has the cache, but the stores of
//	    the tables and the join opt out of it (DisableCaching); without
//	    cache=, no cache. With the argument commit-on-request too, the
//	    cache is flushed only by the command commit. Prints the result
//	    table's store, the co-partition groups and, with the argument
//	    describe, Describe() (without its blank lines).
//	in1|in2|in3 <key>=<value>[@<ts>]
//	    pipes a record into topic1, topic2 or topic3 (<null>: a Kafka
//	    null). Prints what the topology wrote to its output topics, as
//	    <key>=<value>@<ts> (prefixed by the topic when it has several), and
//	    with the argument changes of build the updates of the join result
//	    as "change <key>=(<new>, <old>)@<ts>", old values included.
//	commit
//	    commits the driver (with cache=on commit-on-request, the only
//	    commits); prints as in1.
//	store <name>
//	    prints the entries of a timestamped store: <key>=<value>@<ts>.
//	get <store> <key>
//	    the value of key in the store, or "absent".
//	dropped <node> <reason>
//	    the number of records node dropped for reason.
//
// The expectations are Kafka Streams 4.3.1's: each file names the Java test
// methods it ports (inner.txt, left.txt, outer.txt), or says how its
// expectations follow from Kafka Streams' processors and value getters.

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// joinCase is a running topology of a table join data file.
type joinCase struct {
	d       *testdriver.Driver
	ins     map[string]*testdriver.InputTopic[string, []byte]
	outs    []string
	read    map[string]func() []string
	changes []string
	stores  map[string]func() []string
	gets    map[string]func(key string) string
}

// joinBuild is what a topology of tableJoinTopologies returns: the result
// table's store and the readers to register once the driver runs.
type joinBuild struct {
	store   string
	outputs map[string]serde.Serde[string] // output topics of string values
	counts  map[string]bool                // output topics of int64 values
	stores  map[string]bool                // timestamped stores of string values
	lstores map[string]bool                // timestamped stores of int64 values
}

// joinToString is Kafka Streams' MockValueJoiner.TOSTRING_JOINER: "v+o", with
// "null" for an absent side.
func joinToString(_ string, v, o dsl.Maybe[string]) string {
	return v.Or("null") + "+" + o.Or("null")
}

// joinKind joins t1 and t2 as kind says (inner, left or outer) with
// joinToString.
func joinKind(t *testing.T, td *datadriven.TestData, t1, t2 dsl.Table[string, string], opts ...dsl.StoreOption) dsl.Table[string, string] {
	kind, _ := td.Arg("kind")
	switch kind {
	case "inner":
		return dsl.TableJoin(t1, t2, func(k, v, o string) string { return joinToString(k, dsl.Some(v), dsl.Some(o)) }, serde.String, opts...)
	case "left":
		return dsl.TableLeftJoin(t1, t2, func(k, v string, o dsl.Maybe[string]) string { return joinToString(k, dsl.Some(v), o) }, serde.String, opts...)
	case "outer":
		return dsl.TableOuterJoin(t1, t2, joinToString, serde.String, opts...)
	}
	td.Fatalf(t, "kind=%q: want inner, left or outer", kind)
	return dsl.Table[string, string]{}
}

// joinMaterialized returns the options of the join result: Materialized with
// the store of the argument materialized=S (DisableCaching with
// cache=off; materialized=* for Materialized with no store name), and
// Named with name=N.
func joinMaterialized(td *datadriven.TestData) ([]dsl.StoreOption, string) {
	var opts []dsl.StoreOption
	store, _ := td.Arg("materialized")
	if name, ok := td.Arg("name"); ok {
		opts = append(opts, dsl.Named(name))
	}
	if store != "" {
		if store == "*" {
			store = ""
		}
		opts = append(opts, dsl.Materialized(dsl.StoreOptions{Name: store, DisableCaching: joinCacheOff(td)}))
	}
	return opts, store
}

func joinCacheOff(td *datadriven.TestData) bool {
	c, _ := td.Arg("cache")
	return c == "off"
}

// joinSourceTable reads topic as a table, its store uncached with cache=off.
func joinSourceTable(b *dsl.Builder, td *datadriven.TestData, topic string) dsl.Table[string, string] {
	var opts []dsl.TableSourceOption
	if joinCacheOff(td) {
		opts = append(opts, dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
	}
	return dsl.TableFromTopic(b, topic, serde.String, serde.String, opts...)
}

var tableJoinTopologies = map[string]func(t *testing.T, td *datadriven.TestData, b *dsl.Builder, jc *joinCase) joinBuild{
	// join kind=inner|left|outer [materialized=S] [name=N] [cache=off]
	// [changes]: topic1 joined with topic2 by joinToString, to "out".
	"join": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder, jc *joinCase) joinBuild {
		t1, t2 := joinSourceTable(b, td, "topic1"), joinSourceTable(b, td, "topic2")
		opts, store := joinMaterialized(td)
		j := joinKind(t, td, t1, t2, opts...)
		j.ToStream().To("out", nil, nil)
		if td.HasArg("changes") {
			peekJoinChanges(j, jc)
		}
		return joinBuild{store: j.StoreName(), outputs: map[string]serde.Serde[string]{"out": serde.String}, stores: joinStoreSet(store)}
	},
	// views kind=inner|left|outer [materialized=S] [changes]: joins tables
	// that are not materialized: topic1 mapped to "m<value>" with
	// TableMapValues, and topic2 without the values that start with "x"
	// (Filter), read through getters of topic1's and topic2's stores.
	"views": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder, jc *joinCase) joinBuild {
		t1 := dsl.TableMapValues(joinSourceTable(b, td, "topic1"), func(v string) string { return "m" + v }, serde.String)
		t2 := joinSourceTable(b, td, "topic2").Filter(func(_, v string) bool { return !strings.HasPrefix(v, "x") })
		opts, store := joinMaterialized(td)
		j := joinKind(t, td, t1, t2, opts...)
		j.ToStream().To("out", nil, nil)
		if td.HasArg("changes") {
			peekJoinChanges(j, jc)
		}
		return joinBuild{store: j.StoreName(), outputs: map[string]serde.Serde[string]{"out": serde.String}, stores: joinStoreSet(store)}
	},
	// rejoin [cache=on]: topic1 inner-joined with topic2 into the store
	// "j", which topic3 then left-joins: "<topic3>|<j or none>", to "out".
	// The second join reads j from its store.
	"rejoin": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder, jc *joinCase) joinBuild {
		j := dsl.TableJoin(joinSourceTable(b, td, "topic1"), joinSourceTable(b, td, "topic2"),
			func(k, v, o string) string { return joinToString(k, dsl.Some(v), dsl.Some(o)) }, serde.String,
			dsl.Materialized(dsl.StoreOptions{Name: "j"}))
		dsl.TableLeftJoin(joinSourceTable(b, td, "topic3"), j, func(_, v string, o dsl.Maybe[string]) string { return v + "|" + o.Or("none") }, nil).
			ToStream().To("out", serde.String, serde.String)
		return joinBuild{store: j.StoreName(), outputs: map[string]serde.Serde[string]{"out": serde.String}, stores: joinStoreSet("j")}
	},
	// chain: users (topic1: user → region) inner-joined with scores
	// (topic2: user → score), not materialized: "region:score". The join
	// is filtered (score not "0"), grouped by region and counted into
	// "per-region" (to "counts"); and joined again, outer, with nicknames
	// (topic3: user → nick) into the store "profiles" (to "out").
	"chain": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder, jc *joinCase) joinBuild {
		users, scores, nicks := joinSourceTable(b, td, "topic1"), joinSourceTable(b, td, "topic2"), joinSourceTable(b, td, "topic3")
		j := dsl.TableJoin(users, scores, func(_, region, score string) string { return region + ":" + score }, serde.String)
		counts := dsl.TableGroupBy(j.Filter(func(_, v string) bool { return !strings.HasSuffix(v, ":0") }),
			func(_ string, v string) (dsl.Maybe[string], string) {
				region, _, _ := strings.Cut(v, ":")
				return dsl.Some(region), v
			}, serde.String, serde.String).Count(dsl.Named("per-region"))
		counts.ToStream().To("counts", nil, nil)
		profiles := dsl.TableOuterJoin(j, nicks, func(_ string, rs, nick dsl.Maybe[string]) string {
			return rs.Or("none") + "/" + nick.Or("anonymous")
		}, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "profiles"}))
		profiles.ToStream().To("out", nil, nil)
		return joinBuild{store: profiles.StoreName(), outputs: map[string]serde.Serde[string]{"out": serde.String},
			counts: map[string]bool{"counts": true}, stores: joinStoreSet("profiles"), lstores: joinStoreSet("per-region")}
	},
}

func joinStoreSet(name string) map[string]bool {
	if name == "" {
		return nil
	}
	return map[string]bool{name: true}
}

// peekJoinChanges records the updates of j in jc.changes.
func peekJoinChanges(j dsl.Table[string, string], jc *joinCase) {
	dsl.PeekChanges(j, "proc", func(r operators.Record[string, operators.Change[string]]) {
		show := func(v string, ok bool) string {
			if !ok {
				return "<null>"
			}
			return v
		}
		jc.changes = append(jc.changes, fmt.Sprintf("change %s=(%s, %s)@%d", r.Key,
			show(r.Value.New, r.Value.HasNew), show(r.Value.Old, r.Value.HasOld), r.Timestamp))
	})
}

func TestTableJoinData(t *testing.T) {
	files, err := filepath.Glob("testdata/tablejoins/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/tablejoins")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var jc *joinCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && jc == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					return buildJoinCase(t, td, &jc)
				case "in1", "in2", "in3", "commit":
					if td.Cmd == "commit" {
						opsOK(t, jc.d.Commit())
					} else {
						in, ok := jc.ins["topic"+td.Cmd[2:]]
						if !ok {
							td.Fatalf(t, "this topology reads no topic%s", td.Cmd[2:])
						}
						opsOK(t, in.PipeRecord(parseTableRecord(t, td, jc.d, td.Args)))
					}
					var got []string
					for _, out := range jc.outs {
						for _, r := range jc.read[out]() {
							if len(jc.outs) > 1 {
								r = out + ": " + r
							}
							got = append(got, r)
						}
					}
					got = append(got, jc.changes...)
					jc.changes = nil
					return strings.Join(got, "\n")
				case "store", "get":
					if len(td.Args) != map[string]int{"store": 1, "get": 2}[td.Cmd] {
						td.Fatalf(t, "want store <name> or get <store> <key>")
					}
					if _, ok := jc.stores[td.Args[0]]; !ok {
						td.Fatalf(t, "no store %s in this topology", td.Args[0])
					}
					if td.Cmd == "get" {
						return jc.gets[td.Args[0]](td.Args[1])
					}
					return strings.Join(jc.stores[td.Args[0]](), "\n")
				case "dropped":
					if len(td.Args) != 2 {
						td.Fatalf(t, "want dropped <node> <reason>")
					}
					return strconv.FormatInt(jc.d.DroppedRecords(td.Args[0], td.Args[1]), 10)
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}

func buildJoinCase(t *testing.T, td *datadriven.TestData, jcp **joinCase) string {
	if len(td.Args) == 0 {
		td.Fatalf(t, "no topology")
	}
	build, ok := tableJoinTopologies[td.Args[0]]
	if !ok {
		td.Fatalf(t, "unknown topology %q", td.Args[0])
	}
	b := dsl.NewBuilder()
	jc := &joinCase{ins: map[string]*testdriver.InputTopic[string, []byte]{}, read: map[string]func() []string{},
		stores: map[string]func() []string{}, gets: map[string]func(string) string{}}
	jb := build(t, td, b, jc)
	var dopts []testdriver.Option
	if c, ok := td.Arg("cache"); ok && (c == "on" || c == "off") {
		// The cache of Kafka Streams' TopologyTestDriver: committed, so
		// flushed, after each record.
		dopts = append(dopts, testdriver.WithRecordCache(10<<20))
		if td.HasArg("commit-on-request") {
			dopts = append(dopts, testdriver.CommitOnRequest())
		}
	}
	d, topo := opsDriver(t, b, dopts...)
	jc.d = d
	for _, tp := range []string{"topic1", "topic2", "topic3"} {
		for _, src := range topo.SourceTopics() {
			if src == tp {
				jc.ins[tp] = testdriver.CreateInputTopic(d, tp, serde.String, serde.Bytes)
			}
		}
	}
	for _, out := range []string{"out", "counts"} {
		switch {
		case jb.outputs[out] != nil:
			o := testdriver.CreateOutputTopic(d, out, serde.String, jb.outputs[out])
			jc.read[out] = func() []string { return opsRead(t, o) }
		case jb.counts[out]:
			o := testdriver.CreateOutputTopic(d, out, serde.String, serde.Int64)
			jc.read[out] = func() []string { return opsRead(t, o) }
		default:
			continue
		}
		jc.outs = append(jc.outs, out)
	}
	for name := range jb.stores {
		jc.stores[name] = func() []string { return opsStore(t, d, name, serde.String, serde.String) }
		jc.gets[name] = joinStoreGet(t, d, name, serde.String)
	}
	for name := range jb.lstores {
		jc.stores[name] = func() []string { return opsStore(t, d, name, serde.String, serde.Int64) }
		jc.gets[name] = joinStoreGet(t, d, name, serde.Int64)
	}
	*jcp = jc
	got := []string{"table store: none"}
	if jb.store != "" {
		if topo.Store(jb.store) == nil {
			td.Fatalf(t, "the result table's store %s is not in the topology", jb.store)
		}
		got[0] = "table store: " + jb.store
	}
	for _, g := range topo.CoPartitionGroups() {
		var ts []string
		for _, tp := range g.Topics {
			ts = append(ts, tp.Name)
		}
		got = append(got, fmt.Sprintf("co-partitioned: %s", strings.Join(ts, " ")))
	}
	if td.HasArg("describe") {
		// Without its blank lines, which a datadriven output cannot hold.
		for _, l := range strings.Split(topo.Describe(), "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
	}
	return strings.Join(got, "\n")
}

func joinStoreGet[V any](t *testing.T, d *testdriver.Driver, name string, values serde.Serde[V]) func(string) string {
	return func(key string) string {
		kv, err := testdriver.KeyValueStore(d, name, serde.String, values)
		opsOK(t, err)
		v, ok, err := kv.Get(key)
		opsOK(t, err)
		if !ok {
			return "absent"
		}
		return fmt.Sprint(v)
	}
}
