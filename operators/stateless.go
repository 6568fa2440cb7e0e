package operators

import "fmt"

// Fanout turns the instances of a node's children into the one Node the
// node forwards to: a no-op for none, the child itself for one, and a loop
// for several. It fails if a child does not accept K, V, which means the
// graph was wired wrongly, not a user error.
func Fanout[K, V any](children []any) (Node[K, V], error) {
	ns := make([]Node[K, V], len(children))
	for i, c := range children {
		n, ok := c.(Node[K, V])
		if !ok {
			var r Record[K, V]
			return nil, fmt.Errorf("sluice: child %d (%T) does not accept %T", i, c, r)
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

func (discard[K, V]) Process(Record[K, V]) error { return nil }

type fanout[K, V any] []Node[K, V]

func (f fanout[K, V]) Process(r Record[K, V]) error {
	for _, n := range f {
		if err := n.Process(r); err != nil {
			return err
		}
	}
	return nil
}

// Filter forwards the records for which pred returns keep (true for
// Kafka Streams' filter, false for filterNot).
func Filter[K, V any](pred func(K, V) bool, keep bool, next Node[K, V]) Node[K, V] {
	return &filter[K, V]{pred: pred, keep: keep, next: next}
}

type filter[K, V any] struct {
	pred func(K, V) bool
	keep bool
	next Node[K, V]
}

func (p *filter[K, V]) Process(r Record[K, V]) error {
	if p.pred(r.Key, r.Value) != p.keep {
		return nil
	}
	return p.next.Process(r)
}

// Map replaces key and value.
func Map[K, V, K2, V2 any](f func(K, V) (K2, V2), next Node[K2, V2]) Node[K, V] {
	return &mapper[K, V, K2, V2]{f: f, next: next}
}

type mapper[K, V, K2, V2 any] struct {
	f    func(K, V) (K2, V2)
	next Node[K2, V2]
}

func (p *mapper[K, V, K2, V2]) Process(r Record[K, V]) error {
	k, v := p.f(r.Key, r.Value)
	return p.next.Process(Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
}

// MapValues replaces the value and keeps the key.
func MapValues[K, V, V2 any](f func(V) V2, next Node[K, V2]) Node[K, V] {
	return &mapValues[K, V, V2]{f: f, next: next}
}

type mapValues[K, V, V2 any] struct {
	f    func(V) V2
	next Node[K, V2]
}

func (p *mapValues[K, V, V2]) Process(r Record[K, V]) error {
	return p.next.Process(Record[K, V2]{Key: r.Key, Value: p.f(r.Value), Timestamp: r.Timestamp, Headers: r.Headers, NullKey: r.NullKey})
}

// SelectKey replaces the key and keeps the value.
func SelectKey[K, V, K2 any](f func(K, V) K2, next Node[K2, V]) Node[K, V] {
	return &selectKey[K, V, K2]{f: f, next: next}
}

type selectKey[K, V, K2 any] struct {
	f    func(K, V) K2
	next Node[K2, V]
}

func (p *selectKey[K, V, K2]) Process(r Record[K, V]) error {
	return p.next.Process(Record[K2, V]{Key: p.f(r.Key, r.Value), Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers, Tombstone: r.Tombstone})
}

// FlatMap forwards every key and value f emits for a record, in order,
// each with the record's timestamp and headers.
func FlatMap[K, V, K2, V2 any](f func(K, V, func(K2, V2)), next Node[K2, V2]) Node[K, V] {
	p := &flatMap[K, V, K2, V2]{f: f, next: next}
	p.emitFn = p.emit
	return p
}

type flatMap[K, V, K2, V2 any] struct {
	f      func(K, V, func(K2, V2))
	next   Node[K2, V2]
	emitFn func(K2, V2)
	cur    Record[K2, V2] // timestamp and headers of the record being mapped
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

func (p *flatMap[K, V, K2, V2]) Process(r Record[K, V]) error {
	p.cur = Record[K2, V2]{Timestamp: r.Timestamp, Headers: r.Headers}
	p.err = nil
	p.f(r.Key, r.Value, p.emitFn)
	return p.err
}

// FlatMapValues forwards every value f emits for a record, with the
// record's key, timestamp and headers.
func FlatMapValues[K, V, V2 any](f func(V, func(V2)), next Node[K, V2]) Node[K, V] {
	p := &flatMapValues[K, V, V2]{f: f, next: next}
	p.emitFn = p.emit
	return p
}

type flatMapValues[K, V, V2 any] struct {
	f      func(V, func(V2))
	next   Node[K, V2]
	emitFn func(V2)
	cur    Record[K, V2]
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

func (p *flatMapValues[K, V, V2]) Process(r Record[K, V]) error {
	p.cur = Record[K, V2]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers, NullKey: r.NullKey}
	p.err = nil
	p.f(r.Value, p.emitFn)
	return p.err
}

// Peek calls f for each record and forwards it unchanged; with no children
// it is Kafka Streams' foreach.
func Peek[K, V any](f func(K, V), next Node[K, V]) Node[K, V] {
	return &peek[K, V]{f: f, next: next}
}

type peek[K, V any] struct {
	f    func(K, V)
	next Node[K, V]
}

func (p *peek[K, V]) Process(r Record[K, V]) error {
	p.f(r.Key, r.Value)
	return p.next.Process(r)
}

// Branch forwards each record to the first branch whose predicate holds; a
// nil predicate (the default branch) always holds. A record no predicate
// accepts is dropped, as in Kafka Streams' split without a default branch.
func Branch[K, V any](preds []func(K, V) bool, branches []Node[K, V]) Node[K, V] {
	return &branch[K, V]{preds: preds, branches: branches}
}

type branch[K, V any] struct {
	preds    []func(K, V) bool
	branches []Node[K, V]
}

func (p *branch[K, V]) Process(r Record[K, V]) error {
	for i, pred := range p.preds {
		if pred == nil || pred(r.Key, r.Value) {
			return p.branches[i].Process(r)
		}
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

func (p *dropNullKeys[K, V]) Process(r Record[K, V]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	return p.next.Process(r)
}
