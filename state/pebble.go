package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// PebbleOptions configures OpenPebble. The zero value is a sensible default:
// the OS file system, a private 8 MiB block cache, 4 MiB memtables, a
// write-ahead log and one compaction at a time.
type PebbleOptions struct {
	// FS is the file system the DB lives in. Nil means vfs.Default, the
	// operating system's; tests use vfs.NewMem() or vfs.NewCrashableMem().
	FS vfs.FS

	// Cache is the block cache: uncompressed sstable blocks (data, index and
	// bloom filter blocks) shared by every DB opened with it, so an instance
	// budgets one amount of memory however many DBs it opens. Each DB takes
	// its own reference; the caller keeps the one pebble.NewCache returned
	// and must Unref it when it no longer opens DBs with it (the memory is
	// freed when the last DB closes). Nil means a private 8 MiB cache.
	//
	// Kafka Streams: the block cache a rocksdb.config.setter sets on
	// BlockBasedTableConfig (a private 50 MiB LRU cache per store by default).
	Cache *pebble.Cache

	// MemTableSize is the size in bytes of one memtable, the sorted in-memory
	// buffer writes go to before they are flushed to an sstable. Up to two
	// are in memory at once (one filling, one flushing; writes stall when
	// both are full). Zero means Pebble's default, 4 MiB. Larger memtables
	// mean fewer, larger L0 files and less compaction per byte written, at
	// the cost of memory and of a longer WAL to replay on open.
	//
	// Kafka Streams: write_buffer_size (16 MiB, three of them, per store).
	MemTableSize uint64

	// DisableWAL turns off Pebble's write-ahead log. Writes then only reach
	// the disk when a memtable is flushed, either because it is full or on
	// Flush (or a Batch committed with sync), which costs one small sstable.
	//
	// The trade-off: without the WAL every write costs one copy less (no log
	// append, no log fsync) and the disk sees about half the bytes, but a
	// crash, even a process crash, loses every write since the last memtable
	// flush, so the task restores more of its changelog on restart. What
	// survives is still consistent: flushes persist whole memtables in
	// commit order and a batch never spans two, so the DB after a crash
	// holds exactly the batches committed up to some point, each entirely
	// or not at all. A task that writes its changelog offsets as a meta
	// record in the same batch as its state (see Batch) therefore always
	// knows where to resume restoring; an offset checkpoint file kept
	// outside the DB does not have that property and must not be trusted
	// beyond the DB's own record.
	//
	// Kafka Streams always disables RocksDB's WAL, for this reason.
	DisableWAL bool

	// BufferWrites holds every write of the DB's stores (Put, Delete,
	// DeleteRange) in one pending batch until Commit, instead of applying
	// it at once. Reads through the stores see the pending writes merged
	// over the DB (Pebble's indexed batch); nothing pending reaches the disk,
	// however the DB is flushed or crashes, before Commit applies it
	// atomically together with the meta records put with PutPendingMeta.
	// This is how a task keeps its local state from running ahead of its
	// changelog: it commits its writes only after the changelog holds them.
	// Explicit Batches and PutMeta still apply at once.
	BufferWrites bool

	// RecentBytes bounds the buffer of recent writes that a DB buffering
	// its writes (BufferWrites) keeps in front of its pending batch: the
	// latest value (or deletion) written to each key through its stores,
	// in a Go map. Reading a key written a moment ago, the every-update
	// path of an aggregation or a join, then costs a map lookup instead of
	// a Get merging the pending indexed batch over the LSM, and a key
	// written many times between two commits is inserted into the batch
	// once, when Commit (or an iteration, a range deletion, a Batch's
	// commit, an eviction) writes the buffer to it. What Commit applies is
	// the same. Zero means 1 MiB; a negative value turns it off. Values
	// larger than an eighth of it go to the batch directly.
	RecentBytes int

	// MaxConcurrentCompactions is the most compactions this DB runs at once.
	// Zero means one, Pebble's default. Pebble goes above one only when it
	// falls behind (L0 piling up or a compaction debt over 1 GiB), so a
	// higher limit costs nothing while the DB keeps up. A DB shared by many
	// tasks on a machine with spare cores should raise it; each DB of a
	// per-task layout has its own limit.
	//
	// Kafka Streams: max_background_jobs (RocksDB's default, 2, per store).
	MaxConcurrentCompactions int

	// Logger receives Pebble's messages: background errors and the reports
	// of data corruption that precede a panic. Nil discards them.
	Logger *slog.Logger
}

// defaultPebbleCacheSize is the size of a DB's private block cache when
// PebbleOptions.Cache is nil: Pebble's own default.
const defaultPebbleCacheSize = 8 << 20

// bloomBitsPerKey sizes the bloom filters written into every sstable: ten
// bits per key give a false positive rate near 1%, so a Get skips the data
// blocks of nearly every table on its way down the LSM that lacks the key,
// at 1.25 bytes per key of filter blocks (cached like any other block).
// Pebble writes no filters unless told to; Kafka Streams configures RocksDB
// with the same ten bits per key.
const bloomBitsPerKey = 10

