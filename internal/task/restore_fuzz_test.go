package task_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// fuzzRecord is one changelog record made from fuzz bytes.
type fuzzRecord struct {
	key, value []byte // value nil: a tombstone
	ts         int64
}

// fuzzRecords cuts b into changelog records: per record a flags byte (bit
// 0: tombstone; bit 1: the key is raw bytes, else a well-formed window or
// session key around them; bits 2-7: the value's length), a key length
// byte (mod 32), the key, the value, and a timestamp byte (scaled to
// seconds, so that windows expire and segments roll) or, with the flags'
// top length bit pattern 0x3f, 8 raw bytes of timestamp.
func fuzzRecords(b []byte, kind topology.StoreKind) []fuzzRecord {
	var out []fuzzRecord
	take := func(n int) []byte {
		n = min(n, len(b))
		v := b[:n:n]
		b = b[n:]
		return v
	}
	for len(b) >= 3 && len(out) < 64 {
		flags := take(1)[0]
		kl := int(take(1)[0] % 32)
		key := bytes.Clone(take(kl))
		vl := int(flags >> 2)
		var value []byte
		if flags&1 == 0 {
			value = append([]byte{}, take(vl)...)
		}
		var ts int64
		if vl == 0x3f && len(b) >= 8 {
			ts = int64(binary.BigEndian.Uint64(take(8)))
		} else if len(b) > 0 {
			ts = int64(take(1)[0]) * 1000
		}
		if flags&2 == 0 {
			switch kind {
			case topology.Window:
				key = state.AppendWindowKey(nil, key, ts, int32(kl%3))
			case topology.Session:
				key = state.AppendSessionKey(nil, key, ts, ts+int64(vl)*1000)
			}
		}
		out = append(out, fuzzRecord{key: key, value: value, ts: ts})
	}
	return out
}

