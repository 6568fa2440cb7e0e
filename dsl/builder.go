package dsl

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/topology"
)

// Builder collects the streams, tables and operations of a topology.
// A Builder is not safe for concurrent use.
type Builder struct {
	nodes  []*topology.Node
	stores []*topology.StoreSpec
	index  int
	errs   []error
	// joinRepartitions maps a stream's node to the source of the topic it
	// was last repartitioned through for a join (repartitionForJoin).
	joinRepartitions map[*topology.Node]*topology.Node
	// nullKeyFilters are the filters in front of repartition topics, and
	// relaxedJoins the join nodes that take null-key records (left and
	// outer joins): see relaxNullKeyFilters.
	nullKeyFilters []nullKeyFilter
	relaxedJoins   map[*topology.Node]bool
	// finish holds what operations decide once the whole graph is known,
	// run first by Build (a foreign-key join materializes its result when
	// something downstream needs it).
	finish []func()
	// toStreams are the nodes of Table.ToStream: a table operation that
	// needs neither old values nor a value getter of its table.
	toStreams map[*topology.Node]bool
}

// nullKeyFilter is the filter node in front of a repartition topic; keep
// makes it pass null keys on.
type nullKeyFilter struct {
	node *topology.Node
	keep *bool
}

// relaxNullKeyJoin marks n as a join node that takes records with a null
// key (Kafka Streams' GraphNode label NULL_KEY_RELAXED_JOIN).
func (b *Builder) relaxNullKeyJoin(n *topology.Node) {
	if b.relaxedJoins == nil {
		b.relaxedJoins = map[*topology.Node]bool{}
	}
	b.relaxedJoins[n] = true
}

// relaxNullKeyFilters makes the filter in front of a repartition topic pass
// records with a null key when a left or outer join is downstream of it,
// through any number of nodes and repartition topics, as Kafka Streams'
// InternalStreamsBuilder.rewriteRepartitionNodes does (its repartition
// filters drop null keys only where no such join follows,
// NodesWithRelaxedNullKeyJoinDownstream).
func (b *Builder) relaxNullKeyFilters() {
	if len(b.relaxedJoins) == 0 {
		return
	}
	readers := map[string][]*topology.Node{}
	for _, n := range b.nodes {
		if n.Kind == topology.Source && n.Internal {
			for _, tp := range n.Topics {
				readers[tp] = append(readers[tp], n)
			}
		}
	}
	relaxed := map[*topology.Node]bool{}
	var visit func(n *topology.Node) bool
	visit = func(n *topology.Node) bool {
		if r, ok := relaxed[n]; ok {
			return r
		}
		relaxed[n] = false // a cycle back here adds nothing
		next := n.Children
		if n.Kind == topology.Sink && n.Internal {
			for _, tp := range n.Topics {
				next = append(slices.Clip(next), readers[tp]...)
			}
		}
		r := false
		for _, c := range next {
			if b.relaxedJoins[c] || visit(c) {
				r = true
			}
		}
		relaxed[n] = r
		return r
	}
	for _, f := range b.nullKeyFilters {
		*f.keep = visit(f.node)
	}
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

// BuildOption configures Build.
type BuildOption interface{ applyBuild(*buildOptions) }

type buildOptions struct{ requireNamed bool }

type buildOptionFunc func(*buildOptions)

func (f buildOptionFunc) applyBuild(o *buildOptions) { f(o) }

// RequireNamedStores makes Build fail if a state store or internal topic
// would get a generated name. Generated names follow the order of
// operations, so adding an operation upstream renames the stores below it
// and orphans their changelogs; naming them (Named or Materialized) keeps
// state across such changes.
func RequireNamedStores() BuildOption {
	return buildOptionFunc(func(o *buildOptions) { o.requireNamed = true })
}

// Build validates the operations and compiles them into a topology. Its
// errors name the node (or store) at fault; all errors found are reported
// together.
func (b *Builder) Build(opts ...BuildOption) (*topology.Topology, error) {
	var o buildOptions
	for _, opt := range opts {
		opt.applyBuild(&o)
	}
	for _, f := range b.finish {
		f()
	}
	b.finish = nil
	errs := append([]error(nil), b.errs...)
	if o.requireNamed {
		for _, s := range b.stores {
			if s.Generated {
				errs = append(errs, &topology.BuildError{Node: b.storeUser(s.Name), Store: s.Name,
					Msg: "store name is generated; name it with dsl.Named or dsl.Materialized (RequireNamedStores)"})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b.relaxNullKeyFilters()
	return topology.Compile(b.nodes, b.stores)
}

func (b *Builder) storeUser(store string) string {
	for _, n := range b.nodes {
		for _, s := range n.Stores {
			if s == store {
				return n.Name
			}
		}
	}
	return ""
}

// newName returns a generated name: prefix and the builder's next index,
// as Kafka Streams names nodes ("KSTREAM-FILTER-0000000001").
func (b *Builder) newName(prefix string) string {
	n := fmt.Sprintf("%s-%010d", prefix, b.index)
	b.index++
	return n
}

// nameOr returns the user's name if given, else a generated one. Like
// Kafka Streams it uses up an index either way, so that naming one
// operation does not rename the others.
func (b *Builder) nameOr(given, prefix string) string {
	gen := b.newName(prefix)
	if given != "" {
		return given
	}
	return gen
}

func (b *Builder) fail(node, format string, args ...any) {
	b.errs = append(b.errs, &topology.BuildError{Node: node, Msg: fmt.Sprintf(format, args...)})
}

func (b *Builder) add(n *topology.Node, parents ...*topology.Node) *topology.Node {
	for _, p := range parents {
		p.AddChild(n)
	}
	b.nodes = append(b.nodes, n)
	return n
}

func (b *Builder) addStore(spec *topology.StoreSpec) {
	b.stores = append(b.stores, spec)
}

// processor adds a processor node below parents. mk builds the node's
// instance for a task from the node's (fanned-out) children.
func processor[K, V, K2, V2 any](b *Builder, name string, stores []string,
	mk func(ctx nodes.Context, next nodes.Node[K2, V2]) (nodes.Node[K, V], error),
	parents ...*topology.Node) *topology.Node {
	n := &topology.Node{Name: name, Kind: topology.Processor, Stores: stores}
	n.New = func(ctx nodes.Context, children []any) (any, error) {
		next, err := nodes.Fanout[K2, V2](children)
		if err != nil {
			return nil, fmt.Errorf("sluice: node %s: %w", name, err)
		}
		return mk(ctx, next)
	}
	return b.add(n, parents...)
}

// stateless adds a processor node whose instance needs only its children.
func stateless[K, V, K2, V2 any](b *Builder, name string, mk func(next nodes.Node[K2, V2]) nodes.Node[K, V], parents ...*topology.Node) *topology.Node {
	return processor(b, name, nil, func(_ nodes.Context, next nodes.Node[K2, V2]) (nodes.Node[K, V], error) {
		return mk(next), nil
	}, parents...)
}