// Key layout. Every key of the DB starts with a tag byte: meta records use
// metaTag, store entries use storeTag followed by the store's name as
// uvarint(len(name)) ‖ name. A uvarint is a prefix-free code, so the
// encodings of two different names are never prefixes of each other (the
// encodings of "a" and "ab" are 01 'a' and 02 'a' 'b'), and two stores never
// see each other's keys, whatever their names and keys.
const (
	metaTag  byte = 0x00
	storeTag byte = 0x01
)

// PebbleDB is a Pebble database holding any number of key-value stores, each
// under its own key prefix, and a namespace of meta records. Stores of one
// DB can be written together atomically with a Batch.
//
// A PebbleDB is safe for concurrent use: tasks on different goroutines may
// each use their own stores of one DB. A store returned by KeyValueStore is
// not (see KeyValueStore).
type PebbleDB struct {
	db         *pebble.DB
	dir        string
	disableWAL bool
	closed     atomic.Bool
	// fatal is the failure Pebble could not go on after, if any
	// (pebbleLogger.Fatalf; failed).
	fatal *atomic.Pointer[pebbleFatal]

	// pending is the indexed batch of buffered writes (BufferWrites), nil
	// otherwise. Like the stores, it belongs to the one task using the DB.
	pending *pebble.Batch

	// recent caches the latest values written through the stores
	// (PebbleOptions.RecentBytes), nil when off. Like pending, it belongs
	// to the one task using the DB.
	recent *recentWrites

	// iters are idle iterators over pending, kept for the next Range of a
	// store of the DB (iter, release): a window store's fetch, a join's
	// per record, made a new iterator each (its merging stack over the
	// memtables and each level's files) and closed it, about a third of
	// a stream-stream join's processing. An iterator over an indexed
	// batch sees the batch's later writes once its options are set again
	// (pebble.Iterator.SetOptions), and the DB as of its creation: they
	// are closed (dropIters) before anything else changes the DB or
	// replaces the batch, at the latest at the next commit. Until then
	// they hold the memtables and sstables of their view (a flushed
	// memtable, compacted tables) in memory and on disk. Only a DB with a
	// pending batch (BufferWrites), used by one goroutine, pools them.
	iters []*pebble.Iterator
	// epoch counts the changes of the pending batch and of the DB around
	// it (dropIters): an iterator made at another epoch is not pooled. (The
	// batch's pointer would not tell: a closed batch's *pebble.Batch comes
	// back from Pebble's pool as the next one.)
	epoch uint64
}

// maxIdleIters is the most idle iterators a DB keeps (iters): one per
// iteration in progress at once is enough; a join nests two at most.
const maxIdleIters = 4

