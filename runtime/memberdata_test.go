package runtime

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMemberDataRoundTrip(t *testing.T) {
	for _, d := range []memberData{
		{},
		{process: processID{0xde, 0xad, 15: 1}, host: "node-1.example:8080", sums: map[taskID]int64{{0, 0}: offsetSumRunning, {0, 1}: 0, {2, 7}: 1<<62 + 5}},
	} {
		b := encodeMemberData(d)
		got, err := decodeMemberData(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.process != d.process || got.host != d.host || len(got.sums) != len(d.sums) || !maps.Equal(got.sums, d.sums) {
			t.Fatalf("round trip: %v, want %v", got, d)
		}
	}
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{nil, "empty"},
		{[]byte{9}, "version 9"},
		{append([]byte{memberDataVersion}, make([]byte, 10)...), "truncated process ID"},
		{[]byte{1, 0xde}, "version 1, want 2 (an instance of another Sluice version)"},
		{append(append([]byte{memberDataVersion}, make([]byte, 16)...), 0, 1, 0, 0, 5), "offset sum -3"},
		{append(append([]byte{memberDataVersion}, make([]byte, 16)...), 0, 2, 0, 0, 2, 0, 0, 2), "listed twice"},
		{append(append([]byte{memberDataVersion}, make([]byte, 16)...), 0, 0, 7), "1 bytes after"},
		{append(append([]byte{memberDataVersion}, make([]byte, 16)...), 5, 'a', 'b'), "host: bad length"},
	} {
		_, err := decodeMemberData(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sluice: malformed member metadata") {
			t.Errorf("decode %x: %v, want an error saying %q", tc.b, err, tc.want)
		}
	}
}

func TestAssignmentDataRoundTrip(t *testing.T) {
	d := assignmentData{standbys: []taskID{{0, 0}, {0, 5}, {3, 1}}, warmups: []taskID{{0, 5}},
		hosts: []hostTasks{{host: "a:1", active: []taskID{{0, 1}, {1, 0}}, standbys: []taskID{{0, 2}}}, {host: "b:2", active: []taskID{{0, 2}}}}}
	got, err := decodeAssignmentData(encodeAssignmentData(d))
	if err != nil || !slices.Equal(got.standbys, d.standbys) || !slices.Equal(got.warmups, d.warmups) || len(got.hosts) != 2 {
		t.Fatalf("round trip: %v, %v; want %v", got, err, d)
	}
	for i, h := range got.hosts {
		if h.host != d.hosts[i].host || !slices.Equal(h.active, d.hosts[i].active) || !slices.Equal(h.standbys, d.hosts[i].standbys) {
			t.Fatalf("round trip: host %d is %+v, want %+v", i, h, d.hosts[i])
		}
	}
	unsorted := d
	unsorted.hosts = []hostTasks{d.hosts[1], d.hosts[0]}
	if _, err := decodeAssignmentData(encodeAssignmentData(unsorted)); err == nil || !strings.Contains(err.Error(), `hosts not sorted at "a:1"`) {
		t.Fatalf("unsorted hosts: %v", err)
	}
	if _, err := decodeAssignmentData([]byte{1, 0, 0}); err == nil || !strings.Contains(err.Error(), "version 1, want 2") {
		t.Fatalf("a leader of version 1: %v", err)
	}
	if got, err := decodeAssignmentData(nil); err != nil || len(got.standbys)+len(got.warmups) != 0 {
		t.Fatalf("no user data: %v, %v; want no standbys", got, err)
	}
	if _, err := decodeAssignmentData([]byte{memberDataVersion, 1, 0, 1, 1, 0, 2, 0}); err == nil || !strings.Contains(err.Error(), "warm-up task 0_2 is not among the standbys") {
		t.Fatalf("warm-up outside the standbys: %v", err)
	}
}

// testMember is one member of a synthetic group for Balance.
type testMember struct {
	id, instance string
	bal          *taskBalancer
	owned        map[string][]int32
}

func newTestBalancer(process byte, standbys int) *taskBalancer {
	return &taskBalancer{
		subs: map[string]int{"in": 0, "app-agg-repartition": 1}, topics: map[int][]string{0: {"in"}, 1: {"app-agg-repartition"}},
		changelogs: map[int][]string{1: {"app-agg-changelog"}},
		process:    processID{15: process}, offsets: &taskOffsets{},
		standbys: standbys, maxWarmups: 2, acceptableLag: 10000, probingInterval: time.Hour,
		forceRebalance: func() {},
	}
}

// syncGroup runs the leader's (the first member's) Balance over the
// members' join metadata and hands each member its assignment through
// ParseSyncAssignment. It returns each member's partitions.
func syncGroup(t *testing.T, ends map[topicPartition]int64, ms ...*testMember) map[string]map[string][]int32 {
	t.Helper()
	var join []kmsg.JoinGroupResponseMember
	for _, m := range ms {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		if m.instance != "" {
			jm.InstanceID = kmsg.StringPtr(m.instance)
		}
		jm.ProtocolMetadata = m.bal.JoinGroupMetadata([]string{"in", "app-agg-repartition"}, m.owned, 1)
		join = append(join, jm)
	}
	leader := ms[0].bal
	leader.endOffsets = func(_ context.Context, topics []string) (map[topicPartition]int64, error) {
		if !slices.Equal(topics, []string{"app-agg-changelog"}) {
			t.Errorf("end offsets listed for %v, want the changelog", topics)
		}
		return ends, nil
	}
	gb, _, err := leader.MemberBalancer(join)
	if err != nil {
		t.Fatal(err)
	}
	into, err := gb.(*kgo.ConsumerBalancer).BalanceOrError(map[string]int32{"in": 4, "app-agg-repartition": 4})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]int32{}
	for _, a := range into.IntoSyncAssignment() {
		for _, m := range ms {
			if m.id == a.MemberID {
				parts, err := m.bal.ParseSyncAssignment(a.MemberAssignment)
				if err != nil {
					t.Fatal(err)
				}
				out[m.id] = parts
			}
		}
	}
	return out
}

