package runtime

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// haCase builds an assignment input: sub-topology 0 stateful, 1 stateless.
type haCase struct {
	clients               []string
	statefulN, statelessN int32
	running               map[taskID]string
	sums                  map[string]map[taskID]int64
	end                   int64 // every stateful task's end offset sum; -1: unknown
	standbys, warmups     int
}

func (c haCase) input() haInput {
	in := haInput{clients: c.clients, stateful: map[taskID]bool{}, running: c.running, sums: c.sums,
		standbys: c.standbys, maxWarmups: c.warmups, acceptableLag: 10000}
	if in.running == nil {
		in.running = map[taskID]string{}
	}
	if c.end >= 0 {
		in.ends = map[taskID]int64{}
	}
	for p := range c.statefulN {
		t := taskID{0, p}
		in.tasks = append(in.tasks, t)
		in.stateful[t] = true
		if in.ends != nil {
			in.ends[t] = c.end
		}
	}
	for p := range c.statelessN {
		in.tasks = append(in.tasks, taskID{1, p})
	}
	return in
}

func tid(sub int, p int32) taskID { return taskID{sub, p} }

func tasksOn(plan haPlan, c string, sub int) []taskID {
	var ts []taskID
	for t, o := range plan.active {
		if o == c && (sub < 0 || t.sub == sub) {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, taskID.compare)
	return ts
}

// checkHAInvariants checks what every assignment must satisfy: each task
// one active on a client, standbys on distinct clients other than the
// active's, warm-ups among the standbys and at most maxWarmups, only
// stateful tasks have standbys.
func checkHAInvariants(t *testing.T, in haInput, plan haPlan) {
	t.Helper()
	if len(plan.active) != len(in.tasks) {
		t.Fatalf("%d tasks assigned, want %d: %v", len(plan.active), len(in.tasks), plan.active)
	}
	for _, tk := range in.tasks {
		if !slices.Contains(in.clients, plan.active[tk]) {
			t.Fatalf("task %s on %q, not a client", tk, plan.active[tk])
		}
	}
	warm := 0
	for c, sbs := range plan.standby {
		if !slices.IsSortedFunc(sbs, taskID.compare) || len(slices.Compact(slices.Clone(sbs))) != len(sbs) {
			t.Fatalf("standbys of %s not sorted and distinct: %v", c, sbs)
		}
		for _, s := range sbs {
			if plan.active[s] == c {
				t.Fatalf("standby of %s on %s, its active's client", s, c)
			}
			if !in.stateful[s] {
				t.Fatalf("standby of stateless task %s on %s", s, c)
			}
		}
		for _, w := range plan.warmup[c] {
			if !slices.Contains(sbs, w) {
				t.Fatalf("warm-up %s of %s not among its standbys %v", w, c, sbs)
			}
		}
		warm += len(plan.warmup[c])
	}
	if warm > in.maxWarmups {
		t.Fatalf("%d warm-ups, max %d: %v", warm, in.maxWarmups, plan.warmup)
	}
}

func TestHAAssignment(t *testing.T) {
	all := func(c string, n int32) map[taskID]string {
		m := map[taskID]string{}
		for p := range n {
			m[tid(0, p)] = c
		}
		return m
	}
	for _, tc := range []struct {
		name string
		c    haCase
		// want per client: stateful actives, warm-ups, standbys
		active, warmup, standby map[string][]taskID
		stateless               map[string]int
		probe                   bool
	}{
		{
			name: "a new client gets warm-ups, not the tasks of a caught-up one",
			c: haCase{clients: []string{"a", "b"}, statefulN: 4, running: all("a", 4), end: 100000, warmups: 2,
				sums: map[string]map[taskID]int64{"a": {tid(0, 0): -2, tid(0, 1): -2, tid(0, 2): -2, tid(0, 3): -2}}},
			active: map[string][]taskID{"a": {tid(0, 0), tid(0, 1), tid(0, 2), tid(0, 3)}, "b": nil},
			warmup: map[string][]taskID{"b": {tid(0, 2), tid(0, 3)}}, probe: true,
		},
		{
			name:   "warm-ups are bounded by MaxWarmupReplicas",
			c:      haCase{clients: []string{"a", "b"}, statefulN: 6, running: all("a", 6), end: 100000, warmups: 1},
			active: map[string][]taskID{"a": {tid(0, 0), tid(0, 1), tid(0, 2), tid(0, 3), tid(0, 4), tid(0, 5)}},
			warmup: map[string][]taskID{"b": {tid(0, 3)}}, probe: true,
		},
		{
			name: "caught-up warm-ups take their tasks at the probing rebalance",
			c: haCase{clients: []string{"a", "b"}, statefulN: 4, running: all("a", 4), end: 100000, warmups: 2,
				sums: map[string]map[taskID]int64{"b": {tid(0, 2): 99000, tid(0, 3): 95000}}},
			active: map[string][]taskID{"a": {tid(0, 0), tid(0, 1)}, "b": {tid(0, 2), tid(0, 3)}},
			warmup: map[string][]taskID{}, probe: false,
		},
		{
			name: "the tasks a caught-up newcomer has state for move to it first",
			c: haCase{clients: []string{"a", "b"}, statefulN: 4, running: all("a", 4), end: 100000, warmups: 2,
				sums: map[string]map[taskID]int64{"b": {tid(0, 0): 99000, tid(0, 1): 99999}}},
			active: map[string][]taskID{"a": {tid(0, 2), tid(0, 3)}, "b": {tid(0, 0), tid(0, 1)}},
			warmup: map[string][]taskID{}, probe: false,
		},
		{
			name: "a restarted client keyed by its process ID gets its tasks back",
			c: haCase{clients: []string{"a", "b"}, statefulN: 4, end: 100000, warmups: 2,
				running: map[taskID]string{tid(0, 0): "a", tid(0, 1): "a"},
				sums:    map[string]map[taskID]int64{"b": {tid(0, 2): 99990, tid(0, 3): 99990}}},
			active: map[string][]taskID{"a": {tid(0, 0), tid(0, 1)}, "b": {tid(0, 2), tid(0, 3)}},
			warmup: map[string][]taskID{}, probe: false,
		},
		{
			name: "a restarted client far behind still gets its tasks when no one is closer",
			c: haCase{clients: []string{"a", "b"}, statefulN: 4, end: 100000, warmups: 2,
				running: map[taskID]string{tid(0, 0): "a", tid(0, 1): "a"},
				sums:    map[string]map[taskID]int64{"b": {tid(0, 2): 10, tid(0, 3): 10}}},
			active: map[string][]taskID{"a": {tid(0, 0), tid(0, 1)}, "b": {tid(0, 2), tid(0, 3)}},
			warmup: map[string][]taskID{}, probe: false,
		},
		{
			name: "unknown lags: sticky and balanced, no warm-ups, a probing rebalance to retry",
			c: haCase{clients: []string{"a", "b", "c"}, statefulN: 6, end: -1, warmups: 2, standbys: 1,
				running: map[taskID]string{tid(0, 0): "a", tid(0, 1): "a", tid(0, 2): "a", tid(0, 3): "a"},
				sums:    map[string]map[taskID]int64{"c": {tid(0, 4): 5, tid(0, 5): 5}, "b": {tid(0, 4): 4}}},
			active: map[string][]taskID{"a": {tid(0, 0), tid(0, 1)}, "b": {tid(0, 2), tid(0, 3)}, "c": {tid(0, 4), tid(0, 5)}},
			warmup: map[string][]taskID{}, probe: true,
		},
		{
			// The balanced assignment wants one task on b: c keeps it
			// until b's standby caught up (a probing rebalance).
			name: "failover to the caught-up standby, not to a client without state",
			c: haCase{clients: []string{"b", "c"}, statefulN: 2, end: 100000, warmups: 2, standbys: 1,
				sums: map[string]map[taskID]int64{"c": {tid(0, 0): 99999, tid(0, 1): 100000}}},
			active: map[string][]taskID{"c": {tid(0, 0), tid(0, 1)}, "b": nil},
			warmup: map[string][]taskID{}, standby: map[string][]taskID{"b": {tid(0, 0), tid(0, 1)}}, probe: true,
		},
		{
			name: "standbys move back to the caught-up copy; the desired client warms up",
			c: haCase{clients: []string{"a", "b", "c"}, statefulN: 3, end: 100000, warmups: 2, standbys: 1,
				running: map[taskID]string{tid(0, 0): "a", tid(0, 1): "b", tid(0, 2): "c"},
				sums:    map[string]map[taskID]int64{"c": {tid(0, 0): 100000}}},
			active: map[string][]taskID{"a": {tid(0, 0)}, "b": {tid(0, 1)}, "c": {tid(0, 2)}},
			// Balanced: 0_0 on b, 0_1 on c, 0_2 on a; 0_0 goes back
			// to c, which has it, and b keeps a warm-up; nobody has
			// 0_1 or 0_2 but their actives, so they stay.
			standby: map[string][]taskID{"a": {tid(0, 2)}, "b": {tid(0, 0)}, "c": {tid(0, 0), tid(0, 1)}},
			warmup:  map[string][]taskID{"b": {tid(0, 0)}}, probe: true,
		},
		{
			name: "stateless tasks balance the load the stateful moves left",
			c: haCase{clients: []string{"a", "b"}, statefulN: 4, statelessN: 4, running: all("a", 4), end: 100000, warmups: 4,
				sums: map[string]map[taskID]int64{}},
			active:    map[string][]taskID{"a": {tid(0, 0), tid(0, 1), tid(0, 2), tid(0, 3)}, "b": nil},
			warmup:    map[string][]taskID{"b": {tid(0, 2), tid(0, 3)}},
			stateless: map[string]int{"a": 0, "b": 4}, probe: true,
		},
		{
			name: "stateless tasks stay with their running owner while balanced",
			c: haCase{clients: []string{"a", "b"}, statelessN: 4, end: 0,
				running: map[taskID]string{tid(1, 0): "b", tid(1, 1): "b", tid(1, 2): "a", tid(1, 3): "a"}},
			active:    map[string][]taskID{"a": nil, "b": nil},
			stateless: map[string]int{"a": 2, "b": 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.c.input()
			plan := assignHA(in)
			checkHAInvariants(t, in, plan)
			for c, want := range tc.active {
				if got := tasksOn(plan, c, 0); !slices.Equal(got, want) {
					t.Errorf("stateful actives of %s: %v, want %v (plan %v)", c, got, want, plan.active)
				}
			}
			for _, c := range in.clients {
				if tc.warmup != nil && !slices.Equal(plan.warmup[c], tc.warmup[c]) {
					t.Errorf("warm-ups of %s: %v, want %v", c, plan.warmup[c], tc.warmup[c])
				}
				if tc.standby != nil && !slices.Equal(plan.standby[c], tc.standby[c]) {
					t.Errorf("standbys of %s: %v, want %v", c, plan.standby[c], tc.standby[c])
				}
			}
			for c, n := range tc.stateless {
				if got := len(tasksOn(plan, c, 1)); got != n {
					t.Errorf("stateless tasks of %s: %d, want %d (plan %v)", c, got, n, plan.active)
				}
			}
			if tc.name == "stateless tasks stay with their running owner while balanced" {
				for tk, c := range in.running {
					if plan.active[tk] != c {
						t.Errorf("stateless task %s moved from %s to %s", tk, c, plan.active[tk])
					}
				}
			}
			if plan.probe != tc.probe {
				t.Errorf("probing rebalance %v, want %v", plan.probe, tc.probe)
			}
		})
	}
}

// Standbys: NumStandbyReplicas each on distinct clients other than the
// active's, as many as there are other clients, balanced.
func TestHAStandbysDistinct(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		in := haCase{clients: []string{"a", "b", "c"}, statefulN: 6, statelessN: 3, end: 0, standbys: n, warmups: 2}.input()
		plan := assignHA(in)
		checkHAInvariants(t, in, plan)
		per := map[taskID]int{}
		for _, sbs := range plan.standby {
			for _, s := range sbs {
				per[s]++
			}
		}
		for p := range int32(6) {
			if want := min(n, 2); per[tid(0, p)] != want {
				t.Errorf("standbys=%d: task 0_%d has %d standbys, want %d: %v", n, p, per[tid(0, p)], want, plan.standby)
			}
		}
		for _, c := range in.clients {
			if got := len(plan.standby[c]); got != 6*min(n, 2)/3 {
				t.Errorf("standbys=%d: client %s keeps %d standbys, want %d: %v", n, c, got, 6*min(n, 2)/3, plan.standby)
			}
		}
		if plan.probe {
			t.Errorf("standbys=%d: probing rebalance due without any movement", n)
		}
	}
}

