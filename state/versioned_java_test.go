package state_test

// The get-as-of, put and delete cases of Kafka Streams'
// RocksDBVersionedStoreTest (apache/kafka trunk of October 2024), ported
// statement by statement: each test names the Java method it ports, and the
// helpers below keep the Java helpers' names and assertions. Kafka Streams
// 4.3.1's RocksDBVersionedStore has the same put, delete and get semantics as
// that trunk (the two differ only in how offsets and positions are
// committed), so nothing here departs from 4.3.1. Not ported: the range
// queries (get(key, from, to, order), not built yet), the restore tests (no
// changelog restore yet) and the dropped-records metric
// (verifyExpiredRecordSensor, no metrics yet: the refusals are asserted
// through the return codes instead).
//
// Every operation goes to a store over each kind of base (in memory and
// Pebble), and every assertion is checked on each.

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
)

const (
	historyRetention = 300_000
	gracePeriod      = historyRetention // history retention doubles as grace period
	segmentInterval  = historyRetention / 3
	baseTimestamp    = 10
	ValidToUndefined = state.ValidToUndefined
	PutNotPut        = state.PutNotPut
)

type versionedHarness struct {
	t      *testing.T
	names  []string
	stores []state.VersionedKeyValueStore
}

func newVersionedStore(t testing.TB, base state.KeyValueStore, retention time.Duration) state.VersionedKeyValueStore {
	t.Helper()
	s, err := state.NewVersionedKeyValueStore(base, state.VersionedStoreOptions{HistoryRetention: retention})
	if err != nil {
		t.Fatalf("NewVersionedKeyValueStore: %v", err)
	}
	return s
}

// newVersionedHarness opens a store of retention milliseconds over each kind
// of base.
func newVersionedHarness(t *testing.T, retention int64) *versionedHarness {
	h := &versionedHarness{t: t}
	for _, b := range segmentedBases {
		base, _ := b.open(t, "versioned")
		h.names = append(h.names, b.name)
		h.stores = append(h.stores, newVersionedStore(t, base, time.Duration(retention)*time.Millisecond))
	}
	return h
}

func bytesOf(value any) []byte {
	if value == nil {
		return nil
	}
	return []byte(value.(string))
}

func (h *versionedHarness) putToStore(key string, value any, timestamp, expectedValidTo int64) {
	h.t.Helper()
	for i, s := range h.stores {
		validTo, err := s.Put([]byte(key), bytesOf(value), timestamp)
		if err != nil {
			h.t.Fatalf("%s: Put(%q, %v, %d): %v", h.names[i], key, value, timestamp, err)
		}
		if validTo != expectedValidTo {
			h.t.Errorf("%s: Put(%q, %v, %d) = %d, want %d", h.names[i], key, value, timestamp, validTo, expectedValidTo)
		}
	}
}

// deletedRecord is what deleteFromStore returns: nil for no record.
type deletedRecord struct {
	v  string
	ts int64
}

func (r *deletedRecord) value() string    { return r.v }
func (r *deletedRecord) timestamp() int64 { return r.ts }

func (h *versionedHarness) deleteFromStore(key string, timestamp int64) *deletedRecord {
	h.t.Helper()
	var out []*deletedRecord
	for i, s := range h.stores {
		rec, ok, err := s.Delete([]byte(key), timestamp)
		if err != nil {
			h.t.Fatalf("%s: Delete(%q, %d): %v", h.names[i], key, timestamp, err)
		}
		if ok {
			out = append(out, &deletedRecord{string(rec.Value), rec.Timestamp})
		} else {
			out = append(out, nil)
		}
	}
	for i := range out[1:] {
		if (out[0] == nil) != (out[i+1] == nil) || out[0] != nil && *out[0] != *out[i+1] {
			h.t.Fatalf("Delete(%q, %d): %s returned %v, %s %v", key, timestamp, h.names[0], out[0], h.names[i+1], out[i+1])
		}
	}
	return out[0]
}

func (h *versionedHarness) isNull(r *deletedRecord) {
	h.t.Helper()
	if r != nil {
		h.t.Errorf("deleted record = %+v, want none", *r)
	}
}

func (h *versionedHarness) eq(got, want any) {
	h.t.Helper()
	switch w := want.(type) {
	case int:
		want = int64(w)
	}
	if got != want {
		h.t.Errorf("got %v, want %v", got, want)
	}
}

