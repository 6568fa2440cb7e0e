package state

import (
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestCheckpointRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	if err := fs.MkdirAll("task", 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]int64{{"app-counts-changelog", 3}: 1234, {"app-other-changelog", 3}: 0}
	if err := WriteCheckpoint(fs, "task/.checkpoint", want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(fs, "task/.checkpoint")
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("read %v, %v; want %v", got, err, want)
	}
	f, _ := fs.Open("task/.checkpoint")
	buf := make([]byte, 200)
	n, _ := f.Read(buf)
	f.Close()
	if s := string(buf[:n]); s != "0\n2\napp-counts-changelog 3 1234\napp-other-changelog 3 0\n" {
		t.Errorf("file is %q, not Kafka Streams' layout", s)
	}
}

func TestCheckpointMissingAndMalformed(t *testing.T) {
	fs := vfs.NewMem()
	got, err := ReadCheckpoint(fs, "none")
	if err != nil || len(got) != 0 {
		t.Errorf("missing file: %v, %v", got, err)
	}
	for _, body := range []string{"", "1\n0\n", "0\n2\nt 0 1\n", "0\n1\nt x 1\n", "0\n1\nt 0\n"} {
		f, _ := fs.Create("bad", vfs.WriteCategoryUnspecified)
		f.Write([]byte(body))
		f.Close()
		if _, err := ReadCheckpoint(fs, "bad"); err == nil || !strings.Contains(err.Error(), "checkpoint bad") {
			t.Errorf("checkpoint %q: err = %v, want one naming the file", body, err)
		}
	}
}

// A crash after a checkpoint write returned keeps the new checkpoint; a
// crash in the middle of a write keeps the old one.
func TestCheckpointCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	_ = fs.MkdirAll("task", 0o755)
	if d, err := fs.OpenDir(""); err == nil {
		d.Sync()
		d.Close()
	}
	if d, err := fs.OpenDir("task"); err == nil {
		d.Sync()
		d.Close()
	}
	first := map[TopicPartition]int64{{"c", 0}: 10}
	if err := WriteCheckpoint(fs, "task/.checkpoint", first); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	got, err := ReadCheckpoint(crashed, "task/.checkpoint")
	if err != nil || !maps.Equal(got, first) {
		t.Fatalf("after crash: %v, %v; want %v", got, err, first)
	}
}

func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrStateDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v, want ErrStateDirLocked naming %s", err, dir)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
	l2.Unlock()
}

// A checkpoint whose line is longer than a bufio.Scanner's default limit
// (64 KiB: a long topic name) reads back, and partitions are written in
// numeric order, negative ones included.
func TestCheckpointLongLineAndPartitionOrder(t *testing.T) {
	fs := vfs.NewMem()
	long := strings.Repeat("t", 70_000)
	want := map[TopicPartition]int64{{long, 1}: 7, {"a", 2}: 1, {"a", -2147483648}: 2, {"a", 2147483647}: 3}
	if err := WriteCheckpoint(fs, ".checkpoint", want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(fs, ".checkpoint")
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("read %d entries, %v; want %d", len(got), err, len(want))
	}
	f, err := fs.Open(".checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	if s := string(buf[:n]); !strings.HasPrefix(s, "0\n4\na -2147483648 2\na 2 1\na 2147483647 3\n") {
		t.Errorf("file starts %q, not in partition order", s)
	}
}