// FuzzChangelogRestore applies changelog records made of arbitrary bytes
// to a store of every kind through ChangelogRestorer, as a restore does:
// no panic; an error only where the changelog key cannot be one of the
// kind's (a window or session key too short or out of range), naming the
// store; and the store then holds exactly what the records say:
//   - key-value (plain and timestamped): each key's last record (a
//     timestamped value with the record's timestamp in front);
//   - window and session: of the entries reads can return (not before
//     the observed stream time minus the retention), none a record did
//     not write last (entries may be gone by retention, none is stale or
//     invented);
//   - versioned: what Get returns is what GetAsOf the end of time does;
//   - suppression buffer: the records as they are.
func FuzzChangelogRestore(f *testing.F) {
	f.Add(uint8(0), []byte{0x04, 1, 'k', 'v', 5, 0x01, 1, 'k', 0})
	f.Add(uint8(1), []byte{0x08, 2, 'a', 'b', 'x', 'y', 3})
	f.Add(uint8(2), []byte{0x04, 1, 'k', 'v', 200, 0x04, 1, 'j', 'w', 1, 0x01, 1, 'k', 200})
	f.Add(uint8(2), []byte{0x06, 3, 'a', 'b', 'c', 'v', 1}) // raw window key too short
	f.Add(uint8(3), []byte{0x0c, 1, 's', 'v', 'w', 100, 0x0d, 1, 's', 100})
	f.Add(uint8(3), append([]byte{0xfe, 0}, make([]byte, 80)...)) // raw session key, raw timestamp
	f.Add(uint8(4), []byte{0x04, 1, 'k', 'v', 9, 0x01, 1, 'k', 9, 0x04, 1, 'k', 'w', 5})
	f.Add(uint8(5), []byte{0x08, 1, 'k', 'v', 'w', 9})
	f.Add(uint8(6), []byte{0x04, 1, 'k', 'v', 9, 0x04, 1, 'k', 'v', 9})
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, which uint8, b []byte) {
	specs := []topology.StoreSpec{
		{Name: "kv", Kind: topology.KeyValue},
		{Name: "ts-kv", Kind: topology.KeyValue, Timestamped: true},
		{Name: "win", Kind: topology.Window, Timestamped: true, Retention: 60 * time.Second, SegmentInterval: 20 * time.Second},
		{Name: "sess", Kind: topology.Session, Retention: 60 * time.Second, SegmentInterval: 20 * time.Second},
		{Name: "ver", Kind: topology.Versioned, HistoryRetention: 30 * time.Second},
		{Name: "buf", Kind: topology.SuppressionBuffer},
		{Name: "dups", Kind: topology.Window, RetainDuplicates: true, Retention: 60 * time.Second, SegmentInterval: 20 * time.Second},
	}
	spec := &specs[int(which)%len(specs)]
	base := state.NewInMemoryKeyValueStore(spec.Name)
	r, err := task.NewChangelogRestorer(spec, base, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := fuzzRecords(b, spec.Kind)
	last := map[string]fuzzRecord{}  // changelog key -> last record applied
	observed := int64(math.MinInt64) // a window or session store's stream time
	for _, rec := range recs {
		err := r.Apply(rec.key, rec.value, rec.ts)
		if err != nil {
			if !strings.Contains(err.Error(), spec.Name) {
				t.Fatalf("%s: error %q does not name the store", spec.Kind, err)
			}
			if !badWindowedKey(spec.Kind, rec.key) {
				t.Fatalf("%s: record %x=%x@%d refused: %v", spec.Kind, rec.key, rec.value, rec.ts, err)
			}
			continue
		}
		if badWindowedKey(spec.Kind, rec.key) {
			t.Fatalf("%s: record with the malformed key %x applied", spec.Kind, rec.key)
		}
		last[string(rec.key)] = rec
		observed = max(observed, windowedTime(spec.Kind, rec.key))
	}
	switch spec.Kind {
	case topology.KeyValue, topology.SuppressionBuffer:
		n := 0
		for k, v := range base.Range(nil, nil) {
			n++
			rec, ok := last[string(k)]
			want := rec.value
			if ok && spec.Timestamped && want != nil {
				want = append(binary.BigEndian.AppendUint64(nil, uint64(rec.ts)), want...)
			}
			if !ok || rec.value == nil || !bytes.Equal(v, want) {
				t.Fatalf("%s: store holds %x=%x; last record %+v", spec.Name, k, v, rec)
			}
		}
		for _, rec := range last {
			if rec.value != nil {
				n--
			}
		}
		if n != 0 {
			t.Fatalf("%s: store holds %d entries more than the records left", spec.Name, n)
		}
	case topology.Window, topology.Session:
		for k, v := range base.Range(nil, nil) {
			if len(k) < 8 {
				t.Fatalf("%s: store key %x has no segment", spec.Name, k)
			}
			// An entry before the first live time may stay until its
			// segment is dropped, after a tombstone the store refused as
			// expired: no read returns it.
			if windowedTime(spec.Kind, k[8:]) < observed-spec.StoreRetention().Milliseconds()+1 {
				continue
			}
			rec, ok := last[string(k[8:])]
			want := rec.value
			if ok && spec.Timestamped && want != nil {
				want = append(binary.BigEndian.AppendUint64(nil, uint64(rec.ts)), want...)
			}
			if !ok || rec.value == nil || !bytes.Equal(v, want) {
				t.Fatalf("%s: store holds %x=%x; last record for it %+v (applied: %v)", spec.Name, k, v, rec, ok)
			}
		}
	case topology.Versioned:
		st, err := task.WrapStore(spec, base)
		if err != nil {
			t.Fatal(err)
		}
		vs := st.(state.VersionedKeyValueStore)
		for k := range last {
			got, ok, err := vs.Get([]byte(k))
			if err != nil {
				t.Fatal(err)
			}
			asOf, aok, err := vs.GetAsOf([]byte(k), math.MaxInt64)
			if err != nil {
				t.Fatal(err)
			}
			if ok != aok || !bytes.Equal(got.Value, asOf.Value) || got.Timestamp != asOf.Timestamp {
				t.Fatalf("%x: Get %+v %v, GetAsOf(max) %+v %v", k, got, ok, asOf, aok)
			}
		}
	}
}

// badWindowedKey reports whether key cannot be a changelog key of a store
// of kind: too short, a negative window start, a session ending before it
// starts.
func badWindowedKey(kind topology.StoreKind, key []byte) bool {
	switch kind {
	case topology.Window:
		_, start, _, err := state.SplitWindowKey(key)
		return err != nil || start < 0
	case topology.Session:
		_, start, end, err := state.SplitSessionKey(key)
		return err != nil || start < 0 || end < start
	}
	return false
}

// windowedTime is the time a window (its start) or session (its end)
// store keeps the entry of a changelog key by.
func windowedTime(kind topology.StoreKind, key []byte) int64 {
	switch kind {
	case topology.Window:
		_, start, _, _ := state.SplitWindowKey(key)
		return start
	case topology.Session:
		_, _, end, _ := state.SplitSessionKey(key)
		return end
	}
	return math.MinInt64
}
