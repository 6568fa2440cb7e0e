package dsl

import (
	"errors"
	"fmt"

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
