// Package topology holds a compiled topology: the graph of source,
// processor and sink nodes that the DSL builds, split into sub-topologies at
// repartition topics, with its state stores and internal topics.
//
// A Topology is what runs: the runtime and the test driver create one task
// per sub-topology and input partition and instantiate each node of the
// sub-topology for that task. It is immutable once compiled and can be
// shared by any number of tasks and drivers.
//
// Sub-topologies are the connected parts of the graph, where nodes that
// share a state store count as connected (they must run in one task), as
// in Kafka Streams' node groups. The source topics of a sub-topology that
// keeps state form a co-partition group. What each store kind means for
// its changelog and layout is defined in stores.go.
//
// A global store (GlobalStore) is a sub-topology of its own that generates
// no task: a source of one topic and the processor writing one store,
// which every instance keeps whole. It is numbered with the other
// sub-topologies, in the order of its first node as Kafka Streams numbers
// node groups, but SubTopologies leaves it out, and its topic is not among
// SourceTopics. A node that reads it lists it in Node.GlobalStores.
//
// Describe prints the topology in the layout of Kafka Streams'
// TopologyDescription, so a Kafka Streams user reads it at a glance; DOT and
// Mermaid render it as a graph.
package topology

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/nodes"
)

// NodeKind says what a node does.
type NodeKind int

const (
	// Source nodes read topics and deserialize records.
	Source NodeKind = iota
	// Processor nodes transform, filter, aggregate.
	Processor
	// Sink nodes serialize records and write them to a topic.
	Sink
)

// String implements fmt.Stringer.
func (k NodeKind) String() string {
	switch k {
	case Source:
		return "Source"
	case Processor:
		return "Processor"
	case Sink:
		return "Sink"
	}
	return fmt.Sprintf("NodeKind(%d)", int(k))
}

// Factory instantiates a node for one task. children holds the instances of
// the node's children in the order of Node.Children; each is a nodes.Node
// of this node's output types. A source returns a nodes.RawProcessor; any
// other node returns a nodes.Node of its input types. An instance that also
// implements Closer is closed when the task closes. Factories are written
// by the dsl package: nodes.Context is internal, so a program outside the
// module cannot write one.
type Factory func(ctx nodes.Context, children []any) (any, error)

// Closer is implemented by node instances that hold resources.
type Closer interface {
	Close() error
}

// Node is one node of the topology graph.
type Node struct {
	// Name is unique in the topology.
	Name string
	Kind NodeKind
	// Topics are the topics a source reads, or the one topic a sink writes
	// (empty for a sink that chooses its topic per record).
	Topics []string
	// Internal marks topics that belong to the topology (repartition
	// topics): their Kafka names are prefixed with the application ID.
	Internal bool
	// Partitions is, for the sink of an internal topic, the partition count
	// asked for; 0 means that of the sub-topology that writes it.
	Partitions int32
	// Stores are the names of the state stores the node uses.
	Stores []string
	// Global marks the two nodes of a global store (see GlobalStore): the
	// source of its topic and the processor that writes the store.
	Global bool
	// GlobalStores are the names of the global stores the node reads (a
	// stream-global join). Unlike Stores they do not tie the node to the
	// store's sub-topology: every task of the instance reads the same
	// global store, which no task owns (Kafka Streams prints no store for
	// such a node either).
	GlobalStores []string
	// Parents and Children are the node's neighbours in the graph.
	Parents  []*Node
	Children []*Node
	// New instantiates the node for a task.
	New Factory
}

// AddChild links child below n.
func (n *Node) AddChild(child *Node) {
	n.Children = append(n.Children, child)
	child.Parents = append(child.Parents, n)
}

// TopicKind is the role of an internal topic.
type TopicKind int

const (
	// Repartition topics carry records between sub-topologies after a key
	// change.
	Repartition TopicKind = iota
	// Changelog topics back state stores.
	Changelog
)

// String implements fmt.Stringer.
func (k TopicKind) String() string {
	if k == Changelog {
		return "changelog"
	}
	return "repartition"
}