// iter returns an iterator over the stores' view (rw) with the bounds
// given, an idle one if there is one. Give it back with release.
func (d *PebbleDB) iter(lower, upper []byte) (*pebble.Iterator, error) {
	if n := len(d.iters); n > 0 && d.pending != nil {
		it := d.iters[n-1]
		d.iters[n-1] = nil
		d.iters = d.iters[:n-1]
		it.SetOptions(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		return it, nil
	}
	return d.rw().NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}

// release gives back an iterator of iter, made at epoch, for reuse while
// its batch is still the pending one (the epoch has not moved).
func (d *PebbleDB) release(it *pebble.Iterator, epoch uint64) error {
	if d.pending != nil && epoch == d.epoch && len(d.iters) < maxIdleIters && it.Error() == nil && !d.closed.Load() {
		d.iters = append(d.iters, it)
		return nil
	}
	return it.Close()
}

// dropIters closes the idle iterators: the pending batch is about to be
// applied or replaced, or the DB written around it.
func (d *PebbleDB) dropIters() {
	if d.pending == nil {
		return // nothing pooled; a DB without a pending batch may be shared between goroutines
	}
	d.epoch++ // the pending batch is about to change: in-flight iterators are not pooled
	for i, it := range d.iters {
		_ = it.Close()
		d.iters[i] = nil
	}
	d.iters = d.iters[:0]
}

// pebbleRW is what stores read and write through: the DB, or the pending
// batch over it.
type pebbleRW interface {
	pebble.Reader
	pebble.Writer
}

func (d *PebbleDB) rw() pebbleRW {
	if d.pending != nil {
		return d.pending
	}
	return d.db
}

// OpenPebble opens the Pebble database in dir, creating it if it does not
// exist. The caller must Close it.
func OpenPebble(dir string, o PebbleOptions) (*PebbleDB, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fatal := new(atomic.Pointer[pebbleFatal])
	po := &pebble.Options{
		FS:                 o.FS,
		Cache:              o.Cache,
		MemTableSize:       o.MemTableSize,
		DisableWAL:         o.DisableWAL,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{log: log.With("pebble", dir), fatal: fatal},
	}
	if po.Cache == nil {
		c := pebble.NewCache(defaultPebbleCacheSize)
		defer c.Unref() // the DB holds its own reference
		po.Cache = c
	}
	if n := o.MaxConcurrentCompactions; n > 0 {
		po.CompactionConcurrencyRange = func() (int, int) { return 1, n }
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("sluice: open pebble %q: %w", dir, err)
	}
	d := &PebbleDB{db: db, dir: dir, disableWAL: o.DisableWAL, fatal: fatal}
	if o.BufferWrites {
		d.pending = db.NewIndexedBatch()
		if o.RecentBytes >= 0 {
			d.recent = newRecentWrites(cmp.Or(o.RecentBytes, defaultRecentBytes))
		}
	}
	return d, nil
}

// PutPendingMeta adds the write of the meta record key to the pending
// batch, to be applied with the stores' buffered writes by Commit. It
// fails unless the DB buffers writes (PebbleOptions.BufferWrites).
func (d *PebbleDB) PutPendingMeta(key, value []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if d.pending == nil {
		return fmt.Errorf("sluice: pebble %q: put pending meta: the DB does not buffer writes", d.dir)
	}
	if err := d.failed(); err != nil {
		return err // the pending batch may be the one whose commit failed
	}
	if err := d.pending.Set(metaKey(key), value, nil); err != nil {
		return fmt.Errorf("sluice: pebble %q: put pending meta %q: %w", d.dir, key, err)
	}
	return nil
}

// Pending is the number of buffered writes Commit would apply.
func (d *PebbleDB) Pending() int {
	if d.pending == nil {
		return 0
	}
	return int(d.pending.Count()) + d.recent.pending()
}

// Commit applies the buffered writes atomically (see Batch.Commit for sync
// and what a crash keeps) and starts a new pending batch. Without
// BufferWrites it only syncs when asked to.
func (d *PebbleDB) Commit(sync bool) (err error) {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := d.failed(); err != nil {
		return err
	}
	defer d.recoverFatal(&err)
	d.dropIters()
	// A pending batch whose commit failed fatally cannot be read or
	// written any more: the stores read the DB as of the last commit.
	defer func() {
		if d.pending != nil && d.fatal.Load() != nil {
			d.pending = d.db.NewIndexedBatch()
			d.recent.clear()
		}
	}()
	if d.pending == nil {
		if sync {
			return d.Flush()
		}
		return nil
	}
	if err := d.recent.writeBack(d.pending); err != nil {
		return fmt.Errorf("sluice: pebble %q: commit pending writes: %w", d.dir, err)
	}
	if d.pending.Empty() {
		if sync {
			return d.Flush()
		}
		return nil
	}
	opts := pebble.NoSync
	if sync && !d.disableWAL {
		opts = pebble.Sync
	}
	if err := d.db.Apply(d.pending, opts); err != nil {
		return fmt.Errorf("sluice: pebble %q: commit pending writes: %w", d.dir, err)
	}
	// A committed batch cannot be reused for reads; the next writes go to
	// a new one. Closing the committed one returns it to Pebble's pool
	// with its buffers (unless the DB kept them, or they are too large),
	// where the new one comes from: a new batch would grow its buffers
	// from nothing, zeroing them, at every commit.
	_ = d.pending.Close()
	d.pending = d.db.NewIndexedBatch()
	if sync && d.disableWAL {
		if err := d.db.Flush(); err != nil {
			return fmt.Errorf("sluice: pebble %q: commit pending writes: flush: %w", d.dir, err)
		}
	}
	return nil
}

// Discard drops the buffered writes: the stores read the DB as of the last
// Commit again.
func (d *PebbleDB) Discard() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if d.pending == nil {
		return nil
	}
	d.dropIters()
	_ = d.pending.Close()
	d.pending = d.db.NewIndexedBatch()
	d.recent.clear()
	return nil
}

// Close closes the DB. If the WAL is disabled it first flushes the
// memtable, so that a clean shutdown keeps every write; with the WAL,
// unflushed writes are in the log and are replayed on the next open. Stores
// of the DB return ErrClosed afterwards.
//
// Close the DB only once the tasks using it have stopped: a store must not
// be in use on another goroutine, and no iteration over a store should be
// in progress (Close then reports Pebble's leaked iterators, and the
// iteration ends at its next step, its last key and value no longer valid).
func (d *PebbleDB) Close() (err error) {
	if !d.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer d.recoverFatal(&err)
	d.dropIters()
	if d.pending != nil {
		_ = d.pending.Close() // uncommitted writes are dropped
		d.pending = nil
		d.recent = nil
	}
	if d.disableWAL && d.fatal.Load() == nil {
		err = d.db.Flush()
	}
	if err = errors.Join(err, d.db.Close()); err != nil {
		return fmt.Errorf("sluice: close pebble %q: %w", d.dir, err)
	}
	return nil
}

