package runtime

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzDecodePositions decodes arbitrary bytes as the meta records of input
// positions and changelog end offsets ("positions", "changelog-ends"): no
// panic; an error says the positions are corrupt; what decodes encodes back
// to the same positions.
func FuzzDecodePositions(f *testing.F) {
	f.Add(encodePositions(nil))
	f.Add(encodePositions(map[topicPartition]int64{{"text-input", 0}: 42}))
	f.Add(encodePositions(map[topicPartition]int64{
		{"wordcount-counts-repartition", 3}: 1 << 40,
		{"text-input", 3}:                   7,
	}))
	f.Add(encodePositions(map[topicPartition]int64{{"wordcount-counts-changelog", 0}: 0}))
	f.Add([]byte{0x0a, 't'})                                                    // truncated
	f.Add(append(binary.AppendUvarint(nil, ^uint64(0)-7), make([]byte, 16)...)) // n+12 wraps around
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodePositions(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sluice: corrupt input positions") {
				t.Fatalf("error %q does not say the positions are corrupt", err)
			}
			return
		}
		again, err := decodePositions(encodePositions(m))
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("round trip of %v: %v, %v", m, again, err)
		}
	})
}

// A topic length near 2^64 must not wrap the bounds check around (found while
// writing FuzzDecodePositions, whose corpus holds the case).
func TestDecodePositionsHugeTopicLength(t *testing.T) {
	b := binary.AppendUvarint(nil, ^uint64(0)-7)
	b = append(b, make([]byte, 16)...)
	if m, err := decodePositions(b); err == nil {
		t.Fatalf("decoded %v from a topic length of 2^64-8", m)
	}
}

// FuzzDecodeMemberData decodes arbitrary bytes as a member's metadata user
// data: no panic; an error says it is malformed; what decodes encodes back
// to the same bytes.
func FuzzDecodeMemberData(f *testing.F) {
	f.Add(encodeMemberData(memberData{}))
	f.Add(encodeMemberData(memberData{process: processID{1, 2, 3}, host: "h:1", sums: map[taskID]int64{{0, 0}: offsetSumRunning, {3, 17}: 1 << 40}}))
	f.Add([]byte{memberDataVersion, 1, 2})                                                        // truncated process ID
	f.Add(append(append([]byte{memberDataVersion}, make([]byte, 16)...), 0xff, 0xff, 0xff, 0x0f)) // task count past the data
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeMemberData(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sluice: malformed member metadata") {
				t.Fatalf("error %q does not say the metadata is malformed", err)
			}
			return
		}
		// Varints have one shortest form, which encode writes; a longer
		// one decodes to the same value.
		again, err := decodeMemberData(encodeMemberData(d))
		if err != nil || again.process != d.process || again.host != d.host || !maps.Equal(again.sums, d.sums) {
			t.Fatalf("round trip of %v: %v, %v", d, again, err)
		}
	})
}

// FuzzDecodeAssignmentData decodes arbitrary bytes as an assignment's user
// data (standby and warm-up tasks): no panic; an error says it is
// malformed; what decodes encodes back to the same tasks.
func FuzzDecodeAssignmentData(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeAssignmentData(assignmentData{}))
	f.Add(encodeAssignmentData(assignmentData{standbys: []taskID{{0, 1}, {0, 3}, {2, 0}}, warmups: []taskID{{0, 3}}}))
	f.Add(encodeAssignmentData(assignmentData{hosts: []hostTasks{{host: "a:1", active: []taskID{{0, 0}}}, {host: "b:1", standbys: []taskID{{0, 0}}}}}))
	f.Add([]byte{memberDataVersion, 2, 0, 1, 0, 0, 0}) // unsorted
	f.Add([]byte{memberDataVersion, 0, 1, 0, 1})       // warm-up not a standby
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeAssignmentData(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sluice: malformed assignment user data") {
				t.Fatalf("error %q does not say the user data is malformed", err)
			}
			return
		}
		again, err := decodeAssignmentData(encodeAssignmentData(d))
		if err != nil || !slices.Equal(again.standbys, d.standbys) || !slices.Equal(again.warmups, d.warmups) || len(again.hosts) != len(d.hosts) {
			t.Fatalf("round trip of %v: %v, %v", d, again, err)
		}
		for i, h := range d.hosts {
			if g := again.hosts[i]; g.host != h.host || !slices.Equal(g.active, h.active) || !slices.Equal(g.standbys, h.standbys) {
				t.Fatalf("round trip of host %+v: %+v", h, g)
			}
		}
	})
}
