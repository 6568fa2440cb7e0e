package testdriver_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// strictPipeline is "in" (StrictString keys, Int64 values) → src → sink
// "out" with StrictString keys; keyFn may rewrite the key on the way.
func strictPipeline(t *testing.T, keyFn func(string) string, opts ...testdriver.Option) *testdriver.Driver {
	t.Helper()
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.StrictString, serde.Int64, dsl.Named("src"))
	dsl.Map(s, func(k string, v int64) (string, int64) { return keyFn(k), v }, dsl.Named("rekey")).
		To("out", serde.StrictString, serde.Int64, dsl.Named("sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// A key that is not valid UTF-8, read with StrictString keys under a
// handler that continues: the record is dropped and counted as
// "invalid-utf8" (not "deserialization-error"), and the good records
// around it are processed.
func TestStrictStringInvalidUTF8Counted(t *testing.T) {
	d := strictPipeline(t, func(k string) string { return k }, testdriver.OnDeserializationError(operators.LogAndContinue))
	in := testdriver.CreateInputTopic(d, "in", serde.Bytes, serde.Int64)
	for i, k := range []string{"a", "id-\xfe", "b"} {
		if err := in.PipeAt([]byte(k), int64(i+1), int64(i+1)); err != nil {
			t.Fatalf("pipe %q: %v", k, err)
		}
	}
	equal(t, "out", readOut(t, d), []string{"a=1", "b=3"})
	if n := d.DroppedRecords("src", "invalid-utf8"); n != 1 {
		t.Errorf("dropped invalid-utf8 at src: %d, want 1", n)
	}
	if n := d.DroppedRecords("src", "deserialization-error"); n != 0 {
		t.Errorf("dropped deserialization-error at src: %d, want 0 (the cause is invalid UTF-8)", n)
	}
	// Another deserialization failure keeps its reason.
	vin := testdriver.CreateInputTopic(d, "in", serde.String, serde.Bytes)
	if err := vin.PipeAt("c", []byte{1, 2, 3}, 4); err != nil {
		t.Fatal(err)
	}
	if n := d.DroppedRecords("src", "deserialization-error"); n != 1 {
		t.Errorf("dropped deserialization-error at src after a 3-byte Int64: %d, want 1", n)
	}
}

// Without a handler, the task fails with the DecodeError, naming the
// record, and the offset of the invalid byte.
func TestStrictStringInvalidUTF8Fails(t *testing.T) {
	d := strictPipeline(t, func(k string) string { return k })
	in := testdriver.CreateInputTopic(d, "in", serde.Bytes, serde.Int64)
	err := in.PipeAt([]byte("id-\xfe"), 1, 1)
	var ue *serde.InvalidUTF8Error
	var ne *operators.NodeError
	if !errors.As(err, &ue) || ue.Offset != 3 || !errors.As(err, &ne) || ne.Node != "src" || ne.Topic != "in" {
		t.Fatalf("pipe of an invalid UTF-8 key: %v; want a NodeError at src, topic in, with an *InvalidUTF8Error at byte 3", err)
	}
}

// Dead-lettered, the record is written as read and counted "dead-letter",
// as any dead-lettered record.
func TestStrictStringInvalidUTF8DeadLettered(t *testing.T) {
	d := strictPipeline(t, func(k string) string { return k },
		testdriver.OnDeserializationError(operators.SendToDeadLetterQueue), testdriver.WithDeadLetterQueue("dlq"))
	in := testdriver.CreateInputTopic(d, "in", serde.Bytes, serde.Int64)
	for i, k := range []string{"a", "id-\xfe", "b"} {
		if err := in.PipeAt([]byte(k), int64(i+1), int64(i+1)); err != nil {
			t.Fatalf("pipe %q: %v", k, err)
		}
	}
	equal(t, "out", readOut(t, d), []string{"a=1", "b=3"})
	dl := readDLQ(t, d, "dlq")
	if len(dl) != 1 || string(dl[0].Key) != "id-\xfe" {
		t.Fatalf("dead-letter records %v, want the one with key %q", dl, "id-\xfe")
	}
	if n := d.DroppedRecords("src", "dead-letter"); n != 1 {
		t.Errorf("dropped dead-letter at src: %d, want 1", n)
	}
}

// A sink with StrictString keys refuses to write a Go string that is not
// valid UTF-8: a serialization error, for the production handler.
func TestStrictStringSinkRefusesInvalidUTF8(t *testing.T) {
	d := strictPipeline(t, func(k string) string {
		if k == "x" {
			return "x\xff"
		}
		return k
	}, testdriver.OnProductionError(operators.LogAndContinue))
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
	for i, k := range []string{"a", "x", "b"} {
		if err := in.PipeAt(k, int64(i+1), int64(i+1)); err != nil {
			t.Fatalf("pipe %q: %v", k, err)
		}
	}
	equal(t, "out", readOut(t, d), []string{"a=1", "b=3"})
	if n := d.DroppedRecords("sink", "production-error"); n != 1 {
		t.Errorf("dropped production-error at sink: %d, want 1", n)
	}
	d2 := strictPipeline(t, func(string) string { return "x\xff" })
	err := testdriver.CreateInputTopic(d2, "in", serde.String, serde.Int64).PipeAt("x", 1, 1)
	var se *operators.SerializationError
	var ue *serde.InvalidUTF8Error
	if !errors.As(err, &se) || !errors.As(err, &ue) || ue.Offset != 1 {
		t.Fatalf("sink write of %q without a handler: %v; want a SerializationError with an *InvalidUTF8Error at byte 1", "x\xff", err)
	}
}
