package nodes

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// The outer join store's lists round-trip: what add writes, splitValueList
// reads back entry by entry (side byte ‖ value), and any bytes at all
// either split or fail, never panic.
func FuzzSplitValueList(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 2, 1, 'A'}, []byte("B"), true)
	f.Add([]byte{}, []byte(""), false)
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, []byte("x"), true)
	f.Fuzz(func(t *testing.T, raw, v []byte, left bool) {
		if entries, err := splitValueList(raw); err == nil {
			for _, e := range entries {
				if len(e) > len(raw) {
					t.Fatalf("entry of %d bytes from %d", len(e), len(raw))
				}
			}
		}
		s := &outerJoinStore{name: "shared", kv: state.NewInMemoryKeyValueStore("shared")}
		for i := range 3 {
			if err := s.add(7, left, []byte("k"), v); err != nil {
				t.Fatal(err)
			}
			b, ok, err := s.kv.Get(AppendOuterJoinKey(nil, 7, left, []byte("k")))
			if err != nil || !ok {
				t.Fatalf("get: %v %v", ok, err)
			}
			entries, err := splitValueList(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != i+1 {
				t.Fatalf("%d entries after %d adds", len(entries), i+1)
			}
			side := byte(0)
			if left {
				side = 1
			}
			for _, e := range entries {
				if e[0] != side || !bytes.Equal(e[1:], v) {
					t.Fatalf("entry %x, want side %d and %x", e, side, v)
				}
			}
		}
		ts, l, k, err := splitOuterJoinKey(AppendOuterJoinKey(nil, 7, left, []byte("k")))
		if err != nil || ts != 7 || l != left || string(k) != "k" {
			t.Fatalf("key: %d %v %q %v", ts, l, k, err)
		}
	})
}
