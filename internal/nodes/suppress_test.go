package nodes

// Data-driven tests of the suppress node alone, ports of Kafka Streams'
// KTableSuppressProcessorTest (which drives KTableSuppressProcessor with a
// mock context). Each file in testdata/suppress is a datadriven file of
// these commands:
//
//	new limit=<ms> | final=<grace ms> [maxrecords=N] [maxbytes=N] [shutdown]
//	    a suppress node: until a time limit, or final results of windows
//	    (the buffer time is the window end of keys "key@start/end"),
//	    dropping tombstones; bounded, emitting early unless shutdown.
//	process <key>=<new>/<old>@<ts> [topic=T] [offset=N] [h:<k>:<v>...]
//	    gives the node an update (<null> for an absent value) as the input
//	    record T/0/N, with headers; prints what it forwards
//	    (<key>=<new>/<old>@<ts> [headers]) or the error.
//	buffer
//	    the entries of the buffer's store, decoded, in key order.
//	restart
//	    a new node over the same store and processor metadata: what a task
//	    restored from the changelog starts with.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadriven"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// fakeContext is the Context of one node with one store.
type fakeContext struct {
	topic   string
	offset  int64
	stores  map[string]state.Store
	md      map[string]int64
	dropped map[string]int
}

func (c *fakeContext) TaskID() string                 { return "0_0" }
func (c *fakeContext) ApplicationID() string          { return "app" }
func (c *fakeContext) Topic() string                  { return c.topic }
func (c *fakeContext) Partition() int32               { return 0 }
func (c *fakeContext) Offset() int64                  { return c.offset }
func (c *fakeContext) StreamTime() int64              { return -1 }
func (c *fakeContext) WallClockTime() time.Time       { return time.UnixMilli(0) }
func (c *fakeContext) InternalTopic(n string) string  { return "app-" + n }
func (c *fakeContext) Collector() operators.Collector { return nil }
func (c *fakeContext) Store(name string) (state.Store, error) {
	s, ok := c.stores[name]
	if !ok {
		return nil, operators.ErrStoreNotDeclared
	}
	return s, nil
}
func (c *fakeContext) Schedule(time.Duration, operators.PunctuationType, operators.Punctuator) (operators.Cancellable, error) {
	return nil, errors.New("no schedules")
}
func (c *fakeContext) DeserializationError(_ string, _ *operators.RawRecord, err error) error {
	return err
}
func (c *fakeContext) ProcessingError(_ string, err error) error { return err }
func (c *fakeContext) ProductionError(_ string, err error) error { return err }
func (c *fakeContext) CacheForward(bool)                         {}
func (c *fakeContext) StampRecord(string, *operators.RawRecord, int64, InvalidTimestampPolicy) (int64, bool, error) {
	return 0, false, errors.New("not a source")
}
func (c *fakeContext) RecordDropped(node, reason string) { c.dropped[node+" "+reason]++ }
func (c *fakeContext) ProcessorMetadata(key string) (int64, bool) {
	v, ok := c.md[key]
	return v, ok
}
func (c *fakeContext) SetProcessorMetadata(key string, v int64) { c.md[key] = v }

// captured records what a node forwards.
type captured struct{ out []string }

func (c *captured) Process(r operators.Record[string, operators.Change[int64]]) error {
	c.out = append(c.out, fmt.Sprintf("%s=%s/%s@%d%s", r.Key, maybeInt(r.Value.New, r.Value.HasNew),
		maybeInt(r.Value.Old, r.Value.HasOld), r.Timestamp, formatHeaders(r.Headers)))
	return nil
}

func maybeInt(v int64, ok bool) string {
	if !ok {
		return "<null>"
	}
	return strconv.FormatInt(v, 10)
}

func formatHeaders(hs []operators.Header) string {
	var sb strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&sb, " %s:%s", h.Key, h.Value)
	}
	return sb.String()
}

// windowEnd is the end of a key "key@start/end".
func windowEnd(k string) int64 {
	_, w, ok := strings.Cut(k, "@")
	if !ok {
		return 0
	}
	_, end, _ := strings.Cut(w, "/")
	n, _ := strconv.ParseInt(end, 10, 64)
	return n
}

func parseMaybeInt(t *testing.T, td *datadriven.TestData, s string) (int64, bool) {
	if s == "<null>" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		td.Fatalf(t, "value %q: %v", s, err)
	}
	return n, true
}

