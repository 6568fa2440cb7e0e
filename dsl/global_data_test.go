package dsl_test

// Data-driven tests of global tables and stream-global joins through the
// test driver, porting Kafka Streams' KStreamGlobalKTableJoinTest and
// KStreamGlobalKTableLeftJoinTest. Each file in testdata/globaljoins is a
// datadriven file (internal/datadriven; go test -rewrite rewrites the
// outputs) of these commands:
//
//	build join|leftjoin
//	    a new driver running the tests' topology: the stream "streamTopic"
//	    joined (inner or left) with the global table "globalTableTopic",
//	    the key selector taking the second comma-separated token of the
//	    stream value ("X0,FKey0" selects "FKey0"; "X0" selects none), the
//	    joiner writing "<stream value>+<global value>" (MockValueJoiner's
//	    TOSTRING_JOINER: "+null" for an absent global value), to "out".
//	    Prints the number of the topology's co-partition groups.
//	describe
//	    prints the topology's description (Describe), a blank line as
//	    <blank> (the format cannot hold one).
//	stream <key>=<value>[@<ts>]...
//	    pipes records into the stream topic; <null> is a Kafka null. Prints
//	    the records written to out after each one, as <key>=<value>@<ts>
//	    (a line "-" for none).
//	global <key>=<value>[@<ts>]...
//	    pipes records into the global table's topic, likewise.
//	store
//	    prints the global store: <key>=<value>@<ts>.
//	dropped <node> <reason>
//	    the number of records node dropped for reason.

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
)

type globalCase struct {
	d      *testdriver.Driver
	stream *testdriver.InputTopic[string, []byte]
	global *testdriver.InputTopic[string, []byte]
	out    *testdriver.OutputTopic[string, string]
	store  string
	topo   *topology.Topology
}

// globalKeyMapper is the tests' key selector: the value is comma
// delimited, and a second token, if present, is the key of the global
// table.
func globalKeyMapper(_ dsl.Maybe[string], v string) dsl.Maybe[string] {
	tokens := strings.Split(v, ",")
	if len(tokens) > 1 {
		return dsl.Some(tokens[1])
	}
	return dsl.None[string]()
}

func buildGlobalCase(t *testing.T, td *datadriven.TestData) (*globalCase, string) {
	if len(td.Args) != 1 {
		td.Fatalf(t, "want build join|leftjoin")
	}
	b := dsl.NewBuilder()
	stream := dsl.FromTopic(b, "streamTopic", serde.String, serde.String)
	table := dsl.GlobalTableFromTopic(b, "globalTableTopic", serde.String, serde.String)
	var joined dsl.Stream[string, string]
	switch td.Args[0] {
	case "join":
		joined = dsl.JoinGlobal(stream, table, globalKeyMapper, func(_ dsl.Maybe[string], v, gv string) string { return v + "+" + gv })
	case "leftjoin":
		joined = dsl.LeftJoinGlobal(stream, table, globalKeyMapper, func(_ dsl.Maybe[string], v string, gv dsl.Maybe[string]) string {
			x, ok := gv.Get()
			if !ok {
				x = "null"
			}
			return v + "+" + x
		})
	default:
		td.Fatalf(t, "unknown topology %q: want join or leftjoin", td.Args[0])
	}
	joined.To("out", serde.String, serde.String)
	d, topo := opsDriver(t, b)
	gc := &globalCase{
		d:      d,
		stream: testdriver.CreateInputTopic(d, "streamTopic", serde.String, serde.Bytes),
		global: testdriver.CreateInputTopic(d, "globalTableTopic", serde.String, serde.Bytes),
		out:    testdriver.CreateOutputTopic(d, "out", serde.String, serde.String),
		store:  table.StoreName(),
		topo:   topo,
	}
	return gc, fmt.Sprintf("co-partition groups: %d", len(topo.CoPartitionGroups()))
}

func TestGlobalJoinData(t *testing.T) {
	files, err := filepath.Glob("testdata/globaljoins/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/globaljoins")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var gc *globalCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && gc == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					var out string
					gc, out = buildGlobalCase(t, td)
					return out
				case "stream", "global":
					in := gc.stream
					if td.Cmd == "global" {
						in = gc.global
					}
					var lines []string
					for _, f := range td.Args {
						opsOK(t, in.PipeRecord(parseTableRecord(t, td, gc.d, []string{f})))
						got := opsRead(t, gc.out)
						if len(got) == 0 {
							got = []string{"-"}
						}
						lines = append(lines, got...)
					}
					return strings.Join(lines, "\n")
				case "describe":
					return strings.ReplaceAll(strings.TrimRight(gc.topo.Describe(), "\n"), "\n\n", "\n<blank>\n")
				case "store":
					return strings.Join(opsStore(t, gc.d, gc.store, serde.String, serde.String), "\n")
				case "dropped":
					if len(td.Args) != 2 {
						td.Fatalf(t, "want dropped <node> <reason>")
					}
					return strconv.FormatInt(gc.d.DroppedRecords(td.Args[0], td.Args[1]), 10)
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}
