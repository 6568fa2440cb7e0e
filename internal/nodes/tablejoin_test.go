package nodes

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/operators"
)

// rows is a ValueGetter over a map: key → value@ts.
type rows map[string]struct {
	v  string
	ts int64
}

func (r rows) Get(k string) (string, int64, bool, error) {
	row, ok := r[k]
	return row.v, row.ts, ok, nil
}

func joinStrings(_ string, v, o operators.Maybe[string]) string {
	return v.Or("null") + "+" + o.Or("null")
}

// The getter of a join result that is not materialized computes the row
// as Kafka Streams' KTableKTable{Inner,Left,Outer}JoinValueGetter: present
// where the join has a row, stamped with the later of the rows joined.
func TestTableJoinGetter(t *testing.T) {
	this := rows{"both": {"A", 5}, "this": {"B", 7}}
	other := rows{"both": {"X", 9}, "other": {"Y", 3}}
	want := map[string]map[string]string{
		"inner": {"both": "A+X@9", "this": "absent", "other": "absent", "none": "absent"},
		"left":  {"both": "A+X@9", "this": "B+null@7", "other": "absent", "none": "absent"},
		"outer": {"both": "A+X@9", "this": "B+null@7", "other": "null+Y@3", "none": "absent"},
	}
	for kind, keys := range want {
		open := TableJoinGetter(
			func(Context) (ValueGetter[string, string], error) { return this, nil },
			func(Context) (ValueGetter[string, string], error) { return other, nil },
			kind == "left", kind == "outer", joinStrings)
		g, err := open(nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range keys {
			v, ts, ok, err := g.Get(k)
			got := "absent"
			if ok {
				got = fmt.Sprintf("%s@%d", v, ts)
			}
			if err != nil || got != w {
				t.Errorf("%s join getter, key %s: %s, %v; want %s", kind, k, got, err, w)
			}
		}
	}
}

// The chained getters of a filter and a mapValues read through to their
// parent and keep its timestamp.
func TestFilterAndMapValuesGetters(t *testing.T) {
	parent := rows{"a": {"keep", 4}, "b": {"drop", 6}}
	g := MapValuesGetter(FilterGetter[string, string](parent, func(_, v string) bool { return v == "keep" }, true),
		func(v string) int { return len(v) })
	for k, w := range map[string]string{"a": "4@4", "b": "absent", "c": "absent"} {
		v, ts, ok, err := g.Get(k)
		got := "absent"
		if ok {
			got = fmt.Sprintf("%d@%d", v, ts)
		}
		if err != nil || got != w {
			t.Errorf("key %s: %s, %v; want %s", k, got, err, w)
		}
	}
}

// droppedCounter is the part of a Context a join's processor uses when it
// drops a record; the embedded Context is nil, so any other call panics.
type droppedCounter struct {
	Context
	dropped map[string]int
}

func (c *droppedCounter) RecordDropped(node, reason string) { c.dropped[node+" "+reason]++ }

type collect[K, V any] struct{ got []operators.Record[K, V] }

func (c *collect[K, V]) Process(r operators.Record[K, V]) error {
	c.got = append(c.got, r)
	return nil
}

// Ports shouldLogAndMeterSkippedRecordsDueToNullLeftKey of
// KTableKTable{Inner,Left,Outer}JoinTest: an update with a null key is
// dropped and counted ("null-key") by every side's processor, whatever the
// other table holds.
func TestTableJoinDropsNullKey(t *testing.T) {
	for _, side := range []TableJoinSide{InnerSide, LeftSide, RightSide, OuterSide} {
		ctx := &droppedCounter{dropped: map[string]int{}}
		next := &collect[string, operators.Change[string]]{}
		p, err := TableJoin(ctx, "join", side, func(Context) (ValueGetter[string, string], error) { return rows{"": {"X", 1}}, nil },
			joinStrings, next)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Process(operators.Record[string, operators.Change[string]]{NullKey: true,
			Value: operators.Change[string]{New: "new", HasNew: true, Old: "old", HasOld: true}}); err != nil {
			t.Fatal(err)
		}
		if ctx.dropped["join null-key"] != 1 || len(next.got) != 0 {
			t.Errorf("side %d: dropped %v, forwarded %v; want one null-key drop and nothing forwarded", side, ctx.dropped, next.got)
		}
	}
}
