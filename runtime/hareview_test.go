package runtime

// Reviewer's tests (REVIEW-ha.md): Kafka Streams' HighAvailabilityTaskAssignorTest
// and TaskMovementTest scenarios (trunk mirror) ported onto assignHA / haAssigner,
// and failing scenarios for the findings.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/sluicehq/sluice/state"
)

const ksEnd = int64(1_000_000_000) // every stateful task's end offset sum in the ports

// ksClient is a Kafka Streams ClientState of the tests: prevActive tasks
// are running there (owned partitions); lag per task, lagNone (Long.MAX_VALUE in
// KS: no local state) when absent.
type ksClient struct {
	name       string
	prevActive []taskID
	lags       map[taskID]int64
}

func ksInput(clients []ksClient, stateful, stateless []taskID, acceptable int64, warmups, standbys int) haInput {
	in := haInput{stateful: map[taskID]bool{}, running: map[taskID]string{}, sums: map[string]map[taskID]int64{},
		ends: map[taskID]int64{}, acceptableLag: acceptable, maxWarmups: warmups, standbys: standbys}
	for _, t := range stateful {
		in.stateful[t] = true
		in.ends[t] = ksEnd
		in.tasks = append(in.tasks, t)
	}
	in.tasks = append(in.tasks, stateless...)
	slices.SortFunc(in.tasks, taskID.compare)
	for _, c := range clients {
		in.clients = append(in.clients, c.name)
		in.sums[c.name] = map[taskID]int64{}
		for _, t := range c.prevActive {
			in.running[t] = c.name
		}
		for t, l := range c.lags {
			in.sums[c.name][t] = ksEnd - l
		}
	}
	return in
}

func load(p haPlan, c string) int {
	n := len(p.standby[c])
	for _, o := range p.active {
		if o == c {
			n++
		}
	}
	return n
}

func ts(ids ...string) []taskID {
	var out []taskID
	for _, s := range ids {
		var sub int
		var p int32
		fmt.Sscanf(s, "%d_%d", &sub, &p)
		out = append(out, taskID{sub, p})
	}
	slices.SortFunc(out, taskID.compare)
	return out
}

func lagsOf(l int64, ids []taskID) map[taskID]int64 {
	m := map[taskID]int64{}
	for _, t := range ids {
		m[t] = l
	}
	return m
}

// HighAvailabilityTaskAssignorTest.shouldBeStickyForActiveAndStandbyTasksWhileWarmingUp
func TestReviewKSStickyWhileWarmingUp(t *testing.T) {
	all := ts("0_0", "0_1", "0_2", "1_0", "1_1", "1_2", "2_0", "2_1", "2_2")
	in := ksInput([]ksClient{
		{name: "p1", prevActive: all, lags: lagsOf(0, all)},
		{name: "p2", lags: lagsOf(10, all)}, // previous standby of all, lag 10
		{name: "p3"},
	}, all, nil, 11, 2, 1)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	if load(plan, "p1") != 9 || load(plan, "p2") != 9 || load(plan, "p3") != 2 || !plan.probe {
		t.Errorf("loads p1=%d p2=%d p3=%d probe=%v, want 9 9 2 true (KS); plan active %v standby %v",
			load(plan, "p1"), load(plan, "p2"), load(plan, "p3"), plan.probe, plan.active, plan.standby)
	}
}

// shouldSkipWarmupsWhenAcceptableLagIsMax
func TestReviewKSSkipWarmupsAcceptableLagMax(t *testing.T) {
	all := ts("0_0", "0_1", "0_2", "1_0", "1_1", "1_2", "2_0", "2_1", "2_2")
	in := ksInput([]ksClient{
		{name: "p1", prevActive: all, lags: lagsOf(0, all)},
		{name: "p2"}, {name: "p3"},
	}, all, nil, math.MaxInt64, 1, 1)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	for _, c := range in.clients {
		if load(plan, c) != 6 {
			t.Errorf("load of %s %d, want 6", c, load(plan, c))
		}
	}
	if plan.probe {
		t.Error("probing rebalance, want none")
	}
}

// shouldComputeNewAssignmentIfActiveTasksWasNotOnCaughtUpClient: p1 was
// the active of 0_0 with lag 500 (NOT running, so no -2), p2 caught up.
func TestReviewKSActiveNotOnCaughtUpClient(t *testing.T) {
	in := ksInput([]ksClient{
		{name: "p1", lags: map[taskID]int64{tid(0, 0): 500}},
		{name: "p2", prevActive: ts("0_1"), lags: map[taskID]int64{tid(0, 0): 0}},
	}, ts("0_0"), ts("0_1"), 100, 2, 0)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	if plan.active[tid(0, 0)] != "p2" || plan.active[tid(0, 1)] != "p1" {
		t.Errorf("active %v, want 0_0 on p2 and 0_1 on p1", plan.active)
	}
}

