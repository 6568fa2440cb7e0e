package runtime

import (
	"cmp"
	"maps"
	"slices"
)

// The high-availability assignment: a port of Kafka Streams 4.3.1's
// HighAvailabilityTaskAssignor and TaskMovement onto Sluice's balanced
// sticky task assignment (assignBalanced). It is a pure function of what
// the leader knows at a rebalance (haInput), so that it can be tested as a
// table.
//
//  1. The stateful tasks get their desired owners from assignBalanced:
//     sticky to the running owner, else to the client whose local copy
//     is the most caught up, balanced by count.
//  2. Each stateful task gets up to haInput.standbys standbys on clients
//     other than its owner, the least loaded first.
//  3. A stateful task whose desired owner is not caught up (lag above the
//     acceptable recovery lag) while a more caught-up client exists stays
//     on a caught-up client instead (a caught-up standby first, swapped
//     with its active), or on the most caught-up client; the desired
//     owner gets a warm-up replica, at most maxWarmups in all. Standbys
//     placed on a client that is not caught up while another is move the
//     same way (TaskMovement.assignStandbyTaskMovements).
//  4. The stateless tasks are balanced by active-task count.
//
// When a movement was needed, a probing rebalance is due: once the
// warm-ups caught up, it moves the tasks to their desired owners. When the
// lags are unknown (the changelog end offsets could not be listed), steps
// 1, 2 and 4 run with stickiness only, and a probing rebalance is due to
// try again, as Kafka Streams' FallbackPriorTaskAssignor.

// haInput is what the assignment is a function of.
type haInput struct {
	// clients are the clients' keys (instance ID, else process ID, else
	// member ID), in the group's order, which breaks ties.
	clients []string
	// tasks are all tasks, sorted; stateful marks those with changelogged
	// stores.
	tasks    []taskID
	stateful map[taskID]bool
	// running maps a task to the client running it as active now (from
	// its owned partitions or an offset sum of offsetSumRunning).
	running map[taskID]string
	// sums are each client's reported offset sums (memberData).
	sums map[string]map[taskID]int64
	// ends are the stateful tasks' changelog end offset sums; nil when
	// they could not be listed (lags unknown).
	ends map[taskID]int64

	standbys      int
	maxWarmups    int
	acceptableLag int64
}

// haPlan is the assignment.
type haPlan struct {
	active map[taskID]string
	// standby lists each client's standby tasks, warm-ups included;
	// warmup the warm-ups alone. Both sorted.
	standby map[string][]taskID
	warmup  map[string][]taskID
	// probe is whether a probing rebalance is due.
	probe bool
	// movements counts the tasks held back from their desired owner.
	movements int
}

// lagUnknown is the lag of a client for a task when the changelog end
// offsets are unknown (Kafka Streams' UNKNOWN_OFFSET_SUM).
const lagUnknown = -3

// haState is one client's assignment in progress (Kafka Streams'
// ClientState).
type haState struct {
	active  map[taskID]bool
	standby map[taskID]bool
}

func (s *haState) load() int              { return len(s.active) + len(s.standby) }
func (s *haState) has(t taskID) bool      { return s.active[t] || s.standby[t] }
func (s *haState) assignActive(t taskID)  { s.active[t] = true }
func (s *haState) assignStandby(t taskID) { s.standby[t] = true }

type haAssigner struct {
	in      haInput
	states  map[string]*haState
	order   map[string]int // client → position in in.clients
	lag     map[string]map[taskID]int64
	known   bool
	warmups map[string]map[taskID]bool
	left    int // warm-ups left to hand out
}