func (h *versionedHarness) verifyGetValueFromStore(key, expectedValue string, expectedTimestamp int64) {
	h.t.Helper()
	for i, s := range h.stores {
		rec, ok, err := s.Get([]byte(key))
		if err != nil || !ok || string(rec.Value) != expectedValue || rec.Timestamp != expectedTimestamp || rec.ValidTo != ValidToUndefined {
			h.t.Errorf("%s: Get(%q) = %q@%d validTo %d, %v, %v; want %q@%d, latest",
				h.names[i], key, rec.Value, rec.Timestamp, rec.ValidTo, ok, err, expectedValue, expectedTimestamp)
		}
	}
}

func (h *versionedHarness) verifyGetNullFromStore(key string) {
	h.t.Helper()
	for i, s := range h.stores {
		rec, ok, err := s.Get([]byte(key))
		if err != nil || ok {
			h.t.Errorf("%s: Get(%q) = %q@%d, %v, %v; want none", h.names[i], key, rec.Value, rec.Timestamp, ok, err)
		}
	}
}

func (h *versionedHarness) verifyTimestampedGetValueFromStore(key string, timestamp int64, expectedValue string, expectedTimestamp, expectedValidTo int64) {
	h.t.Helper()
	for i, s := range h.stores {
		rec, ok, err := s.GetAsOf([]byte(key), timestamp)
		if err != nil || !ok || rec.Value == nil || string(rec.Value) != expectedValue || rec.Timestamp != expectedTimestamp || rec.ValidTo != expectedValidTo {
			h.t.Errorf("%s: GetAsOf(%q, %d) = %q@%d validTo %d, %v, %v; want %q@%d validTo %d",
				h.names[i], key, timestamp, rec.Value, rec.Timestamp, rec.ValidTo, ok, err, expectedValue, expectedTimestamp, expectedValidTo)
		}
	}
}

func (h *versionedHarness) verifyTimestampedGetNullFromStore(key string, timestamp int64) {
	h.t.Helper()
	for i, s := range h.stores {
		rec, ok, err := s.GetAsOf([]byte(key), timestamp)
		if err != nil || ok {
			h.t.Errorf("%s: GetAsOf(%q, %d) = %q@%d, %v, %v; want none", h.names[i], key, timestamp, rec.Value, rec.Timestamp, ok, err)
		}
	}
}

// verifyExpiredRecordSensor is a no-op: the store has no metrics yet.
func (h *versionedHarness) verifyExpiredRecordSensor(int) {}

// RocksDBVersionedStoreTest.shouldPutLatest
func TestVersionedJava_ShouldPutLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "v", baseTimestamp, ValidToUndefined)
	h.putToStore("k", "v2", baseTimestamp+1, ValidToUndefined)

	h.verifyGetValueFromStore("k", "v2", baseTimestamp+1)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "v", baseTimestamp, baseTimestamp+1)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp+1, "v2", baseTimestamp+1, ValidToUndefined)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp+2, "v2", baseTimestamp+1, ValidToUndefined)
}

// RocksDBVersionedStoreTest.shouldPutNullAsLatest
func TestVersionedJava_ShouldPutNullAsLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, baseTimestamp, ValidToUndefined)
	h.putToStore("k", nil, baseTimestamp+1, ValidToUndefined)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp+1)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp+2)
}

// RocksDBVersionedStoreTest.shouldPutOlderWithNonNullLatest
func TestVersionedJava_ShouldPutOlderWithNonNullLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "v", baseTimestamp, ValidToUndefined)
	h.putToStore("k", "v2", baseTimestamp-2, baseTimestamp)
	h.putToStore("k", "v1", baseTimestamp-1, baseTimestamp)
	h.putToStore("k", "v4", baseTimestamp-4, baseTimestamp-2)

	h.verifyGetValueFromStore("k", "v", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "v", baseTimestamp, ValidToUndefined)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-1, "v1", baseTimestamp-1, baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-2, "v2", baseTimestamp-2, baseTimestamp-1)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-3, "v4", baseTimestamp-4, baseTimestamp-2)
}