// Flush makes every write to the DB so far durable: it syncs the WAL or, if
// the WAL is disabled, flushes the memtable to an sstable.
func (d *PebbleDB) Flush() (err error) {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := d.failed(); err != nil {
		return err
	}
	defer d.recoverFatal(&err)
	if d.disableWAL {
		err = d.db.Flush()
	} else {
		err = d.db.LogData(nil, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("sluice: flush pebble %q: %w", d.dir, err)
	}
	return nil
}

// KeyValueStore returns the store named name: the keys of the DB under the
// name's prefix. Several stores share the DB without seeing each other's
// keys; calling KeyValueStore again with the same name returns another
// view of the same entries. The store's key order and semantics are those
// of KeyValueStore, with these specifics:
//
// Put, Delete and DeleteRange (the store implements RangeDeleter) are each
// applied to the DB at once, on their own and without a sync: they are
// visible at once and durable after the next Flush or synced Commit (see
// Batch.Commit for what a crash keeps before that). Writes that must be
// atomic, and the meta record of the input offsets they reflect, go
// through a Batch instead.
//
// With PebbleOptions.BufferWrites, Put, Delete and DeleteRange go to the
// DB's pending batch instead and are applied by PebbleDB.Commit; reads
// and iterations see them merged over the DB.
//
// Flush makes every write to the DB durable, those of other stores
// included (see PebbleDB.Flush): a WAL sync, or a memtable flush when the
// WAL is disabled. Close releases only the view: the entries stay in the
// DB, and the DB stays open. Closing the DB closes its stores.
//
// Get copies the value out of Pebble into a buffer the store reuses, so the
// value is valid until the next write to the store (through the store or a
// Batch), as the interface says, and a Get allocates nothing once the
// buffer has grown. A Get that misses every memtable reads the sstables
// through the block cache, checking each table's bloom filter first.
//
// Range and Prefix iterate a Pebble iterator bounded to the store's keys.
// The iterator reads a point-in-time view of the DB as of the start of the
// iteration (Pebble pins the memtables and sstables it needs and ignores
// sequence numbers after its own), so writes during the iteration, from the
// loop body or anyone else, are never seen by it and never disturb it: it
// yields exactly the entries the store held when it started, a key deleted
// meanwhile included. This differs from the in-memory store, which skips
// keys deleted during the iteration and yields current values; it is what
// Kafka Streams' RocksDB store does. The keys and values yielded are valid
// until the next step. Keep iterations short: a pinned view keeps obsolete
// memtables and sstables alive until the iteration ends. An iteration that
// fails part way (an I/O error or corruption) ends early, and the store's
// IterErr method (see IterErrReporter) returns the error.
//
// ApproximateCount counts the entries exactly, with one key scan, up to
// 10,000 of them. Beyond that it returns an estimate from the entry and
// deletion counts in the properties of the sstables overlapping the store
// (entries minus twice the deletions, prorated by data blocks for tables
// partly outside the store; RocksDB's rocksdb.estimate-num-keys, which
// Kafka Streams reports, is the same sum over a whole DB). It costs a walk
// over the DB's table metadata and a read of each overlapping table's
// properties (cached once the table is open); it counts a key overwritten
// in two tables twice until a compaction merges them and misses entries
// still in the memtable, so it is at least 10,000 and may be off by a
// memtable's worth of entries.
//
// The store is not safe for concurrent use; it belongs to the one task that
// owns its partition.
func (d *PebbleDB) KeyValueStore(name string) KeyValueStore {
	p := storePrefix(name)
	return &pebbleStore{
		db:     d,
		name:   name,
		prefix: p,
		end:    prefixEnd(p), // never nil: p starts with storeTag
		kbuf:   bytes.Clone(p),
	}
}

// storePrefix returns the prefix of the keys of the store named name.
func storePrefix(name string) []byte {
	p := make([]byte, 0, 1+binary.MaxVarintLen64+len(name))
	p = append(p, storeTag)
	p = binary.AppendUvarint(p, uint64(len(name)))
	return append(p, name...)
}

// PutMeta sets the meta record key to value, applied at once and without
// an fsync like a store's Put. Meta records live in a namespace of their
// own that no store's keys can reach. Use Batch.PutMeta to write one
// atomically with store entries.
func (d *PebbleDB) PutMeta(key, value []byte) (err error) {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := d.failed(); err != nil {
		return err
	}
	defer d.recoverFatal(&err)
	if err := d.db.Set(metaKey(key), value, pebble.NoSync); err != nil {
		return fmt.Errorf("sluice: pebble %q: put meta %q: %w", d.dir, key, err)
	}
	return nil
}

// DeleteMeta deletes the meta record key; deleting an absent record is not
// an error.
func (d *PebbleDB) DeleteMeta(key []byte) (err error) {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := d.failed(); err != nil {
		return err
	}
	defer d.recoverFatal(&err)
	if err := d.db.Delete(metaKey(key), pebble.NoSync); err != nil {
		return fmt.Errorf("sluice: pebble %q: delete meta %q: %w", d.dir, key, err)
	}
	return nil
}

// GetMeta returns the value of the meta record key in a new slice the
// caller owns; ok is false if there is no such record.
func (d *PebbleDB) GetMeta(key []byte) (value []byte, ok bool, err error) {
	if d.closed.Load() {
		return nil, false, ErrClosed
	}
	v, closer, err := d.db.Get(metaKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sluice: pebble %q: get meta %q: %w", d.dir, key, err)
	}
	value = clone(v)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("sluice: pebble %q: get meta %q: %w", d.dir, key, err)
	}
	return value, true, nil
}

func metaKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = metaTag
	copy(k[1:], key)
	return k
}

// NewBatch returns an empty batch of writes to the stores and meta records
// of the DB. The caller must Close it.
func (d *PebbleDB) NewBatch() *Batch {
	return &Batch{db: d, b: d.db.NewBatch()}
}

// Batch is a set of writes to stores of one PebbleDB and to its meta
// records, committed atomically: after Commit returns, every write of the
// batch is visible, and before it none is; a crash at any moment leaves the
// DB with the whole batch or none of it, never a part. This is how a task
// writes the dirty entries of its stores together with a meta record of the
// input (or changelog) offsets they reflect, so that its local state and
// those offsets can never disagree after a crash.
//
// The batch copies keys and values when they are added. A Batch is not safe
// for concurrent use. It can be reused after Commit.
type Batch struct {
	db *PebbleDB
	b  *pebble.Batch // nil once closed
}

// Put adds the write of value under key to store, which must be a store
// returned by KeyValueStore of the batch's DB (not a wrapper around one).
// A nil value is an empty value, as for KeyValueStore.Put.
//
// For the lifetime of values returned by the store's Get, Put counts as a
// write to the store, committed or not.
func (b *Batch) Put(store KeyValueStore, key, value []byte) error {
	s, err := b.store(store)
	if err != nil {
		return err
	}
	op := b.b.SetDeferred(len(s.prefix)+len(key), len(value))
	copy(op.Key, s.prefix)
	copy(op.Key[len(s.prefix):], key)
	copy(op.Value, value)
	if err := op.Finish(); err != nil {
		return s.error("batch put", err)
	}
	s.wrote = true
	return nil
}

// Delete adds the deletion of key from store (see Put).
func (b *Batch) Delete(store KeyValueStore, key []byte) error {
	s, err := b.store(store)
	if err != nil {
		return err
	}
	op := b.b.DeleteDeferred(len(s.prefix) + len(key))
	copy(op.Key, s.prefix)
	copy(op.Key[len(s.prefix):], key)
	if err := op.Finish(); err != nil {
		return s.error("batch delete", err)
	}
	s.wrote = true
	return nil
}

// PutMeta adds the write of the meta record key (see PebbleDB.PutMeta).
func (b *Batch) PutMeta(key, value []byte) error {
	if b.b == nil {
		return ErrClosed
	}
	op := b.b.SetDeferred(1+len(key), len(value))
	op.Key[0] = metaTag
	copy(op.Key[1:], key)
	copy(op.Value, value)
	return op.Finish()
}

// DeleteMeta adds the deletion of the meta record key.
func (b *Batch) DeleteMeta(key []byte) error {
	if b.b == nil {
		return ErrClosed
	}
	op := b.b.DeleteDeferred(1 + len(key))
	op.Key[0] = metaTag
	copy(op.Key[1:], key)
	return op.Finish()
}

// Len is the number of writes in the batch.
func (b *Batch) Len() int {
	if b.b == nil {
		return 0
	}
	return int(b.b.Count())
}

// Commit applies the batch atomically (see Batch) and empties it for
// reuse. With sync, the batch and every write before it are durable when
// Commit returns: the WAL is synced, or, if the WAL is disabled, the
// memtable is flushed to an sstable (one small sstable per such commit,
// which is why a task without a WAL should commit without sync and rely on
// its changelog).
//
// Without sync, the batch is visible at once but durable only after a
// later sync, and not only a machine crash but a process crash (kill -9)
// can lose it: Pebble writes the WAL's current 32 KiB block to the file
// only when a sync asks for it or the block fills, and without a WAL
// nothing reaches the disk before a memtable flush. What a crash keeps is
// always a prefix of the committed batches, each whole, so a meta record
// committed with the state it describes stays true; a task must read it
// back after a restart rather than assume its last commit survived.
func (b *Batch) Commit(sync bool) (err error) {
	if b.b == nil || b.db.closed.Load() {
		return ErrClosed
	}
	if err := b.db.failed(); err != nil {
		return err
	}
	defer b.db.recoverFatal(&err)
	opts := pebble.NoSync
	if sync && !b.db.disableWAL {
		opts = pebble.Sync
	}
	// The batch's writes bypass the recent writes: write those to the
	// pending batch, which shadows the DB, and forget them (a Batch is
	// for restoration and tests, not the per-record path).
	if err := b.db.recent.writeBack(b.db.pending); err != nil {
		return fmt.Errorf("sluice: pebble %q: commit batch: %w", b.db.dir, err)
	}
	b.db.recent.clear()
	b.db.dropIters()
	if err := b.db.db.Apply(b.b, opts); err != nil {
		return fmt.Errorf("sluice: pebble %q: commit batch: %w", b.db.dir, err)
	}
	b.b.Reset()
	if sync && b.db.disableWAL {
		if err := b.db.db.Flush(); err != nil {
			return fmt.Errorf("sluice: pebble %q: commit batch: flush: %w", b.db.dir, err)
		}
	}
	return nil
}

