package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrWindowExpired is returned by a write to a window or session store for
// a window that has already expired: one whose time (a window's start, a
// session's end) is at most the store's observed stream time minus its
// retention. The store is left unchanged, so the write must not be logged
// to the changelog either. It is an outcome to count, as Kafka Streams
// counts dropped records, not a failure of the store; it is returned as it
// is, unwrapped, so that a stream of late records costs no allocation.
var ErrWindowExpired = errors.New("sluice: window expired")

// noTimestamp is the observed stream time of a store that has seen no
// write, Kafka's ConsumerRecord.NO_TIMESTAMP.
const noTimestamp = -1

// noSegment is the lowest segment of a store that holds no segment.
const noSegment = math.MaxInt64

// defaultSegmentInterval is Kafka Streams' minimum for the default segment
// interval, max(retention/2, 60s) (Stores.persistentWindowStore,
// RocksDbSessionBytesStoreSupplier.segmentIntervalMs).
const defaultSegmentInterval = 60 * time.Second

// deleteChunk is the number of keys an expired segment is deleted by at a
// time over a base store that cannot delete a range.
const deleteChunk = 1024

// segmented is what window and session stores share: the split of one
// KeyValueStore into segments of time, the observed stream time and the
// dropping of segments that fall out of retention, after Kafka Streams'
// AbstractRocksDBSegmentedBytesStore and AbstractSegments.
//
// Kafka Streams keeps each segment in a RocksDB instance of its own. Here
// every entry of segment id lives in the base store under
// int64 id ‖ changelog key (big-endian), so a segment is one contiguous key
// range, dropped with one DeleteRange when the base is a RangeDeleter. Ids
// are never negative (times are not), so byte order is id order.
//
// Segments are not listed anywhere: the store keeps the lowest id that may
// hold entries (minSeg) and derives the highest from the observed stream
// time, the largest time ever written, whose segment no entry can be
// after. Every entry of a segment before minLive() is dropped as soon as
// the stream time moves past it, so the segments visited by a fetch are at
// most retention/interval + 2, whether they hold entries or not.
type segmented struct {
	base      KeyValueStore
	kind      string // "window store" or "session store", for errors
	retention int64  // ms, >= 1
	interval  int64  // ms, >= 1
	// suffix is the length of the times (and seq) after the key in a
	// changelog key; the segment time comes first in it.
	suffix int

	observed int64 // largest time written or restored; noTimestamp if none
	minSeg   int64 // every entry is in a segment >= minSeg; noSegment if none

	wbuf    []byte // segment id ‖ changelog key of the latest write
	rbuf    []byte // segment id ‖ changelog key of the latest point read
	logged  bool   // wbuf holds the changelog key of the latest write
	iterErr error
	closed  bool
}

// segmentOptions resolves and checks the retention and segment interval of
// a store named name, with Kafka Streams' default interval.
func segmentOptions(kind, name string, retention, interval time.Duration) (r, i int64, err error) {
	if retention < time.Millisecond {
		return 0, 0, fmt.Errorf("sluice: %s %q: Retention %v is less than 1ms", kind, name, retention)
	}
	switch {
	case interval == 0:
		interval = max(retention/2, defaultSegmentInterval)
	case interval < 0:
		return 0, 0, fmt.Errorf("sluice: %s %q: SegmentInterval %v is negative", kind, name, interval)
	case interval < time.Millisecond:
		return 0, 0, fmt.Errorf("sluice: %s %q: SegmentInterval %v is less than 1ms", kind, name, interval)
	}
	return retention.Milliseconds(), interval.Milliseconds(), nil
}

func (s *segmented) errorf(format string, args ...any) error {
	return fmt.Errorf("sluice: %s %q: "+format, append([]any{s.kind, s.base.Name()}, args...)...)
}

// segmentID is the segment of time t, AbstractSegments.segmentId.
func (s *segmented) segmentID(t int64) int64 { return t / s.interval }

