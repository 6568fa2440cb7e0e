package state_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// TestPebbleBufferWrites checks that buffered writes are visible to reads
// and iterations at once, reach the DB only with Commit (with their meta
// records, atomically), and vanish with Discard or a close without commit.
func TestPebbleBufferWrites(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs, "db", state.PebbleOptions{BufferWrites: true})
	s := db.KeyValueStore("s")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	if got := getString(t, s, "a"); got != "1" {
		t.Fatalf("Get(a) before commit = %q, want 1", got)
	}
	if n := db.Pending(); n != 2 {
		t.Fatalf("Pending() = %d, want 2", n)
	}
	if err := db.PutPendingMeta([]byte("pos"), []byte("7")); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.GetMeta([]byte("pos")); ok {
		t.Fatal("pending meta visible in the DB before Commit")
	}
	if err := db.Commit(true); err != nil {
		t.Fatal(err)
	}
	wantMeta(t, db, "pos", "7")
	// Discarded writes are gone; committed ones stay.
	mustPut(t, s, "a", "changed")
	if err := s.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "c", "3")
	if got := joinedKeys(t, s); got != "a,c" {
		t.Fatalf("keys with pending writes = %s, want a,c", got)
	}
	if err := db.Discard(); err != nil {
		t.Fatal(err)
	}
	if got := getString(t, s, "a"); got != "1" {
		t.Fatalf("Get(a) after Discard = %q, want 1", got)
	}
	if got := joinedKeys(t, s); got != "a,b" {
		t.Fatalf("keys after Discard = %s, want a,b", got)
	}
	// Writes not committed before Close are lost; committed ones survive.
	mustPut(t, s, "z", "lost")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openMem(t, fs, "db", state.PebbleOptions{BufferWrites: true})
	s = db.KeyValueStore("s")
	if got := joinedKeys(t, s); got != "a,b" {
		t.Fatalf("keys after reopen = %s, want a,b", got)
	}
	wantMeta(t, db, "pos", "7")
}

func TestPebblePendingMetaNeedsBuffer(t *testing.T) {
	db := openMem(t, vfs.NewMem(), "db", state.PebbleOptions{})
	if err := db.PutPendingMeta([]byte("k"), []byte("v")); err == nil {
		t.Fatal("PutPendingMeta without BufferWrites succeeded")
	}
}

func getString(t *testing.T, s state.KeyValueStore, k string) string {
	t.Helper()
	v, ok, err := s.Get([]byte(k))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<absent>"
	}
	return string(v)
}

func joinedKeys(t *testing.T, s state.KeyValueStore) string {
	t.Helper()
	var out string
	for k := range s.Range(nil, nil) {
		if out != "" {
			out += ","
		}
		out += string(k)
	}
	return out
}
