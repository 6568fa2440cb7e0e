package dsl_test

// Data-driven tests of Table.Suppress through the test driver, ports of
// Kafka Streams' SuppressScenarioTest. Each file in testdata/suppress is a
// datadriven file (internal/datadriven; go test -rewrite rewrites the
// outputs) of these commands:
//
//	build <topology> [args]
//	    a new driver running one of suppressTopologies.
//	in <topic> <key>=<value>@<ts> [<header>:<value>...]
//	    pipes a record (<null> value: a tombstone) and prints what each
//	    output topic got, in topic order, as <topic> <key>=<value>@<ts>
//	    (windowed keys as Kafka Streams' Windowed.toString, [key@start/end];
//	    the raw updates of sliding windows in key order).
//
// testdata/suppress/oracle/SuppressOracle.java runs the same files through
// Kafka Streams 4.3.1's TopologyTestDriver: every file's outputs are the
// ones it writes.
//
// shouldWorkWithCogrouped has no port: Sluice has no cogroup.

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

type suppressCase struct {
	d       *testdriver.Driver
	outputs map[string]func() []string
	// sortRaw prints the raw updates of each input in key order, as
	// SuppressScenarioTest sorts those of sliding windows (Kafka Streams
	// forwards the updates of one record to several sliding windows in
	// another order than Sluice).
	sortRaw bool
}

