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
// quarters of its budget. A key that alone would take more than a quarter
// of the budget (when it is read, or later as it grows) is not cached: it
// would push out the others and soon be pushed out in turn. Its fetches
// read the base, as without a cache, until a retention has passed (and
// with it every entry it had); the cache remembers up to
// fetchCacheRefusedKeys such keys. The budget
// counts keys and values and an estimate of the cache's own overhead
// (fetchCacheEntryCost, fetchCacheKeyCost); the memory held is a small
// multiple of that (up to about three times), since trimmed entries, and
// their values, wait in their key's array until they are as many as the
// live ones, and arrays grow by doubling.
//
// A write that fails drops its key: the base may have applied it (a
// logged store writes the base, then reports a failed changelog send).
type fetchCache struct {
	max   int64
	seg   *segmented // the store's: its observed stream time and first live time
	bytes int64
	keys  map[string]*fetchCacheKey
	// refused holds the keys too big to cache, with the observed stream
	// time when they were found so.
	refused map[string]int64
	// readers counts the iterations over a slice get returned in
	// progress. While there is one, writes copy a key's entries before
	// they change them, so that the iteration yields what it started
	// with; otherwise they change them in place.
	readers int
}

// fetchCacheKey is one key's entries, sorted by (start, uint32(seq)): the
// order of their keys in the base store.
type fetchCacheKey struct {
	entries []fetchCacheEntry
	size    int64 // what the key counts in fetchCache.bytes
	// dead is the number of trimmed entries before entries[0] in its
	// array, which the array still holds (trim).
	dead int
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
	// fetchCacheRefusedKeys bounds fetchCache.refused; when it is full it
	// is emptied.
	fetchCacheRefusedKeys = 1024
)

func newFetchCache(maxBytes int64, seg *segmented) *fetchCache {
	return &fetchCache{max: maxBytes, seg: seg, keys: map[string]*fetchCacheKey{}, refused: map[string]int64{}}
}

// tooBig reports whether a key of size bytes may not be cached.
func (c *fetchCache) tooBig(size int64) bool { return size > c.max/4 }

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

func entryCost(e *fetchCacheEntry) int64 { return fetchCacheEntryCost + int64(len(e.value)) }

// get returns the entries of key, without the expired ones, and whether
// the cache holds the key. The slice is the cache's: a caller that yields
// from it counts itself in readers for as long as it does.
func (c *fetchCache) get(key []byte) ([]fetchCacheEntry, bool) {
	k := c.keys[string(key)]
	if k == nil {
		return nil, false
	}
	c.trim(k, c.seg.firstLive())
	return k.entries, true
}

// isRefused reports whether key was found too big to cache while an entry
// it had then may still be live.
func (c *fetchCache) isRefused(key []byte) bool {
	at, ok := c.refused[string(key)]
	if !ok {
		return false
	}
	if c.seg.firstLive() <= at {
		return true
	}
	delete(c.refused, string(key))
	return false
}

// refuse remembers that key is too big to cache, with the observed stream
// time: none of its entries is later.
func (c *fetchCache) refuse(key []byte) {
	if len(c.refused) >= fetchCacheRefusedKeys {
		clear(c.refused)
	}
	c.refused[string(key)] = c.seg.observed
}

// trim drops the entries of k before firstLive. They leave k's array when
// they are as many as the live entries (or there are none left), so that
// the array holds at most twice what the budget counts, and trimming a
// few entries at a time costs no copy of the rest each time.
func (c *fetchCache) trim(k *fetchCacheKey, firstLive int64) {
	es := k.entries
	if len(es) == 0 || es[0].start >= firstLive {
		return
	}
	n, _ := slices.BinarySearchFunc(es, firstLive, compareStart)
	for i := range n {
		k.size -= entryCost(&es[i])
		c.bytes -= entryCost(&es[i])
	}
	k.dead += n
	switch live := es[n:]; {
	case len(live) == 0:
		k.entries, k.dead = nil, 0
	case k.dead >= len(live):
		// A new array, not a shift of the old one: an iteration in
		// progress may hold it.
		k.entries, k.dead = slices.Clone(live), 0
	default:
		k.entries = live
	}
}

// add caches key with its entries, which the caller has read from the base
// store, in order, and which the cache now owns; size is what they count
// (keySize and entryCost), not too big.
func (c *fetchCache) add(key []byte, entries []fetchCacheEntry, size int64) {
	c.keys[string(key)] = &fetchCacheKey{entries: entries, size: size}
	c.bytes += size
	c.fit()
}

// keySize is what a key with no entries counts.
func keySize(key []byte) int64 { return fetchCacheKeyCost + int64(len(key)) }

// drop forgets key, whose entries in the base the cache no longer knows:
// a write through the store failed, perhaps after the base applied it.
func (c *fetchCache) drop(key []byte) {
	if k := c.keys[string(key)]; k != nil {
		c.remove(string(key), k)
	}
}

// remove deletes the key s, whose entries are k, and uncounts them.
func (c *fetchCache) remove(s string, k *fetchCacheKey) {
	c.bytes -= k.size
	delete(c.keys, s)
}

// put records a write of the base store through the WindowStore, after it
// moved the observed stream time: a nil value deletes the entry
// (start, seq), another sets it. Keys the cache does not hold are left to
// the base.
func (c *fetchCache) put(key []byte, start int64, seq int32, value []byte) {
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
	if value == nil && !found {
		return
	}
	if c.readers > 0 && i < len(es) {
		// An iteration may hold es: change a copy. (Appending is safe: an
		// iteration holds the slice's old length.)
		es, k.dead = slices.Clone(es), 0
	}
	before := k.size
	switch {
	case value == nil:
		k.size -= entryCost(&es[i])
		es = slices.Delete(es, i, i+1)
		if len(es) < cap(es)/4 {
			// Deletions do not leave a large array behind a small key.
			es, k.dead = slices.Clip(slices.Clone(es)), 0
		}
	case found:
		k.size += int64(len(value)) - int64(len(es[i].value))
		es[i].value = bytes.Clone(value)
	default:
		grown := len(es) == cap(es)
		es = slices.Insert(es, i, fetchCacheEntry{start: start, seq: seq, value: bytes.Clone(value)})
		k.size += entryCost(&es[i])
		if grown {
			k.dead = 0 // a new array
		}
	}
	k.entries = es
	c.bytes += k.size - before
	if c.tooBig(k.size) {
		c.remove(string(key), k)
		c.refuse(key)
		return
	}
	c.fit()
}

// fit brings the cache back within its budget: first by dropping expired
// entries everywhere, then whole keys.
func (c *fetchCache) fit() {
	if c.bytes <= c.max {
		return
	}
	live := c.seg.firstLive()
	for s, k := range c.keys {
		c.trim(k, live)
		if len(k.entries) == 0 {
			c.remove(s, k)
		}
	}
	target := c.max / 4 * 3
	for s, k := range c.keys {
		if c.bytes <= target {
			return
		}
		c.remove(s, k)
	}
}
