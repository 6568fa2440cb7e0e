package nodes

import "github.com/sluicehq/sluice/operators"

// UserProcessor runs a user Processor as a node: it initializes p with a
// context that forwards to next, and wraps p's errors with the node name.
func UserProcessor[KIn, VIn, KOut, VOut any](ctx Context, node string, p operators.Processor[KIn, VIn, KOut, VOut], next Node[KOut, VOut]) (Node[KIn, VIn], error) {
	u := &userProcessor[KIn, VIn, KOut, VOut]{node: node, p: p}
	u.ctx = processorContext[KOut, VOut]{ProcessingContext: ctx, next: next}
	if err := p.Init(u.ctx); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return u, nil
}

type userProcessor[KIn, VIn, KOut, VOut any] struct {
	node string
	p    operators.Processor[KIn, VIn, KOut, VOut]
	ctx  processorContext[KOut, VOut]
}

func (u *userProcessor[KIn, VIn, KOut, VOut]) Process(r operators.Record[KIn, VIn]) error {
	if err := u.p.Process(r); err != nil {
		if _, ok := err.(*operators.NodeError); ok {
			return err
		}
		return &operators.NodeError{Node: u.node, Err: err}
	}
	return nil
}

// Close closes the user processor.
func (u *userProcessor[KIn, VIn, KOut, VOut]) Close() error {
	if err := u.p.Close(); err != nil {
		return &operators.NodeError{Node: u.node, Err: err}
	}
	return nil
}

// processorContext hides all but the ProcessingContext of the task's
// context: a type assertion on it cannot reach the Context's hooks.
type processorContext[K, V any] struct {
	operators.ProcessingContext
	next Node[K, V]
}

func (c processorContext[K, V]) Forward(r operators.Record[K, V]) error { return c.next.Process(r) }