func TestSuppressNodeData(t *testing.T) {
	files, err := filepath.Glob("testdata/suppress/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in testdata/suppress (%v)", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) { suppressNodeFile(t, path) })
	}
}

func suppressNodeFile(t *testing.T, path string) {
	{
		var (
			ctx  *fakeContext
			cfg  SuppressConfig[string]
			node Node[string, operators.Change[int64]]
			out  = &captured{}
		)
		open := func(td *datadriven.TestData) {
			n, err := Suppress(ctx, "testNode", "test-store", serde.String, serde.Int64, cfg, Node[string, operators.Change[int64]](out))
			if err != nil {
				td.Fatalf(t, "%v", err)
			}
			node = n
		}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			if td.Cmd != "new" && node == nil {
				td.Fatalf(t, "no new command before it")
			}
			switch td.Cmd {
			case "new":
				cfg = SuppressConfig[string]{}
				ctx = &fakeContext{stores: map[string]state.Store{"test-store": state.NewInMemoryKeyValueStore("test-store")},
					md: map[string]int64{}, dropped: map[string]int{}}
				for _, a := range td.Args {
					k, v, _ := strings.Cut(a, "=")
					n, _ := strconv.ParseInt(v, 10, 64)
					switch k {
					case "limit":
						cfg.Wait = n
					case "final":
						cfg.Wait, cfg.BufferTime, cfg.DropTombstones = n, func(k string, _ int64) int64 { return windowEnd(k) }, true
					case "maxrecords":
						cfg.MaxRecords = n
					case "maxbytes":
						cfg.MaxBytes = n
					case "shutdown":
						cfg.ShutDownWhenFull = true
					default:
						td.Fatalf(t, "unknown argument %q", a)
					}
				}
				open(td)
				return ""
			case "restart":
				open(td)
				return ""
			case "process":
				if len(td.Args) == 0 {
					td.Fatalf(t, "no record")
				}
				k, rest, ok1 := strings.Cut(td.Args[0], "=")
				vals, tss, ok2 := strings.Cut(rest, "@")
				nv, ov, ok3 := strings.Cut(vals, "/")
				if !ok1 || !ok2 || !ok3 {
					td.Fatalf(t, "record %q is not key=new/old@ts", td.Args[0])
				}
				ts, err := strconv.ParseInt(tss, 10, 64)
				if err != nil {
					td.Fatalf(t, "timestamp %q: %v", tss, err)
				}
				r := operators.Record[string, operators.Change[int64]]{Key: k, Timestamp: ts}
				r.Value.New, r.Value.HasNew = parseMaybeInt(t, td, nv)
				r.Value.Old, r.Value.HasOld = parseMaybeInt(t, td, ov)
				ctx.topic, ctx.offset = "", 0
				for _, a := range td.Args[1:] {
					switch {
					case strings.HasPrefix(a, "topic="):
						ctx.topic = strings.TrimPrefix(a, "topic=")
					case strings.HasPrefix(a, "offset="):
						ctx.offset, _ = strconv.ParseInt(strings.TrimPrefix(a, "offset="), 10, 64)
					case strings.HasPrefix(a, "h:"):
						hk, hv, _ := strings.Cut(strings.TrimPrefix(a, "h:"), ":")
						r.Headers = append(r.Headers, operators.Header{Key: hk, Value: []byte(hv)})
					default:
						td.Fatalf(t, "unknown argument %q", a)
					}
				}
				out.out = nil
				err = node.Process(r)
				lines := out.out
				if err != nil {
					lines = append(lines, "error: "+err.Error())
				}
				return strings.Join(lines, "\n")
			case "buffer":
				kv := ctx.stores["test-store"].(state.KeyValueStore)
				m := map[string]string{}
				for k, v := range kv.Range(nil, nil) {
					e, err := DecodeBufferEntry(k, v)
					if err != nil {
						td.Fatalf(t, "%v", err)
					}
					m[string(k)] = fmt.Sprintf("%s time=%d prior=%s old=%s new=%s ts=%d topic=%q offset=%d size=%d%s",
						k, e.Time, int64OrNull(e.Prior), int64OrNull(e.Old), int64OrNull(e.New),
						e.Context.Timestamp, e.Context.Topic, e.Context.Offset, e.Size(), formatHeaders(e.Context.Headers))
				}
				var lines []string
				for _, k := range slices.Sorted(maps.Keys(m)) {
					lines = append(lines, m[k])
				}
				return strings.Join(lines, "\n")
			}
			td.Fatalf(t, "unknown command")
			return ""
		})
	}
}

