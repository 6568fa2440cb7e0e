package task

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// The error handlers, as Kafka Streams 4.x has them: a source's
// deserialization failure goes to Config.OnDeserializationError (Kafka
// Streams' RecordDeserializer.handleDeserializationFailure), a failure of
// user code in a node or punctuator to Config.OnProcessingError
// (ProcessorNode.process, StreamTask.punctuate), a sink's serialization
// failure to Config.OnProductionError (RecordCollectorImpl's
// handleSerializationException). Each handler decides:
//
//   - operators.Fail: the task stops with the error, which names the node
//     and the input record.
//   - operators.Continue: the record is dropped where it failed, logged
//     (at most one line per node and handler per 10 s of the task's clock,
//     with the number since the last line) and counted as dropped by
//     reason: "deserialization-error" ("invalid-utf8" when the cause is an
//     *serde.InvalidUTF8Error: dropReason), "processing-error",
//     "production-error".
//   - operators.DeadLetter: the input record is written, as read, to
//     Config.DeadLetterTopic through the task's Collector (partition
//     chosen by key, the record's timestamp, its headers plus Kafka
//     Streams' error headers: operators.DeadLetterHeaders), counted as
//     dropped with the reason "dead-letter" (Config.DeadLettered tells the
//     handler's kind), and processing goes on.
//
// Processing goes on where it failed: a node's failure the handler lets go
// on makes the node return nil to its parent, which goes on with its next
// child; the records already written and the store updates already made
// for the input record stay, as in Kafka Streams (nothing is rolled back:
// Kafka Streams' handlers run inside the failing node, too).
//
// In a punctuator, or below a record cache that forwards (a flush, or an
// eviction while another record is processed: nodes.Context.CacheForward),
// there is no input record: the ErrorContext has no topic, partition and offset -1, the
// punctuation's time (or the last record's), and no key or value; a
// dead-letter record is written all the same, with a null key and value
// and a null topic header, as Kafka Streams 4.3.1 writes one for a
// punctuator that throws.

// reasons are the dropped reasons of the records each handler lets go on.
var reasons = [...]string{
	operators.DeserializationFailure: "deserialization-error",
	operators.ProcessingFailure:      "processing-error",
	operators.ProductionFailure:      "production-error",
}

// dropReason is the reason a record that the handler of kind let go on
// after err is counted under: reasons[kind], except for one cause told
// apart because it says what is wrong with the input rather than with the
// application, a deserialization failure caused by invalid UTF-8 (an
// *serde.InvalidUTF8Error: serde.StrictString, serde.JSON), counted as
// "invalid-utf8".
func dropReason(kind operators.ErrorKind, err error) string {
	if kind == operators.DeserializationFailure {
		if _, ok := errors.AsType[*serde.InvalidUTF8Error](err); ok {
			return "invalid-utf8"
		}
	}
	return reasons[kind]
}

// handler returns the handler of kind, LogAndFail by default.
func (t *Task) handler(kind operators.ErrorKind) operators.ErrorHandler {
	var h operators.ErrorHandler
	switch kind {
	case operators.DeserializationFailure:
		h = t.cfg.OnDeserializationError
	case operators.ProcessingFailure:
		h = t.cfg.OnProcessingError
	case operators.ProductionFailure:
		h = t.cfg.OnProductionError
	}
	if h == nil {
		return operators.LogAndFail
	}
	return h
}

// errorContext describes a failure of node to a handler: the input record
// being processed, or, in a punctuator or a cache flush, none.
func (t *Task) errorContext(kind operators.ErrorKind, node string) *operators.ErrorContext {
	ec := &operators.ErrorContext{Kind: kind, TaskID: t.id, Node: node, Partition: -1, Offset: -1, Timestamp: t.recordTime}
	if r := t.cur; r != nil {
		ec.Topic, ec.Partition, ec.Offset, ec.Timestamp = r.Topic, r.Partition, r.Offset, r.Timestamp
		ec.Headers, ec.SourceKey, ec.SourceValue = r.Headers, r.Key, r.Value
	}
	return ec
}

// decide runs h, turning a panic in it into an error (Kafka Streams: "Fatal
// user code error in ... error callback", which stops the task).
func decide(h operators.ErrorHandler, ec *operators.ErrorContext, err error) (a operators.Action, herr error) {
	defer func() {
		if v := recover(); v != nil {
			herr = fmt.Errorf("the %s error handler panicked: %v (handling: %w)", ec.Kind, v, err)
		}
	}()
	return h(ec, err), nil
}

