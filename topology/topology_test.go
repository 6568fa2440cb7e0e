package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/nodes"
)

// Kafka Streams prints topic and store sets in java.util.HashSet order; the
// vector is from a Kafka Streams 4.0 run of stream(["b-topic","a-topic","c"]).
func TestJavaHashSetOrder(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"b-topic", "a-topic", "c"}, []string{"c", "b-topic", "a-topic"}},
		{[]string{"x"}, []string{"x"}},
		{[]string{"a", "a"}, []string{"a"}},
	} {
		if got := javaHashSetOrder(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("javaHashSetOrder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	if _, err := Compile(nil, nil); !errors.Is(err, ErrEmptyTopology) {
		t.Errorf("Compile of nothing = %v, want ErrEmptyTopology", err)
	}
	noop := func(nodes.Context, []any) (any, error) { return nil, nil }
	src := &Node{Name: "src", Kind: Source, Topics: []string{"in"}, New: noop}
	orphan := &Node{Name: "orphan", Kind: Processor, New: noop, Stores: []string{"missing"}}
	_, err := Compile([]*Node{src, orphan}, nil)
	for _, want := range []string{"node orphan: node has no parent", "node orphan, store missing: store is used but not declared"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile = %v, want an error containing %q", err, want)
		}
	}
}