// shouldAssignToMostCaughtUpIfActiveTasksWasNotOnCaughtUpClient
func TestReviewKSMostCaughtUp(t *testing.T) {
	in := ksInput([]ksClient{
		{name: "p1"},
		{name: "p2", lags: map[taskID]int64{tid(0, 0): 1000}},
		{name: "p3", lags: map[taskID]int64{tid(0, 0): 500}},
	}, ts("0_0"), nil, 100, 2, 1)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	if plan.active[tid(0, 0)] != "p3" || !slices.Equal(plan.standby["p1"], ts("0_0")) ||
		!slices.Equal(plan.standby["p2"], ts("0_0")) || len(plan.standby["p3"]) != 0 || !plan.probe {
		t.Errorf("active %v standby %v warmup %v probe %v; want 0_0 on p3, standbys on p1 (warm-up) and p2, probe",
			plan.active, plan.standby, plan.warmup, plan.probe)
	}
}

// shouldAssignStandbysForStatefulTasks / shouldReturnFalseIfPreviousAssignmentIsReused
func TestReviewKSStandbysForStatefulTasks(t *testing.T) {
	all := ts("0_0", "0_1")
	in := ksInput([]ksClient{
		{name: "p1", prevActive: ts("0_0"), lags: map[taskID]int64{tid(0, 0): 0}},
		{name: "p2", prevActive: ts("0_1"), lags: map[taskID]int64{tid(0, 1): 0}},
	}, all, nil, 100, 2, 1)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	if plan.active[tid(0, 0)] != "p1" || plan.active[tid(0, 1)] != "p2" ||
		!slices.Equal(plan.standby["p1"], ts("0_1")) || !slices.Equal(plan.standby["p2"], ts("0_0")) || plan.probe {
		t.Errorf("active %v standby %v probe %v", plan.active, plan.standby, plan.probe)
	}
}

// shouldAssignWarmupReplicasEvenIfNoStandbyReplicasConfigured,
// shouldNotAssignMoreThanMaxWarmupReplicas(WithStandbys),
// shouldNotAssignWarmupAndStandbyToTheSameClient
func TestReviewKSWarmupLimits(t *testing.T) {
	for _, tc := range []struct {
		tasks             []taskID
		warmups, standbys int
		p2standbys        int
	}{
		{ts("0_0", "0_1"), 2, 0, 1},
		{ts("0_0", "0_1", "0_2", "0_3"), 1, 0, 1},
		{ts("0_0", "0_1", "0_2", "0_3"), 1, 1, 4},
	} {
		in := ksInput([]ksClient{
			{name: "p1", prevActive: tc.tasks, lags: lagsOf(0, tc.tasks)},
			{name: "p2"},
		}, tc.tasks, nil, 100, tc.warmups, tc.standbys)
		plan := assignHA(in)
		checkHAInvariants(t, in, plan)
		if len(tasksOn(plan, "p1", -1)) != len(tc.tasks) || len(plan.standby["p2"]) != tc.p2standbys ||
			len(plan.standby["p1"]) != 0 || !plan.probe {
			t.Errorf("%+v: active %v standby %v warmup %v probe %v", tc, plan.active, plan.standby, plan.warmup, plan.probe)
		}
	}
}

// shouldDistributeStatelessTasksToBalanceTotalTaskLoad
func TestReviewKSStatelessBalanceTotalLoad(t *testing.T) {
	sf := ts("0_0", "0_1", "0_2", "0_3")
	sl := ts("1_0", "1_1", "1_2")
	in := ksInput([]ksClient{
		{name: "p1", prevActive: sf, lags: lagsOf(0, sf)},
		{name: "p2"},
	}, sf, sl, 100, 2, 1)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	if got := tasksOn(plan, "p2", 1); len(got) != 3 || !plan.probe {
		t.Errorf("stateless on p2 %v, want all 3; probe %v", got, plan.probe)
	}
}

// shouldAssignActiveTasksToNotCaughtUpClientIfNoneExist / one client
func TestReviewKSNoCaughtUpClient(t *testing.T) {
	all := ts("0_0", "0_1")
	in := ksInput([]ksClient{{name: "p1"}}, all, nil, 100, 2, 1)
	plan := assignHA(in)
	checkHAInvariants(t, in, plan)
	if len(tasksOn(plan, "p1", -1)) != 2 || len(plan.standby) != 0 || plan.probe {
		t.Errorf("active %v standby %v probe %v", plan.active, plan.standby, plan.probe)
	}
}

