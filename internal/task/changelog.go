package task

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// Both sides of a store's changelog are defined here: loggedStore writes
// it, ChangelogRestorer reads it back. Kafka's part of each (producing,
// and reading a partition from a checkpointed offset) is the runtime's.

// ChangelogWriter receives the changelog records of a task's stores. The
// runtime's producer sends them to Kafka; the test driver keeps them as
// topics a test can read.
type ChangelogWriter interface {
	// WriteChangelog writes one record to partition of topic: a nil value
	// is a tombstone. key, value and headers are valid during the call
	// only. An error (such as an earlier failed send) fails the write.
	WriteChangelog(topic string, partition int32, key, value []byte, headers []operators.Header, ts int64) error
}

// InputHeader is the header of a changelog record that says which input
// record caused the change: partition (4 bytes) and offset (8 bytes),
// big-endian, then the topic. After restoring a changelog, a task resumes
// after the latest input record its state reflects, even when that is past
// the group's committed offset, so input is not applied to state twice.
const InputHeader = "sluice.input"

// AppendInputPosition appends the value of an InputHeader to dst.
func AppendInputPosition(dst []byte, topic string, partition int32, offset int64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return append(dst, topic...)
}

// ParseInputPosition decodes the value of an InputHeader; ok is false if
// it is too short to be one.
func ParseInputPosition(b []byte) (topic string, partition int32, offset int64, ok bool) {
	if len(b) < 12 {
		return "", 0, 0, false
	}
	partition = int32(binary.BigEndian.Uint32(b))
	offset = int64(binary.BigEndian.Uint64(b[4:]))
	return string(b[12:]), partition, offset, true
}

// loggedStore writes every change of a key-value store to its changelog
// topic, on the task's partition, through the task's changelog writer: a
// put as the value, a delete as a tombstone. Each record carries the
// position of the input record that caused it (InputHeader).
//
// The record timestamp is Kafka Streams': for a put into a timestamped
// store, the value's timestamp, which is logged without it
// (ChangeLoggingTimestampedKeyValueBytesStore); for any other write (a put
// into a key-value, window or session store whose values carry no
// timestamp, a delete) the timestamp of the record that caused it
// (ProcessorContext.timestamp()): the record being processed, the
// punctuation's time in a punctuator, or, when a record cache flushes the
// write later, that of the cached write (SetRecordContext).
type loggedStore struct {
	state.KeyValueStore
	topic       string
	partition   int32
	timestamped bool
	// skip is the length of the store key's prefix that the changelog key
	// leaves out: the 8-byte segment ID of window and session stores.
	skip int
	w    ChangelogWriter
	// position returns the input record being processed and the timestamp
	// of the record being processed (Task.RecordTimestamp).
	position func() (topic string, partition int32, offset int64, recordTime int64)
	// flushed is the record context of the cached write being flushed,
	// set by the record cache for the next write only.
	flushed    state.RecordContext
	hasFlushed bool
	hbuf       []byte
	hdr        [2]operators.Header
	// version is the header "v" of every record, if the store's kind has
	// one (topology.StoreKind.ChangelogVersion).
	version []byte
	// buf, if not nil, keeps the latest write of each key until the task
	// flushes (Config.ChangelogBuffer).
	buf *changelogBuffer
	// logged: the store logged a write since the task opened (write).
	logged bool
	// hasInput reports whether the task is processing an input record
	// (Task.HasInput): only such writes are buffered.
	hasInput func() bool
	// slots is the store below if it keeps a slot with each recent key
	// (state.SlotPutter), with buf only: the buffer finds a key's entry
	// through it without a lookup of its own.
	slots state.SlotPutter
}

