// Package dsl is Sluice's typed, fluent builder of stream-processing
// pipelines, in the manner of Kafka Streams' StreamsBuilder.
//
// A pipeline starts from a Builder and topics (FromTopic, FromTopics,
// TableFromTopic, GlobalTableFromTopic) and is linked by typed handles:
// Stream[K, V] for record streams, Table[K, V] for changelog tables,
// GlobalTable[K, V] for tables every instance holds whole, Grouped and
// GroupedTable for groupings ready to aggregate. Operations that keep the key and value types
// are methods (s.Filter, s.Peek, s.Merge, s.Split, s.Repartition, s.To,
// s.GroupByKey, g.Count, t.ToStream); operations that change a type are
// package functions, because Go methods cannot take type parameters
// (MapValues, Map, FlatMap, FlatMapValues, SelectKey, GroupBy, Aggregate,
// JoinTable, LeftJoinTable, Join, LeftJoin, OuterJoin, JoinGlobal,
// LeftJoinGlobal, TableJoin, TableLeftJoin, TableOuterJoin,
// TableJoinForeignKey, TableLeftJoinForeignKey, TableMapValues,
// TableGroupBy, TableAggregate, Process). A lambda or serde of the wrong type is a compile error.
//
//	b := dsl.NewBuilder()
//	lines := dsl.FromTopic(b, "text-input", serde.String, serde.String)
//	words := dsl.FlatMapValues(lines, func(line string, emit func(string)) { ... })
//	counts := dsl.GroupByValue(words, func(w string) string { return w }, serde.String).
//		Count(dsl.Named("counts"))
//	counts.ToStream().To("word-counts", serde.String, serde.Int64)
//	topo, err := b.Build()
//
// Build compiles the pipeline into a topology.Topology: sub-topologies split
// at repartition topics, state stores, and the internal topics to create.
// A key-changing operation (Map, SelectKey, FlatMap, Process, GroupBy)
// followed by a stateful one inserts "<name>-repartition" so that records
// of a key meet in one task. Errors are collected while the pipeline is
// built and reported by Build, each naming the node at fault: a missing
// serde, a duplicate name, an empty topology. Nodes that share a store
// (a Process node connected to a table's store, say) run in one task, so
// Build merges their sub-topologies, as Kafka Streams does; the source
// topics of a sub-topology that keeps state must be co-partitioned
// (topology.Topology.CoPartitionGroups), which the runtime checks at
// start-up. A global table is a sub-topology of its own that generates no
// task: every instance holds all of it, and a stream joins it by a key it
// selects from each record, with no co-partitioning and no repartition.
//
// # Table joins
//
// TableJoin, TableLeftJoin and TableOuterJoin join two tables on their
// keys into a Table, with Kafka Streams' KTable-KTable join semantics: both
// sides emit, the result's timestamp is the larger of the two rows' (a
// delete's own timestamp counts), and the rules for deletes are Kafka
// Streams'. Neither input needs a store of its own: as Kafka Streams'
// KTableValueGetterSupplier, a table that is not materialized (a Filter or
// TableMapValues without Materialized, a join result) is read through a
// value getter chained to the nearest materialized table above it, and the
// join's nodes are connected to that table's store. The inputs run in one
// task, so their topics must be co-partitioned. See docs/semantics.md.
//
// TableJoinForeignKey and TableLeftJoinForeignKey join each row of a table
// with the row of another table whose key a function extracts from it
// (Kafka Streams' foreign-key joins). The two tables need not be
// co-partitioned: left rows subscribe to their foreign key through an
// internal subscription topic partitioned like the right table, and the
// right side answers through a response topic partitioned like the left
// one, in Kafka Streams' wire formats; answers for a left value that has
// changed since are dropped by comparing the hash of its serialization.
//
// # Versioned tables
//
// StoreOptions.HistoryRetention keeps a table in a versioned store: each
// key's versions within the history retention, readable as of a time, as
// Kafka Streams' versioned key-value stores. A table record older than its
// key's latest version goes into the history instead of replacing it, and
// is forwarded as an update that is not the latest
// (operators.Change.NotLatest), which table aggregations and table-table
// joins skip. A stream-table join reads a versioned table as of each
// stream record's timestamp; with JoinGrace it first holds stream records
// in a buffer for the grace period, so table updates that arrive late are
// seen. OpenVersionedTableStore reads one from a processor,
// testdriver.VersionedKeyValueStore from a test. See docs/semantics.md.
//
// # Names
//
// Nodes, stores and internal topics get generated names in the style of
// Kafka Streams (KSTREAM-FILTER-0000000001), numbered in the order the
// operations are called, with the same numbering rules, so Describe prints
// what Kafka Streams prints for the same pipeline. Named fixes a name: for a
// stateful operation it names the store and the internal topics derived
// from it ("counts" → "counts-changelog", "counts-repartition"). Generated
// store names change when operations are added upstream, which orphans the
// old state; RequireNamedStores makes Build refuse them.
//
// # Serdes
//
// Sources take the serdes of their topics, and a stream carries them along
// while its types stay the same. An operation that changes a type loses the
// serde of that type; set it again with WithKeySerde or WithValueSerde, or
// pass it to the operation that needs it (To, GroupBy, Aggregate).
//
// # Nulls
//
// A Kafka null key or value is never handed to user code as a zero value.
// A record an operation drops, for a null or any other reason below, is
// counted by its node and a reason that says what it was ("null-key",
// "null-value", "late", "invalid-timestamp", "deserialization-error", ...:
// the runtime's sluice_dropped_records_total, the test driver's
// DroppedRecords) and logged, at most one line per node and reason per 10
// seconds.
// Records carry it as a flag (operators.Record's NullKey and Tombstone, or
// MaybeKey and MaybeValue), and where a function must see or make one, the
// type says so: Maybe[V] (Some, None) is the DSL's absent value, also for
// the absent side of outer joins. The rule for a function that takes a key
// or value: it is not called with a null, and the operation does what it
// can without it:
//
//   - FromTopic, FromTopics: nulls are read as nulls; a Timestamps
//     extractor gets the key and value as Maybe.
//   - Filter, FilterNot, Peek: the record passes on untouched, the function
//     is not called. Foreach: not called. Split: the record goes to the
//     default branch, or is dropped and counted if there is none. Merge, Repartition's
//     tombstones: passed on.
//   - MapValues, FlatMapValues: a tombstone is forwarded as one tombstone;
//     a null key with a value is mapped and stays null.
//   - Map, FlatMap, SelectKey, GroupBy: a record with a null key or value
//     is dropped and counted ("null-key", "null-value": a null key wins
//     when both are null). GroupByValue keys a null-key record from its
//     value and drops tombstones.
//   - FilterNullable, PeekNullable, MapNullable, MapValuesNullable,
//     SelectKeyNullable: the function gets the key and value as Maybe and
//     decides; an absent result is written as a Kafka null.
//   - Process: the processor sees every record with its flags.
//   - Repartition and the repartitions before an aggregation or a join: a
//     null key is dropped and counted by the "-repartition-filter" node,
//     unless a left or outer join (LeftJoin, OuterJoin, LeftJoinTable,
//     LeftJoinGlobal) is downstream, which then gets the record, as in
//     Kafka Streams 4.
//   - Count, Reduce, Aggregate and the sliding-window aggregations: a null
//     key or value is dropped and counted, as in Kafka Streams.
//   - Time-window and session aggregations: a null key is dropped and
//     counted. Their Count counts a tombstone, as Kafka Streams' does
//     (those aggregations drop only null keys); their Reduce and Aggregate
//     drop and count it, where Kafka Streams would hand the null to the
//     aggregator: a typed Go function never receives one.
//   - To: a null is written as a Kafka null, without the serde. ToFunc's
//     extractor gets the key and value as Maybe.
//   - JoinTable, LeftJoinTable: a stream tombstone is dropped and counted
//     ("null-value"); a null key is dropped and counted ("null-key") by
//     JoinTable, and joined with None, key still null, by LeftJoinTable (as
//     Kafka Streams 4 does); a row deleted in the table is absent.
//   - Join, LeftJoin, OuterJoin (stream-stream): a record with a null key
//     or value is dropped and counted ("null-key", "null-value") by the
//     join node of its side, except that a null-key record with a value on
//     an outer side (the left input of LeftJoin, both of OuterJoin) is
//     joined with None at once and forwarded with its null key (Kafka
//     Streams 4); the joiner, which takes the key unwrapped, then gets the
//     key type's zero value. Records that meet nothing in a left or outer
//     join are joined with None once their window has closed.
//   - JoinGlobal, LeftJoinGlobal: a stream tombstone is dropped and
//     counted ("null-value") without calling the key selector; the
//     selector and the joiner get the stream key as a Maybe, and it is the
//     selected key that counts (Kafka Streams 4.3): None selected is
//     dropped and counted ("null-key") by JoinGlobal, and joined with None
//     by LeftJoinGlobal; a null stream key whose selected key has a row
//     joins, and is forwarded with its null key.
//   - TableFromTopic, GlobalTableFromTopic: a tombstone deletes its key
//     (a delete of an absent key is not forwarded); a null key is dropped
//     and counted.
//   - Table Filter, TableMapValues, TableGroupBy and the table
//     aggregations see the old and new values of an update only where
//     they exist (operators.Change's HasNew and HasOld); ToStream turns a
//     delete into a tombstone. A TableGroupBy mapper that returns None for
//     the key leaves that row out, as Kafka Streams skips a null key.
//   - TableJoin, TableLeftJoin, TableOuterJoin: a joiner never sees a
//     deleted row; the side a left or outer join keeps without a row is
//     None. A delete deletes the result where the join has no row left
//     for the key, else joins the remaining side with None.
//
// # Event time and windows
//
// A record's event time is its Kafka timestamp, or what a source's
// extractor says (Timestamps: a field of the value, for example; or
// WallClockTimestamps). A negative timestamp is invalid and handled by the
// source's OnInvalidTimestamp policy: fail (the default), skip and count
// ("invalid-timestamp"), or use the task's stream time. Stream time, the
// largest event time a task has seen, never goes back.
//
// WindowedBy (tumbling and hopping windows, window.Tumbling and
// window.Hopping), WindowedBySliding and WindowedBySession turn a grouped
// stream into a windowed one whose Count, Reduce and aggregations
// (WindowedAggregate, SlidingAggregate, SessionAggregate, the last with a
// merger) produce a table keyed by window.Windowed keys, written to topics
// as Kafka Streams writes them (key ‖ int64 start; sessions: key ‖ int64
// end ‖ int64 start). Windows are epoch-aligned and half-open, [start,
// end); a window closes when the aggregation's stream time reaches end +
// grace, and a record for a closed window is dropped, counted ("late") and
// logged at a limited rate. By default every update is forwarded (through
// the record cache, so once per key and window per commit in the runtime);
// EmitFinal forwards each window once, when it closes. The window store
// keeps a window for size + grace (sessions: gap + grace) after it starts,
// or longer with StoreOptions.Retention; its changelog uses compact,delete
// with that retention plus a day. CloseWhenIdle, off by default and a
// departure from Kafka Streams, lets wall-clock time close windows when no
// record arrives for a while.
//
// # Suppress
//
// Table.Suppress holds a table's updates back in a buffer, one entry per
// key (Kafka Streams' KTable.suppress). UntilWindowCloses, on the table of
// a windowed aggregation, emits each window once, with its final value,
// when the suppress node's stream time (the largest timestamp of the
// updates it was given) reaches the window's end + grace (sessions: end +
// gap + grace), in window-end order, dropping deletes. UntilTimeLimit
// emits a key's latest update once the limit has passed since its first
// buffered update (0: at once). BufferConfig bounds the buffer by records
// and bytes, emitting the oldest entries early or failing the task when
// full. The buffer is logged to a changelog in Kafka Streams' format and
// restored with its task, so a restart neither loses a result nor emits
// one again with another value. A join reading a suppressed table sees,
// for a buffered key, the value emitted before its buffered updates.
//
// # Testing
//
// Package testdriver runs a topology in memory with no broker; see the
// examples.
package dsl
