package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

func oserrorIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// DirLock is an exclusive lock on a state directory, so that two instances
// on one host cannot share it (Kafka Streams locks its state.dir the same
// way). It is an advisory flock on "<dir>/.lock", released on Unlock or when
// the process exits, so a crashed instance does not leave a stale lock.
type DirLock struct {
	f *os.File
}

// ErrStateDirLocked is returned by LockDir for a directory another process
// (or another App in this process) holds.
var ErrStateDirLocked = errors.New("sluice: state directory is in use by another instance")

// LockDir creates dir if needed and locks it.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sluice: state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sluice: state directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrStateDirLocked, dir)
		}
		return nil, fmt.Errorf("sluice: lock state directory %s: %w", dir, err)
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock. It is idempotent.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}