// Close discards the writes not committed and releases the batch. Further
// use returns ErrClosed.
func (b *Batch) Close() error {
	if b.b == nil {
		return ErrClosed
	}
	err := b.b.Close()
	b.b = nil
	return err
}

// store checks that the batch is open and that store is a Pebble store of
// the batch's DB, and returns it.
func (b *Batch) store(store KeyValueStore) (*pebbleStore, error) {
	if b.b == nil {
		return nil, ErrClosed
	}
	s, ok := store.(*pebbleStore)
	if !ok || s.db != b.db {
		name := "<nil>"
		if store != nil {
			name = store.Name()
		}
		return nil, fmt.Errorf("sluice: pebble %q: batch: store %q is not a store of this DB", b.db.dir, name)
	}
	if s.closed {
		return nil, ErrClosed
	}
	return s, nil
}

// RangeDeleter is implemented by stores that can delete every key of a
// range in one cheap operation rather than one deletion per key; the Pebble
// store writes a single range tombstone, and compactions drop the data
// under it later. Window stores use it to drop expired segments.
type RangeDeleter interface {
	// DeleteRange deletes the keys with from <= key < to. A nil from means
	// from the first key, a nil to means through the last key, as in Range.
	DeleteRange(from, to []byte) error
}

// SlotPutter is implemented by stores that keep recent writes in memory
// (the Pebble store, PebbleOptions.RecentBytes): PutSlot is Put, and also
// returns a Slot kept with the key's entry there, for the caller to keep
// something with the key without a lookup of its own (the changelog
// buffer keeps the place of the key's buffered write in it). A Slot is
// zero for a new entry; it lives as long as the entry, and a key written
// again after its entry was dropped (evicted, a range deletion, a commit
// of a Batch, a Discard) gets a new one. slot is nil when the key has no
// entry (the value is too large for it, or the store keeps none). The
// caller must not keep the pointer beyond its next write (it would keep a
// dropped entry's memory alive), and must check that what it finds
// through the Slot is still the key's.
type SlotPutter interface {
	PutSlot(key, value []byte) (slot *Slot, err error)
}

// A Slot is two words of memory a SlotPutter's caller keeps with a key.
type Slot [2]uint64

// IterErrReporter is implemented by stores whose Range and Prefix can fail
// part way, as the Pebble store's can on an I/O error or corruption: such
// an iteration ends early, and IterErr says why.
type IterErrReporter interface {
	// IterErr returns the error that ended the store's most recent
	// iteration early, or nil if it ran to its end or the loop body stopped
	// it. Each iteration clears it when it starts.
	IterErr() error
}

// pebbleStore is a view of the keys of a PebbleDB under one store prefix.
type pebbleStore struct {
	db     *PebbleDB
	name   string
	prefix []byte // storePrefix(name)
	end    []byte // prefixEnd(prefix): the first key after the store's keys
	kbuf   []byte // prefix ‖ key of the latest point operation

	// arena holds the values returned by Get since the last write. Values
	// are appended to it; the first Get after a write (wrote set) starts it
	// again from the beginning, which the interface allows, since values
	// returned by Get are valid only until the next write. A full arena is
	// replaced by a new one and left to the values still pointing into it.
	arena []byte
	wrote bool

	iterErr error
	closed  bool
}

// Arena sizes: chunks grow from minArena to maxArena bytes, and a value of
// more than a quarter of maxArena gets an allocation of its own.
const (
	minArena = 1 << 10
	maxArena = 64 << 10
)

func (s *pebbleStore) Name() string { return s.name }

func (s *pebbleStore) check() error {
	if s.closed || s.db.closed.Load() {
		return ErrClosed
	}
	return nil
}

// writeCheck is check, and the DB's failure (failed) for a write.
func (s *pebbleStore) writeCheck() error {
	if err := s.check(); err != nil {
		return err
	}
	return s.db.failed()
}

func (s *pebbleStore) error(op string, err error) error {
	return fmt.Errorf("sluice: pebble store %q in %q: %s: %w", s.name, s.db.dir, op, err)
}

func (s *pebbleStore) Flush() error {
	if err := s.check(); err != nil {
		return err
	}
	if s.db.pending != nil {
		return nil // buffered writes become durable with the DB's Commit
	}
	return s.db.Flush()
}

func (s *pebbleStore) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.arena, s.kbuf = nil, nil
	return nil
}

