package serde_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

// roundTrip encodes v after a prefix and checks that the prefix is kept, that
// the appended bytes are want (if want is not nil), and that decoding them
// gives back a value equal to v according to eq.
func roundTrip[T any](t *testing.T, s serde.Serde[T], v T, want []byte, eq func(a, b T) bool) {
	t.Helper()
	prefix := []byte("prefix")
	out, err := s.Encode(bytes.Clone(prefix), v)
	if err != nil {
		t.Fatalf("Encode(%v): %v", v, err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("Encode(%v) = %x: lost the bytes already in dst", v, out)
	}
	enc := out[len(prefix):]
	if want != nil && !bytes.Equal(enc, want) {
		t.Errorf("Encode(%v) = % x, want % x", v, enc, want)
	}
	got, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(% x): %v", enc, err)
	}
	if !eq(got, v) {
		t.Errorf("Decode(Encode(%v)) = %v", v, got)
	}
}

func equal[T comparable](a, b T) bool { return a == b }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInt64(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want string
	}{
		{0, "00 00 00 00 00 00 00 00"},
		{1, "00 00 00 00 00 00 00 01"},
		{-1, "ff ff ff ff ff ff ff ff"},
		{256, "00 00 00 00 00 00 01 00"},
		{math.MaxInt64, "7f ff ff ff ff ff ff ff"},
		{math.MinInt64, "80 00 00 00 00 00 00 00"},
		{0x0102030405060708, "01 02 03 04 05 06 07 08"},
	} {
		roundTrip(t, serde.Int64, tc.v, unhex(t, tc.want), equal)
	}
}

func TestInt32(t *testing.T) {
	for _, tc := range []struct {
		v    int32
		want string
	}{
		{0, "00 00 00 00"},
		{1, "00 00 00 01"},
		{-1, "ff ff ff ff"},
		{math.MaxInt32, "7f ff ff ff"},
		{math.MinInt32, "80 00 00 00"},
		{0x01020304, "01 02 03 04"},
	} {
		roundTrip(t, serde.Int32, tc.v, unhex(t, tc.want), equal)
	}
}

func TestFloat64(t *testing.T) {
	// Equal bits, so that NaN equals itself and -0 differs from +0.
	sameBits := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "00 00 00 00 00 00 00 00"},
		{math.Copysign(0, -1), "80 00 00 00 00 00 00 00"},
		{1, "3f f0 00 00 00 00 00 00"},
		{-2, "c0 00 00 00 00 00 00 00"},
		{0.1, "3f b9 99 99 99 99 99 9a"},
		{math.Inf(1), "7f f0 00 00 00 00 00 00"},
		{math.Inf(-1), "ff f0 00 00 00 00 00 00"},
		{math.NaN(), "7f f8 00 00 00 00 00 01"},
		{math.MaxFloat64, "7f ef ff ff ff ff ff ff"},
		{math.SmallestNonzeroFloat64, "00 00 00 00 00 00 00 01"},
	} {
		roundTrip(t, serde.Float64, tc.v, unhex(t, tc.want), sameBits)
	}
	// A NaN with another payload keeps it.
	nan := math.Float64frombits(0xfff0_dead_beef_0001)
	roundTrip(t, serde.Float64, nan, unhex(t, "ff f0 de ad be ef 00 01"), sameBits)
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want []byte
	}{
		{"", []byte{}},
		{"a", []byte("a")},
		{"héllo, 世界 🌊", []byte("héllo, 世界 🌊")},
		{"nul\x00inside", []byte("nul\x00inside")},
		{strings.Repeat("x", 1<<16), bytes.Repeat([]byte("x"), 1<<16)},
	} {
		roundTrip(t, serde.String, tc.v, tc.want, equal)
	}
	// Decode copies: changing the input later does not change the string.
	b := []byte("abc")
	s, _ := serde.String.Decode(b)
	b[0] = 'x'
	if s != "abc" {
		t.Errorf("String.Decode result changed with its input: %q", s)
	}
}

func TestBytes(t *testing.T) {
	for _, v := range [][]byte{
		{0},
		{0xff, 0x00, 0x7f},
		[]byte("héllo"),
		bytes.Repeat([]byte{0xab}, 1000),
	} {
		roundTrip(t, serde.Bytes, v, v, bytes.Equal)
	}
	// Empty and nil encode to nothing and decode to nil.
	for _, v := range [][]byte{nil, {}} {
		out, err := serde.Bytes.Encode([]byte("p"), v)
		if err != nil || string(out) != "p" {
			t.Errorf("Bytes.Encode(p, %#v) = %q, %v; want \"p\", nil", v, out, err)
		}
	}
	// Decode aliases its input.
	in := []byte("abc")
	got, _ := serde.Bytes.Decode(in)
	if &got[0] != &in[0] || len(got) != len(in) {
		t.Errorf("Bytes.Decode copied its input")
	}
}

