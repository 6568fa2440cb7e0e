package runtime

import (
	"encoding/binary"
	"maps"
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
