package runtime

import (
	"maps"
	"slices"
	"testing"
)

func tasksOf(subs, partitions int) []taskID {
	var ts []taskID
	for s := range subs {
		for p := range partitions {
			ts = append(ts, taskID{s, int32(p)})
		}
	}
	return ts
}

func loads(assign map[taskID]string, members []string) []int {
	out := make([]int, len(members))
	for _, m := range assign {
		out[slices.Index(members, m)]++
	}
	return out
}

func TestAssignTasksBalancedAndSpread(t *testing.T) {
	members := []string{"a", "b", "c"}
	assign := assignTasks(tasksOf(2, 6), members, nil)
	if got := loads(assign, members); !slices.Equal(got, []int{4, 4, 4}) {
		t.Fatalf("loads = %v, want 4 each", got)
	}
	// Each member gets two tasks of each sub-topology.
	for _, m := range members {
		per := map[int]int{}
		for tk, owner := range assign {
			if owner == m {
				per[tk.sub]++
			}
		}
		if per[0] != 2 || per[1] != 2 {
			t.Errorf("member %s has tasks per sub-topology %v, want 2 and 2", m, per)
		}
	}
}

func TestAssignTasksSticky(t *testing.T) {
	tasks := tasksOf(2, 6)
	before := assignTasks(tasks, []string{"a", "b", "c"}, nil)

	// c leaves: a and b keep all they had and split c's tasks.
	after := assignTasks(tasks, []string{"a", "b"}, before)
	if got := loads(after, []string{"a", "b"}); !slices.Equal(got, []int{6, 6}) {
		t.Fatalf("loads after c left = %v", got)
	}
	for tk, m := range before {
		if m != "c" && after[tk] != m {
			t.Errorf("task %v moved from %s to %s though its owner stayed", tk, m, after[tk])
		}
	}

	// d joins: it takes tasks, and only as many move as it needs.
	joined := assignTasks(tasks, []string{"a", "b", "d"}, after)
	if got := loads(joined, []string{"a", "b", "d"}); !slices.Equal(got, []int{4, 4, 4}) {
		t.Fatalf("loads after d joined = %v", got)
	}
	moved := 0
	for tk, m := range after {
		if joined[tk] != m {
			moved++
		}
	}
	if moved != 4 {
		t.Errorf("%d tasks moved when d joined, want 4", moved)
	}
}

func TestAssignTasksMoreMembersThanTasks(t *testing.T) {
	members := []string{"a", "b", "c", "d", "e"}
	assign := assignTasks(tasksOf(1, 3), members, nil)
	if len(assign) != 3 {
		t.Fatalf("assigned %d tasks, want 3", len(assign))
	}
	owners := slices.Sorted(maps.Values(assign))
	if len(slices.Compact(owners)) != 3 {
		t.Errorf("tasks share members: %v", assign)
	}
}

// Scaling out from one member spreads both sub-topologies over the two.
func TestAssignTasksScaleOutSpreadsSubTopologies(t *testing.T) {
	tasks := tasksOf(2, 6)
	one := assignTasks(tasks, []string{"a"}, nil)
	two := assignTasks(tasks, []string{"a", "b"}, one)
	for _, m := range []string{"a", "b"} {
		per := map[int]int{}
		for tk, owner := range two {
			if owner == m {
				per[tk.sub]++
			}
		}
		if per[0] != 3 || per[1] != 3 {
			t.Errorf("member %s has tasks per sub-topology %v, want 3 and 3", m, per)
		}
	}
}
