package nodes

import (
	"fmt"

	"github.com/sluicehq/sluice/operators"
)

// Fanout turns the instances of a node's children into the one Node the
// node forwards to: a no-op for none, the child itself for one, and a loop
// for several. A child handed over as Guarded is wrapped in its guard (see
// Guarded). It fails if a child does not accept K, V, which means the
// graph was wired wrongly, not a user error.
func Fanout[K, V any](children []any) (Node[K, V], error) {
	ns := make([]Node[K, V], len(children))
	for i, c := range children {
		g, guarded := c.(Guarded)
		if guarded {
			c = g.Node
		}
		n, ok := c.(Node[K, V])
		if !ok {
			var r operators.Record[K, V]
			return nil, fmt.Errorf("sluice: child %d (%T) does not accept %T", i, c, r)
		}
		if guarded {
			n = &guard[K, V]{ctx: g.Ctx, name: g.Name, next: n}
		}
		ns[i] = n
	}
	switch len(ns) {
	case 0:
		return discard[K, V]{}, nil
	case 1:
		return ns[0], nil
	}
	return fanout[K, V](ns), nil
}

type discard[K, V any] struct{}

func (discard[K, V]) Process(operators.Record[K, V]) error { return nil }

type fanout[K, V any] []Node[K, V]

func (f fanout[K, V]) Process(r operators.Record[K, V]) error {
	for _, n := range f {
		if err := n.Process(r); err != nil {
			return err
		}
	}
	return nil
}

// Nulls. The functions of these operators never see a Kafka null as a zero
// value: a record whose key or value is null does not reach a function
// that takes them. Filter, Peek and Branch pass such a record on untouched
// (Branch to its default branch); MapValues and FlatMapValues forward a
// tombstone as a tombstone (a null key with a value is mapped, the key
// stays null); Map, FlatMap and SelectKey, which cannot make a key or value
// without their function, drop it and count it ("null-key" or
// "null-value"). MapNullable, FilterNullable and PeekNullable give the
// function the key and value as Maybe, absent for a null, so that it decides.

// Filter forwards the records for which pred returns keep (true for
// Kafka Streams' filter, false for filterNot). A record with a null key or
// value is forwarded without calling pred.
func Filter[K, V any](pred func(K, V) bool, keep bool, next Node[K, V]) Node[K, V] {
	return &filter[K, V]{pred: pred, keep: keep, next: next}
}

type filter[K, V any] struct {
	pred func(K, V) bool
	keep bool
	next Node[K, V]
}

func (p *filter[K, V]) Process(r operators.Record[K, V]) error {
	if !r.NullKey && !r.Tombstone && p.pred(r.Key, r.Value) != p.keep {
		return nil
	}
	return p.next.Process(r)
}

// FilterNullable forwards the records for which pred, given the key and
// value as Maybe (absent for a Kafka null), returns keep.
func FilterNullable[K, V any](pred func(operators.Maybe[K], operators.Maybe[V]) bool, keep bool, next Node[K, V]) Node[K, V] {
	return &filterNullable[K, V]{pred: pred, keep: keep, next: next}
}

type filterNullable[K, V any] struct {
	pred func(operators.Maybe[K], operators.Maybe[V]) bool
	keep bool
	next Node[K, V]
}

func (p *filterNullable[K, V]) Process(r operators.Record[K, V]) error {
	if p.pred(r.MaybeKey(), r.MaybeValue()) != p.keep {
		return nil
	}
	return p.next.Process(r)
}

// dropNull counts r as dropped by node if its key or value is null, and
// reports whether it did.
func dropNull[K, V any](ctx Context, node string, r *operators.Record[K, V]) bool {
	if !r.NullKey && !r.Tombstone {
		return false
	}
	ctx.RecordDropped(node, nullReason(r.NullKey))
	return true
}

// Map replaces key and value. A record with a null key or value is dropped
// and counted by node.
func Map[K, V, K2, V2 any](ctx Context, node string, f func(K, V) (K2, V2), next Node[K2, V2]) Node[K, V] {
	return &mapper[K, V, K2, V2]{ctx: ctx, node: node, f: f, next: next}
}

type mapper[K, V, K2, V2 any] struct {
	ctx  Context
	node string
	f    func(K, V) (K2, V2)
	next Node[K2, V2]
}

