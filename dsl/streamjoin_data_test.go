package dsl_test

// Data-driven tests of stream-stream joins through the test driver,
// porting the scenarios of Kafka Streams' KStreamKStreamJoinTest,
// KStreamKStreamLeftJoinTest, KStreamKStreamOuterJoinTest and
// KStreamKStreamSelfJoinTest (each file names the test methods it
// ports), plus random scenarios (random_*.txt) whose expected outputs
// Kafka Streams 4.3.1 produced itself (testdata/streamjoins/oracle runs a
// file's inputs through its TopologyTestDriver; the outputs of the ported
// files agree with it too). Each file in testdata/streamjoins is a datadriven file
// (internal/datadriven; go test -rewrite rewrites the outputs) of these
// commands:
//
//	build join|left|outer|self [diff=MS] [before=MS] [after=MS] [grace=MS] [name=N] [store=S]
//	    a new driver running a join of the topics "left" and "right"
//	    (int32 keys, string values) into "out": Join, LeftJoin or
//	    OuterJoin, or the inner self-join of "left" with itself. The
//	    windows are JoinTimeDifference(diff), then WithBefore(before) and
//	    WithAfter(after) if given, with grace. name is the Named option,
//	    store the StreamJoined StoreName. The joiner returns
//	    "<left>+<right>", an absent side as "null" (Kafka Streams'
//	    MockValueJoiner.TOSTRING_JOINER).
//	stores
//	    the names of the topology's stores.
//	nodes
//	    each node of the topology, in creation order, with the stores it
//	    uses and its parents: <name> [<store>, ...] <- <parent>, ...
//	left <key>=<value>@<ts>...
//	right <key>=<value>@<ts>...
//	    pipes the records, in order, into "left" or "right"; <null> as
//	    the key or the value is a Kafka null; a record may end with
//	    ^<header>:<value>, a header. A "left" or "right" among the records
//	    switches the topic the following records go to. Prints the records written
//	    to out meanwhile, as <key>=<value>@<ts> [<header>:<value>].
//	dropped <node> <reason>
//	    the number of records node dropped for reason.
//	shared
//	    the entries of the outer join store, in its order:
//	    <ts> <left|right> <key>: <value>, ...

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

type streamJoinCase struct {
	d           *testdriver.Driver
	topo        *topology.Topology
	left, right *testdriver.InputTopic[int32, string]
	out         *testdriver.OutputTopic[int32, string]
}

func streamJoinBuild(t *testing.T, td *datadriven.TestData) *streamJoinCase {
	if len(td.Args) == 0 {
		td.Fatalf(t, "build: no join kind")
	}
	ms := func(name string) (time.Duration, bool) {
		s, ok := td.Arg(name)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			td.Fatalf(t, "%s=%q: %v", name, s, err)
		}
		return time.Duration(n) * time.Millisecond, true
	}
	diff, _ := ms("diff")
	w := window.JoinTimeDifference(diff)
	if d, ok := ms("before"); ok {
		w = w.WithBefore(d)
	}
	if d, ok := ms("after"); ok {
		w = w.WithAfter(d)
	}
	w.Grace, _ = ms("grace")
	var opts []dsl.JoinOption
	if name, ok := td.Arg("name"); ok {
		opts = append(opts, dsl.Named(name))
	}
	if store, ok := td.Arg("store"); ok {
		opts = append(opts, dsl.StreamJoined(dsl.StreamJoinOptions{StoreName: store}))
	}
	str := func(v dsl.Maybe[string]) string { return v.Or("null") }
	b := dsl.NewBuilder()
	l := dsl.FromTopic(b, "left", serde.Int32, serde.String)
	var out dsl.Stream[int32, string]
	switch td.Args[0] {
	case "join":
		r := dsl.FromTopic(b, "right", serde.Int32, serde.String)
		out = dsl.Join(l, r, func(_ int32, v, o string) string { return v + "+" + o }, w, opts...)
	case "left":
		r := dsl.FromTopic(b, "right", serde.Int32, serde.String)
		out = dsl.LeftJoin(l, r, func(_ int32, v string, o dsl.Maybe[string]) string { return v + "+" + str(o) }, w, opts...)
	case "outer":
		r := dsl.FromTopic(b, "right", serde.Int32, serde.String)
		out = dsl.OuterJoin(l, r, func(_ int32, v, o dsl.Maybe[string]) string { return str(v) + "+" + str(o) }, w, opts...)
	case "self":
		out = dsl.Join(l, l, func(_ int32, v, o string) string { return v + "+" + o }, w, opts...)
	default:
		td.Fatalf(t, "build: unknown join kind %q", td.Args[0])
	}
	out.To("out", serde.Int32, serde.String)
	d, topo := opsDriver(t, b, testdriver.WithChangelogs())
	c := &streamJoinCase{d: d, topo: topo,
		left: testdriver.CreateInputTopic(d, "left", serde.Int32, serde.String),
		out:  testdriver.CreateOutputTopic(d, "out", serde.Int32, serde.String)}
	if td.Args[0] != "self" {
		c.right = testdriver.CreateInputTopic(d, "right", serde.Int32, serde.String)
	}
	return c
}

