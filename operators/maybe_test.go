package operators

import "testing"

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
