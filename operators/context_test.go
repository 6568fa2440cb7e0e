package operators

import "testing"

// taskContext stands for a task's Context; only TaskID is called.
type taskContext struct{ Context }

func (taskContext) TaskID() string { return "0_1" }

// A user processor's context gives the task's ProcessingContext and
// Forward, and nothing of the Context's hooks: not even a type assertion
// reaches StampRecord, Collector or RecordDropped.
func TestUserProcessorContextHidesTaskHooks(t *testing.T) {
	var got ProcessorContext[string, int]
	p := &ProcessorFuncs[string, int, string, int]{InitFunc: func(ctx ProcessorContext[string, int]) error {
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
		t.Error("the user processor's context is an operators.Context")
	}
	if _, ok := got.(interface{ RecordDropped(node, reason string) }); ok {
		t.Error("the user processor's context has RecordDropped")
	}
}

func TestMaybe(t *testing.T) {
	if v, ok := None[int]().Get(); ok || v != 0 {
		t.Errorf("None.Get = %v, %v", v, ok)
	}
	if v, ok := Some(0).Get(); !ok || v != 0 {
		t.Errorf("Some(0).Get = %v, %v: a present zero is present", v, ok)
	}
	var zero Maybe[string]
	if zero.Present() || zero.String() != "<absent>" || zero.Or("d") != "d" || Some("x").Or("d") != "x" {
		t.Errorf("zero Maybe: Present %v, String %q", zero.Present(), zero.String())
	}
	r := Record[string, int]{NullKey: true, Value: 3}
	if r.MaybeKey().Present() || r.MaybeValue() != Some(3) {
		t.Errorf("MaybeKey %v, MaybeValue %v", r.MaybeKey(), r.MaybeValue())
	}
	r.SetKey(Some("k"))
	r.SetValue(None[int]())
	if r.NullKey || r.Key != "k" || !r.Tombstone || r.Value != 0 {
		t.Errorf("after SetKey(Some), SetValue(None): %+v", r)
	}
	c := Change[int]{New: 1, HasNew: true}
	if c.NewMaybe() != Some(1) || c.OldMaybe().Present() {
		t.Errorf("NewMaybe %v, OldMaybe %v", c.NewMaybe(), c.OldMaybe())
	}
}
