package state

import (
	"bytes"
	"iter"
	"slices"
	"sync/atomic"
)

// RecordContext is what a cached write remembers of the record that caused
// it, to forward the flushed entry with: its timestamp and headers (opaque
// to the cache).
type RecordContext struct {
	Timestamp int64
	Headers   any
}

// FlushListener receives each entry a CachingStore flushes, after the entry
// was written to the store below: the key; the new value, or deleted; the
// value the store below held before, if any (hasOld); and the context of
// the last write of the entry. The slices are valid during the call only.
type FlushListener func(key, newValue []byte, deleted bool, oldValue []byte, hasOld bool, rc RecordContext) error

// RecordContextSetter is implemented by a store below a CachingStore that
// wants the record context of each write the cache flushes into it, set
// just before that write: a changelog logger takes its record timestamp
// from it, as Kafka Streams' caching stores set the cached entry's record
// context before writing it below.
type RecordContextSetter interface {
	SetRecordContext(rc RecordContext)
}

// Cache is the record cache of one task: a memory budget shared by the
// CachingStores made from it. Not safe for concurrent use; it belongs to
// the task.
type Cache struct {
	max  int64
	used int64
	// share, if set, is the budget shared by several tasks' caches: this
	// cache may use share.Total / share.Tasks.
	share *CacheShare
}

// NewCache returns a cache of at most maxBytes bytes of keys and values
// (plus a fixed overhead per entry). Zero or less makes every write go
// through at once, as with caching off, except that reads still look up
// the store below.
func NewCache(maxBytes int64) *Cache { return &Cache{max: maxBytes} }

// CacheShare is a memory budget divided evenly among the caches of an
// instance's tasks, however many there are at the moment: each cache's
// limit follows the number of tasks, so the caches together stay within
// Total (a cache over its new limit evicts at its next write).
type CacheShare struct {
	// Total is the budget in bytes, fixed.
	Total int64
	tasks atomic.Int64
}

// NewCache returns a cache drawing on the share; the caller counts its
// task with Add.
func (s *CacheShare) NewCache() *Cache { return &Cache{share: s} }

// Add changes the number of tasks sharing the budget by n.
func (s *CacheShare) Add(n int64) { s.tasks.Add(n) }

// limit is the cache's budget now.
func (c *Cache) limit() int64 {
	if c.share == nil {
		return c.max
	}
	return c.share.Total / max(1, c.share.tasks.Load())
}

// Used is the number of bytes the cache's entries take.
func (c *Cache) Used() int64 { return c.used }

// entryOverhead approximates the bytes an entry costs beyond its key and
// value: the entry struct, the map slot and the key string header.
const entryOverhead = 96

type cacheEntry struct {
	key     string
	value   []byte
	deleted bool
	dirty   bool
	lent    bool // value was returned by Get since it was last written
	// shown: GetShared returned the entry's value while it was dirty, so
	// a reader other than the store's writer (a join reading the table)
	// may have acted on a value the flush listener has not seen yet.
	shown bool
	rc    RecordContext
	hasRC bool // rc was set by SetRecordContext

	// lru: all entries, most recently used at the back.
	prev, next *cacheEntry
	// dirty list, ordered by last write.
	dprev, dnext *cacheEntry
}

func (e *cacheEntry) size() int64 { return int64(len(e.key)+cap(e.value)) + entryOverhead }

// CachingStore is a record cache in front of a key-value store, with Kafka
// Streams' caching semantics (CachingKeyValueStore): reads are served from
// the cache and fill it; writes are held in the cache, and consecutive
// writes of a key replace each other there, until the cache flushes them
// (Flush at commit, or eviction when the cache is over its budget). A flush
// writes each dirty entry to the store below (which logs it to the
// changelog) and then hands it to the flush listener, which forwards it
// downstream: so downstream sees, and the changelog carries, one update
// per key per flush instead of one per record.
//
// Entries are flushed in the order of their last write, evicted in least
// recently used order. Iterations merge the dirty entries over the store
// below. A CachingStore is not safe for concurrent use.
type CachingStore struct {
	inner    KeyValueStore
	cache    *Cache
	listener FlushListener
	rc       RecordContext
	hasRC    bool
	// defaultRC, if set, gives the context of writes made while none was
	// set with SetRecordContext.
	defaultRC func() RecordContext

	m          map[string]*cacheEntry
	head, tail *cacheEntry // lru
	dhead      *cacheEntry // dirty list
	dtail      *cacheEntry
	ndirty     int
	free       []*cacheEntry
	oldBuf     []byte
	closed     bool
	// hits and misses count Get's lookups (CacheStats): atomic, so that a
	// metrics scrape reads them while the task runs.
	hits, misses atomic.Uint64
}

