package state_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/sluicehq/sluice/state"
)

// diskFault is an error-injecting file system (Pebble's errorfs) over the
// OS's: while on, every operation of the kinds it fails returns ENOSPC, as
// a full disk does.
type diskFault struct {
	on       atomic.Bool
	injected atomic.Int64
	fail     func(errorfs.OpKind) bool
}

func (d *diskFault) fs() vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !d.on.Load() || !d.fail(op.Kind) {
			return nil
		}
		d.injected.Add(1)
		return &os.PathError{Op: fmt.Sprint(op.Kind), Path: op.Path, Err: syscall.ENOSPC}
	}))
}

func dumpStore(t *testing.T, kv state.KeyValueStore) string {
	t.Helper()
	var b strings.Builder
	for k, v := range kv.Range(nil, nil) {
		fmt.Fprintf(&b, "%s=%s ", k, v)
	}
	return b.String()
}

// A full disk under a DB's commits: the commit that cannot write (or sync)
// the WAL fails with a FailedError naming the directory, whose cause is
// ENOSPC (Pebble itself gives up: it calls its logger's Fatalf, which no
// longer panics out of the caller); every write after fails the same,
// without touching Pebble's broken commit pipeline; Close releases the
// DB. Reopened once the disk has room, the DB holds every commit that
// succeeded, and the failed one whole or not at all.
func TestPebbleDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(errorfs.OpKind) bool
	}{
		{"writes", func(k errorfs.OpKind) bool { return k.ReadOrWrite() == errorfs.OpIsWrite }},
		{"syncs", func(k errorfs.OpKind) bool {
			return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fault := &diskFault{fail: tc.fail}
			fs := fault.fs()
			db, err := state.OpenPebble(dir, state.PebbleOptions{FS: fs, BufferWrites: true})
			if err != nil {
				t.Fatal(err)
			}
			kv := db.KeyValueStore("counts")
			for i := range 10 {
				if err := kv.Put(fmt.Appendf(nil, "k%d", i), []byte("1")); err != nil {
					t.Fatal(err)
				}
				if err := db.PutPendingMeta([]byte("offset"), fmt.Appendf(nil, "%d", i)); err != nil {
					t.Fatal(err)
				}
				if err := db.Commit(true); err != nil {
					t.Fatal(err)
				}
			}
			want := dumpStore(t, kv)

			fault.on.Store(true)
			if err := kv.Put([]byte("k0"), []byte("2")); err != nil { // buffered: no I/O yet
				t.Fatal(err)
			}
			if err := db.PutPendingMeta([]byte("offset"), []byte("10")); err != nil {
				t.Fatal(err)
			}
			err = db.Commit(true)
			var failed *state.FailedError
			if !errors.As(err, &failed) || failed.Dir != dir || !errors.Is(err, syscall.ENOSPC) ||
				!strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("commit on a full disk: %v (%T)", err, err)
			}
			if fault.injected.Load() == 0 {
				t.Fatal("no fault injected")
			}
			// The fault is gone, the DB is not usable any more.
			fault.on.Store(false)
			if err := db.Commit(true); !errors.As(err, &failed) {
				t.Fatalf("commit after the failure: %v", err)
			}
			if err := db.PutMeta([]byte("x"), []byte("y")); !errors.As(err, &failed) {
				t.Fatalf("put meta after the failure: %v", err)
			}
			if err := db.Flush(); !errors.As(err, &failed) {
				t.Fatalf("flush after the failure: %v", err)
			}
			// Buffered writes too: the pending batch is the one whose
			// commit failed, which Pebble would panic on.
			if err := db.PutPendingMeta([]byte("offset"), []byte("11")); !errors.As(err, &failed) {
				t.Fatalf("put pending meta after the failure: %v", err)
			}
			if err := kv.Put([]byte("k1"), []byte("2")); !errors.As(err, &failed) {
				t.Fatalf("store put after the failure: %v", err)
			}
			if v, ok, err := kv.Get([]byte("k1")); err != nil || !ok || string(v) != "1" {
				t.Fatalf("store get after the failure: %q, %v, %v", v, ok, err)
			}
			if err := db.Close(); err != nil && !strings.Contains(err.Error(), dir) {
				t.Fatalf("close: %v", err)
			}

			db, err = state.OpenPebble(dir, state.PebbleOptions{FS: fs, BufferWrites: true})
			if err != nil {
				t.Fatalf("reopen after the fault: %v", err)
			}
			defer db.Close()
			// The failed commit is there whole (its WAL write reached the
			// file, the sync did not report it) or not at all: the data
			// and the meta record that describes it agree.
			got := dumpStore(t, db.KeyValueStore("counts"))
			off, _, err := db.GetMeta([]byte("offset"))
			if err != nil {
				t.Fatal(err)
			}
			whole := strings.Replace(want, "k0=1", "k0=2", 1)
			if !(got == want && string(off) == "9") && !(got == whole && string(off) == "10") {
				t.Errorf("after the fault: %s with offset %s; want %s with 9, or %s with 10", got, off, want, whole)
			}
			t.Logf("failed commit kept: %v", string(off) == "10")
			// And it takes writes again.
			kv = db.KeyValueStore("counts")
			if err := kv.Put([]byte("k0"), []byte("2")); err != nil {
				t.Fatal(err)
			}
			if err := db.Commit(true); err != nil {
				t.Fatalf("commit after reopening: %v", err)
			}
		})
	}
}

// A DB directory that cannot be created or written (a read-only file
// system, no permission: the same refusal, injected, since the tests run
// as root, whom permissions do not stop) fails OpenPebble with an error
// naming the directory.
func TestPebbleOpenReadOnly(t *testing.T) {
	dir := t.TempDir() + "/db"
	fault := &diskFault{fail: func(k errorfs.OpKind) bool { return k.ReadOrWrite() == errorfs.OpIsWrite }}
	fault.on.Store(true)
	_, err := state.OpenPebble(dir, state.PebbleOptions{FS: fault.fs()})
	if err == nil || !strings.Contains(err.Error(), dir) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("open on a refusing file system: %v", err)
	}
}
