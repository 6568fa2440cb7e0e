package runtime

// SetCommitHook sets the exactly-once committer's test hook of a (before
// Run): it is called at "offsets" (the offsets are in the transaction,
// which is not committed yet) and "ended" (the transaction is committed,
// the local state not applied yet). An error at "offsets" aborts the
// transaction; at "ended" it fails Run as a crash there would.
func SetCommitHook(a *App, h func(stage string) error) { a.commitHook = h }

// ErrInjected is an error for SetCommitHook's hook to return.
var ErrInjected = errInjected
