package testdriver_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// Whatever bytes, nulls, timestamp and headers a record has, a stream
// feeding an aggregation and a windowed aggregation, and a table, never
// fail on it (undecodable records and invalid timestamps skipped), and it
// is counted where it is dropped, by what it is: an undecodable value
// (String keys decode anything) as "deserialization-error" at the source,
// else a negative timestamp as "invalid-timestamp", else a null key at
// each aggregation and the table, a null value at the aggregation (the
// windowed Count counts it; the table deletes), a record for a closed
// window as "late". Nothing else is dropped.
func FuzzBadRecord(f *testing.F) {
	f.Add([]byte("k"), []byte{0, 0, 0, 0, 0, 0, 0, 1}, false, false, int64(100_000), []byte("h"))
	f.Add([]byte(nil), []byte{0, 0, 0, 0, 0, 0, 0, 1}, true, false, int64(100_000), []byte(nil))
	f.Add([]byte("k"), []byte(nil), false, true, int64(100_000), []byte("sluice.gen"))
	f.Add([]byte("\xff\xfe"), []byte{}, false, false, int64(-1), []byte("v"))
	f.Add([]byte(""), []byte("123"), false, false, int64(0), []byte("sluice.input"))
	f.Add([]byte("k"), []byte{0, 0, 0, 0, 0, 0, 0, 1}, false, false, int64(1), []byte{})
	b := dsl.NewBuilder()
	s := src(b, "in", "src")
	s.GroupByKey().Count(dsl.Named("count"))
	dsl.WindowedBy(s.GroupByKey(dsl.Named("wgroup")), window.Tumbling(10*time.Second, 0)).Count(dsl.Named("wcount"))
	table(b, "tin", "table")
	topo, err := b.Build()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, value []byte, nullKey, nullValue bool, ts int64, header []byte) {
		d, err := testdriver.New(topo, testdriver.SkipUndecodableRecords())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		p := piper{d: d, ins: map[string]*testdriver.InputTopic[[]byte, []byte]{}}
		// Stream time at 100000 first: a record before it is late, its
		// window ended by then (size 10s, grace 0).
		if err := p.pipe("in", "first", 1, 100_000); err != nil {
			t.Fatal(err)
		}
		r := operators.Record[[]byte, []byte]{Key: key, Value: value, NullKey: nullKey, Tombstone: nullValue, Timestamp: ts,
			Headers: []operators.Header{{Key: string(header), Value: header}, {Key: "sluice.gen", Value: header}}}
		before := drops(d, topo)
		for _, topic := range []string{"in", "tin"} {
			if err := p.raw(topic, r); err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
		}
		want := map[[2]string]int64{}
		switch {
		case !nullValue && len(value) != 8:
			want[[2]string{"src", "deserialization-error"}]++
			want[[2]string{"table-source", "deserialization-error"}]++
		case ts < 0:
			want[[2]string{"src", "invalid-timestamp"}]++
			want[[2]string{"table-source", "invalid-timestamp"}]++
		default:
			if nullKey {
				want[[2]string{"count", "null-key"}]++
				want[[2]string{"wcount", "null-key"}]++
				want[[2]string{"table", "null-key"}]++
				break
			}
			if nullValue {
				want[[2]string{"count", "null-value"}]++
			}
			if ts < 100_000 { // its window ends by 100000, closed (grace 0)
				want[[2]string{"wcount", "late"}]++
			}
		}
		after := drops(d, topo)
		for k, n := range after {
			n -= before[k]
			if n != want[k] {
				t.Errorf("dropped %s@%s: %d, want %d", k[1], k[0], n, want[k])
			}
		}
		for k, n := range want {
			if after[k]-before[k] != n {
				t.Errorf("dropped %s@%s: %d, want %d", k[1], k[0], after[k]-before[k], n)
			}
		}
		// A good record after it is processed.
		if err := p.pipe("in", "good", 1, 100_001); err != nil {
			t.Fatal(err)
		}
		kv, err := testdriver.KeyValueStore(d, "count", serde.String, serde.Int64)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok, err := kv.Get("good"); err != nil || !ok || n != 1 {
			t.Errorf("the good record after it: count %d, %v, %v; want 1", n, ok, err)
		}
	})
}
