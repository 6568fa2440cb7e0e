package serde

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// DecodeError reports bytes that a serde could not decode. Decoders in this
// package return a *DecodeError for every failure; find it with errors.As.
type DecodeError struct {
	// Serde names the serde that failed: "int32", "int64", "float64",
	// "strictstring", or "json(T)" with T the Go type being decoded, for
	// example "json(main.Event)".
	Serde string
	// Len is the length in bytes of the input that could not be decoded.
	Len int
	// Err is the cause: for the fixed-width serdes an error saying how many
	// bytes were wanted, for StrictString an *InvalidUTF8Error, for JSON
	// ErrEmptyJSON, an *InvalidUTF8Error or the error from encoding/json.
	Err error
}

// Error returns a message naming the serde, the input length and the cause,
// for example "sluice: serde int64: cannot decode 3 bytes: want 8".
func (e *DecodeError) Error() string {
	unit := " bytes"
	if e.Len == 1 {
		unit = " byte"
	}
	msg := "sluice: serde " + e.Serde + ": cannot decode " + strconv.Itoa(e.Len) + unit
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause, so errors.Is and errors.As see through a
// DecodeError to, for example, a *json.SyntaxError.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrEmptyJSON is the cause (DecodeError.Err) of the failure to decode an
// empty value with a JSON serde: no bytes are no JSON.
var ErrEmptyJSON = errors.New("empty input is not JSON")

// InvalidUTF8Error is the cause (DecodeError.Err) of the failure to decode
// bytes that are not valid UTF-8 with a serde that requires it (JSON,
// StrictString), and of StrictString's failure to encode a Go string that
// is not valid UTF-8. A task counts a record it drops for this cause with
// the reason "invalid-utf8" rather than "deserialization-error".
type InvalidUTF8Error struct {
	// Offset is the position of the first byte of the first invalid
	// sequence.
	Offset int
}

func (e *InvalidUTF8Error) Error() string {
	return "invalid UTF-8 at byte " + strconv.Itoa(e.Offset)
}

// invalidUTF8Offset returns the offset of the first invalid UTF-8 sequence
// of b, or len(b) if there is none.
func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// Causes of length errors, allocated once: the error path of the
// fixed-width decoders then allocates only the *DecodeError itself.
var (
	errWant4 = errors.New("want 4")
	errWant8 = errors.New("want 8")
)