func (p *mapper[K, V, K2, V2]) Process(r operators.Record[K, V]) error {
	if dropNull(p.ctx, p.node, &r) {
		return nil
	}
	k, v := p.f(r.Key, r.Value)
	return p.next.Process(operators.Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
}

// MapNullable replaces key and value, with f seeing and returning them as
// Maybe: absent stands for a Kafka null on both sides, so f can map a
// tombstone or a null key, and return one.
func MapNullable[K, V, K2, V2 any](f func(operators.Maybe[K], operators.Maybe[V]) (operators.Maybe[K2], operators.Maybe[V2]), next Node[K2, V2]) Node[K, V] {
	return &mapNullable[K, V, K2, V2]{f: f, next: next}
}

type mapNullable[K, V, K2, V2 any] struct {
	f    func(operators.Maybe[K], operators.Maybe[V]) (operators.Maybe[K2], operators.Maybe[V2])
	next Node[K2, V2]
}

func (p *mapNullable[K, V, K2, V2]) Process(r operators.Record[K, V]) error {
	k, v := p.f(r.MaybeKey(), r.MaybeValue())
	out := operators.Record[K2, V2]{Timestamp: r.Timestamp, Headers: r.Headers}
	out.SetKey(k)
	out.SetValue(v)
	return p.next.Process(out)
}

// MapValues replaces the value and keeps the key. A tombstone is forwarded
// as a tombstone without calling f; a null key stays null.
func MapValues[K, V, V2 any](f func(V) V2, next Node[K, V2]) Node[K, V] {
	return &mapValues[K, V, V2]{f: f, next: next}
}

type mapValues[K, V, V2 any] struct {
	f    func(V) V2
	next Node[K, V2]
}

func (p *mapValues[K, V, V2]) Process(r operators.Record[K, V]) error {
	out := operators.Record[K, V2]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers, NullKey: r.NullKey, Tombstone: r.Tombstone}
	if !r.Tombstone {
		out.Value = p.f(r.Value)
	}
	return p.next.Process(out)
}

// SelectKey replaces the key and keeps the value. A record with a null key
// or value is dropped and counted by node.
func SelectKey[K, V, K2 any](ctx Context, node string, f func(K, V) K2, next Node[K2, V]) Node[K, V] {
	return &selectKey[K, V, K2]{ctx: ctx, node: node, f: f, next: next}
}

type selectKey[K, V, K2 any] struct {
	ctx  Context
	node string
	f    func(K, V) K2
	next Node[K2, V]
}

