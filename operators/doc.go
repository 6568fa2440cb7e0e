// Package operators holds the processor nodes that run inside a task —
// sources, filter, map, aggregate, table operations, sinks — and the
// Processor API through which users write processors and punctuators of
// their own.
//
// A compiled topology is a graph of typed nodes. When a task starts, each
// node is instantiated once for that task, leaves first, and wired to its
// children as typed Processor values, so a record moves through a task as a
// Record[K, V] passed by value from one Process call to the next: no boxing
// into any, no lookups by node name, no reflection on the per-record path.
//
// Tables flow as Record[K, Change[V]]: each update carries the new value and,
// when known, the old one, so downstream aggregations can retract what an
// update replaced (Kafka Streams' Change<V>).
//
// User processors reach their task through a ProcessorContext: record
// metadata, stream time, wall-clock time, stores, punctuation schedules and
// Forward. The built-in nodes get a Context, which adds the task's hooks
// (the collector sinks write to, stream-time stamping for sources, drop
// counters); the task (internal/task, shared by the runtime and the test
// driver) implements it, and the operators never import the runtime.
//
// A Kafka null is never a zero value here: a Record flags a null key or
// value (NullKey, Tombstone), a Change says which of its values exist
// (HasNew, HasOld), and where a function must see or return absence it
// takes a Maybe. A node that fails returns a *NodeError naming itself; the
// task adds the input record's topic, partition and offset, and
// FailedRecord finds it in an error.
package operators
