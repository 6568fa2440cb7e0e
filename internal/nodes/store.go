package nodes

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// OpenKeyValueStore returns the key-value store named name from ctx.
func OpenKeyValueStore(ctx operators.ProcessingContext, name string) (state.KeyValueStore, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	kv, ok := s.(state.KeyValueStore)
	if _, versioned := s.(state.VersionedKeyValueStore); versioned {
		return nil, fmt.Errorf("sluice: store %s is a versioned key-value store: open it with dsl.OpenVersionedTableStore", name)
	}
	if !ok {
		return nil, fmt.Errorf("sluice: store %s is a %T, not a key-value store", name, s)
	}
	return kv, nil
}

// timestamped is the typed view of a key-value store whose values carry the
// timestamp of their last update: an 8-byte big-endian timestamp followed by
// the value's encoding, the layout of Kafka Streams' timestamped stores.
//
// A timestamped view may instead be over a versioned store (versioned not
// nil, store nil): get reads the latest version, with its timestamp, and
// the table operators write it with putVersion.
type timestamped[K, V any] struct {
	ctx       Context
	name      string
	store     state.KeyValueStore
	versioned state.VersionedKeyValueStore
	cache     *state.CachingStore // store, when it is a record cache
	keys      serde.Serde[K]
	values    serde.Serde[V]
	kbuf      []byte
	vbuf      []byte
}

func openTimestamped[K, V any](ctx Context, name string, keys serde.Serde[K], values serde.Serde[V]) (*timestamped[K, V], error) {
	if st, err := ctx.Store(name); err == nil {
		if vs, ok := st.(state.VersionedKeyValueStore); ok {
			return &timestamped[K, V]{ctx: ctx, name: name, versioned: vs, keys: keys, values: values}, nil
		}
	}
	kv, err := OpenKeyValueStore(ctx, name)
	if err != nil {
		return nil, err
	}
	c, _ := kv.(*state.CachingStore)
	return &timestamped[K, V]{ctx: ctx, name: name, store: kv, cache: c, keys: keys, values: values}, nil
}

// forwardOnFlush makes the store's record cache, if it has one, forward
// each entry it flushes to next as a table update, with the context of the
// entry's last write, and reports whether it did: an operator whose store
// forwards on flush must not forward its updates itself (Kafka Streams'
// TimestampedCacheFlushListener). The update's old value is the one the
// store below held before the flush, so updates of a key between two
// flushes reach next as one.
func (s *timestamped[K, V]) forwardOnFlush(node string, next Node[K, operators.Change[V]]) bool {
	if s.cache == nil {
		return false
	}
	s.cache.SetFlushListener(func(key, nv []byte, deleted bool, ov []byte, hasOld bool, rc state.RecordContext) error {
		k, err := s.keys.Decode(key)
		if err != nil {
			return &operators.NodeError{Node: node, Err: fmt.Errorf("store %s: cannot deserialize flushed key: %w", s.name, err)}
		}
		var ch operators.Change[V]
		if !deleted {
			if ch.New, err = s.decodeValue(nv); err != nil {
				return &operators.NodeError{Node: node, Err: err}
			}
			ch.HasNew = true
		}
		if hasOld {
			if ch.Old, err = s.decodeValue(ov); err != nil {
				return &operators.NodeError{Node: node, Err: err}
			}
			ch.HasOld = true
		}
		h, _ := rc.Headers.([]operators.Header)
		s.ctx.CacheForward(true)
		err = next.Process(operators.Record[K, operators.Change[V]]{Key: k, Value: ch, Timestamp: rc.Timestamp, Headers: h})
		s.ctx.CacheForward(false)
		return err
	})
	return true
}

func (s *timestamped[K, V]) decodeValue(b []byte) (V, error) {
	var v V
	if len(b) < 8 {
		return v, fmt.Errorf("sluice: store %s: value of %d bytes has no timestamp", s.name, len(b))
	}
	v, err := s.values.Decode(b[8:])
	if err != nil {
		return v, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", s.name, err)
	}
	return v, nil
}

// setContext sets the record context the next write is cached with.
func (s *timestamped[K, V]) setContext(ts int64, headers []operators.Header) {
	if s.cache != nil {
		s.cache.SetRecordContext(state.RecordContext{Timestamp: ts, Headers: cachedHeaders(headers)})
	}
}

// key encodes k into the view's key buffer; the result is valid until the
// next call.
func (s *timestamped[K, V]) key(k K) ([]byte, error) {
	var err error
	s.kbuf, err = s.keys.Encode(s.kbuf[:0], k)
	if err != nil {
		return nil, fmt.Errorf("sluice: store %s: cannot serialize key: %w", s.name, err)
	}
	return s.kbuf, nil
}