// assignHA computes the assignment.
func assignHA(in haInput) haPlan {
	h := &haAssigner{in: in, states: map[string]*haState{}, order: map[string]int{},
		lag: map[string]map[taskID]int64{}, known: in.ends != nil, warmups: map[string]map[taskID]bool{}, left: in.maxWarmups}
	for i, c := range in.clients {
		h.order[c] = i
		h.states[c] = &haState{active: map[taskID]bool{}, standby: map[taskID]bool{}}
		h.warmups[c] = map[taskID]bool{}
	}
	var stateful, stateless []taskID
	for _, t := range in.tasks {
		if in.stateful[t] {
			stateful = append(stateful, t)
		} else {
			stateless = append(stateless, t)
		}
	}
	h.computeLags(stateful)

	// 1. Desired owners of the stateful tasks.
	prev := map[taskID]string{}
	for _, t := range stateful {
		if c, ok := h.previous(t); ok {
			prev[t] = c
		}
	}
	// Tasks whose previous owner is the only caught-up client are kept
	// first, so that an owner above its quota gives up the tasks another
	// client can take without a warm-up.
	order := slices.Clone(stateful)
	alternatives := map[taskID]int{}
	for _, t := range order {
		for _, c := range in.clients {
			if c != prev[t] && h.caughtUp(t, c) {
				alternatives[t]++
			}
		}
	}
	slices.SortStableFunc(order, func(a, b taskID) int { return cmp.Compare(alternatives[a], alternatives[b]) })
	var prefer func(taskID, string) bool
	if h.known {
		prefer = h.caughtUp
	}
	for t, c := range assignBalanced(order, in.clients, prev, prefer, nil) {
		h.states[c].assignActive(t)
	}

	// 2. Standbys on the least loaded clients without the task.
	if in.standbys > 0 {
		for _, t := range stateful {
			for range in.standbys {
				c, ok := h.leastLoaded(func(c string) bool { return !h.states[c].has(t) })
				if !ok {
					break
				}
				h.states[c].assignStandby(t)
			}
		}
		h.balanceStandbys()
	}

	// 3. Movements to caught-up clients, with warm-ups.
	movements := 0
	if h.known {
		movements = h.moveActives() + h.moveStandbys()
	}

	// 4. Stateless tasks, balanced by active-task count after the moves.
	prevStateless := map[taskID]string{}
	for _, t := range stateless {
		if c, ok := in.running[t]; ok {
			if _, member := h.states[c]; member {
				prevStateless[t] = c
			}
		}
	}
	init := map[string]int{}
	for c, s := range h.states {
		init[c] = len(s.active)
	}
	for t, c := range assignBalanced(stateless, in.clients, prevStateless, nil, init) {
		h.states[c].assignActive(t)
	}

	plan := haPlan{active: map[taskID]string{}, standby: map[string][]taskID{}, warmup: map[string][]taskID{},
		movements: movements, probe: movements > 0 || (!h.known && len(stateful) > 0)}
	for c, s := range h.states {
		for t := range s.active {
			plan.active[t] = c
		}
		if len(s.standby) > 0 {
			plan.standby[c] = slices.SortedFunc(maps.Keys(s.standby), taskID.compare)
		}
		if len(h.warmups[c]) > 0 {
			plan.warmup[c] = slices.SortedFunc(maps.Keys(h.warmups[c]), taskID.compare)
		}
	}
	return plan
}

// computeLags is Kafka Streams' ClientState.computeTaskLags: per client and
// stateful task, lagUnknown without end offsets, offsetSumRunning for the
// task running there, else the end offset sum minus the reported offset
// sum (0 when none), or the end offset sum when the reported sum is past
// it (the local copy does not match the changelog: no better than none).
func (h *haAssigner) computeLags(stateful []taskID) {
	for _, c := range h.in.clients {
		m := map[taskID]int64{}
		for _, t := range stateful {
			sum, reported := h.in.sums[c][t]
			switch {
			case reported && sum == offsetSumRunning, !reported && h.in.running[t] == c:
				m[t] = offsetSumRunning
			case !h.known:
				m[t] = lagUnknown
			case sum > h.in.ends[t]:
				m[t] = h.in.ends[t]
			default:
				m[t] = h.in.ends[t] - sum
			}
		}
		h.lag[c] = m
	}
}

// previous is the client a stateful task sticks to: its running owner,
// else the client with the most caught-up copy of its state (the least
// lag; without lags, the highest offset sum), if any reported one.
func (h *haAssigner) previous(t taskID) (string, bool) {
	best, found := "", false
	var bestLag, bestSum int64
	for _, c := range h.in.clients {
		lag := h.lag[c][t]
		if lag == offsetSumRunning {
			return c, true
		}
		sum, reported := h.in.sums[c][t]
		if !reported {
			continue
		}
		if h.known {
			if !found || lag < bestLag {
				best, bestLag, found = c, lag, true
			}
		} else if !found || sum > bestSum {
			best, bestSum, found = c, sum, true
		}
	}
	return best, found
}

// caughtUp is whether client c may run stateful task t without restoring
// more than the acceptable recovery lag.
func (h *haAssigner) caughtUp(t taskID, c string) bool {
	lag := h.lag[c][t]
	return lag == offsetSumRunning || lag >= 0 && lag <= h.in.acceptableLag
}

