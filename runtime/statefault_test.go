package runtime_test

// State directory faults: a full disk under a task's store mid-run, a
// read-only state directory at start-up. Run fails with an error naming
// the path and what failed; once the fault is gone, a restart on the same
// state directory finds no corrupt state and counts exactly.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/topology"
)

// stateFault is an error-injecting file system (Pebble's errorfs) over the
// OS's for an App's local state (runtime.SetStateFS): while on, the
// operations it fails return err, for the paths under dir.
type stateFault struct {
	dir      string
	err      syscall.Errno
	on       atomic.Bool
	injected atomic.Int64
	fail     func(errorfs.OpKind) bool
}

func (f *stateFault) fs() vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !f.on.Load() || !f.fail(op.Kind) || !strings.HasPrefix(op.Path, f.dir) {
			return nil
		}
		f.injected.Add(1)
		return &os.PathError{Op: opName(op.Kind), Path: op.Path, Err: f.err}
	}))
}

// opName names an operation as the os package's errors do.
func opName(k errorfs.OpKind) string {
	switch k {
	case errorfs.OpCreate:
		return "open"
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
		return "write"
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFileFlush:
		return "sync"
	case errorfs.OpMkdirAll:
		return "mkdir"
	case errorfs.OpRename:
		return "rename"
	case errorfs.OpRemove, errorfs.OpRemoveAll:
		return "remove"
	case errorfs.OpLink:
		return "link"
	case errorfs.OpLock:
		return "lock"
	case errorfs.OpFileClose:
		return "close"
	case errorfs.OpFilePreallocate:
		return "fallocate"
	}
	return fmt.Sprintf("op %d", k)
}

func writes(k errorfs.OpKind) bool { return k.ReadOrWrite() == errorfs.OpIsWrite }

func syncs(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}

// runApp starts an App on topo with fs as its state's file system (nil:
// the OS's) and returns it with the channel its Run's error arrives on.
func runApp(t *testing.T, topo *topology.Topology, fs vfs.FS, opts ...runtime.Option) (*runtime.App, chan error) {
	t.Helper()
	app, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if fs != nil {
		runtime.SetStateFS(app, fs)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	t.Cleanup(func() { _ = app.Close() })
	return app, done
}

// runErr waits for Run's error.
func runErr(t *testing.T, done chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %v", within)
		return nil
	}
}

// readCommittedCounts reads the latest count per word of topic until done
// holds or the timeout passes, with isolation level read_committed; over
// tells whether any count it read was above want's (a record counted
// twice in the store).
func readCommittedCounts(t *testing.T, c *testCluster, topic string, want map[string]int64, timeout time.Duration) (latest map[string]int64, over []string) {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	latest = map[string]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !equalCounts(want)(latest) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := int64(binary.BigEndian.Uint64(r.Value))
			if v > want[string(r.Key)] {
				over = append(over, fmt.Sprintf("%s=%d (want %d, offset %d)", r.Key, v, want[string(r.Key)], r.Offset))
			}
			latest[string(r.Key)] = v
		})
	}
	return latest, over
}

