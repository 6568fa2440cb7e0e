package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/nodes"
)

// graphNode is one node of a hand-built graph: "source NAME topic",
// "sink NAME topic" or "proc NAME store,store"; then "< PARENT,PARENT".
type graphNode struct {
	line    string
	parents string
}

// buildGraph compiles the nodes, created in the order given.
func buildGraph(t *testing.T, internal map[string]bool, spec []graphNode) *Topology {
	t.Helper()
	noop := func(nodes.Context, []any) (any, error) { return nil, nil }
	byName := map[string]*Node{}
	var all []*Node
	storeSeen := map[string]bool{}
	var stores []*StoreSpec
	for _, g := range spec {
		f := strings.Fields(g.line)
		n := &Node{Name: f[1], New: noop}
		switch f[0] {
		case "source":
			n.Kind, n.Topics, n.Internal = Source, []string{f[2]}, internal[f[2]]
		case "sink":
			n.Kind, n.Topics, n.Internal = Sink, []string{f[2]}, internal[f[2]]
		case "proc":
			n.Kind = Processor
			if len(f) > 2 {
				n.Stores = strings.Split(f[2], ",")
				for _, s := range n.Stores {
					if !storeSeen[s] {
						storeSeen[s] = true
						stores = append(stores, &StoreSpec{Name: s, Kind: KeyValue})
					}
				}
			}
		}
		if g.parents != "" {
			for _, p := range strings.Split(g.parents, ",") {
				parent, ok := byName[p]
				if !ok {
					t.Fatalf("node %s: parent %s not defined before it", n.Name, p)
				}
				parent.AddChild(n)
			}
		}
		byName[n.Name] = n
		all = append(all, n)
	}
	topo, err := Compile(all, stores)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// The successor and predecessor lists of join graphs, built by hand with
// the names Kafka Streams gives them, are printed as Kafka Streams 4.3.1
// prints them (its describe() output is the golden file, written by
// compat/java/DescribeTopologies.java): the merge node of a join lists
// JOINTHIS before JOINOTHER although both have the same sub-tree size and
// name order says otherwise, because Kafka Streams sorts while sizes grow.
func TestDescribeJoinGraphsAsKafkaStreams(t *testing.T) {
	const (
		s0, s1   = "KSTREAM-SOURCE-0000000000", "KSTREAM-SOURCE-0000000001"
		thisSt   = "KSTREAM-JOINTHIS-0000000004-store"
		otherSt  = "KSTREAM-JOINOTHER-0000000005-store"
		leftSt   = "left-STATE-STORE-0000000000"
		rightSt  = "right-STATE-STORE-0000000003"
		repTopic = "KSTREAM-KEY-SELECT-0000000002-repartition"
	)
	tableJoin := func(join, merge string) []graphNode {
		return []graphNode{
			{line: "source KSTREAM-SOURCE-0000000001 left"},
			{line: "proc KTABLE-SOURCE-0000000002 " + leftSt, parents: "KSTREAM-SOURCE-0000000001"},
			{line: "source KSTREAM-SOURCE-0000000004 right"},
			{line: "proc KTABLE-SOURCE-0000000005 " + rightSt, parents: "KSTREAM-SOURCE-0000000004"},
			{line: "proc KTABLE-" + join + "THIS-0000000007 " + rightSt, parents: "KTABLE-SOURCE-0000000002"},
			{line: "proc KTABLE-" + join + "OTHER-0000000008 " + leftSt, parents: "KTABLE-SOURCE-0000000005"},
			{line: "proc " + merge, parents: "KTABLE-" + join + "THIS-0000000007,KTABLE-" + join + "OTHER-0000000008"},
		}
	}
	tests := []struct {
		golden   string
		internal map[string]bool
		graph    []graphNode
	}{
		{golden: "stream-stream-join", graph: []graphNode{
			{line: "source " + s0 + " left"},
			{line: "source " + s1 + " right"},
			{line: "proc KSTREAM-WINDOWED-0000000002 " + thisSt, parents: s0},
			{line: "proc KSTREAM-WINDOWED-0000000003 " + otherSt, parents: s1},
			{line: "proc KSTREAM-JOINTHIS-0000000004 " + otherSt, parents: "KSTREAM-WINDOWED-0000000002"},
			{line: "proc KSTREAM-JOINOTHER-0000000005 " + thisSt, parents: "KSTREAM-WINDOWED-0000000003"},
			{line: "proc KSTREAM-MERGE-0000000006", parents: "KSTREAM-JOINTHIS-0000000004,KSTREAM-JOINOTHER-0000000005"},
			{line: "sink KSTREAM-SINK-0000000007 joined", parents: "KSTREAM-MERGE-0000000006"},
		}},
		{golden: "stream-stream-outerjoin", graph: []graphNode{
			{line: "source " + s0 + " left"},
			{line: "source " + s1 + " right"},
			{line: "proc KSTREAM-WINDOWED-0000000002 KSTREAM-OUTERTHIS-0000000004-store", parents: s0},
			{line: "proc KSTREAM-WINDOWED-0000000003 KSTREAM-OUTEROTHER-0000000005-store", parents: s1},
			{line: "proc KSTREAM-OUTERTHIS-0000000004 KSTREAM-OUTEROTHER-0000000005-store,KSTREAM-OUTERSHARED-0000000004-store", parents: "KSTREAM-WINDOWED-0000000002"},
			{line: "proc KSTREAM-OUTEROTHER-0000000005 KSTREAM-OUTERTHIS-0000000004-store,KSTREAM-OUTERSHARED-0000000004-store", parents: "KSTREAM-WINDOWED-0000000003"},
			{line: "proc KSTREAM-MERGE-0000000006", parents: "KSTREAM-OUTERTHIS-0000000004,KSTREAM-OUTEROTHER-0000000005"},
			{line: "sink KSTREAM-SINK-0000000007 joined", parents: "KSTREAM-MERGE-0000000006"},
		}},
		{golden: "stream-stream-join-named", graph: []graphNode{
			{line: "source " + s0 + " left"},
			{line: "source " + s1 + " right"},
			{line: "proc pair-this-windowed pair-store-this-join-store", parents: s0},
			{line: "proc pair-other-windowed pair-store-other-join-store", parents: s1},
			{line: "proc pair-this-join pair-store-other-join-store", parents: "pair-this-windowed"},
			{line: "proc pair-other-join pair-store-this-join-store", parents: "pair-other-windowed"},
			{line: "proc pair-merge", parents: "pair-this-join,pair-other-join"},
			{line: "sink KSTREAM-SINK-0000000007 joined", parents: "pair-merge"},
		}},
		{golden: "stream-stream-self-join", graph: []graphNode{
			{line: "source " + s0 + " events"},
			{line: "proc KSTREAM-WINDOWED-0000000001 KSTREAM-JOINTHIS-0000000003-store", parents: s0},
			{line: "proc KSTREAM-WINDOWED-0000000002 KSTREAM-JOINOTHER-0000000004-store", parents: s0},
			{line: "proc KSTREAM-JOINTHIS-0000000003 KSTREAM-JOINOTHER-0000000004-store", parents: "KSTREAM-WINDOWED-0000000001"},
			{line: "proc KSTREAM-JOINOTHER-0000000004 KSTREAM-JOINTHIS-0000000003-store", parents: "KSTREAM-WINDOWED-0000000002"},
			{line: "proc KSTREAM-MERGE-0000000005", parents: "KSTREAM-JOINTHIS-0000000003,KSTREAM-JOINOTHER-0000000004"},
			{line: "sink KSTREAM-SINK-0000000006 joined", parents: "KSTREAM-MERGE-0000000005"},
		}},
		{golden: "stream-stream-join-rekeyed", internal: map[string]bool{repTopic: true}, graph: []graphNode{
			{line: "source " + s0 + " left"},
			{line: "source " + s1 + " right"},
			{line: "proc KSTREAM-KEY-SELECT-0000000002", parents: s0},
			{line: "proc KSTREAM-FILTER-0000000004", parents: "KSTREAM-KEY-SELECT-0000000002"},
			{line: "sink KSTREAM-SINK-0000000003 " + repTopic, parents: "KSTREAM-FILTER-0000000004"},
			{line: "source KSTREAM-SOURCE-0000000005 " + repTopic},
			{line: "proc KSTREAM-WINDOWED-0000000006 KSTREAM-JOINTHIS-0000000008-store", parents: "KSTREAM-SOURCE-0000000005"},
			{line: "proc KSTREAM-WINDOWED-0000000007 KSTREAM-JOINOTHER-0000000009-store", parents: s1},
			{line: "proc KSTREAM-JOINTHIS-0000000008 KSTREAM-JOINOTHER-0000000009-store", parents: "KSTREAM-WINDOWED-0000000006"},
			{line: "proc KSTREAM-JOINOTHER-0000000009 KSTREAM-JOINTHIS-0000000008-store", parents: "KSTREAM-WINDOWED-0000000007"},
			{line: "proc KSTREAM-MERGE-0000000010", parents: "KSTREAM-JOINTHIS-0000000008,KSTREAM-JOINOTHER-0000000009"},
			{line: "sink KSTREAM-SINK-0000000011 joined", parents: "KSTREAM-MERGE-0000000010"},
		}},
		// Kafka Streams names the nodes of a table-table outer join
		// KTABLE-JOINTHIS/-JOINOTHER too.
		{golden: "table-table-outerjoin", graph: append(tableJoin("JOIN", "KTABLE-MERGE-0000000006"),
			graphNode{line: "proc KTABLE-TOSTREAM-0000000009", parents: "KTABLE-MERGE-0000000006"},
			graphNode{line: "sink KSTREAM-SINK-0000000010 joined", parents: "KTABLE-TOSTREAM-0000000009"},
		)},
		{golden: "table-table-join-filter-group-count", internal: map[string]bool{"KTABLE-AGGREGATE-STATE-STORE-0000000011-repartition": true},
			graph: append(tableJoin("JOIN", "KTABLE-MERGE-0000000006"),
				graphNode{line: "proc KTABLE-FILTER-0000000009", parents: "KTABLE-MERGE-0000000006"},
				graphNode{line: "proc KTABLE-SELECT-0000000010", parents: "KTABLE-FILTER-0000000009"},
				graphNode{line: "sink KSTREAM-SINK-0000000012 KTABLE-AGGREGATE-STATE-STORE-0000000011-repartition", parents: "KTABLE-SELECT-0000000010"},
				graphNode{line: "source KSTREAM-SOURCE-0000000013 KTABLE-AGGREGATE-STATE-STORE-0000000011-repartition"},
				graphNode{line: "proc KTABLE-AGGREGATE-0000000014 KTABLE-AGGREGATE-STATE-STORE-0000000011", parents: "KSTREAM-SOURCE-0000000013"},
				graphNode{line: "proc KTABLE-TOSTREAM-0000000015", parents: "KTABLE-AGGREGATE-0000000014"},
				graphNode{line: "sink KSTREAM-SINK-0000000016 counts", parents: "KTABLE-TOSTREAM-0000000015"},
			)},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			topo := buildGraph(t, tc.internal, tc.graph)
			want, err := os.ReadFile(filepath.Join("..", "dsl", "testdata", "describe", tc.golden+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			if got := topo.Describe(); got != string(want) {
				t.Errorf("Describe() differs from Kafka Streams'\n--- got:\n%s\n--- want:\n%s", got, want)
			}
		})
	}
}

// With a comparator that does not change, the replayed TreeSet is a
// sorted set, and its tree keeps the red-black invariants (a red node has
// black children; every path from the root has as many black nodes).
func TestJavaTreeSetSorted(t *testing.T) {
	var ns []*Node
	for i := 0; i < 200; i++ {
		ns = append(ns, &Node{Name: string(rune('a'+(i*37)%26)) + strings.Repeat("x", (i*53)%17) + string(rune('A'+i%26))})
	}
	set := &javaTreeSet{cmp: func(a, b *Node) int { return javaCompareStrings(a.Name, b.Name) }}
	seen := map[string]bool{}
	for _, n := range ns {
		set.add(n)
		seen[n.Name] = true
	}
	got := set.nodes()
	if len(got) != len(seen) {
		t.Fatalf("set holds %d nodes, want %d distinct", len(got), len(seen))
	}
	for i := 1; i < len(got); i++ {
		if javaCompareStrings(got[i-1].Name, got[i].Name) >= 0 {
			t.Fatalf("not sorted at %d: %q before %q", i, got[i-1].Name, got[i].Name)
		}
	}
	var blackHeight func(e *javaTreeEntry) int
	blackHeight = func(e *javaTreeEntry) int {
		if e == nil {
			return 1
		}
		if !e.black && (!isBlack(e.left) || !isBlack(e.right)) {
			t.Fatalf("red node %s has a red child", e.n.Name)
		}
		l, r := blackHeight(e.left), blackHeight(e.right)
		if l != r {
			t.Fatalf("node %s: black heights %d and %d differ", e.n.Name, l, r)
		}
		if e.black {
			return l + 1
		}
		return l
	}
	if !set.root.black {
		t.Fatal("red root")
	}
	blackHeight(set.root)
}

// javaHashMapOrder is the key order of a java.util.HashMap filled one by
// one, its table growing past 12 and 24 entries; the orders below are
// what Java 17 prints for HashMap.keySet() of KSTREAM-NODE-%010d, 0..n-1.
func TestJavaHashMapOrder(t *testing.T) {
	java := map[int]string{
		12: "3 4 5 6 10 0 11 1 2 7 8 9",
		13: "3 4 5 6 10 0 11 1 12 2 7 8 9",
		30: "3 25 4 26 5 27 6 28 21 0 22 1 23 2 24 20 7 29 8 9 14 15 16 17 10 11 12 13 18 19",
	}
	for n, want := range java {
		var ss []string
		for i := 0; i < n; i++ {
			ss = append(ss, fmt.Sprintf("KSTREAM-NODE-%010d", i))
		}
		var got []string
		for _, s := range javaHashMapOrder(ss) {
			i, _ := strconv.Atoi(strings.TrimPrefix(s, "KSTREAM-NODE-"))
			got = append(got, strconv.Itoa(i))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%d names: got %s, want %s", n, strings.Join(got, " "), want)
		}
	}
}
