package operators

import (
	"errors"
	"fmt"
	"strconv"
)

// Action is what an error handler decides for a record that failed.
type Action int

const (
	// Fail stops the task with the error, which names the node and the
	// input record (Kafka Streams' FAIL). The input offset is not
	// committed past the record: a restart meets it again.
	Fail Action = iota
	// Continue drops the failed record, logs it (rate-limited) and counts
	// it by reason, and goes on with the next (Kafka Streams' CONTINUE and
	// RESUME).
	Continue
	// DeadLetter writes the input record that failed (its key, value,
	// headers and timestamp, as read) to the dead-letter queue topic with
	// the error headers Kafka Streams 4.x writes, counts it, and goes on.
	// The entry is written in the same commit (under ExactlyOnce, the same
	// transaction) as the input offset that passes the record. It needs a
	// dead-letter queue topic (runtime.DeadLetterQueue,
	// testdriver.WithDeadLetterQueue).
	DeadLetter
)

// String implements fmt.Stringer.
func (a Action) String() string {
	switch a {
	case Fail:
		return "fail"
	case Continue:
		return "continue"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// ErrorKind says which handler a failure goes to.
type ErrorKind int

const (
	// DeserializationFailure: a source could not decode an input record
	// (*DeserializationError). Kafka Streams' DeserializationExceptionHandler.
	DeserializationFailure ErrorKind = iota
	// ProcessingFailure: a node's user code returned an error or panicked
	// (*PanicError) on a record or in a punctuator. Kafka Streams'
	// ProcessingExceptionHandler.
	ProcessingFailure
	// ProductionFailure: a sink could not serialize a record
	// (*SerializationError) or Kafka refused to write it
	// (*ProductionError: too large, invalid, not authorized). Kafka
	// Streams' ProductionExceptionHandler.
	ProductionFailure
)

// String implements fmt.Stringer.
func (k ErrorKind) String() string {
	switch k {
	case DeserializationFailure:
		return "deserialization"
	case ProcessingFailure:
		return "processing"
	case ProductionFailure:
		return "production"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// ErrorContext describes a failure to an ErrorHandler: which node failed
// on which input record. Kafka Streams' ErrorHandlerContext. The slices
// are valid only during the handler's call.
type ErrorContext struct {
	Kind ErrorKind
	// TaskID is the task, "<sub-topology>_<partition>".
	TaskID string
	// Node is the source, processor or sink that failed.
	Node string
	// Topic, Partition and Offset locate the input record being processed
	// when the failure happened; in a punctuator (or below a record cache
	// flushing at a commit) there is none: Topic is "", Partition and
	// Offset -1, Timestamp the punctuation's, SourceKey and SourceValue
	// nil. DeadLetter then writes a record with a null key and value, as
	// Kafka Streams 4.3.1 does for a punctuator that throws.
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp and Headers are the input record's, as read.
	Timestamp int64
	Headers   []Header
	// SourceKey and SourceValue are the input record's raw bytes, as read
	// (nil for a Kafka null). Kafka Streams: sourceRawKey, sourceRawValue.
	SourceKey   []byte
	SourceValue []byte
}

// ErrorHandler decides what happens after a failure. It runs on the
// task's goroutine, or on the runtime's poll loop during a commit (a
// failure below a record cache that flushes), never concurrently with
// that task's processing; the runtime calls one handler for all tasks, so it may run
// concurrently for different tasks and must be safe for concurrent use
// (Kafka Streams has one handler instance per stream thread). It must not
// keep ctx's slices past the call.
type ErrorHandler func(ctx *ErrorContext, err error) Action

// LogAndFail fails on every error: the default of each handler, as in
// Kafka Streams.
func LogAndFail(*ErrorContext, error) Action { return Fail }

// LogAndContinue drops every failed record, counted and logged.
func LogAndContinue(*ErrorContext, error) Action { return Continue }

// SendToDeadLetterQueue writes every failed input record to the
// dead-letter queue and goes on.
func SendToDeadLetterQueue(*ErrorContext, error) Action { return DeadLetter }

// PanicError is a panic in user code (a mapper, predicate, aggregator,
// joiner, processor or punctuator), recovered and turned into a processing
// failure of the node.
type PanicError struct {
	Node  string
	Value any
	// Stack is the panicking goroutine's stack trace.
	Stack []byte
}

// Error implements error.
func (e *PanicError) Error() string {
	return fmt.Sprintf("sluice: node %s panicked: %v", e.Node, e.Value)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ProductionError is a record a sink wrote that Kafka refused (or that the
// client refused before sending it, as too large).
type ProductionError struct {
	// Node is the sink that wrote the record ("" for a changelog record).
	Node  string
	Topic string
	// Partition is the record's partition, -1 if not chosen yet.
	Partition int32
	// Size is the record's size in bytes (key + value + headers).
	Size int
	Err  error
}

// Error implements error.
func (e *ProductionError) Error() string {
	node := ""
	if e.Node != "" {
		node = "sink " + e.Node + ": "
	}
	return fmt.Sprintf("sluice: %scannot write a record of %d bytes to topic %s partition %d: %v", node, e.Size, e.Topic, e.Partition, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProductionError) Unwrap() error { return e.Err }

// The headers of a dead-letter record, as Kafka Streams 4.x writes them
// (org.apache.kafka.streams.errors.internals.ExceptionHandlerUtils). Each
// value is a UTF-8 string.
const (
	HeaderErrorException  = "__streams.errors.exception"
	HeaderErrorStacktrace = "__streams.errors.stacktrace"
	HeaderErrorMessage    = "__streams.errors.message"
	HeaderErrorTopic      = "__streams.errors.topic"
	HeaderErrorPartition  = "__streams.errors.partition"
	HeaderErrorOffset     = "__streams.errors.offset"
)

// DeadLetterHeaders returns the headers of the dead-letter record of ctx's
// input record after err: the input record's headers, then Kafka Streams'
// error headers in its order (exception, message, stacktrace, topic,
// partition, offset). The exception is the Go type of the innermost
// error Sluice knows (e.g. *operators.DeserializationError), the
// stacktrace a panic's stack or else the chain of wrapped errors, one per
// line. Without a source record (a punctuator) the topic header's value is
// null.
func DeadLetterHeaders(ctx *ErrorContext, err error) []Header {
	hs := make([]Header, 0, len(ctx.Headers)+6)
	for _, h := range ctx.Headers {
		v := h.Value
		if v != nil { // an empty value stays empty, not null
			v = append(make([]byte, 0, len(v)), v...)
		}
		hs = append(hs, Header{Key: h.Key, Value: v})
	}
	var trace []byte
	for e := err; e != nil; e = errors.Unwrap(e) {
		if pe, ok := e.(*PanicError); ok && len(pe.Stack) > 0 {
			trace = pe.Stack
			break
		}
		trace = fmt.Appendf(trace, "%T: %v\n", e, e)
	}
	return append(hs,
		Header{Key: HeaderErrorException, Value: []byte(exceptionName(err))},
		Header{Key: HeaderErrorMessage, Value: []byte(err.Error())},
		Header{Key: HeaderErrorStacktrace, Value: trace},
		Header{Key: HeaderErrorTopic, Value: topicHeader(ctx.Topic)},
		Header{Key: HeaderErrorPartition, Value: strconv.AppendInt(nil, int64(ctx.Partition), 10)},
		Header{Key: HeaderErrorOffset, Value: strconv.AppendInt(nil, ctx.Offset, 10)},
	)
}

// topicHeader is the value of the topic header: null without a source
// record, as Kafka Streams writes a null topic's.
func topicHeader(topic string) []byte {
	if topic == "" {
		return nil
	}
	return []byte(topic)
}

// exceptionName names err's kind for the exception header: the type of the
// first error in its chain that is one of Sluice's failure types, else of
// err itself.
func exceptionName(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.(type) {
		case *DeserializationError, *SerializationError, *ProductionError, *PanicError, *InvalidTimestampError:
			return fmt.Sprintf("%T", e)
		}
	}
	return fmt.Sprintf("%T", err)
}
