package nodes

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
)

// The grace buffer of a stream-table join keeps stream records in a
// key-value store, in the layout of Kafka Streams'
// RocksDBTimeOrderedKeyValueBuffer, so its changelog holds what Kafka
// Streams' does:
//
//	key:   0x00 ‖ int64 timestamp ‖ key ‖ int32 seq   (big-endian, time first)
//	value: record context ‖ prior value ‖ old value ‖ new value ‖ int64 buffer time
//
// The value is a BufferEntry's encoding, as in a suppression buffer's
// changelog (Kafka Streams' BufferValue and ProcessorRecordContext, see
// suppressbuffer.go): only the new value (the stream record's value) is
// set, and the buffer time is 0, as Kafka Streams writes them. The store holds the changelog's value as
// it is. The key's first byte is Kafka Streams' TIME_FIRST_PREFIX
// (PrefixedWindowKeySchemas.TimeFirstWindowKeySchema).

// timeFirstPrefix is the first byte of every buffer key.
const timeFirstPrefix = 0

// bufferKey appends the buffer key of a record to dst.
func bufferKey(dst []byte, ts int64, key []byte, seq int32) []byte {
	dst = append(dst, timeFirstPrefix)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = append(dst, key...)
	return binary.BigEndian.AppendUint32(dst, uint32(seq))
}

// parseBufferKey splits a buffer key.
func parseBufferKey(b []byte) (ts int64, key []byte, seq int32, ok bool) {
	if len(b) < 13 || b[0] != timeFirstPrefix {
		return 0, nil, 0, false
	}
	return int64(binary.BigEndian.Uint64(b[1:])), b[9 : len(b)-4], int32(binary.BigEndian.Uint32(b[len(b)-4:])), true
}

// joinBuffer is the grace buffer of a stream-table join over its store
// (Kafka Streams' RocksDBTimeOrderedKeyValueBuffer): stream records wait
// in timestamp order until the buffer's stream time minus the grace
// reaches them. Its stream time is the largest timestamp of a record put
// in it, as Kafka Streams' buffer store observes it; at start it is read
// back from the store, which always holds the record that set it while
// grace is positive (with no grace the buffer keeps nothing and its stream
// time makes no difference).
type joinBuffer struct {
	name     string
	store    state.KeyValueStore
	grace    int64
	observed int64
	// from is a timestamp no buffered record is older than: eviction
	// scans from it, not over the tombstones of the records it released
	// before (Kafka Streams' minTimestamp).
	from int64
	seq  int32
	kbuf []byte
	vbuf []byte
	// evict's reused buffers: the range bounds, and the list of due
	// records (each in memory of its own).
	from9, to9 [9]byte
	due        []dueRecord
}

type dueRecord struct{ k, v []byte }

func openJoinBuffer(ctx Context, name string, grace int64) (*joinBuffer, error) {
	kv, err := OpenKeyValueStore(ctx, name)
	if err != nil {
		return nil, err
	}
	b := &joinBuffer{name: name, store: kv, grace: grace, observed: -1}
	for k := range kv.Range(nil, nil) {
		ts, _, seq, ok := parseBufferKey(k)
		if !ok {
			return nil, fmt.Errorf("sluice: join buffer %s: key %x is not a buffer key (0x00, timestamp, key, seq)", name, k)
		}
		b.observed = max(b.observed, ts)
		b.seq = max(b.seq, seq)
	}
	if err := iterErr(kv); err != nil {
		return nil, fmt.Errorf("sluice: join buffer %s: %w", name, err)
	}
	return b, nil
}

func iterErr(kv state.KeyValueStore) error {
	if r, ok := kv.(state.IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// put buffers a record unless it is already older than stream time minus
// the grace (it is then joined at once: put returns false).
func (b *joinBuffer) put(ctx Context, ts int64, key, value []byte, headers []operators.Header) (bool, error) {
	if b.observed-b.grace > ts {
		return false, nil
	}
	b.seq = (b.seq + 1) & math.MaxInt32
	b.kbuf = bufferKey(b.kbuf[:0], ts, key, b.seq)
	if value == nil {
		value = []byte{} // a null is never buffered: its new value is set
	}
	e := BufferEntry{New: value, Context: BufferContext{Timestamp: ts, Offset: ctx.Offset(), Topic: ctx.Topic(), Partition: ctx.Partition(), Headers: headers}}
	b.vbuf = e.AppendEncoded(b.vbuf[:0])
	if err := b.store.Put(b.kbuf, b.vbuf); err != nil {
		return false, err
	}
	b.observed = max(b.observed, ts)
	return true, nil
}

// evict removes the records whose timestamp is at most stream time minus
// the grace, in (timestamp, key, seq) order, and calls emit with each: its
// key and its entry, which owns its bytes (the record's timestamp and
// headers are the entry's context's, its value the entry's new value).
func (b *joinBuffer) evict(emit func(key []byte, rec *BufferEntry) error) error {
	bound := b.observed - b.grace
	if bound < b.from {
		return nil
	}
	from := binary.BigEndian.AppendUint64(append(b.from9[:0], timeFirstPrefix), uint64(b.from))
	to := binary.BigEndian.AppendUint64(append(b.to9[:0], timeFirstPrefix), uint64(bound+1))
	// Every record up to bound leaves below, and no record older than
	// bound is put from now on (put joins those at once); one at bound
	// may be.
	b.from = bound
	// Each due record is copied into memory of its own: the store's
	// slices do not outlive the iteration, and what the join forwards
	// (header values, and keys and values a serde may decode in place)
	// must stay valid downstream, where a record cache may keep it.
	b.due = b.due[:0]
	for k, v := range b.store.Range(from, to) {
		kv := make([]byte, 0, len(k)+len(v))
		kv = append(append(kv, k...), v...)
		b.due = append(b.due, dueRecord{k: kv[:len(k):len(k)], v: kv[len(k):]})
	}
	if err := iterErr(b.store); err != nil {
		return fmt.Errorf("sluice: join buffer %s: %w", b.name, err)
	}
	for i := range b.due {
		e := b.due[i]
		b.due[i] = dueRecord{}
		_, key, _, ok := parseBufferKey(e.k)
		if !ok {
			return fmt.Errorf("sluice: join buffer %s: key %x is not a buffer key (0x00, timestamp, key, seq)", b.name, e.k)
		}
		rec, err := DecodeBufferEntry(nil, e.v)
		if err == nil && rec.New == nil {
			err = fmt.Errorf("an entry without a value")
		}
		if err != nil {
			return fmt.Errorf("sluice: join buffer %s: %w", b.name, err)
		}
		if err := emit(key, rec); err != nil {
			return err
		}
		if err := b.store.Delete(e.k); err != nil {
			return err
		}
	}
	return nil
}