// NewCachingStore puts a record cache drawing on cache in front of inner.
func NewCachingStore(inner KeyValueStore, cache *Cache) *CachingStore {
	return &CachingStore{inner: inner, cache: cache, m: map[string]*cacheEntry{}}
}

// SetFlushListener sets the function that receives flushed entries (see
// FlushListener); nil drops them after writing them below.
func (s *CachingStore) SetFlushListener(f FlushListener) { s.listener = f }

// SetRecordContext sets the context the next writes are remembered with.
// Writes made before any call carry none: the store below is not told one
// when they are flushed (see RecordContextSetter).
func (s *CachingStore) SetRecordContext(rc RecordContext) { s.rc, s.hasRC = rc, true }

// SetDefaultRecordContext sets the function that gives the context of
// writes made while no context was set with SetRecordContext, such as a
// user processor's writes: Kafka Streams' caching stores take every
// write's context from the processor context (the record being processed).
func (s *CachingStore) SetDefaultRecordContext(f func() RecordContext) { s.defaultRC = f }

// Inner is the store below the cache.
func (s *CachingStore) Inner() KeyValueStore { return s.inner }

// Dirty is the number of entries written since they were last flushed.
func (s *CachingStore) Dirty() int { return s.ndirty }

// Name implements Store.
func (s *CachingStore) Name() string { return s.inner.Name() }

// Get implements KeyValueStore.
func (s *CachingStore) Get(key []byte) ([]byte, bool, error) { return s.get(key, false) }

func (s *CachingStore) get(key []byte, shared bool) ([]byte, bool, error) {
	if s.closed {
		return nil, false, ErrClosed
	}
	if e, ok := s.m[string(key)]; ok {
		s.hits.Add(1)
		s.touch(e)
		if e.deleted {
			return nil, false, nil
		}
		e.lent = true
		if shared && e.dirty {
			e.shown = true
		}
		return e.value, true, nil
	}
	s.misses.Add(1)
	v, ok, err := s.inner.Get(key)
	if err != nil || !ok {
		return nil, false, err
	}
	if s.cache.limit() <= 0 {
		return v, true, nil
	}
	e := s.newEntry(key)
	e.value = append(e.value[:0], v...)
	e.lent = true
	s.cache.used += e.size()
	if err := s.evict(); err != nil {
		return nil, false, err
	}
	if cur, ok := s.m[string(key)]; ok && cur == e {
		return e.value, true, nil
	}
	// Evicted at once (an entry larger than the budget): read again.
	return s.inner.Get(key)
}

// GetShared is Get for a reader other than the processor that writes the
// store: a table's value getter, read by a join. A value it returns from a
// dirty entry is one the flush listener has not been given yet, and the
// reader may have answered with it (a foreign-key join's subscription
// answered with the right table's unflushed row). If the entry is deleted
// before the next flush and the store below does not hold the key, the
// flush then hands the delete to the listener with no old value, where it
// would otherwise drop it as a change of nothing (Kafka Streams'
// CachingKeyValueStore drops it): downstream must hear that the row the
// reader saw is gone, or the reader's answer stays forever.
func (s *CachingStore) GetShared(key []byte) ([]byte, bool, error) { return s.get(key, true) }

// CacheStats returns how many Gets the cache answered (hits, a deleted
// entry's included) and how many went to the store below (misses), since
// the store was made, as Kafka Streams' NamedCache counts its hit ratio.
// Safe to call from any goroutine.
func (s *CachingStore) CacheStats() (hits, misses uint64) { return s.hits.Load(), s.misses.Load() }

// Put implements KeyValueStore.
func (s *CachingStore) Put(key, value []byte) error { return s.write(key, value, false) }

// Delete implements KeyValueStore.
func (s *CachingStore) Delete(key []byte) error { return s.write(key, nil, true) }

func (s *CachingStore) write(key, value []byte, deleted bool) error {
	if s.closed {
		return ErrClosed
	}
	e, ok := s.m[string(key)]
	if ok {
		s.cache.used -= e.size()
		s.touch(e)
	} else {
		e = s.newEntry(key)
	}
	if e.lent {
		// A value handed out by Get stays as it was until the caller's
		// next write... which is this one; but the caller may still hold
		// it as the old value of this very update, so write a new slice.
		e.value = nil
		e.lent = false
	}
	if deleted {
		e.value = e.value[:0]
	} else {
		e.value = append(e.value[:0], value...)
	}
	e.deleted = deleted
	e.rc, e.hasRC = s.rc, s.hasRC
	if !s.hasRC && s.defaultRC != nil {
		e.rc, e.hasRC = s.defaultRC(), true
	}
	s.markDirty(e)
	s.cache.used += e.size()
	return s.evict()
}

