package dsl_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// The golden files in testdata/describe/ are written by Kafka Streams 4.3.1
// itself: compat/java/DescribeTopologies.java builds each pipeline with
// StreamsBuilder and writes topology.describe().toString() to
// testdata/describe/<name>.txt (make describe-golden; make test-kafka fails
// when the committed files differ from what it writes). The pipelines below
// build the same topologies with Sluice's DSL, one call for each of the
// Java program's, and their Describe() must equal Kafka Streams' byte for
// byte: generated node, store and internal topic names included. The
// header of DescribeTopologies.java lists the Sluice calls of every
// pipeline.
//
// describeWaiting lists golden files whose Sluice side waits for an API
// that is not there yet, with what they wait for; a golden file must be
// compared (describePipelines) or listed here. Every golden file of issue
// 10 is compared now.
var describeWaiting = map[string]string{}

// joinStrings is the joiner of the pipelines below (Kafka Streams' side:
// (a, b) -> a + "," + b).
func joinStrings(_ string, a, b string) string { return a + "," + b }

// describeJoinWindows are the stream-stream joins' windows (Kafka Streams'
// side: JoinWindows.ofTimeDifferenceAndGrace(5 minutes, 1 minute)).
var describeJoinWindows = window.JoinTimeDifferenceAndGrace(5*time.Minute, time.Minute)

func streamJoinInput(b *dsl.Builder, topic string) dsl.Stream[string, string] {
	return dsl.FromTopic(b, topic, serde.String, serde.String)
}

func leftJoinStrings(_ dsl.Maybe[string], a string, b dsl.Maybe[string]) string {
	return a + "," + b.Or("null")
}

func outerJoinStrings(_, a, b dsl.Maybe[string]) string {
	return a.Or("null") + "," + b.Or("null")
}

