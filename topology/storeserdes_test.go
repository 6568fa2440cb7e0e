package topology_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

type userID string

// A key in a URL path is decoded by the key type: strings as they are,
// numbers in decimal, bytes in base64, other types as JSON text; the
// result is the key serde's encoding.
func TestStoreSerdesParseKey(t *testing.T) {
	for _, tc := range []struct {
		s      topology.StoreSerdes
		text   string
		format string
		want   []byte
		err    string
	}{
		{s: topology.NewStoreSerdes(serde.String, serde.Int64), text: "a b/é", format: "string", want: []byte("a b/é")},
		{s: topology.NewStoreSerdes(serde.Int64, serde.Int64), text: "258", format: "int64", want: []byte{0, 0, 0, 0, 0, 0, 1, 2}},
		{s: topology.NewStoreSerdes(serde.Int64, serde.Int64), text: "x1", format: "int64", err: `key "x1" is not a int64 key`},
		{s: topology.NewStoreSerdes(serde.Int32, serde.Int64), text: "-1", format: "int32", want: []byte{0xff, 0xff, 0xff, 0xff}},
		{s: topology.NewStoreSerdes(serde.Int32, serde.Int64), text: "4294967296", format: "int32", err: "out of range"},
		{s: topology.NewStoreSerdes(serde.Float64, serde.Int64), text: "0.5", format: "float64", want: []byte{0x3f, 0xe0, 0, 0, 0, 0, 0, 0}},
		{s: topology.NewStoreSerdes(serde.Bytes, serde.Int64), text: "AQI=", format: "bytes", want: []byte{1, 2}},
		{s: topology.NewStoreSerdes(serde.JSON[point](), serde.Int64), text: `{"x":1,"y":2}`, format: "json", want: []byte(`{"x":1,"y":2}`)},
		{s: topology.NewStoreSerdes(serde.JSON[point](), serde.Int64), text: `{"x":`, format: "json", err: "is not a json key"},
		{s: topology.NewStoreSerdes(serde.JSON[userID](), serde.Int64), text: "u1", format: "string", want: []byte(`"u1"`)},
	} {
		if f := tc.s.KeyFormat(); f != tc.format {
			t.Errorf("%T: KeyFormat %q, want %q", tc.s.KeySerde(), f, tc.format)
		}
		got, err := tc.s.ParseKey(tc.text)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseKey(%q) = %x, %v; want an error saying %q", tc.text, got, err, tc.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(bytes.TrimSpace(got), tc.want) {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", tc.text, got, err, tc.want)
		}
	}
	if topology.NewStoreSerdes[string, int64](nil, serde.Int64) != nil {
		t.Error("NewStoreSerdes without a key serde is not nil")
	}
	s := topology.NewStoreSerdes(serde.String, serde.JSON[point]())
	if v, err := s.ValueJSON([]byte(`{"x":3,"y":4}`)); err != nil || v.(point) != (point{3, 4}) {
		t.Errorf("ValueJSON = %v, %v", v, err)
	}
	if k, err := s.KeyJSON([]byte("k")); err != nil || k.(string) != "k" {
		t.Errorf("KeyJSON = %v, %v", k, err)
	}
}