func int64OrNull(b []byte) string {
	if b == nil {
		return "<null>"
	}
	v, err := serde.Int64.Decode(b)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strconv.FormatInt(v, 10)
}

// The changelog value of a buffer entry decodes to the same entry, and
// truncations of it are errors, not entries.
func TestBufferEntryRoundTrip(t *testing.T) {
	e := &BufferEntry{Key: []byte("k"), Time: 42, Prior: []byte("p"), Old: []byte("p"), New: []byte{},
		Context: BufferContext{Timestamp: 7, Offset: 9, Topic: "in", Partition: 3,
			Headers: []operators.Header{{Key: "a", Value: []byte("b")}, {Key: "n"}}}}
	enc := e.AppendEncoded(nil)
	got, err := DecodeBufferEntry([]byte("k"), enc)
	if err != nil {
		t.Fatal(err)
	}
	if again := got.AppendEncoded(nil); string(again) != string(enc) {
		t.Fatalf("re-encoded %x, want %x", again, enc)
	}
	if got.Old == nil || got.New == nil || got.Context.Headers[1].Value != nil || got.Time != 42 || got.Context.Partition != 3 {
		t.Fatalf("decoded %+v", got)
	}
	for i := range enc {
		if _, err := DecodeBufferEntry([]byte("k"), enc[:i]); err == nil {
			t.Fatalf("a truncation to %d of %d bytes decoded", i, len(enc))
		}
	}
}

func FuzzDecodeBufferEntry(f *testing.F) {
	e := &BufferEntry{Key: []byte("k"), Time: 1, Old: []byte("o"), New: []byte("n"), Context: BufferContext{Topic: "t"}}
	f.Add(e.AppendEncoded(nil))
	if join, err := hex.DecodeString(ksBufferValue); err == nil {
		f.Add(join) // a stream-table join buffer's value, as Kafka Streams writes it
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeBufferEntry([]byte("k"), b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "corrupt suppression buffer entry") {
				t.Fatalf("error %q does not say the entry is corrupt", err)
			}
			return
		}
		// Some entries have two encodings (an old value equal to the
		// prior one, spelled out or as -2; no headers, as a count of 0 or
		// of -1, which Kafka Streams' ProcessorRecordContext.deserialize
		// reads as none "for backward compatibility"): what decodes
		// encodes to the canonical one, no longer than the input, which
		// decodes to the same entry and encodes to itself.
		enc := e.AppendEncoded(nil)
		if len(enc) > len(b) {
			t.Fatalf("%x: decoded entry encodes to %d bytes, more than the %d it came from", b, len(enc), len(b))
		}
		again, err := DecodeBufferEntry([]byte("k"), enc)
		if err != nil {
			t.Fatalf("%x encodes to %x, which does not decode: %v", b, enc, err)
		}
		if !sameBufferEntry(e, again) {
			t.Fatalf("%x decodes to %+v, which encodes to %x, which decodes to %+v", b, e, enc, again)
		}
		if enc2 := again.AppendEncoded(nil); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding not canonical: %x then %x", enc, enc2)
		}
	})
}

// sameBufferEntry compares two entries field by field, nil and empty
// apart.
func sameBufferEntry(a, b *BufferEntry) bool {
	nb := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	if !nb(a.Prior, b.Prior) || !nb(a.Old, b.Old) || !nb(a.New, b.New) || a.Time != b.Time ||
		a.Context.Timestamp != b.Context.Timestamp || a.Context.Offset != b.Context.Offset ||
		a.Context.Topic != b.Context.Topic || a.Context.Partition != b.Context.Partition ||
		len(a.Context.Headers) != len(b.Context.Headers) {
		return false
	}
	for i, h := range a.Context.Headers {
		if h.Key != b.Context.Headers[i].Key || !nb(h.Value, b.Context.Headers[i].Value) {
			return false
		}
	}
	return true
}

