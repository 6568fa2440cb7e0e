package dsl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// The descriptions below were printed by Kafka Streams 4.3.1 for the same
// pipelines (StreamsBuilder.globalTable, KStream.join/leftJoin with a
// GlobalKTable): a global store's sub-topology takes its ID in the order
// of its first node, is printed with no blank line after it, and the join
// lists no store.
func TestGlobalTableDescribe(t *testing.T) {
	concat := func(_ dsl.Maybe[string], v, gv string) string { return v + gv }
	self := func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{{
		// globalTable("pages") before stream("clicks"), inner join.
		name: "global first",
		build: func(b *dsl.Builder) {
			g := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String)
			s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
			dsl.JoinGlobal(s, g, self, concat).To("out", nil, nil)
		},
		want: `Topologies:
   Sub-topology: 0 for global store (will not generate tasks)
    Source: KSTREAM-SOURCE-0000000001 (topics: [pages])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [pages-STATE-STORE-0000000000])
      --> none
      <-- KSTREAM-SOURCE-0000000001
  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000003 (topics: [clicks])
      --> KSTREAM-LEFTJOIN-0000000004
    Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-SOURCE-0000000003
    Sink: KSTREAM-SINK-0000000005 (topic: out)
      <-- KSTREAM-LEFTJOIN-0000000004

`,
	}, {
		// stream, table, globalTable(Consumed.withName("pg"),
		// Materialized.as("pg")), globalTable(Materialized.as("cats-store")),
		// then join(table).leftJoin(g, Named.as("enrich")).join(g2).
		name: "named",
		build: func(b *dsl.Builder) {
			s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
			users := dsl.TableFromTopic(b, "users", serde.String, serde.String)
			pages := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.Named("pg"))
			cats := dsl.GlobalTableFromTopic(b, "cats", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "cats-store"}))
			j := dsl.JoinTable(s, users, func(_ string, v, u string) string { return v + u })
			l := dsl.LeftJoinGlobal(j, pages, self, func(_ dsl.Maybe[string], v string, gv dsl.Maybe[string]) string { return v }, dsl.Named("enrich"))
			dsl.JoinGlobal(l, cats, self, concat).To("out", nil, nil)
		},
		want: `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [clicks])
      --> KSTREAM-JOIN-0000000008
    Processor: KSTREAM-JOIN-0000000008 (stores: [users-STATE-STORE-0000000001])
      --> enrich
      <-- KSTREAM-SOURCE-0000000000
    Processor: enrich (stores: [])
      --> KSTREAM-LEFTJOIN-0000000010
      <-- KSTREAM-JOIN-0000000008
    Processor: KSTREAM-LEFTJOIN-0000000010 (stores: [])
      --> KSTREAM-SINK-0000000011
      <-- enrich
    Source: KSTREAM-SOURCE-0000000002 (topics: [users])
      --> KTABLE-SOURCE-0000000003
    Sink: KSTREAM-SINK-0000000011 (topic: out)
      <-- KSTREAM-LEFTJOIN-0000000010
    Processor: KTABLE-SOURCE-0000000003 (stores: [users-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000002

  Sub-topology: 1 for global store (will not generate tasks)
    Source: pg-source (topics: [pages])
      --> pg
    Processor: pg (stores: [pg])
      --> none
      <-- pg-source
  Sub-topology: 2 for global store (will not generate tasks)
    Source: KSTREAM-SOURCE-0000000006 (topics: [cats])
      --> KTABLE-SOURCE-0000000007
    Processor: KTABLE-SOURCE-0000000007 (stores: [cats-store])
      --> none
      <-- KSTREAM-SOURCE-0000000006
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			topo := opsBuild(t, b)
			if got := topo.Describe(); got != tc.want {
				t.Errorf("Describe:\n%s\nwant (Kafka Streams 4.3.1):\n%s", got, tc.want)
			}
			if got := topo.SourceTopics(); strings.Contains(strings.Join(got, ","), "pages") {
				t.Errorf("SourceTopics = %q: a global topic is not read by the group", got)
			}
			for _, it := range topo.InternalTopics() {
				if strings.HasPrefix(it.Name, "pg") || strings.HasPrefix(it.Name, "cats") || strings.HasPrefix(it.Name, "pages") {
					t.Errorf("internal topic %s: a global store has no changelog", it.Name)
				}
			}
		})
	}
}

// The graph renderings show a global store's sub-topology, and the join
// reading it.
func TestGlobalTableGraphs(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.Named("pages"))
	s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.JoinGlobal(s, g, func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) },
		func(_ dsl.Maybe[string], v, gv string) string { return gv }, dsl.Named("enrich")).To("out", nil, nil)
	topo := opsBuild(t, b)
	for _, want := range []string{`label="Sub-topology 0 (global store)"`, `"store:pages" [shape=cylinder`, `"store:pages" -> "enrich" [style=dotted]`} {
		if !strings.Contains(topo.DOT(), want) {
			t.Errorf("DOT has no %s:\n%s", want, topo.DOT())
		}
	}
	for _, want := range []string{`sub0["Sub-topology 0 (global store)"]`, `s_pages[("pages")]`, `s_pages -.-> n_enrich`} {
		if !strings.Contains(topo.Mermaid(), want) {
			t.Errorf("Mermaid has no %s:\n%s", want, topo.Mermaid())
		}
	}
}

// Build refuses what a global table cannot be, naming the node or store.
func TestGlobalTableBuildErrors(t *testing.T) {
	key := func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) }
	join := func(_ dsl.Maybe[string], v, gv string) string { return gv }
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{{
		name: "no serdes",
		build: func(b *dsl.Builder) {
			dsl.GlobalTableFromTopic[string, string](b, "pages", nil, nil)
		},
		want: "node KSTREAM-SOURCE-0000000001: global table source of pages needs a key and a value serde",
	}, {
		name: "changelog config",
		build: func(b *dsl.Builder) {
			dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String,
				dsl.Materialized(dsl.StoreOptions{Name: "p", ChangelogConfig: map[string]string{"segment.bytes": "1000"}}))
		},
		want: "node KTABLE-SOURCE-0000000001, store p: a global store has no changelog",
	}, {
		name: "timestamp extractor",
		build: func(b *dsl.Builder) {
			dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.WallClockTimestamps())
		},
		want: "node KSTREAM-SOURCE-0000000001: a global table's records keep their own timestamps",
	}, {
		name: "invalid-timestamp policy",
		build: func(b *dsl.Builder) {
			dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
		},
		want: "Timestamps, WallClockTimestamps and OnInvalidTimestamp do not apply",
	}, {
		name: "zero global table",
		build: func(b *dsl.Builder) {
			s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
			dsl.JoinGlobal(s, dsl.GlobalTable[string, string]{}, key, join).To("out", nil, nil)
		},
		want: "node KSTREAM-LEFTJOIN-0000000001: the global table joined with is the zero GlobalTable",
	}, {
		name: "other builder",
		build: func(b *dsl.Builder) {
			g := dsl.GlobalTableFromTopic(dsl.NewBuilder(), "pages", serde.String, serde.String)
			s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
			dsl.JoinGlobal(s, g, key, join).To("out", nil, nil)
		},
		want: "node KSTREAM-LEFTJOIN-0000000001: the global table pages-STATE-STORE-0000000000 belongs to another Builder",
	}, {
		name: "global topic also a stream",
		build: func(b *dsl.Builder) {
			dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String)
			dsl.FromTopic(b, "pages", serde.String, serde.String).To("out", nil, nil)
		},
		want: `topic "pages" is already read by source KSTREAM-SOURCE-0000000001`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A processor reads a global store without being connected to it
// (OpenGlobalTableStore), read-only; connecting it is refused, as Kafka
// Streams refuses it.
func TestGlobalTableStoreInProcessor(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.Named("pages"))
	s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.Process(s, func() operators.Processor[string, string, string, string] {
		var store *dsl.TableStore[string, string]
		return &operators.ProcessorFuncs[string, string, string, string]{
			InitFunc: func(ctx operators.ProcessorContext[string, string]) error {
				var err error
				store, err = dsl.OpenGlobalTableStore(ctx, g)
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				v, ts, ok, err := store.Get(r.Value)
				if err != nil {
					return err
				}
				r.Value = fmt.Sprintf("%s=%v/%s@%d", r.Value, ok, v, ts)
				return ctx.Forward(r)
			},
		}
	}).To("out", nil, nil)
	d, _ := opsDriver(t, b)
	pages := testdriver.CreateInputTopic(d, "pages", serde.String, serde.String)
	clicks := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	opsOK(t, pages.PipeAt("/home", "landing", 5))
	opsOK(t, clicks.PipeAt("c1", "/home", 10))
	opsOK(t, clicks.PipeAt("c2", "/none", 11))
	opsWant(t, "processor reading the global store", opsRead(t, out), []string{"c1=/home=true/landing@5@10", "c2=/none=false/@0@11"})

	// The driver reads the global store as any other.
	kv, err := testdriver.KeyValueStore(d, "pages", serde.String, serde.String)
	opsOK(t, err)
	if v, ok, err := kv.Get("/home"); err != nil || !ok || v != "landing" {
		t.Errorf("driver's view of the global store: %q %v %v", v, ok, err)
	}

	b = dsl.NewBuilder()
	g = dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.Named("pages"))
	dsl.Process(dsl.FromTopic(b, "clicks", serde.String, serde.String), func() operators.Processor[string, string, string, string] {
		return &operators.ProcessorFuncs[string, string, string, string]{}
	}, dsl.ConnectStores(g), dsl.Named("proc"))
	_, err = b.Build()
	if want := "node proc, store pages: a global store can be read by any processor without being connected to it"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Build with a global store connected = %v, want %q", err, want)
	}
}

// In the driver, what a sink of the topology writes to a global table's
// topic updates the global store before the pipe call returns, as a record
// piped into that topic does.
func TestGlobalTableWrittenByTopology(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String)
	dsl.FromTopic(b, "admin", serde.String, serde.String).To("pages", nil, nil)
	s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.LeftJoinGlobal(s, g, func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) },
		func(_ dsl.Maybe[string], v string, gv dsl.Maybe[string]) string { return v + "=" + gv.Or("?") }).To("out", nil, nil)
	d, _ := opsDriver(t, b)
	admin := testdriver.CreateInputTopic(d, "admin", serde.String, serde.String)
	clicks := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	opsOK(t, clicks.PipeAt("c1", "/home", 1))
	opsOK(t, admin.PipeAt("/home", "landing", 2))
	opsOK(t, clicks.PipeAt("c2", "/home", 3))
	opsWant(t, "joins before and after the topology wrote the global topic", opsRead(t, out), []string{"c1=/home=?@1", "c2=/home=landing@3"})
}

// A global table's rows keep their records' own timestamps, a negative one
// included, as Kafka Streams' global task stamps them: no extractor, no
// invalid-timestamp policy, and no stream time of the global store's.
func TestGlobalTableRecordTimestamps(t *testing.T) {
	b := dsl.NewBuilder()
	g := dsl.GlobalTableFromTopic(b, "pages", serde.String, serde.String, dsl.Named("pages"))
	s := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.JoinGlobal(s, g, func(_ dsl.Maybe[string], v string) dsl.Maybe[string] { return dsl.Some(v) },
		func(_ dsl.Maybe[string], v, gv string) string { return gv }).To("out", nil, nil)
	d, _ := opsDriver(t, b)
	pages := testdriver.CreateInputTopic(d, "pages", serde.String, serde.String)
	opsOK(t, pages.PipeAt("/old", "x", -1))
	opsOK(t, pages.PipeAt("/home", "landing", 42))
	opsWant(t, "global store", opsStore(t, d, "pages", serde.String, serde.String), []string{"/home=landing@42", "/old=x@-1"})
	if n := d.DroppedRecords("pages-source", "invalid-timestamp"); n != 0 {
		t.Errorf("dropped for an invalid timestamp: %d, want none", n)
	}
}
