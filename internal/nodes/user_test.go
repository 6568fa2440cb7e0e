package nodes

import (
	"testing"

	"github.com/sluicehq/sluice/operators"
)

// taskContext stands for a task's Context; only TaskID is called.
type taskContext struct{ Context }

func (taskContext) TaskID() string { return "0_1" }

// A user processor's context gives the task's ProcessingContext and
// Forward, and nothing of the Context's hooks: not even a type assertion
// reaches StampRecord, Collector or RecordDropped.
func TestUserProcessorContextHidesTaskHooks(t *testing.T) {
	var got operators.ProcessorContext[string, int]
	p := &operators.ProcessorFuncs[string, int, string, int]{InitFunc: func(ctx operators.ProcessorContext[string, int]) error {
		got = ctx
		return nil
	}}
	if _, err := UserProcessor[string, int, string, int](taskContext{}, "proc", p, discard[string, int]{}); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.TaskID() != "0_1" {
		t.Fatalf("Init got context %v, want one of task 0_1", got)
	}
	if _, ok := got.(Context); ok {
		t.Error("the user processor's context is a nodes.Context")
	}
	if _, ok := got.(interface{ RecordDropped(node, reason string) }); ok {
		t.Error("the user processor's context has RecordDropped")
	}
}
