package task

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

// dropReason tells invalid UTF-8 apart only for deserialization failures,
// however deep the *serde.InvalidUTF8Error is wrapped.
func TestDropReason(t *testing.T) {
	_, strictErr := serde.StrictString.Decode([]byte("a\xff"))
	_, jsonErr := serde.JSON[map[string]string]().Decode([]byte("{\"a\":\"\xff\"}"))
	_, int64Err := serde.Int64.Decode([]byte{1})
	_, encErr := serde.StrictString.Encode(nil, "a\xff")
	deser := func(err error) error {
		return &operators.DeserializationError{Node: "src", Topic: "in", Part: "key", Err: err}
	}
	for _, tc := range []struct {
		kind operators.ErrorKind
		err  error
		want string
	}{
		{operators.DeserializationFailure, deser(strictErr), "invalid-utf8"},
		{operators.DeserializationFailure, fmt.Errorf("wrapped: %w", deser(jsonErr)), "invalid-utf8"},
		{operators.DeserializationFailure, deser(int64Err), "deserialization-error"},
		{operators.DeserializationFailure, errors.New("other"), "deserialization-error"},
		{operators.ProductionFailure, encErr, "production-error"},
		{operators.ProcessingFailure, strictErr, "processing-error"},
	} {
		if got := dropReason(tc.kind, tc.err); got != tc.want {
			t.Errorf("dropReason(%v, %v) = %q, want %q", tc.kind, tc.err, got, tc.want)
		}
	}
}
