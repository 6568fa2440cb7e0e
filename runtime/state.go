package runtime

import (
	"fmt"
	"slices"
)

// State is the state of an App, as Kafka Streams' KafkaStreams.State,
// with its transitions:
//
//	Created         -> Rebalancing, PendingShutdown
//	Rebalancing     -> Running, PendingShutdown, PendingError
//	Running         -> Rebalancing, Running, PendingShutdown, PendingError
//	PendingShutdown -> NotRunning
//	PendingError    -> Error
//	NotRunning, Error: final
//
// New returns an App in Created; Run moves it to Rebalancing at once
// (connecting, creating the internal topics, joining the group, restoring
// tasks), to Running once the App is in the group and none of its tasks
// restores, and back to Rebalancing while it rejoins or tasks restore.
// A shutdown asked for (the context of Run, Close) goes through
// PendingShutdown to NotRunning when Run returns; a fatal error through
// PendingError to Error. A broker outage changes no state, as in Kafka
// Streams: BrokersReachable reports it.
type State int32

// The states, in Kafka Streams' order.
const (
	Created State = iota
	Rebalancing
	Running
	PendingShutdown
	NotRunning
	PendingError
	Error
)

// String is the state's name as Kafka Streams spells it ("RUNNING").
func (s State) String() string {
	switch s {
	case Created:
		return "CREATED"
	case Rebalancing:
		return "REBALANCING"
	case Running:
		return "RUNNING"
	case PendingShutdown:
		return "PENDING_SHUTDOWN"
	case NotRunning:
		return "NOT_RUNNING"
	case PendingError:
		return "PENDING_ERROR"
	case Error:
		return "ERROR"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// IsRunningOrRebalancing reports Running or Rebalancing: the App is up.
func (s State) IsRunningOrRebalancing() bool { return s == Running || s == Rebalancing }

// HasCompletedShutdown reports a final state: NotRunning or Error.
func (s State) HasCompletedShutdown() bool { return s == NotRunning || s == Error }

// validTransition reports whether Kafka Streams allows the move from s to
// next (KafkaStreams.State's validTransitions).
func (s State) validTransition(next State) bool {
	switch s {
	case Created:
		return next == Rebalancing || next == PendingShutdown
	case Rebalancing:
		return next == Running || next == PendingShutdown || next == PendingError
	case Running:
		return next == Rebalancing || next == Running || next == PendingShutdown || next == PendingError
	case PendingShutdown:
		return next == NotRunning
	case PendingError:
		return next == Error
	}
	return false
}

// State returns the App's state; safe to call from any goroutine, at any
// time. Kafka Streams: KafkaStreams.state().
func (a *App) State() State { return State(a.state.Load()) }

// setState moves the App to next if Kafka Streams allows the transition
// from its current state, and reports whether it did; a transition not
// allowed (Running after a shutdown began) is ignored. Changes are
// logged. stateMu orders the changes and their OnStateChange calls: the
// listener sees them in the order they happened, each old state the new
// one of the call before.
func (a *App) setState(next State) bool {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	cur := State(a.state.Load())
	if cur == next || !cur.validTransition(next) {
		return false
	}
	a.state.Store(int32(next))
	a.log.Info("state", "from", cur, "to", next)
	if fn := a.cfg.onStateChange; fn != nil {
		fn(next, cur)
	}
	return true
}

// updateStateLocked moves the App between Rebalancing and Running after a
// poll round: Running once it has joined the group (a generation newer
// than one whose partitions were lost) and none of its tasks restores or
// awaits its revival; Rebalancing otherwise. The group callbacks move it to Rebalancing (rebalanceLocked).
func (a *App) updateStateLocked() {
	if a.closing || a.runCtx.Err() != nil {
		return
	}
	_, gen := a.client.GroupMetadata()
	busy := gen <= 0 || gen <= a.lostGen || len(a.revive) > 0
	var restoring []string
	for _, r := range a.runners {
		if r.restoring {
			restoring = append(restoring, r.id.String())
		}
	}
	slices.Sort(restoring)
	a.restoringTasks.Store(&restoring) // for /readyz (http_ops.go)
	busy = busy || len(restoring) > 0
	if busy {
		a.setState(Rebalancing)
	} else {
		a.setState(Running)
	}
}

// rebalanceLocked moves a running App to Rebalancing: a group callback
// runs.
func (a *App) rebalanceLocked() {
	if !a.closing && a.runCtx.Err() == nil {
		a.setState(Rebalancing)
	}
}
