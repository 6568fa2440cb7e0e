package nodes

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The store keys and values of the operators, as the local DB and the
// changelogs hold them, decoded from arbitrary bytes: no panic, an error
// (or !ok) for bytes too short to be one, and what decodes encodes back to
// the same bytes.

// FuzzDecodeTimestamped: the value of a timestamped store (int64
// timestamp ‖ the value's encoding).
func FuzzDecodeTimestamped(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 7))
	f.Add(binary.BigEndian.AppendUint64(nil, 1700000000000))
	f.Add(append(binary.BigEndian.AppendUint64(nil, 42), "value"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, v, err := DecodeTimestamped(b)
		if len(b) < 8 {
			if err == nil {
				t.Fatalf("%x: a value of %d bytes decoded", b, len(b))
			}
			return
		}
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if enc := append(binary.BigEndian.AppendUint64(nil, uint64(ts)), v...); !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to (%d, %x), which encodes to %x", b, ts, v, enc)
		}
	})
}

// FuzzParseBufferKey: a key of a stream-table join's grace buffer (0 ‖
// int64 ts ‖ key ‖ int32 seq, Kafka Streams' time-first window key).
func FuzzParseBufferKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Add(bufferKey(nil, 1700000000000, []byte("k"), 3))
	f.Add(bufferKey(nil, -1, nil, -1))
	f.Add(append([]byte{1}, make([]byte, 12)...)) // not time-first
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, key, seq, ok := parseBufferKey(b)
		if !ok {
			if len(b) >= 13 && b[0] == timeFirstPrefix {
				t.Fatalf("%x: refused a well-formed key", b)
			}
			return
		}
		if len(b) < 13 || b[0] != timeFirstPrefix {
			t.Fatalf("%x: accepted a key that is too short or not time-first", b)
		}
		if enc := bufferKey(nil, ts, key, seq); !bytes.Equal(enc, b) {
			t.Fatalf("%x parses to (%d, %x, %d), which encodes to %x", b, ts, key, seq, enc)
		}
	})
}

// FuzzSplitOuterJoinKey: a key of a stream-stream outer join's store
// (int64 ts ‖ side ‖ key, Kafka Streams' TimestampedKeyAndJoinSide). As
// Kafka Streams, a side byte other than 1 is the right side; such a key
// encodes back with side 0 and then splits the same.
func FuzzSplitOuterJoinKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	f.Add(AppendOuterJoinKey(nil, 7, true, []byte("k")))
	f.Add(AppendOuterJoinKey(nil, -1, false, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, left, key, err := splitOuterJoinKey(b)
		if len(b) < 9 {
			if err == nil {
				t.Fatalf("%x: a key of %d bytes split", b, len(b))
			}
			return
		}
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if left != (b[8] == 1) {
			t.Fatalf("%x: side byte %d split as left=%v", b, b[8], left)
		}
		enc := AppendOuterJoinKey(nil, ts, left, key)
		if b[8] <= 1 && !bytes.Equal(enc, b) {
			t.Fatalf("%x splits to (%d, %v, %x), which encodes to %x", b, ts, left, key, enc)
		}
		ts2, left2, key2, err := splitOuterJoinKey(enc)
		if err != nil || ts2 != ts || left2 != left || !bytes.Equal(key2, key) {
			t.Fatalf("%x: re-split of %x = (%d, %v, %x), %v", b, enc, ts2, left2, key2, err)
		}
	})
}

// FuzzSplitCombinedKey: a key of a foreign-key join's subscription store
// (int32 foreign key length ‖ foreign key ‖ primary key).
func FuzzSplitCombinedKey(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add(AppendCombinedKey(nil, []byte("fk"), []byte("pk")))
	f.Add(AppendCombinedKey(nil, nil, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'a'}) // length past the end
	f.Fuzz(func(t *testing.T, b []byte) {
		fk, pk, err := SplitCombinedKey(b)
		if err != nil {
			if len(b) >= 4 && uint64(binary.BigEndian.Uint32(b)) <= uint64(len(b)-4) {
				t.Fatalf("%x: refused a well-formed key: %v", b, err)
			}
			return
		}
		if enc := AppendCombinedKey(nil, fk, pk); !bytes.Equal(enc, b) {
			t.Fatalf("%x splits to (%x, %x), which encodes to %x", b, fk, pk, enc)
		}
	})
}
