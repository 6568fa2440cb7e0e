package runtime

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/operators"
)

// TestChangelogRecordCopies checks the changelog record made in one
// allocation (producer.record): key, value and header values are copies
// that the caller's later writes do not reach, a null stays null and an
// empty value empty, and the generation header comes last.
func TestChangelogRecordCopies(t *testing.T) {
	p := newProducer(nil)
	key, value, pos := []byte("k"), []byte("value"), []byte("pos")
	gen := generationBytes(7)
	for _, tc := range []struct {
		name    string
		headers []operators.Header
		gen     []byte
		want    []string
	}{
		{"none", nil, nil, nil},
		{"generation only", nil, gen, []string{GenerationHeader}},
		{"headers and generation", []operators.Header{{Key: "in", Value: pos}, {Key: "null"}, {Key: "empty", Value: []byte{}}}, gen,
			[]string{"in", "null", "empty", GenerationHeader}},
		{"more than the inline room", []operators.Header{{Key: "a", Value: pos}, {Key: "b", Value: pos}, {Key: "c", Value: pos}}, gen,
			[]string{"a", "b", "c", GenerationHeader}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.record("log", 2, key, value, tc.headers, 5, tc.gen)
			key[0], value[0], pos[0] = 'X', 'X', 'X'
			defer func() { key[0], value[0], pos[0] = 'k', 'v', 'p' }()
			if string(r.Key) != "k" || string(r.Value) != "value" || r.Partition != 2 || r.Topic != "log" || r.Timestamp.UnixMilli() != 5 {
				t.Fatalf("record = %s/%d %q=%q at %d", r.Topic, r.Partition, r.Key, r.Value, r.Timestamp.UnixMilli())
			}
			if len(r.Headers) != len(tc.want) {
				t.Fatalf("headers %v, want keys %v", r.Headers, tc.want)
			}
			for i, h := range r.Headers {
				if h.Key != tc.want[i] {
					t.Fatalf("header %d = %q, want %q", i, h.Key, tc.want[i])
				}
				switch h.Key {
				case "null":
					if h.Value != nil {
						t.Errorf("null header value became %q", h.Value)
					}
				case "empty":
					if h.Value == nil || len(h.Value) != 0 {
						t.Errorf("empty header value became %v (nil %v)", h.Value, h.Value == nil)
					}
				case GenerationHeader:
					if !bytes.Equal(h.Value, gen) {
						t.Errorf("generation header = %v, want %v", h.Value, gen)
					}
				default:
					if string(h.Value) != "pos" {
						t.Errorf("header %s = %q, want a copy of pos", h.Key, h.Value)
					}
				}
			}
			// An append to the key or value must not reach its neighbour.
			if cap(r.Key) != len(r.Key) || cap(r.Value) != len(r.Value) {
				t.Errorf("key or value not capped: caps %d, %d", cap(r.Key), cap(r.Value))
			}
		})
	}
	// Larger than the room in the record's own allocation.
	big := bytes.Repeat([]byte("b"), 2*inlineBytes)
	if r := p.record("log", -1, key, big, []operators.Header{{Key: "in", Value: pos}}, 0, gen); !bytes.Equal(r.Value, big) ||
		string(r.Key) != "k" || string(r.Headers[0].Value) != "pos" || cap(r.Value) != len(r.Value) {
		t.Errorf("large record = %q=%q %v", r.Key, r.Value, r.Headers)
	}
	sr := p.sinkRecord("out", -1, []byte("by"), key, big, nil, 0)
	if !bytes.Equal(sr.rec.Value, big) || string(sr.rec.Key) != "k" || string(sr.ctx.by) != "by" {
		t.Errorf("large sink record = %q=%q by %q", sr.rec.Key, sr.rec.Value, sr.ctx.by)
	}
	if r := p.record("log", -1, nil, nil, nil, 0, nil); r.Key != nil || r.Value != nil {
		t.Errorf("null key and value became %v, %v", r.Key, r.Value)
	}
}
