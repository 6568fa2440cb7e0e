package dsl

import (
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
)

// PeekChanges adds a node named name below t that calls f with each update
// of t, its old value included, as the processor Kafka Streams' table join
// tests attach to a join's result (MockApiProcessorSupplier). For tests.
func PeekChanges[K, V any](t Table[K, V], name string, f func(operators.Record[K, operators.Change[V]])) {
	stateless(t.b, name, func(nodes.Node[K, struct{}]) nodes.Node[K, operators.Change[V]] {
		return peekChanges[K, V](f)
	}, t.node)
}

type peekChanges[K, V any] func(operators.Record[K, operators.Change[V]])

func (p peekChanges[K, V]) Process(r operators.Record[K, operators.Change[V]]) error {
	p(r)
	return nil
}
