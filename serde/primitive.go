package serde

import (
	"encoding/binary"
	"math"
)

// String encodes a string as its bytes, unchanged, like Kafka's
// StringSerializer with the default UTF-8 encoding. Neither Encode nor Decode
// validates UTF-8, so every byte sequence round-trips exactly: keys that
// differ only in invalid bytes stay distinct, and a Go string is written as
// it is. (Kafka's StringDeserializer replaces invalid UTF-8 by U+FFFD: use
// JavaString to read as it does, StrictString to refuse invalid UTF-8.)
// Decode copies its input (the result does not alias it); nil or empty
// input decodes to "". Encode never returns nil (a Kafka null): "" into a
// nil buffer is an empty, non-nil slice, as Kafka's StringSerializer
// gives an empty array.
var String Serde[string] = stringSerde{}

// Bytes encodes a byte slice as itself, like Kafka's ByteArraySerializer.
//
// Decode does not copy: the slice it returns aliases its input and is valid
// only as long as the input is (for a slice from a state store, until the
// next write to the store; for a record, as long as the record). Copy it
// with bytes.Clone to keep it longer. Nil input decodes to nil, empty
// input to an empty, non-nil slice (a value, not a Kafka null: Kafka's
// ByteArrayDeserializer gives an empty array). Encode of a nil or empty
// slice appends nothing.
var Bytes Serde[[]byte] = bytesSerde{}

// Int32 encodes an int32 as 4 bytes, big-endian two's complement, like
// Kafka's IntegerSerializer. Decode fails with a *DecodeError unless its
// input is nil (decoding to 0) or exactly 4 bytes long: an empty value is
// an error, as for Kafka's IntegerDeserializer (a Kafka null is flagged
// by the layer above and never decoded). Neither Encode into
// a buffer with room for 4 bytes nor Decode allocates.
var Int32 Serde[int32] = int32Serde{}

// Int64 encodes an int64 as 8 bytes, big-endian two's complement, like
// Kafka's LongSerializer. Decode fails with a *DecodeError unless its input
// is nil (decoding to 0) or exactly 8 bytes long: an empty value is an
// error, as for Kafka's LongDeserializer. Neither Encode into a
// buffer with room for 8 bytes nor Decode allocates.
var Int64 Serde[int64] = int64Serde{}

// Float64 encodes a float64 as the 8 bytes of its IEEE 754 binary64
// representation, big-endian, like Kafka's DoubleSerializer. NaN payloads
// and the sign of zero are preserved. Decode fails with a *DecodeError unless
// its input is nil (decoding to 0) or exactly 8 bytes long: an empty value
// is an error, as for Kafka's DoubleDeserializer. Neither Encode
// into a buffer with room for 8 bytes nor Decode allocates.
var Float64 Serde[float64] = float64Serde{}

type stringSerde struct{}

func (stringSerde) Encode(dst []byte, v string) ([]byte, error) {
	if dst == nil && v == "" {
		return []byte{}, nil
	}
	return append(dst, v...), nil
}

func (stringSerde) Decode(b []byte) (string, error) { return string(b), nil }

type bytesSerde struct{}

func (bytesSerde) Encode(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }

func (bytesSerde) Decode(b []byte) ([]byte, error) { return b, nil }

type int32Serde struct{}

func (int32Serde) Encode(dst []byte, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

func (int32Serde) Decode(b []byte) (int32, error) {
	switch {
	case b == nil:
		return 0, nil
	case len(b) == 4:
		return int32(binary.BigEndian.Uint32(b)), nil
	}
	return 0, &DecodeError{Serde: "int32", Len: len(b), Err: errWant4}
}

type int64Serde struct{}

func (int64Serde) Encode(dst []byte, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	switch {
	case b == nil:
		return 0, nil
	case len(b) == 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, &DecodeError{Serde: "int64", Len: len(b), Err: errWant8}
}

type float64Serde struct{}

func (float64Serde) Encode(dst []byte, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v)), nil
}

func (float64Serde) Decode(b []byte) (float64, error) {
	switch {
	case b == nil:
		return 0, nil
	case len(b) == 8:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, &DecodeError{Serde: "float64", Len: len(b), Err: errWant8}
}
