package dsl_test

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
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