// Balance end to end: clients keyed by instance ID, standbys in the
// assignment's user data on members other than the active's, one per
// stateful task, none for stateless tasks.
func TestBalanceStandbysInUserData(t *testing.T) {
	ms := []*testMember{
		{id: "m1", instance: "i1", bal: newTestBalancer(1, 1)},
		{id: "m2", instance: "i2", bal: newTestBalancer(2, 1)},
		{id: "m3", instance: "i3", bal: newTestBalancer(3, 1)},
	}
	ends := map[topicPartition]int64{}
	for p := range int32(4) {
		ends[topicPartition{"app-agg-changelog", p}] = 0
	}
	got := syncGroup(t, ends, ms...)
	active := map[taskID]string{}
	for id, parts := range got {
		for topic, ps := range parts {
			for _, p := range ps {
				tk := taskID{ms[0].bal.subs[topic], p}
				if o, dup := active[tk]; dup {
					t.Fatalf("task %s on %s and %s", tk, o, id)
				}
				active[tk] = id
			}
		}
	}
	if len(active) != 8 {
		t.Fatalf("%d tasks assigned, want 8: %v", len(active), got)
	}
	per := map[taskID]int{}
	for _, m := range ms {
		d := m.bal.standbyAssignment()
		for _, s := range d.standbys {
			if s.sub != 1 {
				t.Errorf("member %s: standby of stateless task %s", m.id, s)
			}
			if active[s] == m.id {
				t.Errorf("member %s: standby of its own active task %s", m.id, s)
			}
			per[s]++
		}
		if len(d.warmups) != 0 {
			t.Errorf("member %s: warm-ups %v with every lag 0", m.id, d.warmups)
		}
	}
	for p := range int32(4) {
		if per[taskID{1, p}] != 1 {
			t.Errorf("task 1_%d has %d standbys, want 1", p, per[taskID{1, p}])
		}
	}
}

// A restarted instance without an instance ID (new member ID, no owned
// partitions) is known by its process ID: it gets back the stateful tasks
// it has state for, though another member owns them now.
func TestBalanceRestartedProcessSticky(t *testing.T) {
	a := &testMember{id: "a", bal: newTestBalancer(1, 0), owned: map[string][]int32{"in": {0, 1, 2, 3}, "app-agg-repartition": {0, 1, 2, 3}}}
	for p := range int32(4) {
		a.bal.offsets.set(taskID{1, p}, offsetSumRunning)
	}
	b := &testMember{id: "b-after-restart", bal: newTestBalancer(2, 0)}
	b.bal.offsets.set(taskID{1, 2}, 5000)
	b.bal.offsets.set(taskID{1, 3}, 4990)
	ends := map[topicPartition]int64{}
	for p := range int32(4) {
		ends[topicPartition{"app-agg-changelog", p}] = 5000
	}
	syncGroup(t, ends, a, b)
	// Cooperative: the tasks moving to b are revoked from a first; until
	// the follow-up rebalance b keeps them as standbys.
	if got := b.bal.standbyAssignment().standbys; !slices.Equal(got, []taskID{{1, 2}, {1, 3}}) {
		t.Fatalf("restarted member: standbys (tasks held back for it) %v, want 1_2 and 1_3", got)
	}
	// The follow-up rebalance: a owns what it kept, and reports the
	// local sums of the copies it closed (caught up).
	a.owned = map[string][]int32{"in": {0, 1, 2, 3}, "app-agg-repartition": {0, 1}}
	a.bal.offsets.set(taskID{1, 2}, 5000)
	a.bal.offsets.set(taskID{1, 3}, 5000)
	got := syncGroup(t, ends, a, b)
	if !slices.Equal(got["b-after-restart"]["app-agg-repartition"], []int32{2, 3}) {
		t.Fatalf("restarted member got %v, want the stateful tasks 1_2 and 1_3 it has state for", got["b-after-restart"])
	}
	if !b.bal.probeDue().IsZero() || !a.bal.probeDue().IsZero() {
		t.Fatal("probing rebalance due without warm-ups")
	}
}

// A newcomer without state gets warm-ups of the stateful tasks the
// balanced assignment wants on it, in its assignment's user data, and the
// leader schedules the probing rebalance.
func TestBalanceWarmupsAndProbe(t *testing.T) {
	a := &testMember{id: "a", bal: newTestBalancer(1, 0), owned: map[string][]int32{"in": {0, 1, 2, 3}, "app-agg-repartition": {0, 1, 2, 3}}}
	b := &testMember{id: "b", bal: newTestBalancer(2, 0)}
	ends := map[topicPartition]int64{}
	for p := range int32(4) {
		ends[topicPartition{"app-agg-changelog", p}] = 100000
	}
	got := syncGroup(t, ends, a, b)
	if len(got["b"]["app-agg-repartition"]) != 0 {
		t.Fatalf("newcomer without state got stateful tasks %v", got["b"])
	}
	d := b.bal.standbyAssignment()
	if !slices.Equal(d.warmups, []taskID{{1, 2}, {1, 3}}) || !slices.Equal(d.standbys, d.warmups) {
		t.Fatalf("newcomer: standbys %v, warm-ups %v; want warm-ups 1_2 and 1_3", d.standbys, d.warmups)
	}
	if due := a.bal.probeDue(); due.IsZero() || time.Until(due) > time.Hour {
		t.Fatalf("leader: probing rebalance due %v, want within the hour", due)
	}
	a.bal.scheduleProbe(false)
}
