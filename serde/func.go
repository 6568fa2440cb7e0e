package serde

// Func returns a serde built from two functions, for types this package has
// no serde for. encode must append the encoding of v to dst and return the
// extended slice; decode must not retain its input unless the caller is told
// (as Bytes does).
//
// The serde is nil-safe whatever decode does: Decode of nil returns the
// zero T without calling decode. An empty value is a value: decode gets it
// and says what it is (Kafka's deserializers get empty bytes too). Both functions must be safe for
// concurrent use, since a serde is shared by every task of a topology. Func
// panics if either function is nil.
func Func[T any](encode func(dst []byte, v T) ([]byte, error), decode func([]byte) (T, error)) Serde[T] {
	if encode == nil || decode == nil {
		panic("sluice: serde.Func: nil encode or decode function")
	}
	return funcSerde[T]{encode: encode, decode: decode}
}

type funcSerde[T any] struct {
	encode func(dst []byte, v T) ([]byte, error)
	decode func([]byte) (T, error)
}

func (s funcSerde[T]) Encode(dst []byte, v T) ([]byte, error) { return s.encode(dst, v) }

func (s funcSerde[T]) Decode(b []byte) (T, error) {
	if b == nil {
		var zero T
		return zero, nil
	}
	return s.decode(b)
}