// InternalTopic is a topic the topology creates and owns.
type InternalTopic struct {
	// Name is the topic name without the "<application.id>-" prefix.
	Name string
	Kind TopicKind
	// Partitions is the number of partitions the user asked for, or 0 for
	// the number of partitions of the sub-topology that writes (repartition)
	// or owns (changelog) it.
	Partitions int32
	// SubTopology is the sub-topology that writes the topic.
	SubTopology int
	// Config holds the topic configs to create it with.
	Config map[string]string
}

// RepartitionTopicConfig returns the configs Kafka Streams creates
// repartition topics with.
func RepartitionTopicConfig() map[string]string {
	return map[string]string{
		"cleanup.policy":         "delete",
		"retention.ms":           "-1",
		"segment.bytes":          "52428800",
		"message.timestamp.type": "CreateTime",
	}
}

// SubTopology is a connected part of the topology: the nodes that run in one
// task.
type SubTopology struct {
	ID int
	// Nodes in the order they were created.
	Nodes []*Node
	// Sources are the source nodes, in creation order.
	Sources []*Node
	// Stores used by the nodes, in creation order.
	Stores []*StoreSpec
}

// SourceTopics lists the topics the sub-topology reads, in order.
func (st *SubTopology) SourceTopics() []string {
	var ts []string
	for _, n := range st.Sources {
		ts = append(ts, n.Topics...)
	}
	return ts
}

// GlobalStore is the sub-topology of a global store (Kafka Streams'
// TopologyDescription.GlobalStore): a source reading every partition of
// one topic and the processor that writes each record into the store. It
// generates no task and takes no part in the consumer group: each instance
// of the application keeps all of the store, restored from the topic itself
// (the store has no changelog), and updated by a reader of its own. It has
// a sub-topology ID of its own, numbered with the others.
type GlobalStore struct {
	ID int
	// Source reads Topic; Processor writes Store.
	Source    *Node
	Processor *Node
	Topic     string
	Store     *StoreSpec
	// SubTopology holds the two nodes and the store, to instantiate them
	// as a task's would be (internal/task), on any partition of Topic.
	SubTopology *SubTopology
}

// Topology is a compiled topology.
type Topology struct {
	subs           []*SubTopology
	globals        []*GlobalStore
	nodes          []*Node
	stores         []*StoreSpec
	internalTopics []InternalTopic
	copartition    []CoPartitionGroup
}

// SourceTopic is a topic a source reads.
type SourceTopic struct {
	Name string
	// Internal marks a topic of the topology (a repartition topic): its
	// Kafka name is "<application.id>-<Name>".
	Internal bool
}

// KafkaName is the topic's name in Kafka for the application appID.
func (t SourceTopic) KafkaName(appID string) string {
	if t.Internal {
		return appID + "-" + t.Name
	}
	return t.Name
}

// CoPartitionGroup is a set of source topics that must have the same
// partition count, so that partition p of each lands in the same task:
// Kafka Streams' copartition groups. A sub-topology that keeps state (a
// join, an aggregation, a processor reading a table's store) needs its
// source topics co-partitioned, since a task's stores hold the keys of one
// partition number.
type CoPartitionGroup struct {
	SubTopology int
	Topics      []SourceTopic
}

// CoPartitionGroups returns the groups of source topics that must be
// co-partitioned, in sub-topology order: the source topics of each
// sub-topology that keeps state and reads more than one topic. The runtime
// checks them against the broker's partition counts at start-up.
func (t *Topology) CoPartitionGroups() []CoPartitionGroup { return t.copartition }

// SubTopologies returns the sub-topologies that generate tasks, in ID
// order. Their IDs need not be contiguous: a global store's sub-topology
// (GlobalStores) takes an ID too. Use SubTopology to find one by ID.
func (t *Topology) SubTopologies() []*SubTopology { return t.subs }

// SubTopology returns the task-generating sub-topology with the given ID,
// or nil.
func (t *Topology) SubTopology(id int) *SubTopology {
	for _, st := range t.subs {
		if st.ID == id {
			return st
		}
	}
	return nil
}

// GlobalStores returns the sub-topologies of the global stores, in ID
// order.
func (t *Topology) GlobalStores() []*GlobalStore { return t.globals }

