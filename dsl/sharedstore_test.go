package dsl_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/topology"
)

// enrich looks each click's user up in the users table's store and
// forwards "page@country", or "page@?" for an unknown user.
type enrich struct {
	users dsl.Table[string, string]
	ctx   operators.ProcessorContext[string, string]
	store *dsl.TableStore[string, string]
}

func (p *enrich) Init(ctx operators.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	p.store, err = dsl.OpenTableStore(ctx, p.users)
	return err
}

func (p *enrich) Process(r operators.Record[string, string]) error {
	country, ts, ok, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	if !ok {
		country, ts = "?", -1
	}
	r.Value = fmt.Sprintf("%s@%s(%d)", r.Value, country, ts)
	return p.ctx.Forward(r)
}

func (p *enrich) Close() error { return nil }

// sharedStoreTopology reads users as a table and enriches clicks from the
// table's store in a user processor.
func sharedStoreTopology() *dsl.Builder {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String, dsl.Named("users"))
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.Process(clicks, func() operators.Processor[string, string, string, string] { return &enrich{users: users} },
		dsl.ConnectStores(users), dsl.Named("enrich")).To("enriched", serde.String, serde.String)
	return b
}

// A processor that reads a table's store joins the table's sub-topology
// (Kafka Streams merges node groups that share a store): Build succeeds,
// Describe shows one sub-topology holding both sources, the source topics
// form a co-partition group, and the processor sees the table's rows.
func TestProcessorReadsTableStoreOfAnotherSubTopology(t *testing.T) {
	topo, err := sharedStoreTopology().Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if n := len(topo.SubTopologies()); n != 1 {
		t.Fatalf("%d sub-topologies, want 1:\n%s", n, topo.Describe())
	}
	wantDescribe := `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000002 (topics: [clicks])
      --> enrich
    Processor: enrich (stores: [users])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-SOURCE-0000000002
    Source: users-source (topics: [users])
      --> users
    Sink: KSTREAM-SINK-0000000003 (topic: enriched)
      <-- enrich
    Processor: users (stores: [users])
      --> none
      <-- users-source

`
	if got := topo.Describe(); got != wantDescribe {
		t.Errorf("Describe:\n%s\nwant:\n%s", got, wantDescribe)
	}
	groups := topo.CoPartitionGroups()
	wantGroup := []topology.SourceTopic{{Name: "users"}, {Name: "clicks"}}
	if len(groups) != 1 || groups[0].SubTopology != 0 || !slices.Equal(groups[0].Topics, wantGroup) {
		t.Errorf("CoPartitionGroups = %+v, want one group of sub-topology 0 with %v", groups, wantGroup)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatalf("testdriver.New: %v", err)
	}
	defer d.Close()
	users := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	clicks := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "enriched", serde.String, serde.String)
	read := func() []string {
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Timestamp))
		}
		return got
	}
	step := func(what string, pipe func() error, want ...string) {
		t.Helper()
		if err := pipe(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := read(); !slices.Equal(got, append([]string{}, want...)) {
			t.Errorf("after %s: got %q, want %q", what, got, want)
		}
	}
	step("click of unknown alice", func() error { return clicks.PipeAt("alice", "/home", 5) }, "alice=/home@?(-1)@5")
	step("alice in NL", func() error { return users.PipeAt("alice", "NL", 7) })
	step("click of alice", func() error { return clicks.PipeAt("alice", "/cart", 9) }, "alice=/cart@NL(7)@9")
	step("alice moves to FR", func() error { return users.PipeAt("alice", "FR", 11) })
	step("click of alice", func() error { return clicks.PipeAt("alice", "/pay", 12) }, "alice=/pay@FR(11)@12")
	step("alice deleted", func() error { return users.PipeTombstone("alice", 13) })
	step("click of deleted alice", func() error { return clicks.PipeAt("alice", "/bye", 14) }, "alice=/bye@?(-1)@14")
}

// A table that is not materialized has no store to open.
func TestOpenTableStoreOfUnmaterializedTable(t *testing.T) {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String).Filter(func(string, string) bool { return true })
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	dsl.Process(clicks, func() operators.Processor[string, string, string, string] { return &enrich{users: users} }).
		To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	_, err = testdriver.New(topo)
	if err == nil || !strings.Contains(err.Error(), "has no store") || !strings.Contains(err.Error(), "KTABLE-FILTER") {
		t.Errorf("testdriver.New = %v, want an error saying the table of KTABLE-FILTER-... has no store", err)
	}
}
