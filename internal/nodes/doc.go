// Package nodes holds the built-in processor nodes that run inside a task:
// sources and sinks, the stateless operations (filter, map, flat-map, peek,
// branch), the aggregations and table operations over key-value stores,
// the windowed aggregations (time, session and sliding windows), the
// joins (stream-table; table-table with the value getters that read a
// table that is not materialized; stream-stream: window nodes, the two
// join sides and the outer join store, streamjoin.go), the suppress node
// over its time-ordered buffer (suppress.go; the buffer's entries in Kafka
// Streams' changelog format, suppressbuffer.go), and the node that runs a
// user's operators.Processor. dsl is their only user: each dsl
// operation adds a topology node whose factory calls one constructor
// here, so these are not part of Sluice's public API. The public side of
// the same records (Record, Change, Maybe, the Processor API, the errors
// users match on) is package operators.
//
// A compiled topology is a graph of typed nodes. When a task starts, each
// node is instantiated once for that task, leaves first, and wired to its
// children as typed Node values, so a record moves through a task as an
// operators.Record[K, V] passed by value from one Process call to the next.
//
// Nodes reach their task through a Context: the operators.ProcessingContext
// a user processor also sees, plus the hooks only built-in nodes use (the
// Collector sinks write to, StampRecord for sources, RecordDropped for drop
// counters, the error handlers: DeserializationError, ProcessingError,
// ProductionError). The task hands each node's children over as Guarded,
// and Fanout puts a guard on every edge: it recovers a panic of the node as
// an *operators.PanicError naming it and hands it, and the node's own
// serialization failures, to the handlers (guard.go); a user processor's
// and its punctuators' errors go to the processing handler unless they are
// not the user's (a child's, a store's: userFailure, user.go). internal/task implements it once
// per node, for the runtime and the test driver alike; nothing here
// imports either. UserProcessor hands a user's processor only the
// ProcessingContext, so a type assertion cannot reach these hooks.
//
// A node that drops a record calls RecordDropped with a reason that names
// what the record was ("null-key", "null-value", "late", ...), not where it
// was dropped: the node is a label of its own. RecordDropped counts it and
// logs it at a limited rate, except for the reasons whose callers log more
// (late records with their window).
//
// Key-value and time-window stores of aggregations and tables hold
// timestamped values, as Kafka Streams' do (a stream-stream join's window
// stores hold plain values, as Kafka Streams' do too): an 8-byte big-endian timestamp, then the value's encoding
// (DecodeTimestamped). A store with a record cache forwards updates when
// the cache flushes, as Kafka Streams' cache flush listeners do.
package nodes
