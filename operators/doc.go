// Package operators holds what a user of Sluice writes or sees of the
// records that flow through a task: the Processor API (Processor,
// ProcessorFuncs, ProcessorContext, punctuators), the record types (Record,
// Change, Header, Maybe) and the errors a failed task returns (NodeError,
// DeserializationError, InvalidTimestampError, SerializationError).
//
// The built-in processor nodes that dsl wires into a topology (sources,
// filter, map, aggregations, table operations, windowed aggregations,
// sinks) live in internal/nodes: users reach them through dsl, never by
// name. This package also keeps the few interfaces that the runtime and
// the test driver implement or build on (Collector, PartitionKeyCollector,
// RawRecord).
//
// A record moves through a task as a Record[K, V] passed by value from one
// node's Process call to the next: no boxing into any, no lookups by node
// name, no reflection on the per-record path. Tables flow as
// Record[K, Change[V]]: each update carries the new value and, when known,
// the old one, so downstream aggregations can retract what an update
// replaced (Kafka Streams' Change<V>).
//
// User processors reach their task through a ProcessorContext: record
// metadata, stream time, wall-clock time, stores, punctuation schedules and
// Forward. It holds nothing of the task's own hooks (the collector sinks
// write to, stream-time stamping for sources, drop counters), which only
// the built-in nodes get; the task (internal/task, shared by the runtime
// and the test driver) provides both, and nothing here imports the
// runtime.
//
// A Kafka null is never a zero value here: a Record flags a null key or
// value (NullKey, Tombstone), a Change says which of its values exist
// (HasNew, HasOld), and where a function must see or return absence it
// takes a Maybe. A node that fails returns a *NodeError naming itself; the
// task adds the input record's topic, partition and offset, and
// FailedRecord finds it in an error.
package operators