// RocksDBVersionedStoreTest.shouldPutOlderWithNullLatest
func TestVersionedJava_ShouldPutOlderWithNullLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, baseTimestamp, ValidToUndefined)
	h.putToStore("k", "v2", baseTimestamp-2, baseTimestamp)
	h.putToStore("k", "v1", baseTimestamp-1, baseTimestamp)
	h.putToStore("k", "v4", baseTimestamp-4, baseTimestamp-2)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-1, "v1", baseTimestamp-1, baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-2, "v2", baseTimestamp-2, baseTimestamp-1)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-3, "v4", baseTimestamp-4, baseTimestamp-2)
}

// RocksDBVersionedStoreTest.shouldPutOlderNullWithNonNullLatest
func TestVersionedJava_ShouldPutOlderNullWithNonNullLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "v", baseTimestamp, ValidToUndefined)
	h.putToStore("k", nil, baseTimestamp-2, baseTimestamp)
	h.putToStore("k", nil, baseTimestamp-1, baseTimestamp)
	h.putToStore("k", nil, baseTimestamp-4, baseTimestamp-2)
	h.putToStore("k", "v5", baseTimestamp-5, baseTimestamp-4)
	h.putToStore("k", "v3", baseTimestamp-3, baseTimestamp-2)
	h.putToStore("k", nil, baseTimestamp-6, baseTimestamp-5)

	h.verifyGetValueFromStore("k", "v", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "v", baseTimestamp, ValidToUndefined)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-1)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-2)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-3, "v3", baseTimestamp-3, baseTimestamp-2)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-4)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-5, "v5", baseTimestamp-5, baseTimestamp-4)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-6)
}

// RocksDBVersionedStoreTest.shouldPutOlderNullWithNullLatest
func TestVersionedJava_ShouldPutOlderNullWithNullLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, baseTimestamp, ValidToUndefined)
	h.putToStore("k", nil, baseTimestamp-2, baseTimestamp)
	h.putToStore("k", nil, baseTimestamp-1, baseTimestamp)
	h.putToStore("k", nil, baseTimestamp-4, baseTimestamp-2)
	h.putToStore("k", "v3", baseTimestamp-3, baseTimestamp-2)
	h.putToStore("k", "v5", baseTimestamp-5, baseTimestamp-4)
	h.putToStore("k", nil, baseTimestamp-6, baseTimestamp-5)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-1)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-2)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-3, "v3", baseTimestamp-3, baseTimestamp-2)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-4)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp-5, "v5", baseTimestamp-5, baseTimestamp-4)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-6)
}

// RocksDBVersionedStoreTest.shouldPutRepeatTimestampAsLatest
func TestVersionedJava_ShouldPutRepeatTimestampAsLatest(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "to_be_replaced", baseTimestamp, ValidToUndefined)
	h.putToStore("k", "b", baseTimestamp, ValidToUndefined)

	h.verifyGetValueFromStore("k", "b", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "b", baseTimestamp, ValidToUndefined)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-1)

	h.putToStore("k", nil, baseTimestamp, ValidToUndefined)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-1)

	h.putToStore("k", nil, baseTimestamp, ValidToUndefined)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-1)

	h.putToStore("k", "b", baseTimestamp, ValidToUndefined)

	h.verifyGetValueFromStore("k", "b", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "b", baseTimestamp, ValidToUndefined)
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp-1)
}

// RocksDBVersionedStoreTest.shouldPutRepeatTimestamps
func TestVersionedJava_ShouldPutRepeatTimestamps(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "to_be_replaced", segmentInterval+20, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval-10, segmentInterval+20)
	h.putToStore("k", "to_be_replaced", segmentInterval-10, segmentInterval+20) // replace existing nil with non-nil, with timestamps spanning segments
	h.putToStore("k", nil, segmentInterval-10, segmentInterval+20)              // replace existing non-nil with nil
	h.putToStore("k", "to_be_replaced", segmentInterval-1, segmentInterval+20)
	h.putToStore("k", "to_be_replaced", segmentInterval+1, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval-1, segmentInterval+1)  // replace existing non-nil with nil
	h.putToStore("k", nil, segmentInterval+1, segmentInterval+20) // replace existing non-nil with nil, with timestamps spanning segments
	h.putToStore("k", nil, segmentInterval+10, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval+5, segmentInterval+10)
	h.putToStore("k", "vp5", segmentInterval+5, segmentInterval+10) // replace existing nil with non-nil
	h.putToStore("k", "to_be_replaced", segmentInterval-5, segmentInterval-1)
	h.putToStore("k", "vn5", segmentInterval-5, segmentInterval-1) // replace existing non-nil with non-nil
	h.putToStore("k", nil, segmentInterval+20, ValidToUndefined)   // replace existing non-nil (latest value) with nil
	h.putToStore("k", nil, segmentInterval+20, ValidToUndefined)   // replace existing nil with nil
	h.putToStore("k", "vn6", segmentInterval-6, segmentInterval-5)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+30)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+15)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+6, "vp5", segmentInterval+5, segmentInterval+10)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+2)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-5, "vn5", segmentInterval-5, segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-6, "vn6", segmentInterval-6, segmentInterval-5)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-8)
}

