// Package serde holds serializers and deserializers for record keys and values.
//
// A Serde appends the encoding of a value to a caller-owned buffer
// (AppendEncode style) so the per-record path reuses one buffer instead of
// allocating, and decodes without copying where the type allows it.
//
// The primitive encodings are those of Kafka's own serializers, so topics
// written by Sluice are readable by Java clients and the other way round:
// Int32 and Int64 are big-endian like IntegerSerializer and LongSerializer,
// Float64 is the big-endian IEEE 754 bits like DoubleSerializer, and String
// is UTF-8 like StringSerializer.
//
// Serdes are nil-safe: decoding a nil or empty slice (a Kafka null) yields
// the zero value without error; a record whose value is null is flagged as a
// tombstone by the layer above, not by the serde.
package serde

// Serde encodes and decodes values of type T.
//
// Implementations must be safe for concurrent use: one Serde value is shared
// by every task of a topology.
type Serde[T any] interface {
	// Encode appends the encoding of v to dst and returns the extended slice.
	Encode(dst []byte, v T) ([]byte, error)
	// Decode decodes b. A nil or empty b decodes to the zero value of T.
	// Decode must not retain b unless documented (see Bytes).
	Decode(b []byte) (T, error)
}
