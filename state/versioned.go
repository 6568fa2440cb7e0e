package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// ValidToUndefined is the validTo of a record that is the latest version
// of its key: it is valid until a newer version arrives. Put returns it for
// a record that became the latest version.
//
// Kafka Streams: VersionedKeyValueStore.PUT_RETURN_CODE_VALID_TO_UNDEFINED,
// and an empty VersionedRecord.validTo().
const ValidToUndefined int64 = math.MaxInt64

// PutNotPut is what Put returns for a record older than the history
// retention allows, which the store refused.
//
// Kafka Streams: VersionedKeyValueStore.PUT_RETURN_CODE_NOT_PUT.
const PutNotPut int64 = math.MinInt64

// VersionedRecord is one version of a key's value: Value was valid from
// Timestamp (inclusive) to ValidTo (exclusive), or, if ValidTo is
// ValidToUndefined, it is the key's latest version.
type VersionedRecord struct {
	Value     []byte
	Timestamp int64
	ValidTo   int64
}

// VersionedKeyValueStore keeps, for each key, the latest version and the
// versions of the history retention before it, so a key's value can be
// read as of a past timestamp. Timestamps are milliseconds.
//
// The observed stream time is the largest timestamp of a write the store
// accepted; the history retention counts back from it. A nil value is a
// tombstone (the key has no value from that timestamp); an empty non-nil
// value is a value. The store copies what Put is given; the values Get and
// GetAsOf return belong to the store below and are valid until the next
// write, as KeyValueStore's. Not safe for concurrent use, like the store
// below.
//
// Kafka Streams: VersionedKeyValueStore, as RocksDBVersionedStore
// implements it.
type VersionedKeyValueStore interface {
	Store
	// Put writes value as key's version from timestamp on, nil being a
	// tombstone. It returns the validTo of the version written: the
	// timestamp of the next newer version, or ValidToUndefined if it is
	// now the latest; a version at the same timestamp is replaced (a
	// tombstone replacing the latest version of a key with no older one
	// leaves no trace of the key, as in Kafka Streams). A
	// timestamp older than the observed stream time minus the history
	// retention is refused: Put writes nothing and returns PutNotPut.
	Put(key, value []byte, timestamp int64) (validTo int64, err error)
	// Delete writes a tombstone at timestamp and returns the version that
	// was valid at timestamp before it (ok false if none, or if the
	// timestamp is older than the history retention allows: then nothing is
	// written). The returned value is the caller's.
	Delete(key []byte, timestamp int64) (rec VersionedRecord, ok bool, err error)
	// Get returns key's latest version, ok false if the key has none or its
	// latest version is a tombstone. The latest version never expires.
	Get(key []byte) (rec VersionedRecord, ok bool, err error)
	// GetAsOf returns the version of key valid at asOf: the one with the
	// largest timestamp at most asOf, ok false if that is a tombstone or
	// there is none. Past the history retention (asOf older than the
	// observed stream time minus the retention) only the latest version is
	// returned, if its timestamp is at most asOf.
	GetAsOf(key []byte, asOf int64) (rec VersionedRecord, ok bool, err error)
	// ObservedStreamTime is the largest timestamp written, -1 before any.
	ObservedStreamTime() int64
}

// VersionedStoreOptions configures NewVersionedKeyValueStore.
type VersionedStoreOptions struct {
	// HistoryRetention is how far back from the observed stream time
	// versions are kept and writes accepted, in whole milliseconds. Zero
	// keeps only the latest version of each key and refuses writes older
	// than the observed stream time.
	//
	// Kafka Streams: the historyRetention of
	// Stores.persistentVersionedKeyValueStore, which doubles as its grace
	// period.
	HistoryRetention time.Duration
}

// Key prefixes of the layout in the store below (see the package doc).
const (
	versionedLatest  = 'l' // 'l' key → validFrom(8) value
	versionedHistory = 'h' // 'h' len(key)(4) key ^validFrom(8) → validTo(8) flag(1) value
	versionedExpiry  = 'x' // 'x' expiry(8) len(key)(4) key validFrom(8) → empty
	versionedMeta    = 'm' // 'm' → observed stream time(8)
)

const (
	flagTombstone = 0
	flagValue     = 1
)

// versionedStore implements VersionedKeyValueStore over a KeyValueStore.
type versionedStore struct {
	base      KeyValueStore
	retention int64
	observed  int64
	kbuf      []byte
	kbuf2     []byte
}