// minLive is the first segment kept at the observed stream time,
// AbstractSegments.cleanupExpiredSegments's minLiveSegment. It is 0 or
// less until the stream time passes the retention.
func (s *segmented) minLive() int64 { return s.segmentID(s.observed - s.retention) }

// firstLive is the earliest time a read returns: Kafka Streams'
// AbstractRocksDBSegmentedBytesStore.getActualFrom, never below 0.
func (s *segmented) firstLive() int64 { return max(0, s.observed-s.retention+1) }

// expired reports whether a write at time t is refused. Kafka Streams
// drops a write only when its segment is gone, but it never returns an
// entry before firstLive either; refusing every such write keeps what the
// store holds, and what its changelog carries, equal to what it returns.
func (s *segmented) expired(t int64) bool { return t < s.firstLive() }

// span returns the segments that may hold entries with times from..to: at
// most the segments of from through to, after minSeg and not after the
// segment of the observed stream time.
func (s *segmented) span(from, to int64) (lo, hi int64, ok bool) {
	if s.observed == noTimestamp || to < from {
		return 0, 0, false
	}
	lo = max(s.segmentID(from), s.minSeg)
	hi = min(s.segmentID(to), s.segmentID(s.observed))
	return lo, hi, lo <= hi
}

// observe advances the observed stream time to t and drops the segments
// that the advance moved out of retention.
func (s *segmented) observe(t int64) error {
	if t <= s.observed {
		return nil
	}
	s.observed = t
	return s.dropExpired()
}

// dropExpired deletes the segments before minLive, all at once: one range
// deletion (usually of one segment; of several when the stream time jumps)
// rather than one per segment, which a jump from 0 to the current epoch
// would make a loop of billions.
func (s *segmented) dropExpired() error {
	live := s.minLive()
	if s.minSeg >= live {
		return nil
	}
	if err := s.deleteSegments(s.minSeg, live); err != nil {
		return err
	}
	s.minSeg = live
	return nil
}

// deleteSegments deletes the entries of segments from..to-1.
func (s *segmented) deleteSegments(from, to int64) error {
	lower, upper := appendSegment(nil, from), appendSegment(nil, to)
	if rd, ok := s.base.(RangeDeleter); ok {
		if err := rd.DeleteRange(lower, upper); err != nil {
			return s.errorf("drop segments %d to %d: %w", from, to-1, err)
		}
		return nil
	}
	// Delete by key, a chunk at a time so that the keys held are bounded,
	// and outside the iteration, which not every store allows writes in.
	keys := make([][]byte, 0, deleteChunk)
	for {
		keys = keys[:0]
		for k := range s.base.Range(lower, upper) {
			keys = append(keys, bytes.Clone(k))
			if len(keys) == deleteChunk {
				break
			}
		}
		if err := s.baseIterErr(); err != nil {
			return s.errorf("drop segments %d to %d: %w", from, to-1, err)
		}
		for _, k := range keys {
			if err := s.base.Delete(k); err != nil {
				return s.errorf("drop segments %d to %d: %w", from, to-1, err)
			}
		}
		if len(keys) < deleteChunk {
			return nil
		}
		lower = keys[len(keys)-1]
	}
}

// open rediscovers the segments and the observed stream time of a base
// that already holds entries, as Kafka Streams' AbstractSegments.openExisting
// lists its segment directories: the first key gives the lowest segment, a
// binary search of first keys gives the highest, and the largest time in
// the highest segment is the observed stream time. It then drops what the
// retention no longer keeps.
//
// The observed stream time found is that of the entries present, which is
// earlier than before the reopen if the latest entries were deleted.
func (s *segmented) open() error {
	s.observed, s.minSeg = noTimestamp, noSegment
	first, ok, err := s.firstKey(nil)
	if err != nil || !ok {
		return err
	}
	lo, err := s.segmentOf(first)
	if err != nil {
		return err
	}
	if err := s.checkSegment(first, lo); err != nil {
		return err
	}
	firstSeg, hi := lo, int64(math.MaxInt64)
	for lo < hi {
		mid := lo + (hi-lo)/2 + 1 // in (lo, hi]
		k, ok, err := s.firstKey(appendSegment(nil, mid))
		if err != nil {
			return err
		}
		if !ok {
			hi = mid - 1
			continue
		}
		if lo, err = s.segmentOf(k); err != nil {
			return err
		}
	}
	var upper []byte
	if lo < math.MaxInt64 {
		upper = appendSegment(nil, lo+1)
	}
	for k := range s.base.Range(appendSegment(nil, lo), upper) {
		if err := s.checkSegment(k, lo); err != nil {
			return err
		}
		t, _ := s.timeOf(k)
		s.observed = max(s.observed, t)
	}
	if err := s.baseIterErr(); err != nil {
		return s.errorf("open: %w", err)
	}
	s.minSeg = firstSeg
	return s.dropExpired()
}