// Flush writes every dirty entry below and hands it to the listener, in
// the order of their last write. It does not flush the store below.
func (s *CachingStore) Flush() error {
	if s.closed {
		return ErrClosed
	}
	for s.dhead != nil {
		if err := s.flushEntry(s.dhead); err != nil {
			return err
		}
	}
	return nil
}

// flushEntry writes e below, forwards it and marks it clean; a deleted
// entry leaves the cache.
func (s *CachingStore) flushEntry(e *cacheEntry) error {
	shown := e.shown
	e.shown = false
	s.unmarkDirty(e)
	key := []byte(e.key) // no allocation needed by most callers; keeps e.key immutable
	old, hasOld, err := s.inner.Get(key)
	if err != nil {
		return err
	}
	if hasOld {
		s.oldBuf = append(s.oldBuf[:0], old...)
		old = s.oldBuf
	}
	if e.deleted {
		rc := e.rc // remove clears e
		// Deleted below even when absent there, so that the store below
		// logs the tombstone (Kafka Streams writes nothing then): the key
		// may be in the changelog all the same, put by a flush whose
		// commit never completed. The restart's restore skipped that
		// record, so the key is absent here; a later restore, the input
		// committed by then, applies it, and only this tombstone keeps
		// the key from coming back.
		s.setInnerContext(e)
		if err := s.inner.Delete(key); err != nil {
			return err
		}
		s.remove(e)
		if !hasOld && !shown {
			return nil // absent below and deleted above: nothing to forward
		}
		if s.listener != nil {
			// Without an old value when the key was absent below but a
			// reader was shown a value written since the last flush
			// (GetShared).
			return s.listener(key, nil, true, old, hasOld, rc)
		}
		return nil
	}
	s.setInnerContext(e)
	if err := s.inner.Put(key, e.value); err != nil {
		return err
	}
	if s.listener != nil {
		return s.listener(key, e.value, false, old, hasOld, e.rc)
	}
	return nil
}

// setInnerContext hands e's record context to the store below, if e has
// one and the store wants it, for the write of e that follows.
func (s *CachingStore) setInnerContext(e *cacheEntry) {
	if c, ok := s.inner.(RecordContextSetter); ok && e.hasRC {
		c.SetRecordContext(e.rc)
	}
}

// evict drops least recently used entries of this store while the cache
// is over its budget. Evicting a dirty entry flushes it and then every
// other dirty entry of the store, in last-write order, as Kafka Streams'
// NamedCache.evict does (flush(eldest)): downstream sees the store's
// pending updates together, not only the evicted key's.
func (s *CachingStore) evict() error {
	for lim := s.cache.limit(); s.cache.used > lim && s.head != nil; {
		e := s.head
		if e.dirty {
			if err := s.flushEntry(e); err != nil {
				return err
			}
			if err := s.Flush(); err != nil {
				return err
			}
			if s.m[e.key] != e {
				continue // a deleted entry left the cache when flushed
			}
		}
		s.remove(e)
	}
	return nil
}

// Range implements KeyValueStore: the dirty entries in range merged over
// the store below's. The dirty entries are copied when the iteration
// starts, so the loop body may write the store (what it writes is not
// seen by the iteration).
func (s *CachingStore) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		if s.closed {
			return
		}
		type entry struct {
			key     []byte
			value   []byte
			deleted bool
		}
		var dirty []entry
		for e := s.dhead; e != nil; e = e.dnext {
			k := []byte(e.key)
			if (from == nil || bytes.Compare(k, from) >= 0) && (to == nil || bytes.Compare(k, to) < 0) {
				dirty = append(dirty, entry{key: k, value: slices.Clone(e.value), deleted: e.deleted})
			}
		}
		slices.SortFunc(dirty, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
		i := 0
		emit := func(e entry) bool {
			if e.deleted {
				return true
			}
			return yield(e.key, e.value)
		}
		for k, v := range s.inner.Range(from, to) {
			for i < len(dirty) && bytes.Compare(dirty[i].key, k) < 0 {
				if !emit(dirty[i]) {
					return
				}
				i++
			}
			if i < len(dirty) && bytes.Equal(dirty[i].key, k) {
				if !emit(dirty[i]) {
					return
				}
				i++
				continue
			}
			if !yield(k, v) {
				return
			}
		}
		for ; i < len(dirty); i++ {
			if !emit(dirty[i]) {
				return
			}
		}
	}
}

// Prefix implements KeyValueStore.
func (s *CachingStore) Prefix(prefix []byte) iter.Seq2[[]byte, []byte] {
	return s.Range(prefix, prefixEnd(prefix))
}

