package runtime

// reconcileStandbysLocked is provided by standby.go (branch standby); this no-op stands in until it is merged.
func (a *App) reconcileStandbysLocked(ids []taskID) { _ = ids }