func (s *timestamped[K, V]) get(kb []byte) (v V, ts int64, ok bool, err error) {
	if s.versioned != nil {
		return s.getVersion(s.versioned.Get(kb))
	}
	return s.decodeRow(s.store.Get(kb))
}

// getShared is get for a value getter: a join reading the table, not the
// node that writes it. Through a record cache it tells the cache that the
// row read may have been acted on before the cache forwards it, so that
// the row's delete is forwarded even when the store below never held it
// (state.CachingStore.GetShared): the join that answered with the row is
// then told it is gone.
func (s *timestamped[K, V]) getShared(kb []byte) (v V, ts int64, ok bool, err error) {
	if s.cache != nil {
		return s.decodeRow(s.cache.GetShared(kb))
	}
	return s.get(kb)
}

// decodeRow decodes a timestamped value read from the store.
func (s *timestamped[K, V]) decodeRow(b []byte, ok bool, err error) (v V, ts int64, _ bool, _ error) {
	if err != nil || !ok {
		return v, 0, false, err
	}
	if len(b) < 8 {
		return v, 0, false, fmt.Errorf("sluice: store %s: value of %d bytes has no timestamp", s.name, len(b))
	}
	v, err = s.values.Decode(b[8:])
	if err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", s.name, err)
	}
	return v, int64(binary.BigEndian.Uint64(b)), true, nil
}

// getAsOf reads the version of a versioned store valid at asOf, with
// its timestamp (validFrom) and validTo (state.ValidToUndefined for the
// latest).
func (s *timestamped[K, V]) getAsOf(kb []byte, asOf int64) (v V, ts, validTo int64, ok bool, err error) {
	rec, ok, err := s.versioned.GetAsOf(kb, asOf)
	v, ts, ok, err = s.getVersion(rec, ok, err)
	return v, ts, rec.ValidTo, ok, err
}

func (s *timestamped[K, V]) getVersion(rec state.VersionedRecord, ok bool, err error) (v V, ts int64, _ bool, _ error) {
	if err != nil || !ok {
		return v, 0, false, err
	}
	if v, err = s.values.Decode(rec.Value); err != nil {
		return v, 0, false, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", s.name, err)
	}
	return v, rec.Timestamp, true, nil
}

// putVersion writes v (a tombstone if !has) as key kb's version from ts
// on into a versioned store. put is false when the store refused the
// write as older than its history retention allows (Kafka Streams'
// PUT_RETURN_CODE_NOT_PUT); latest reports whether the version is now
// the key's latest (PUT_RETURN_CODE_VALID_TO_UNDEFINED), which table
// operators forward as Change.NotLatest.
func (s *timestamped[K, V]) putVersion(kb []byte, v V, has bool, ts int64) (put, latest bool, err error) {
	var buf []byte
	if has {
		if buf, err = s.values.Encode(s.vbuf[:0], v); err != nil {
			return false, false, fmt.Errorf("sluice: store %s: cannot serialize value: %w", s.name, err)
		}
		if buf == nil {
			buf = []byte{}
		}
		s.vbuf = buf
	}
	validTo, err := s.versioned.Put(kb, buf, ts)
	if err != nil {
		return false, false, err
	}
	return validTo != state.PutNotPut, validTo == state.ValidToUndefined, nil
}

// putAggregate writes an aggregation's new aggregate: into a versioned
// store as putVersion does (Kafka Streams' KStreamAggregate and
// KTableAggregate forward only what the store took, with its isLatest),
// else as put, always forwarded and the latest.
func (s *timestamped[K, V]) putAggregate(kb []byte, v V, ts int64) (put, latest bool, err error) {
	if s.versioned != nil {
		return s.putVersion(kb, v, true, ts)
	}
	return true, true, s.put(kb, v, ts)
}

func (s *timestamped[K, V]) put(kb []byte, v V, ts int64) error {
	buf := binary.BigEndian.AppendUint64(s.vbuf[:0], uint64(ts))
	buf, err := s.values.Encode(buf, v)
	if err != nil {
		return fmt.Errorf("sluice: store %s: cannot serialize value: %w", s.name, err)
	}
	s.vbuf = buf
	return s.store.Put(kb, buf)
}

func (s *timestamped[K, V]) delete(kb []byte) error { return s.store.Delete(kb) }

