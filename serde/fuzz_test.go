package serde_test

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

// fuzzDecode checks, for arbitrary input, that Decode does not panic and
// that a successful decode round-trips: the value re-encodes to bytes that
// decode to a value with the same encoding. If exact is set, the re-encoding
// must also equal the input (the fixed-width serdes, String and Bytes have
// exactly one encoding per value).
//
// Encodings are compared rather than values because values are not always
// comparable (NaN) and JSON does not keep every distinction between values
// (an empty map under omitempty comes back nil).
func fuzzDecode[T any](t *testing.T, s serde.Serde[T], in []byte, exact bool) {
	v, err := s.Decode(in)
	if err != nil {
		return
	}
	enc, err := s.Encode(nil, v)
	if err != nil {
		t.Fatalf("Encode(Decode(% x) = %v): %v", in, v, err)
	}
	if exact && len(in) > 0 && !bytes.Equal(enc, in) {
		t.Fatalf("Encode(Decode(% x)) = % x", in, enc)
	}
	v2, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(Encode(Decode(% x))) = Decode(% x): %v", in, enc, err)
	}
	enc2, err := s.Encode(nil, v2)
	if err != nil {
		t.Fatalf("Encode(%v): %v", v2, err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("Decode(% x) = %v encodes to % x, which decodes to %v, which encodes to % x", in, v, enc, v2, enc2)
	}
}

func seeds(f *testing.F, in ...[]byte) {
	for _, b := range in {
		f.Add(b)
	}
}

func FuzzInt64(f *testing.F) {
	seeds(f, nil, []byte{1}, []byte{0, 0, 0, 0, 0, 0, 0, 1}, bytes.Repeat([]byte{0xff}, 8), make([]byte, 9))
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, serde.Int64, in, true) })
}

func FuzzInt32(f *testing.F) {
	seeds(f, nil, []byte{1}, []byte{0, 0, 0, 1}, bytes.Repeat([]byte{0xff}, 4), make([]byte, 8))
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, serde.Int32, in, true) })
}

func FuzzFloat64(f *testing.F) {
	seeds(f, nil, []byte{1}, []byte{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, make([]byte, 7))
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, serde.Float64, in, true) })
}

func FuzzString(f *testing.F) {
	seeds(f, nil, []byte("a"), []byte("世界"), []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, serde.String, in, true) })
}

func FuzzStrictString(f *testing.F) {
	seeds(f, nil, []byte("a"), []byte("世界"), []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, serde.StrictString, in, true) })
}

func FuzzBytes(f *testing.F) {
	seeds(f, nil, []byte("a"), []byte{0, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, serde.Bytes, in, true) })
}

func FuzzJSON(f *testing.F) {
	seeds(f, nil, []byte("null"), []byte(`{"id":1,"name":"a","tags":["x"],"score":1.5,"attrs":{"k":"v"}}`),
		[]byte(`{"id":`), []byte(`[]`), []byte(`{"name":"\ud800"}`), []byte("{\"name\":\"\xff\"}"))
	s := serde.JSON[event]()
	// Not exact: JSON has many encodings of one value (spacing, key order,
	// escapes).
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, s, in, false) })
}

func FuzzJSONAny(f *testing.F) {
	seeds(f, nil, []byte("null"), []byte(`{"a":[1,"x",true,null,{"b":1e300}]}`), []byte(`1e999`), []byte(`"\u00e9"`))
	s := serde.JSON[any]()
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDecode(t, s, in, false) })
}
