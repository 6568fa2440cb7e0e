package nodes

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
)

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
		// A downstream node's error, however the processor wrapped it,
		// already names its node (and gets the task's record).
		if _, ok := errors.AsType[*operators.NodeError](err); ok {
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

// Store returns the store named name behind a handle the processor cannot
// close: the task owns its stores (Kafka Streams hands processors their
// stores behind a decorator whose close throws). Key-value stores, the
// kind processors declare (dsl.AddKeyValueStore), are wrapped.
func (c processorContext[K, V]) Store(name string) (state.Store, error) {
	s, err := c.ProcessingContext.Store(name)
	if err != nil {
		return nil, err
	}
	if kv, ok := s.(state.KeyValueStore); ok {
		return managedKeyValueStore{kv}, nil
	}
	return s, nil
}

// managedKeyValueStore is a task's key-value store as a user processor
// sees it: everything but Close.
type managedKeyValueStore struct{ state.KeyValueStore }

// Close refuses: the task closes its stores.
func (s managedKeyValueStore) Close() error {
	return fmt.Errorf("sluice: store %s: a processor may not close a store; the task closes it", s.Name())
}
