package state

// defaultRecentBytes is PebbleOptions.RecentBytes' default.
const defaultRecentBytes = 1 << 20

// recentEntryOverhead approximates what an entry of recentWrites costs
// beyond its key and value bytes: the map slot, the string and slice
// headers, the entry itself.
const recentEntryOverhead = 96

// recentWrites is a PebbleDB's cache of the latest value written to each
// key through its stores (PebbleOptions.RecentBytes): the every-update path
// reads a key it wrote a moment ago (an aggregate, a join's buffer), and a
// Go map answers that for a fraction of a Pebble Get, which on a DB that
// buffers its writes merges the pending indexed batch over the memtables
// and sstables and allocates two iterators.
//
// Entries are keyed by the full DB key (the store's prefix and the key),
// so the stores of one DB share it. An entry is true as long as every
// write to its key goes through a store's Put or Delete, which update it;
// the other ways of writing forget entries: DeleteRange and a Batch's
// commit clear the cache, Discard and a failed commit too. A nil
// *recentWrites is an empty cache that stays empty.
type recentWrites struct {
	m     map[string]*recentEntry
	bytes int // the entries' approximate size
	max   int
}

type recentEntry struct {
	value   []byte
	deleted bool
}

func newRecentWrites(maxBytes int) *recentWrites {
	return &recentWrites{m: map[string]*recentEntry{}, max: maxBytes}
}

// get returns key's entry, or nil.
func (r *recentWrites) get(key []byte) *recentEntry {
	if r == nil {
		return nil
	}
	return r.m[string(key)]
}

// put records that key now holds value, or that it was deleted. An
// existing entry's buffer is reused, so that updating a key allocates
// nothing once its value's size is reached.
func (r *recentWrites) put(key, value []byte, deleted bool) {
	if r == nil {
		return
	}
	if e, ok := r.m[string(key)]; ok {
		r.bytes += len(value) - len(e.value)
		e.value = append(e.value[:0], value...)
		e.deleted = deleted
		if r.bytes > r.max {
			r.evict()
		}
		return
	}
	size := len(key) + len(value) + recentEntryOverhead
	if size > r.max/8 {
		return // a value this large would crowd out the rest
	}
	r.m[string(key)] = &recentEntry{value: append([]byte(nil), value...), deleted: deleted}
	r.bytes += size
	if r.bytes > r.max {
		r.evict()
	}
}

// evict drops entries until the cache is at three quarters of its size:
// arbitrary ones, in the map's iteration order, which is cheap and, for a
// cache whose hits come from keys written again and again, good enough.
func (r *recentWrites) evict() {
	for k, e := range r.m {
		if r.bytes <= r.max/4*3 {
			return
		}
		delete(r.m, k)
		r.bytes -= len(k) + len(e.value) + recentEntryOverhead
	}
}

// forget drops key's entry, if any.
func (r *recentWrites) forget(key []byte) {
	if r == nil {
		return
	}
	if e, ok := r.m[string(key)]; ok {
		delete(r.m, string(key))
		r.bytes -= len(key) + len(e.value) + recentEntryOverhead
	}
}

// clear drops every entry.
func (r *recentWrites) clear() {
	if r == nil {
		return
	}
	clear(r.m)
	r.bytes = 0
}