// Buffer entries encode to the changelog values Kafka Streams 4.3.1
// writes for them, byte for byte, and count the bytes it counts: golden
// values from testdata/suppress/oracle/BufferValueOracle.java (size = the
// value's residentMemorySizeEstimate + 8 + the key's length, as
// computeRecordSize).
func TestBufferEntryKafkaStreamsFormat(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		name string
		e    BufferEntry
		hex  string
		est  int64
	}{
		{"insert", BufferEntry{Time: 0, New: b("x"), Context: BufferContext{Topic: "in"}},
			"0000000000000000000000000000000000000002696e0000000000000000ffffffffffffffff00000001780000000000000000", 23},
		{"update", BufferEntry{Time: 100, Prior: b("p"), Old: b("p"), New: b("new"), Context: BufferContext{Timestamp: 7, Offset: 42, Partition: 3, Topic: "topic",
			Headers: []operators.Header{{Key: "h", Value: b("v")}, {Key: "n"}}}},
			"0000000000000007000000000000002a00000005746f706963000000030000000200000001680000000176000000016effffffff0000000170fffffffe000000036e65770000000000000064", 32},
		{"later", BufferEntry{Time: 100, Prior: b("p"), Old: b("o"), New: b("n"), Context: BufferContext{Timestamp: 8, Offset: 43, Partition: 1, Topic: "t"}},
			"0000000000000008000000000000002b000000017400000001000000000000000170000000016f000000016e0000000000000064", 24},
		{"empty-old", BufferEntry{Time: 0, Old: b(""), New: b("x"), Context: BufferContext{Topic: "in"}},
			"0000000000000000000000000000000000000002696e0000000000000000ffffffff0000000000000001780000000000000000", 23},
		{"empty-both", BufferEntry{Time: 0, Prior: b(""), Old: b(""), New: b("x"), Context: BufferContext{Topic: "in"}},
			"0000000000000000000000000000000000000002696e000000000000000000000000fffffffe00000001780000000000000000", 23},
		{"delete", BufferEntry{Time: -5, Prior: b("p"), Old: b("o"), Context: BufferContext{Timestamp: 9, Offset: 44, Topic: "t"}},
			"0000000000000009000000000000002c000000017400000000000000000000000170000000016ffffffffffffffffffffffffb", 23},
	} {
		tc.e.Key = b("key")
		if got := fmt.Sprintf("%x", tc.e.AppendEncoded(nil)); got != tc.hex {
			t.Errorf("%s: encoded %s, want %s", tc.name, got, tc.hex)
		}
		if got, want := tc.e.Size(), tc.est+8+3; got != want {
			t.Errorf("%s: size %d, want %d", tc.name, got, want)
		}
		d, err := DecodeBufferEntry(tc.e.Key, tc.e.AppendEncoded(nil))
		if err != nil || fmt.Sprintf("%x", d.AppendEncoded(nil)) != tc.hex ||
			(d.Prior == nil) != (tc.e.Prior == nil) || (d.Old == nil) != (tc.e.Old == nil) || (d.New == nil) != (tc.e.New == nil) {
			t.Errorf("%s: decoded %+v, %v", tc.name, d, err)
		}
	}
}

// BenchmarkSuppress measures one update through a suppress node holding
// final results of one-second windows of 1000 keys, records 1 ms apart:
// each update replaces a buffered key's entry or adds one, and every
// 1000th closes a window of 1000 entries.
func BenchmarkSuppress(b *testing.B) {
	ctx := &fakeContext{topic: "input", stores: map[string]state.Store{"s": state.NewInMemoryKeyValueStore("s")},
		md: map[string]int64{}, dropped: map[string]int{}}
	cfg := SuppressConfig[string]{BufferTime: func(k string, _ int64) int64 { return windowEnd(k) }, DropTombstones: true}
	n, err := Suppress(ctx, "sup", "s", serde.String, serde.Int64, cfg, Node[string, operators.Change[int64]](discard[string, operators.Change[int64]]{}))
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ts := int64(i)
		start := ts / 1000 * 1000
		r := operators.Record[string, operators.Change[int64]]{Key: keys[i%len(keys)] + "@" + strconv.FormatInt(start, 10) + "/" + strconv.FormatInt(start+1000, 10), Timestamp: ts,
			Value: operators.Change[int64]{New: ts, HasNew: true, Old: ts - 1, HasOld: true}}
		if err := n.Process(r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
