package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"
)

// windowSuffix is the length of start ‖ seq at the end of a window store
// key.
const windowSuffix = 8 + 4

// WindowStoreOptions configures NewWindowStore. Retention must be set; the
// zero value of the other fields is Kafka Streams' default.
type WindowStoreOptions struct {
	// Retention is how long a window is kept after its start, measured
	// against the store's observed stream time (see WindowStore): a window
	// whose start is at most the observed stream time minus Retention is
	// gone. At least 1ms; it is counted in whole milliseconds.
	//
	// Kafka Streams: the retentionPeriod of Stores.persistentWindowStore,
	// for a windowed aggregation the window size plus its grace period
	// unless Materialized.withRetention says more.
	Retention time.Duration

	// SegmentInterval is the span of window starts kept in one segment,
	// the unit in which expired windows are dropped: a segment goes once
	// its last window has expired, so the store holds up to one
	// SegmentInterval of expired windows (never returned) on top of
	// Retention. Smaller segments drop sooner; every fetch visits each
	// segment its time range overlaps, up to Retention/SegmentInterval + 2
	// (without a fetch cache; see FetchCacheBytes).
	// Zero means Kafka Streams' default, max(Retention/2, 60s); otherwise at
	// least 1ms, in whole milliseconds. It must not change while the
	// store holds entries (nor may Kafka Streams'): NewWindowStore checks
	// the entries it reads when it opens a store, the first and those of
	// the latest segment, and reports one in the wrong segment for the
	// interval as an error.
	//
	// Kafka Streams: the segmentInterval of Stores.persistentWindowStore.
	SegmentInterval time.Duration

	// RetainDuplicates keeps every Put, even of the same key and window
	// start, under a new sequence number instead of overwriting, as a
	// stream-stream join's window stores do. A nil value is then not a
	// deletion: Put does nothing.
	//
	// Kafka Streams: the retainDuplicates of Stores.persistentWindowStore.
	RetainDuplicates bool

	// FetchCacheBytes, if positive, keeps the entries of the keys FetchKey
	// reads in memory, up to about this many bytes, so that fetching a
	// key again reads no base store: a key's first fetch reads all its
	// live entries, and the store's writes keep the copy current. It
	// serves only FetchKey (and Fetch when retaining duplicates); it
	// requires, as the store does, that nothing else writes the base.
	// Sluice gives a stream-stream join's window stores 4 MiB each
	// (docs/performance.md); Kafka Streams has no such cache.
	FetchCacheBytes int64
}

// WindowStore is a store of windows: values keyed by (key, window start,
// seq), like Kafka Streams' RocksDBWindowStore over a segmented bytes store
// with the WindowKeySchema, built on any KeyValueStore. Over a store of
// NewInMemoryKeyValueStore it is the in-memory window store; over a store
// of PebbleDB.KeyValueStore the persistent one.
//
// # Layout
//
// An entry is kept in the base store under
// int64 segment ‖ key ‖ int64 start ‖ int32 seq, all big-endian, where the
// segment is start / SegmentInterval and key ‖ start ‖ seq is the entry's
// changelog key (see AppendWindowKey). A segment is one range of keys, and
// a fetch of a key reads one range per segment. The base store must hold
// nothing else; the WindowStore owns it, and Close closes it.
//
// # Time and retention
//
// The store's observed stream time is the largest window start ever put or
// restored (deletions included), as in Kafka Streams; -1 before the first.
// A window whose start is at most the observed stream time minus Retention
// has expired: reads no longer return it, a write to it is refused with
// ErrWindowExpired, and its segment is deleted from the base store once
// the observed stream time minus Retention has passed the segment's end
// (with one DeleteRange if the base is a RangeDeleter, such as a Pebble
// store, and key by key otherwise). Kafka Streams accepts, but never
// returns, a write to an expired window whose segment is still there;
// refusing it keeps the store and its changelog equal to what reads see.
//
// A WindowStore built over a base that holds entries finds its segments
// and observed stream time in it: the observed stream time is then the
// largest start present.
//
// # Lifetimes and cost
//
// The store copies the keys and values it is given. Values returned by
// Fetch are valid until the next write to the store; keys and values
// yielded by iteration until the next step. Put and Fetch allocate nothing
// beyond what the base store allocates (nothing at all for an overwrite
// over an in-memory base), except a Put that drops expired segments and,
// with a fetch cache, its bookkeeping: the copy of each value it keeps,
// of a key's entries when it compacts them or a write meets an iteration
// in progress, and the fetch that brings a key into the cache.
//
// The loop body of an iteration may use the store, writes included.
// Whether the rest of the iteration sees such writes is the base store's
// rule (see NewInMemoryKeyValueStore and PebbleDB.KeyValueStore) applied to
// each segment, which a fetch of a key reads with a Range of its own,
// except for a FetchKey served by the fetch cache
// (WindowStoreOptions.FetchCacheBytes), which yields the entries the key
// had when it started and none of the loop body's writes.
//
// A WindowStore is not safe for concurrent use; it belongs to one task.
type WindowStore struct {
	seg   segmented
	dups  bool
	seq   int32       // seq of the latest Put when retaining duplicates
	cache *fetchCache // nil without WindowStoreOptions.FetchCacheBytes
}

