package nodes

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
)

// UserProcessor runs a user Processor as a node: it initializes p with a
// context that forwards to next, and hands p's failures to the task's
// processing handler (userFailure). A panic in Init or Close is an error
// naming the node; one in Process is recovered by the node's guard.
func UserProcessor[KIn, VIn, KOut, VOut any](ctx Context, node string, p operators.Processor[KIn, VIn, KOut, VOut], next Node[KOut, VOut]) (Node[KIn, VIn], error) {
	u := &userProcessor[KIn, VIn, KOut, VOut]{ctx: ctx, node: node, p: p}
	u.pctx = processorContext[KOut, VOut]{ProcessingContext: ctx, hooks: ctx, node: node, next: next}
	if err := guardCall(node, func() error { return u.p.Init(u.pctx) }); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return u, nil
}

type userProcessor[KIn, VIn, KOut, VOut any] struct {
	ctx  Context
	node string
	p    operators.Processor[KIn, VIn, KOut, VOut]
	pctx processorContext[KOut, VOut]
}

func (u *userProcessor[KIn, VIn, KOut, VOut]) Process(r operators.Record[KIn, VIn]) error {
	if err := u.p.Process(r); err != nil {
		return userFailure(u.ctx, u.node, err)
	}
	return nil
}

// Close closes the user processor.
func (u *userProcessor[KIn, VIn, KOut, VOut]) Close() error {
	if err := guardCall(u.node, u.p.Close); err != nil {
		return &operators.NodeError{Node: u.node, Err: err}
	}
	return nil
}

// guardCall calls f, turning a panic into an *operators.PanicError naming
// node.
func guardCall(node string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &operators.PanicError{Node: node, Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// userFailure decides what becomes of err, returned by user code of node
// (a processor's Process or punctuator): a failure that is not the user's
// stops the task without a handler, as Kafka Streams' ProcessorNode
// rethrows its own failures: a child's failure, however the processor
// wrapped it (an *operators.NodeError: the child's guard has handled it
// already, or it stops the task), an error of a key-value store the
// processor got from its context (storeError: Get, Put, Delete) or of a
// closed store (state.ErrClosed), the task's cancellation. Kafka Streams
// 4.3.1 would hand a ProcessorStateException to the handler too; Sluice
// does not let a handler skip past a broken key-value store. (The errors
// of other store kinds a processor may get, window and session stores, are
// not marked: they go to the handler, as in Kafka Streams.) Anything else
// goes to the processing handler.
func userFailure(ctx Context, node string, err error) error {
	if _, ok := errors.AsType[*operators.NodeError](err); ok {
		return err
	}
	if _, ok := errors.AsType[*storeError](err); ok ||
		errors.Is(err, state.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &operators.NodeError{Node: node, Err: err}
	}
	return ctx.ProcessingError(node, err)
}

// storeError is an error of a task's store that a user processor got: it
// is not the user's, and stops the task whatever the processing handler
// would decide (userFailure).
type storeError struct {
	store string
	err   error
}

func (e *storeError) Error() string { return fmt.Sprintf("sluice: store %s: %v", e.store, e.err) }
func (e *storeError) Unwrap() error { return e.err }

// processorContext hides all but the ProcessingContext of the task's
// context: a type assertion on it cannot reach the Context's hooks.
type processorContext[K, V any] struct {
	operators.ProcessingContext
	hooks Context
	node  string
	next  Node[K, V]
}

func (c processorContext[K, V]) Forward(r operators.Record[K, V]) error { return c.next.Process(r) }

// Schedule schedules p so that its errors go to the processing handler
// (userFailure), as Kafka Streams' StreamTask.punctuate hands a
// punctuator's exception to the ProcessingExceptionHandler. A panic in p
// is recovered by the task, which names the node too.
func (c processorContext[K, V]) Schedule(interval time.Duration, typ operators.PunctuationType, p operators.Punctuator) (operators.Cancellable, error) {
	if p == nil {
		return c.ProcessingContext.Schedule(interval, typ, nil)
	}
	return c.ProcessingContext.Schedule(interval, typ, func(ts int64) error {
		if err := p(ts); err != nil {
			return userFailure(c.hooks, c.node, err)
		}
		return nil
	})
}

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
// sees it: everything but Close. Its errors are storeErrors, which no
// processing handler skips past.
type managedKeyValueStore struct{ state.KeyValueStore }

// Get implements state.KeyValueStore.
func (s managedKeyValueStore) Get(key []byte) ([]byte, bool, error) {
	v, ok, err := s.KeyValueStore.Get(key)
	if err != nil {
		return nil, false, &storeError{store: s.Name(), err: err}
	}
	return v, ok, nil
}

// Put implements state.KeyValueStore.
func (s managedKeyValueStore) Put(key, value []byte) error {
	if err := s.KeyValueStore.Put(key, value); err != nil {
		return &storeError{store: s.Name(), err: err}
	}
	return nil
}

// Delete implements state.KeyValueStore.
func (s managedKeyValueStore) Delete(key []byte) error {
	if err := s.KeyValueStore.Delete(key); err != nil {
		return &storeError{store: s.Name(), err: err}
	}
	return nil
}

// Close refuses: the task closes its stores.
func (s managedKeyValueStore) Close() error {
	return fmt.Errorf("sluice: store %s: a processor may not close a store; the task closes it", s.Name())
}
