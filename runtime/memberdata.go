package runtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// What the members and the group leader tell each other beyond partitions,
// in the user data of the consumer protocol's member metadata (join) and
// member assignment (sync). Kafka Streams carries the same in its
// SubscriptionInfo and AssignmentInfo.

// memberDataVersion is the version of both encodings below. Version 2
// (issue 14) added the advertised host to the member data and the hosts'
// tasks to the assignment data; a member of version 1 is refused by name
// (its metadata is taken as having no local state, its assignment as
// having no standbys), so a group mixing both needs a rolling restart.
const memberDataVersion = 2

// memberData is what a member reports when it joins: its process ID, its
// advertised host (Kafka Streams' application.server, "" without one) and,
// per task with local state here, the offset sum that state reflects
// (offsetSumRunning for a task running as active). The leader keys
// clients by instance ID, else by process ID, and derives each client's
// lag per task from the offset sums.
type memberData struct {
	process processID
	host    string
	sums    map[taskID]int64
}

// maxHostLen bounds an advertised host:port.
const maxHostLen = 1024

// encodeMemberData encodes d: the version byte, the 16-byte process ID, the
// host (a uvarint length and its bytes), the number of tasks (uvarint),
// then per task in task order its sub-topology (uvarint), partition
// (uvarint) and offset sum (varint).
func encodeMemberData(d memberData) []byte {
	b := make([]byte, 0, 1+len(d.process)+len(d.host)+2*binary.MaxVarintLen64+len(d.sums)*8)
	b = append(b, memberDataVersion)
	b = append(b, d.process[:]...)
	b = appendString(b, d.host)
	ids := make([]taskID, 0, len(d.sums))
	for id := range d.sums {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, taskID.compare)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendTaskID(b, id)
		b = binary.AppendVarint(b, d.sums[id])
	}
	return b
}

// decodeMemberData decodes encodeMemberData's form.
func decodeMemberData(b []byte) (memberData, error) {
	var d memberData
	fail := func(format string, args ...any) (memberData, error) {
		return memberData{}, fmt.Errorf("sluice: malformed member metadata (%d bytes): %s", len(b), fmt.Sprintf(format, args...))
	}
	if len(b) == 0 {
		return fail("empty")
	}
	if b[0] != memberDataVersion {
		return fail("version %d, want %d (an instance of another Sluice version)", b[0], memberDataVersion)
	}
	rest := b[1:]
	if len(rest) < len(d.process) {
		return fail("truncated process ID")
	}
	copy(d.process[:], rest)
	rest = rest[len(d.process):]
	var err error
	if d.host, rest, err = readString(rest); err != nil {
		return fail("host: %v", err)
	}
	n, l := binary.Uvarint(rest)
	// A task takes at least 3 bytes, which bounds n before allocating.
	if l <= 0 || n > uint64(len(rest)-l)/3 {
		return fail("bad task count")
	}
	rest = rest[l:]
	d.sums = make(map[taskID]int64, n)
	for i := range n {
		var id taskID
		var err error
		if id, rest, err = readTaskID(rest); err != nil {
			return fail("task %d: %v", i, err)
		}
		sum, l := binary.Varint(rest)
		if l <= 0 {
			return fail("task %s: bad offset sum", id)
		}
		rest = rest[l:]
		if sum < 0 && sum != offsetSumRunning {
			return fail("task %s: offset sum %d", id, sum)
		}
		if _, dup := d.sums[id]; dup {
			return fail("task %s listed twice", id)
		}
		d.sums[id] = sum
	}
	if len(rest) > 0 {
		return fail("%d bytes after the last task", len(rest))
	}
	return d, nil
}

// assignmentData is what the leader adds to a member's assignment: the
// standby tasks it keeps, and among them the warm-up replicas (standbys
// that exist to catch a copy up before its task moves there). It is also
// where a task the member is to run arrives as a standby while its
// partitions are still being revoked from their previous owner
// (cooperative rebalancing assigns them in the follow-up rebalance).
//
// hosts are every advertised host's active and standby tasks of the
// assignment (Kafka Streams' AssignmentInfo partitionsByHost and
// standbyPartitionsByHost), the same in every member's data, so that each
// instance knows where every key's task runs (interactive queries). An
// active task is listed at its new owner even while the cooperative
// protocol holds it back for the follow-up rebalance: a query there is
// answered "not ready" until it runs.
type assignmentData struct {
	standbys []taskID // sorted; warm-ups included
	warmups  []taskID // sorted; a subset of standbys
	hosts    []hostTasks
}

// hostTasks are an advertised host's tasks.
type hostTasks struct {
	host     string
	active   []taskID // sorted
	standbys []taskID // sorted
}

