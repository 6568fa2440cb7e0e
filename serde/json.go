package serde

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"unicode/utf8"
)

// JSON returns a serde that encodes values of type T with encoding/json, as
// json.Marshal would (HTML characters escaped, no trailing newline).
//
// Decode uses json.Unmarshal; nil input (a Kafka null is flagged by the
// layer above and never decoded) decodes to the zero T, and so does the
// JSON literal null. Empty input is an error (it is not JSON; Jackson,
// behind Java's JSON serdes, refuses it too), and so is input that is not
// valid UTF-8 (encoding/json would quietly replace the bad bytes, Jackson
// refuses them): Err is ErrEmptyJSON or an *InvalidUTF8Error. Any other
// decoding failure is a *DecodeError whose Serde is "json(T)" with T the Go
// type name, for example "json(main.Event)", and whose Err is the error
// from encoding/json. Encode writes straight into
// dst, without an intermediate result slice.
//
// The serde is safe for concurrent use. Create it once per type, not per
// record: JSON computes the type's name when called.
func JSON[T any]() Serde[T] {
	return jsonSerde[T]{name: "json(" + reflect.TypeFor[T]().String() + ")"}
}

type jsonSerde[T any] struct {
	name string
}

// jsonEncoder is a json.Encoder bound to a writer that appends to a slice,
// pooled so that Encode neither allocates an Encoder nor copies the encoding
// out of a temporary slice.
type jsonEncoder struct {
	w   appendWriter
	enc *json.Encoder
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var jsonEncoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.w)
	return e
}}

func (s jsonSerde[T]) Encode(dst []byte, v T) ([]byte, error) {
	e := jsonEncoders.Get().(*jsonEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil // do not let the pool keep the caller's buffer alive
	jsonEncoders.Put(e)
	if err != nil {
		return dst, fmt.Errorf("sluice: serde %s: cannot encode: %w", s.name, err)
	}
	// json.Encoder terminates each value with a newline; json.Marshal, and
	// hence every other client's reading of the value, does not.
	return out[:len(out)-1], nil
}

func (s jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if len(b) == 0 {
		return v, &DecodeError{Serde: s.name, Err: ErrEmptyJSON}
	}
	if !utf8.Valid(b) {
		return v, &DecodeError{Serde: s.name, Len: len(b), Err: &InvalidUTF8Error{Offset: invalidUTF8Offset(b)}}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, &DecodeError{Serde: s.name, Len: len(b), Err: err}
	}
	return v, nil
}