type event struct {
	ID    int64             `json:"id"`
	Name  string            `json:"name,omitempty"`
	Tags  []string          `json:"tags"`
	Score float64           `json:"score"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func TestJSON(t *testing.T) {
	s := serde.JSON[event]()
	roundTrip(t, s, event{}, []byte(`{"id":0,"tags":null,"score":0}`), deepEqual)
	roundTrip(t, s, event{ID: 7, Name: "<b>世界</b>", Tags: []string{"a", ""}, Score: -1.5, Attrs: map[string]string{"k": "v"}},
		[]byte(`{"id":7,"name":"\u003cb\u003e世界\u003c/b\u003e","tags":["a",""],"score":-1.5,"attrs":{"k":"v"}}`),
		deepEqual)
	roundTrip(t, s, event{ID: math.MinInt64, Score: math.MaxFloat64}, nil, deepEqual)

	// The encoding is exactly json.Marshal's.
	v := event{ID: 1, Name: "a&b", Tags: []string{"x"}}
	want, _ := json.Marshal(v)
	got, err := s.Encode(nil, v)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("Encode = %s, %v; want %s (json.Marshal)", got, err, want)
	}

	roundTrip(t, serde.JSON[map[string]int](), map[string]int{"a": 1, "b": -2}, []byte(`{"a":1,"b":-2}`), deepEqual)
	roundTrip(t, serde.JSON[[]int](), []int{3, 1, 2}, []byte(`[3,1,2]`), deepEqual)
	roundTrip(t, serde.JSON[string](), "", []byte(`""`), equal)
	roundTrip(t, serde.JSON[*event](), &event{ID: 3}, []byte(`{"id":3,"tags":null,"score":0}`), deepEqual)

	// The literal null decodes to the zero value.
	if got, err := s.Decode([]byte("null")); err != nil || !reflect.DeepEqual(got, event{}) {
		t.Errorf("Decode(null) = %+v, %v; want zero event", got, err)
	}
}

func TestJSONEncodeError(t *testing.T) {
	s := serde.JSON[float64]()
	dst := []byte("keep")
	out, err := s.Encode(dst, math.NaN())
	if err == nil {
		t.Fatal("Encode(NaN): no error")
	}
	if !strings.Contains(err.Error(), "json(float64)") {
		t.Errorf("Encode(NaN) error %q does not name the serde", err)
	}
	var uve *json.UnsupportedValueError
	if !errors.As(err, &uve) {
		t.Errorf("Encode(NaN) error %v does not wrap *json.UnsupportedValueError", err)
	}
	if string(out) != "keep" {
		t.Errorf("Encode(NaN) returned dst %q, want it unchanged", out)
	}
}

func TestFunc(t *testing.T) {
	type point struct{ X, Y int32 }
	calls := 0
	s := serde.Func(
		func(dst []byte, p point) ([]byte, error) {
			dst, _ = serde.Int32.Encode(dst, p.X)
			return serde.Int32.Encode(dst, p.Y)
		},
		func(b []byte) (point, error) {
			calls++
			if len(b) != 8 {
				return point{}, &serde.DecodeError{Serde: "point", Len: len(b), Err: errors.New("want 8")}
			}
			x, _ := serde.Int32.Decode(b[:4])
			y, _ := serde.Int32.Decode(b[4:])
			return point{x, y}, nil
		},
	)
	roundTrip(t, s, point{1, -1}, unhex(t, "00000001 ffffffff"), equal)
	calls = 0
	if p, err := s.Decode(nil); err != nil || p != (point{}) || calls != 0 {
		t.Errorf("Decode(nil) = %v, %v after %d decode calls; want zero, nil, 0 calls", p, err, calls)
	}
	if _, err := s.Decode([]byte{}); err == nil || calls != 1 {
		t.Errorf("Decode(empty) = %v after %d decode calls; want decode's error, 1 call", err, calls)
	}
	if _, err := s.Decode([]byte{1}); err == nil || err.Error() != "sluice: serde point: cannot decode 1 byte: want 8" {
		t.Errorf("Decode([1]) error = %v", err)
	}

	defer func() {
		if recover() == nil {
			t.Error("Func(nil, nil) did not panic")
		}
	}()
	serde.Func[int](nil, nil)
}

// decodeEmpty checks that nil input decodes to the zero value, and empty
// input too if emptyOK, else fails with a *serde.DecodeError.
func decodeEmpty[T any](t *testing.T, name string, s serde.Serde[T], emptyOK bool) {
	t.Helper()
	var zero T
	for _, in := range [][]byte{nil, {}} {
		got, err := s.Decode(in)
		if in != nil && !emptyOK {
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Errorf("%s.Decode([]byte{}) = %#v, %v; want a *serde.DecodeError", name, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s.Decode(%#v): %v", name, in, err)
		}
		if !reflect.DeepEqual(got, zero) {
			t.Errorf("%s.Decode(%#v) = %#v, want the zero value", name, in, got)
		}
	}
}

// An empty value is a string or bytes like any other, and a failure for
// the serdes whose Java counterparts refuse it (IntegerDeserializer,
// LongDeserializer, DoubleDeserializer: "Size of data received ... is not
// 4/8"; Jackson: "No content to map due to end-of-input").
func TestDecodeEmpty(t *testing.T) {
	decodeEmpty(t, "String", serde.String, true)
	// Bytes: nil for nil, and an empty value is an empty slice, not nil
	// (the user would take it for a null), as ByteArrayDeserializer gives.
	if got, err := serde.Bytes.Decode(nil); err != nil || got != nil {
		t.Errorf("Bytes.Decode(nil) = %#v, %v; want nil", got, err)
	}
	if got, err := serde.Bytes.Decode([]byte{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Bytes.Decode([]byte{}) = %#v, %v; want an empty, non-nil slice", got, err)
	}
	decodeEmpty(t, "Int32", serde.Int32, false)
	decodeEmpty(t, "Int64", serde.Int64, false)
	decodeEmpty(t, "Float64", serde.Float64, false)
	decodeEmpty(t, "JSON[event]", serde.JSON[event](), false)
	decodeEmpty(t, "JSON[*event]", serde.JSON[*event](), false)
	decodeEmpty(t, "JSON[map]", serde.JSON[map[string]int](), false)
	decodeEmpty(t, "JSON[any]", serde.JSON[any](), false)
	_, err := serde.JSON[event]().Decode([]byte{})
	if !errors.Is(err, serde.ErrEmptyJSON) {
		t.Errorf("JSON Decode of an empty value: %v, want ErrEmptyJSON", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	type decoder func([]byte) error
	wrap := func(f func([]byte) error) decoder { return f }
	int32d := wrap(func(b []byte) error { _, err := serde.Int32.Decode(b); return err })
	int64d := wrap(func(b []byte) error { _, err := serde.Int64.Decode(b); return err })
	float64d := wrap(func(b []byte) error { _, err := serde.Float64.Decode(b); return err })
	jsond := wrap(func(b []byte) error { _, err := serde.JSON[event]().Decode(b); return err })

	for _, tc := range []struct {
		decode decoder
		in     []byte
		serde  string
		msg    string // exact message, or a prefix if it ends in "..."
	}{
		{int64d, []byte{1, 2, 3}, "int64", "sluice: serde int64: cannot decode 3 bytes: want 8"},
		{int64d, []byte{1}, "int64", "sluice: serde int64: cannot decode 1 byte: want 8"},
		{int64d, make([]byte, 4), "int64", "sluice: serde int64: cannot decode 4 bytes: want 8"},
		{int64d, make([]byte, 9), "int64", "sluice: serde int64: cannot decode 9 bytes: want 8"},
		{int32d, make([]byte, 8), "int32", "sluice: serde int32: cannot decode 8 bytes: want 4"},
		{int32d, make([]byte, 3), "int32", "sluice: serde int32: cannot decode 3 bytes: want 4"},
		{float64d, make([]byte, 4), "float64", "sluice: serde float64: cannot decode 4 bytes: want 8"},
		{jsond, []byte(`{"id":`), "json(serde_test.event)", "sluice: serde json(serde_test.event): cannot decode 6 bytes: ..."},
		{jsond, []byte(`{"id":"x"}`), "json(serde_test.event)", "sluice: serde json(serde_test.event): cannot decode 10 bytes: ..."},
		{jsond, []byte(`[1]`), "json(serde_test.event)", "sluice: serde json(serde_test.event): cannot decode 3 bytes: ..."},
	} {
		err := tc.decode(tc.in)
		if err == nil {
			t.Errorf("%s: Decode(% x): no error", tc.serde, tc.in)
			continue
		}
		if p, ok := strings.CutSuffix(tc.msg, "..."); ok {
			if !strings.HasPrefix(err.Error(), p) {
				t.Errorf("%s: Decode(% x) error %q, want prefix %q", tc.serde, tc.in, err, p)
			}
		} else if err.Error() != tc.msg {
			t.Errorf("%s: Decode(% x) error %q, want %q", tc.serde, tc.in, err, tc.msg)
		}
		var de *serde.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: Decode(% x) error %T is not a *serde.DecodeError", tc.serde, tc.in, err)
			continue
		}
		if de.Serde != tc.serde || de.Len != len(tc.in) || de.Err == nil {
			t.Errorf("%s: Decode(% x) = %+v, want Serde %q, Len %d and a cause", tc.serde, tc.in, de, tc.serde, len(tc.in))
		}
	}

	// JSON errors wrap encoding/json's.
	var se *json.SyntaxError
	if err := jsond([]byte(`{"id":`)); !errors.As(err, &se) {
		t.Errorf("JSON syntax error %v does not wrap *json.SyntaxError", err)
	}
	var te *json.UnmarshalTypeError
	if err := jsond([]byte(`{"id":"x"}`)); !errors.As(err, &te) {
		t.Errorf("JSON type error %v does not wrap *json.UnmarshalTypeError", err)
	}
}

func TestDecodeErrorUnwrap(t *testing.T) {
	cause := errors.New("cause")
	err := error(&serde.DecodeError{Serde: "x", Len: 2, Err: cause})
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, cause) = false", err)
	}
	if got := (&serde.DecodeError{Serde: "x", Len: 0}).Error(); got != "sluice: serde x: cannot decode 0 bytes" {
		t.Errorf("Error() without a cause = %q", got)
	}
}

func TestJSONName(t *testing.T) {
	for _, tc := range []struct {
		decode func([]byte) error
		name   string
	}{
		{func(b []byte) error { _, err := serde.JSON[event]().Decode(b); return err }, "json(serde_test.event)"},
		{func(b []byte) error { _, err := serde.JSON[*event]().Decode(b); return err }, "json(*serde_test.event)"},
		{func(b []byte) error { _, err := serde.JSON[[]int]().Decode(b); return err }, "json([]int)"},
		{func(b []byte) error { _, err := serde.JSON[map[string]any]().Decode(b); return err }, "json(map[string]interface {})"},
	} {
		var de *serde.DecodeError
		if err := tc.decode([]byte("!")); !errors.As(err, &de) || de.Serde != tc.name {
			t.Errorf("Decode error %v, want Serde %q", err, tc.name)
		}
	}
}

func TestAllocs(t *testing.T) {
	buf := make([]byte, 0, 8)
	enc := []byte{0, 0, 0, 0, 0, 0, 0, 42}
	var sink int64
	var fsink float64
	var isink int32
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Int64.Encode", func() { buf, _ = serde.Int64.Encode(buf[:0], 42) }},
		{"Int64.Decode", func() { sink, _ = serde.Int64.Decode(enc) }},
		{"Int32.Encode", func() { buf, _ = serde.Int32.Encode(buf[:0], 42) }},
		{"Int32.Decode", func() { isink, _ = serde.Int32.Decode(enc[4:]) }},
		{"Float64.Encode", func() { buf, _ = serde.Float64.Encode(buf[:0], 4.2) }},
		{"Float64.Decode", func() { fsink, _ = serde.Float64.Decode(enc) }},
		{"String.Encode", func() { buf, _ = serde.String.Encode(buf[:0], "abc") }},
		{"Bytes.Encode", func() { buf, _ = serde.Bytes.Encode(buf[:0], enc) }},
		{"Bytes.Decode", func() { buf, _ = serde.Bytes.Decode(enc) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
	_, _, _ = sink, fsink, isink
}

func BenchmarkInt64(b *testing.B) {
	buf := make([]byte, 0, 8)
	b.ReportAllocs()
	for i := range b.N {
		buf, _ = serde.Int64.Encode(buf[:0], int64(i))
		if v, _ := serde.Int64.Decode(buf); v != int64(i) {
			b.Fatal(v)
		}
	}
}

func BenchmarkJSONEncode(b *testing.B) {
	s := serde.JSON[event]()
	v := event{ID: 1, Name: "name", Tags: []string{"a", "b"}, Score: 1.5}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for range b.N {
		buf, _ = s.Encode(buf[:0], v)
	}
}

func deepEqual[T any](a, b T) bool { return reflect.DeepEqual(a, b) }

// "" is an empty value, never a Kafka null, whatever the buffer it is
// encoded into (Kafka's StringSerializer gives an empty array): a sink's
// or a store's first key "" was written as a null key.
func TestEmptyStringEncodesNotNull(t *testing.T) {
	for name, s := range map[string]serde.Serde[string]{"String": serde.String, "JavaString": serde.JavaString, "StrictString": serde.StrictString} {
		for _, dst := range [][]byte{nil, {}, make([]byte, 0, 8)} {
			b, err := s.Encode(dst, "")
			if err != nil {
				t.Fatal(err)
			}
			if b == nil || len(b) != 0 {
				t.Errorf("%s.Encode(%v, \"\") = %#v, want an empty non-nil slice", name, dst, b)
			}
		}
	}
}