// parseJoinRecord parses <key>=<value>@<ts>[^<header>:<value>].
func parseJoinRecord(t *testing.T, td *datadriven.TestData, s string) operators.Record[int32, string] {
	s, header, hasHeader := strings.Cut(s, "^")
	k, rest, ok := strings.Cut(s, "=")
	v, tss, ok2 := strings.Cut(rest, "@")
	if !ok || !ok2 {
		td.Fatalf(t, "record %q is not key=value@ts", s)
	}
	ts, err := strconv.ParseInt(tss, 10, 64)
	if err != nil {
		td.Fatalf(t, "record %q: timestamp: %v", s, err)
	}
	r := operators.Record[int32, string]{Value: v, Timestamp: ts}
	if k == "<null>" {
		r.NullKey = true
	} else {
		n, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			td.Fatalf(t, "record %q: key: %v", s, err)
		}
		r.Key = int32(n)
	}
	if v == "<null>" {
		r.Value, r.Tombstone = "", true
	}
	if hasHeader {
		hk, hv, ok := strings.Cut(header, ":")
		if !ok {
			td.Fatalf(t, "record %q: header %q is not key:value", s, header)
		}
		r.Headers = []operators.Header{{Key: hk, Value: []byte(hv)}}
	}
	return r
}

// sharedEntries prints the outer join store's entries (the store's own
// layout: ts ‖ side ‖ int32 key → list of side ‖ value).
func sharedEntries(t *testing.T, td *datadriven.TestData, c *streamJoinCase) string {
	var name string
	for _, s := range c.topo.Stores() {
		if strings.Contains(s.Name, "shared") || strings.Contains(s.Name, "SHARED") {
			name = s.Name
		}
	}
	if name == "" {
		td.Fatalf(t, "no outer join store in this topology")
	}
	kv, ok := c.d.Store(name).(state.KeyValueStore)
	if !ok {
		td.Fatalf(t, "store %s is not a key-value store", name)
	}
	var lines []string
	for k, v := range kv.Range(nil, nil) {
		side := "right"
		if k[8] == 1 {
			side = "left"
		}
		line := fmt.Sprintf("%d %s %d:", int64(binary.BigEndian.Uint64(k)), side, int32(binary.BigEndian.Uint32(k[9:])))
		n := int(binary.BigEndian.Uint32(v[1:5]))
		v = v[5:]
		for i := 0; i < n; i++ {
			l := int(binary.BigEndian.Uint32(v))
			sep := " "
			if i > 0 {
				sep = ", "
			}
			line += sep + string(v[5:4+l])
			v = v[4+l:]
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func TestStreamJoinData(t *testing.T) {
	files, err := filepath.Glob("testdata/streamjoins/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/streamjoins")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var c *streamJoinCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && c == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					c = streamJoinBuild(t, td)
					return ""
				case "nodes":
					var lines []string
					for _, st := range c.topo.SubTopologies() {
						for _, n := range st.Nodes {
							var parents []string
							for _, p := range n.Parents {
								parents = append(parents, p.Name)
							}
							lines = append(lines, fmt.Sprintf("%s [%s] <- %s", n.Name, strings.Join(n.Stores, ", "), strings.Join(parents, ", ")))
						}
					}
					return strings.Join(lines, "\n")
				case "stores":
					var stores []string
					for _, s := range c.topo.Stores() {
						stores = append(stores, s.Name)
					}
					return strings.Join(stores, "\n")
				case "left", "right":
					in := c.left
					if td.Cmd == "right" {
						in = c.right
					}
					if in == nil {
						td.Fatalf(t, "this topology reads no topic %q", td.Cmd)
					}
					for _, a := range td.Args {
						switch a {
						case "left":
							in = c.left
						case "right":
							in = c.right
						default:
							opsOK(t, in.PipeRecord(parseJoinRecord(t, td, a)))
						}
					}
					return strings.Join(opsRead(t, c.out), "\n")
				case "dropped":
					if len(td.Args) != 2 {
						td.Fatalf(t, "want dropped <node> <reason>")
					}
					return strconv.FormatInt(c.d.DroppedRecords(td.Args[0], td.Args[1]), 10)
				case "shared":
					return sharedEntries(t, td, c)
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}