// IterErr implements state.IterErrReporter for a store below that does,
// so that an iteration cut short by an I/O error is not taken for a
// complete one (the embedded interface does not promote it).
func (s *loggedStore) IterErr() error {
	if r, ok := s.KeyValueStore.(state.IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// SetRecordContext implements state.RecordContextSetter: the next write
// is one the record cache flushes, caused by a record of timestamp
// rc.Timestamp.
func (s *loggedStore) SetRecordContext(rc state.RecordContext) {
	s.flushed, s.hasFlushed = rc, true
}

// context returns the input position and the timestamp of the next
// changelog record: the record being processed (or the cached write being
// flushed, SetRecordContext); offset is -1 outside of a record's
// processing (a punctuator).
func (s *loggedStore) context() (topic string, partition int32, offset int64, ts int64) {
	topic, partition, offset, ts = s.position()
	if s.hasFlushed {
		ts, s.hasFlushed = s.flushed.Timestamp, false
	}
	return topic, partition, offset, max(ts, 0)
}

// VersionHeader is the header of a changelog record that gives the version
// of its value's format, for the store kinds that have one
// (topology.StoreKind.ChangelogVersion): the "v" header of Kafka Streams'
// suppression buffer changelog.
const VersionHeader = "v"

// versionHeader returns the value of the VersionHeader of the changelog of
// spec's store, or nil if its records carry none.
func versionHeader(spec *topology.StoreSpec) []byte {
	if v, ok := spec.Kind.ChangelogVersion(); ok {
		return []byte{v}
	}
	return nil
}

func (s *loggedStore) Put(key, value []byte) error {
	topic, part, off, ts := s.context()
	if s.timestamped && len(value) < 8 {
		return fmt.Errorf("sluice: store %s: value of %d bytes has no timestamp", s.Name(), len(value))
	}
	var slot *state.Slot
	var err error
	if s.slots != nil {
		slot, err = s.slots.PutSlot(key, value)
	} else {
		err = s.KeyValueStore.Put(key, value)
	}
	if err != nil {
		return err
	}
	v := value
	if s.timestamped {
		ts, v = int64(binary.BigEndian.Uint64(value)), value[8:]
	}
	if v == nil {
		v = []byte{}
	}
	return s.write(key[s.skip:], v, topic, part, off, ts, slot)
}

func (s *loggedStore) Delete(key []byte) error {
	topic, part, off, ts := s.context()
	if err := s.KeyValueStore.Delete(key); err != nil {
		return err
	}
	return s.write(key[s.skip:], nil, topic, part, off, ts, nil)
}

// write logs a change (a nil value: a tombstone) caused by the input
// record at offset of partition of topic (none if offset < 0), or keeps it
// in the buffer until the task flushes. slot, if not nil, is the key's
// slot in the store below (state.SlotPutter).
func (s *loggedStore) write(key, value []byte, topic string, part int32, off, ts int64, slot *state.Slot) error {
	if s.buf == nil {
		return s.log(key, value, topic, part, off, ts)
	}
	if !s.logged || !s.hasInput() {
		// Logged at once: the task's first write to the store (the new
		// owner's generation reaches the changelog as soon as it writes,
		// which is what makes a restore skip a former owner's later
		// writes: the runtime's generation filter), and a write made
		// outside a record's processing (a punctuator's, a record
		// cache's flush). Such a write carries the position of the last
		// record processed, which may be committed already: merged into
		// a later record's write of the key, a restore after a crash
		// before the next commit would skip it with that write. The
		// key's buffered write, older, goes first.
		s.logged = true
		if e := s.buf.take(key); e != nil {
			if err := s.logEntry(e); err != nil {
				return err
			}
		}
		return s.log(key, value, topic, part, off, ts)
	}
	s.buf.add(key, value, topic, part, off, ts, slot)
	if s.buf.bytes > s.buf.max {
		return s.flushLog()
	}
	return nil
}

// log writes one changelog record.
func (s *loggedStore) log(key, value []byte, topic string, part int32, off, ts int64) error {
	if key == nil {
		key = []byte{} // an empty key (a serde's nil encoding), never a Kafka null
	}
	hdrs := s.hdr[:0]
	if s.version != nil {
		hdrs = append(hdrs, operators.Header{Key: VersionHeader, Value: s.version})
	}
	if off >= 0 {
		s.hbuf = AppendInputPosition(s.hbuf[:0], topic, part, off)
		hdrs = append(hdrs, operators.Header{Key: InputHeader, Value: s.hbuf})
	}
	return s.w.WriteChangelog(s.topic, s.partition, key, value, hdrs, ts)
}

// flushLog logs the buffered writes, in the order their keys were first
// written since the last flush.
func (s *loggedStore) flushLog() error {
	if s.buf == nil || len(s.buf.ents) == 0 {
		return nil
	}
	for i := range s.buf.ents {
		if s.buf.ents[i].taken {
			continue // logged already
		}
		if err := s.logEntry(&s.buf.ents[i]); err != nil {
			return err
		}
	}
	s.buf.reset()
	return nil
}

// logEntry logs a buffered write.
func (s *loggedStore) logEntry(e *bufferedWrite) error {
	v := e.value
	if e.del {
		v = nil
	} else if v == nil {
		v = []byte{}
	}
	// An empty key's data is nil: log makes it an empty key.
	return s.log(unsafe.Slice(unsafe.StringData(e.key), len(e.key)), v, e.topic, e.part, e.off, e.ts)
}

// Dirty returns the number of buffered writes (Task.Flush flushes again
// while a store has some: a flush of another store's cache may write to
// this one after its own flush).
func (s *loggedStore) Dirty() int {
	if s.buf == nil {
		return 0
	}
	return len(s.buf.ents)
}

// Flush logs the buffered writes, then flushes the store below.
func (s *loggedStore) Flush() error {
	if err := s.flushLog(); err != nil {
		return err
	}
	return s.KeyValueStore.Flush()
}

// changelogBuffer holds the latest write of each key a loggedStore logs
// at the task's next flush (Config.ChangelogBuffer): a key written n times
// between two commits is logged once, with the value, timestamp and input
// position of its latest write. Only writes made while the task processes
// an input record are buffered (loggedStore.write logs the others at once,
// after the key's buffered write).
//
// What a restore rebuilds is unchanged. The runtime's commit flushes the
// task, so the changelog holds the latest value of every key written
// before a commit when the commit's offsets move, as it does when every
// write is logged. A restore skips each record whose input position is
// past the committed one (the writes of a commit that did not complete);
// a record here reflects its key's writes since the previous flush, all
// caused by input records past the previous commit, so it is skipped
// exactly when they all must be. Records logged when the buffer is full,
// before a flush, are the same as those of a flush.
type changelogBuffer struct {
	idx   map[string]int32
	ents  []bufferedWrite
	bytes int
	max   int
}

// bufferedWrite is the latest write of a key (del: a delete).
type bufferedWrite struct {
	key   string
	value []byte
	del   bool
	// taken: logged out of the buffer (take); not logged at the flush.
	taken bool
	// tag identifies the entry to the key's slot in the store below (add),
	// 0 until a slot names it.
	tag   uint64
	topic string
	part  int32
	off   int64
	ts    int64
}

// bufferedWriteOverhead is the memory of an entry besides its key and
// value, counted against the buffer's budget: the entry (96 bytes), the
// map's slot and key, and the growth of both.
const bufferedWriteOverhead = 168

// bufferedWriteTags numbers the entries slots name (changelogBuffer.add),
// in the whole process, so that a tag is never given twice.
var bufferedWriteTags atomic.Uint64

// maxKeptValue is the largest value buffer an entry keeps for the next
// interval's writes: a reset keeps at most about the budget's worth of
// entries, each with a small value's room.
const maxKeptValue = 64

func newChangelogBuffer(max int) *changelogBuffer {
	return &changelogBuffer{idx: map[string]int32{}, max: max}
}

// take removes the buffered write of key from the buffer and returns it
// (valid until the next add), or nil.
func (b *changelogBuffer) take(key []byte) *bufferedWrite {
	i, ok := b.idx[string(key)]
	if !ok {
		return nil
	}
	delete(b.idx, string(key))
	e := &b.ents[i]
	e.taken = true
	return e
}

// add buffers a write of key. slot, if not nil, is kept with the key by
// the store below (state.SlotPutter): add keeps there the index of the
// key's entry and the entry's tag, unique in the process
// (bufferedWriteTags), and finds the entry through it the next time
// without a map lookup (a key written many times between two flushes is
// the every-update path's common case). The entry at that index is the
// key's if it has that tag: not one of an earlier interval (a reset hands
// its index to other keys), nor one of an earlier buffer over the same DB
// (a reopened task), and if it is not taken out since (take). Comparing
// the key instead was a cache miss per write; a pointer to the slot in the
// entry kept the store's dropped entries alive.
func (b *changelogBuffer) add(key, value []byte, topic string, part int32, off, ts int64, slot *state.Slot) {
	var i int32
	ok := false
	if slot != nil {
		if j := slot[0]; j < uint64(len(b.ents)) && b.ents[j].tag == slot[1] && slot[1] != 0 && !b.ents[j].taken {
			i, ok = int32(j), true
		}
	}
	if !ok {
		i, ok = b.idx[string(key)]
	}
	if !ok {
		i = int32(len(b.ents))
		if len(b.ents) < cap(b.ents) {
			b.ents = b.ents[:i+1]
		} else {
			b.ents = append(b.ents, bufferedWrite{})
		}
		e := &b.ents[i]
		e.key = string(key)
		e.off = -1
		b.idx[e.key] = i
		b.bytes += len(key) + bufferedWriteOverhead
	}
	e := &b.ents[i]
	if slot != nil {
		if e.tag == 0 {
			e.tag = bufferedWriteTags.Add(1)
		}
		*slot = state.Slot{uint64(i), e.tag}
	}
	b.bytes += len(value) - len(e.value)
	e.value = append(e.value[:0], value...)
	e.del = value == nil
	e.ts = ts
	if off >= 0 {
		e.topic, e.part, e.off = topic, part, off
	}
}

// reset empties the buffer, keeping the entries' room for values.
func (b *changelogBuffer) reset() {
	for i := range b.ents {
		e := &b.ents[i]
		e.key, e.topic, e.taken, e.tag = "", "", false, 0
		if cap(e.value) > maxKeptValue {
			e.value = nil
		}
		e.value = e.value[:0]
	}
	b.ents = b.ents[:0]
	clear(b.idx)
	b.bytes = 0
}

// DeleteRange implements state.RangeDeleter without logging: window and
// session stores drop expired segments with it, and their changelogs
// expire the same records by retention (cleanup.policy compact,delete).
func (s *loggedStore) DeleteRange(from, to []byte) error {
	if rd, ok := s.KeyValueStore.(state.RangeDeleter); ok {
		return rd.DeleteRange(from, to)
	}
	var keys [][]byte
	for k := range s.KeyValueStore.Range(from, to) {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := s.KeyValueStore.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// loggedVersionedStore writes every version written to a versioned store
// to its changelog, as Kafka Streams' ChangeLoggingVersionedKeyValueBytesStore:
// the key, the value's encoding (a tombstone for a delete) and the
// version's timestamp as the record timestamp. Like Kafka Streams it logs
// a write the store refused as too old as well: restoring it is refused
// the same way. Each record carries the InputHeader of the input record
// that caused it.
type loggedVersionedStore struct {
	state.VersionedKeyValueStore
	topic     string
	partition int32
	w         ChangelogWriter
	position  func() (topic string, partition int32, offset int64)
	hbuf      []byte
	hdr       [1]operators.Header
}

func (s *loggedVersionedStore) headers() []operators.Header {
	topic, part, off := s.position()
	if off < 0 {
		return nil
	}
	s.hbuf = AppendInputPosition(s.hbuf[:0], topic, part, off)
	s.hdr[0] = operators.Header{Key: InputHeader, Value: s.hbuf}
	return s.hdr[:]
}

func (s *loggedVersionedStore) Put(key, value []byte, ts int64) (int64, error) {
	validTo, err := s.VersionedKeyValueStore.Put(key, value, ts)
	if err != nil {
		return validTo, err
	}
	// A nil value is the store's tombstone, and the changelog's.
	return validTo, s.w.WriteChangelog(s.topic, s.partition, nonNil(key), value, s.headers(), ts)
}

func (s *loggedVersionedStore) Delete(key []byte, ts int64) (state.VersionedRecord, bool, error) {
	rec, ok, err := s.VersionedKeyValueStore.Delete(key, ts)
	if err != nil {
		return rec, ok, err
	}
	return rec, ok, s.w.WriteChangelog(s.topic, s.partition, nonNil(key), nil, s.headers(), ts)
}

// ChangelogRestorer applies the records of a store's changelog to the
// key-value store the store keeps its entries in: the inverse of what the
// store's logger writes. A tombstone deletes; a timestamped store's value
// gets the record's timestamp back in front of it; a window or session
// changelog key gets the segment prefix of its store key (the records go
// through the window or session store's Restore, which also skips those of
// expired windows); a versioned store's records are put back as versions
// through a versioned store made on base, in changelog order.
type ChangelogRestorer struct {
	spec        *topology.StoreSpec
	put         func(key, value []byte) error
	del         func(key []byte) error
	restorer    interface{ Restore(key, value []byte) error }
	versioned   state.VersionedKeyValueStore
	timestamped bool
	buf         []byte
}

// NewChangelogRestorer returns a restorer of the store of spec into base.
// A key-value store's records are written with put and del, which the
// caller may point at a write batch of base (nil: base.Put and
// base.Delete); a window or session store's go to base through a window
// or session store made on it.
func NewChangelogRestorer(spec *topology.StoreSpec, base state.KeyValueStore, put func(key, value []byte) error, del func(key []byte) error) (*ChangelogRestorer, error) {
	r := &ChangelogRestorer{spec: spec, put: put, del: del, timestamped: spec.Timestamped}
	if r.put == nil {
		r.put = base.Put
	}
	if r.del == nil {
		r.del = base.Delete
	}
	if spec.Kind == topology.Versioned {
		st, err := WrapStore(spec, base)
		if err != nil {
			return nil, err
		}
		r.versioned = st.(state.VersionedKeyValueStore)
		return r, nil
	}
	if spec.Kind.SegmentPrefixLen() > 0 {
		st, err := WrapStore(spec, base)
		if err != nil {
			return nil, err
		}
		rs, ok := st.(interface{ Restore(key, value []byte) error })
		if !ok {
			return nil, fmt.Errorf("sluice: store %s: a %T cannot restore its changelog", spec.Name, st)
		}
		r.restorer = rs
	}
	return r, nil
}

// Apply applies one changelog record: its key, value (nil: a tombstone)
// and timestamp (ms).
func (r *ChangelogRestorer) Apply(key, value []byte, ts int64) error {
	if value != nil && r.timestamped {
		r.buf = binary.BigEndian.AppendUint64(r.buf[:0], uint64(ts))
		value = append(r.buf, value...)
		r.buf = value
	}
	switch {
	case r.versioned != nil:
		// A version the store refuses as too old was refused when it was
		// written too (the changelog logs it all the same).
		_, err := r.versioned.Put(key, value, ts)
		return err
	case r.restorer != nil:
		return r.restorer.Restore(key, value)
	case value == nil:
		return r.del(key)
	default:
		return r.put(key, value)
	}
}

// nonNil returns key, or an empty key for nil (a serde's encoding of an
// empty key): a changelog record's key is never a Kafka null.
func nonNil(key []byte) []byte {
	if key == nil {
		return []byte{}
	}
	return key
}
