package task

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
)

// ProcessorMetadata implements nodes.MetadataContext.
func (c *nodeContext) ProcessorMetadata(key string) (int64, bool) {
	v, ok := c.t.metadata[key]
	return v, ok
}

// SetProcessorMetadata implements nodes.MetadataContext.
func (c *nodeContext) SetProcessorMetadata(key string, v int64) {
	if c.t.metadata == nil {
		c.t.metadata = map[string]int64{}
	}
	c.t.metadata[key] = v
}

// Logger is the task's logger, for processors that log (late records).
func (c *nodeContext) Logger() *slog.Logger { return c.t.log }

// Metadata returns a copy of the processor metadata of the task's nodes
// (see nodes.MetadataContext), for the runtime to commit with the
// task's local state.
func (t *Task) Metadata() map[string]int64 { return maps.Clone(t.metadata) }

// EncodeMetadata encodes processor metadata: per entry the key's length
// (uvarint), the key, the value (8 bytes, big-endian).
func EncodeMetadata(m map[string]int64) []byte {
	var b []byte
	for k, v := range m {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// DecodeMetadata decodes what EncodeMetadata encoded.
func DecodeMetadata(b []byte) (map[string]int64, error) {
	m := map[string]int64{}
	for len(b) > 0 {
		n, l := binary.Uvarint(b)
		if l <= 0 || n > uint64(len(b)-l) || uint64(len(b)-l)-n < 8 { // n+8 could wrap around
			return nil, fmt.Errorf("sluice: corrupt processor metadata (%d bytes left)", len(b))
		}
		b = b[l:]
		k := string(b[:n])
		m[k] = int64(binary.BigEndian.Uint64(b[n:]))
		b = b[n+8:]
	}
	return m, nil
}
