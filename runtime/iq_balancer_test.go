package runtime

import (
	"slices"
	"testing"
)

// Every member's assignment data lists every advertised host's active and
// standby tasks, the same for all: each instance knows where every task
// runs (Kafka Streams' partitionsByHost). A member advertising no host is
// left out.
func TestAssignmentCarriesHostsTasks(t *testing.T) {
	a, b, c := newTestBalancer(1, 1), newTestBalancer(2, 1), newTestBalancer(3, 1)
	a.host, b.host = "a.example:8080", "b.example:8080"
	ms := []*testMember{{id: "m-a", bal: a}, {id: "m-b", bal: b}, {id: "m-c", bal: c}}
	parts := syncGroup(t, nil, ms...)
	var want []hostTasks
	for _, m := range ms {
		hosts := m.bal.standbyAssignment().hosts
		if want == nil {
			want = hosts
		}
		if len(hosts) != 2 || hosts[0].host != "a.example:8080" || hosts[1].host != "b.example:8080" {
			t.Fatalf("member %s: hosts %+v, want a.example and b.example", m.id, hosts)
		}
		for i := range hosts {
			if !slices.Equal(hosts[i].active, want[i].active) || !slices.Equal(hosts[i].standbys, want[i].standbys) {
				t.Errorf("member %s: host %s's tasks %+v differ from the first member's %+v", m.id, hosts[i].host, hosts[i], want[i])
			}
		}
	}
	// A host's active tasks are those whose partitions its member got.
	for i, m := range ms[:2] {
		var got []taskID
		for topic, ps := range parts[m.id] {
			sub := map[string]int{"in": 0, "app-agg-repartition": 1}[topic]
			for _, p := range ps {
				got = append(got, taskID{sub, p})
			}
		}
		slices.SortFunc(got, taskID.compare)
		if !slices.Equal(got, want[i].active) {
			t.Errorf("host %s: active tasks %v, want its partitions' %v", want[i].host, want[i].active, got)
		}
	}
	// The stateful tasks (sub-topology 1) have one standby each, on a
	// client other than the active's.
	for _, h := range want {
		for _, s := range h.standbys {
			if slices.Contains(h.active, s) {
				t.Errorf("host %s keeps task %s as active and standby", h.host, s)
			}
		}
	}
}
