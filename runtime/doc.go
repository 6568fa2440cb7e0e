// Package runtime runs a compiled topology on Kafka: it is the engine
// behind a Sluice service.
//
// An App is one instance of an application. New takes the topology and
// functional options (ApplicationID, Brokers, ClientOptions for TLS and
// SASL, StateDir, CommitInterval, Workers, ShutdownTimeout, Logger,
// Registerer); Run connects, creates the internal topics, joins the
// consumer group named by the application ID and processes until its
// context ends, Close is called or a fatal error occurs. Start more instances with the same application ID to
// share the work: Kafka is the distributed engine.
//
// # Tasks and assignment
//
// A task is a sub-topology on one partition number: it owns partition p of
// every topic its sub-topology reads, so records of a key from
// co-partitioned topics meet in one task. The group balancer is Sluice's
// own: it assigns whole tasks, keeps each task where it was as long as the
// group stays balanced by task count, spreads each sub-topology over the
// instances, and is cooperative (KIP-429): only the tasks that move stop,
// first on their old owner, then start on the new one in a follow-up
// rebalance. The assignment is Kafka Streams' high-availability one: each
// member reports how far its local copy of each task's state is (the
// offset sums of its changelogs), a stateful task goes to an instance whose
// copy is within AcceptableRecoveryLag of the changelog's end rather than
// one that would restore it from afar, which gets a warm-up replica instead
// (at most MaxWarmupReplicas) until a probing rebalance
// (ProbingRebalanceInterval) finds it caught up, and NumStandbyReplicas
// standby replicas of each stateful task are kept on other instances. With
// InstanceID the instance is a static member: restarted with the same ID
// within SessionTimeout, it gets its tasks back without a rebalance; it is
// recognised across restarts even without one, by the process ID kept in
// its state directory, so it gets back the tasks it has state for when no
// other instance runs them (or the balance moves them back). Stateful, for
// the assignment, are the tasks with persistent logged stores.
//
// Before start-up the runtime checks that the inputs of every
// sub-topology that keeps state have the same partition count, and fails
// with a CoPartitionError naming the topics and counts otherwise; a
// repartition topic among those inputs whose partition count was not set
// (dsl.Partitions) is created with the count of the others, as Kafka
// Streams' CopartitionedTopicsEnforcer does.
//
// # Global tables
//
// Each instance holds every global table of the topology whole, every
// partition of its topic, in global stores outside the tasks (global.go).
// At start-up, after the internal topics are created and before the
// instance joins the group, each global store is restored from its topic
// itself (a global store has no changelog; none is created), partition by
// partition with the changelog reader, from the offsets in the store's
// own checkpoint file, <StateDir>/<application ID>/global/<store>.checkpoint,
// to the end offsets listed when each read starts: no task processes a record before every global table has
// caught up. Then a client of its own, in no consumer group, reads on
// from there for as long as the instance runs, and applies each record at
// once; tasks read the global stores meanwhile through read-only views.
// Records go through the global table's source and processor, both in the
// restore and after, keeping their own Kafka timestamps (no extractor, as
// in Kafka Streams): a record that cannot be deserialized goes to the
// deserialization handler (OnDeserializationError; counted with the task
// label "global"; DeadLetter drops it, counted, as Kafka Streams writes no
// dead-letter record for a global store), and an error names the topic,
// partition and offset and stops the instance. Every CommitInterval and at shutdown the global
// stores are made durable, then their checkpoint is written.
//
// # Processing and commits
//
// One goroutine polls; Workers goroutines process the polled records, each
// task's records by one goroutine, in the order of the smallest head
// timestamp across the task's partitions. Output is produced
// asynchronously. Every CommitInterval (default 30s, as in Kafka Streams)
// the runtime commits (the committer; at-least-once by default), in this order: the tasks flush their record caches
// (forwarding each key's latest update downstream and to the changelog);
// it waits for every produced record (output and changelogs); each task
// commits its local state together with the input positions it reflects,
// in one Pebble batch, synced in the background (the next commit waits for
// the sync; a crash loses at most the last commit's local copy, restored
// from the changelogs); the group's offsets are committed. The checkpoint
// file of changelog offsets is written when a task closes and after a
// restore. At-least-once: output
// and state reach Kafka before the offsets that cover them. Records of
// repartition topics below the committed offsets are then deleted. When
// tasks move away, they are committed first.
//
// # Exactly-once
//
// With ProcessingGuarantee(ExactlyOnce) the group client is also a
// transactional producer (transactional ID <application ID>-<InstanceID>,
// else <application ID>-<process ID>, stable across restarts) and reads
// read_committed. Every CommitInterval (default 100ms) one transaction
// holds the output, changelog and repartition records of all the
// instance's tasks and their input offsets, added with a TxnOffsetCommit
// of the runtime's own (txn.go) with each task's processor metadata in the
// offset metadata of its partitions (read back merged by the largest value
// per key); the tasks' local state is committed after the
// transaction, so it is never ahead of committed data and at most one
// commit behind after a crash (no checkpoint file per commit). A commit
// that produced nothing commits the offsets with a plain offset commit,
// which leaves no transaction open. A failed commit aborts the transaction
// and revives every task: closed without a commit, opened again, its
// partitions rewound to the committed offsets (reviveLocked; only the poll
// loop rewinds, between a poll and AllowRebalance). A revoke commits the
// transaction of all ready tasks; lost partitions abort it, and a lost
// session rejoins. After a transactional error the abort decides whether
// the instance goes on; an instance fenced by a newer one with the same
// transactional ID or InstanceID (or whose producer the broker fenced
// after its transaction timed out) makes Run return a *FencedError. A
// task restores its changelog read_committed to the log end offset, once
// every transaction open below it is over, as Kafka Streams. The committed
// offsets a task resumes from are fetched stable (RequireStable): the
// fetch waits while a transaction committing offsets of the group is
// open, logs the transactions holding them past TransactionTimeout+15s
// (unstable.go) and fails Run past 3*TransactionTimeout+60s, naming them:
// a transaction open that long is hanging (Kafka 4.3.1 loses the markers
// of a transaction committed while the broker shuts down), and only an
// operator can end it (kafka-transactions.sh find-hanging, abort).
//
// # State
//
// Each task keeps its stores in a Pebble database of its own in
// <StateDir>/<application ID>/<task ID> (one block cache shared by all,
// BlockCacheBytes; MemTableBytes per task), or in memory for stores
// declared InMemory, behind a record cache (CacheMaxBytes, shared out among
// the tasks; 0 turns caching off, and a store can opt out with
// DisableCaching). Every write that leaves the cache is logged to the
// store's changelog topic, "<application.id>-<store>-changelog", on the
// task's partition, with a header of the input position it reflects, in
// Kafka Streams' layouts (docs/changelogs.md). Only
// one App at a time may use a state directory: Run fails with
// state.ErrStateDirLocked otherwise.
//
// When a task is assigned, its partitions are paused and each store
// restores its changelog from the offset in the task's checkpoint file
// (from the start without one, or for an in-memory store) to the end, with
// a client of its own and bulk writes, in a goroutine of the task's: the
// other tasks go on processing, and the task joins them, its partitions
// resumed, once restored; progress is logged and counted (sluice_restored_records_total,
// sluice_restore_remaining_records). A graceful restart therefore restores
// nothing, and a restart after a crash only what was written since the last
// commit. Changelog records of a flush whose commit never completed (their
// input position is past the later of the group's committed offset and the
// position recorded with the local state) are not restored: the task
// resumes at that position and processes their input again. So neither a
// crash (kill -9 at any moment) nor a move of the task applies an input
// record to the state twice or loses one; only output may repeat. The
// state of a task that moved to another instance is deleted after
// StateCleanupDelay (10 minutes by default), unless it comes back first.
// Local state whose last commit never reached the group is discarded and
// restored when the changelog shows that another instance processed the
// task since.
//
// Standby tasks (NumStandbyReplicas; standby.go) keep copies of other
// instances' task state current in the tasks' usual directories: one
// client in no group reads their changelogs (read_committed under
// exactly-once) from the offsets in each task database's meta record, and
// applies the records into the database's pending writes, committed every
// CommitInterval with the changelog offsets and input positions they
// reflect. Under at-least-once a record whose input the group has not
// committed yet waits until it has, so that a copy never holds more than a
// restore would keep. When a standby task becomes active on its instance
// it is committed and closed first, and the task restores only what it
// lacked. In-memory stores are not kept by standbys (Kafka Streams keeps
// them): they restore in full when the task becomes active. An open
// standby's directory is neither swept nor deleted by a cleanup timer.
//
// Known gaps: under at-least-once, windowed aggregations keep their
// processor metadata (the largest timestamp seen, the last emitted close
// time) with the local state only, not in the offset commit's metadata as
// Kafka Streams (and exactly-once) does, so a
// task restored on an instance without its local state starts from the
// store's latest window as a lower bound of stream time, and emit-final
// may emit closed windows still in retention again (with the same
// results). A write made by a punctuator is tagged with the task's last
// input record (for a stream-time punctuation, the record that fired it),
// so after a crash before the next commit a wall-clock punctuation's
// writes are not restored: it fires again later, as the clock goes on.
// Across a task's partitions the smallest head event time goes first; a
// task whose partition is empty but has records the consumer has not
// fetched yet (the fetch's high watermark is past the fetch position,
// control records kept to know it), or that no fetch has returned yet,
// waits for it, at most maxFetchWait, rather than run ahead (Kafka
// Streams' PartitionGroup with a fetch lag above zero or unknown).
//
// # Shutdown
//
// On context cancellation or Close, Run stops polling, finishes the records
// in hand, flushes, commits, closes the stores and leaves the group, and
// returns nil. From that moment no task is created: an assignment that
// arrives during the shutdown is not acted on, and a restore in progress is
// cancelled (the task's next start restores from its checkpoint again). The
// whole shutdown takes at most ShutdownTimeout (default 30s, Kubernetes'
// default grace period; Kafka Streams: KafkaStreams.close(Duration)), in
// every state, a rebalance in progress included: what is unfinished at the
// bound (typically the client's group leave, waiting for a rebalance held
// up by a crashed member) is abandoned, the App leaves the group with a
// LeaveGroup request of its own (not as a static member), and the clients
// are closed. The block cache and the
// state directory are released only after the clients are closed, when no
// callback can open a store any more. SignalContext gives a context that a
// SIGINT or SIGTERM cancels, and a second signal exits at once.
//
// # Start-up, broker outages and state
//
// Run waits for the brokers: a refused connection, a name that does not
// resolve yet or a timeout is retried, with a backoff up to 1 s and a
// warning at most every 5 s, until StartupTimeout (default 30 s) has
// passed; Run then fails with a BrokerError naming the brokers, the
// timeout and the last error. Errors no retry cures (authentication, a
// Kafka error that is not retriable) fail at once.
//
// While running, every client of the App reports its connection attempts
// and requests to one watcher (franz-go's hooks; brokers.go). When every
// broker the App talks to has failed for a second, the App logs a warning
// naming the brokers and the last error, BrokersReachable reports false
// with the outage's start, and the gauge sluice_brokers_reachable is 0;
// the first answer ends the outage, logged once. An outage is never fatal:
// franz-go retries fetches, group requests and produces (no delivery
// timeout); an at-least-once commit the brokers cannot take is postponed
// to the next interval (nothing committed, nothing lost); under
// exactly-once a commit that fails is aborted and the tasks revived, the
// abort and the committed-offset fetch waiting for a broker. Processing
// resumes by itself when a broker answers again.
//
// State returns the App's State, Kafka Streams' KafkaStreams.State with
// its transitions: Created, then Rebalancing from Run (start-up, joining,
// restoring), Running once in the group with every task restored,
// PendingShutdown and NotRunning after a shutdown asked for,
// PendingError and Error after a fatal error. A broker outage changes no
// state, as in Kafka Streams. OnStateChange is called on each change. See
// docs/operations.md.
//
// # HTTP server and metrics
//
// With HTTPAddr the App serves HTTP (the listener opens in New, so that a
// port in use fails New with a ConfigError; requests are served from Run's
// start until Run returns, after the final state is set): /metrics
// (Prometheus' text format), /healthz (200 unless the App failed or
// stopped), /readyz (200 once Running with no active task restoring, else
// 503 naming the reason and the tasks restoring), /topology (Describe's
// text, ?format=json, mermaid or dot), /api/state, and the parts of the
// other files of http_*.go. The operations endpoints take no lock: they
// read atomics, so they answer while a commit or a rebalance runs.
//
// Every App has a Prometheus registry: the Registerer given, served if it
// is a Gatherer, or one of its own. Every Kafka client of the App (each
// kgo.NewClient starts from baseClientOpts) carries franz-go's kprom
// hooks, one kprom.Metrics per client (kprom keeps one client's
// collectors), under sluice_kafka_ with a client label naming it (admin,
// main, global, standby, restore-<topic>-<partition>, ...).
//
// The App's own metrics (metrics.go, listed in docs/operations.md) cost
// nothing per record: a task's records are counted in its runner and
// timed once per processing round, and the poll loop folds the round into
// the task's counters, latency histogram and records lag gauges
// afterwards; the record caches count hits and misses in atomics read at
// scrape time, and the State is read at scrape time too. Store operation
// latencies are timed only at MetricsRecordingLevel(MetricsDebug) (Kafka
// Streams' metrics.recording.level), by a wrapper of each store's base
// that INFO does not install. GET /api/tasks (http_tasks.go) answers the
// tasks' processed totals, rates and lag from a view the poll loop
// publishes every 200 ms, so a request never waits for App.mu.
//
// # Concurrency and lock order
//
// One goroutine polls and, holding App.mu for a round, activates the
// restored tasks, hands the tasks to the workers, commits and sweeps the
// state directory; the group callbacks (onAssigned, onRevoked, onLost, run
// by franz-go's group goroutine) hold App.mu while they change the set of
// tasks, and the shutdown while it commits and closes them. Methods named
// ...Locked expect App.mu held. The other locks are leaves, taken after
// App.mu or alone and never two at once: closeMu (Close and the cancel of
// Run's context), resumeMu (the resume offsets, which franz-go reads in
// adjustOffsets while the poll loop may hold App.mu in a commit that waits
// for a rebalance, so adjustOffsets must not take App.mu), cleanupMu (the
// timers deleting the state of tasks that moved away); the record cache
// budget's task count is an atomic. stateMu (the State's changes and the
// OnStateChange calls, in order) is innermost: taken after App.mu or
// closeMu or alone, with nothing taken under it but what the listener
// does. A restore goroutine takes none of them: closing a task
// that restores cancels its restore and waits for it with App.mu held.
// What a restoring task's processors send from Init waits in its runner
// for the poll loop (producer.sendFor); the one lock it takes is the
// producer's rememberedMu, a leaf the poll loop writes under (an abort's
// refusals, a commit's forgetting) and the restore reads under.
// The standby set's lock (standbys.mu) comes after App.mu and before
// cleanupMu: the group callbacks open and close standby tasks holding
// both App.mu and it; the standby reader's goroutine applies and commits
// holding only it, reports a fatal error from a goroutine of its own, and
// is stopped by the shutdown with App.mu held. The cleanup timers and the
// sweep read the set of open standbys from an atomic snapshot.
// The global reader's goroutine takes App.mu only to report a fatal error,
// holding nothing else; it is stopped (and waited for) from release,
// without App.mu, so that wait never blocks it. The lock of an in-memory
// global store (syncStore.mu) is a leaf too, held for one store call by
// the workers, the global reader, and the poll goroutine with App.mu held
// (a commit's cache flush forwards into a stream-global join).
// Interactive queries (iq.go) read a task's store holding App.mu, between
// two rounds, and a standby's holding App.mu then standbys.mu; an HTTP
// query forwarded to another instance holds no lock while it waits.
//
// # Interactive queries
//
// KeyValueStoreView, WindowStoreView and SessionStoreView are typed
// read-only views of a store across this instance's tasks (Kafka Streams'
// KafkaStreams.store), safe while the tasks run: a read holds App.mu, so
// it runs between rounds and reads only tasks that run here, restored.
// Each instance advertises its HTTP address (AdvertisedAddr, default the
// HTTPAddr listener's; Kafka Streams' application.server) in its member
// metadata, and the group leader sends every member every host's active
// and standby tasks with the assignment, so QueryMetadataForKey and
// Instances answer where any key's task runs. With HTTPAddr the App serves
// the stores as JSON (/api/stores, /stores/{store}/keys/{key},
// /stores/{store}/range), forwarding a query once to the instance running
// the key's task, and answering 503 with Retry-After while the task moves
// or restores: never another instance's stale value. See
// docs/interactive-queries.md.
//
// # Errors
//
// Start-up errors name what is wrong: BrokerError (the brokers cannot be
// reached within StartupTimeout, or refused the TLS handshake or the SASL
// credentials), AuthorizationError (an ACL the application needs is
// missing: it names the resource type, the resource and the operation),
// MissingTopicError (a source topic, or the DeadLetterQueue topic),
// CoPartitionError, ConfigError (naming the option). Processing errors name
// the task, node, topic, partition and offset.
//
// A failed record need not stop the instance: three handlers, as Kafka
// Streams 4.x has them, decide about a record a source cannot deserialize
// (OnDeserializationError), an error or a panic of user code
// (OnProcessingError: a panic never crashes the process, it becomes an
// *operators.PanicError naming the node), and a record a sink cannot
// serialize or Kafka refuses (OnProductionError). Each returns Fail (the
// default), Continue (drop, log, count in sluice_dropped_records_total) or
// DeadLetter: the input record, as read, goes to the DeadLetterQueue topic
// with Kafka Streams' error headers, written through the task's producer
// in the commit (under ExactlyOnce, the transaction) that moves the input
// offset past it, and counted in sluice_dead_letter_records_total. A
// store's or the producer's error is never a handler's to skip: it stops
// the instance. docs/errors.md has the details and the differences from
// Kafka Streams.
//
// A record a sink writes that Kafka cannot take goes to OnProductionError
// (deadletter.go; docs/errors.md, "Production errors") with the input record that
// caused it: one over its topic's limit (the smaller of the producer's
// ProducerBatchMaxBytes and the topic's max.message.bytes) before it is
// produced, one the broker refuses (MESSAGE_TOO_LARGE, INVALID_RECORD, a
// policy violation, ...) after, through its promise, which knows its
// origin. Fail stops Run with an *operators.NodeError wrapping an
// *operators.ProductionError (sink, topic, size); Continue drops it,
// counted; DeadLetter writes the input record to the DeadLetterQueue topic
// before the commit that passes it (under ExactlyOnce in its transaction:
// a refusal aborts the transaction, and the replay hands the record to the
// handler before producing it). A changelog record Kafka refuses is fatal.
//
// # Security
//
// TLS and one of SASLPlain, SASLScram256, SASLScram512 configure every
// Kafka client the App makes (they all start from one set of options). At
// start-up the App compares the operations the brokers authorize its
// principal with those it needs (READ on the inputs, WRITE on the
// outputs, CREATE, READ, WRITE and DELETE on its prefixed internal
// topics, READ on its group, WRITE on its transactional ID under
// ExactlyOnce: Kafka Streams' list), so that a missing ACL fails Run at
// once with an AuthorizationError. The SASL password is never formatted:
// the configuration Run logs at start shows it as [redacted]. See
// docs/security.md.
//
// # Web page
//
// With HTTPAddr the App serves a web page at "/" (http_ui.go): its files,
// runtime/web/, are embedded in the binary and fetch nothing but the App's
// own JSON endpoints, from which the page shows the application's state,
// draws the topology, tables the tasks' throughput and lag each second and
// looks keys up in the queryable stores. docs/operations.md, "Web page".
package runtime
