package runtime

// ReviewRollBackThenStop does under a.mu what onRevoked does when its
// commit is rolled back (abort, mark the other tasks for revival), then
// asks the App to stop before the poll loop could revive them: the
// shutdown that follows finds the marked runners still holding the
// aborted transaction's progress.
func ReviewRollBackThenStop(a *App) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.commits.abort(a.groupCtx, "review"); err != nil {
		return err
	}
	a.markReviveLocked(nil)
	a.closeMu.Lock()
	cancel := a.cancel
	a.closeMu.Unlock()
	cancel()
	return nil
}
