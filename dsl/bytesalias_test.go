package dsl_test

import (
	"maps"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// serde.Bytes decodes without copying, so a table's old value read from
// its store aliases the store's value buffer, and TableSource writes the
// new value before it forwards Change{New, Old}. Old must still be the old
// value when it arrives, or a regrouped count retracts the row from the
// wrong group. The driver runs without a record cache, as the runtime does
// with DisableCaching or CacheMaxBytes 0: the case where the store's buffer
// is written in place.
func TestTableOldValueWithBytesSerde(t *testing.T) {
	b := dsl.NewBuilder()
	tbl := dsl.TableFromTopic(b, "rows", serde.String, serde.Bytes)
	dsl.TableGroupBy(tbl, func(_ string, v []byte) (dsl.Maybe[string], []byte) { return dsl.Some(string(v[:1])), v }, serde.String, serde.Bytes).
		Count().ToStream().To("counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "rows", serde.String, serde.Bytes)
	if err := in.Pipe("A", []byte("x1")); err != nil {
		t.Fatal(err)
	}
	if err := in.Pipe("A", []byte("y1")); err != nil {
		t.Fatal(err)
	}
	got, err := testdriver.ReadKeyValuesToMap(testdriver.CreateOutputTopic(d, "counts", serde.String, serde.Int64))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"x": 0, "y": 1}
	if !maps.Equal(got, want) {
		t.Errorf("group counts = %v, want %v (row A moved from group x to y)", got, want)
	}
}
