package state

import (
	"bytes"
	"iter"
	"math/bits"
	"math/rand/v2"
)

// NewInMemoryKeyValueStore returns an empty KeyValueStore held in memory,
// like Kafka Streams' Stores.inMemoryKeyValueStore. Flush is a no-op; Close
// drops the contents, and every later call returns ErrClosed.
//
// The store is not safe for concurrent use: a store belongs to the one task
// that owns its partition, and that task's goroutine is the only one to call
// it. (Putting a mutex on every Get and Put would make all users pay for a
// sharing that the runtime never does.)
//
// Get, and Put of a key already present with a value no longer than its
// current one, allocate nothing. Put of a new key costs O(log n) and a few
// small allocations; Delete costs O(log n). Iteration costs O(log n) to find
// the first key and O(1) per step after that.
//
// Writes during an iteration, including from the loop body, are allowed and
// never invalidate it. The iteration yields the keys in range that were
// present when it started and are still present when it reaches them, each
// with its value at that moment: a key deleted before the iteration reaches
// it is skipped, and a key added after the iteration started (including one
// deleted and added again) is not yielded. This is the behaviour of Kafka
// Streams' in-memory store, which iterates a copy of the key set and reads
// each value on the way, but without copying the keys.
//
// Range and Prefix copy their bounds when called, so the caller may reuse
// the slices at once. An empty, non-nil to bound is a bound (Range yields
// nothing), unlike a nil one.
func NewInMemoryKeyValueStore(name string) KeyValueStore {
	s := &memStore{name: name, keys: make(map[string]*memEntry)}
	s.list.init()
	return s
}

// memStore is a hash map for point lookups plus a skip list of the same
// entries for ordered iteration.
//
// The map makes Get and the overwrite of an existing key a single hash
// lookup, with no allocation (the compiler does not allocate for
// m[string(b)]), which is the hot path of aggregations and joins. The skip
// list keeps the keys sorted at O(log n) per insert and delete, so
// interleaving new keys and range scans (window and session lookups) stays
// cheap; a sorted slice rebuilt on demand would cost O(n log n) per scan
// after any insert. A skip list rather than a B-tree because it is much less
// code, and because its nodes are the map's entries, so a removed entry can
// be marked dead for the iterators that hold it.
type memStore struct {
	name   string
	keys   map[string]*memEntry // nil once closed
	list   skipList
	seq    uint64 // insertions so far; the seq of the newest entry
	closed bool
}

// memEntry is one key and its value, and the entry's skip list node.
type memEntry struct {
	key   []byte // never modified after insertion
	value []byte // never nil, so that a present empty value differs from absence
	// seq orders insertions: an iteration that started when the store's seq
	// was s yields only entries with seq <= s.
	seq     uint64
	removed bool
	// lent: Get returned value since it was last written. The next Put
	// then writes a new slice instead of overwriting it, so that a caller
	// may still use the old value while it writes the new one (an
	// aggregation forwards the old aggregate after storing the new one,
	// and a serde like Bytes decodes without copying).
	lent bool
	next []*memEntry // next[i] is the successor on level i; nil once removed
}

func (s *memStore) Name() string { return s.name }

func (s *memStore) Flush() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *memStore) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.keys = nil
	s.list.init() // let the entries be collected
	return nil
}

func (s *memStore) Get(key []byte) ([]byte, bool, error) {
	if s.closed {
		return nil, false, ErrClosed
	}
	e, ok := s.keys[string(key)]
	if !ok {
		return nil, false, nil
	}
	// Cap the slice so that a caller's append cannot write into the spare
	// capacity the next Put may use.
	e.lent = true
	return e.value[:len(e.value):len(e.value)], true, nil
}

func (s *memStore) Put(key, value []byte) error {
	if s.closed {
		return ErrClosed
	}
	if e, ok := s.keys[string(key)]; ok {
		// Reuse the value's memory unless that would hold on to a buffer
		// much larger than the value.
		if c := cap(e.value); !e.lent && len(value) <= c && c <= 2*len(value)+64 {
			e.value = append(e.value[:0], value...)
		} else {
			e.value = clone(value)
		}
		e.lent = false
		return nil
	}
	s.seq++
	e := &memEntry{key: clone(key), value: clone(value), seq: s.seq}
	s.keys[string(e.key)] = e
	s.list.insert(e)
	return nil
}