// NewVersionedKeyValueStore returns a versioned store over base, which it
// owns from now on (Close closes it) and which must hold nothing else. It
// reads the observed stream time base holds from an earlier life.
func NewVersionedKeyValueStore(base KeyValueStore, o VersionedStoreOptions) (VersionedKeyValueStore, error) {
	if o.HistoryRetention < 0 {
		return nil, fmt.Errorf("sluice: versioned store %q: HistoryRetention %v is negative", base.Name(), o.HistoryRetention)
	}
	s := &versionedStore{base: base, retention: o.HistoryRetention.Milliseconds(), observed: -1}
	v, ok, err := base.Get([]byte{versionedMeta})
	if err != nil {
		return nil, err
	}
	if ok {
		if len(v) != 8 {
			return nil, s.errorf("meta record of %d bytes, want 8", len(v))
		}
		s.observed = int64(binary.BigEndian.Uint64(v))
	}
	return s, nil
}

func (s *versionedStore) errorf(format string, args ...any) error {
	return fmt.Errorf("sluice: versioned store %q: "+format, append([]any{s.base.Name()}, args...)...)
}

func (s *versionedStore) Name() string              { return s.base.Name() }
func (s *versionedStore) Flush() error              { return s.base.Flush() }
func (s *versionedStore) Close() error              { return s.base.Close() }
func (s *versionedStore) ObservedStreamTime() int64 { return s.observed }

// bound is the oldest timestamp still within the history retention.
func (s *versionedStore) bound() int64 {
	if s.observed < math.MinInt64+s.retention {
		return math.MinInt64
	}
	return s.observed - s.retention
}

// sortable maps int64 to uint64 keeping the order.
func sortable(t int64) uint64 { return uint64(t) ^ (1 << 63) }

func unsortable(u uint64) int64 { return int64(u ^ (1 << 63)) }

func appendHistoryPrefix(dst, key []byte) []byte {
	dst = append(dst, versionedHistory)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	return append(dst, key...)
}

// appendHistoryKey: versions of a key sort newest first, so the first entry
// at or after the key of t is the version valid at t.
func appendHistoryKey(dst, key []byte, validFrom int64) []byte {
	dst = appendHistoryPrefix(dst, key)
	return binary.BigEndian.AppendUint64(dst, ^sortable(validFrom))
}

func appendExpiryKey(dst []byte, expiry int64, key []byte, validFrom int64) []byte {
	dst = append(dst, versionedExpiry)
	dst = binary.BigEndian.AppendUint64(dst, sortable(expiry))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	return binary.BigEndian.AppendUint64(dst, sortable(validFrom))
}

// expiryOf is the time from which a history version is never read again:
// its validTo, or, for a tombstone that is the latest version, just after
// its timestamp (any later write becomes the latest version either way).
func expiryOf(validFrom, validTo int64) int64 {
	if validTo == ValidToUndefined {
		return validFrom + 1
	}
	return validTo
}

type historyVersion struct {
	validFrom, validTo int64
	tombstone          bool
	value              []byte
}

