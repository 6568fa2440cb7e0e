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
// Serdes are nil-safe: decoding nil yields the zero value without error,
// though a record whose key or value is a Kafka null is flagged (NullKey,
// Tombstone) by the layer above and never decoded. An empty slice is not a
// null but a value, decoded as Kafka's deserializers decode it: String
// gives "" and Bytes an empty slice; Int32, Int64, Float64 and JSON refuse
// it (IntegerDeserializer and the like: "Size of data received ... is
// not 4"; Jackson: no content), so an empty value in a topic of numbers or
// JSON is a deserialization error, counted as such when skipped
// ("deserialization-error"), never a silent 0 or zero struct.
//
// Invalid UTF-8: String keeps it, byte for byte (Decode and Encode never
// validate, so every byte sequence round-trips and keys that differ only in
// invalid bytes stay distinct keys); JavaString reads it as Kafka's
// StringDeserializer does, each malformed sequence replaced by U+FFFD (so
// such keys merge, group and partition as in Kafka Streams); StrictString
// refuses it with an *InvalidUTF8Error (a deserialization error, counted
// as "invalid-utf8" when skipped); JSON refuses it the same way.
package serde

// Serde encodes and decodes values of type T.
//
// Implementations must be safe for concurrent use: one Serde value is shared
// by every task of a topology.
type Serde[T any] interface {
	// Encode appends the encoding of v to dst and returns the extended slice.
	Encode(dst []byte, v T) ([]byte, error)
	// Decode decodes b. A nil b decodes to the zero value of T; an empty b
	// is a value (see the package comment).
	// Decode must not retain b unless documented (see Bytes).
	Decode(b []byte) (T, error)
}
