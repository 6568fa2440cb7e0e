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

// memberDataVersion is the version of both encodings below.
const memberDataVersion = 1

// memberData is what a member reports when it joins: its process ID and,
// per task with local state here, the offset sum that state reflects
// (offsetSumRunning for a task running as active). The leader keys
// clients by instance ID, else by process ID, and derives each client's
// lag per task from the offset sums.
type memberData struct {
	process processID
	sums    map[taskID]int64
}

// encodeMemberData encodes d: the version byte, the 16-byte process ID, the
// number of tasks (uvarint), then per task in task order its sub-topology
// (uvarint), partition (uvarint) and offset sum (varint).
func encodeMemberData(d memberData) []byte {
	b := make([]byte, 0, 1+len(d.process)+binary.MaxVarintLen64+len(d.sums)*8)
	b = append(b, memberDataVersion)
	b = append(b, d.process[:]...)
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
type assignmentData struct {
	standbys []taskID // sorted; warm-ups included
	warmups  []taskID // sorted; a subset of standbys
}

// encodeAssignmentData encodes d: the version byte, then the standbys and
// the warm-ups, each a count (uvarint) and tasks as sub-topology and
// partition (uvarints).
func encodeAssignmentData(d assignmentData) []byte {
	b := []byte{memberDataVersion}
	for _, ids := range [][]taskID{d.standbys, d.warmups} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = appendTaskID(b, id)
		}
	}
	return b
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
		n, l := binary.Uvarint(rest)
		if l <= 0 || n > uint64(len(rest)-l)/2 {
			return fail("bad %s count", what)
		}
		rest = rest[l:]
		ids := make([]taskID, 0, n)
		for i := range n {
			var id taskID
			var err error
			if id, rest, err = readTaskID(rest); err != nil {
				return fail("%s task %d: %v", what, i, err)
			}
			if len(ids) > 0 && ids[len(ids)-1].compare(id) >= 0 {
				return fail("%s tasks not sorted at %s", what, id)
			}
			ids = append(ids, id)
		}
		lists[li] = ids
	}
	if len(rest) > 0 {
		return fail("%d bytes after the warm-up tasks", len(rest))
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