// RocksDBVersionedStoreTest.shouldPutIntoMultipleSegments
func TestVersionedJava_ShouldPutIntoMultipleSegments(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, segmentInterval-20, ValidToUndefined)
	h.putToStore("k", "vn10", segmentInterval-10, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval-1, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval+1, ValidToUndefined)
	h.putToStore("k", "vp10", segmentInterval+10, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval+20, ValidToUndefined)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+30)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+15, "vp10", segmentInterval+10, segmentInterval+20)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+5)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+2)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-5, "vn10", segmentInterval-10, segmentInterval-1)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-15)
}

// RocksDBVersionedStoreTest.shouldMoveRecordToOlderSegmentDuringPut
func TestVersionedJava_ShouldMoveRecordToOlderSegmentDuringPut(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "vp20", segmentInterval+20, ValidToUndefined)
	h.putToStore("k", "vp10", segmentInterval+10, segmentInterval+20)
	h.putToStore("k", "vn10", segmentInterval-10, segmentInterval+10)
	h.putToStore("k", "vn2", segmentInterval-2, segmentInterval+10)
	h.putToStore("k", "vn1", segmentInterval-1, segmentInterval+10)
	h.putToStore("k", "vp1", segmentInterval+1, segmentInterval+10)

	h.verifyGetValueFromStore("k", "vp20", segmentInterval+20)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+30, "vp20", segmentInterval+20, ValidToUndefined)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+15, "vp10", segmentInterval+10, segmentInterval+20)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+5, "vp1", segmentInterval+1, segmentInterval+10)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval, "vn1", segmentInterval-1, segmentInterval+1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-1, "vn1", segmentInterval-1, segmentInterval+1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-2, "vn2", segmentInterval-2, segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-5, "vn10", segmentInterval-10, segmentInterval-2)
}

// RocksDBVersionedStoreTest.shouldMoveRecordToOlderSegmentWithNullsDuringPut
func TestVersionedJava_ShouldMoveRecordToOlderSegmentWithNullsDuringPut(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, segmentInterval+20, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval-1, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval+1, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval-10, segmentInterval-1)
	h.putToStore("k", nil, segmentInterval+10, segmentInterval+20)
	h.putToStore("k", "vp5", segmentInterval+5, segmentInterval+10)
	h.putToStore("k", "vn5", segmentInterval-5, segmentInterval-1)
	h.putToStore("k", "vn6", segmentInterval-6, segmentInterval-5)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+30)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+15)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+6, "vp5", segmentInterval+5, segmentInterval+10)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+2)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-5, "vn5", segmentInterval-5, segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-6, "vn6", segmentInterval-6, segmentInterval-5)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-8)
}

// RocksDBVersionedStoreTest.shouldFallThroughToExistingOlderSegmentAsLatestDuringPut
func TestVersionedJava_ShouldFallThroughToExistingOlderSegmentAsLatestDuringPut(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, segmentInterval-5, ValidToUndefined)
	h.putToStore("k", "vn6", segmentInterval-6, segmentInterval-5)
	h.putToStore("k", "vp20", segmentInterval+20, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval+10, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval-1, segmentInterval+10)
	h.putToStore("k", "vn2", segmentInterval-2, segmentInterval-1)

	h.verifyGetValueFromStore("k", "vp20", segmentInterval+20)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+30, "vp20", segmentInterval+20, ValidToUndefined)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+12)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-2, "vn2", segmentInterval-2, segmentInterval-1)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-5)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-6, "vn6", segmentInterval-6, segmentInterval-5)
}

