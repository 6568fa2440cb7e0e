package dsl_test

// Data-driven tests of windowed aggregations through the test driver: each
// file in testdata/windows describes a window definition, an emit mode and
// an aggregation, and the input records (key, timestamp, value) each
// followed by the exact output it caused, and optionally the store's
// contents. The expectations follow Kafka Streams' semantics
// (KStreamWindowAggregate, KStreamSessionWindowAggregate,
// KStreamSlidingWindowAggregate).
//
// The files are datadriven files (internal/datadriven): each command is
// followed by "----" and the output it must produce; go test -rewrite
// rewrites the outputs. Commands:
//
//	build tumbling size=10ms grace=5ms [emit=update|final] [agg=...] [retention=1m]
//	build hopping size=10ms advance=5ms grace=0s ...
//	build session gap=5ms grace=0s ...
//	build sliding diff=10ms grace=0s ...
//	    a new driver running in → groupByKey → the windowed aggregation → out.
//	    agg is count (default), sum (int values) or concat (string values
//	    joined with "+"); retention is the store's (Materialized.Retention).
//	in <key> <ts> [value]
//	    pipes a record (value defaults to "1"); prints what it caused, in
//	    order: "out <key> <start> <end> <value>|delete @<ts>" for each record
//	    written to out, then "dropped late" if the record was dropped as late.
//	store
//	    prints the store's windows: "<key> <start> <end> <value>".

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
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

type windowCase struct {
	kind                            string // tumbling, hopping, session, sliding
	size, advance, grace, gap, diff time.Duration
	final                           bool
	agg                             string
	retention                       time.Duration
}

// parseWindowCase reads the arguments of a build command.
func parseWindowCase(t *testing.T, td *datadriven.TestData) windowCase {
	t.Helper()
	if len(td.Args) == 0 {
		td.Fatalf(t, "no window kind")
	}
	c := windowCase{kind: td.Args[0], agg: "count"}
	for _, kv := range td.Args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			td.Fatalf(t, "argument %q is not key=value", kv)
		}
		dur := func() time.Duration {
			d, err := time.ParseDuration(v)
			if err != nil {
				td.Fatalf(t, "%s: %v", k, err)
			}
			return d
		}
		switch k {
		case "size":
			c.size = dur()
		case "advance":
			c.advance = dur()
		case "grace":
			c.grace = dur()
		case "gap":
			c.gap = dur()
		case "diff":
			c.diff = dur()
		case "retention":
			c.retention = dur()
		case "emit":
			if v != "update" && v != "final" {
				td.Fatalf(t, "emit=%s: want update or final", v)
			}
			c.final = v == "final"
		case "agg":
			c.agg = v
		default:
			td.Fatalf(t, "unknown argument %q", k)
		}
	}
	return c
}

// buildWindowCase builds in → groupByKey → windowed aggregation → out.
// The aggregate is kept as a string so that every aggregation writes the
// same output format.
func buildWindowCase(t *testing.T, c windowCase) (*testdriver.Driver, func() []string, func() []string) {
	t.Helper()
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	mat := []dsl.StoreOption{dsl.Named("agg"), dsl.Materialized(dsl.StoreOptions{Name: "agg", Retention: c.retention})}
	init := func() string { return "" }
	add := func(_ string, v, agg string) string {
		switch c.agg {
		case "count":
			n, _ := strconv.Atoi(agg)
			return strconv.Itoa(n + 1)
		case "sum":
			a, _ := strconv.Atoi(agg)
			x, _ := strconv.Atoi(v)
			return strconv.Itoa(a + x)
		}
		if agg == "" {
			return v
		}
		return agg + "+" + v
	}
	merge := func(_ string, a, b string) string {
		switch c.agg {
		case "count", "sum":
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return strconv.Itoa(x + y)
		}
		if a == "" {
			return b
		}
		return a + "+" + b
	}
	var keys serde.Serde[window.Windowed[string]]
	switch c.kind {
	case "tumbling", "hopping":
		w := window.Time{Size: c.size, Advance: c.advance, Grace: c.grace}
		ws := dsl.WindowedBy(g, w)
		if c.final {
			ws = ws.EmitFinal()
		}
		dsl.WindowedAggregate(ws, init, add, serde.String, mat...).ToStream().To("out", nil, nil)
		keys = window.TimeKeySerde(serde.String, c.size)
	case "session":
		ss := dsl.WindowedBySession(g, window.Session{Gap: c.gap, Grace: c.grace})
		if c.final {
			ss = ss.EmitFinal()
		}
		dsl.SessionAggregate(ss, init, add, merge, serde.String, mat...).ToStream().To("out", nil, nil)
		keys = window.SessionKeySerde(serde.String)
	case "sliding":
		sw := dsl.WindowedBySliding(g, window.Sliding{TimeDifference: c.diff, Grace: c.grace})
		if c.final {
			sw = sw.EmitFinal()
		}
		dsl.SlidingAggregate(sw, init, add, serde.String, mat...).ToStream().To("out", nil, nil)
		keys = window.TimeKeySerde(serde.String, c.diff)
		c.size = c.diff // the stored windows end diff after their start
	default:
		t.Fatalf("unknown window kind %q", c.kind)
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	out := testdriver.CreateOutputTopic(d, "out", keys, serde.String)
	readOut := func() []string {
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			v := r.Value
			if r.Tombstone {
				v = "delete"
			}
			got = append(got, fmt.Sprintf("%s %d %d %s @%d", r.Key.Key, r.Key.Window.Start, r.Key.Window.End, v, r.Timestamp))
		}
		return got
	}
	readStore := func() []string {
		var got []string
		switch s := d.Store("agg").(type) {
		case *state.WindowStore:
			for k, v := range s.All() {
				_, agg, err := nodes.DecodeTimestamped(v)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %d %d %s", k.Key, k.Start, k.Start+c.size.Milliseconds(), agg))
			}
		case *state.SessionStore:
			for k, v := range s.All() {
				got = append(got, fmt.Sprintf("%s %d %d %s", k.Key, k.Start, k.End, v))
			}
		default:
			t.Fatalf("store agg is a %T", s)
		}
		return got
	}
	return d, readOut, readStore
}

func TestWindowedAggregationData(t *testing.T) {
	files, err := filepath.Glob("testdata/windows/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/windows")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var (
				d                  *testdriver.Driver
				in                 *testdriver.InputTopic[string, string]
				readOut, readStore func() []string
			)
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && d == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					d, readOut, readStore = buildWindowCase(t, parseWindowCase(t, td))
					in = testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
					return ""
				case "in":
					if len(td.Args) < 2 || len(td.Args) > 3 {
						td.Fatalf(t, "want in <key> <ts> [value]")
					}
					ts, err := strconv.ParseInt(td.Args[1], 10, 64)
					if err != nil {
						td.Fatalf(t, "%v", err)
					}
					v := "1"
					if len(td.Args) == 3 {
						v = td.Args[2]
					}
					late := d.DroppedRecords("agg", "late")
					if err := in.PipeAt(td.Args[0], v, ts); err != nil {
						td.Fatalf(t, "%v", err)
					}
					var got []string
					for _, r := range readOut() {
						got = append(got, "out "+r)
					}
					for range d.DroppedRecords("agg", "late") - late {
						got = append(got, "dropped late")
					}
					return strings.Join(got, "\n")
				case "store":
					return strings.Join(readStore(), "\n")
				default:
					td.Fatalf(t, "unknown command")
					return ""
				}
			})
		})
	}
}