// key returns prefix ‖ key in the store's key buffer.
func (s *pebbleStore) key(key []byte) []byte {
	s.kbuf = append(s.kbuf[:len(s.prefix)], key...)
	return s.kbuf
}

func (s *pebbleStore) Get(key []byte) ([]byte, bool, error) {
	if err := s.check(); err != nil {
		return nil, false, err
	}
	k := s.key(key)
	if e := s.db.recent.get(k); e != nil {
		if e.deleted {
			return nil, false, nil
		}
		return s.hold(e.value), true, nil
	}
	v, closer, err := s.db.rw().Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.error("get", err)
	}
	value := s.hold(v)
	if err := closer.Close(); err != nil {
		return nil, false, s.error("get", err)
	}
	return value, true, nil
}

// hold copies v into the arena and returns the copy, capped so that an
// append by the caller cannot overwrite the next value.
func (s *pebbleStore) hold(v []byte) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	if s.wrote {
		s.arena = s.arena[:0]
		s.wrote = false
	}
	if len(v) > cap(s.arena)-len(s.arena) {
		if len(v) > maxArena/4 {
			return clone(v)
		}
		s.arena = make([]byte, 0, min(max(2*cap(s.arena), minArena), maxArena))
	}
	n := len(s.arena)
	s.arena = append(s.arena, v...)
	return s.arena[n:len(s.arena):len(s.arena)]
}

func (s *pebbleStore) Put(key, value []byte) error {
	_, err := s.PutSlot(key, value)
	return err
}

// PutSlot implements SlotPutter.
func (s *pebbleStore) PutSlot(key, value []byte) (slot *Slot, err error) {
	if err := s.writeCheck(); err != nil {
		return nil, err
	}
	defer s.db.recoverFatal(&err)
	s.wrote = true
	k := s.key(key)
	if e, err := s.db.recent.write(s.db.pending, k, value, false); e != nil || err != nil {
		if err != nil {
			return nil, s.error("put", err)
		}
		return &e.slot, nil
	}
	s.db.recent.forget(k)
	if err := s.db.rw().Set(k, value, pebble.NoSync); err != nil {
		return nil, s.error("put", err)
	}
	return nil, nil
}

func (s *pebbleStore) Delete(key []byte) (err error) {
	if err := s.writeCheck(); err != nil {
		return err
	}
	defer s.db.recoverFatal(&err)
	s.wrote = true
	k := s.key(key)
	if e, err := s.db.recent.write(s.db.pending, k, nil, true); e != nil || err != nil {
		if err != nil {
			return s.error("delete", err)
		}
		return nil
	}
	s.db.recent.forget(k)
	if err := s.db.rw().Delete(k, pebble.NoSync); err != nil {
		return s.error("delete", err)
	}
	return nil
}

// DeleteRange implements RangeDeleter.
func (s *pebbleStore) DeleteRange(from, to []byte) (err error) {
	if err := s.writeCheck(); err != nil {
		return err
	}
	defer s.db.recoverFatal(&err)
	lower, upper, ok := s.bounds(from, to)
	if !ok {
		return nil
	}
	s.wrote = true
	// The recent writes reach the batch before the range deletion, in the
	// order they were made.
	if err := s.db.recent.writeBack(s.db.pending); err != nil {
		return s.error("delete range", err)
	}
	s.db.recent.clear()
	if err := s.db.rw().DeleteRange(lower, upper, pebble.NoSync); err != nil {
		return s.error("delete range", err)
	}
	return nil
}

// bounds returns the DB keys bounding the store's keys from <= key < to
// (nil bounds as in Range), in one new allocation, and false if the range
// is empty.
func (s *pebbleStore) bounds(from, to []byte) (lower, upper []byte, ok bool) {
	if from != nil && to != nil && bytes.Compare(from, to) >= 0 {
		return nil, nil, false
	}
	n := len(s.prefix) + len(from)
	if to == nil {
		n += len(s.end)
	} else {
		n += len(s.prefix) + len(to)
	}
	buf := make([]byte, 0, n)
	buf = append(append(buf, s.prefix...), from...)
	lower = buf
	if to == nil {
		upper = append(buf[len(buf):], s.end...)
	} else {
		upper = append(append(buf[len(buf):], s.prefix...), to...)
	}
	return lower, upper, true
}

func (s *pebbleStore) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	lower, upper, ok := s.bounds(from, to) // copies the bounds now
	return func(yield func([]byte, []byte) bool) {
		s.iterErr = nil
		if !ok || s.check() != nil {
			return
		}
		if err := s.db.recent.writeBack(s.db.pending); err != nil {
			s.iterErr = s.error("iterate", err)
			return
		}
		epoch := s.db.epoch
		it, err := s.db.iter(lower, upper)
		if err != nil {
			s.iterErr = s.error("iterate", err)
			return
		}
		defer func() {
			if s.db.closed.Load() {
				return // the DB closed under the iteration, and its iterators with it
			}
			if err := s.db.release(it, epoch); err != nil && s.iterErr == nil {
				s.iterErr = s.error("iterate", err)
			}
		}()
		n := len(s.prefix)
		for valid := it.First(); valid; valid = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				s.iterErr = s.error("iterate", err)
				return
			}
			k := it.Key()
			if !yield(k[n:len(k):len(k)], v[:len(v):len(v)]) || s.check() != nil {
				return
			}
		}
		if err := it.Error(); err != nil {
			s.iterErr = s.error("iterate", err)
		}
	}
}

