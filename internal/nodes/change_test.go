package nodes

import (
	"testing"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
)

func TestChangeSerdeRoundTrip(t *testing.T) {
	cs := ChangeSerde(serde.String)
	for _, c := range []operators.Change[string]{
		{},
		{New: "n", HasNew: true},
		{Old: "o", HasOld: true},
		{New: "new", HasNew: true, Old: "old", HasOld: true},
		{New: "", HasNew: true, Old: "", HasOld: true},
	} {
		b, err := cs.Encode([]byte("prefix"), c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cs.Decode(b[len("prefix"):])
		if err != nil || got != c {
			t.Errorf("round trip of %+v = %+v, %v", c, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {4}, {1, 9, 'a'}, {0, 'x'}} {
		if _, err := cs.Decode(bad); err == nil {
			t.Errorf("Decode(%v) succeeded", bad)
		}
	}
}

func FuzzChangeSerde(f *testing.F) {
	f.Add([]byte{3, 1, 'a', 'b'})
	f.Add([]byte{1, 0})
	cs := ChangeSerde(serde.String)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := cs.Decode(b)
		if err != nil {
			return
		}
		enc, err := cs.Encode(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := cs.Decode(enc)
		if err != nil || again != c {
			t.Fatalf("re-decode of %+v = %+v, %v", c, again, err)
		}
	})
}
