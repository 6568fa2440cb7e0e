package dsl_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", name, got, want)
	}
}

// wordCountPipeline is the word count of testdata/describe/wordcount.txt:
// stream("input").flatMapValues(..).groupBy(..)
// .count(Materialized.as("counts")).toStream().to("output") in Kafka Streams.
func wordCountPipeline(b *dsl.Builder) {
	lines := dsl.FromTopic(b, "input", serde.String, serde.String)
	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) {
		for _, w := range strings.Fields(line) {
			emit(strings.ToLower(w))
		}
	})
	counts := dsl.GroupBy(words, func(_, w string) string { return w }, serde.String).
		Count(dsl.Materialized(dsl.StoreOptions{Name: "counts"}))
	counts.ToStream().To("output", serde.String, serde.Int64)
}

func wordCountTopology(t testing.TB) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	wordCountPipeline(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// The word count's DOT and Mermaid renderings, and its internal topics: two
// sub-topologies joined by counts-repartition. (Its Describe() is compared
// with Kafka Streams' in TestDescribeKafkaStreamsGolden.)
func TestDescribeWordCount(t *testing.T) {
	topo := wordCountTopology(t)
	golden(t, "wordcount.dot", topo.DOT())
	golden(t, "wordcount.mermaid", topo.Mermaid())

	subs := topo.SubTopologies()
	if len(subs) != 2 {
		t.Fatalf("got %d sub-topologies, want 2", len(subs))
	}
	var got []string
	for _, it := range topo.InternalTopics() {
		got = append(got, it.Kind.String()+":"+it.Name+":"+it.Config["cleanup.policy"])
	}
	want := []string{"repartition:counts-repartition:delete", "changelog:counts-changelog:compact"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("internal topics = %v, want %v", got, want)
	}
}

// splitMergeTablePipeline has Split, Merge and a table aggregation: orders
// are split by size, the large ones flagged and merged back, written out,
// and a users table is regrouped by region and counted
// (testdata/describe/split-merge-table.txt).
func splitMergeTablePipeline(b *dsl.Builder) {
	orders := dsl.FromTopic(b, "orders", serde.String, serde.Int64)
	branches := orders.Split(dsl.Named("size-")).
		Branch("large", func(_ string, amount int64) bool { return amount >= 1000 }).
		DefaultBranch("small")
	large := dsl.MapValues(branches["size-large"], func(a int64) int64 { return -a })
	all := large.Merge(branches["size-small"])
	all.To("orders-flagged", serde.String, serde.Int64)

	users := dsl.TableFromTopic(b, "users", serde.String, serde.String, dsl.Named("users"))
	perRegion := dsl.TableGroupBy(users, func(user, region string) (dsl.Maybe[string], string) { return dsl.Some(region), user },
		serde.String, serde.String).Count(dsl.Named("users-per-region"))
	perRegion.ToStream().To("region-counts", serde.String, serde.Int64)
}

func TestDescribeSplitMergeTableAggregation(t *testing.T) {
	b := dsl.NewBuilder()
	splitMergeTablePipeline(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topo.SubTopologies()); n != 3 {
		t.Errorf("got %d sub-topologies, want 3 (orders; users up to the repartition; the regional count)", n)
	}
}
