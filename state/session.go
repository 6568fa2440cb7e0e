package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"time"
)

// sessionSuffix is the length of end ‖ start at the end of a session store
// key.
const sessionSuffix = 8 + 8

// SessionStoreOptions configures NewSessionStore. Retention must be set;
// the zero value of SegmentInterval is Kafka Streams' default.
type SessionStoreOptions struct {
	// Retention is how long a session is kept after its end, measured
	// against the store's observed stream time (see SessionStore): a
	// session whose end is at most the observed stream time minus
	// Retention is gone. At least 1ms; it is counted in whole milliseconds.
	//
	// Kafka Streams: the retentionPeriod of Stores.persistentSessionStore,
	// for a session aggregation the inactivity gap plus its grace period
	// unless Materialized.withRetention says more.
	Retention time.Duration

	// SegmentInterval is the span of session ends kept in one segment, the
	// unit in which expired sessions are dropped (see
	// WindowStoreOptions.SegmentInterval). Zero means Kafka Streams'
	// default, max(Retention/2, 60s); otherwise at least 1ms, in whole
	// milliseconds. It must not change while the store holds entries.
	//
	// Kafka Streams: RocksDbSessionBytesStoreSupplier.segmentIntervalMs,
	// which is that default and cannot be set.
	SegmentInterval time.Duration
}

// SessionStore is a store of sessions: values keyed by (key, session
// start, session end), both inclusive, in ms since the epoch, like Kafka
// Streams' RocksDBSessionStore over a segmented bytes store with the
// SessionKeySchema, built on any KeyValueStore. Over a store of
// NewInMemoryKeyValueStore it is the in-memory session store; over a store
// of PebbleDB.KeyValueStore the persistent one.
//
// An entry is kept in the base store under
// int64 segment ‖ key ‖ int64 end ‖ int64 start, all big-endian, where the
// segment is end / SegmentInterval and key ‖ end ‖ start is the entry's
// changelog key (see AppendSessionKey). Sessions are segmented, ordered
// and expired by their end. The base store must hold nothing else; the
// SessionStore owns it, and Close closes it.
//
// Time, retention, reopening, lifetimes and cost are as for WindowStore,
// with the session end in place of the window start: the observed stream
// time is the largest session end put, removed or restored; a session
// whose end is at most the observed stream time minus Retention has
// expired, is not returned, cannot be written (ErrWindowExpired), and goes
// with its segment. A SessionStore is not safe for concurrent use.
type SessionStore struct {
	seg segmented
}

// SessionKey is the key of an entry of a SessionStore. Key is valid until
// the next step of the iteration that yielded it.
type SessionKey struct {
	Key   []byte
	Start int64 // first record's timestamp, ms since the epoch, inclusive
	End   int64 // last record's timestamp, ms since the epoch, inclusive
}

