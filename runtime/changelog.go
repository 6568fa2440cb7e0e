package runtime

import (
	"bytes"
	"encoding/binary"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
)

// inputHeader is the header of a changelog record that says which input
// record caused the change: partition (4 bytes) and offset (8 bytes),
// big-endian, then the topic. After restoring a changelog, a task resumes
// after the latest input record its state reflects, even when that is past
// the group's committed offset, so input is not applied to state twice.
const inputHeader = "sluice.input"

func appendInputPosition(dst []byte, topic string, partition int32, offset int64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return append(dst, topic...)
}

func parseInputPosition(b []byte) (topicPartition, int64, bool) {
	if len(b) < 12 {
		return topicPartition{}, 0, false
	}
	p := int32(binary.BigEndian.Uint32(b))
	off := int64(binary.BigEndian.Uint64(b[4:]))
	return topicPartition{string(b[12:]), p}, off, true
}

// loggedStore writes every change of a key-value store to its changelog
// topic, on the task's partition, through the task's producer: a put as
// the value, a delete as a tombstone. For a timestamped store the value's
// timestamp becomes the changelog record's timestamp and the value is
// logged without it, as Kafka Streams logs timestamped stores. Each record
// carries the position of the input record that caused it (inputHeader).
type loggedStore struct {
	state.KeyValueStore
	topic       string
	partition   int32
	timestamped bool
	// skip is the length of the store key's prefix that the changelog key
	// leaves out: the 8-byte segment ID of window and session stores.
	skip int
	p    *producer
	// position returns the input record being processed and the stream
	// time.
	position func() (topic string, partition int32, offset int64, streamTime int64)
	hbuf     []byte
	hdr      [1]operators.Header
}

func (s *loggedStore) headers() ([]operators.Header, int64) {
	topic, part, off, st := s.position()
	if off < 0 {
		return nil, max(st, 0)
	}
	s.hbuf = appendInputPosition(s.hbuf[:0], topic, part, off)
	s.hdr[0] = operators.Header{Key: inputHeader, Value: s.hbuf}
	return s.hdr[:], max(st, 0)
}

func (s *loggedStore) Put(key, value []byte) error {
	if err := s.KeyValueStore.Put(key, value); err != nil {
		return err
	}
	if err := s.p.err(); err != nil {
		return err
	}
	hdrs, ts := s.headers()
	v := value
	if s.timestamped && len(value) >= 8 {
		ts, v = int64(binary.BigEndian.Uint64(value)), value[8:]
	}
	if v == nil {
		v = []byte{}
	}
	s.p.sendChangelog(s.topic, s.partition, key[s.skip:], v, hdrs, ts)
	return nil
}

func (s *loggedStore) Delete(key []byte) error {
	if err := s.KeyValueStore.Delete(key); err != nil {
		return err
	}
	if err := s.p.err(); err != nil {
		return err
	}
	hdrs, ts := s.headers()
	s.p.sendChangelog(s.topic, s.partition, key[s.skip:], nil, hdrs, ts)
	return nil
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
