package runtime

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A changelog record's sluice.gen header is read only when it is 4 bytes:
// a garbage value (written by something other than Sluice) is taken as
// absent, and the record is applied as one written without the header; of
// several, the first well-formed one counts.
func TestRecordGenerationIgnoresGarbage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []kgo.RecordHeader
		want    int32
		ok      bool
	}{
		{"none", nil, 0, false},
		{"empty", []kgo.RecordHeader{{Key: GenerationHeader}}, 0, false},
		{"short", []kgo.RecordHeader{{Key: GenerationHeader, Value: []byte{0, 1}}}, 0, false},
		{"long", []kgo.RecordHeader{{Key: GenerationHeader, Value: []byte("garbage!")}}, 0, false},
		{"well-formed", []kgo.RecordHeader{{Key: GenerationHeader, Value: generationBytes(7)}}, 7, true},
		{"garbage then well-formed", []kgo.RecordHeader{{Key: GenerationHeader, Value: []byte("x")}, {Key: GenerationHeader, Value: generationBytes(3)}}, 3, true},
		{"duplicated", []kgo.RecordHeader{{Key: GenerationHeader, Value: generationBytes(3)}, {Key: GenerationHeader, Value: generationBytes(9)}}, 3, true},
		{"other names", []kgo.RecordHeader{{Key: "sluice.Gen", Value: generationBytes(3)}, {Key: "v", Value: generationBytes(3)}}, 0, false},
	} {
		g, ok := recordGeneration(&kgo.Record{Headers: tc.headers})
		if g != tc.want || ok != tc.ok {
			t.Errorf("%s: recordGeneration = %d, %v; want %d, %v", tc.name, g, ok, tc.want, tc.ok)
		}
	}
	// A garbage generation that is 4 bytes is taken at its word; the
	// filter then treats it as written in another incarnation of the
	// group, or as a zombie's, and never fails.
	var f genFilter
	for _, g := range []int32{2, -1, 1 << 30, 2, 3} {
		_ = f.stale(g, 3)
	}
	if f.max != 3 {
		t.Errorf("after a garbage generation, the filter's largest is %d, want 3 (the next records of this incarnation)", f.max)
	}
}