// movementHarness builds a haAssigner with a given desired active
// assignment and explicit lags (TaskMovementTest).
func movementHarness(clients []string, active map[string][]taskID, standby map[string][]taskID, lags map[string]map[taskID]int64, warmups int, acceptable int64) *haAssigner {
	in := haInput{clients: clients, stateful: map[taskID]bool{}, ends: map[taskID]int64{}, acceptableLag: acceptable, maxWarmups: warmups}
	h := &haAssigner{in: in, states: map[string]*haState{}, order: map[string]int{}, lag: lags, known: true,
		warmups: map[string]map[taskID]bool{}, left: warmups}
	for i, c := range clients {
		h.order[c] = i
		h.states[c] = &haState{active: map[taskID]bool{}, standby: map[taskID]bool{}}
		h.warmups[c] = map[taskID]bool{}
		for _, t := range active[c] {
			h.states[c].assignActive(t)
		}
		for _, t := range standby[c] {
			h.states[c].assignStandby(t)
		}
		for t := range lags[c] {
			in.stateful[t] = true
		}
	}
	h.in.stateful = in.stateful
	return h
}

func sorted(m map[taskID]bool) []taskID {
	var out []taskID
	for t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, taskID.compare)
	return out
}

// TaskMovementTest.shouldMoveTasksToCaughtUpClientsAndAssignWarmupReplicasInTheirPlace
// and shouldOnlyGetUpToMaxWarmupReplicasAndReturnTrue.
func TestReviewKSMoveToCaughtUp(t *testing.T) {
	all := ts("0_0", "0_1", "0_2")
	lag := func(caught ...string) map[taskID]int64 {
		m := lagsOf(10000, all)
		for _, c := range ts(caught...) {
			m[c] = 0
		}
		return m
	}
	for _, warm := range []int{100, 1} {
		h := movementHarness([]string{"p1", "p2", "p3"},
			map[string][]taskID{"p1": ts("0_0"), "p2": ts("0_1"), "p3": ts("0_2")}, nil,
			map[string]map[taskID]int64{"p1": lag("0_0"), "p2": lag("0_2"), "p3": lag("0_1")}, warm, 100)
		if n := h.moveActives(); n != 2 {
			t.Errorf("warmups %d: %d movements, want 2", warm, n)
		}
		want := map[string][]taskID{"p1": ts("0_0"), "p2": ts("0_2"), "p3": ts("0_1")}
		for c, w := range want {
			if got := sorted(h.states[c].active); !slices.Equal(got, w) {
				t.Errorf("warmups %d: active of %s %v, want %v", warm, c, got, w)
			}
		}
		wantSb := map[string][]taskID{"p1": nil, "p2": ts("0_1"), "p3": ts("0_2")}
		if warm == 1 {
			wantSb["p3"] = nil
		}
		for c, w := range wantSb {
			if got := sorted(h.states[c].standby); !slices.Equal(got, w) {
				t.Errorf("warmups %d: standby of %s %v, want %v", warm, c, got, w)
			}
		}
	}
}

// shouldMoveTasksToMostCaughtUpClientsAndAssignWarmupReplicasInTheirPlace
func TestReviewKSMoveToMostCaughtUp(t *testing.T) {
	h := movementHarness([]string{"p1", "p2", "p3"},
		map[string][]taskID{"p1": ts("0_0"), "p2": ts("0_1"), "p3": ts("0_2")},
		map[string][]taskID{"p3": ts("0_1")},
		map[string]map[taskID]int64{
			"p1": {tid(0, 0): 10000, tid(0, 1): 20000, tid(0, 2): 30000},
			"p2": {tid(0, 2): 10000, tid(0, 0): 20000, tid(0, 1): 30000},
			"p3": {tid(0, 1): 10000, tid(0, 2): 20000, tid(0, 0): 30000},
		}, 100, 100)
	if n := h.moveActives(); n != 2 {
		t.Errorf("%d movements, want 2", n)
	}
	for c, w := range map[string][]taskID{"p1": ts("0_0"), "p2": ts("0_2"), "p3": ts("0_1")} {
		if got := sorted(h.states[c].active); !slices.Equal(got, w) {
			t.Errorf("active of %s %v, want %v", c, got, w)
		}
	}
	for c, w := range map[string][]taskID{"p1": nil, "p2": ts("0_1"), "p3": ts("0_2")} {
		if got := sorted(h.states[c].standby); !slices.Equal(got, w) {
			t.Errorf("standby of %s %v, want %v", c, got, w)
		}
	}
}

