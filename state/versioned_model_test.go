package state_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
)

// versionOracle is the meaning of a versioned store in a few lines: each
// key's versions sorted by timestamp, none ever dropped. Dropping expired
// history must not change any answer the store gives.
type versionOracle struct {
	retention int64
	observed  int64
	keys      map[string][]oracleVersion
}

type oracleVersion struct {
	ts    int64
	value []byte // nil: tombstone
	// dead is set once no answer can depend on the version any more
	// (markDead): the store may drop it, and a version once dead stays so,
	// as nothing can be written at its timestamp again.
	dead bool
}

// markDead marks the versions no read at or after the bound sees and no
// write at or after it needs: those that ended at or before the bound, and
// a latest tombstone from before it.
func (o *versionOracle) markDead() {
	b := o.bound()
	for _, vs := range o.keys {
		for i := range vs {
			if i+1 < len(vs) && vs[i+1].ts <= b || i+1 == len(vs) && vs[i].value == nil && vs[i].ts < b {
				vs[i].dead = true
			}
		}
	}
}

func (o *versionOracle) bound() int64 { return o.observed - o.retention }

func (o *versionOracle) put(key string, value []byte, ts int64) int64 {
	if ts < o.bound() {
		return state.PutNotPut
	}
	o.observed = max(o.observed, ts)
	vs := o.keys[key]
	i, found := slices.BinarySearchFunc(vs, ts, func(v oracleVersion, t int64) int { return cmpInt(v.ts, t) })
	if found {
		o.markDead()
		if value == nil && vs[i].value != nil && i == len(vs)-1 && !slices.ContainsFunc(vs[:i], func(v oracleVersion) bool { return !v.dead }) {
			// A tombstone replacing the latest version, a value, with no
			// older version any answer depends on: no trace of the key
			// is left (Kafka Streams' RocksDBVersionedStore only deletes
			// its latest value).
			delete(o.keys, key)
			return state.ValidToUndefined
		}
		vs[i].value = value
	} else {
		vs = slices.Insert(vs, i, oracleVersion{ts: ts, value: value})
		o.keys[key] = vs
	}
	if i+1 < len(vs) {
		return vs[i+1].ts
	}
	return state.ValidToUndefined
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (o *versionOracle) get(key string) (state.VersionedRecord, bool) {
	vs := o.keys[key]
	if len(vs) == 0 || vs[len(vs)-1].value == nil {
		return state.VersionedRecord{}, false
	}
	v := vs[len(vs)-1]
	return state.VersionedRecord{Value: v.value, Timestamp: v.ts, ValidTo: state.ValidToUndefined}, true
}

func (o *versionOracle) getAsOf(key string, asOf int64) (state.VersionedRecord, bool) {
	vs := o.keys[key]
	i := len(vs) - 1
	for i >= 0 && vs[i].ts > asOf {
		i--
	}
	if i < 0 || vs[i].value == nil {
		return state.VersionedRecord{}, false
	}
	if asOf < o.bound() && i != len(vs)-1 {
		// Past the history retention only the latest version answers.
		return state.VersionedRecord{}, false
	}
	validTo := state.ValidToUndefined
	if i+1 < len(vs) {
		validTo = vs[i+1].ts
	}
	return state.VersionedRecord{Value: vs[i].value, Timestamp: vs[i].ts, ValidTo: validTo}, true
}

func (o *versionOracle) delete(key string, ts int64) (state.VersionedRecord, bool) {
	if ts < o.bound() {
		return state.VersionedRecord{}, false
	}
	rec, ok := o.getAsOf(key, ts)
	o.put(key, nil, ts)
	return rec, ok
}

// liveEntries is how many entries a store over an in-memory base must hold
// for the oracle's state if it drops all expired history: the latest record
// of each key whose latest version is a value; a history entry and its
// expiry entry for every other version not dead; the meta record.
func (o *versionOracle) liveEntries() int64 {
	o.markDead()
	var n int64
	if o.observed >= 0 {
		n++
	}
	for _, vs := range o.keys {
		for i, v := range vs {
			switch {
			case i+1 == len(vs) && v.value != nil:
				n++
			case !v.dead:
				n += 2
			}
		}
	}
	return n
}

func sameRecord(a state.VersionedRecord, aok bool, b state.VersionedRecord, bok bool) bool {
	if aok != bok {
		return false
	}
	return !aok || a.Timestamp == b.Timestamp && a.ValidTo == b.ValidTo && bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil)
}