func (s *versionedStore) latest(key []byte) (validFrom int64, value []byte, ok bool, err error) {
	s.kbuf = append(append(s.kbuf[:0], versionedLatest), key...)
	v, ok, err := s.base.Get(s.kbuf)
	if err != nil || !ok {
		return 0, nil, false, err
	}
	if len(v) < 8 {
		return 0, nil, false, s.errorf("latest record of %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), v[8:], true, nil
}

func (s *versionedStore) putLatest(key, value []byte, validFrom int64) error {
	s.kbuf = append(append(s.kbuf[:0], versionedLatest), key...)
	s.kbuf2 = binary.BigEndian.AppendUint64(s.kbuf2[:0], uint64(validFrom))
	s.kbuf2 = append(s.kbuf2, value...)
	return s.base.Put(s.kbuf, s.kbuf2)
}

func (s *versionedStore) deleteLatest(key []byte) error {
	s.kbuf = append(append(s.kbuf[:0], versionedLatest), key...)
	return s.base.Delete(s.kbuf)
}

func (s *versionedStore) decodeHistory(k, v []byte, prefixLen int) (historyVersion, error) {
	if len(k) != prefixLen+8 || len(v) < 9 {
		return historyVersion{}, s.errorf("history entry of a %d-byte key and a %d-byte value", len(k), len(v))
	}
	h := historyVersion{
		validFrom: unsortable(^binary.BigEndian.Uint64(k[prefixLen:])),
		validTo:   int64(binary.BigEndian.Uint64(v)),
		tombstone: v[8] == flagTombstone,
	}
	if !h.tombstone {
		h.value = v[9:]
	}
	return h, nil
}

// firstHistory is the first (or, if last, the last) version in [from, to)
// of key's history keys. It decodes and copies within the iteration: the
// slices a Range yields are not valid after their step.
func (s *versionedStore) firstHistory(key, from, to []byte, last bool) (h historyVersion, ok bool, err error) {
	n := len(appendHistoryPrefix(nil, key))
	for k, v := range s.base.Range(from, to) {
		h, err = s.decodeHistory(k, v, n)
		if err != nil {
			return historyVersion{}, false, err
		}
		h.value = bytes.Clone(h.value)
		ok = true
		if !last {
			break
		}
	}
	if err := s.iterErr(); err != nil {
		return historyVersion{}, false, err
	}
	return h, ok, nil
}

// iterErr is the error that ended the base's latest iteration early, if
// the base reports such errors (IterErrReporter).
func (s *versionedStore) iterErr() error {
	if r, ok := s.base.(IterErrReporter); ok {
		if err := r.IterErr(); err != nil {
			return s.errorf("iterate: %w", err)
		}
	}
	return nil
}

// floorHistory is key's history version with the largest timestamp at most t.
func (s *versionedStore) floorHistory(key []byte, t int64) (historyVersion, bool, error) {
	prefix := appendHistoryPrefix(nil, key)
	return s.firstHistory(key, appendHistoryKey(nil, key, t), prefixEnd(prefix), false)
}

// ceilHistory is key's history version with the smallest timestamp above
// t. It visits every version newer than t: out-of-order writes older than
// all of a key's history pay for the history after them.
func (s *versionedStore) ceilHistory(key []byte, t int64) (historyVersion, bool, error) {
	prefix := appendHistoryPrefix(nil, key)
	return s.firstHistory(key, prefix, appendHistoryKey(nil, key, t), true)
}

func (s *versionedStore) putHistory(key []byte, h historyVersion) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(h.validTo))
	if h.tombstone {
		v = append(v, flagTombstone)
	} else {
		v = append(append(v, flagValue), h.value...)
	}
	if err := s.base.Put(appendHistoryKey(nil, key, h.validFrom), v); err != nil {
		return err
	}
	return s.base.Put(appendExpiryKey(nil, expiryOf(h.validFrom, h.validTo), key, h.validFrom), nil)
}

func (s *versionedStore) deleteHistory(key []byte, h historyVersion) error {
	if err := s.base.Delete(appendHistoryKey(nil, key, h.validFrom)); err != nil {
		return err
	}
	return s.deleteExpiry(key, h)
}

func (s *versionedStore) deleteExpiry(key []byte, h historyVersion) error {
	return s.base.Delete(appendExpiryKey(nil, expiryOf(h.validFrom, h.validTo), key, h.validFrom))
}