func (s *pebbleStore) Prefix(prefix []byte) iter.Seq2[[]byte, []byte] {
	return s.Range(prefix, prefixEnd(prefix))
}

// IterErr implements IterErrReporter.
func (s *pebbleStore) IterErr() error { return s.iterErr }

// exactCountLimit is the number of entries up to which ApproximateCount
// counts exactly.
const exactCountLimit = 10000

func (s *pebbleStore) ApproximateCount() int64 {
	if s.check() != nil {
		return 0
	}
	if err := s.db.recent.writeBack(s.db.pending); err != nil {
		return 0
	}
	it, err := s.db.rw().NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: s.end})
	if err != nil {
		return 0
	}
	var n int64
	for valid := it.First(); valid && n < exactCountLimit; valid = it.Next() {
		n++
	}
	_ = it.Close()
	if n < exactCountLimit {
		return n
	}
	return max(n, s.tableEstimate())
}

// tableEstimate estimates the number of entries of the store in sstables
// from the tables' properties.
func (s *pebbleStore) tableEstimate() int64 {
	levels, err := s.db.db.SSTables(pebble.WithKeyRangeFilter(s.prefix, s.end),
		pebble.WithApproximateSpanBytes(), pebble.WithProperties())
	if err != nil {
		return 0
	}
	var est float64
	for _, tables := range levels {
		for _, t := range tables {
			p := t.Properties
			live := int64(p.NumEntries) - 2*int64(p.NumDeletions)
			if live <= 0 {
				continue
			}
			// A table partly outside the store counts the share of its data
			// blocks that overlap the store.
			share := 1.0
			if t.ApproximateSpanBytes < t.Size && p.DataSize > 0 {
				share = min(1, float64(t.ApproximateSpanBytes)/float64(p.DataSize))
			}
			est += float64(live) * share
		}
	}
	return int64(est)
}

// pebbleLogger adapts a slog.Logger to Pebble's logger.
type pebbleLogger struct {
	log   *slog.Logger
	fatal *atomic.Pointer[pebbleFatal] // the DB's; nil: none to record it in
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

// Fatalf must not return: Pebble calls it when it cannot go on (a failed
// commit, corruption). Pebble's own logger exits the process; a library
// should not, so it panics with a pebbleFatal, after recording it as the
// DB's failure. The DB's methods that call into Pebble recover it and
// return it as an error naming the DB's directory (recoverFatal); from
// then on every method returns that error (failed).
func (l pebbleLogger) Fatalf(format string, args ...any) {
	f := &pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.err = err
			break
		}
	}
	l.log.Error(f.msg, "fatal", true)
	if l.fatal != nil {
		l.fatal.CompareAndSwap(nil, f)
	}
	panic(f)
}

// pebbleFatal is a failure Pebble cannot go on after (pebbleLogger.Fatalf):
// a write to its log that failed (a full disk, a read-only file system),
// corruption. err is the error it reported, if any.
type pebbleFatal struct {
	msg string
	err error
}

func (f *pebbleFatal) Error() string {
	if strings.HasPrefix(f.msg, "pebble: ") {
		return f.msg
	}
	return "pebble: " + f.msg
}
func (f *pebbleFatal) Unwrap() error { return f.err }

// failed returns the error that made the DB unusable (pebbleFatal), if
// any.
func (d *PebbleDB) failed() error {
	if f := d.fatal.Load(); f != nil {
		return &FailedError{Dir: d.dir, Err: f}
	}
	return nil
}

// recoverFatal, deferred by the methods that call into Pebble, turns the
// panic of pebbleLogger.Fatalf into *err.
func (d *PebbleDB) recoverFatal(err *error) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(*pebbleFatal)
	if !ok {
		panic(r)
	}
	*err = &FailedError{Dir: d.dir, Err: f}
}

// FailedError is the error of every write to a PebbleDB after Pebble
// failed in a way it cannot go on from (a write to its log that failed: a
// full disk, a read-only file system; corruption). Pebble then refuses
// further commits; the DB can only be closed. Reopened once the cause is
// gone, it holds every commit that returned nil before the failure (a
// commit that failed may or may not be there, whole or not at all).
type FailedError struct {
	Dir string // the DB's directory
	Err error  // what Pebble reported; errors.Is finds the cause (syscall.ENOSPC)
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("sluice: pebble %q failed and cannot be written any more (close it, fix the cause, reopen it): %v", e.Dir, e.Err)
}

func (e *FailedError) Unwrap() error { return e.Err }
