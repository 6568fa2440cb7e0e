// Package state holds the state stores that stateful operators and user
// processors read and write: the store interfaces, typed views over them and
// their implementations: key-value stores in memory and in Pebble, window
// and session stores over either, and the record cache in front of them.
//
// Stores hold bytes. Operators see them through typed views (KV) that encode
// keys and values with the serdes the topology declared, so the bytes layout
// is what the changelog topic carries and what a Kafka Streams application
// would write for the same serdes.
//
// Keys are ordered by bytes.Compare. Range and prefix iteration return
// iter.Seq2 sequences in key order; the slices they yield are valid only until
// the next iteration step.
//
// # Record cache
//
// A CachingStore in front of a store holds each key's latest write until
// the task commits (or the cache, a byte budget shared by the task's stores,
// is full): reads are served from it, and consecutive updates of a key are
// written below, logged and forwarded downstream as one, with the old value
// the store below held (Kafka Streams' CachingKeyValueStore and its flush
// listener). Evicting a dirty entry flushes it and then every other dirty
// entry of its store, in last-write order, as Kafka Streams'
// NamedCache.evict does. A key put and deleted between two flushes that the
// store below never held is forwarded as nothing, as in Kafka Streams,
// unless a table's value getter read the put value with GetShared in
// between (the getters of joins that retract: a foreign-key join's
// subscription answer, a table-table join): then the delete is forwarded, with no old value, so that the
// join that answered with the value retracts it (Kafka Streams drops it and
// leaves the answer stale). internal/task builds the same store stack (base,
// changelog logger, record cache, window or session store) for the runtime
// and the test driver; the test driver adds the cache only when asked.
//
// # Versioned key-value stores
//
// A VersionedKeyValueStore (NewVersionedKeyValueStore, over any
// KeyValueStore) keeps each key's latest version and its history within the
// history retention, and reads a key as of a timestamp, with Kafka Streams'
// semantics (RocksDBVersionedStore): writes older than the observed stream
// time minus the retention are refused (PutNotPut), out-of-order writes go
// into the history without touching newer versions, tombstones are versions
// too, and past the retention only the latest version answers.
//
// Its layout in the store below: 'l' key → validFrom ‖ value for the latest
// version when it is a value; 'h' len(key) key ^validFrom → validTo ‖ flag ‖
// value for every other version, newest first, so the version valid at t is
// the first entry at or after t's key; 'x' expiry len(key) key validFrom →
// empty, an index of the history by the time it stops being readable
// (validTo, or validFrom+1 for a latest tombstone), which every accepted
// write scans up to the observed stream time minus the retention to drop
// what expired; 'm' → the observed stream time. Get is one point read;
// GetAsOf adds one seek when the latest version is too new; a Put writes up
// to four entries, and one older than all of its key's history walks the
// history after it. Kafka Streams packs a segment's versions of a key into
// one value and drops whole segments; here each version goes exactly when it
// expires, for an index entry per version.
//
// The DSL keeps tables in one when they are materialized with a history
// retention (topology.Versioned). Its changelog is not the writes to the
// store below but one record per version (key, value, version timestamp),
// logged above the versioned store; restoring puts the records back as
// versions. It is never behind the record cache.
//
// # A disk that fails
//
// A write Pebble cannot make to its write-ahead log (a full disk, a
// read-only file system) is one it cannot go on from: it calls its
// logger's Fatalf, which a PebbleDB turns into a *FailedError returned by
// the call that caused it (Commit, Flush, a store's Put), naming the
// database's directory, with the OS error as its cause (errors.Is(err,
// syscall.ENOSPC)). Every later write returns it too; the database can
// only be closed. Reopened once the cause is gone, it holds every commit
// that succeeded, and the failed one whole or not at all.
//
// # Pebble layout: one database per task
//
// The runtime opens one Pebble database per task, holding all of the task's
// stores under their own key prefixes (PebbleDB.KeyValueStore) and a meta
// record of the input positions the state reflects, written in the same
// atomic batch as the state (PebbleOptions.BufferWrites, PebbleDB.Commit).
// In front of the batch a buffer of the latest value written to each key
// (PebbleOptions.RecentBytes) answers the reads of recently written keys
// and writes each key to the batch once per commit.
// All databases of an instance share one block cache (PebbleOptions.Cache).
//
// The alternative, one database per instance with every task's stores under
// task-prefixed keys, was measured against it (BenchmarkPebbleLayout: 8
// tasks of 100,000 keys each, 10,000 random read-modify-writes per task per
// commit interval, the record cache's misses; 2 cores, OS file system):
//
//	go test -run '^$' -bench PebbleLayout -benchmem -benchtime 20x -timeout 1h ./state/
//
//	budget  layout                         records/s  ns/get  CPU-ns/rec  write-amp  drop a task
//	16 MiB  per task, 512 KiB memtables      247,237   7,150       6,437        7.0  3 ms, disk back at once
//	16 MiB  per task, 4 MiB memtables         85,262  22,445      18,350        7.0  3 ms, disk back at once
//	16 MiB  shared, 4 MiB memtable           152,950  11,107      12,262       16.0  0.02 ms, disk not back after 30 s
//	16 MiB  shared, 2 compactions            155,126  10,613      12,140       16.1  same
//	80 MiB  per task, 4 MiB memtables        325,505   5,104       5,447        7.1  3 ms, disk back at once
//	80 MiB  shared, 32 MiB memtable          286,495   6,034       5,248        3.2  34% of the disk back after 30 s
//
// Per-task databases win where it matters: 1.6 times the throughput at a
// small budget and 1.14 times at a large one, because each task's LSM is
// smaller (fewer levels for a Get to visit) and compactions of one task
// never rewrite another's data (half the write amplification of the shared
// database at the small budget). Dropping a task that moved away is a
// directory removal that gives the disk back at once, where the shared
// database needs a range deletion whose space comes back only when
// compactions reach it. And a task's atomic commit of its state with its
// input positions is one batch of its own database, with nothing to
// coordinate between tasks. The shared database only wins on write
// amplification with a large memtable (3.2 against 7.0), which per-task
// databases can match by raising MemTableSize. What the per-task layout
// costs: one WAL and one set of memtables per task, bounded by the
// runtime's MemTableBytes (two memtables per task) next to the shared block
// cache; a sync per task at commit, measured at no cost (245,191 records/s
// with a synced commit against 247,237 without).
package state