func (s *memStore) Delete(key []byte) error {
	if s.closed {
		return ErrClosed
	}
	e, ok := s.keys[string(key)]
	if !ok {
		return nil
	}
	delete(s.keys, string(key))
	s.list.remove(e)
	return nil
}

func (s *memStore) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	from, to = bytes.Clone(from), bytes.Clone(to) // nil stays nil
	return func(yield func([]byte, []byte) bool) {
		if s.closed {
			return
		}
		start := s.seq
		e := s.list.seek(from, false)
		for e != nil && (to == nil || bytes.Compare(e.key, to) < 0) {
			if e.seq <= start {
				e.lent = true // as for Get: the caller may hold the value across a write
				if !yield(e.key, e.value[:len(e.value):len(e.value)]) || s.closed {
					return
				}
			}
			if e.removed {
				// Deleted by the loop body: its links are gone, so find its
				// successor by key.
				e = s.list.seek(e.key, true)
			} else {
				e = e.next[0]
			}
		}
	}
}

func (s *memStore) Prefix(prefix []byte) iter.Seq2[[]byte, []byte] {
	return s.Range(prefix, prefixEnd(prefix))
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil if there is none (prefix is empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := bytes.Clone(prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}

func (s *memStore) ApproximateCount() int64 { return int64(len(s.keys)) }

// clone copies b into a slice of exactly its length, non-nil even when b is
// empty.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// maxLevel bounds the skip list's height. With a branching factor of 4,
// 16 levels keep searches O(log n) up to 4^16 (about 4 billion) entries.
const maxLevel = 16

// skipList is a skip list of memEntry ordered by bytes.Compare of the keys
// (W. Pugh, "Skip lists: a probabilistic alternative to balanced trees",
// 1990), with p = 1/4.
type skipList struct {
	head   memEntry // sentinel; head.next has maxLevel levels
	height int      // levels in use, at least 1
}

func (l *skipList) init() {
	l.head.next = make([]*memEntry, maxLevel)
	l.height = 1
}

// find returns the first entry with key >= key (> key if after), and, if
// prev is not nil, fills prev[i] with the last entry before it on level i.
func (l *skipList) find(key []byte, after bool, prev *[maxLevel]*memEntry) *memEntry {
	x := &l.head
	for i := l.height - 1; i >= 0; i-- {
		for {
			y := x.next[i]
			if y == nil {
				break
			}
			c := bytes.Compare(y.key, key)
			if c > 0 || (c == 0 && !after) {
				break
			}
			x = y
		}
		if prev != nil {
			prev[i] = x
		}
	}
	return x.next[0]
}

// seek returns the first entry with key >= key, or > key if after. A nil key
// seeks to the first entry.
func (l *skipList) seek(key []byte, after bool) *memEntry {
	if key == nil {
		return l.head.next[0]
	}
	return l.find(key, after, nil)
}

func (l *skipList) insert(e *memEntry) {
	var prev [maxLevel]*memEntry
	l.find(e.key, false, &prev)
	// Level h with probability 4^-(h-1) * 3/4: two random bits per level.
	h := min(bits.TrailingZeros64(rand.Uint64())/2+1, maxLevel)
	for i := l.height; i < h; i++ {
		prev[i] = &l.head
	}
	l.height = max(l.height, h)
	e.next = make([]*memEntry, h)
	for i := range h {
		e.next[i] = prev[i].next[i]
		prev[i].next[i] = e
	}
}

func (l *skipList) remove(e *memEntry) {
	var prev [maxLevel]*memEntry
	l.find(e.key, false, &prev)
	for i := range e.next {
		prev[i].next[i] = e.next[i]
	}
	for l.height > 1 && l.head.next[l.height-1] == nil {
		l.height--
	}
	e.removed = true
	e.next = nil
}
