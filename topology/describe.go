package topology

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Describe returns the topology in the layout of Kafka Streams'
// TopologyDescription.toString, so that a Kafka Streams user reads it at a
// glance and tools that parse that layout can read it:
//
//	Topologies:
//	   Sub-topology: 0
//	    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
//	      --> KSTREAM-FLATMAPVALUES-0000000001
//	    ...
//
// Nodes within a sub-topology are ordered as Kafka Streams orders them:
// larger sub-trees first, then by name. Topic and store lists follow the
// iteration order of Java's HashSet, as Kafka Streams prints them.
// Successor and predecessor lists are in the order Kafka Streams gives
// them: it sorts them the same way but while the graph description is
// still being built, so that a node with several parents or children (a
// join's merge node) can list them out of that order; Describe replays
// that construction (see javaorder.go).
// Internal topics are shown without the application ID prefix. A global
// store is printed in its place in ID order as "Sub-topology: N for global
// store (will not generate tasks)", and a node that reads it (a
// stream-global join) lists no store, as in Kafka Streams.
func (t *Topology) Describe() string {
	size := t.subtreeSizes()
	order := func(a, b *Node) int {
		if c := cmp.Compare(size[b], size[a]); c != 0 {
			return c
		}
		return javaCompareStrings(a.Name, b.Name)
	}
	names := func(ns []*Node) string {
		if len(ns) == 0 {
			return "none"
		}
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = n.Name
		}
		return strings.Join(out, ", ")
	}
	var sb strings.Builder
	sb.WriteString("Topologies:\n ")
	globals := t.globals
	for _, st := range t.subs {
		for len(globals) > 0 && globals[0].ID < st.ID {
			globals[0].describe(&sb)
			globals = globals[1:]
		}
		fmt.Fprintf(&sb, "  Sub-topology: %d\n", st.ID)
		succ, pred := describeLinks(st.Nodes)
		nodes := slices.Clone(st.Nodes)
		slices.SortFunc(nodes, order)
		for _, n := range nodes {
			switch n.Kind {
			case Source:
				fmt.Fprintf(&sb, "    Source: %s (topics: [%s])\n      --> %s\n", n.Name, strings.Join(javaHashSetOrder(n.Topics), ", "), names(succ[n]))
			case Processor:
				fmt.Fprintf(&sb, "    Processor: %s (stores: [%s])\n      --> %s\n      <-- %s\n", n.Name, strings.Join(javaHashSetOrder(n.Stores), ", "), names(succ[n]), names(pred[n]))
			case Sink:
				if len(n.Topics) == 0 {
					fmt.Fprintf(&sb, "    Sink: %s (extractor: topic chosen per record)\n      <-- %s\n", n.Name, names(pred[n]))
				} else {
					fmt.Fprintf(&sb, "    Sink: %s (topic: %s)\n      <-- %s\n", n.Name, n.Topics[0], names(pred[n]))
				}
			}
		}
		sb.WriteString("\n")
	}
	for _, g := range globals {
		g.describe(&sb)
	}
	return sb.String()
}

// describe prints a global store as Kafka Streams' GlobalStore.toString
// does: no blank line after it, unlike a sub-topology.
func (g *GlobalStore) describe(sb *strings.Builder) {
	fmt.Fprintf(sb, "  Sub-topology: %d for global store (will not generate tasks)\n", g.ID)
	fmt.Fprintf(sb, "    Source: %s (topics: [%s])\n      --> %s\n", g.Source.Name, g.Topic, g.Processor.Name)
	fmt.Fprintf(sb, "    Processor: %s (stores: [%s])\n      --> none\n      <-- %s\n", g.Processor.Name, g.Store.Name, g.Source.Name)
}

// subtreeSizes counts, for every node, the nodes of the sub-tree below it,
// itself included; a node reachable by several paths counts once per path,
// as in Kafka Streams.
func (t *Topology) subtreeSizes() map[*Node]int {
	size := make(map[*Node]int, len(t.nodes))
	var visit func(n *Node) int
	visit = func(n *Node) int {
		if s, ok := size[n]; ok {
			return s
		}
		s := 1
		for _, c := range n.Children {
			s += visit(c)
		}
		size[n] = s
		return s
	}
	for _, n := range t.nodes {
		visit(n)
	}
	return size
}

// javaHashSetOrder returns ss in the iteration order of a java.util.HashSet
// built from them (new HashSet<>(list)): by bucket of the spread
// String.hashCode, then insertion order within a bucket.
func javaHashSetOrder(ss []string) []string {
	if len(ss) < 2 {
		return ss
	}
	// HashSet(Collection c) sizes its map for max(c.size()/.75+1, 16).
	need := max(int(float64(len(ss))/0.75)+1, 16)
	capacity := 1
	for capacity < need {
		capacity <<= 1
	}
	return javaBucketOrder(ss, capacity)
}

// javaBucketOrder returns ss without duplicates in the iteration order of
// a java.util.HashMap with capacity buckets that they were put in, in
// order: by bucket of the spread String.hashCode, then insertion order.
func javaBucketOrder(ss []string, capacity int) []string {
	type entry struct {
		s      string
		bucket int
		i      int
	}
	seen := map[string]bool{}
	var es []entry
	for i, s := range ss {
		if seen[s] {
			continue
		}
		seen[s] = true
		var h int32
		for _, u := range utf16Units(s) {
			h = 31*h + int32(u)
		}
		spread := uint32(h) ^ (uint32(h) >> 16)
		es = append(es, entry{s: s, bucket: int(spread & uint32(capacity-1)), i: i})
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.bucket, b.bucket) })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.s
	}
	return out
}