// RocksDBVersionedStoreTest.shouldPutNonLatestTombstoneIntoNewSegmentWithValidTo
func TestVersionedJava_ShouldPutNonLatestTombstoneIntoNewSegmentWithValidTo(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "vp30", segmentInterval+30, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval-10, segmentInterval+30) // this put should result in tombstone with validTo=segmentInterval+30
	h.putToStore("k", "vn5", segmentInterval-5, segmentInterval+30)
	h.putToStore("k", "vn1", segmentInterval-1, segmentInterval+30)
	h.putToStore("k", nil, segmentInterval-2, segmentInterval-1)

	h.verifyGetValueFromStore("k", "vp30", segmentInterval+30)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+10, "vn1", segmentInterval-1, segmentInterval+30)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-1, "vn1", segmentInterval-1, segmentInterval+30)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-2)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-5, "vn5", segmentInterval-5, segmentInterval-2)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-10)
}

// RocksDBVersionedStoreTest.shouldDelete
func TestVersionedJava_ShouldDelete(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "vp20", segmentInterval+20, ValidToUndefined)
	h.putToStore("k", "vp10", segmentInterval+10, segmentInterval+20)
	h.putToStore("k", "vn10", segmentInterval-10, segmentInterval+10)
	h.putToStore("k", "vn2", segmentInterval-2, segmentInterval+10)

	deleted := h.deleteFromStore("k", segmentInterval-5) // delete from segment
	h.eq(deleted.value(), "vn10")
	h.eq(deleted.timestamp(), segmentInterval-10)

	deleted = h.deleteFromStore("k", segmentInterval+10) // delete existing timestamp
	h.eq(deleted.value(), "vp10")
	h.eq(deleted.timestamp(), segmentInterval+10)

	deleted = h.deleteFromStore("k", segmentInterval+10) // delete the same timestamp again
	h.isNull(deleted)

	deleted = h.deleteFromStore("k", segmentInterval+25) // delete from latest value store
	h.eq(deleted.value(), "vp20")
	h.eq(deleted.timestamp(), segmentInterval+20)
}

// RocksDBVersionedStoreTest.shouldNotPutExpired
func TestVersionedJava_ShouldNotPutExpired(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "v", historyRetention+10, ValidToUndefined)

	// grace period has not elapsed
	h.putToStore("k1", "v1", historyRetention+10-gracePeriod, ValidToUndefined)
	h.verifyGetValueFromStore("k1", "v1", historyRetention+10-gracePeriod)

	// grace period has elapsed, so this put does not take place
	h.putToStore("k2", "v2", historyRetention+9-gracePeriod, PutNotPut)
	h.verifyGetNullFromStore("k2")

	h.verifyExpiredRecordSensor(1)
}

// RocksDBVersionedStoreTest.shouldNotDeleteExpired
func TestVersionedJava_ShouldNotDeleteExpired(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k1", "v1", 1, ValidToUndefined)
	h.putToStore("k2", "v2", 1, ValidToUndefined)
	h.putToStore("kother", "vother", historyRetention+10, ValidToUndefined) // use separate key to advance stream time

	// grace period has not elapsed
	deleted := h.deleteFromStore("k1", historyRetention+10-gracePeriod)
	h.eq(deleted.value(), "v1")
	h.eq(deleted.timestamp(), 1)
	h.verifyGetNullFromStore("k1")

	// grace period has elapsed, so this delete does not take place
	deleted = h.deleteFromStore("k2", historyRetention+9-gracePeriod)
	h.isNull(deleted) // return value is nil even though record exists because delete did not take place
	h.verifyGetValueFromStore("k2", "v2", 1)

	h.verifyExpiredRecordSensor(1)
}

// RocksDBVersionedStoreTest.shouldGetFromOlderSegments
func TestVersionedJava_ShouldGetFromOlderSegments(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	// use a different key to create three different segments
	h.putToStore("ko", nil, segmentInterval-10, ValidToUndefined)
	h.putToStore("ko", nil, 2*segmentInterval-10, ValidToUndefined)
	h.putToStore("ko", nil, 3*segmentInterval-10, ValidToUndefined)

	// return nil after visiting all segments
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-20)

	// insert data to create non-empty (first) segment
	h.putToStore("k", "v", segmentInterval-20, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval-10, ValidToUndefined)

	h.verifyTimestampedGetNullFromStore("k", segmentInterval-30)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-15, "v", segmentInterval-20, segmentInterval-10)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-5)

	// insert data to create non-empty (third) segment
	h.putToStore("k", "v2", 3*segmentInterval-20, ValidToUndefined)
	h.putToStore("k", nil, 3*segmentInterval-10, ValidToUndefined)

	// presence of non-empty later segment does not affect results of getting from earlier segment
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-30)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-15, "v", segmentInterval-20, segmentInterval-10)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-5)
}