// DeleteRange implements RangeDeleter: window stores drop expired
// segments with it. The cached entries in the range leave the cache; the
// dirty ones are first handed to the flush listener (in the order of their
// last write, with the old value below) but not written below, as Kafka
// Streams' caching window store forwards and does not store updates of
// expired windows. Then the range is deleted below (with the store below's
// DeleteRange if it has one, else key by key).
func (s *CachingStore) DeleteRange(from, to []byte) error {
	if s.closed {
		return ErrClosed
	}
	in := func(k []byte) bool {
		return (from == nil || bytes.Compare(k, from) >= 0) && (to == nil || bytes.Compare(k, to) < 0)
	}
	var dirty []*cacheEntry
	for e := s.dhead; e != nil; e = e.dnext {
		if in([]byte(e.key)) {
			dirty = append(dirty, e)
		}
	}
	for _, e := range dirty {
		if s.m[e.key] != e || !e.dirty {
			continue // flushed or removed by the listener's writes
		}
		s.unmarkDirty(e)
		if s.listener == nil {
			continue
		}
		key := []byte(e.key)
		old, hasOld, err := s.inner.Get(key)
		if err != nil {
			return err
		}
		if hasOld {
			s.oldBuf = append(s.oldBuf[:0], old...)
			old = s.oldBuf
		}
		if e.deleted && !hasOld && !e.shown {
			continue
		}
		value := slices.Clone(e.value)
		if err := s.listener(key, value, e.deleted, old, hasOld, e.rc); err != nil {
			return err
		}
	}
	var drop []*cacheEntry
	for _, e := range s.m {
		if in([]byte(e.key)) {
			drop = append(drop, e)
		}
	}
	for _, e := range drop {
		s.remove(e)
	}
	return deleteRange(s.inner, from, to)
}

// deleteRange deletes the keys of kv in [from, to), in one operation if kv
// is a RangeDeleter.
func deleteRange(kv KeyValueStore, from, to []byte) error {
	if rd, ok := kv.(RangeDeleter); ok {
		return rd.DeleteRange(from, to)
	}
	var keys [][]byte
	for k := range kv.Range(from, to) {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := kv.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// IterErr implements IterErrReporter for the store below.
func (s *CachingStore) IterErr() error {
	if r, ok := s.inner.(IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// ApproximateCount implements KeyValueStore: the store below's count,
// which does not include entries not flushed yet.
func (s *CachingStore) ApproximateCount() int64 { return s.inner.ApproximateCount() }

// Close drops the entries, flushed or not, and closes the store below.
// Flush first to keep the dirty ones.
func (s *CachingStore) Close() error {
	if s.closed {
		return ErrClosed
	}
	for s.head != nil {
		s.remove(s.head)
	}
	s.closed = true
	return s.inner.Close()
}

func (s *CachingStore) newEntry(key []byte) *cacheEntry {
	var e *cacheEntry
	if n := len(s.free); n > 0 {
		e, s.free = s.free[n-1], s.free[:n-1]
	} else {
		e = &cacheEntry{}
	}
	e.key = string(key)
	s.m[e.key] = e
	// Append to the lru list's back.
	e.prev, e.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
	return e
}

func (s *CachingStore) touch(e *cacheEntry) {
	if s.tail == e {
		return
	}
	// unlink
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	e.next.prev = e.prev
	// append
	e.prev, e.next = s.tail, nil
	s.tail.next = e
	s.tail = e
}

func (s *CachingStore) markDirty(e *cacheEntry) {
	if e.dirty {
		if s.dtail == e {
			return
		}
		s.unmarkDirty(e)
	}
	e.dirty = true
	s.ndirty++
	e.dprev, e.dnext = s.dtail, nil
	if s.dtail != nil {
		s.dtail.dnext = e
	} else {
		s.dhead = e
	}
	s.dtail = e
}

func (s *CachingStore) unmarkDirty(e *cacheEntry) {
	if !e.dirty {
		return
	}
	if e.dprev != nil {
		e.dprev.dnext = e.dnext
	} else {
		s.dhead = e.dnext
	}
	if e.dnext != nil {
		e.dnext.dprev = e.dprev
	} else {
		s.dtail = e.dprev
	}
	e.dprev, e.dnext = nil, nil
	e.dirty = false
	s.ndirty--
}

// remove drops e from the cache (it must be clean or discarded).
func (s *CachingStore) remove(e *cacheEntry) {
	s.unmarkDirty(e)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	delete(s.m, e.key)
	s.cache.used -= e.size()
	if e.lent {
		return // its value may still be in use; leave it to the collector
	}
	v := e.value[:0]
	*e = cacheEntry{value: v}
	s.free = append(s.free, e)
}
