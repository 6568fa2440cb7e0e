package operators

// Processor is a processor written by a user (the Processor API): it
// receives records of type KIn, VIn and forwards any number of records of
// type KOut, VOut, from Process or from punctuators it schedules in Init.
//
// One Processor value serves one task: the topology calls its supplier once
// per task. Init is called before the first record, once the task's stores
// are restored, Close when the task closes. Init may write to its stores
// and forward records: what it writes and forwards is sent when the task
// starts processing, and under exactly-once it is part of the task's first
// transaction. Kafka Streams: org.apache.kafka.streams.processor.api.Processor.
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