// checkSegment checks that the key k of the base, found in segment id, is
// in the segment its time gives with the store's interval. It is how open
// detects a store written with another segment interval, on the entries it
// reads: the first and those of the latest segment.
func (s *segmented) checkSegment(k []byte, id int64) error {
	t, err := s.timeOf(k)
	if err != nil {
		return err
	}
	if s.segmentID(t) != id {
		return s.errorf("entry %x at time %d is in segment %d, not %d: "+
			"the store was written with another segment interval than %dms", k, t, id, s.segmentID(t), s.interval)
	}
	return nil
}

// firstKey returns a copy of the first key of the base at or after from.
func (s *segmented) firstKey(from []byte) ([]byte, bool, error) {
	for k := range s.base.Range(from, nil) {
		return bytes.Clone(k), true, nil
	}
	if err := s.baseIterErr(); err != nil {
		return nil, false, s.errorf("open: %w", err)
	}
	return nil, false, nil
}

// segmentOf returns the segment id of a key of the base.
func (s *segmented) segmentOf(k []byte) (int64, error) {
	if len(k) < 8+s.suffix || k[0]&0x80 != 0 {
		return 0, s.errorf("malformed entry %x in the base store", k)
	}
	return int64(binary.BigEndian.Uint64(k)), nil
}

// timeOf returns the segment time of a key of the base.
func (s *segmented) timeOf(k []byte) (int64, error) {
	if len(k) < 8+s.suffix {
		return 0, s.errorf("malformed entry %x in the base store", k)
	}
	t := int64(binary.BigEndian.Uint64(k[len(k)-s.suffix:]))
	if t < 0 {
		return 0, s.errorf("malformed entry %x in the base store: negative time", k)
	}
	return t, nil
}

// baseIterErr returns the error that ended the base's latest iteration, if
// the base reports such errors.
func (s *segmented) baseIterErr() error {
	if r, ok := s.base.(IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// iterFailed records the error that ended the base's latest iteration, if
// any, as the store's, and reports whether there was one.
func (s *segmented) iterFailed() bool {
	if err := s.baseIterErr(); err != nil {
		s.iterErr = s.errorf("iterate: %w", err)
		return true
	}
	return false
}

// write applies the write in wbuf (value nil deletes) and marks it as the
// one to log.
func (s *segmented) write(value []byte) error {
	var err error
	if value == nil {
		err = s.base.Delete(s.wbuf)
	} else {
		err = s.base.Put(s.wbuf, value)
	}
	if err != nil {
		return err
	}
	s.logged = true
	return nil
}

// lastChangelogKey returns the changelog key of the latest write, or nil.
func (s *segmented) lastChangelogKey() []byte {
	if !s.logged {
		return nil
	}
	return s.wbuf[8:len(s.wbuf):len(s.wbuf)]
}

func (s *segmented) flush() error {
	if s.closed {
		return ErrClosed
	}
	return s.base.Flush()
}

func (s *segmented) close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.wbuf, s.rbuf, s.logged = nil, nil, false
	return s.base.Close()
}

// appendSegment appends the big-endian segment id to dst.
func appendSegment(dst []byte, id int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(id))
}
