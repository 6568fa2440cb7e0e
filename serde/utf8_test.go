package serde_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicehq/sluice/serde"
)

// JavaString reads invalid UTF-8 as Kafka's StringDeserializer does (Java
// replaces each malformed sequence by U+FFFD): testdata/utf8/
// java-string-deserializer holds what Kafka 4.3.1's StringSerializer
// writes for what its StringDeserializer reads from each input (made by
// testdata/utf8/oracle/Utf8Oracle.java). Decode must give that string, and
// Encode of the raw (invalid) Go string the same bytes.
func TestJavaStringDecodesInvalidUTF8AsJava(t *testing.T) {
	f, err := os.Open("testdata/utf8/java-string-deserializer")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		in, out, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			t.Fatalf("line %q: want <in hex> -> <out hex>", sc.Text())
		}
		inb, err1 := hex.DecodeString(in)
		want, err2 := hex.DecodeString(out)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		n++
		got, err := serde.JavaString.Decode(inb)
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		if got != string(want) {
			t.Errorf("Decode(%s) = %x, Java reads %s", in, got, out)
		}
		enc, err := serde.JavaString.Encode(nil, string(inb))
		if err != nil || !bytes.Equal(enc, want) {
			t.Errorf("Encode(%q) = %x, %v; want %s", inb, enc, err, out)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 2000 {
		t.Fatalf("%d cases read, want the whole file", n)
	}
}

// Whatever the input, JavaString decodes it to valid UTF-8, valid input
// unchanged, and decoding is idempotent.
func FuzzJavaStringUTF8(f *testing.F) {
	seeds(f, nil, []byte("a"), []byte{0xed, 0xa0, 0x80}, []byte{0xf4, 0x90, 0x80, 0x80}, []byte{0xe0, 0x80}, []byte{0xf0, 0x9f, 0x98})
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := serde.JavaString.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(% x) = %q, not valid UTF-8", in, s)
		}
		if utf8.Valid(in) && s != string(in) {
			t.Fatalf("Decode(% x) = %q changed valid UTF-8", in, s)
		}
		if again, _ := serde.JavaString.Decode([]byte(s)); again != s {
			t.Fatalf("Decode(Decode(% x)) = %q, want %q", in, again, s)
		}
	})
}

// JSON refuses invalid UTF-8 with an error saying where (encoding/json
// alone would replace it quietly), and an empty value.
func TestJSONRefusesInvalidUTF8(t *testing.T) {
	s := serde.JSON[event]()
	_, err := s.Decode([]byte("{\"name\":\"a\xffb\"}"))
	var de *serde.DecodeError
	var ue *serde.InvalidUTF8Error
	if !errors.As(err, &de) || !errors.As(err, &ue) || ue.Offset != 10 {
		t.Fatalf("Decode of invalid UTF-8: %v, want a *DecodeError with an *InvalidUTF8Error at byte 10", err)
	}
	if want := "sluice: serde json(serde_test.event): cannot decode 14 bytes: invalid UTF-8 at byte 10"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := s.Decode([]byte(`{"name":"a\ufffdb"}`)); err != nil {
		t.Errorf("valid UTF-8: %v", err)
	}
}

// String keeps invalid UTF-8: the keys that JavaString merges stay
// distinct, and Encode writes a Go string's bytes unchanged.
func TestStringKeepsInvalidUTF8(t *testing.T) {
	a, _ := serde.String.Decode([]byte("id-\xff"))
	b, _ := serde.String.Decode([]byte("id-\xfe"))
	if a != "id-\xff" || b != "id-\xfe" {
		t.Fatalf("String.Decode: %q, %q; want the bytes unchanged", a, b)
	}
	ja, _ := serde.JavaString.Decode([]byte("id-\xff"))
	jb, _ := serde.JavaString.Decode([]byte("id-\xfe"))
	if ja != "id-\uFFFD" || jb != ja {
		t.Fatalf("JavaString.Decode: %q, %q; want both %q", ja, jb, "id-\uFFFD")
	}
	enc, err := serde.String.Encode(nil, "a\xed\xa0\x80b")
	if err != nil || !bytes.Equal(enc, []byte("a\xed\xa0\x80b")) {
		t.Fatalf("String.Encode of invalid UTF-8 = % x, %v; want the bytes unchanged", enc, err)
	}
}

// Whatever the bytes, String decodes them to a string holding exactly
// them, and encodes that string back to them.
func FuzzStringLossless(f *testing.F) {
	seeds(f, nil, []byte{}, []byte("a"), []byte{0xff, 0xfe}, []byte{0xed, 0xa0, 0x80}, []byte{0xf0, 0x9f, 0x98}, []byte("\x00\xc0\x80"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := serde.String.Decode(in)
		if err != nil {
			t.Fatalf("Decode(% x): %v", in, err)
		}
		if s != string(in) {
			t.Fatalf("Decode(% x) = %q, want the bytes unchanged", in, s)
		}
		enc, err := serde.String.Encode(nil, s)
		if err != nil || string(enc) != string(in) {
			t.Fatalf("Encode(Decode(% x)) = % x, %v", in, enc, err)
		}
	})
}

// StrictString refuses invalid UTF-8 both ways, saying where, and keeps
// valid UTF-8 unchanged.
func TestStrictStringRefusesInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		in     string
		offset int
	}{
		{"\xff", 0},
		{"id-\xfe", 3},
		{"h\u00e9\xc3", 3},            // truncated two-byte sequence
		{"ab\xed\xa0\x80", 2},         // an encoded surrogate
		{"\u4e16\xf4\x90\x80\x80", 3}, // above U+10FFFF
		{"ok\xc0\x80", 2},             // overlong NUL
	} {
		_, err := serde.StrictString.Decode([]byte(tc.in))
		var de *serde.DecodeError
		var ue *serde.InvalidUTF8Error
		if !errors.As(err, &de) || !errors.As(err, &ue) || ue.Offset != tc.offset || de.Len != len(tc.in) || de.Serde != "strictstring" {
			t.Errorf("Decode(%q): %v; want a *DecodeError of strictstring with an *InvalidUTF8Error at byte %d", tc.in, err, tc.offset)
		}
		dst := []byte("pre")
		enc, err := serde.StrictString.Encode(dst, tc.in)
		ue = nil
		if !errors.As(err, &ue) || ue.Offset != tc.offset || string(enc) != "pre" {
			t.Errorf("Encode(%q) = %q, %v; want an *InvalidUTF8Error at byte %d and dst unchanged", tc.in, enc, err, tc.offset)
		}
	}
	_, err := serde.StrictString.Decode([]byte("id-\xfe"))
	if want := "sluice: serde strictstring: cannot decode 4 bytes: invalid UTF-8 at byte 3"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if _, err := serde.StrictString.Encode(nil, "id-\xfe"); err == nil || err.Error() != "sluice: serde strictstring: cannot encode 4 bytes: invalid UTF-8 at byte 3" {
		t.Errorf("Encode error %v", err)
	}
	for _, v := range []string{"", "a", "h\u00e9llo, \u4e16\u754c \U0001F30A", "\uFFFD", "nul\x00"} {
		got, err := serde.StrictString.Decode([]byte(v))
		enc, err2 := serde.StrictString.Encode(nil, v)
		if err != nil || err2 != nil || got != v || string(enc) != v {
			t.Errorf("valid %q: Decode = %q, %v; Encode = %q, %v", v, got, err, enc, err2)
		}
	}
}