// describePipelines builds, for each golden file of testdata/describe/, the
// pipeline DescribeTopologies.java builds under that name.
var describePipelines = map[string]func(b *dsl.Builder){
	"stream-table-join-grace": func(b *dsl.Builder) {
		orders := streamJoinInput(b, "orders")
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
			dsl.Materialized(dsl.StoreOptions{Name: "users-versioned", HistoryRetention: 5 * time.Minute}))
		dsl.JoinTable(orders, users, joinStrings, dsl.JoinGrace(time.Minute)).To("orders-enriched", serde.String, serde.String)
	},
	"stream-table-leftjoin-grace-named": func(b *dsl.Builder) {
		orders := streamJoinInput(b, "orders")
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
			dsl.Materialized(dsl.StoreOptions{Name: "users-versioned", HistoryRetention: 5 * time.Minute})).
			Filter(func(_, v string) bool { return v != "" })
		dsl.LeftJoinTable(orders, users, leftJoinStrings, dsl.JoinGrace(time.Minute), dsl.Named("enrich")).To("orders-enriched", serde.String, serde.String)
	},
	"table-table-join": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableJoin(l, r, joinStrings, serde.String).ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-leftjoin": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableLeftJoin(l, r, func(k, a string, o dsl.Maybe[string]) string { return joinStrings(k, a, o.Or("null")) }, serde.String).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-outerjoin": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableOuterJoin(l, r, func(k string, a, o dsl.Maybe[string]) string { return joinStrings(k, a.Or("null"), o.Or("null")) }, serde.String).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-join-materialized": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableJoin(l, r, joinStrings, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "joined-store"})).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-leftjoin-named-materialized": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableLeftJoin(l, r, func(k, a string, o dsl.Maybe[string]) string { return joinStrings(k, a, o.Or("null")) }, serde.String,
			dsl.Named("pair"), dsl.Materialized(dsl.StoreOptions{Name: "joined-store"})).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-outerjoin-materialized": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableOuterJoin(l, r, func(k string, a, o dsl.Maybe[string]) string { return joinStrings(k, a.Or("null"), o.Or("null")) }, serde.String,
			dsl.Materialized(dsl.StoreOptions{Name: "joined-store"})).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-join-filter-mapvalues": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		dsl.TableJoin(l.Filter(func(_, v string) bool { return v != "" }), dsl.TableMapValues(r, strings.ToUpper, serde.String), joinStrings, serde.String).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-join-filter-group-count": func(b *dsl.Builder) {
		l, r := dsl.TableFromTopic(b, "left", serde.String, serde.String), dsl.TableFromTopic(b, "right", serde.String, serde.String)
		j := dsl.TableJoin(l, r, joinStrings, serde.String).Filter(func(_, v string) bool { return v != "" })
		dsl.TableGroupBy(j, func(k, v string) (dsl.Maybe[string], string) { return dsl.Some(v), k }, serde.String, serde.String).Count().
			ToStream().To("counts", serde.String, serde.Int64)
	},
	"table-table-fk-join": func(b *dsl.Builder) {
		orders, customers := dsl.TableFromTopic(b, "orders", serde.String, serde.String), dsl.TableFromTopic(b, "customers", serde.String, serde.String)
		dsl.TableJoinForeignKey(orders, customers, orderCustomer, joinStrings, serde.String).ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-fk-leftjoin-named-materialized": func(b *dsl.Builder) {
		orders, customers := dsl.TableFromTopic(b, "orders", serde.String, serde.String), dsl.TableFromTopic(b, "customers", serde.String, serde.String)
		dsl.TableLeftJoinForeignKey(orders, customers, orderCustomer, func(k, a string, o dsl.Maybe[string]) string { return joinStrings(k, a, o.Or("null")) },
			serde.String, dsl.Named("enrich"), dsl.Materialized(dsl.StoreOptions{Name: "enriched-store"})).
			ToStream().To("joined", serde.String, serde.String)
	},
	"table-table-fk-join-group-count": func(b *dsl.Builder) {
		orders, customers := dsl.TableFromTopic(b, "orders", serde.String, serde.String), dsl.TableFromTopic(b, "customers", serde.String, serde.String)
		j := dsl.TableJoinForeignKey(orders, customers, orderCustomer, joinStrings, serde.String)
		dsl.TableGroupBy(j, func(k, v string) (dsl.Maybe[string], string) { return dsl.Some(v), k }, serde.String, serde.String).Count().
			ToStream().To("counts", serde.String, serde.Int64)
	},
	"wordcount":         wordCountPipeline,
	"split-merge-table": splitMergeTablePipeline,
	"wordcount-grouped-named": func(b *dsl.Builder) {
		lines := dsl.FromTopic(b, "input", serde.String, serde.String)
		words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
			for _, w := range strings.Fields(line) {
				emit(w)
			}
		})
		dsl.GroupBy(words, func(_, w string) string { return w }, serde.String, dsl.Named("by-word")).Count().
			ToStream().To("output", serde.String, serde.Int64)
	},
	"table-groupby-named": func(b *dsl.Builder) {
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		dsl.TableGroupBy(users, func(user, region string) (dsl.Maybe[string], string) { return dsl.Some(region), user },
			serde.String, serde.String, dsl.Named("by-region")).Count().
			ToStream().To("region-counts", serde.String, serde.Int64)
	},
	"stream-repartition": func(b *dsl.Builder) {
		dsl.FromTopic(b, "input", serde.String, serde.String).Repartition().
			Repartition(dsl.Named("by-key"), dsl.Partitions(3)).To("output", serde.String, serde.String)
	},
	"stream-aggregations": func(b *dsl.Builder) {
		g := dsl.FromTopic(b, "input", serde.String, serde.String).GroupByKey()
		g.Reduce(func(a, v string) string { return a + v }, dsl.Materialized(dsl.StoreOptions{Name: "reduced"})).
			ToStream().To("reduced", serde.String, serde.String)
		dsl.Aggregate(g, func() int64 { return 0 }, func(_, v string, a int64) int64 { return a + int64(len(v)) }, serde.Int64).
			ToStream().To("aggregated", serde.String, serde.Int64)
		g.Count(dsl.Named("counted")).ToStream().To("counted", serde.String, serde.Int64)
	},
	"session-and-sliding": func(b *dsl.Builder) {
		g := dsl.FromTopic(b, "input", serde.String, serde.String).GroupByKey()
		dsl.WindowedBySession(g, window.Session{Gap: 5 * time.Minute, Grace: time.Minute}).Count().
			ToStream().To("sessions", nil, serde.Int64)
		dsl.WindowedBySliding(g, window.Sliding{TimeDifference: time.Minute, Grace: 10 * time.Second}).
			Reduce(func(a, v string) string { return a + v }).
			ToStream().To("sliding", nil, serde.String)
	},
	"table-operations": func(b *dsl.Builder) {
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		active := users.Filter(func(_, v string) bool { return v != "" }, dsl.Materialized(dsl.StoreOptions{Name: "active"}))
		upper := dsl.TableMapValues(active, strings.ToUpper, serde.String, dsl.Named("upper"))
		upper.FilterNot(func(_, v string) bool { return strings.HasPrefix(v, "X") }).
			ToStream().To("users-out", serde.String, serde.String)
		dsl.TableGroupBy(users, func(k, v string) (dsl.Maybe[string], string) { return dsl.Some(v), k }, serde.String, serde.String).
			Reduce(func(a, v string) string { return a + v }, func(a, _ string) string { return a }, dsl.Materialized(dsl.StoreOptions{Name: "reduced"})).
			ToStream().To("reduced", serde.String, serde.String)
	},
	"windowed-count-final": func(b *dsl.Builder) {
		clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
		g := dsl.SelectKey(clicks, func(_, v string) string { return v }).GroupByKey()
		dsl.WindowedBy(g, window.Tumbling(time.Minute, 10*time.Second)).EmitFinal().Count().
			ToStream().To("region-clicks", nil, serde.Int64)
	},
	"stream-table-join": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		dsl.JoinTable(orders, users, joinStrings).To("orders-enriched", serde.String, serde.String)
	},
	"stream-table-leftjoin": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		dsl.LeftJoinTable(orders, users, func(_ dsl.Maybe[string], o string, u dsl.Maybe[string]) string { return o }).
			To("orders-enriched", serde.String, serde.String)
	},
	"stream-table-join-rekeyed": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		rekeyed := dsl.SelectKey(orders, func(_, v string) string { return v })
		dsl.JoinTable(rekeyed, users, joinStrings).To("orders-enriched", serde.String, serde.String)
	},
	"stream-table-leftjoin-rekeyed-named": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		rekeyed := dsl.SelectKey(orders, func(_, v string) string { return v })
		dsl.LeftJoinTable(rekeyed, users, func(_ dsl.Maybe[string], o string, u dsl.Maybe[string]) string { return o }, dsl.Named("enrich")).
			To("orders-enriched", serde.String, serde.String)
	},
	// The pipeline of examples/clickstream.
	"suppress-window-final": func(b *dsl.Builder) {
		dsl.WindowedBy(dsl.FromTopic(b, "clicks", serde.String, serde.String).GroupByKey(), window.Tumbling(time.Minute, 10*time.Second)).Count().
			Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{})).
			ToStream().To("final-counts", window.TimeKeySerde(serde.String, time.Minute), serde.Int64)
	},
	"suppress-time-limit-named": func(b *dsl.Builder) {
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		dsl.TableGroupBy(users, func(k, v string) (dsl.Maybe[string], string) { return dsl.Some(v), k }, serde.String, serde.String).Count().
			Suppress(dsl.UntilTimeLimit(time.Minute, dsl.BufferConfig{MaxRecords: 100}).WithName("limited")).
			ToStream().To("region-counts", serde.String, serde.Int64)
	},
	"suppress-before-join": func(b *dsl.Builder) {
		l := dsl.TableFromTopic(b, "left", serde.String, serde.String)
		r := dsl.TableFromTopic(b, "right", serde.String, serde.String).Suppress(dsl.UntilTimeLimit(10*time.Millisecond, dsl.BufferConfig{}))
		dsl.TableOuterJoin(l, r, func(k string, a, o dsl.Maybe[string]) string { return joinStrings(k, a.Or("null"), o.Or("null")) }, serde.String).
			ToStream().To("joined", serde.String, serde.String)
	},
	"suppress-session-filter": func(b *dsl.Builder) {
		dsl.WindowedBySession(dsl.FromTopic(b, "input", serde.String, serde.String).GroupByKey(), window.Session{Gap: 5 * time.Minute, Grace: time.Minute}).Count().
			Filter(func(_ window.Windowed[string], n int64) bool { return n > 1 }).
			Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{MaxRecords: 1000, OnFull: dsl.ShutDownWhenFull})).
			ToStream().To("sessions", window.SessionKeySerde(serde.String), serde.Int64)
	},
	"clickstream": func(b *dsl.Builder) {
		users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
		pages := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String)
		clicks := streamJoinInput(b, "clicks")
		purchases := streamJoinInput(b, "purchases")
		enriched := dsl.LeftJoinGlobal(dsl.JoinTable(clicks, users, joinStrings), pages,
			func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) },
			func(_ dsl.Maybe[string], v string, gv dsl.Maybe[string]) string { return v + "," + gv.Or("null") })
		enriched.To("clicks-enriched", serde.String, serde.String)
		counts := dsl.WindowedBy(dsl.SelectKey(enriched, func(_, v string) string { return v }).GroupByKey(),
			window.Tumbling(time.Minute, 10*time.Second)).EmitFinal().Count()
		dsl.Map(counts.ToStream(), func(w window.Windowed[string], n int64) (string, string) {
			return w.Key, fmt.Sprintf("%d,%d", w.Window.Start, n)
		}).To("region-clicks", serde.String, serde.String)
		w := window.JoinTimeDifferenceAndGrace(10*time.Minute, time.Minute).WithBefore(10 * time.Minute).WithAfter(0)
		dsl.Join(purchases, clicks, joinStrings, w).To("attributed-purchases", serde.String, serde.String)
	},
	"stream-stream-join": func(b *dsl.Builder) {
		dsl.Join(streamJoinInput(b, "left"), streamJoinInput(b, "right"), joinStrings, describeJoinWindows).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-leftjoin": func(b *dsl.Builder) {
		dsl.LeftJoin(streamJoinInput(b, "left"), streamJoinInput(b, "right"), leftJoinStrings, describeJoinWindows).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-outerjoin": func(b *dsl.Builder) {
		dsl.OuterJoin(streamJoinInput(b, "left"), streamJoinInput(b, "right"), outerJoinStrings, describeJoinWindows).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-join-before-after": func(b *dsl.Builder) {
		w := window.JoinTimeDifferenceAndGrace(10*time.Minute, time.Minute).WithBefore(10 * time.Minute).WithAfter(0)
		dsl.Join(streamJoinInput(b, "left"), streamJoinInput(b, "right"), joinStrings, w).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-join-named": func(b *dsl.Builder) {
		dsl.Join(streamJoinInput(b, "left"), streamJoinInput(b, "right"), joinStrings, describeJoinWindows,
			dsl.Named("pair"), dsl.StreamJoined(dsl.StreamJoinOptions{StoreName: "pair-store"})).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-leftjoin-stores": func(b *dsl.Builder) {
		dsl.LeftJoin(streamJoinInput(b, "left"), streamJoinInput(b, "right"), leftJoinStrings, describeJoinWindows,
			dsl.StreamJoined(dsl.StreamJoinOptions{StoreName: "pair-store"})).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-outerjoin-named": func(b *dsl.Builder) {
		dsl.OuterJoin(streamJoinInput(b, "left"), streamJoinInput(b, "right"), outerJoinStrings, describeJoinWindows,
			dsl.Named("pair")).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-join-rekeyed": func(b *dsl.Builder) {
		left, right := streamJoinInput(b, "left"), streamJoinInput(b, "right")
		dsl.Join(dsl.SelectKey(left, func(_, v string) string { return v }), right, joinStrings, describeJoinWindows).
			To("joined", serde.String, serde.String)
	},
	"stream-stream-self-join": func(b *dsl.Builder) {
		s := streamJoinInput(b, "events")
		dsl.Join(s, s, joinStrings, describeJoinWindows).To("joined", serde.String, serde.String)
	},
	"stream-table-join-count": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		totals := dsl.FromTopic(b, "payments", serde.String, serde.String).GroupByKey().
			Count(dsl.Materialized(dsl.StoreOptions{Name: "payments-per-user"}))
		dsl.JoinTable(orders, totals, func(_ string, o string, _ int64) string { return o }).
			To("orders-enriched", serde.String, serde.String)
	},
	"global-join": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		products := dsl.GlobalTableFromTopic(b, "products", serde.String, serde.String)
		dsl.JoinGlobal(orders, products, globalKeyIsValue, globalJoinStrings).To("orders-enriched", serde.String, serde.String)
	},
	"global-leftjoin": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		products := dsl.GlobalTableFromTopic(b, "products", serde.String, serde.String)
		dsl.LeftJoinGlobal(orders, products, globalKeyIsValue, func(_ dsl.Maybe[string], o string, p dsl.Maybe[string]) string { return o },
			dsl.Named("enrich")).To("orders-enriched", serde.String, serde.String)
	},
	"global-join-named-store": func(b *dsl.Builder) {
		orders := dsl.FromTopic(b, "orders", serde.String, serde.String)
		products := dsl.GlobalTableFromTopic(b, "products", serde.String, serde.String, dsl.Named("products"))
		dsl.JoinGlobal(orders, products, globalKeyIsValue, globalJoinStrings).To("orders-enriched", serde.String, serde.String)
	},
}

