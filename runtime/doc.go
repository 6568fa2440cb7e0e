// Package runtime runs a compiled topology on Kafka: it is the engine
// behind a Sluice service.
//
// An App is one instance of an application. New takes the topology and
// functional options (ApplicationID, Brokers, ClientOptions for TLS and SASL,
// StateDir, CommitInterval, Workers, Logger, Registerer); Run connects,
// creates the internal topics, joins the consumer group named by the
// application ID and processes until its context ends, Close is called or a
// fatal error occurs. Start more instances with the same application ID to
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
// rebalance. Before start-up the runtime checks that the inputs of every
// sub-topology that keeps state have the same partition count, and fails
// with a CoPartitionError naming the topics and counts otherwise.
//
// # Processing and commits
//
// One goroutine polls; Workers goroutines process the polled records, each
// task's records by one goroutine, in the order of the smallest head
// timestamp across the task's partitions. Output is produced
// asynchronously. Every CommitInterval (default 30s, as in Kafka Streams)
// the runtime flushes the stores, waits for every produced record (output
// and changelogs) and then commits the offsets of the processed records:
// at-least-once, output and state reach Kafka before the offsets that cover
// them. Records of repartition topics below the committed offsets are then
// deleted. When tasks move away, they are committed first.
//
// # State
//
// Stores are kept in memory and every write is logged to the store's
// changelog topic, "<application.id>-<store>-changelog", on the task's
// partition; a task restores its stores from their changelogs when it is
// assigned, so state moves with its task. Each changelog record carries the
// position of the input record that caused it, and a restored task resumes
// after the latest input its state reflects when that is past the group's
// committed offset (a crash between flushing the changelog and committing):
// input is not applied to the state twice. (For a task with several stores,
// a crash between the writes of one input record to two changelogs can
// leave one store a record ahead; exactly-once closes that gap.) Persistent
// Pebble stores, the record cache and checkpoints come with the
// durable-state work.
//
// # Shutdown
//
// On context cancellation or Close, Run stops polling, finishes the records
// in hand, flushes, commits, closes the stores and leaves the group, and
// returns nil. SignalContext gives a context that a SIGINT or SIGTERM
// cancels, and a second signal exits at once.
//
// # Errors
//
// Start-up errors name what is wrong: BrokerError (the brokers cannot be
// reached within StartupTimeout), MissingTopicError, CoPartitionError,
// ConfigError (naming the option). Processing errors name the task, node,
// topic, partition and offset.
package runtime
