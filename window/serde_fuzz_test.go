package window

import (
	"bytes"
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
)

// FuzzSessionKeySerde decodes arbitrary bytes as a session-windowed key
// (Kafka Streams' SessionWindowedSerializer format: key ‖ int64 end ‖
// int64 start): fewer than 16 bytes is an error; anything else decodes,
// re-encodes to the same bytes, and BaseKey is the bytes before the end.
func FuzzSessionKeySerde(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 15))
	f.Add([]byte("k\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add(bytes.Repeat([]byte{0xff}, 16))
	s := SessionKeySerde(serde.String)
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Decode(b)
		base, berr := s.(BaseKeyer).BaseKey(b)
		if len(b) < 16 {
			if err == nil || berr == nil {
				t.Fatalf("%x: a key of %d bytes decoded (%v, %v)", b, len(b), err, berr)
			}
			return
		}
		if err != nil || berr != nil {
			t.Fatalf("%x: %v, %v", b, err, berr)
		}
		if !bytes.Equal(base, b[:len(b)-16]) || w.Key != string(base) {
			t.Fatalf("%x: base key %x, decoded key %q", b, base, w.Key)
		}
		enc, err := s.Encode(nil, w)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x, %v", b, w, enc, err)
		}
	})
}

// FuzzTimeKeySerdeWindow checks the window a time-windowed key decodes to:
// its end is its start plus the size (TimeWindowedDeserializer), and
// BaseKey is the bytes before the start; fewer than 8 bytes is an error.
func FuzzTimeKeySerdeWindow(f *testing.F) {
	f.Add([]byte{}, int64(1000))
	f.Add([]byte("k\x00\x00\x00\x00\x00\x00\x00\x01"), int64(60000))
	f.Add(bytes.Repeat([]byte{0xff}, 9), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		s := TimeKeySerde(serde.Bytes, time.Duration(size)*time.Millisecond)
		w, err := s.Decode(b)
		base, berr := s.(BaseKeyer).BaseKey(b)
		if len(b) < 8 {
			if err == nil || berr == nil {
				t.Fatalf("%x: a key of %d bytes decoded", b, len(b))
			}
			return
		}
		if err != nil || berr != nil {
			t.Fatalf("%x: %v, %v", b, err, berr)
		}
		sz := (time.Duration(size) * time.Millisecond).Milliseconds()
		if !bytes.Equal(base, b[:len(b)-8]) || !bytes.Equal(w.Key, base) || w.Window.End != w.Window.Start+sz {
			t.Fatalf("%x (size %d ms): base %x, decoded %+v", b, sz, base, w)
		}
		enc, err := s.Encode(nil, w)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x, %v", b, w, enc, err)
		}
	})
}
