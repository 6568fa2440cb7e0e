package operators

// Processor is a processor written by a user (the Processor API): it
// receives records of type KIn, VIn and forwards any number of records of
// type KOut, VOut, from Process or from punctuators it schedules in Init.
//
// One Processor value serves one task: the topology calls its supplier once
// per task. Init is called before the first record, Close when the task
// closes. Kafka Streams: org.apache.kafka.streams.processor.api.Processor.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx ProcessorContext[KOut, VOut]) error
	Process(r Record[KIn, VIn]) error
	Close() error
}

// ProcessorContext is the context of a user processor: its task's
// ProcessingContext, and Forward. It does not give access to the task's
// internals (the sinks' collector, stream-time stamping, drop counters):
// Kafka Streams' api.ProcessorContext.
type ProcessorContext[K, V any] interface {
	ProcessingContext
	// Forward sends r to the processor's children. The record's timestamp
	// and headers are the caller's to set (Kafka Streams' record.withValue
	// style: start from the input record to keep them).
	Forward(r Record[K, V]) error
}

// ProcessorFuncs builds a Processor from functions; nil functions do
// nothing. It suits small stateless processors and tests.
type ProcessorFuncs[KIn, VIn, KOut, VOut any] struct {
	InitFunc    func(ctx ProcessorContext[KOut, VOut]) error
	ProcessFunc func(ctx ProcessorContext[KOut, VOut], r Record[KIn, VIn]) error
	CloseFunc   func() error

	ctx ProcessorContext[KOut, VOut]
}

// Init implements Processor.
func (p *ProcessorFuncs[KIn, VIn, KOut, VOut]) Init(ctx ProcessorContext[KOut, VOut]) error {
	p.ctx = ctx
	if p.InitFunc != nil {
		return p.InitFunc(ctx)
	}
	return nil
}

// Process implements Processor.
func (p *ProcessorFuncs[KIn, VIn, KOut, VOut]) Process(r Record[KIn, VIn]) error {
	if p.ProcessFunc != nil {
		return p.ProcessFunc(p.ctx, r)
	}
	return nil
}

// Close implements Processor.
func (p *ProcessorFuncs[KIn, VIn, KOut, VOut]) Close() error {
	if p.CloseFunc != nil {
		return p.CloseFunc()
	}
	return nil
}

// UserProcessor runs a user Processor as a node: it initializes p with a
// context that forwards to next, and wraps p's errors with the node name.
func UserProcessor[KIn, VIn, KOut, VOut any](ctx Context, node string, p Processor[KIn, VIn, KOut, VOut], next Node[KOut, VOut]) (Node[KIn, VIn], error) {
	u := &userProcessor[KIn, VIn, KOut, VOut]{node: node, p: p}
	u.ctx = processorContext[KOut, VOut]{ProcessingContext: ctx, next: next}
	if err := p.Init(u.ctx); err != nil {
		return nil, &NodeError{Node: node, Err: err}
	}
	return u, nil
}

type userProcessor[KIn, VIn, KOut, VOut any] struct {
	node string
	p    Processor[KIn, VIn, KOut, VOut]
	ctx  processorContext[KOut, VOut]
}

func (u *userProcessor[KIn, VIn, KOut, VOut]) Process(r Record[KIn, VIn]) error {
	if err := u.p.Process(r); err != nil {
		if _, ok := err.(*NodeError); ok {
			return err
		}
		return &NodeError{Node: u.node, Err: err}
	}
	return nil
}

// Close closes the user processor.
func (u *userProcessor[KIn, VIn, KOut, VOut]) Close() error {
	if err := u.p.Close(); err != nil {
		return &NodeError{Node: u.node, Err: err}
	}
	return nil
}

// processorContext hides all but the ProcessingContext of the task's
// context: a type assertion on it cannot reach the Context's hooks.
type processorContext[K, V any] struct {
	ProcessingContext
	next Node[K, V]
}

func (c processorContext[K, V]) Forward(r Record[K, V]) error { return c.next.Process(r) }
