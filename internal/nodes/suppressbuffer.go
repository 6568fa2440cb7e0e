package nodes

// The entries of a suppression buffer and their changelog encoding, Kafka
// Streams' BufferKey, BufferValue and ProcessorRecordContext
// serialization (InMemoryTimeOrderedKeyValueChangeBuffer's format 3).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/sluicehq/sluice/operators"
)

// BufferContext is the record context of a buffered update: the timestamp
// and headers it is emitted with, and the input record that caused it
// (Kafka Streams' ProcessorRecordContext).
type BufferContext struct {
	Timestamp int64
	Offset    int64
	Topic     string
	Partition int32
	Headers   []operators.Header
}

// BufferEntry is one key's buffered update: Kafka Streams' BufferKey
// (buffer time and key) and BufferValue (prior, old and new value, nil
// for a null, and record context).
type BufferEntry struct {
	Key     []byte
	Time    int64
	Prior   []byte
	Old     []byte
	New     []byte
	Context BufferContext
	pos     int // in the queue
}

// Size is the entry's size as Kafka Streams counts it against a bytes
// bound (InMemoryTimeOrderedKeyValueChangeBuffer.computeRecordSize): the
// buffer time, the key, the values (the old one not when it equals the
// prior one) and the record context's timestamp, offset, topic (in Java
// chars), partition and headers.
func (e *BufferEntry) Size() int64 {
	n := 8 + len(e.Key) + len(e.Prior) + len(e.New)
	if e.Old != nil && !e.oldIsPrior() {
		n += len(e.Old)
	}
	n += 8 + 8 + javaChars(e.Context.Topic) + 4
	for _, h := range e.Context.Headers {
		n += javaChars(h.Key) + len(h.Value)
	}
	return int64(n)
}

// oldIsPrior reports whether the old value equals the prior value, as
// Java's Arrays.equals compares them: a null equals only a null (Go's
// bytes.Equal takes nil and empty for equal).
func (e *BufferEntry) oldIsPrior() bool {
	return (e.Prior == nil) == (e.Old == nil) && bytes.Equal(e.Prior, e.Old)
}

// javaChars is the length of s in UTF-16 code units, as Java's
// String.toCharArray().length.
func javaChars(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// Kafka Streams' sentinels of BufferValue's length fields.
const (
	bufferNull          = -1
	bufferOldIsPrior    = -2
	bufferMaxHeaderSize = 1 << 30
)

// AppendEncoded appends the entry's changelog value to dst, in Kafka
// Streams' buffer changelog format version 3
// (InMemoryTimeOrderedKeyValueChangeBuffer.logValue): the record context
// (int64 timestamp, int64 offset, int32 topic length and topic, int32
// partition, int32 header count, per header int32 key length, key, int32
// value length or -1 and value), the prior value, the old value (-2 when
// equal to the prior value), the new value (each an int32 length, -1 for
// a null, and the bytes), then the int64 buffer time. All big-endian.
func (e *BufferEntry) AppendEncoded(dst []byte) []byte {
	c := &e.Context
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Timestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Topic)))
	dst = append(dst, c.Topic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Partition))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Headers)))
	for _, h := range c.Headers {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	dst = appendNullable(dst, e.Prior)
	switch {
	case e.Old == nil:
		dst = binary.BigEndian.AppendUint32(dst, uint32(0xFFFFFFFF)) // -1
	case e.oldIsPrior():
		dst = binary.BigEndian.AppendUint32(dst, uint32(0xFFFFFFFE)) // -2
	default:
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Old)))
		dst = append(dst, e.Old...)
	}
	dst = appendNullable(dst, e.New)
	return binary.BigEndian.AppendUint64(dst, uint64(e.Time))
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.BigEndian.AppendUint32(dst, uint32(0xFFFFFFFF))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

var errShortBuffer = errors.New("truncated")

// bufferReader reads the fields of an encoded buffer entry.
type bufferReader struct {
	b   []byte
	err error
}

func (r *bufferReader) int64() int64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShortBuffer
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *bufferReader) int32() int32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShortBuffer
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

// bytes reads n bytes (n < 0: a null).
func (r *bufferReader) bytes(n int32) []byte {
	if r.err != nil || n < 0 {
		if n < -1 && r.err == nil {
			r.err = fmt.Errorf("bad length %d", n)
		}
		return nil
	}
	if int64(len(r.b)) < int64(n) {
		r.err = errShortBuffer
		return nil
	}
	v := bytes.Clone(r.b[:n])
	if v == nil {
		v = []byte{}
	}
	r.b = r.b[n:]
	return v
}

// DecodeBufferEntry decodes the changelog value of a suppression buffer's
// key (AppendEncoded's format; Kafka Streams' version 3). The entry owns
// copies of the bytes.
func DecodeBufferEntry(key, value []byte) (*BufferEntry, error) {
	r := &bufferReader{b: value}
	e := &BufferEntry{Key: bytes.Clone(key)}
	c := &e.Context
	c.Timestamp = r.int64()
	c.Offset = r.int64()
	topic := r.bytes(r.int32())
	if topic == nil && r.err == nil {
		r.err = errors.New("null topic")
	}
	if !utf8.Valid(topic) && r.err == nil {
		r.err = errors.New("topic is not UTF-8")
	}
	c.Topic = string(topic)
	c.Partition = r.int32()
	n := r.int32()
	if n < -1 || n > bufferMaxHeaderSize || (r.err == nil && int64(n) > int64(len(r.b))/8) {
		if r.err == nil {
			r.err = fmt.Errorf("bad header count %d", n)
		}
	}
	for i := int32(0); i < n && r.err == nil; i++ {
		hk := r.bytes(r.int32())
		if hk == nil && r.err == nil {
			r.err = errors.New("null header key")
		}
		c.Headers = append(c.Headers, operators.Header{Key: string(hk), Value: r.bytes(r.int32())})
	}
	e.Prior = r.bytes(r.int32())
	if n := r.int32(); n == bufferOldIsPrior {
		e.Old = e.Prior
	} else {
		e.Old = r.bytes(n)
	}
	e.New = r.bytes(r.int32())
	e.Time = r.int64()
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("corrupt suppression buffer entry of %d bytes: %w", len(value), r.err)
	}
	return e, nil
}

// bufferQueue is a min-heap of entries by (buffer time, key), the order of
// Kafka Streams' BufferKey (keys compared as unsigned bytes).
type bufferQueue []*BufferEntry

func (q bufferQueue) Len() int { return len(q) }
func (q bufferQueue) Less(i, j int) bool {
	if q[i].Time != q[j].Time {
		return q[i].Time < q[j].Time
	}
	return bytes.Compare(q[i].Key, q[j].Key) < 0
}
func (q bufferQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].pos, q[j].pos = i, j
}
func (q *bufferQueue) Push(x any) {
	e := x.(*BufferEntry)
	e.pos = len(*q)
	*q = append(*q, e)
}
func (q *bufferQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}