// NewSessionStore returns a session store kept in base, which it owns (see
// SessionStore). If base holds entries of an earlier session store, the
// new one carries on with them; the options must then have the same
// segment interval. Invalid options are an error naming the store and the
// field.
func NewSessionStore(base KeyValueStore, o SessionStoreOptions) (*SessionStore, error) {
	const kind = "session store"
	r, i, err := segmentOptions(kind, base.Name(), o.Retention, o.SegmentInterval)
	if err != nil {
		return nil, err
	}
	s := &SessionStore{seg: segmented{base: base, kind: kind, retention: r, interval: i, suffix: sessionSuffix}}
	if err := s.seg.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Base is the key-value store the session store keeps its entries in,
// under keys segment ID (8 bytes, big-endian) ‖ changelog key.
func (s *SessionStore) Base() KeyValueStore { return s.seg.base }

// Name returns the name of the base store.
func (s *SessionStore) Name() string { return s.seg.base.Name() }

// Flush flushes the base store.
func (s *SessionStore) Flush() error { return s.seg.flush() }

// Close closes the store and its base store. Further use returns
// ErrClosed, and iterations yield nothing.
func (s *SessionStore) Close() error { return s.seg.close() }

// ObservedStreamTime returns the largest session end put, removed or
// restored so far, in ms, or -1 if there was none.
func (s *SessionStore) ObservedStreamTime() int64 { return s.seg.observed }

// IterErr returns the error that ended the store's most recent iteration
// early (a failure of the base store, see IterErrReporter), or nil if it
// ran to its end or the loop body stopped it. Each iteration clears it when
// it starts.
func (s *SessionStore) IterErr() error { return s.seg.iterErr }

// Put sets the value of the session of key from start to end (inclusive,
// 0 <= start <= end); a nil value removes it. It advances the observed
// stream time to end if end is later, dropping the segments that leaves
// behind. A Put for an expired session (end at most the observed stream
// time minus Retention) changes nothing and returns ErrWindowExpired.
//
// After a Put that returns nil, LastChangelogKey returns the key the write
// goes under in the changelog.
func (s *SessionStore) Put(key []byte, start, end int64, value []byte) error {
	s.seg.logged = false
	if s.seg.closed {
		return ErrClosed
	}
	if start < 0 || end < start {
		return s.seg.errorf("put: invalid session [%d,%d]", start, end)
	}
	return s.write(key, start, end, value)
}

// Remove removes the session of key from start to end: Put with a nil
// value, so it advances the observed stream time as Kafka Streams' remove
// does, and returns ErrWindowExpired for an expired session. Removing an
// absent session is not an error (and is logged, as in Kafka Streams).
func (s *SessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

// LastChangelogKey returns the changelog key (key ‖ end ‖ start, see
// AppendSessionKey) of the latest Put or Remove if it returned nil, and nil
// otherwise (and after a Restore). The slice is the store's, valid until
// the next write.
func (s *SessionStore) LastChangelogKey() []byte { return s.seg.lastChangelogKey() }

// Restore applies one record of the store's changelog: changelogKey is a
// session key as AppendSessionKey writes it, and a nil value removes. It
// advances the observed stream time like Put, and skips, without error, a
// record of an expired session.
func (s *SessionStore) Restore(changelogKey, value []byte) error {
	s.seg.logged = false
	if s.seg.closed {
		return ErrClosed
	}
	key, start, end, err := SplitSessionKey(changelogKey)
	if err != nil {
		return s.seg.errorf("restore: %w", err)
	}
	if start < 0 || end < start {
		return s.seg.errorf("restore: invalid session [%d,%d] in changelog key %x", start, end, changelogKey)
	}
	err = s.write(key, start, end, value)
	s.seg.logged = false
	if err == ErrWindowExpired {
		return nil
	}
	return err
}

func (s *SessionStore) write(key []byte, start, end int64, value []byte) error {
	if err := s.seg.observe(end); err != nil {
		return err
	}
	if s.seg.expired(end) {
		return ErrWindowExpired
	}
	id := s.seg.segmentID(end)
	s.seg.minSeg = min(s.seg.minSeg, id)
	s.seg.wbuf = AppendSessionKey(appendSegment(s.seg.wbuf[:0], id), key, start, end)
	return s.seg.write(value)
}

// FetchSession returns the value of the session of key from start to end;
// ok is false if there is none or it has expired. Kafka Streams:
// SessionStore.fetchSession.
func (s *SessionStore) FetchSession(key []byte, start, end int64) ([]byte, bool, error) {
	if s.seg.closed {
		return nil, false, ErrClosed
	}
	if start < 0 || end < start || end < s.seg.firstLive() {
		return nil, false, nil
	}
	s.seg.rbuf = AppendSessionKey(appendSegment(s.seg.rbuf[:0], s.seg.segmentID(end)), key, start, end)
	return s.seg.base.Get(s.seg.rbuf)
}

// FindSessions yields the sessions of key that end at or after earliestEnd
// and start at or before latestStart, ordered by end and then start, with
// their values: Kafka Streams' SessionStore.findSessions(key,
// earliestSessionEndTime, latestSessionStartTime). The sessions a record
// at time t merges with, for an inactivity gap g, are
// FindSessions(key, t-g, t+g). Expired sessions are not yielded.
//
// It visits the segments from that of earliestEnd to the latest and, in
// each, only the key's sessions that end at or after earliestEnd (and
// those of keys the key is a byte prefix of, which it skips).
//
// After the loop, IterErr reports an error that ended it early.
func (s *SessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) iter.Seq2[SessionKey, []byte] {
	return func(yield func(SessionKey, []byte) bool) {
		s.seg.iterErr = nil
		if s.seg.closed || latestStart < 0 {
			return
		}
		from := max(earliestEnd, s.seg.firstLive())
		lo, hi, ok := s.seg.span(from, math.MaxInt64)
		if !ok {
			return
		}
		// The bounds of each segment's range, built in one buffer of the
		// iteration's own, so that the loop body may use the store.
		n := 8 + len(key) + sessionSuffix
		buf := make([]byte, 0, 2*n+1)
		for id := lo; ; id++ {
			lower := AppendSessionKey(appendSegment(buf[:0], id), key, 0, from)
			// The greatest key of the range is key ‖ maxInt64 ‖ latestStart;
			// the upper bound is the next key after it.
			upper := AppendSessionKey(appendSegment(lower[n:n], id), key, latestStart, math.MaxInt64)
			upper = append(upper, 0)
			for k, v := range s.seg.base.Range(lower, upper) {
				if len(k) != n || !bytes.Equal(k[8:n-sessionSuffix], key) {
					continue // a longer key that key is a prefix of
				}
				end := int64(binary.BigEndian.Uint64(k[n-sessionSuffix:]))
				start := int64(binary.BigEndian.Uint64(k[n-8:]))
				if end < from || start > latestStart {
					continue
				}
				if !yield(SessionKey{Key: k[8 : n-sessionSuffix : n-sessionSuffix], Start: start, End: end}, v) {
					return
				}
			}
			if s.seg.iterFailed() || s.seg.closed || id == hi {
				return
			}
		}
	}
}

// FindSessionsByEnd yields the sessions of every key that end in
// [earliestEnd, latestEnd], by segment and then by the bytes of the
// changelog key: it reads only the segments of that time range (sessions
// are segmented by end time), which is how emit-final finds the sessions
// that closed (Kafka Streams' time-ordered session store's
// findSessions(earliestSessionEndTime, latestSessionEndTime)). Unlike
// FindSessions, it also yields sessions past the retention whose segment
// is not dropped yet, as Kafka Streams' time-ordered store does: a session
// can expire the moment it closes, and emit-final must still see it.
//
// After the loop, IterErr reports an error that ended it early.
func (s *SessionStore) FindSessionsByEnd(earliestEnd, latestEnd int64) iter.Seq2[SessionKey, []byte] {
	return func(yield func(SessionKey, []byte) bool) {
		s.seg.iterErr = nil
		if s.seg.closed {
			return
		}
		from := earliestEnd
		lo, hi, ok := s.seg.span(from, latestEnd)
		if !ok {
			return
		}
		for k, v := range s.seg.base.Range(appendSegment(nil, lo), appendSegment(nil, hi+1)) {
			if len(k) < 8+sessionSuffix {
				s.seg.iterErr = s.seg.errorf("malformed entry %x in the base store", k)
				return
			}
			key, start, end, _ := SplitSessionKey(k[8:])
			if end < from || end > latestEnd {
				continue
			}
			if !yield(SessionKey{Key: key, Start: start, End: end}, v) {
				return
			}
		}
		s.seg.iterFailed()
	}
}

// All yields every session the store holds that has not expired, by
// segment and then by the bytes of the changelog key (key ‖ end ‖ start),
// which within a segment is by key, end and start when no key is a byte
// prefix of another.
//
// After the loop, IterErr reports an error that ended it early.
func (s *SessionStore) All() iter.Seq2[SessionKey, []byte] {
	return func(yield func(SessionKey, []byte) bool) {
		s.seg.iterErr = nil
		if s.seg.closed {
			return
		}
		from := s.seg.firstLive()
		lo, _, ok := s.seg.span(from, math.MaxInt64)
		if !ok {
			return
		}
		for k, v := range s.seg.base.Range(appendSegment(nil, lo), nil) {
			if len(k) < 8+sessionSuffix {
				s.seg.iterErr = s.seg.errorf("malformed entry %x in the base store", k)
				return
			}
			key, start, end, _ := SplitSessionKey(k[8:])
			if end < from {
				continue
			}
			if !yield(SessionKey{Key: key, Start: start, End: end}, v) {
				return
			}
		}
		s.seg.iterFailed()
	}
}

// AppendSessionKey appends the session store key of the session of key
// from start to end to dst and returns the extended slice:
// key ‖ int64 end ‖ int64 start, both big-endian, end first. This is the
// key of a session store's changelog records and of Kafka Streams' session
// stores (SessionKeySchema.toBinary).
func AppendSessionKey(dst, key []byte, start, end int64) []byte {
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(end))
	return binary.BigEndian.AppendUint64(dst, uint64(start))
}

// SplitSessionKey splits a session store key written by AppendSessionKey.
// The key returned is a slice of b, capped so that appending to it copies.
// Any b of at least 16 bytes splits; a shorter one is an error.
func SplitSessionKey(b []byte) (key []byte, start, end int64, err error) {
	n := len(b) - sessionSuffix
	if n < 0 {
		return nil, 0, 0, fmt.Errorf("sluice: session key %x: %d bytes, less than the %d of end and start", b, len(b), sessionSuffix)
	}
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n+8:])), int64(binary.BigEndian.Uint64(b[n:])), nil
}
