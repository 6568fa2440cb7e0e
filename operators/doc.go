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
// Processors reach the task through Context: record metadata, stream time,
// wall-clock time, stores, punctuation schedules and the record collector
// that sinks write to. The task (internal/task) implements Context, one per
// node, for the runtime and the test driver alike; the operators never
// import the runtime.
package operators
