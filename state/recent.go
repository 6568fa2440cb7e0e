package state

import (
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// defaultRecentBytes is PebbleOptions.RecentBytes' default.
const defaultRecentBytes = 1 << 20

// recentEntryOverhead approximates what an entry of recentWrites costs
// beyond its key and value bytes: the map slot, the string and slice
// headers, the entry itself.
const recentEntryOverhead = 112

// recentWrites holds the latest value written to each key through the
// stores of a PebbleDB that buffers its writes (PebbleOptions.RecentBytes),
// in front of its pending indexed batch:
//
//   - as a read cache: the every-update path reads a key it wrote a moment
//     ago (an aggregate, a join's buffer), and a Go map answers that for a
//     fraction of a Pebble Get, which on an indexed batch merges the batch
//     over the memtables and sstables and allocates two iterators;
//   - as a write-back buffer: a write goes to the map only (dirty), and
//     reaches the pending batch when the entry is evicted or before
//     anything else reads or writes the batch (Commit, an iteration, a
//     range deletion, a Batch's commit), so a key updated n times between
//     two commits costs one insertion into the batch's skiplist, not n.
//     The batch is only applied at Commit anyway, so what Commit applies,
//     and what a crash keeps, is the same.
//
// Entries are keyed by the full DB key (the store's prefix and the key),
// so the stores of one DB share it. An entry is true as long as every
// write to its key goes through a store's Put or Delete, which update it;
// the other ways of writing drop the clean entries: a range deletion and a
// Batch's commit (after writing the dirty ones to the pending batch),
// Discard and a failed commit (with the dirty ones: the pending writes are
// dropped). A nil *recentWrites is off: every write goes to the batch.
type recentWrites struct {
	m     map[string]*recentEntry
	dirty []*recentEntry // entries written since the last writeBack; some may be clean again
	bytes int            // the entries' approximate size
	max   int
	// last is the entry get returned last, in the map: an update reads
	// its key first, and the write that follows finds the entry here
	// without a second lookup.
	last *recentEntry
}

type recentEntry struct {
	key     string
	value   []byte
	deleted bool
	dirty   bool // not in the pending batch yet
	// slot is the caller's, kept with the entry (PutSlot).
	slot Slot
}

func newRecentWrites(maxBytes int) *recentWrites {
	return &recentWrites{m: map[string]*recentEntry{}, max: maxBytes}
}

// get returns key's entry, or nil.
func (r *recentWrites) get(key []byte) *recentEntry {
	if r == nil {
		return nil
	}
	if e := r.m[string(key)]; e != nil {
		r.last = e
		return e
	}
	return nil
}

// write records that key now holds value, or that it was deleted, as a
// dirty entry, and returns the entry, or nil if it did not (the cache is
// off or the value too large for it): the caller then writes to the batch
// itself.
// An existing entry's buffer is reused, so that updating a key allocates
// nothing once its value's size is reached.
func (r *recentWrites) write(b *pebble.Batch, key, value []byte, deleted bool) (*recentEntry, error) {
	if r == nil {
		return nil, nil
	}
	e, ok := r.last, r.last != nil && r.last.key == string(key)
	if !ok {
		e, ok = r.m[string(key)]
	}
	if !ok {
		size := len(key) + len(value) + recentEntryOverhead
		if size > r.max/8 {
			return nil, nil // a value this large would crowd out the rest
		}
		e = &recentEntry{key: string(key)}
		r.m[e.key] = e
		r.bytes += size
	} else {
		r.bytes += len(value) - len(e.value)
	}
	e.value = append(e.value[:0], value...)
	e.deleted = deleted
	if !e.dirty {
		e.dirty = true
		r.dirty = append(r.dirty, e)
	}
	if r.bytes > r.max {
		return e, r.evict(b, e)
	}
	return e, nil
}

// evict drops entries until the cache is at three quarters of its size,
// writing the dirty ones to b first: arbitrary ones (but keep, the one
// just written), in the map's iteration order, which is cheap and, for a
// cache whose hits come from keys written again and again, good enough.
func (r *recentWrites) evict(b *pebble.Batch, keep *recentEntry) error {
	for k, e := range r.m {
		if r.bytes <= r.max/4*3 {
			break
		}
		if e == keep {
			continue
		}
		if err := r.writeEntry(b, e); err != nil {
			return err
		}
		delete(r.m, k)
		r.bytes -= len(k) + len(e.value) + recentEntryOverhead
		if e == r.last {
			r.last = nil
		}
	}
	return nil
}

// writeEntry writes e to b if it is dirty.
func (r *recentWrites) writeEntry(b *pebble.Batch, e *recentEntry) error {
	if !e.dirty {
		return nil
	}
	// Pebble copies the key into the batch: it may alias the string.
	k := unsafe.Slice(unsafe.StringData(e.key), len(e.key))
	var err error
	if e.deleted {
		err = b.Delete(k, nil)
	} else {
		err = b.Set(k, e.value, nil)
	}
	if err != nil {
		return err
	}
	e.dirty = false
	return nil
}

// writeBack writes every dirty entry to b; they stay as clean entries.
func (r *recentWrites) writeBack(b *pebble.Batch) error {
	if r == nil {
		return nil
	}
	for i, e := range r.dirty {
		if err := r.writeEntry(b, e); err != nil {
			r.dirty = r.dirty[i:]
			return err
		}
	}
	clear(r.dirty) // let evicted entries go
	r.dirty = r.dirty[:0]
	return nil
}

// pending is the number of dirty entries (at most).
func (r *recentWrites) pending() int {
	if r == nil {
		return 0
	}
	return len(r.dirty)
}

// forget drops key's entry, if any, dirty or not (the caller writes a
// newer value to the batch).
func (r *recentWrites) forget(key []byte) {
	if r == nil {
		return
	}
	if e, ok := r.m[string(key)]; ok {
		e.dirty = false
		delete(r.m, string(key))
		if e == r.last {
			r.last = nil
		}
		r.bytes -= len(key) + len(e.value) + recentEntryOverhead
	}
}

// clear drops every entry, dirty or not.
func (r *recentWrites) clear() {
	if r == nil {
		return
	}
	for _, e := range r.dirty {
		e.dirty = false
	}
	clear(r.dirty)
	r.dirty = r.dirty[:0]
	clear(r.m)
	r.bytes = 0
	r.last = nil
}