// WindowEntryKey is the key of an entry of a WindowStore. Key is valid
// until the next step of the iteration that yielded it.
type WindowEntryKey struct {
	Key   []byte
	Start int64 // window start, ms since the epoch
	Seq   int32 // 0 unless the store retains duplicates
}

// NewWindowStore returns a window store kept in base, which it owns (see
// WindowStore). If base holds entries of an earlier window store, the new
// one carries on with them; the options must then have the same segment
// interval. Invalid options are an error naming the store and the field.
func NewWindowStore(base KeyValueStore, o WindowStoreOptions) (*WindowStore, error) {
	const kind = "window store"
	r, i, err := segmentOptions(kind, base.Name(), o.Retention, o.SegmentInterval)
	if err != nil {
		return nil, err
	}
	s := &WindowStore{
		seg:  segmented{base: base, kind: kind, retention: r, interval: i, suffix: windowSuffix},
		dups: o.RetainDuplicates,
	}
	if o.FetchCacheBytes > 0 {
		s.cache = newFetchCache(o.FetchCacheBytes, &s.seg)
	}
	if err := s.seg.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Base is the key-value store the window store keeps its entries in,
// under keys segment ID (8 bytes, big-endian) ‖ changelog key.
func (s *WindowStore) Base() KeyValueStore { return s.seg.base }

// Name returns the name of the base store.
func (s *WindowStore) Name() string { return s.seg.base.Name() }

// Flush flushes the base store.
func (s *WindowStore) Flush() error { return s.seg.flush() }

// Close closes the store and its base store. Further use returns
// ErrClosed, and iterations yield nothing.
func (s *WindowStore) Close() error {
	s.cache = nil
	return s.seg.close()
}

// ObservedStreamTime returns the largest window start put or restored so
// far, in ms, or -1 if there was none (see WindowStore).
func (s *WindowStore) ObservedStreamTime() int64 { return s.seg.observed }

// IterErr returns the error that ended the store's most recent iteration
// early (a failure of the base store, see IterErrReporter), or nil if it
// ran to its end or the loop body stopped it. Each iteration clears it when
// it starts.
func (s *WindowStore) IterErr() error { return s.seg.iterErr }

// Put sets the value of the window of key starting at start (ms since the
// epoch, not negative). A nil value deletes the window, unless the store
// retains duplicates: then every Put adds an entry under the next sequence
// number (1, 2, ... wrapping to 0 after 2^31-1, as Kafka Streams counts
// them, from 0 again after a reopen), and a nil value does nothing.
//
// Put advances the observed stream time to start if start is later,
// dropping the segments that leaves behind. A Put for an expired window
// (start at most the observed stream time minus Retention) changes nothing
// and returns ErrWindowExpired.
//
// After a Put that returns nil, LastChangelogKey returns the key the write
// goes under in the changelog.
func (s *WindowStore) Put(key []byte, start int64, value []byte) error {
	s.seg.logged = false
	if s.seg.closed {
		return ErrClosed
	}
	if start < 0 {
		return s.seg.errorf("put: negative window start %d", start)
	}
	if value == nil && s.dups {
		return nil
	}
	var seq int32
	if s.dups {
		s.seq = (s.seq + 1) & math.MaxInt32
		seq = s.seq
	}
	return s.write(key, start, seq, value)
}

// LastChangelogKey returns the changelog key (key ‖ start ‖ seq, see
// AppendWindowKey) of the latest Put if it returned nil, so that the
// runtime logs the write under the seq the store chose; it is nil after a
// Put that wrote nothing (an error, ErrWindowExpired, or a nil value
// when retaining duplicates) and after any other write. The slice is the
// store's, valid until the next write.
func (s *WindowStore) LastChangelogKey() []byte { return s.seg.lastChangelogKey() }

// Restore applies one record of the store's changelog: changelogKey is a
// window key as AppendWindowKey writes it, and a nil value deletes. It
// keeps the seq it is given, advances the observed stream time like Put,
// and skips, without error, a record of an expired window.
func (s *WindowStore) Restore(changelogKey, value []byte) error {
	s.seg.logged = false
	if s.seg.closed {
		return ErrClosed
	}
	key, start, seq, err := SplitWindowKey(changelogKey)
	if err != nil {
		return s.seg.errorf("restore: %w", err)
	}
	if start < 0 {
		return s.seg.errorf("restore: negative window start %d in changelog key %x", start, changelogKey)
	}
	err = s.write(key, start, seq, value)
	s.seg.logged = false
	if err == ErrWindowExpired {
		return nil
	}
	return err
}

func (s *WindowStore) write(key []byte, start int64, seq int32, value []byte) error {
	if err := s.seg.observe(start); err != nil {
		return err
	}
	if s.seg.expired(start) {
		return ErrWindowExpired
	}
	id := s.seg.segmentID(start)
	s.seg.minSeg = min(s.seg.minSeg, id)
	s.seg.wbuf = AppendWindowKey(appendSegment(s.seg.wbuf[:0], id), key, start, seq)
	if err := s.seg.write(value); err != nil {
		if s.cache != nil {
			// The base may have applied the write before it failed (a
			// logged store whose changelog send failed): the copy of the
			// key can no longer be trusted.
			s.cache.drop(key)
		}
		return err
	}
	if s.cache != nil {
		s.cache.put(key, start, seq, value)
	}
	return nil
}

// Fetch returns the value of the window of key starting at start; ok is
// false if there is none or it has expired. If the store retains
// duplicates, it returns a copy of the value of the window's first entry
// in seq order (Kafka Streams returns the entry of the latest Put's seq
// instead, if any), at the cost of an iteration.
func (s *WindowStore) Fetch(key []byte, start int64) (value []byte, ok bool, err error) {
	if s.seg.closed {
		return nil, false, ErrClosed
	}
	if start < s.seg.firstLive() {
		return nil, false, nil
	}
	if s.dups {
		return s.fetchFirst(key, start)
	}
	s.seg.rbuf = AppendWindowKey(appendSegment(s.seg.rbuf[:0], s.seg.segmentID(start)), key, start, 0)
	return s.seg.base.Get(s.seg.rbuf)
}

// fetchFirst returns a copy of the value of the first entry of the window
// of key at start. It is a function of its own because the iteration would
// make Fetch allocate its results on every call.
func (s *WindowStore) fetchFirst(key []byte, start int64) ([]byte, bool, error) {
	for _, v := range s.FetchKey(key, start, start) {
		return bytes.Clone(v), true, nil
	}
	return nil, false, s.seg.iterErr
}

// FetchKey yields the windows of key whose start is in from..to, both
// inclusive, in ascending order of start (and of seq for duplicates), with
// their values: Kafka Streams' WindowStore.fetch(key, timeFrom, timeTo).
// Expired windows are not yielded. Without a fetch cache, it visits only
// the segments the range overlaps and, in each, only the key's entries in
// the range (and those of keys the key is a byte prefix of, which it
// skips); with one, see WindowStoreOptions.FetchCacheBytes.
//
// After the loop, IterErr reports an error that ended it early.
func (s *WindowStore) FetchKey(key []byte, from, to int64) iter.Seq2[int64, []byte] {
	return func(yield func(int64, []byte) bool) {
		s.seg.iterErr = nil
		if s.seg.closed {
			return
		}
		from = max(from, s.seg.firstLive())
		if s.cache == nil {
			s.fetchBase(key, from, to, withoutSeq(yield))
			return
		}
		s.fetchCached(key, from, to, yield)
	}
}

// fetchCached is FetchKey served by the fetch cache, which it loads the key
// into first if it does not hold it; a key too big to cache is read from
// the base.
func (s *WindowStore) fetchCached(key []byte, from, to int64, yield func(int64, []byte) bool) {
	c := s.cache
	es, ok := c.get(key)
	if !ok {
		var failed bool
		if es, ok, failed = s.load(key); failed {
			return
		}
		if !ok {
			s.fetchBase(key, from, to, withoutSeq(yield))
			return
		}
	}
	i, _ := slices.BinarySearchFunc(es, from, compareStart)
	if i == len(es) || es[i].start > to {
		return
	}
	c.readers++
	defer func() { c.readers-- }()
	for ; i < len(es) && es[i].start <= to; i++ {
		if !yield(es[i].start, es[i].value) || s.seg.closed {
			return
		}
	}
}

// load reads every live entry of key from the base store into the fetch
// cache and returns them. It stops, and refuses the key, once the key is
// too big to cache, and reads nothing for a key refused before (ok false
// both times); failed reports a failed read (IterErr).
func (s *WindowStore) load(key []byte) (es []fetchCacheEntry, ok, failed bool) {
	c := s.cache
	if c.isRefused(key) {
		return nil, false, false
	}
	size := keySize(key)
	s.fetchBase(key, s.seg.firstLive(), math.MaxInt64, func(start int64, seq int32, v []byte) bool {
		es = append(es, fetchCacheEntry{start: start, seq: seq, value: bytes.Clone(v)})
		size += entryCost(&es[len(es)-1])
		return !c.tooBig(size)
	})
	if s.seg.iterErr != nil {
		return nil, false, true
	}
	if c.tooBig(size) {
		c.refuse(key)
		return nil, false, false
	}
	c.add(key, es, size)
	return es, true, false
}

// withoutSeq adapts FetchKey's yield to fetchBase's.
func withoutSeq(yield func(int64, []byte) bool) func(int64, int32, []byte) bool {
	return func(start int64, _ int32, v []byte) bool { return yield(start, v) }
}

// fetchBase yields the entries of key with starts in from..to from the base
// store, as FetchKey does without a cache.
func (s *WindowStore) fetchBase(key []byte, from, to int64, yield func(start int64, seq int32, v []byte) bool) {
	lo, hi, ok := s.seg.span(from, to)
	if !ok {
		return
	}
	// The bounds of each segment's range, built in one buffer of the
	// iteration's own, so that the loop body may use the store.
	n := 8 + len(key) + windowSuffix
	buf := make([]byte, 0, 2*n+1)
	for id := lo; ; id++ {
		lower := AppendWindowKey(appendSegment(buf[:0], id), key, from, 0)
		// The greatest key of the range is key ‖ to ‖ 0xffffffff; the
		// upper bound is the next key after it.
		upper := AppendWindowKey(appendSegment(lower[n:n], id), key, to, -1)
		upper = append(upper, 0)
		for k, v := range s.seg.base.Range(lower, upper) {
			if len(k) != n || !bytes.Equal(k[8:n-windowSuffix], key) {
				continue // a longer key that key is a prefix of
			}
			start := int64(binary.BigEndian.Uint64(k[n-windowSuffix:]))
			if start < from || start > to {
				continue
			}
			if !yield(start, int32(binary.BigEndian.Uint32(k[n-4:])), v) {
				return
			}
		}
		if s.seg.iterFailed() || s.seg.closed || id == hi {
			return
		}
	}
}

// FetchAll yields every key's windows whose start is in from..to, both
// inclusive: Kafka Streams' WindowStore.fetchAll(timeFrom, timeTo).
// Expired windows are not yielded. The order is Kafka Streams': by segment,
// then by the bytes of the changelog key (key ‖ start ‖ seq), which within
// a segment is by key and then start when no key is a byte prefix of
// another.
//
// After the loop, IterErr reports an error that ended it early.
func (s *WindowStore) FetchAll(from, to int64) iter.Seq2[WindowEntryKey, []byte] {
	return func(yield func(WindowEntryKey, []byte) bool) {
		s.seg.iterErr = nil
		if s.seg.closed {
			return
		}
		from = max(from, s.seg.firstLive())
		lo, hi, ok := s.seg.span(from, to)
		if !ok {
			return
		}
		var upper []byte
		if hi < math.MaxInt64 {
			upper = appendSegment(nil, hi+1)
		}
		for k, v := range s.seg.base.Range(appendSegment(nil, lo), upper) {
			if len(k) < 8+windowSuffix {
				s.seg.iterErr = s.seg.errorf("malformed entry %x in the base store", k)
				return
			}
			key, start, seq, _ := SplitWindowKey(k[8:])
			if start < from || start > to {
				continue
			}
			if !yield(WindowEntryKey{Key: key, Start: start, Seq: seq}, v) {
				return
			}
		}
		s.seg.iterFailed()
	}
}

// All yields every window the store holds that has not expired, in the
// order of FetchAll: Kafka Streams' WindowStore.all().
func (s *WindowStore) All() iter.Seq2[WindowEntryKey, []byte] {
	return s.FetchAll(0, math.MaxInt64)
}

// AppendWindowKey appends the window store key of (key, start, seq) to dst
// and returns the extended slice: key ‖ int64 start ‖ int32 seq, both
// big-endian. This is the key of a window store's changelog records and of
// Kafka Streams' window stores (WindowKeySchema.toStoreKeyBinary).
func AppendWindowKey(dst, key []byte, start int64, seq int32) []byte {
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(start))
	return binary.BigEndian.AppendUint32(dst, uint32(seq))
}

// SplitWindowKey splits a window store key written by AppendWindowKey. The
// key returned is a slice of b, capped so that appending to it copies.
// Any b of at least 12 bytes splits; a shorter one is an error.
func SplitWindowKey(b []byte) (key []byte, start int64, seq int32, err error) {
	n := len(b) - windowSuffix
	if n < 0 {
		return nil, 0, 0, fmt.Errorf("sluice: window key %x: %d bytes, less than the %d of start and seq", b, len(b), windowSuffix)
	}
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n:])), int32(binary.BigEndian.Uint32(b[n+8:])), nil
}
