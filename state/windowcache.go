package state

import (
	"bytes"
	"cmp"
	"slices"
)

// fetchCache keeps, for some keys of a window store, every live entry of
// the key in memory, in (start, seq) order, so that WindowStore.FetchKey
// of such a key reads no base store: a stream-stream join fetches the
// other side's windows of each record's key, and over Pebble each fetch is
// a seek in the pending batch, the memtables and the sstables of every
// segment it spans (docs/performance.md).
//
// A key is all or nothing: the first fetch of a key the cache does not
// hold reads all the key's live entries from the base store (every segment
// from the first live time on), and from then on every write of the key
// through the WindowStore updates the copy. Writes of keys not held change
// nothing here; their entries are in the base, where the next fetch finds
// them. The copy is therefore exact as long as nothing but the WindowStore
// writes its base, which WindowStore's documentation requires already; the
// runtime builds a new WindowStore (and cache) whenever it reopens a task,
// after a restore or an aborted transaction.
//
// Expired entries are dropped from a key when it is fetched, and from
// every key when the cache outgrows its budget; if that is not enough,
// whole keys go, in map order (random), until the cache is at three
// quarters of its budget. The budget counts keys and values and an
// estimate of the cache's own overhead (fetchCacheEntryCost,
// fetchCacheKeyCost).
type fetchCache struct {
	max   int64
	bytes int64
	keys  map[string]*fetchCacheKey
}

// fetchCacheKey is one key's entries, sorted by (start, uint32(seq)): the
// order of their keys in the base store.
type fetchCacheKey struct {
	entries []fetchCacheEntry
}

type fetchCacheEntry struct {
	start int64
	seq   int32
	value []byte
}

const (
	// fetchCacheEntryCost is an entry's size beyond its value: start, seq
	// and the value's slice header, padded.
	fetchCacheEntryCost = 48
	// fetchCacheKeyCost is a key's size beyond its bytes: the map's slot,
	// the string header, the fetchCacheKey and its slice header.
	fetchCacheKeyCost = 96
)

func newFetchCache(maxBytes int64) *fetchCache {
	return &fetchCache{max: maxBytes, keys: map[string]*fetchCacheKey{}}
}

// compareEntry orders an entry against (start, seq) as their keys are
// ordered in the base store: by start, then by seq as the unsigned
// big-endian int32 it is written as.
func compareEntry(e fetchCacheEntry, t fetchCacheEntry) int {
	if c := cmp.Compare(e.start, t.start); c != 0 {
		return c
	}
	return cmp.Compare(uint32(e.seq), uint32(t.seq))
}

func compareStart(e fetchCacheEntry, start int64) int { return cmp.Compare(e.start, start) }

// get returns the entries of key, without those before firstLive, and
// whether the cache holds the key. The slice is the cache's; a later
// write copies before it changes an entry the slice shows.
func (c *fetchCache) get(key []byte, firstLive int64) ([]fetchCacheEntry, bool) {
	k := c.keys[string(key)]
	if k == nil {
		return nil, false
	}
	c.trim(k, firstLive)
	return k.entries, true
}

// trim drops the entries of k before firstLive.
func (c *fetchCache) trim(k *fetchCacheKey, firstLive int64) {
	es := k.entries
	if len(es) == 0 || es[0].start >= firstLive {
		return
	}
	n, _ := slices.BinarySearchFunc(es, firstLive, compareStart)
	for i := range n {
		c.bytes -= fetchCacheEntryCost + int64(len(es[i].value))
	}
	// Not cleared: an iteration of the key in progress may hold them. The
	// next append that reallocates leaves them behind.
	k.entries = es[n:]
}

// add caches key with its entries, which the caller has read from the base
// store, in order, and which the cache now owns.
func (c *fetchCache) add(key []byte, entries []fetchCacheEntry, firstLive int64) {
	k := &fetchCacheKey{entries: entries}
	c.keys[string(key)] = k
	c.bytes += fetchCacheKeyCost + int64(len(key))
	for i := range entries {
		c.bytes += fetchCacheEntryCost + int64(len(entries[i].value))
	}
	c.fit(firstLive)
}

// put records a write of the base store through the WindowStore: a nil
// value deletes the entry (start, seq), another sets it. Keys the cache
// does not hold are left to the base.
func (c *fetchCache) put(key []byte, start int64, seq int32, value []byte, firstLive int64) {
	k := c.keys[string(key)]
	if k == nil {
		return
	}
	es := k.entries
	t := fetchCacheEntry{start: start, seq: seq}
	i, found := len(es), false
	if i == 0 || compareEntry(es[i-1], t) >= 0 {
		// Not after the last entry: windows put out of time order, or a
		// seq met again.
		i, found = slices.BinarySearchFunc(es, t, compareEntry)
	}
	switch {
	case value == nil && !found:
		return
	case value == nil:
		c.bytes -= fetchCacheEntryCost + int64(len(es[i].value))
		// A copy, not an in-place shift: an iteration of the key in
		// progress keeps the slice it started with.
		k.entries = append(append(make([]fetchCacheEntry, 0, len(es)-1), es[:i]...), es[i+1:]...)
		return
	case found:
		c.bytes += int64(len(value)) - int64(len(es[i].value))
		next := append(make([]fetchCacheEntry, 0, len(es)), es...)
		next[i].value = bytes.Clone(value)
		k.entries = next
	case i == len(es):
		// Appending never changes what an iteration in progress sees:
		// it holds the slice's old length.
		k.entries = append(es, fetchCacheEntry{start: start, seq: seq, value: bytes.Clone(value)})
		c.bytes += fetchCacheEntryCost + int64(len(value))
	default:
		next := make([]fetchCacheEntry, 0, len(es)+1)
		next = append(append(append(next, es[:i]...), fetchCacheEntry{start: start, seq: seq, value: bytes.Clone(value)}), es[i:]...)
		k.entries = next
		c.bytes += fetchCacheEntryCost + int64(len(value))
	}
	c.fit(firstLive)
}

// fit brings the cache back within its budget: first by dropping expired
// entries everywhere, then whole keys.
func (c *fetchCache) fit(firstLive int64) {
	if c.bytes <= c.max {
		return
	}
	for s, k := range c.keys {
		c.trim(k, firstLive)
		if len(k.entries) == 0 {
			delete(c.keys, s)
			c.bytes -= fetchCacheKeyCost + int64(len(s))
		}
	}
	target := c.max / 4 * 3
	for s, k := range c.keys {
		if c.bytes <= target {
			return
		}
		for i := range k.entries {
			c.bytes -= fetchCacheEntryCost + int64(len(k.entries[i].value))
		}
		delete(c.keys, s)
		c.bytes -= fetchCacheKeyCost + int64(len(s))
	}
}
