package state_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
)

// fuzzBase fills an in-memory store named name with entries cut from b:
// per entry a key length byte (mod 48), the key, a value length byte (mod
// 32), the value. It stands for a local DB whose contents are anything at
// all (a bug of an earlier version, a disk that returns garbage).
func fuzzBase(t *testing.T, name string, b []byte) state.KeyValueStore {
	kv := state.NewInMemoryKeyValueStore(name)
	take := func(n int) []byte {
		n = min(n, len(b))
		v := b[:n:n]
		b = b[n:]
		return v
	}
	for len(b) > 0 {
		k := take(int(take(1)[0] % 48))
		var v []byte
		if len(b) > 0 {
			v = take(int(take(1)[0] % 32))
		}
		if err := kv.Put(bytes.Clone(k), append([]byte{}, v...)); err != nil {
			t.Fatal(err)
		}
	}
	return kv
}

// FuzzCorruptStore opens a window, session or versioned store on a base
// holding arbitrary entries and reads and writes it: no panic, no hang, and
// an error names the store. A range read returns only what is in its
// range. (A corrupt entry read back is not detected: a session ending
// before it starts comes back as it is.)
func FuzzCorruptStore(f *testing.F) {
	win := func(seg int64, key string, start int64, seq int32) []byte {
		k := binary.BigEndian.AppendUint64(nil, uint64(seg))
		k = state.AppendWindowKey(k, []byte(key), start, seq)
		return append([]byte{byte(len(k))}, append(k, 1, 'v')...)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), win(0, "k", 1000, 0))
	f.Add(uint8(0), append(win(0, "k", 1000, 0), win(1, "k", 70000, 0)...))
	f.Add(uint8(0), win(-1, "k", 1000, 0))      // a negative segment ID
	f.Add(uint8(0), win(5, "k", 1000, 0))       // in the wrong segment
	f.Add(uint8(0), []byte{3, 0, 0, 0, 1, 'v'}) // a key shorter than a segment
	f.Add(uint8(1), []byte{24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add(uint8(2), []byte{1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Add(uint8(2), []byte{2, 1, 'k', 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		const name = "corrupt"
		base := fuzzBase(t, name, b)
		named := func(err error) {
			t.Helper()
			if err != nil && !strings.Contains(err.Error(), name) && err != state.ErrWindowExpired {
				t.Fatalf("error %q does not name the store", err)
			}
		}
		switch which % 3 {
		case 0:
			s, err := state.NewWindowStore(base, state.WindowStoreOptions{Retention: time.Minute, SegmentInterval: 30 * time.Second})
			if err != nil {
				named(err)
				return
			}
			_, _, err = s.Fetch([]byte("k"), 1000)
			named(err)
			for start := range s.FetchKey([]byte("k"), 10, math.MaxInt64) {
				if start < 10 {
					t.Fatalf("FetchKey from 10 returned a window starting at %d", start)
				}
			}
			named(s.IterErr())
			for range s.All() {
			}
			named(s.IterErr())
			named(s.Put([]byte("k"), s.ObservedStreamTime()+1, []byte("v")))
			named(s.Put([]byte("k"), math.MaxInt64/2, []byte("v")))
		case 1:
			s, err := state.NewSessionStore(base, state.SessionStoreOptions{Retention: time.Minute, SegmentInterval: 30 * time.Second})
			if err != nil {
				named(err)
				return
			}
			_, _, err = s.FetchSession([]byte("k"), 0, 1000)
			named(err)
			for k := range s.FindSessions([]byte("k"), 10, math.MaxInt64) {
				if k.End < 10 || string(k.Key) != "k" {
					t.Fatalf("FindSessions of k ending from 10 returned %+v", k)
				}
			}
			named(s.IterErr())
			for range s.All() {
			}
			named(s.IterErr())
			obs := max(s.ObservedStreamTime(), 0)
			named(s.Put([]byte("k"), obs, obs+1, []byte("v")))
			named(s.Remove([]byte("k"), obs, obs+1))
		case 2:
			s, err := state.NewVersionedKeyValueStore(base, state.VersionedStoreOptions{HistoryRetention: time.Minute})
			if err != nil {
				named(err)
				return
			}
			for _, k := range [][]byte{[]byte("k"), {}, b[:min(len(b), 3)]} {
				_, _, err := s.Get(k)
				named(err)
				_, _, err = s.GetAsOf(k, 1000)
				named(err)
				_, err = s.Put(k, []byte("v"), 2000)
				named(err)
				_, _, err = s.Delete(k, 1500)
				named(err)
				_, err = s.Put(k, []byte("w"), math.MaxInt64/2)
				named(err)
			}
		}
	})
}