// shouldNotCountPreviousStandbyTasksTowardsMaxWarmupReplicas
func TestReviewKSSwapNeedsNoWarmup(t *testing.T) {
	h := movementHarness([]string{"p1", "p2"},
		map[string][]taskID{"p2": ts("0_0")}, map[string][]taskID{"p1": ts("0_0")},
		map[string]map[taskID]int64{"p1": {tid(0, 0): 0}, "p2": {tid(0, 0): 10000}}, 0, 100)
	if n := h.moveActives(); n != 1 {
		t.Errorf("%d movements, want 1", n)
	}
	if !h.states["p1"].active[tid(0, 0)] || h.states["p1"].standby[tid(0, 0)] || h.states["p2"].active[tid(0, 0)] || !h.states["p2"].standby[tid(0, 0)] {
		t.Errorf("p1 %+v p2 %+v: want 0_0 active on p1, standby on p2", h.states["p1"], h.states["p2"])
	}
}

// Determinism: the same input gives the same plan.
func TestReviewHADeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 300 {
		nc := 1 + r.IntN(5)
		c := haCase{statefulN: int32(r.IntN(12)), statelessN: int32(r.IntN(5)), end: 1000 + r.Int64N(50000),
			standbys: r.IntN(3), warmups: 1 + r.IntN(3), running: map[taskID]string{}, sums: map[string]map[taskID]int64{}}
		for j := range nc {
			c.clients = append(c.clients, fmt.Sprintf("c%d", j))
		}
		for p := range c.statefulN {
			if r.IntN(2) == 0 {
				c.running[tid(0, p)] = c.clients[r.IntN(nc)]
			}
			for _, cl := range c.clients {
				if r.IntN(3) == 0 {
					if c.sums[cl] == nil {
						c.sums[cl] = map[taskID]int64{}
					}
					c.sums[cl][tid(0, p)] = r.Int64N(60000)
				}
			}
		}
		in := c.input()
		first := assignHA(in)
		for range 20 {
			if again := assignHA(in); !reflect.DeepEqual(first, again) {
				t.Fatalf("case %d: plans differ:\n%+v\n%+v", i, first, again)
			}
		}
	}
}

// Finding: a task restoring on its new owner (owned partitions, so
// in.running) counts as caught up (offsetSumRunning) whatever its lag, so a
// client with a caught-up copy never gets it back. Kafka Streams reports
// Task.LATEST_OFFSET only for RUNNING active tasks (TaskManager.taskOffsetSums)
// and computes every other lag from the offset sums, so it moves the task
// to the caught-up client (warm-up on the restoring one).
func TestReviewRestoringOwnerIsNotCaughtUp(t *testing.T) {
	in := haInput{
		clients: []string{"a", "b"}, tasks: []taskID{tid(0, 0)}, stateful: map[taskID]bool{tid(0, 0): true},
		running: map[taskID]string{tid(0, 0): "b"}, // b owns it, still restoring from 0
		sums: map[string]map[taskID]int64{
			"a": {tid(0, 0): 999_950}, // a restarted with a copy 50 records behind
			"b": {tid(0, 0): 0},       // what b's local state reflects
		},
		ends: map[taskID]int64{tid(0, 0): 1_000_000}, acceptableLag: 10000, maxWarmups: 2,
	}
	plan := assignHA(in)
	if plan.active[tid(0, 0)] != "a" {
		t.Errorf("task 0_0 stays on b (lag 1000000, restoring) although a is 50 behind: plan %+v", plan)
	}
}

// Finding: changelog end offset sums overflow (Kafka Streams caps them at
// Long.MAX_VALUE, StreamsPartitionAssignor.computeEndOffsetSumsByTask).
func TestReviewEndOffsetSumOverflow(t *testing.T) {
	b := &taskBalancer{changelogs: map[int][]string{0: {"c1", "c2"}}}
	b.endOffsets = func(_ context.Context, topics []string) (map[topicPartition]int64, error) {
		return map[topicPartition]int64{{"c1", 0}: math.MaxInt64 - 10, {"c2", 0}: 100}, nil
	}
	ends := b.changelogEnds([]taskID{tid(0, 0)}, map[taskID]bool{tid(0, 0): true})
	if ends[tid(0, 0)] < 0 {
		t.Errorf("end offset sum %d: overflowed", ends[tid(0, 0)])
	}
}