// Random inputs: the invariants hold, and with every lag known and no
// warm-ups allowed, every stateful active is on a caught-up client when
// one exists.
func TestHAAssignmentRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		nc := 1 + r.IntN(5)
		c := haCase{statefulN: int32(r.IntN(9)), statelessN: int32(r.IntN(5)), end: 1000 + r.Int64N(50000),
			standbys: r.IntN(3), warmups: r.IntN(3), running: map[taskID]string{}, sums: map[string]map[taskID]int64{}}
		if r.IntN(5) == 0 {
			c.end = -1
		}
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
		for p := range c.statelessN {
			if r.IntN(2) == 0 {
				c.running[tid(1, p)] = c.clients[r.IntN(nc)]
			}
		}
		in := c.input()
		plan := assignHA(in)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkHAInvariants(t, in, plan) })
		if c.end < 0 {
			continue
		}
		h := &haAssigner{in: in, lag: map[string]map[taskID]int64{}, known: true}
		h.computeLags(in.tasks)
		for tk, owner := range plan.active {
			if !in.stateful[tk] || h.caughtUp(tk, owner) {
				continue
			}
			for _, o := range in.clients {
				if h.caughtUp(tk, o) {
					t.Fatalf("case %d: task %s on %s (lag %d), not on caught-up %s (lag %d)", i, tk, owner, h.lag[owner][tk], o, h.lag[o][tk])
				}
			}
		}
	}
}
