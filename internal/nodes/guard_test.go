package nodes

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/operators"
)

// handlerContext is a fakeContext whose handlers record the failures and
// let every one go on.
type handlerContext struct {
	fakeContext
	processing, production []string
}

func (c *handlerContext) ProcessingError(node string, err error) error {
	c.processing = append(c.processing, node+": "+err.Error())
	return nil
}

func (c *handlerContext) ProductionError(node string, err error) error {
	c.production = append(c.production, node+": "+err.Error())
	return nil
}

type nodeFunc[K, V any] func(operators.Record[K, V]) error

func (f nodeFunc[K, V]) Process(r operators.Record[K, V]) error { return f(r) }

// A panic is recovered by the guard of the node that was running, not of
// an ancestor, and the parent goes on with its next child.
func TestGuardNamesThePanickingNode(t *testing.T) {
	ctx := &handlerContext{}
	var second []string
	leafA := nodeFunc[string, string](func(r operators.Record[string, string]) error { panic("boom " + r.Value) })
	leafB := nodeFunc[string, string](func(r operators.Record[string, string]) error {
		second = append(second, r.Value)
		return nil
	})
	next, err := Fanout[string, string]([]any{Guarded{Name: "A", Ctx: ctx, Node: leafA}, Guarded{Name: "B", Ctx: ctx, Node: leafB}})
	if err != nil {
		t.Fatal(err)
	}
	mid := MapValues(func(v string) string { return v + "!" }, next)
	root, err := Fanout[string, string]([]any{Guarded{Name: "M", Ctx: ctx, Node: mid}})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Process(operators.Record[string, string]{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if len(ctx.processing) != 1 || ctx.processing[0] != "A: sluice: node A panicked: boom v!" {
		t.Errorf("processing failures %q, want one of node A", ctx.processing)
	}
	if len(second) != 1 || second[0] != "v!" {
		t.Errorf("the second child got %q, want [v!]: the parent must go on after a child the handler let go on", second)
	}
}

// A sink's serialization error goes to the production handler; a store
// serde's (no topic) to the processing handler; other errors pass.
func TestGuardRoutesSerializationErrors(t *testing.T) {
	ctx := &handlerContext{}
	fail := errors.New("io")
	errs := []error{
		&operators.SerializationError{Node: "S", Topic: "out", Part: "value", Err: errors.New("bad")},
		&operators.SerializationError{Node: "S", Part: "key", Err: errors.New("bad")},
		&operators.NodeError{Node: "S", Err: fail},
	}
	i := 0
	leaf := nodeFunc[string, string](func(operators.Record[string, string]) error { i++; return errs[i-1] })
	n, err := Fanout[string, string]([]any{Guarded{Name: "S", Ctx: ctx, Node: leaf}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := n.Process(operators.Record[string, string]{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Process(operators.Record[string, string]{}); !errors.Is(err, fail) {
		t.Errorf("a node's own error: %v, want it passed up", err)
	}
	if len(ctx.production) != 1 || len(ctx.processing) != 1 {
		t.Errorf("production %q, processing %q: want one each", ctx.production, ctx.processing)
	}
}

// BenchmarkGuard measures what a guard adds to one edge: a chain of four
// nodes (three map-values and a sink stand-in) with and without guards.
func BenchmarkGuard(b *testing.B) {
	for _, guarded := range []bool{false, true} {
		name := "unguarded"
		if guarded {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			ctx := &handlerContext{}
			var sum int64
			var n Node[string, int64] = nodeFunc[string, int64](func(r operators.Record[string, int64]) error { sum += r.Value; return nil })
			for range 3 {
				var child any = n
				if guarded {
					child = Guarded{Name: "n", Ctx: ctx, Node: n}
				}
				next, err := Fanout[string, int64]([]any{child})
				if err != nil {
					b.Fatal(err)
				}
				n = MapValues(func(v int64) int64 { return v + 1 }, next)
			}
			var root Node[string, int64] = n
			if guarded {
				var err error
				if root, err = Fanout[string, int64]([]any{Guarded{Name: "root", Ctx: ctx, Node: n}}); err != nil {
					b.Fatal(err)
				}
			}
			r := operators.Record[string, int64]{Key: "k", Value: 1, Timestamp: 1}
			b.ReportAllocs()
			for b.Loop() {
				if err := root.Process(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4, "ns/edge")
		})
	}
}