// DecodeTimestamped splits a value of a timestamped store into its
// timestamp and the value's encoding.
func DecodeTimestamped(b []byte) (ts int64, value []byte, err error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("sluice: timestamped value of %d bytes is shorter than its 8-byte timestamp", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:], nil
}

// ChangeSerde encodes table updates on repartition topics: a flags byte
// (1: has new, 2: has old), then the new value's length as a uvarint and its
// encoding, then the old value's encoding.
func ChangeSerde[V any](values serde.Serde[V]) serde.Serde[operators.Change[V]] {
	return changeSerde[V]{values: values}
}

type changeSerde[V any] struct{ values serde.Serde[V] }

func (c changeSerde[V]) Encode(dst []byte, ch operators.Change[V]) ([]byte, error) {
	var flags byte
	if ch.HasNew {
		flags |= 1
	}
	if ch.HasOld {
		flags |= 2
	}
	dst = append(dst, flags)
	var err error
	if ch.HasNew {
		// Encode after a reserved length and move it down once the length
		// is known, so the value is encoded once into dst.
		start := len(dst)
		dst, err = c.values.Encode(dst, ch.New)
		if err != nil {
			return dst, err
		}
		n := len(dst) - start
		var lb [binary.MaxVarintLen64]byte
		l := binary.PutUvarint(lb[:], uint64(n))
		dst = append(dst, lb[:l]...)
		copy(dst[start+l:], dst[start:start+n])
		copy(dst[start:], lb[:l])
	}
	if ch.HasOld {
		dst, err = c.values.Encode(dst, ch.Old)
	}
	return dst, err
}

func (c changeSerde[V]) Decode(b []byte) (operators.Change[V], error) {
	var ch operators.Change[V]
	if len(b) == 0 {
		return ch, fmt.Errorf("sluice: change: empty encoding")
	}
	flags, b := b[0], b[1:]
	ch.HasNew, ch.HasOld = flags&1 != 0, flags&2 != 0
	if flags&^3 != 0 {
		return ch, fmt.Errorf("sluice: change: unknown flags %#x", flags)
	}
	var err error
	if ch.HasNew {
		n, l := binary.Uvarint(b)
		if l <= 0 || n > uint64(len(b)-l) {
			return ch, fmt.Errorf("sluice: change: bad length of new value in %d bytes", len(b))
		}
		if ch.New, err = c.values.Decode(b[l : l+int(n)]); err != nil {
			return ch, err
		}
		b = b[l+int(n):]
	}
	if ch.HasOld {
		ch.Old, err = c.values.Decode(b)
	} else if len(b) > 0 {
		return ch, fmt.Errorf("sluice: change: %d trailing bytes", len(b))
	}
	return ch, err
}

// cachedHeaders returns headers for a record cache to keep until it
// flushes: a copy, since the caller's slice is reused for the next record
// (nil stays nil, and costs nothing).
func cachedHeaders(headers []operators.Header) any {
	if len(headers) == 0 {
		return nil
	}
	return slices.Clone(headers)
}

// VersionedView is a typed read-only view of a versioned store, for the
// typed handles of package dsl and the test driver.
type VersionedView[K, V any] struct{ s *timestamped[K, V] }

// NewVersionedView returns the typed view of st, which must be a
// versioned store.
func NewVersionedView[K, V any](st state.Store, keys serde.Serde[K], values serde.Serde[V]) (*VersionedView[K, V], error) {
	vs, ok := st.(state.VersionedKeyValueStore)
	if !ok {
		return nil, fmt.Errorf("sluice: store %s is a %T, not a versioned key-value store", st.Name(), st)
	}
	return &VersionedView[K, V]{&timestamped[K, V]{name: st.Name(), versioned: vs, keys: keys, values: values}}, nil
}

// Get returns k's latest value and its timestamp; ok is false when k has
// none or its latest version is a delete.
func (v *VersionedView[K, V]) Get(k K) (val V, ts int64, ok bool, err error) {
	kb, err := v.s.key(k)
	if err != nil {
		return val, 0, false, err
	}
	return v.s.get(kb)
}

// GetAsOf returns the version of k valid at asOf: its value, the
// timestamp it is valid from and the one it is valid to (exclusive;
// state.ValidToUndefined, math.MaxInt64, for the latest). ok is false when
// no version was valid then, the one valid then is a delete, or asOf is
// older than the history the store keeps.
func (v *VersionedView[K, V]) GetAsOf(k K, asOf int64) (val V, validFrom, validTo int64, ok bool, err error) {
	kb, err := v.s.key(k)
	if err != nil {
		return val, 0, 0, false, err
	}
	return v.s.getAsOf(kb, asOf)
}
