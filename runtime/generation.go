package runtime

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Changelog records carry the group generation of the member that wrote
// them (GenerationHeader), so that a restore or a standby never ends on a
// zombie's write.
//
// A zombie is a member paused past its session timeout (a long GC pause, a
// SIGSTOP, a frozen VM) and resumed after the group moved its tasks: until
// its next heartbeat or commit tells it so, it goes on processing the input
// it had fetched, from its stale state, and under at-least-once its
// changelog writes land after the new owner's (under exactly-once its
// transaction is aborted or fenced, and read-committed readers never see
// them). A restore that ended on such a record would take the stale value
// for every key it wrote, losing the new owner's updates in between. The
// records the zombie had buffered in its client before the pause, sent
// once it resumes, carry its old generation too.
//
// A member tags its changelog records with the generation of its latest
// assignment (onAssigned): a zombie keeps its old one until it rejoins,
// and it rejoins only after its tasks were closed (onLost). A task that
// moves is assigned to its new owner in a later generation than any of its
// former owner's. So within one incarnation of the group, a changelog
// record whose generation is below one seen before it in the same
// partition was written by a member that no longer owned the task: a
// restore and a standby skip it (genFilter). The largest generation seen is
// kept with the local state (metaGeneration) for restores that start from
// a checkpoint.
//
// Generations restart at 1 when the group is deleted and created again.
// A generation larger than the current one (the generation of this
// member's latest assignment) therefore comes from an earlier incarnation:
// while the largest generation seen is above the current one nothing is
// skipped, and a record at or below the current generation after it starts
// the new incarnation's count. Records without the header (written before
// it existed, or by Kafka Streams) are applied as before.

// GenerationHeader is the header of a changelog record that gives the
// group generation of the member that wrote it: 4 bytes, big-endian.
const GenerationHeader = "sluice.gen"

// metaGeneration is the meta record of the largest group generation of the
// changelog records a task's local state reflects (4 bytes, big-endian):
// a restore from the local state's changelog offsets starts its genFilter
// with it.
var metaGeneration = []byte("generation")

// recordGeneration returns the generation of r's GenerationHeader, if it
// has a well-formed one.
func recordGeneration(r *kgo.Record) (int32, bool) {
	for _, h := range r.Headers {
		if h.Key == GenerationHeader && len(h.Value) == 4 {
			return int32(binary.BigEndian.Uint32(h.Value)), true
		}
	}
	return 0, false
}

// genFilter tells which records of one changelog partition, read in
// offset order, are a zombie's writes (see GenerationHeader).
type genFilter struct {
	max int32 // the largest generation seen; 0: none
}

// stale reports whether a record of generation g, read after the records
// the filter has seen, is a zombie's write; cur is the current group
// generation (the reader's latest assignment's). A record it does not
// skip updates the filter.
func (f *genFilter) stale(g, cur int32) bool {
	switch {
	case g >= f.max:
		f.max = g
		return false
	case f.max <= cur:
		return true // below a newer owner's write of this incarnation
	case g <= cur:
		f.max = g // the first write of the group's new incarnation
		return false
	default:
		return false // both from an earlier incarnation: no rule applies
	}
}

// generationBytes encodes a generation as the value of a GenerationHeader
// or of metaGeneration.
func generationBytes(g int32) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(g))
}

// decodeGeneration decodes the value of metaGeneration.
func decodeGeneration(b []byte) (int32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("sluice: corrupt generation meta record (%d bytes, want 4)", len(b))
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}
