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

// String reads invalid UTF-8 as Kafka's StringDeserializer does (Java
// replaces each malformed sequence by U+FFFD): testdata/utf8/
// java-string-deserializer holds what Kafka 4.3.1's StringSerializer
// writes for what its StringDeserializer reads from each input (made by
// testdata/utf8/oracle/Utf8Oracle.java). Decode must give that string, and
// Encode of the raw (invalid) Go string the same bytes.
func TestStringDecodesInvalidUTF8AsJava(t *testing.T) {
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
		got, err := serde.String.Decode(inb)
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		if got != string(want) {
			t.Errorf("Decode(%s) = %x, Java reads %s", in, got, out)
		}
		enc, err := serde.String.Encode(nil, string(inb))
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

// Whatever the input, String decodes it to valid UTF-8, valid input
// unchanged, and decoding is idempotent.
func FuzzStringUTF8(f *testing.F) {
	seeds(f, nil, []byte("a"), []byte{0xed, 0xa0, 0x80}, []byte{0xf4, 0x90, 0x80, 0x80}, []byte{0xe0, 0x80}, []byte{0xf0, 0x9f, 0x98})
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := serde.String.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(% x) = %q, not valid UTF-8", in, s)
		}
		if utf8.Valid(in) && s != string(in) {
			t.Fatalf("Decode(% x) = %q changed valid UTF-8", in, s)
		}
		if again, _ := serde.String.Decode([]byte(s)); again != s {
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
