package runtime

import (
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

// openStateDir locks the instance's state directory and creates the block
// cache its tasks' DBs share. It deletes nothing: stale task state is swept
// by the poll loop once tasks are assigned (sweepStateDirLocked).
func (a *App) openStateDir() error {
	dir := a.cfg.stateDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sluice")
	}
	a.appDir = filepath.Join(dir, a.cfg.appID)
	l, err := state.LockDir(a.appDir)
	if err != nil {
		return err
	}
	a.dirLock = l
	id, err := loadProcessID(a.appDir)
	if err != nil {
		_ = l.Unlock()
		a.dirLock = nil
		return err
	}
	a.processID = id
	a.blockCache = pebble.NewCache(a.cfg.blockCache)
	return nil
}

// fs is the file system of the local state's DBs and checkpoint files:
// vfs.Default unless a test set another (stateFS).
func (a *App) fs() vfs.FS {
	if a.stateFS != nil {
		return a.stateFS
	}
	return vfs.Default
}

// scheduleCleanup deletes the local state of a task that moved away once
// the cleanup delay has passed, unless the task came back meanwhile.
func (a *App) scheduleCleanup(id taskID) {
	dir := filepath.Join(a.appDir, id.String())
	a.cleanupMu.Lock()
	defer a.cleanupMu.Unlock()
	if t := a.cleanups[id]; t != nil {
		t.Stop()
	}
	a.cleanups[id] = time.AfterFunc(a.cfg.cleanupDelay, func() {
		a.cleanupMu.Lock()
		defer a.cleanupMu.Unlock()
		if a.cleanups[id] == nil {
			return // cancelled: the task came back
		}
		delete(a.cleanups, id)
		if a.standbys.has(id) {
			return // kept as a standby here (standby.go)
		}
		if err := os.RemoveAll(dir); err != nil {
			a.log.Warn("delete the state of a task that moved away", "task", id, "dir", dir, "err", err)
			return
		}
		a.offsets.remove(id)
		a.log.Info("deleted the state of a task that moved away", "task", id, "dir", dir)
		a.metrics.cleaned.Inc()
	})
}

// cancelCleanup keeps the state of a task that came back.
func (a *App) cancelCleanup(id taskID) {
	a.cleanupMu.Lock()
	defer a.cleanupMu.Unlock()
	if t := a.cleanups[id]; t != nil {
		t.Stop()
		delete(a.cleanups, id)
	}
}

// stopCleanups stops the pending cleanups at shutdown; the next start
// sweeps what is left (sweepStateDirLocked).
func (a *App) stopCleanups() {
	a.cleanupMu.Lock()
	defer a.cleanupMu.Unlock()
	for id, t := range a.cleanups {
		t.Stop()
		delete(a.cleanups, id)
	}
}

// sweepStateDirLocked deletes the task directories of the state directory
// that belong to no task assigned to this instance and were not modified
// for the cleanup delay: state of tasks that moved away while the instance
// was down (Kafka Streams' state cleaner does the same, while running).
// The poll loop calls it with a.mu held.
func (a *App) sweepStateDirLocked() {
	entries, err := os.ReadDir(a.appDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id, err := parseTaskID(e.Name())
		if err != nil {
			continue
		}
		if _, assigned := a.runners[id]; assigned || a.standbys.has(id) {
			continue // active or standby here (standby.go)
		}
		a.cleanupMu.Lock()
		_, pending := a.cleanups[id]
		a.cleanupMu.Unlock()
		if pending {
			continue // its own timer deletes it
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < a.cfg.cleanupDelay {
			continue
		}
		dir := filepath.Join(a.appDir, e.Name())
		if err := os.RemoveAll(dir); err != nil {
			a.log.Warn("delete stale task state", "dir", dir, "err", err)
			continue
		}
		a.offsets.remove(id)
		a.log.Info("deleted stale task state", "dir", dir)
	}
}