func utf16Units(s string) []uint16 {
	var us []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			us = append(us, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			us = append(us, uint16(r))
		}
	}
	return us
}

// DOT renders the topology as a Graphviz digraph: a cluster per
// sub-topology, topics as ellipses, stores as cylinders.
func (t *Topology) DOT() string {
	var sb strings.Builder
	sb.WriteString("digraph topology {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n")
	topics := map[string]bool{}
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "  subgraph cluster_%d {\n    label=\"Sub-topology %d\";\n", st.ID, st.ID)
		for _, n := range st.Nodes {
			fmt.Fprintf(&sb, "    %q [label=%q];\n", n.Name, n.Kind.String()+"\\n"+n.Name)
		}
		for _, s := range st.Stores {
			fmt.Fprintf(&sb, "    %q [shape=cylinder, label=%q];\n", "store:"+s.Name, s.Name)
		}
		sb.WriteString("  }\n")
	}
	for _, g := range t.globals {
		fmt.Fprintf(&sb, "  subgraph cluster_%d {\n    label=\"Sub-topology %d (global store)\";\n", g.ID, g.ID)
		for _, n := range []*Node{g.Source, g.Processor} {
			fmt.Fprintf(&sb, "    %q [label=%q];\n", n.Name, n.Kind.String()+"\\n"+n.Name)
		}
		fmt.Fprintf(&sb, "    %q [shape=cylinder, label=%q];\n", "store:"+g.Store.Name, g.Store.Name)
		sb.WriteString("  }\n")
	}
	for _, n := range t.nodes {
		for _, c := range n.Children {
			fmt.Fprintf(&sb, "  %q -> %q;\n", n.Name, c.Name)
		}
		for _, s := range n.Stores {
			fmt.Fprintf(&sb, "  %q -> %q [dir=both, style=dashed];\n", n.Name, "store:"+s)
		}
		for _, s := range n.GlobalStores {
			fmt.Fprintf(&sb, "  %q -> %q [style=dotted];\n", "store:"+s, n.Name)
		}
		for _, tp := range n.Topics {
			id := "topic:" + tp
			if !topics[tp] {
				topics[tp] = true
				fmt.Fprintf(&sb, "  %q [shape=ellipse, label=%q];\n", id, tp)
			}
			if n.Kind == Source {
				fmt.Fprintf(&sb, "  %q -> %q;\n", id, n.Name)
			} else {
				fmt.Fprintf(&sb, "  %q -> %q;\n", n.Name, id)
			}
		}
	}
	sb.WriteString("}\n")
	return sb.String()
}

// Mermaid renders the topology as a Mermaid flowchart: a subgraph per
// sub-topology, topics as stadiums, stores as cylinders.
func (t *Topology) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TB\n")
	id := func(prefix, s string) string { return prefix + quoteID(s) }
	topics := map[string]bool{}
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "  subgraph sub%d[\"Sub-topology %d\"]\n", st.ID, st.ID)
		for _, n := range st.Nodes {
			fmt.Fprintf(&sb, "    %s[\"%s: %s\"]\n", id("n_", n.Name), n.Kind, n.Name)
		}
		for _, s := range st.Stores {
			fmt.Fprintf(&sb, "    %s[(\"%s\")]\n", id("s_", s.Name), s.Name)
		}
		sb.WriteString("  end\n")
	}
	for _, g := range t.globals {
		fmt.Fprintf(&sb, "  subgraph sub%d[\"Sub-topology %d (global store)\"]\n", g.ID, g.ID)
		for _, n := range []*Node{g.Source, g.Processor} {
			fmt.Fprintf(&sb, "    %s[\"%s: %s\"]\n", id("n_", n.Name), n.Kind, n.Name)
		}
		fmt.Fprintf(&sb, "    %s[(\"%s\")]\n", id("s_", g.Store.Name), g.Store.Name)
		sb.WriteString("  end\n")
	}
	for _, n := range t.nodes {
		for _, tp := range n.Topics {
			if !topics[tp] {
				topics[tp] = true
				fmt.Fprintf(&sb, "  %s([\"%s\"])\n", id("t_", tp), tp)
			}
			if n.Kind == Source {
				fmt.Fprintf(&sb, "  %s --> %s\n", id("t_", tp), id("n_", n.Name))
			} else {
				fmt.Fprintf(&sb, "  %s --> %s\n", id("n_", n.Name), id("t_", tp))
			}
		}
		for _, c := range n.Children {
			fmt.Fprintf(&sb, "  %s --> %s\n", id("n_", n.Name), id("n_", c.Name))
		}
		for _, s := range n.Stores {
			fmt.Fprintf(&sb, "  %s -.- %s\n", id("n_", n.Name), id("s_", s))
		}
		for _, s := range n.GlobalStores {
			fmt.Fprintf(&sb, "  %s -.-> %s\n", id("s_", s), id("n_", n.Name))
		}
	}
	return sb.String()
}
