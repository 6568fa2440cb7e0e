package task_test

import (
	"encoding/binary"
	"maps"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/task"
)

// FuzzDecodeMetadata decodes arbitrary bytes as processor metadata (the
// runtime's "processor-metadata" meta record): no panic; an error says the
// metadata is corrupt; what decodes encodes back to the same entries.
func FuzzDecodeMetadata(f *testing.F) {
	// Real encodings: the keys windowed aggregations write.
	f.Add(task.EncodeMetadata(nil))
	f.Add(task.EncodeMetadata(map[string]int64{"agg.observed-stream-time": 1700000000000}))
	f.Add(task.EncodeMetadata(map[string]int64{
		"views-per-window.observed-stream-time": 1700000060000,
		"views-per-window.last-emit-close-time": -1,
	}))
	f.Add(task.EncodeMetadata(map[string]int64{"": 0}))
	f.Add([]byte{0x05, 'a', 'b'})                                               // truncated
	f.Add(append(binary.AppendUvarint(nil, ^uint64(0)-3), make([]byte, 16)...)) // n+8 wraps around
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := task.DecodeMetadata(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sluice: corrupt processor metadata") {
				t.Fatalf("error %q does not say the metadata is corrupt", err)
			}
			return
		}
		again, err := task.DecodeMetadata(task.EncodeMetadata(m))
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("round trip of %v: %v, %v", m, again, err)
		}
	})
}

// A key length near 2^64 must not wrap the bounds check around (found while
// writing FuzzDecodeMetadata, whose corpus holds the case).
func TestDecodeMetadataHugeKeyLength(t *testing.T) {
	b := binary.AppendUvarint(nil, ^uint64(0)-3)
	b = append(b, make([]byte, 16)...)
	if m, err := task.DecodeMetadata(b); err == nil {
		t.Fatalf("decoded %v from a key length of 2^64-4", m)
	}
}
