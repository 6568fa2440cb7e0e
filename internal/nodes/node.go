package nodes

import "github.com/sluicehq/sluice/operators"

// Node is a node instance of a task's processor graph that accepts records
// of type K, V: what a parent forwards to.
//
// Process is called on the task's goroutine only. An error stops the task:
// the node that raised it wraps it in an *operators.NodeError naming
// itself, and its parents pass it up unchanged. Failures of user code go
// to the task's error handlers first (Context.ProcessingError, Guarded).
type Node[K, V any] interface {
	Process(r operators.Record[K, V]) error
}

// RawProcessor accepts records before deserialization: source nodes. A
// RawProcessor decides the timestamp of each record it forwards and calls
// Context.StampRecord with it before forwarding: that call, not the task,
// advances stream time.
type RawProcessor interface {
	ProcessRaw(r *operators.RawRecord) error
}

// Context is what the built-in nodes see of their task: the
// ProcessingContext and the hooks of sources, sinks and the task's
// bookkeeping, which user processors do not get. The task (internal/task,
// shared by the runtime and the test driver) implements it once per node.
type Context interface {
	operators.ProcessingContext
	// InternalTopic returns the Kafka topic name of an internal topic of
	// the topology: "<application.id>-<name>".
	InternalTopic(name string) string
	// Collector is where sinks write.
	Collector() operators.Collector
	// DeserializationError decides what happens to an input record that node
	// could not deserialize, by the task's deserialization handler: it
	// returns nil to skip the record (after counting and logging it, or
	// writing it to the dead-letter queue) or the error that stops the task.
	DeserializationError(node string, r *operators.RawRecord, err error) error
	// ProcessingError decides what happens after user code of node failed
	// on the record being processed or in a punctuator: err is what the
	// code returned, or the *operators.PanicError it panicked with. It runs
	// the task's processing handler and returns nil to go on (the record
	// counted as dropped, or dead-lettered) or the *operators.NodeError that
	// stops the task. Callers pass only the user's own failures: a child's
	// (an *operators.NodeError), a store's or the collector's stop the task
	// without it.
	ProcessingError(node string, err error) error
	// CacheForward brackets what a record cache's flush listener forwards
	// (true before, false after): a failure below it has no input record,
	// as the flushed entry was written by an earlier record than the one
	// being processed, if any (an eviction happens while another record
	// is processed). Calls nest.
	CacheForward(on bool)
	// ProductionError is ProcessingError for a record the sink node could
	// not serialize (*operators.SerializationError): the task's production
	// handler decides.
	ProductionError(node string, err error) error
	// StampRecord is for source nodes: a source calls it once it has
	// decoded the input record r, with the timestamp ts (ms) it extracted
	// for it, before it forwards anything. A negative ts is invalid and is
	// handled by policy. StampRecord advances the task's stream time to the
	// returned timestamp, which the record then carries downstream. When ok
	// is false the record is skipped (counted as dropped with the reason
	// "invalid-timestamp", and logged) and the source forwards nothing; a
	// non-nil error (an *operators.InvalidTimestampError) stops the task.
	StampRecord(node string, r *operators.RawRecord, ts int64, policy InvalidTimestampPolicy) (stamped int64, ok bool, err error)
	// RecordDropped counts a record a node dropped on purpose (a null key for
	// an aggregation, a late record), with the reason as a metric label: a
	// short kebab-case name of what the record was ("null-key", "late").
	// It also logs the drop, at most one line per node and reason per 10 s,
	// unless the reason is one whose caller logs it ("late",
	// "invalid-timestamp", "deserialization-error" and the error handlers'
	// reasons).
	RecordDropped(node, reason string)
}
