package serde

import (
	"fmt"
	"unicode/utf8"
)

// javaUTF8 returns b as Java's new String(b, UTF_8) reads it, as a Go
// string: valid UTF-8 unchanged, and every malformed sequence replaced by
// U+FFFD, the same sequences by as many replacement characters as Java's
// decoder (java.lang.String.decodeUTF8_UTF16 with replacement, the decoder
// behind Kafka's StringDeserializer): a byte that cannot start a sequence
// or an unexpected continuation byte by one each, a truncated or
// interrupted sequence by one for the bytes read so far, an encoded
// surrogate (ED A0..BF xx) by one for its three bytes. Valid input, the
// common case, costs one utf8.Valid scan and the copy into the string.
func javaUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	const repl = "\uFFFD"
	out := make([]byte, 0, len(b)+8)
	sp, sl := 0, len(b)
	for sp < sl {
		b1 := b[sp]
		sp++
		switch {
		case b1 < 0x80:
			out = append(out, b1)
		case b1 >= 0xC2 && b1 <= 0xDF: // two bytes
			if sp < sl {
				if notContinuation(b[sp]) {
					out = append(out, repl...) // b[sp] is read again
				} else {
					out = append(out, b1, b[sp])
					sp++
				}
				continue
			}
			out = append(out, repl...)
			sp = sl
		case b1 >= 0xE0 && b1 <= 0xEF: // three bytes
			if sp+1 < sl {
				b2, b3 := b[sp], b[sp+1]
				if malformed3(b1, b2, b3) {
					out = append(out, repl...)
					if (b1 == 0xE0 && b2&0xE0 == 0x80) || notContinuation(b2) {
						// one byte
					} else {
						sp++
					}
					continue
				}
				sp += 2
				if b1 == 0xED && b2 >= 0xA0 { // a surrogate: one for the three
					out = append(out, repl...)
				} else {
					out = append(out, b1, b2, b3)
				}
				continue
			}
			// One byte left, or none: one replacement for what is left,
			// unless the next byte cannot continue b1 (then it is read
			// again).
			out = append(out, repl...)
			if sp < sl && ((b1 == 0xE0 && b[sp]&0xE0 == 0x80) || notContinuation(b[sp])) {
				continue
			}
			sp = sl
		case b1 >= 0xF0 && b1 <= 0xF7: // four bytes
			if sp+2 < sl {
				b2, b3, b4 := b[sp], b[sp+1], b[sp+2]
				uc := rune(b1&0x07)<<18 | rune(b2&0x3F)<<12 | rune(b3&0x3F)<<6 | rune(b4&0x3F)
				if notContinuation(b2) || notContinuation(b3) || notContinuation(b4) || uc < 0x10000 || uc > 0x10FFFF {
					out = append(out, repl...)
					switch {
					case b1 > 0xF4 || (b1 == 0xF0 && (b2 < 0x90 || b2 > 0xBF)) || (b1 == 0xF4 && b2&0xF0 != 0x80) || notContinuation(b2):
					case notContinuation(b3):
						sp++
					default:
						sp += 2
					}
					continue
				}
				out = append(out, b1, b2, b3, b4)
				sp += 3
				continue
			}
			// Two bytes left or fewer (Java's tail handling).
			out = append(out, repl...)
			if b1 > 0xF4 || (sp < sl && malformed4Second(b1, b[sp])) {
				continue
			}
			sp++
			if sp < sl && notContinuation(b[sp]) {
				continue
			}
			sp = sl
		default: // C0, C1, F8..FF, or a continuation byte
			out = append(out, repl...)
		}
	}
	return string(out)
}

func notContinuation(b byte) bool { return b&0xC0 != 0x80 }

func malformed3(b1, b2, b3 byte) bool {
	return (b1 == 0xE0 && b2&0xE0 == 0x80) || notContinuation(b2) || notContinuation(b3)
}

func malformed4Second(b1, b2 byte) bool {
	return (b1 == 0xF0 && (b2 < 0x90 || b2 > 0xBF)) || (b1 == 0xF4 && b2&0xF0 != 0x80) || notContinuation(b2)
}

// JavaString encodes and decodes strings as Kafka's StringSerializer and
// StringDeserializer do with their default UTF-8 encoding, invalid UTF-8
// included: Decode never fails, and replaces each malformed sequence by
// U+FFFD exactly where and as often as Java's decoder does (new
// String(bytes, UTF_8)); Encode of a Go string holding invalid UTF-8 (a Go
// string may, a Java one cannot) writes it with the same replacements. Use
// it where an application must group, join and partition exactly as a
// Kafka Streams application reading the same topic: keys that differ only
// in their invalid bytes become one key, as there ("id-\xff" and "id-\xfe"
// both read as "id-\uFFFD"). The replacement is lossy: what Decode returns
// is not what was read, and a store keyed by String (the raw bytes) does
// not find the same keys. Valid UTF-8 round-trips exactly, costing one
// validity scan. Decode copies its input; nil or empty input decodes to "".
var JavaString Serde[string] = javaStringSerde{}

// StrictString encodes and decodes strings as their bytes, like String, but
// only valid UTF-8: Decode of bytes that are not valid UTF-8 fails with a
// *DecodeError whose cause is an *InvalidUTF8Error giving the offset of the
// first invalid byte (a deserialization error: the task's handler decides,
// and a record it drops is counted with the reason "invalid-utf8"); Encode
// of a Go string that is not valid UTF-8 fails with an error wrapping an
// *InvalidUTF8Error (at a sink, a serialization error for the production
// handler). Valid UTF-8 costs one validity scan. Decode copies its input;
// nil or empty input decodes to "".
var StrictString Serde[string] = strictStringSerde{}

type javaStringSerde struct{}

func (javaStringSerde) Encode(dst []byte, v string) ([]byte, error) {
	if dst == nil && v == "" {
		return []byte{}, nil // an empty array, never a Kafka null
	}
	if utf8.ValidString(v) {
		return append(dst, v...), nil
	}
	return append(dst, javaUTF8([]byte(v))...), nil
}

func (javaStringSerde) Decode(b []byte) (string, error) { return javaUTF8(b), nil }

type strictStringSerde struct{}

func (strictStringSerde) Encode(dst []byte, v string) ([]byte, error) {
	if !utf8.ValidString(v) {
		return dst, fmt.Errorf("sluice: serde strictstring: cannot encode %d bytes: %w", len(v), &InvalidUTF8Error{Offset: invalidUTF8Offset([]byte(v))})
	}
	if dst == nil && v == "" {
		return []byte{}, nil // an empty array, never a Kafka null
	}
	return append(dst, v...), nil
}

func (strictStringSerde) Decode(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", &DecodeError{Serde: "strictstring", Len: len(b), Err: &InvalidUTF8Error{Offset: invalidUTF8Offset(b)}}
	}
	return string(b), nil
}