// The disk of the state directory fills up mid-run (every write and sync
// of the tasks' Pebble DBs and checkpoint files fails with ENOSPC) under a
// count of each input key: Run
// returns an error that names the task's directory and what failed. Once
// there is room again, a restart on the same state directory counts
// exactly: no input lost, none counted twice in the store (no count read,
// under read_committed, is above the true count), under at-least-once
// and exactly-once. (A topology with a repartition topic is not exact
// under at-least-once after a failed commit: the input processed again
// writes its repartition records again, as after a crash; see
// TestKill9AndRestart.)
func TestStateDiskFullMidRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		eos  bool
		fail func(errorfs.OpKind) bool
	}{
		{"at-least-once", false, writes},
		{"exactly-once", true, writes},
		// Only syncs fail: the write of the failing commit reaches the
		// file, and the reopened DB may hold it, ahead of the group's
		// committed offsets.
		{"at-least-once/syncs", false, syncs},
		{"exactly-once/syncs", true, syncs},
	} {
		eos := tc.eos
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			input, output := topic(t, "words"), topic(t, "counts")
			c.create(t, 2, input, output)
			topo, err := keyedCountTopology(input, output)
			if err != nil {
				t.Fatal(err)
			}
			appID := topic(t, "app")
			dir := t.TempDir()
			opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
				runtime.CommitInterval(50 * time.Millisecond)}
			if eos {
				opts = append(opts, runtime.ProcessingGuarantee(runtime.ExactlyOnce))
			}
			fault := &stateFault{dir: dir, err: syscall.ENOSPC, fail: tc.fail}
			want := map[string]int64{}
			produceWords := func(start, n int) {
				var words []string
				for _, l := range lines(start, n, 53, want) {
					words = append(words, strings.Fields(strings.ToLower(l))...)
				}
				c.produceKeys(t, input, words...)
			}

			produceWords(0, 1000)
			_, done := runApp(t, topo, fault.fs(), opts...)
			if got, _ := readCommittedCounts(t, c, output, want, time.Minute); !equalCounts(want)(got) {
				t.Fatalf("before the fault: %s", diffCounts(got, want))
			}

			fault.on.Store(true)
			produceWords(1000, 1000)
			// Under exactly-once the local state applies without a sync and
			// syncs in the background; a failed sync fails the task's next
			// commit, which needs input: a word every 100 ms until Run
			// returns.
			more := 2000
			var runErrV error
			deadline := time.Now().Add(2 * time.Minute)
		wait:
			for {
				select {
				case runErrV = <-done:
					break wait
				case <-time.After(100 * time.Millisecond):
					if time.Now().After(deadline) {
						t.Fatal("Run did not return within 2 minutes of the fault")
					}
					produceWords(more, 1)
					more++
				}
			}
			err = runErrV
			if fault.injected.Load() == 0 {
				t.Fatalf("no fault injected; Run: %v", err)
			}
			appDir := filepath.Join(dir, appID)
			if err == nil || !strings.Contains(err.Error(), appDir) || !strings.Contains(err.Error(), "no space left on device") ||
				!errorsIs(err, syscall.ENOSPC) {
				t.Fatalf("Run on a full disk: %v", err)
			}
			t.Logf("Run on a full disk: %v", err)

			// Room again: a restart on the same state directory.
			fault.on.Store(false)
			produceWords(more, 500)
			app, done := runApp(t, topo, fault.fs(), opts...)
			got, over := readCommittedCounts(t, c, output, want, time.Minute)
			if !equalCounts(want)(got) {
				t.Fatalf("after the fault: %s", diffCounts(got, want))
			}
			if len(over) > 0 {
				t.Errorf("counts above the true count (input counted twice): %v", over)
			}
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			if err := runErr(t, done, time.Minute); err != nil {
				t.Fatalf("Run after the fault: %v", err)
			}
		})
	}
}

// A read-only state directory at start-up. (1) The task directories cannot
// be written (every write of the local state's file system fails with
// EROFS, as on a file system mounted read-only): Run fails naming the
// task's directory; once writable, a restart counts exactly. (2) The
// state directory itself is read-only: Run fails naming it. The tests run
// as root here, whom a chmod does not stop: (2) makes the directory
// immutable (chattr +i) as root, and takes away its write permission
// (chmod 0500) otherwise.
func TestStateDirReadOnlyAtStart(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "lines"), topic(t, "counts")
	c.create(t, 2, input, output)
	topo := wordCount(t, input, output)
	want := map[string]int64{}
	c.produce(t, input, lines(0, 500, 31, want)...)

	t.Run("task directories", func(t *testing.T) {
		appID := topic(t, "app")
		dir := t.TempDir()
		opts := []runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50 * time.Millisecond)}
		fault := &stateFault{dir: dir, err: syscall.EROFS, fail: writes}
		fault.on.Store(true)
		_, done := runApp(t, topo, fault.fs(), opts...)
		err := runErr(t, done, time.Minute)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, appID)) || !errorsIs(err, syscall.EROFS) {
			t.Fatalf("Run on a read-only state directory: %v", err)
		}
		t.Logf("Run on a read-only state directory: %v", err)

		fault.on.Store(false)
		app, done := runApp(t, topo, fault.fs(), opts...)
		if got, _ := readCommittedCounts(t, c, output, want, time.Minute); !equalCounts(want)(got) {
			t.Fatalf("after the fault: %s", diffCounts(got, want))
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		if err := runErr(t, done, time.Minute); err != nil {
			t.Fatalf("Run after the fault: %v", err)
		}
	})

	t.Run("state directory", func(t *testing.T) {
		appID := topic(t, "app")
		dir := t.TempDir()
		appDir := filepath.Join(dir, appID)
		if err := os.Mkdir(appDir, 0o755); err != nil {
			t.Fatal(err)
		}
		readOnly(t, appDir)
		_, done := runApp(t, topo, nil, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir))
		err := runErr(t, done, time.Minute)
		if err == nil || !strings.Contains(err.Error(), appDir) {
			t.Fatalf("Run on a read-only state directory: %v", err)
		}
		t.Logf("Run on a read-only state directory: %v", err)
	})
}

// readOnly makes dir read-only for this process until the test ends: as
// root, immutable (chattr +i: root ignores permissions); otherwise without
// write permission. It checks that a file cannot be created in it.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i %s (needed to make a directory read-only for root): %v: %s", dir, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
				t.Errorf("chattr -i %s: %v: %s", dir, err, out)
			}
		})
	} else {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Fatalf("%s is not read-only", dir)
	}
}

func errorsIs(err error, target error) bool { return errors.Is(err, target) }