// Convergence under the cooperative protocol: simulate rebalances. A task
// planned away from its running owner is revoked (not running anywhere in
// the follow-up, as AdjustCooperative does), its previous owner then
// reports the lag of its closed copy (0), and every standby/warm-up/held
// copy catches up before the next rebalance (lag 5). The assignment must
// settle: no task revoked again and again.
func TestReviewHAConverges(t *testing.T) {
	for _, heldLag := range []int64{0, 5, 9000} {
		t.Run(fmt.Sprint(heldLag), func(t *testing.T) { reviewConverge(t, heldLag) })
	}
}

func reviewConverge(t *testing.T, heldLag int64) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		nc := 2 + r.IntN(4)
		nt := 1 + r.IntN(12)
		const end = 1_000_000
		clients := []string{}
		for j := range nc {
			clients = append(clients, fmt.Sprintf("c%d", j))
		}
		lag := map[string]map[taskID]int64{}
		for _, c := range clients {
			lag[c] = map[taskID]int64{}
		}
		running := map[taskID]string{}
		var tasks []taskID
		stateful := map[taskID]bool{}
		for p := range int32(nt) {
			tk := tid(0, p)
			tasks = append(tasks, tk)
			stateful[tk] = true
			if r.IntN(3) > 0 {
				running[tk] = clients[r.IntN(nc)]
			}
			for _, c := range clients {
				if r.IntN(3) == 0 {
					lag[c][tk] = r.Int64N(30000)
				}
			}
		}
		standbys, warmups := r.IntN(3), 1+r.IntN(2)
		var history []string
		moves := map[taskID]int{}
		for round := range 40 {
			in := haInput{clients: clients, tasks: tasks, stateful: stateful, running: map[taskID]string{},
				sums: map[string]map[taskID]int64{}, ends: map[taskID]int64{}, standbys: standbys, maxWarmups: warmups, acceptableLag: 10000}
			for _, tk := range tasks {
				in.ends[tk] = end
			}
			for tk, c := range running {
				in.running[tk] = c
			}
			for _, c := range clients {
				in.sums[c] = map[taskID]int64{}
				for tk, l := range lag[c] {
					in.sums[c][tk] = end - l
				}
				for tk, o := range running {
					if o == c {
						in.sums[c][tk] = offsetSumRunning
					}
				}
			}
			plan := assignHA(in)
			revoked := 0
			next := map[taskID]string{}
			for tk, owner := range plan.active {
				prev, ok := running[tk]
				switch {
				case ok && prev != owner:
					revoked++
					moves[tk]++
					lag[prev][tk] = 0        // closed copy, fully committed
					lag[owner][tk] = heldLag // held: a standby on its new owner, caught up by the next round
				default:
					next[tk] = owner
				}
			}
			for c, sbs := range plan.standby {
				for _, tk := range sbs {
					lag[c][tk] = heldLag
				}
			}
			running = next
			history = append(history, fmt.Sprintf("round %d: active %v standby %v warmup %v revoked %d probe %v",
				round, plan.active, plan.standby, plan.warmup, revoked, plan.probe))
			if revoked == 0 && !plan.probe && len(running) == len(tasks) {
				break
			}
			if round == 39 {
				t.Fatalf("case %d: no stable assignment after 40 rebalances; moves per task %v; last rounds:\n%s\n%s",
					i, moves, history[len(history)-2], history[len(history)-1])
			}
		}
		for tk, n := range moves {
			if n > 3 {
				t.Errorf("case %d: task %s revoked %d times before settling:\n%s", i, tk, n, history)
			}
		}
	}
}

// Finding: a task directory whose checkpoint holds huge offsets (corrupt,
// or a changelog near the offset limit) overflows the local offset sum; the
// leader then rejects the member's whole metadata (negative sum), and the
// member loses its process-ID stickiness and every lag it reported.
func TestReviewLocalOffsetSumOverflow(t *testing.T) {
	dir := t.TempDir()
	id := tid(0, 3)
	if err := os.MkdirAll(filepath.Join(dir, id.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	cp := map[state.TopicPartition]int64{{Topic: "app-a-changelog", Partition: 3}: math.MaxInt64 - 1, {Topic: "app-b-changelog", Partition: 3}: 10}
	if err := state.WriteCheckpoint(vfs.Default, filepath.Join(dir, id.String(), checkpointFile), cp); err != nil {
		t.Fatal(err)
	}
	a := &App{appDir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.scanLocalOffsets(map[int][]string{0: {"app-a-changelog", "app-b-changelog"}})
	d := memberData{process: processID{1}, sums: a.offsets.snapshot()}
	if _, err := decodeMemberData(encodeMemberData(d)); err != nil {
		t.Errorf("the leader cannot decode this member's metadata (sums %v): %v", d.sums, err)
	}
}