// GlobalStore returns the global store named name, or nil.
func (t *Topology) GlobalStore(name string) *GlobalStore {
	for _, g := range t.globals {
		if g.Store.Name == name {
			return g
		}
	}
	return nil
}

// GlobalTopics returns the topics of the global stores, in ID order. They
// are not among SourceTopics: the consumer group does not read them.
func (t *Topology) GlobalTopics() []string {
	var ts []string
	for _, g := range t.globals {
		ts = append(ts, g.Topic)
	}
	return ts
}

// Stores returns the state stores of the task-generating sub-topologies in
// the order they were declared (not the global stores: GlobalStores).
func (t *Topology) Stores() []*StoreSpec { return t.stores }

// Store returns the store named name, a global store's included, or nil.
func (t *Topology) Store(name string) *StoreSpec {
	for _, s := range t.stores {
		if s.Name == name {
			return s
		}
	}
	if g := t.GlobalStore(name); g != nil {
		return g.Store
	}
	return nil
}

// InternalTopics returns the repartition topics, then the changelog topics.
func (t *Topology) InternalTopics() []InternalTopic { return t.internalTopics }

// Node returns the node named name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// SourceTopics returns the external (non-internal) topics the topology's
// tasks read: the topics of the consumer group's subscription, without the
// global stores' topics (GlobalTopics).
func (t *Topology) SourceTopics() []string {
	var ts []string
	for _, n := range t.nodes {
		if n.Kind == Source && !n.Internal && !n.Global {
			ts = append(ts, n.Topics...)
		}
	}
	return ts
}

// ErrEmptyTopology is returned when compiling a topology with no source.
var ErrEmptyTopology = errors.New("sluice: topology has no source node: read at least one topic")

// BuildError is an error in the graph given to Compile; it names the node
// (or store) at fault.
type BuildError struct {
	Node  string
	Store string
	Msg   string
}

// Error implements error.
func (e *BuildError) Error() string {
	switch {
	case e.Node != "" && e.Store != "":
		return fmt.Sprintf("sluice: node %s, store %s: %s", e.Node, e.Store, e.Msg)
	case e.Store != "":
		return fmt.Sprintf("sluice: store %s: %s", e.Store, e.Msg)
	}
	return fmt.Sprintf("sluice: node %s: %s", e.Node, e.Msg)
}