// globalKeyIsValue is the key selector of the global pipelines (Kafka
// Streams' side: (k, v) -> v).
func globalKeyIsValue(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) }

func globalJoinStrings(_ dsl.Maybe[string], a, b string) string { return a + "," + b }

// TestDescribeKafkaStreamsGolden compares Describe() of each pipeline with
// what Kafka Streams 4.3.1 prints for it.
func TestDescribeKafkaStreamsGolden(t *testing.T) {
	for name, build := range describePipelines {
		t.Run(name, func(t *testing.T) {
			b := dsl.NewBuilder()
			build(b)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "describe", name+".txt"))
			if err != nil {
				t.Fatalf("%v (the golden files are Kafka Streams' output: make describe-golden writes them)", err)
			}
			if got := topo.Describe(); got != string(want) {
				t.Errorf("Describe() differs from Kafka Streams 4.3.1's describe() of the same pipeline\n--- got:\n%s\n--- want (testdata/describe/%s.txt):\n%s", got, name, want)
			}
		})
	}
}

// TestDescribeKafkaStreamsGoldenCovered checks that every golden file
// Kafka Streams wrote is compared with a Sluice pipeline, or is listed as
// waiting for the API that will build it, and that no pipeline lacks its
// golden file.
func TestDescribeKafkaStreamsGoldenCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "describe", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		have = append(have, name)
		_, built := describePipelines[name]
		_, waiting := describeWaiting[name]
		switch {
		case built && waiting:
			t.Errorf("%s: both compared and listed in describeWaiting; remove it from describeWaiting", name)
		case !built && !waiting:
			t.Errorf("%s: golden file with no Sluice pipeline: add it to describePipelines", name)
		}
	}
	for name := range describePipelines {
		if !slices.Contains(have, name) {
			t.Errorf("%s: no golden file testdata/describe/%s.txt: add the pipeline to compat/java/DescribeTopologies.java and run make describe-golden", name, name)
		}
	}
	for name := range describeWaiting {
		if !slices.Contains(have, name) {
			t.Errorf("%s: listed in describeWaiting but has no golden file", name)
		}
	}
}

// orderCustomer is the foreign key of the Describe pipelines' orders: the
// value up to its first comma.
func orderCustomer(_, v string) dsl.Maybe[string] {
	c, _, _ := strings.Cut(v, ",")
	return dsl.Some(c)
}
