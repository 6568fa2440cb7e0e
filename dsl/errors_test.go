package dsl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// The error of a failed record is an *operators.NodeError naming the task,
// the node and the record's topic, partition and offset, whether a user
// processor failed or the source could not decode the record; FailedRecord
// finds it.
func TestFailedRecordError(t *testing.T) {
	boom := errors.New("boom")
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.Int64, dsl.Named("src"))
	dsl.Process(s, func() operators.Processor[string, int64, string, int64] {
		return &operators.ProcessorFuncs[string, int64, string, int64]{
			ProcessFunc: func(ctx operators.ProcessorContext[string, int64], r operators.Record[string, int64]) error {
				if r.Value < 0 {
					return boom
				}
				return ctx.Forward(r)
			},
		}
	}, dsl.Named("check")).To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pipe func(in *testdriver.InputTopic[string, int64]) error
		node string
		is   error
		as   any
		msg  string
	}{
		{"processor error", func(in *testdriver.InputTopic[string, int64]) error { return in.PipeAt("a", -1, 5) },
			"check", boom, nil, "sluice: task 0_0, node check, record at topic in, partition 0, offset 1: boom"},
		{"undecodable value", func(in *testdriver.InputTopic[string, int64]) error { return in.PipeRaw([]byte("a"), []byte("xyz"), 5) },
			"src", nil, new(*operators.DeserializationError), "cannot deserialize the value of the record at topic in, partition 0, offset 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := testdriver.New(topo)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := testdriver.CreateInputTopic(d, "in", serde.String, serde.Int64)
			if err := in.PipeAt("a", 1, 1); err != nil {
				t.Fatal(err)
			}
			err = tc.pipe(in)
			ne, ok := operators.FailedRecord(err)
			if !ok {
				t.Fatalf("error %v: FailedRecord found no record", err)
			}
			if ne.Task != "0_0" || ne.Node != tc.node || ne.Topic != "in" || ne.Partition != 0 || ne.Offset != 1 {
				t.Errorf("NodeError %+v, want task 0_0, node %s, in/0/1", ne, tc.node)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("error %v is not a %T", err, tc.as)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
	if _, ok := operators.FailedRecord(&operators.NodeError{Task: "0_0", Node: "p", Err: boom}); ok {
		t.Error("FailedRecord of a punctuator's error (no record) = ok")
	}
}
