package state_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// With BufferWrites, an iteration over a store sees the store as of
// its start (PebbleDB.KeyValueStore's documentation), whatever the loop
// body writes to the pending batch: puts, deletes and range deletions, of
// keys before and after the iterator's position; and Get in the loop body
// sees those writes. Committed and pending entries mixed.
func TestPebbleBufferedIterationIsPointInTime(t *testing.T) {
	db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{BufferWrites: true})
	s := db.KeyValueStore("s")
	var want []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		want = append(want, k)
		mustPut(t, s, k, "v"+k)
		if i == 9 {
			if err := db.Commit(true); err != nil {
				t.Fatal(err)
			}
		}
	}
	rd := s.(state.RangeDeleter)
	var got []string
	for k, v := range s.Range(nil, nil) {
		got = append(got, string(k))
		if string(v) != "v"+string(k) {
			t.Errorf("value of %s = %q, want %q", k, v, "v"+string(k))
		}
		switch string(k) {
		case "k03":
			mustPut(t, s, "k05", "changed")
			if err := s.Delete([]byte("k12")); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "k055", "new")
			if g := getString(t, s, "k05"); g != "changed" {
				t.Errorf("Get(k05) in the loop = %q, want changed", g)
			}
		case "k08":
			if err := rd.DeleteRange([]byte("k14"), []byte("k18")); err != nil {
				t.Fatal(err)
			}
			if g := getString(t, s, "k15"); g != "<absent>" {
				t.Errorf("Get(k15) after DeleteRange = %q, want absent", g)
			}
		}
	}
	// k05's value is checked above as of the start: "vk05".
	if !slices.Equal(got, want) {
		t.Errorf("iteration with writes in the loop yielded %v, want %v", got, want)
	}
	if err := db.Commit(true); err != nil {
		t.Fatal(err)
	}
	if got := joinedKeys(t, s); got != "k00,k01,k02,k03,k04,k05,k055,k06,k07,k08,k09,k10,k11,k13,k18,k19" {
		t.Errorf("keys after commit = %s", got)
	}
}