// leastLoaded is the client with the fewest tasks (actives and standbys),
// then the earliest in the group's order, among those ok accepts: Kafka
// Streams' ConstrainedPrioritySet.poll over all clients.
func (h *haAssigner) leastLoaded(ok func(string) bool) (string, bool) {
	best, found := "", false
	for _, c := range h.in.clients {
		if !ok(c) {
			continue
		}
		if !found || h.states[c].load() < h.states[best].load() {
			best, found = c, true
		}
	}
	return best, found
}

// notCaughtUpButOthersAre is TaskMovement's
// taskIsNotCaughtUpOnClientAndOtherMoreCaughtUpClientsExist.
func (h *haAssigner) notCaughtUpButOthersAre(t taskID, c string) bool {
	if h.caughtUp(t, c) {
		return false
	}
	return h.lag[h.byLag(t)[0]][t] < h.lag[c][t]
}

// byLag lists the clients by lag for t, then by the group's order.
func (h *haAssigner) byLag(t taskID) []string {
	cs := slices.Clone(h.in.clients)
	slices.SortStableFunc(cs, func(a, b string) int { return cmp.Compare(h.lag[a][t], h.lag[b][t]) })
	return cs
}

// mostCaughtUp is the first client by lag for t that ok accepts, looking
// only at those before dest.
func (h *haAssigner) mostCaughtUp(t taskID, dest string, ok func(string) bool) (string, bool) {
	for _, c := range h.byLag(t) {
		if c == dest {
			break
		}
		if ok(c) {
			return c, true
		}
	}
	return "", false
}

type haMovement struct {
	task     taskID
	dest     string
	caughtUp int
}

func (h *haAssigner) movements(tasks func(*haState) map[taskID]bool, skip func(string, taskID) bool) []haMovement {
	var ms []haMovement
	for _, c := range h.in.clients {
		for _, t := range slices.SortedFunc(maps.Keys(tasks(h.states[c])), taskID.compare) {
			if !h.in.stateful[t] || skip(c, t) || !h.notCaughtUpButOthersAre(t, c) {
				continue
			}
			n := 0
			for _, o := range h.in.clients {
				if h.caughtUp(t, o) {
					n++
				}
			}
			ms = append(ms, haMovement{t, c, n})
		}
	}
	slices.SortFunc(ms, func(a, b haMovement) int {
		if c := cmp.Compare(a.caughtUp, b.caughtUp); c != 0 {
			return c
		}
		return a.task.compare(b.task)
	})
	return ms
}

// moveActives is TaskMovement.assignActiveTaskMovements; it returns the
// number of movements needed.
func (h *haAssigner) moveActives() int {
	ms := h.movements(func(s *haState) map[taskID]bool { return s.active }, func(string, taskID) bool { return false })
	for _, m := range ms {
		t, dest := m.task, h.states[m.dest]
		// A caught-up standby, else any caught-up client, else the most
		// caught-up one.
		if src, ok := h.leastLoaded(func(c string) bool { return h.caughtUp(t, c) && h.states[c].standby[t] }); ok {
			h.swap(t, h.states[src], dest)
		} else if src, ok := h.leastLoaded(func(c string) bool { return h.caughtUp(t, c) }); ok {
			h.moveActiveAndWarmUp(t, h.states[src], m.dest)
		} else if src, ok := h.mostCaughtUp(t, m.dest, func(string) bool { return true }); ok {
			if h.states[src].standby[t] {
				h.swap(t, h.states[src], dest)
			} else {
				h.moveActiveAndWarmUp(t, h.states[src], m.dest)
			}
		}
		// Not reached otherwise: the movement exists because a more
		// caught-up client does.
	}
	return len(ms)
}

// moveStandbys is TaskMovement.assignStandbyTaskMovements.
func (h *haAssigner) moveStandbys() int {
	ms := h.movements(func(s *haState) map[taskID]bool { return s.standby }, func(c string, t taskID) bool { return h.warmups[c][t] })
	moved := 0
	for _, m := range ms {
		t := m.task
		eligible := func(c string) bool { return !h.states[c].has(t) }
		src, ok := h.leastLoaded(func(c string) bool { return h.caughtUp(t, c) && eligible(c) })
		if !ok {
			// Unlike Kafka Streams, only to a client strictly more
			// caught up: a move between equal lags gains nothing and
			// would spend a warm-up and a probing rebalance.
			src, ok = h.mostCaughtUp(t, m.dest, func(c string) bool { return eligible(c) && h.lag[c][t] < h.lag[m.dest][t] })
		}
		if !ok {
			continue // every more caught-up client has the task already
		}
		h.states[src].assignStandby(t)
		if h.left > 0 {
			h.left--
			h.warmups[m.dest][t] = true // kept as a warm-up
		} else {
			delete(h.states[m.dest].standby, t)
		}
		moved++
	}
	return moved
}