// encodeAssignmentData encodes d: the version byte, then the standbys and
// the warm-ups, each a count (uvarint) and tasks as sub-topology and
// partition (uvarints), then the number of hosts and per host its name (a
// uvarint length and its bytes), active and standby tasks as the
// standbys.
func encodeAssignmentData(d assignmentData) []byte {
	b := []byte{memberDataVersion}
	for _, ids := range [][]taskID{d.standbys, d.warmups} {
		b = appendTaskIDs(b, ids)
	}
	b = binary.AppendUvarint(b, uint64(len(d.hosts)))
	for _, h := range d.hosts {
		b = appendString(b, h.host)
		b = appendTaskIDs(b, h.active)
		b = appendTaskIDs(b, h.standbys)
	}
	return b
}

func appendTaskIDs(b []byte, ids []taskID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendTaskID(b, id)
	}
	return b
}

// readTaskIDs reads appendTaskIDs' form: sorted tasks, each listed once.
func readTaskIDs(b []byte) ([]taskID, []byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > uint64(len(b)-l)/2 {
		return nil, nil, fmt.Errorf("bad count")
	}
	b = b[l:]
	ids := make([]taskID, 0, n)
	for i := range n {
		var id taskID
		var err error
		if id, b, err = readTaskID(b); err != nil {
			return nil, nil, fmt.Errorf("task %d: %v", i, err)
		}
		if len(ids) > 0 && ids[len(ids)-1].compare(id) >= 0 {
			return nil, nil, fmt.Errorf("tasks not sorted at %s", id)
		}
		ids = append(ids, id)
	}
	return ids, b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > maxHostLen || n > uint64(len(b)-l) {
		return "", nil, fmt.Errorf("bad length")
	}
	b = b[l:]
	return string(b[:n]), b[n:], nil
}

// decodeAssignmentData decodes encodeAssignmentData's form; no bytes at
// all is an assignment without standbys (a leader without them).
func decodeAssignmentData(b []byte) (assignmentData, error) {
	var d assignmentData
	if len(b) == 0 {
		return d, nil
	}
	fail := func(format string, args ...any) (assignmentData, error) {
		return assignmentData{}, fmt.Errorf("sluice: malformed assignment user data (%d bytes): %s", len(b), fmt.Sprintf(format, args...))
	}
	if b[0] != memberDataVersion {
		return fail("version %d, want %d (a leader of another Sluice version)", b[0], memberDataVersion)
	}
	rest := b[1:]
	lists := [2][]taskID{}
	for li, what := range []string{"standby", "warm-up"} {
		ids, r, err := readTaskIDs(rest)
		if err != nil {
			return fail("%s tasks: %v", what, err)
		}
		lists[li], rest = ids, r
	}
	n, l := binary.Uvarint(rest)
	// A host takes at least 3 bytes, which bounds n before allocating.
	if l <= 0 || n > uint64(len(rest)-l)/3 {
		return fail("bad host count")
	}
	rest = rest[l:]
	for i := range n {
		var h hostTasks
		var err error
		if h.host, rest, err = readString(rest); err != nil {
			return fail("host %d: %v", i, err)
		}
		if len(d.hosts) > 0 && d.hosts[len(d.hosts)-1].host >= h.host {
			return fail("hosts not sorted at %q", h.host)
		}
		if h.active, rest, err = readTaskIDs(rest); err != nil {
			return fail("host %s active tasks: %v", h.host, err)
		}
		if h.standbys, rest, err = readTaskIDs(rest); err != nil {
			return fail("host %s standby tasks: %v", h.host, err)
		}
		d.hosts = append(d.hosts, h)
	}
	if len(rest) > 0 {
		return fail("%d bytes after the hosts", len(rest))
	}
	d.standbys, d.warmups = lists[0], lists[1]
	for _, w := range d.warmups {
		if _, ok := slices.BinarySearchFunc(d.standbys, w, taskID.compare); !ok {
			return fail("warm-up task %s is not among the standbys", w)
		}
	}
	return d, nil
}

func appendTaskID(b []byte, id taskID) []byte {
	b = binary.AppendUvarint(b, uint64(id.sub))
	return binary.AppendUvarint(b, uint64(id.partition))
}

func readTaskID(b []byte) (taskID, []byte, error) {
	sub, l := binary.Uvarint(b)
	if l <= 0 || sub > math.MaxInt32 {
		return taskID{}, nil, fmt.Errorf("bad sub-topology")
	}
	b = b[l:]
	p, l := binary.Uvarint(b)
	if l <= 0 || p > math.MaxInt32 {
		return taskID{}, nil, fmt.Errorf("bad partition")
	}
	return taskID{int(sub), int32(p)}, b[l:], nil
}