// handle runs the handler of kind for err, a failure of node, and does what
// it decides: nil to go on, or the error that stops the task (err for
// Fail).
func (c *nodeContext) handle(kind operators.ErrorKind, node string, err error) error {
	t := c.t
	ec := t.errorContext(kind, node)
	a, herr := decide(t.handler(kind), ec, err)
	if herr != nil {
		return herr
	}
	switch a {
	case operators.Fail:
		return err
	case operators.Continue:
		c.logHandled(kind, node, ec, err, "dropping")
		c.RecordDropped(node, dropReason(kind, err))
		return nil
	case operators.DeadLetter:
		if t.cfg.DeadLetterTopic == "" {
			return fmt.Errorf("the %s error handler returned DeadLetter, but no dead-letter queue topic is set "+
				"(runtime.DeadLetterQueue, testdriver.WithDeadLetterQueue): %w", kind, err)
		}
		if t.cfg.GlobalStore {
			// Kafka Streams 4.3.1 sends no dead-letter record for a
			// global store ("Dead letter queue records cannot be sent for
			// global store/KTable processors") and goes on.
			c.logHandled(kind, node, ec, err, "dropping (a global store's records are not dead-lettered)")
			c.RecordDropped(node, dropReason(kind, err))
			return nil
		}
		if t.cfg.Collector == nil {
			return fmt.Errorf("the %s error handler returned DeadLetter, but task %s has no collector to write topic %s: %w", kind, t.id, t.cfg.DeadLetterTopic, err)
		}
		hs := operators.DeadLetterHeaders(ec, err)
		if serr := t.cfg.Collector.Send(t.cfg.DeadLetterTopic, -1, ec.SourceKey, ec.SourceValue, hs, ec.Timestamp); serr != nil {
			// Not a user error: the collector's (the producer failed,
			// fenced, closing); it stops the task.
			return fmt.Errorf("write the dead-letter record to topic %s: %w (handling: %w)", t.cfg.DeadLetterTopic, serr, err)
		}
		c.logHandled(kind, node, ec, err, "dead-lettering")
		c.RecordDropped(node, "dead-letter")
		if t.cfg.DeadLettered != nil {
			t.cfg.DeadLettered(t.id, node, kind)
		}
		return nil
	}
	return fmt.Errorf("the %s error handler returned an unknown %v: %w", kind, a, err)
}

// DeserializationError implements nodes.Context: the deserialization
// handler decides. A record it lets go on is skipped: stream time stays
// and no punctuation fires, as for a record with an invalid timestamp.
func (c *nodeContext) DeserializationError(node string, r *operators.RawRecord, err error) error {
	if err := c.handle(operators.DeserializationFailure, node, err); err != nil {
		return err
	}
	c.t.skipped = true
	return nil
}

// ProcessingError implements nodes.Context.
func (c *nodeContext) ProcessingError(node string, err error) error {
	if herr := c.handle(operators.ProcessingFailure, node, err); herr != nil {
		return c.t.failure(node, herr)
	}
	return nil
}

// ProductionError implements nodes.Context.
func (c *nodeContext) ProductionError(node string, err error) error {
	if herr := c.handle(operators.ProductionFailure, node, err); herr != nil {
		return c.t.failure(node, herr)
	}
	return nil
}

// failure makes err, a failure of node the handler did not let go on, the
// *operators.NodeError that stops the task: it names the node, and the
// input record when there is one (Process fills in the task and record).
func (t *Task) failure(node string, err error) error {
	if ne, ok := errors.AsType[*operators.NodeError](err); ok && ne.Node != "" {
		return err
	}
	ne := &operators.NodeError{Task: t.id, Node: node, Err: err}
	if r := t.cur; r != nil {
		ne.Topic, ne.Partition, ne.Offset = r.Topic, r.Partition, r.Offset
	}
	return ne
}

// runPunctuator runs s at now. A panic in it is the processing failure of
// the node that scheduled it; a user processor's punctuator hands its
// errors to the handler itself (nodes' processorContext), so an error
// returned here stops the task.
func (t *Task) runPunctuator(s *schedule, now int64) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = t.nodeCtx(s.node).ProcessingError(s.node, &operators.PanicError{Node: s.node, Value: v, Stack: debug.Stack()})
		}
	}()
	return s.fn(now)
}

// nodeCtx returns the context of node.
func (t *Task) nodeCtx(node string) *nodeContext {
	if c, ok := t.ctxs[node]; ok {
		return c
	}
	// Not one of the task's nodes (cannot happen: schedules come from
	// nodes' contexts); a context of its own keeps the handlers working.
	c := &nodeContext{t: t, node: &topology.Node{Name: node}}
	t.ctxs[node] = c
	return c
}

// newNode instantiates n; a panic in its factory (a user's processor
// supplier) is an error naming the node.
func newNode(n *topology.Node, ctx *nodeContext, children []any) (in any, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &operators.PanicError{Node: n.Name, Value: v, Stack: debug.Stack()}
		}
	}()
	return n.New(ctx, children)
}

// logLimit rate-limits log lines: at most one per handledLogInterval.
type logLimit struct {
	last       time.Time // zero: never logged
	suppressed int64     // not logged since last
}

// handledLogInterval is the least time between two log lines of one node
// about the records one handler let go on.
const handledLogInterval = 10 * time.Second

// logHandled logs a record that the handler of kind let go on after err
// at node, rate-limited.
func (c *nodeContext) logHandled(kind operators.ErrorKind, node string, ec *operators.ErrorContext, err error, what string) {
	l := &c.handled[kind]
	now := c.t.clock()
	if !l.last.IsZero() {
		if d := now.Sub(l.last); d >= 0 && d < handledLogInterval {
			l.suppressed++
			return
		}
	}
	attrs := []any{"node", node, "handler", kind.String(), "topic", ec.Topic, "partition", ec.Partition, "offset", ec.Offset, "err", err}
	if l.suppressed > 0 {
		attrs = append(attrs, "skipped_since_last_log", l.suppressed)
	}
	c.t.log.Warn(fmt.Sprintf("%s a record after a %s error", what, kind), attrs...)
	l.last, l.suppressed = now, 0
}

// CacheForward implements nodes.Context: while a record cache's flush
// forwards, the task has no input record for the handlers (cur nil), and
// gets the one being processed back after.
func (c *nodeContext) CacheForward(on bool) {
	t := c.t
	if on {
		if t.cacheDepth == 0 {
			t.cacheSaved, t.cur = t.cur, nil
		}
		t.cacheDepth++
		return
	}
	if t.cacheDepth > 0 {
		t.cacheDepth--
		if t.cacheDepth == 0 {
			t.cur, t.cacheSaved = t.cacheSaved, nil
		}
	}
}