// observe advances the observed stream time to t, records it and drops
// the history versions expired by it (one seek when there are none).
func (s *versionedStore) observe(t int64) error {
	if t > s.observed {
		s.observed = t
		if err := s.base.Put([]byte{versionedMeta}, binary.BigEndian.AppendUint64(nil, uint64(t))); err != nil {
			return err
		}
	}
	// Also when the stream time stays: a write behind it can end a
	// version at or before the bound.
	b := s.bound()
	if b == math.MinInt64 {
		return nil
	}
	// Expiry keys with expiry <= bound: no read at or after the bound sees
	// them, and no write at or after it needs them.
	to := binary.BigEndian.AppendUint64([]byte{versionedExpiry}, sortable(b)+1)
	var expired [][]byte
	for k := range s.base.Range([]byte{versionedExpiry}, to) {
		expired = append(expired, bytes.Clone(k))
	}
	if err := s.iterErr(); err != nil {
		return err
	}
	for _, k := range expired {
		if len(k) < 1+8+4+8 {
			return s.errorf("expiry entry of a %d-byte key", len(k))
		}
		n := int(binary.BigEndian.Uint32(k[9:]))
		if len(k) != 1+8+4+n+8 {
			return s.errorf("expiry entry of a %d-byte key for a %d-byte key", len(k), n)
		}
		key := k[13 : 13+n]
		validFrom := unsortable(binary.BigEndian.Uint64(k[13+n:]))
		if err := s.base.Delete(appendHistoryKey(nil, key, validFrom)); err != nil {
			return err
		}
		if err := s.base.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *versionedStore) Put(key, value []byte, timestamp int64) (int64, error) {
	if timestamp < s.bound() {
		return PutNotPut, nil
	}
	validTo, err := s.put(key, value, timestamp)
	if err != nil {
		return 0, err
	}
	return validTo, s.observe(timestamp)
}

func (s *versionedStore) put(key, value []byte, ts int64) (int64, error) {
	lvf, lval, lok, err := s.latest(key)
	if err != nil {
		return 0, err
	}
	if lok && ts >= lvf {
		if ts > lvf {
			// The latest version moves to the history.
			h := historyVersion{validFrom: lvf, validTo: ts, value: bytes.Clone(lval)}
			if err := s.putHistory(key, h); err != nil {
				return 0, err
			}
		} else if value == nil && ts > math.MinInt64 {
			// A tombstone at the latest version's own timestamp. Kafka
			// Streams (RocksDBVersionedStore.maybePutToLatestValueStore)
			// only deletes the latest value: when no older version is
			// left, the key keeps no trace of the delete, and a later
			// write older than it becomes the latest.
			if _, older, err := s.floorHistory(key, ts-1); err != nil || !older {
				if err != nil {
					return 0, err
				}
				return ValidToUndefined, s.deleteLatest(key)
			}
		}
		return ValidToUndefined, s.putNewest(key, value, ts, true)
	}
	p, pok, err := s.floorHistory(key, ts)
	if err != nil {
		return 0, err
	}
	var validTo int64
	switch {
	case pok && p.validFrom == ts:
		// Replace the version at the same timestamp.
		if p.validTo == ValidToUndefined {
			if err := s.deleteHistory(key, p); err != nil {
				return 0, err
			}
			return ValidToUndefined, s.putNewest(key, value, ts, false)
		}
		h := historyVersion{validFrom: ts, validTo: p.validTo, tombstone: value == nil, value: value}
		return p.validTo, s.putHistory(key, h)
	case pok:
		// The version before ts now ends at ts.
		validTo = p.validTo
		if err := s.deleteExpiry(key, p); err != nil {
			return 0, err
		}
		p.validTo = ts
		if err := s.putHistory(key, p); err != nil {
			return 0, err
		}
	default:
		n, nok, err := s.ceilHistory(key, ts)
		if err != nil {
			return 0, err
		}
		switch {
		case nok:
			validTo = n.validFrom
		case lok:
			validTo = lvf
		default:
			validTo = ValidToUndefined
		}
	}
	if validTo == ValidToUndefined {
		return ValidToUndefined, s.putNewest(key, value, ts, false)
	}
	h := historyVersion{validFrom: ts, validTo: validTo, tombstone: value == nil, value: value}
	return validTo, s.putHistory(key, h)
}

// putNewest writes the latest version of key: a value in the latest record,
// a tombstone in the history with an undefined validTo.
func (s *versionedStore) putNewest(key, value []byte, ts int64, hadLatest bool) error {
	if value != nil {
		return s.putLatest(key, value, ts)
	}
	if hadLatest {
		if err := s.deleteLatest(key); err != nil {
			return err
		}
	}
	return s.putHistory(key, historyVersion{validFrom: ts, validTo: ValidToUndefined, tombstone: true})
}

func (s *versionedStore) Delete(key []byte, timestamp int64) (VersionedRecord, bool, error) {
	if timestamp < s.bound() {
		return VersionedRecord{}, false, nil
	}
	rec, ok, err := s.GetAsOf(key, timestamp)
	if err != nil {
		return VersionedRecord{}, false, err
	}
	rec.Value = bytes.Clone(rec.Value)
	if _, err := s.Put(key, nil, timestamp); err != nil {
		return VersionedRecord{}, false, err
	}
	return rec, ok, nil
}

func (s *versionedStore) Get(key []byte) (VersionedRecord, bool, error) {
	vf, v, ok, err := s.latest(key)
	if err != nil || !ok {
		return VersionedRecord{}, false, err
	}
	return VersionedRecord{Value: v, Timestamp: vf, ValidTo: ValidToUndefined}, true, nil
}

func (s *versionedStore) GetAsOf(key []byte, asOf int64) (VersionedRecord, bool, error) {
	vf, v, ok, err := s.latest(key)
	if err != nil {
		return VersionedRecord{}, false, err
	}
	if ok && vf <= asOf {
		return VersionedRecord{Value: v, Timestamp: vf, ValidTo: ValidToUndefined}, true, nil
	}
	if asOf < s.bound() {
		return VersionedRecord{}, false, nil
	}
	h, ok, err := s.floorHistory(key, asOf)
	if err != nil || !ok || h.tombstone || asOf >= h.validTo {
		return VersionedRecord{}, false, err
	}
	return VersionedRecord{Value: h.value, Timestamp: h.validFrom, ValidTo: h.validTo}, true, nil
}
