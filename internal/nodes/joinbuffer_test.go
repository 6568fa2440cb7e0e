package nodes

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/operators"
)

// Kafka Streams 4.3.1's bytes for one buffered record, printed by
// dsl/testdata/versioned/oracle/BufferLayout.java: the changelog key and
// value of its RocksDBTimeOrderedKeyValueBuffer.
const (
	ksBufferKey   = "000000018bcfe5687b757365722d3100000007"
	ksBufferValue = "0000018bcfe5687b000000000000002a00000006636c69636b730000000300000002000000026831000000027631000000026832ffffffffffffffffffffffff00000005636c69636b0000000000000000"
)

// The join buffer writes Kafka Streams' layout byte for byte, and reads it
// back.
func TestJoinBufferLayout(t *testing.T) {
	headers := []operators.Header{{Key: "h1", Value: []byte("v1")}, {Key: "h2"}}
	const ts = 1700000000123
	key := bufferKey(nil, ts, []byte("user-1"), 7)
	if got := hex.EncodeToString(key); got != ksBufferKey {
		t.Errorf("key:\n got  %s\n want %s", got, ksBufferKey)
	}
	e := BufferEntry{New: []byte("click"), Context: BufferContext{Timestamp: ts, Offset: 42, Topic: "clicks", Partition: 3, Headers: headers}}
	value := e.AppendEncoded(nil)
	if got := hex.EncodeToString(value); got != ksBufferValue {
		t.Errorf("value:\n got  %s\n want %s", got, ksBufferValue)
	}
	kts, k, seq, ok := parseBufferKey(key)
	if !ok || kts != ts || string(k) != "user-1" || seq != 7 {
		t.Errorf("parseBufferKey = %d %q %d %v", kts, k, seq, ok)
	}
	rec, err := DecodeBufferEntry(nil, value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Context.Timestamp != ts || string(rec.New) != "click" || rec.Prior != nil || rec.Old != nil || rec.Time != 0 ||
		!slices.EqualFunc(rec.Context.Headers, headers, func(a, b operators.Header) bool {
			return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil)
		}) {
		t.Errorf("DecodeBufferEntry = %+v", rec)
	}
	for n := range len(value) {
		if _, err := DecodeBufferEntry(nil, value[:n]); err == nil {
			t.Errorf("a value cut to %d bytes decoded", n)
		}
	}
}