func (p *selectKey[K, V, K2]) Process(r operators.Record[K, V]) error {
	if dropNull(p.ctx, p.node, &r) {
		return nil
	}
	return p.next.Process(operators.Record[K2, V]{Key: p.f(r.Key, r.Value), Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

// SelectKeyFromValue replaces the key with what f makes of the value. A
// record with a null key is keyed all the same (f does not look at the
// key); a tombstone is dropped without calling f and counted by node.
func SelectKeyFromValue[K, V, K2 any](ctx Context, node string, f func(V) K2, next Node[K2, V]) Node[K, V] {
	return &selectKeyFromValue[K, V, K2]{ctx: ctx, node: node, f: f, next: next}
}

type selectKeyFromValue[K, V, K2 any] struct {
	ctx  Context
	node string
	f    func(V) K2
	next Node[K2, V]
}

func (p *selectKeyFromValue[K, V, K2]) Process(r operators.Record[K, V]) error {
	if r.Tombstone {
		p.ctx.RecordDropped(p.node, "null-value")
		return nil
	}
	return p.next.Process(operators.Record[K2, V]{Key: p.f(r.Value), Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

// FlatMap forwards every key and value f emits for a record, in order,
// each with the record's timestamp and headers. A record with a null key or
// value is dropped and counted by node.
func FlatMap[K, V, K2, V2 any](ctx Context, node string, f func(K, V, func(K2, V2)), next Node[K2, V2]) Node[K, V] {
	p := &flatMap[K, V, K2, V2]{ctx: ctx, node: node, f: f, next: next}
	p.emitFn = p.emit
	return p
}

type flatMap[K, V, K2, V2 any] struct {
	ctx    Context
	node   string
	f      func(K, V, func(K2, V2))
	next   Node[K2, V2]
	emitFn func(K2, V2)
	cur    operators.Record[K2, V2] // timestamp and headers of the record being mapped
	err    error
}

func (p *flatMap[K, V, K2, V2]) emit(k K2, v V2) {
	if p.err != nil {
		return
	}
	r := p.cur
	r.Key, r.Value = k, v
	p.err = p.next.Process(r)
}

func (p *flatMap[K, V, K2, V2]) Process(r operators.Record[K, V]) error {
	if dropNull(p.ctx, p.node, &r) {
		return nil
	}
	p.cur = operators.Record[K2, V2]{Timestamp: r.Timestamp, Headers: r.Headers}
	p.err = nil
	p.f(r.Key, r.Value, p.emitFn)
	return p.err
}

// FlatMapValues forwards every value f emits for a record, with the
// record's key, timestamp and headers. A tombstone is forwarded as one
// tombstone without calling f; a null key stays null.
func FlatMapValues[K, V, V2 any](f func(V, func(V2)), next Node[K, V2]) Node[K, V] {
	p := &flatMapValues[K, V, V2]{f: f, next: next}
	p.emitFn = p.emit
	return p
}

type flatMapValues[K, V, V2 any] struct {
	f      func(V, func(V2))
	next   Node[K, V2]
	emitFn func(V2)
	cur    operators.Record[K, V2]
	err    error
}

func (p *flatMapValues[K, V, V2]) emit(v V2) {
	if p.err != nil {
		return
	}
	r := p.cur
	r.Value = v
	p.err = p.next.Process(r)
}

func (p *flatMapValues[K, V, V2]) Process(r operators.Record[K, V]) error {
	p.cur = operators.Record[K, V2]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers, NullKey: r.NullKey}
	if r.Tombstone {
		out := p.cur
		out.Tombstone = true
		return p.next.Process(out)
	}
	p.err = nil
	p.f(r.Value, p.emitFn)
	return p.err
}

// Peek calls f for each record and forwards it unchanged; with no children
// it is Kafka Streams' foreach. f is not called for a record with a null
// key or value, which is still forwarded.
func Peek[K, V any](f func(K, V), next Node[K, V]) Node[K, V] {
	return &peek[K, V]{f: f, next: next}
}

type peek[K, V any] struct {
	f    func(K, V)
	next Node[K, V]
}

func (p *peek[K, V]) Process(r operators.Record[K, V]) error {
	if !r.NullKey && !r.Tombstone {
		p.f(r.Key, r.Value)
	}
	return p.next.Process(r)
}

// PeekNullable calls f with each record's key and value as Maybe (absent
// for a Kafka null) and forwards the record unchanged.
func PeekNullable[K, V any](f func(operators.Maybe[K], operators.Maybe[V]), next Node[K, V]) Node[K, V] {
	return &peekNullable[K, V]{f: f, next: next}
}

type peekNullable[K, V any] struct {
	f    func(operators.Maybe[K], operators.Maybe[V])
	next Node[K, V]
}

func (p *peekNullable[K, V]) Process(r operators.Record[K, V]) error {
	p.f(r.MaybeKey(), r.MaybeValue())
	return p.next.Process(r)
}

// Branch forwards each record to the first branch whose predicate holds; a
// nil predicate (the default branch) always holds. A record no predicate
// accepts is dropped, as in Kafka Streams' split without a default branch.
// A record with a null key or value is not given to the predicates: it goes
// to the default branch, or, if there is none, is dropped and counted by
// node ("null-key" or "null-value").
func Branch[K, V any](ctx Context, node string, preds []func(K, V) bool, branches []Node[K, V]) Node[K, V] {
	return &branch[K, V]{ctx: ctx, node: node, preds: preds, branches: branches}
}

type branch[K, V any] struct {
	ctx      Context
	node     string
	preds    []func(K, V) bool
	branches []Node[K, V]
}

func (p *branch[K, V]) Process(r operators.Record[K, V]) error {
	null := r.NullKey || r.Tombstone
	for i, pred := range p.preds {
		if pred == nil || !null && pred(r.Key, r.Value) {
			return p.branches[i].Process(r)
		}
	}
	if null {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
	}
	return nil
}

// DropNullKeys forwards records whose key is not null and counts the others
// as dropped by node: Kafka Streams' "-repartition-filter" in front of a
// repartition topic, and the null-key check of aggregations.
func DropNullKeys[K, V any](ctx Context, node string, next Node[K, V]) Node[K, V] {
	return &dropNullKeys[K, V]{ctx: ctx, node: node, next: next}
}

type dropNullKeys[K, V any] struct {
	ctx  Context
	node string
	next Node[K, V]
}

func (p *dropNullKeys[K, V]) Process(r operators.Record[K, V]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	return p.next.Process(r)
}