// suppressBufferConfig reads maxrecords=, maxbytes= and shutdown.
func suppressBufferConfig(td *datadriven.TestData) dsl.BufferConfig {
	var c dsl.BufferConfig
	if v, ok := td.Arg("maxrecords"); ok {
		c.MaxRecords, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := td.Arg("maxbytes"); ok {
		c.MaxBytes, _ = strconv.ParseInt(v, 10, 64)
	}
	if td.HasArg("shutdown") {
		c.OnFull = dsl.ShutDownWhenFull
	}
	return c
}

func suppressDuration(t *testing.T, td *datadriven.TestData, key string) time.Duration {
	v, ok := td.Arg(key)
	if !ok {
		td.Fatalf(t, "missing %s=", key)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		td.Fatalf(t, "%s: %v", key, err)
	}
	return d
}

func windowedString(w window.Windowed[string]) string {
	return fmt.Sprintf("[%s@%d/%d]", w.Key, w.Window.Start, w.Window.End)
}

// suppressTopologies build a pipeline on b and return the output topics
// to print.
var suppressTopologies = map[string]func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string{
	// counts limit=<duration> [maxrecords=N] [maxbytes=N]: the table
	// "input" regrouped by value and counted; the counts suppressed to
	// "output-suppressed", raw to "output-raw" (SuppressScenarioTest's
	// intermediate-event scenarios).
	"counts": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string {
		in := dsl.TableFromTopic(b, "input", serde.String, serde.String,
			dsl.Materialized(dsl.StoreOptions{Name: "input-store", DisableCaching: true, DisableLogging: true}))
		counts := dsl.TableGroupBy(in, func(k, v string) (dsl.Maybe[string], string) { return dsl.Some(v), k }, serde.String, serde.String).Count()
		counts.Suppress(dsl.UntilTimeLimit(suppressDuration(t, td, "limit"), suppressBufferConfig(td))).ToStream().To("output-suppressed", nil, nil)
		counts.ToStream().To("output-raw", nil, nil)
		return []string{"output-raw", "output-suppressed"}
	},
	// windows kind=tumbling size= grace= | sliding diff= grace= | session
	// gap= grace=: the stream "input" counted per key and window in the
	// store "counts" (caching off), suppressed until the windows close.
	"windows": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string {
		g := dsl.FromTopic(b, "input", serde.String, serde.String).GroupByKey()
		opt := dsl.Materialized(dsl.StoreOptions{Name: "counts", DisableCaching: true})
		var counts dsl.Table[window.Windowed[string], int64]
		kind, _ := td.Arg("kind")
		switch kind {
		case "tumbling":
			counts = dsl.WindowedBy(g, window.Tumbling(suppressDuration(t, td, "size"), suppressDuration(t, td, "grace"))).Count(opt)
		case "sliding":
			counts = dsl.WindowedBySliding(g, window.Sliding{TimeDifference: suppressDuration(t, td, "diff"), Grace: suppressDuration(t, td, "grace")}).Count(opt)
		case "session":
			counts = dsl.WindowedBySession(g, window.Session{Gap: suppressDuration(t, td, "gap"), Grace: suppressDuration(t, td, "grace")}).Count(opt)
		default:
			td.Fatalf(t, "kind=%q: want tumbling, sliding or session", kind)
		}
		counts.Suppress(dsl.UntilWindowCloses(suppressBufferConfig(td))).ToStream().To("output-suppressed", nil, nil)
		counts.ToStream().To("output-raw", nil, nil)
		return []string{"output-raw", "output-suppressed"}
	},
	// groupby: the table "topic" suppressed for 10ms, then regrouped by
	// key and counted to "output" (shouldWorkBeforeGroupBy).
	"groupby": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string {
		tb := dsl.TableFromTopic(b, "topic", serde.String, serde.String).
			Suppress(dsl.UntilTimeLimit(10*time.Millisecond, dsl.BufferConfig{}))
		dsl.TableGroupBy(tb, func(k, v string) (dsl.Maybe[string], string) { return dsl.Some(k), v }, serde.String, serde.String).
			Count().ToStream().To("output", nil, nil)
		return []string{"output"}
	},
	// join suppressed=left|right: tables "left" and "right", one of them
	// suppressed for 10ms, outer-joined to "output" as "(l,r)"
	// (shouldWorkBeforeJoinLeft/Right).
	"join": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string {
		left := dsl.TableFromTopic(b, "left", serde.String, serde.String)
		right := dsl.TableFromTopic(b, "right", serde.String, serde.String)
		side, _ := td.Arg("suppressed")
		switch side {
		case "left":
			left = left.Suppress(dsl.UntilTimeLimit(10*time.Millisecond, dsl.BufferConfig{}))
		case "right":
			right = right.Suppress(dsl.UntilTimeLimit(10*time.Millisecond, dsl.BufferConfig{}))
		default:
			td.Fatalf(t, "suppressed=%q: want left or right", side)
		}
		dsl.TableOuterJoin(left, right, func(_ string, l, r dsl.Maybe[string]) string {
			return fmt.Sprintf("(%s,%s)", l.Or("null"), r.Or("null"))
		}, serde.String).ToStream().To("output", nil, nil)
		return []string{"output"}
	},
	// selfjoin: the table "input" suppressed for 10ms, joined with its own
	// MapValues(v + "!") to "output" as "l|r": both sides read the other
	// through the suppressed table's view while an update is emitted.
	"selfjoin": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string {
		tb := dsl.TableFromTopic(b, "input", serde.String, serde.String).
			Suppress(dsl.UntilTimeLimit(10*time.Millisecond, dsl.BufferConfig{}))
		dsl.TableJoin(tb, dsl.TableMapValues(tb, func(v string) string { return v + "!" }, serde.String),
			func(_ string, l, r string) string { return l + "|" + r }, serde.String).
			ToStream().To("output", nil, nil)
		return []string{"output"}
	},
	// table limit=<duration> [maxrecords=N] [maxbytes=N] [shutdown]: the
	// table "input" suppressed to "output".
	"table": func(t *testing.T, td *datadriven.TestData, b *dsl.Builder) []string {
		dsl.TableFromTopic(b, "input", serde.String, serde.String).
			Suppress(dsl.UntilTimeLimit(suppressDuration(t, td, "limit"), suppressBufferConfig(td)).WithName("sup")).
			ToStream().To("output", nil, nil)
		return []string{"output"}
	},
}

func TestSuppressData(t *testing.T) {
	files, err := filepath.Glob("testdata/suppress/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in testdata/suppress (%v)", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var sc *suppressCase
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "build" && sc == nil {
					td.Fatalf(t, "no build command before it")
				}
				switch td.Cmd {
				case "build":
					if len(td.Args) == 0 {
						td.Fatalf(t, "no topology")
					}
					build, ok := suppressTopologies[td.Args[0]]
					if !ok {
						td.Fatalf(t, "unknown topology %q", td.Args[0])
					}
					b := dsl.NewBuilder()
					outs := build(t, td, b)
					d, _ := opsDriver(t, b, testdriver.WithRecordCache(1<<20))
					kind, _ := td.Arg("kind")
					sc = &suppressCase{d: d, outputs: map[string]func() []string{}, sortRaw: kind == "sliding"}
					for _, o := range outs {
						// The counting topologies write counts, the others strings.
						if td.Args[0] == "windows" {
							keys := window.SessionKeySerde(serde.String)
							if kind, _ := td.Arg("kind"); kind != "session" {
								sizeArg := "size"
								if kind == "sliding" {
									sizeArg = "diff"
								}
								size := suppressDuration(t, td, sizeArg)
								keys = window.TimeKeySerde(serde.String, size)
							}
							out := testdriver.CreateOutputTopic(d, o, keys, serde.Int64)
							sc.outputs[o] = func() []string {
								rs, err := out.ReadRecords()
								opsOK(t, err)
								var got []string
								for _, r := range rs {
									v := "<null>"
									if !r.Tombstone {
										v = strconv.FormatInt(r.Value, 10)
									}
									got = append(got, fmt.Sprintf("%s=%s@%d", windowedString(r.Key), v, r.Timestamp))
								}
								return got
							}
						} else if td.Args[0] == "counts" || td.Args[0] == "groupby" {
							out := testdriver.CreateOutputTopic(d, o, serde.String, serde.Int64)
							sc.outputs[o] = func() []string { return opsRead(t, out) }
						} else {
							out := testdriver.CreateOutputTopic(d, o, serde.String, serde.String)
							sc.outputs[o] = func() []string { return opsRead(t, out) }
						}
					}
					return ""
				case "in":
					if len(td.Args) < 2 {
						td.Fatalf(t, "want in <topic> <key>=<value>@<ts> [<header>:<value>...]")
					}
					r := parseTableRecord(t, td, sc.d, td.Args[1:])
					opsOK(t, testdriver.CreateInputTopic(sc.d, td.Args[0], serde.String, serde.Bytes).PipeRecord(r))
					var lines []string
					for _, o := range slices.Sorted(maps.Keys(sc.outputs)) {
						rs := sc.outputs[o]()
						if sc.sortRaw && o == "output-raw" {
							slices.Sort(rs)
						}
						for _, r := range rs {
							lines = append(lines, o+" "+r)
						}
					}
					return strings.Join(lines, "\n")
				}
				td.Fatalf(t, "unknown command")
				return ""
			})
		})
	}
}
