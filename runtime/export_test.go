package runtime

import "github.com/cockroachdb/pebble/v2/vfs"

// SetCommitHook sets the exactly-once committer's test hook of a (before
// Run): it is called at "offsets" (the offsets are in the transaction,
// which is not committed yet) and "ended" (the transaction is committed,
// the local state not applied yet). An error at "offsets" aborts the
// transaction; at "ended" it fails Run as a crash there would.
func SetCommitHook(a *App, h func(stage string) error) { a.commitHook = h }

// ErrInjected is an error for SetCommitHook's hook to return.
var ErrInjected = errInjected

// SetStateFS makes a (before Run) keep its tasks' and global stores' Pebble
// DBs and checkpoint files in fs instead of the operating system's file
// system: an error-injecting one (Pebble's vfs/errorfs) for the tests of
// a full disk.
func SetStateFS(a *App, fs vfs.FS) { a.stateFS = fs }