// TestVersionedModel runs random out-of-order puts and deletes against a
// store over each kind of base and the oracle, checking every return value,
// then get and get-as-of of every key at every timestamp around the
// history retention, and that expired history is gone (memory base). Pebble
// stores are also closed and reopened now and then.
func TestVersionedModel(t *testing.T) {
	forEachBase(t, func(t *testing.T, b segmentedBase) {
		for seed := range uint64(versionedSeeds(b.name)) {
			rng := rand.New(rand.NewPCG(seed, 11))
			retention := []int64{0, 1, 5, 30, 200}[rng.IntN(5)]
			t.Run(fmt.Sprintf("seed=%d/retention=%d", seed, retention), func(t *testing.T) {
				runVersionedModel(t, b, rng, retention)
			})
		}
	})
}

func runVersionedModel(t *testing.T, b segmentedBase, rng *rand.Rand, retention int64) {
	base, reopen := b.open(t, "versioned")
	opts := time.Duration(retention) * time.Millisecond
	s := newVersionedStore(t, base, opts)
	o := &versionOracle{retention: retention, observed: -1, keys: map[string][]oracleVersion{}}
	keys := []string{"a", "ab", "b", ""}
	values := [][]byte{[]byte("x"), []byte("y"), {}, []byte("zz")}

	var trace []string
	defer func() {
		if t.Failed() {
			for _, l := range trace {
				t.Log(l)
			}
		}
	}()
	for step := range versionedSteps(b.name) {
		key := keys[rng.IntN(len(keys))]
		// Mostly around the observed stream time, some far behind it.
		ts := max(0, o.observed) + int64(rng.IntN(int(retention)+25)) - int64(retention) - 15
		if rng.IntN(10) == 0 {
			ts = max(0, o.observed) - int64(rng.IntN(3*int(retention)+3))
		}
		var desc string
		switch rng.IntN(4) {
		case 0:
			desc = fmt.Sprintf("Delete(%q, %d)", key, ts)
			want, wok := o.delete(key, ts)
			got, gok, err := s.Delete([]byte(key), ts)
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			if !sameRecord(got, gok, want, wok) {
				t.Fatalf("step %d: %s = %+v %v, want %+v %v", step, desc, got, gok, want, wok)
			}
		default:
			var v []byte
			if rng.IntN(4) != 0 {
				v = values[rng.IntN(len(values))]
			}
			desc = fmt.Sprintf("Put(%q, %q (nil %v), %d)", key, v, v == nil, ts)
			want := o.put(key, v, ts)
			got, err := s.Put([]byte(key), v, ts)
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			if got != want {
				t.Fatalf("step %d: %s = %d, want %d", step, desc, got, want)
			}
		}
		trace = append(trace, fmt.Sprintf("%d: %s observed %d", step, desc, o.observed))
		if s.ObservedStreamTime() != o.observed {
			t.Fatalf("step %d: after %s: observed stream time %d, want %d", step, desc, s.ObservedStreamTime(), o.observed)
		}
		if b.name == "pebble" && rng.IntN(50) == 0 {
			trace = append(trace, "reopen")
			s = newVersionedStore(t, reopen(s), opts)
			if s.ObservedStreamTime() != o.observed {
				t.Fatalf("step %d: reopened: observed stream time %d, want %d", step, s.ObservedStreamTime(), o.observed)
			}
		}
		for _, k := range keys {
			got, gok, err := s.Get([]byte(k))
			want, wok := o.get(k)
			if err != nil || !sameRecord(got, gok, want, wok) {
				t.Fatalf("step %d: after %s: Get(%q) = %+v %v %v, want %+v %v", step, desc, k, got, gok, err, want, wok)
			}
			for asOf := o.bound() - 20; asOf <= o.observed+3; asOf++ {
				got, gok, err := s.GetAsOf([]byte(k), asOf)
				want, wok := o.getAsOf(k, asOf)
				if err != nil || !sameRecord(got, gok, want, wok) {
					t.Fatalf("step %d: after %s: GetAsOf(%q, %d) = %+v %v %v, want %+v %v", step, desc, k, asOf, got, gok, err, want, wok)
				}
			}
			for _, asOf := range []int64{math.MinInt64, -1, math.MaxInt64} {
				got, gok, err := s.GetAsOf([]byte(k), asOf)
				want, wok := o.getAsOf(k, asOf)
				if err != nil || !sameRecord(got, gok, want, wok) {
					t.Fatalf("step %d: after %s: GetAsOf(%q, %d) = %+v %v %v, want %+v %v", step, desc, k, asOf, got, gok, err, want, wok)
				}
			}
		}
		if b.name == "memory" {
			if got, want := base.ApproximateCount(), o.liveEntries(); got != want {
				t.Fatalf("step %d: after %s: base holds %d entries, want %d (expired history left behind?)", step, desc, got, want)
			}
		}
	}
}

// versionedSeeds and versionedSteps size the random runs on a kind of
// base: Pebble's reads and writes cost more, under -race most of all.
func versionedSeeds(base string) int {
	if base == "pebble" {
		return 8
	}
	return 40
}

func versionedSteps(base string) int {
	if base == "pebble" {
		return 150
	}
	return 400
}
