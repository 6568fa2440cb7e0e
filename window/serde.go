package window

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/serde"
)

// Windowed is a key with the window it was aggregated in.
type Windowed[K any] struct {
	Key    K
	Window Window
}

// BaseKeyer is implemented by the windowed key serdes of this package:
// BaseKey returns the encoding of the key alone within an encoded windowed
// key (Kafka Streams' WindowedSerializer.serializeBaseKey). Sinks partition
// windowed records by it, as Kafka Streams' WindowedStreamPartitioner does,
// so that every window of a key lands in the partition of the key.
type BaseKeyer interface {
	BaseKey(encoded []byte) ([]byte, error)
}

// TimeKeySerde encodes windowed keys of time windows as Kafka Streams'
// TimeWindowedSerializer does: the key's encoding followed by the window
// start as a big-endian int64. Decoding derives the end from size, as
// TimeWindowedDeserializer does.
func TimeKeySerde[K any](keys serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return timeKeySerde[K]{keys: keys, size: size.Milliseconds()}
}

type timeKeySerde[K any] struct {
	keys serde.Serde[K]
	size int64
}

func (s timeKeySerde[K]) Encode(dst []byte, w Windowed[K]) ([]byte, error) {
	dst, err := s.keys.Encode(dst, w.Key)
	if err != nil {
		return dst, err
	}
	return binary.BigEndian.AppendUint64(dst, uint64(w.Window.Start)), nil
}

// BaseKey implements BaseKeyer: the bytes before the 8-byte start.
func (s timeKeySerde[K]) BaseKey(b []byte) ([]byte, error) {
	if len(b) < 8 {
		return nil, &serde.DecodeError{Serde: "time-windowed key", Len: len(b), Err: fmt.Errorf("want at least 8 bytes")}
	}
	return b[:len(b)-8], nil
}

func (s timeKeySerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 8 {
		return w, &serde.DecodeError{Serde: "time-windowed key", Len: len(b), Err: fmt.Errorf("want at least 8 bytes")}
	}
	k, err := s.keys.Decode(b[:len(b)-8])
	if err != nil {
		return w, err
	}
	start := int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	return Windowed[K]{Key: k, Window: Window{Start: start, End: start + s.size}}, nil
}

// SessionKeySerde encodes windowed keys of session windows as Kafka
// Streams' SessionWindowedSerializer does: the key's encoding, then the
// session end and start as big-endian int64s.
func SessionKeySerde[K any](keys serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionKeySerde[K]{keys: keys}
}

type sessionKeySerde[K any] struct{ keys serde.Serde[K] }

func (s sessionKeySerde[K]) Encode(dst []byte, w Windowed[K]) ([]byte, error) {
	dst, err := s.keys.Encode(dst, w.Key)
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.Window.End))
	return binary.BigEndian.AppendUint64(dst, uint64(w.Window.Start)), nil
}

// BaseKey implements BaseKeyer: the bytes before the 16-byte end and
// start.
func (s sessionKeySerde[K]) BaseKey(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, &serde.DecodeError{Serde: "session-windowed key", Len: len(b), Err: fmt.Errorf("want at least 16 bytes")}
	}
	return b[:len(b)-16], nil
}

func (s sessionKeySerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 16 {
		return w, &serde.DecodeError{Serde: "session-windowed key", Len: len(b), Err: fmt.Errorf("want at least 16 bytes")}
	}
	n := len(b) - 16
	k, err := s.keys.Decode(b[:n])
	if err != nil {
		return w, err
	}
	return Windowed[K]{Key: k, Window: Window{
		End:   int64(binary.BigEndian.Uint64(b[n : n+8])),
		Start: int64(binary.BigEndian.Uint64(b[n+8:])),
	}}, nil
}
