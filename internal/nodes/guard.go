package nodes

import (
	"runtime/debug"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// Guarded is a node instance as a task hands it to the factory of a parent:
// the instance, its name and its Context. Fanout wraps it in a guard, the
// one place where user code of the node fails: the guard recovers a panic
// raised while the node runs (its own code, a user function it calls, a
// serde) as an *operators.PanicError naming the node, and hands that, and
// the sink's *operators.SerializationError the node returns, to the task's
// error handlers (Context.ProcessingError, Context.ProductionError).
//
// A guard sits on every edge, so the innermost one on the stack when a
// panic happens is the one of the node that was running: Kafka Streams'
// ProcessorNode.process, whose catch block names the node whose processor
// threw. As there, a node that the handler lets go on (Continue,
// DeadLetter) returns nil to its parent, which goes on with its next
// child: a record fanned out to two branches still reaches the second when
// the first failed.
type Guarded struct {
	Name string
	Ctx  Context
	Node any
}

// guard is a child behind its Guarded wrapper.
type guard[K, V any] struct {
	ctx  Context
	name string
	next Node[K, V]
}

// Process runs the node. What a guard costs is mostly the extra call on
// the edge: the deferred recover itself is about 1.5 ns (BenchmarkGuard;
// docs/errors.md has the figures).
func (g *guard[K, V]) Process(r operators.Record[K, V]) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = g.ctx.ProcessingError(g.name, &operators.PanicError{Node: g.name, Value: v, Stack: debug.Stack()})
		}
	}()
	if err = g.next.Process(r); err != nil {
		err = g.failed(err)
	}
	return err
}

// failed routes err, returned by the node, to a handler if it is a
// serialization failure the node raised itself (not wrapped: a failure
// passed up from a child is an *operators.NodeError, handled there): a
// sink's (it names its topic) goes to the production handler, as Kafka
// Streams' RecordCollectorImpl hands serializer exceptions to
// ProductionExceptionHandler.handleSerializationException; a store
// serde's inside a processor (no topic) to the processing handler, as
// Kafka Streams' ProcessorNode does with whatever its processor throws.
// Every other error stops the task: the node's own errors (a store's I/O,
// the collector's) are not user errors.
func (g *guard[K, V]) failed(err error) error {
	se, ok := err.(*operators.SerializationError)
	if !ok {
		return err
	}
	if se.Topic != "" {
		return g.ctx.ProductionError(g.name, se)
	}
	return g.ctx.ProcessingError(g.name, se)
}

// decode decodes b with s for the source node; a panic in s is an error
// (a *operators.PanicError), so that the source hands it to the
// deserialization handler, as Kafka Streams' RecordDeserializer hands it
// any exception of a deserializer.
func decode[T any](node string, s serde.Serde[T], b []byte) (v T, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = &operators.PanicError{Node: node, Value: x, Stack: debug.Stack()}
		}
	}()
	return s.Decode(b)
}

// encode appends the encoding of v with s to dst for the sink node; a
// panic in s is an error (a *operators.PanicError), so that the sink
// returns a *operators.SerializationError for the production handler, as
// Kafka Streams' RecordCollectorImpl hands it any exception of a
// serializer.
func encode[T any](node string, s serde.Serde[T], dst []byte, v T) (out []byte, err error) {
	defer func() {
		if x := recover(); x != nil {
			out, err = dst, &operators.PanicError{Node: node, Value: x, Stack: debug.Stack()}
		}
	}()
	return s.Encode(dst, v)
}