// RocksDBVersionedStoreTest.shouldNotGetExpired
func TestVersionedJava_ShouldNotGetExpired(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "v_old", 0, ValidToUndefined)
	h.putToStore("k", "v", segmentInterval-10, ValidToUndefined)

	// old record has not yet expired
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-11, "v_old", 0, segmentInterval-10)

	h.putToStore("ko", "vo", historyRetention+segmentInterval-11, ValidToUndefined)

	// old record still has not yet expired
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-11, "v_old", 0, segmentInterval-10)

	h.putToStore("ko", "vo2", historyRetention+segmentInterval-10, ValidToUndefined)

	// old record is expired now
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-11)
}

// RocksDBVersionedStoreTest.shouldGetExpiredIfLatestValue
func TestVersionedJava_ShouldGetExpiredIfLatestValue(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", "v", 1, ValidToUndefined)
	h.putToStore("ko", "vo_old", 1, ValidToUndefined)
	h.putToStore("ko", "vo_new", historyRetention+12, ValidToUndefined)

	// expired get on key where latest satisfies timestamp bound still returns data
	h.verifyTimestampedGetValueFromStore("k", 10, "v", 1, ValidToUndefined)

	// same expired get on key where latest value does not satisfy timestamp bound does not return data
	h.verifyTimestampedGetNullFromStore("ko", 10)
}

// RocksDBVersionedStoreTest.shouldDistinguishEmptyAndNull
func TestVersionedJava_ShouldDistinguishEmptyAndNull(t *testing.T) {
	h := newVersionedHarness(t, historyRetention)
	h.putToStore("k", nil, segmentInterval+20, ValidToUndefined)
	h.putToStore("k", nil, segmentInterval-10, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval-1, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval+1, segmentInterval+20)
	h.putToStore("k", nil, segmentInterval+10, segmentInterval+20)
	// empty string is serialized as an empty byte array, which is different from nil (tombstone)
	h.putToStore("k", "", segmentInterval+5, segmentInterval+10)
	h.putToStore("k", "", segmentInterval-5, segmentInterval-1)
	h.putToStore("k", "", segmentInterval-6, segmentInterval-5)

	h.verifyGetNullFromStore("k")
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+30)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+15)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval+6, "", segmentInterval+5, segmentInterval+10)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval+2)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-5, "", segmentInterval-5, segmentInterval-1)
	h.verifyTimestampedGetValueFromStore("k", segmentInterval-6, "", segmentInterval-6, segmentInterval-5)
	h.verifyTimestampedGetNullFromStore("k", segmentInterval-8)
}

// RocksDBVersionedStoreTest.shouldAllowZeroHistoryRetention
func TestVersionedJava_ShouldAllowZeroHistoryRetention(t *testing.T) {
	// recreate store with zero history retention
	h := newVersionedHarness(t, 0)

	// put and get
	h.putToStore("k", "v", baseTimestamp, ValidToUndefined)
	h.verifyGetValueFromStore("k", "v", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "v", baseTimestamp, ValidToUndefined)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp+1, "v", baseTimestamp, ValidToUndefined) // query in "future" is allowed

	// update existing record at same timestamp
	h.putToStore("k", "updated", baseTimestamp, ValidToUndefined)
	h.verifyGetValueFromStore("k", "updated", baseTimestamp)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp, "updated", baseTimestamp, ValidToUndefined)

	// put new record version
	h.putToStore("k", "v2", baseTimestamp+2, ValidToUndefined)
	h.verifyGetValueFromStore("k", "v2", baseTimestamp+2)
	h.verifyTimestampedGetValueFromStore("k", baseTimestamp+2, "v2", baseTimestamp+2, ValidToUndefined)

	// query in past (history retention expired) returns nil
	h.verifyTimestampedGetNullFromStore("k", baseTimestamp+1)

	// delete existing key
	h.deleteFromStore("k", baseTimestamp+3)
	h.verifyGetNullFromStore("k")

	// put in past (grace period expired) does not update the store
	h.putToStore("k2", "v", baseTimestamp+2, PutNotPut)
	h.verifyGetNullFromStore("k2")
	h.verifyExpiredRecordSensor(1)
}