// Compile checks the graph of nodes and splits it into sub-topologies. nodes
// must be in creation order (it fixes node and sub-topology order); stores
// are the declared stores in declaration order.
func Compile(nodes []*Node, stores []*StoreSpec) (*Topology, error) {
	var errs []error
	names := make(map[string]bool, len(nodes))
	topicSource := map[string]string{}
	hasSource := false
	storeByName := map[string]*StoreSpec{}
	for _, s := range stores {
		if storeByName[s.Name] != nil {
			errs = append(errs, &BuildError{Store: s.Name, Msg: "declared twice: store names must be unique"})
		}
		storeByName[s.Name] = s
		if s.Kind < 0 || int(s.Kind) >= len(kinds) {
			errs = append(errs, &BuildError{Store: s.Name, Msg: fmt.Sprintf("unknown store kind %d", int(s.Kind))})
		}
		if s.RetainDuplicates && s.Kind != Window {
			errs = append(errs, &BuildError{Store: s.Name, Msg: "only window stores can retain duplicates, this is a " + s.Kind.String() + " store"})
		}
		if s.HistoryRetention != 0 && s.Kind != Versioned {
			errs = append(errs, &BuildError{Store: s.Name, Msg: "only versioned stores keep a history retention, this is a " + s.Kind.String() + " store"})
		}
		if s.Kind == Versioned && (s.HistoryRetention <= 0 || s.Timestamped) {
			errs = append(errs, &BuildError{Store: s.Name, Msg: fmt.Sprintf("a versioned store needs a positive history retention (not %v) and no Timestamped values", s.HistoryRetention)})
		}
	}
	for _, n := range nodes {
		if names[n.Name] {
			errs = append(errs, &BuildError{Node: n.Name, Msg: "duplicate node name: names given with Named must be unique"})
		}
		names[n.Name] = true
		if n.New == nil {
			errs = append(errs, &BuildError{Node: n.Name, Msg: "node has no factory"})
		}
		switch n.Kind {
		case Source:
			hasSource = true
			if len(n.Topics) == 0 {
				errs = append(errs, &BuildError{Node: n.Name, Msg: "source reads no topic"})
			}
			for _, tp := range n.Topics {
				if tp == "" {
					errs = append(errs, &BuildError{Node: n.Name, Msg: "empty topic name"})
				} else if other, ok := topicSource[tp]; ok {
					errs = append(errs, &BuildError{Node: n.Name, Msg: fmt.Sprintf("topic %q is already read by source %s: read a topic once and share the stream", tp, other)})
				} else {
					topicSource[tp] = n.Name
				}
			}
		default:
			if len(n.Parents) == 0 {
				errs = append(errs, &BuildError{Node: n.Name, Msg: "node has no parent"})
			}
		}
		for _, s := range n.Stores {
			if storeByName[s] == nil {
				errs = append(errs, &BuildError{Node: n.Name, Store: s, Msg: "store is used but not declared"})
			}
		}
		for _, s := range n.GlobalStores {
			if storeByName[s] == nil {
				errs = append(errs, &BuildError{Node: n.Name, Store: s, Msg: "global store is read but not declared"})
			}
		}
	}
	if !hasSource {
		errs = append(errs, ErrEmptyTopology)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Connected components by graph edges; repartition topics are not edges
	// (their sink and source are separate nodes), so they split components.
	index := make(map[*Node]int, len(nodes))
	for i, n := range nodes {
		index[n] = i
	}
	parent := make([]int, len(nodes))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if ra < rb {
			parent[rb] = ra
		} else {
			parent[ra] = rb
		}
	}
	for _, n := range nodes {
		for _, c := range n.Children {
			ci, ok := index[c]
			if !ok {
				return nil, &BuildError{Node: c.Name, Msg: "node is linked from " + n.Name + " but not part of the topology"}
			}
			union(index[n], ci)
		}
	}

	// Nodes that share a store run in one task, so their components are
	// one sub-topology (Kafka Streams' InternalTopologyBuilder unites a
	// store's users in its node grouper): a processor that reads a table's
	// store joins the table's sub-topology.
	storeUser := map[string]int{}
	for i, n := range nodes {
		for _, s := range n.Stores {
			if u, ok := storeUser[s]; ok {
				union(u, i)
			} else {
				storeUser[s] = i
			}
		}
	}

	// Sub-topology IDs are given in the order of each one's first node, a
	// global store's included, as Kafka Streams numbers its node groups.
	t := &Topology{nodes: nodes}
	var all []*SubTopology
	subOf := map[int]*SubTopology{}
	for i, n := range nodes {
		r := find(i)
		st := subOf[r]
		if st == nil {
			st = &SubTopology{ID: len(all)}
			subOf[r] = st
			all = append(all, st)
		}
		st.Nodes = append(st.Nodes, n)
		if n.Kind == Source {
			st.Sources = append(st.Sources, n)
		}
	}
	storeSpecs := map[string]*StoreSpec{}
	for _, s := range stores {
		storeSpecs[s.Name] = s
	}
	globalStore := map[string]bool{}
	for _, st := range all {
		g, isGlobal, err := globalStoreOf(st, storeSpecs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !isGlobal {
			t.subs = append(t.subs, st)
			continue
		}
		t.globals = append(t.globals, g)
		globalStore[g.Store.Name] = true
	}
	for _, n := range nodes {
		for _, s := range n.GlobalStores {
			if !globalStore[s] {
				errs = append(errs, &BuildError{Node: n.Name, Store: s, Msg: "store read as a global store is not the store of a global table"})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	storeSub := map[string]*SubTopology{}
	for _, st := range t.subs {
		for _, n := range st.Nodes {
			for _, s := range n.Stores {
				storeSub[s] = st
			}
		}
	}
	for _, s := range stores {
		if st := storeSub[s.Name]; st != nil {
			st.Stores = append(st.Stores, s)
			t.stores = append(t.stores, s)
		}
	}

	for _, st := range t.subs {
		var ts []SourceTopic
		for _, n := range st.Sources {
			for _, tp := range n.Topics {
				ts = append(ts, SourceTopic{Name: tp, Internal: n.Internal})
			}
		}
		if len(st.Stores) > 0 && len(ts) > 1 {
			t.copartition = append(t.copartition, CoPartitionGroup{SubTopology: st.ID, Topics: ts})
		}
	}

	// Internal topics: repartition topics in the order their sinks appear,
	// then changelogs in store order.
	seen := map[string]bool{}
	for _, st := range t.subs {
		for _, n := range st.Nodes {
			if n.Kind != Sink || !n.Internal {
				continue
			}
			for _, tp := range n.Topics {
				if seen[tp] {
					continue
				}
				seen[tp] = true
				t.internalTopics = append(t.internalTopics, InternalTopic{
					Name: tp, Kind: Repartition, SubTopology: st.ID, Partitions: n.Partitions, Config: RepartitionTopicConfig(),
				})
			}
		}
	}
	for _, st := range t.subs {
		for _, s := range st.Stores {
			if s.DisableLogging {
				continue
			}
			cfg := s.ChangelogTopicConfig()
			t.internalTopics = append(t.internalTopics, InternalTopic{
				Name: s.ChangelogTopic(), Kind: Changelog, SubTopology: st.ID, Config: cfg,
			})
		}
	}
	return t, nil
}

// globalStoreOf returns the global store that st is, if its nodes are
// global: exactly a source of one topic and one processor below it that
// writes one store, which neither logs nor caches (the store is restored
// from the topic itself, and read by every task while the global reader
// writes it).
func globalStoreOf(st *SubTopology, stores map[string]*StoreSpec) (*GlobalStore, bool, error) {
	global := false
	for _, n := range st.Nodes {
		global = global || n.Global
	}
	if !global {
		return nil, false, nil
	}
	bad := func(n *Node, msg string) (*GlobalStore, bool, error) {
		return nil, true, &BuildError{Node: n.Name, Msg: msg}
	}
	if len(st.Nodes) != 2 || len(st.Sources) != 1 {
		var gstores []string
		for _, n := range st.Nodes {
			if n.Global && n.Kind == Processor {
				gstores = append(gstores, n.Stores...)
			}
		}
		for _, n := range st.Nodes {
			for _, s := range n.Stores {
				if !n.Global && slices.Contains(gstores, s) {
					return nil, true, &BuildError{Node: n.Name, Store: s, Msg: "a global store can be read by any processor without being connected to it: do not connect it (Kafka Streams refuses it too)"}
				}
			}
		}
		for _, n := range st.Nodes {
			if !n.Global {
				return bad(n, "a global store's nodes (a source and the processor that writes the store) cannot be linked to other nodes")
			}
		}
		return bad(st.Nodes[0], "a global store is a source and one processor")
	}
	src := st.Sources[0]
	proc := st.Nodes[0]
	if proc == src {
		proc = st.Nodes[1]
	}
	switch {
	case !src.Global || !proc.Global:
		return bad(proc, "a global store's source and processor must both be global")
	case len(src.Topics) != 1 || src.Internal:
		return bad(src, "a global store's source reads exactly one external topic")
	case len(proc.Stores) != 1 || len(proc.Parents) != 1 || proc.Parents[0] != src:
		return bad(proc, "a global store's processor reads its source and writes exactly one store")
	}
	spec := stores[proc.Stores[0]]
	if !spec.DisableLogging || !spec.DisableCaching || spec.Kind != KeyValue {
		return nil, true, &BuildError{Node: proc.Name, Store: spec.Name, Msg: "a global store is a key-value store without changelog or record cache"}
	}
	st.Stores = []*StoreSpec{spec}
	return &GlobalStore{ID: st.ID, Source: src, Processor: proc, Topic: src.Topics[0], Store: spec, SubTopology: st}, true, nil
}

// quoteID makes a node name safe as a DOT or Mermaid identifier.
func quoteID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