func (h *haAssigner) swap(t taskID, src, dest *haState) {
	delete(src.standby, t)
	src.assignActive(t)
	delete(dest.active, t)
	dest.assignStandby(t)
}

func (h *haAssigner) moveActiveAndWarmUp(t taskID, src *haState, dest string) {
	src.assignActive(t)
	delete(h.states[dest].active, t)
	if h.left > 0 {
		h.left--
		h.states[dest].assignStandby(t)
		h.warmups[dest][t] = true
	}
}

// assignBalanced assigns tasks to members, balanced by count: first each
// task, in the order given, to its previous owner while that member is
// below its quota and its share of the task's sub-topology, then the rest
// to the least loaded members, preferring those prefer accepts (nil: none),
// then those with the fewest tasks of the same sub-topology. Quotas are
// over the tasks plus the members' initial loads (init, nil for none) and
// differ by at most one task; a member whose initial load is above it gets
// none. members is in a deterministic order (the group's), which breaks
// ties.
func assignBalanced(tasks []taskID, members []string, prev map[taskID]string, prefer func(taskID, string) bool, init map[string]int) map[taskID]string {
	out := make(map[taskID]string, len(tasks))
	if len(members) == 0 {
		return out
	}
	load := make(map[string]int, len(members))
	perSub := map[string]map[int]int{}
	total := len(tasks)
	for _, m := range members {
		perSub[m] = map[int]int{}
		load[m] = init[m]
		total += init[m]
	}
	// At most extra members may hold base+1 tasks.
	base, extra := total/len(members), total%len(members)
	for _, m := range members {
		if load[m] > base && extra > 0 {
			extra--
		}
	}
	fits := func(m string) bool {
		if load[m] < base {
			return true
		}
		if load[m] == base && extra > 0 {
			return true
		}
		return false
	}
	take := func(t taskID, m string) {
		if load[m] == base {
			extra--
		}
		load[m]++
		perSub[m][t.sub]++
		out[t] = m
	}
	// A member keeps a task only up to its share of the task's
	// sub-topology, so that scaling out spreads every sub-topology rather
	// than handing whole sub-topologies to the newcomers.
	subTasks := map[int]int{}
	for _, t := range tasks {
		subTasks[t.sub]++
	}
	share := func(sub int) int { return (subTasks[sub] + len(members) - 1) / len(members) }
	var rest []taskID
	for _, t := range tasks {
		if m, ok := prev[t]; ok && perSub[m] != nil && fits(m) && perSub[m][t.sub] < share(t.sub) {
			take(t, m)
		} else {
			rest = append(rest, t)
		}
	}
	preferred := func(t taskID, m string) bool { return prefer != nil && prefer(t, m) }
	for _, t := range rest {
		best := ""
		for _, m := range members {
			if !fits(m) {
				continue
			}
			if best == "" {
				best = m
				continue
			}
			if p, q := preferred(t, m), preferred(t, best); p != q {
				if p {
					best = m
				}
				continue
			}
			if load[m] < load[best] ||
				load[m] == load[best] && perSub[m][t.sub] < perSub[best][t.sub] {
				best = m
			}
		}
		if best == "" {
			// Every member is at its quota (initial loads above it):
			// the least loaded.
			for _, m := range members {
				if best == "" || load[m] < load[best] {
					best = m
				}
			}
		}
		take(t, best)
	}
	return out
}

// balanceStandbys moves standbys from the most to the least loaded
// clients while that narrows the gap by two or more and the destination
// has no copy of the task (Kafka Streams' balanceTasksOverThreads over the
// standby tasks, capacity one). Deterministic: clients in group order,
// tasks sorted.
func (h *haAssigner) balanceStandbys() {
	for moved := true; moved; {
		moved = false
		for _, src := range h.in.clients {
			for _, dst := range h.in.clients {
				s, d := h.states[src], h.states[dst]
				for _, t := range slices.SortedFunc(maps.Keys(s.standby), taskID.compare) {
					if s.load()-d.load() < 2 {
						break
					}
					if d.has(t) {
						continue
					}
					delete(s.standby, t)
					d.assignStandby(t)
					moved = true
				}
			}
		}
	}
}
