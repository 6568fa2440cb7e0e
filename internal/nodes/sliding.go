package nodes

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// SlidingAggregate aggregates the records of each key per sliding window
// (window.Sliding) into the window store named store: Kafka Streams'
// KStreamSlidingWindowAggregate, in its forward-iteration variant. A
// window [start, start+TimeDifference] holds the records of those
// timestamps, both ends inclusive, and is stored under its start. Only the
// windows that differ in content exist: for each record at ts, the window
// ending at ts (its left window) and, when later records are within
// TimeDifference of it, the window starting at ts+1 (its right window). A
// record creates these windows for itself (and the right window of the
// record before it, if it now has content) and adds itself, with add, to
// every existing window that contains it; a new window's aggregate starts
// from init(), or from the stored aggregate of a window that holds the
// same earlier records. Records at timestamps below TimeDifference, whose
// left window would start before 0, share the window [0, TimeDifference]
// instead, as in Kafka Streams.
//
// A window closes when the processor's observed stream time (the largest
// timestamp it has seen) passes its end + Grace. A record at ts is dropped,
// counted as "late" and logged (rate-limited) if [ts, ts+TimeDifference]
// has closed, as then every window it could join has; otherwise each of
// its writes to a closed window is skipped and counted so, one count per
// window, as Kafka Streams counts them. Any other record with a negative
// timestamp is dropped and counted as "invalid-timestamp" (Kafka Streams
// fails; sources drop such records before).
//
// With emitFinal false every update is forwarded, as a Change with the
// window's new aggregate (and, when the window existed, its old one),
// through the store's record cache if it has one; with emitFinal true
// nothing is forwarded until a window closes, and then its final aggregate
// once (Kafka Streams' EmitStrategy.onWindowClose). The forwarded window
// ends at start + TimeDifference; the forwarded timestamp is the largest
// timestamp of the window's records.
//
// The store must keep windows for 2*TimeDifference + Grace after their
// start: a record reads back to the windows starting at ts -
// 2*TimeDifference.
func SlidingAggregate[K, V, A any](ctx Context, node, store string, w window.Sliding, emitFinal bool, keys serde.Serde[K], aggs serde.Serde[A],
	init func() A, add func(K, V, A) A, next Node[window.Windowed[K], operators.Change[A]]) (Node[K, V], error) {
	return newSlidingAggregate(ctx, node, store, w, emitFinal, keys, aggs, init, nil, add, next)
}

// SlidingReduce is SlidingAggregate where a window's aggregate starts as
// the first value added to it (Kafka Streams' reduce over sliding windows,
// an aggregation whose initializer is null).
func SlidingReduce[K, V any](ctx Context, node, store string, w window.Sliding, emitFinal bool, keys serde.Serde[K], values serde.Serde[V],
	add func(K, V, V) V, next Node[window.Windowed[K], operators.Change[V]]) (Node[K, V], error) {
	return newSlidingAggregate(ctx, node, store, w, emitFinal, keys, values, nil, func(_ K, v V) V { return v }, add, next)
}

// newSlidingAggregate: an empty window's aggregate is init() with the
// record added, or without init, first(record).
func newSlidingAggregate[K, V, A any](ctx Context, node, store string, w window.Sliding, emitFinal bool, keys serde.Serde[K], aggs serde.Serde[A],
	init func() A, first func(K, V) A, add func(K, V, A) A, next Node[window.Windowed[K], operators.Change[A]]) (Node[K, V], error) {
	if err := w.Validate(); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	v, err := openWindowView(ctx, store, keys, aggs)
	if err != nil {
		return nil, err
	}
	diff := w.TimeDifference.Milliseconds()
	p := &slidingAggregate[K, V, A]{ctx: ctx, node: node, diff: diff, grace: w.Grace.Milliseconds(), final: emitFinal, view: v,
		init: init, first: first, add: add, next: next,
		observedMD: newMetadata(ctx, store+".observed-stream-time"), emitMD: newMetadata(ctx, store+".last-emit-close-time"),
		late: lateLog{ctx: ctx, node: node}}
	if p.observed, err = v.startStreamTime(p.observedMD); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	p.lastEmit = p.emitMD.get(-1)
	p.cached = !emitFinal && v.forwardOnFlush(node, diff, next)
	return p, nil
}

type slidingAggregate[K, V, A any] struct {
	ctx         Context
	node        string
	diff, grace int64 // ms
	final       bool
	cached      bool
	view        *windowView[K, A]
	init        func() A
	first       func(K, V) A
	add         func(K, V, A) A
	next        Node[window.Windowed[K], operators.Change[A]]

	observed, lastEmit int64
	observedMD, emitMD metadata
	late               lateLog
	kbuf               []byte
	found              []slidingWindow[A] // the key's windows a record reads, ascending by start
}

// slidingWindow is a stored window of the record's key as it was before
// the record: Kafka Streams' ValueAndTimestamp under a window start.
type slidingWindow[A any] struct {
	start int64
	agg   A
	ts    int64 // the largest timestamp of the window's records
}

func (p *slidingAggregate[K, V, A]) Process(r operators.Record[K, V]) error {
	if r.NullKey || r.Tombstone {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
		return nil
	}
	ts := r.Timestamp
	if ts > p.observed {
		p.observed = ts
		p.observedMD.set(ts)
	}
	closeTime := p.observed - p.grace
	var err error
	if p.kbuf, err = p.view.keys.Encode(p.kbuf[:0], r.Key); err != nil {
		return &operators.SerializationError{Node: p.node, Part: "key", Err: err}
	}
	// Emit what closed before writing: the write may advance the store's
	// retention past the windows it closed. (Kafka Streams emits after the
	// writes, and not at all for the records it drops or processes as
	// early; neither can write to a closed window, so only the order
	// differs, and what Kafka Streams' retention may hide.)
	if p.final {
		if err := p.emitFinal(closeTime, r.Headers); err != nil {
			return err
		}
	}
	if ts+p.diff < closeTime {
		p.late.drop(ts, window.Window{Start: ts, End: ts + p.diff}, closeTime)
		return nil
	}
	if ts < 0 {
		p.ctx.RecordDropped(p.node, "invalid-timestamp")
		return nil
	}
	if ts < p.diff {
		return p.processEarly(r, closeTime)
	}
	return p.processInOrder(r, closeTime)
}

// fetch reads the key's windows starting in from..to into p.found.
func (p *slidingAggregate[K, V, A]) fetch(from, to int64) error {
	clear(p.found) // drop the previous record's aggregates
	p.found = p.found[:0]
	for start, b := range p.view.ws.FetchKey(p.kbuf, from, to) {
		ts, agg, err := decodeTimestampedAgg(p.view.name, p.view.aggs, b)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		p.found = append(p.found, slidingWindow[A]{start: start, agg: agg, ts: ts})
	}
	if err := p.view.ws.IterErr(); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return nil
}

// exists reports whether fetch found a window starting at start.
func (p *slidingAggregate[K, V, A]) exists(start int64) bool {
	_, ok := slices.BinarySearchFunc(p.found, start, func(w slidingWindow[A], s int64) int {
		return cmp.Compare(w.start, s)
	})
	return ok
}

func (p *slidingAggregate[K, V, A]) unexpected(start, ts int64) error {
	return &operators.NodeError{Node: p.node, Err: fmt.Errorf("sluice: store %s: unexpected window [%d,%d] for a record at %d",
		p.view.name, start, start+p.diff, ts)}
}

// processInOrder handles a record at ts >= TimeDifference (Kafka Streams'
// processInOrder): it reads the key's windows starting in
// [ts - 2*TimeDifference, ts + 1], ascending, adds the record to those
// that contain it, and finds the aggregates its new windows start from.
func (p *slidingAggregate[K, V, A]) processInOrder(r operators.Record[K, V], closeTime int64) error {
	ts := r.Timestamp
	if err := p.fetch(max(0, ts-2*p.diff), ts+1); err != nil {
		return err
	}
	// The aggregates the record's left and right windows start from, if
	// those windows are new.
	var leftAgg, rightAgg *slidingWindow[A]
	leftExists, rightExists := false, false
	// The timestamp of the latest record before ts, if there is one within
	// the windows read.
	prev, hasPrev := int64(0), false
	for i := range p.found {
		w := &p.found[i]
		end := w.start + p.diff
		switch {
		case end < ts:
			leftAgg = w
			prev, hasPrev = w.ts, true
		case end == ts:
			leftExists = true
			if w.ts < ts {
				prev, hasPrev = w.ts, true
			}
			if err := p.updateWindow(r, w.start, w, true, closeTime); err != nil {
				return err
			}
		case w.start <= ts: // end > ts
			rightAgg = w
			if err := p.updateWindow(r, w.start, w, true, closeTime); err != nil {
				return err
			}
		case w.start == ts+1:
			rightExists = true
		default:
			return p.unexpected(w.start, ts)
		}
	}
	return p.createWindows(r, closeTime, leftAgg, rightAgg, leftExists, rightExists, prev, hasPrev)
}

// processEarly handles a record at 0 <= ts < TimeDifference (Kafka
// Streams' processEarly): its left window would start before 0, so the
// records before TimeDifference share the window [0, TimeDifference], and
// their right windows are created as later records come in.
func (p *slidingAggregate[K, V, A]) processEarly(r operators.Record[K, V], closeTime int64) error {
	ts := r.Timestamp
	if err := p.fetch(0, ts+1); err != nil {
		return err
	}
	var combined, rightAgg *slidingWindow[A]
	rightExists := false
	prev, hasPrev := int64(0), false
	for i := range p.found {
		w := &p.found[i]
		switch {
		case w.start == 0:
			combined = w
			// A previous record at or after ts already made the right
			// window it needs.
			if w.ts < ts {
				prev, hasPrev = w.ts, true
			}
		case w.start <= ts:
			rightAgg = w
			if err := p.updateWindow(r, w.start, w, true, closeTime); err != nil {
				return err
			}
		case w.start == ts+1:
			rightExists = true
		default:
			return p.unexpected(w.start, ts)
		}
	}
	// Without a right window found, the combined window holds only records
	// after ts if its latest is after ts: it then is the new right
	// window's content.
	if rightAgg == nil && combined != nil && combined.ts > ts {
		rightAgg = combined
	}
	if !rightExists && rightAgg != nil && rightAgg.ts > ts {
		if err := p.createRightWindow(r, rightAgg); err != nil {
			return err
		}
	}
	if hasPrev && !p.exists(prev+1) {
		if err := p.updateWindow(r, prev+1, nil, false, closeTime); err != nil {
			return err
		}
	}
	return p.updateWindow(r, 0, combined, combined != nil, closeTime)
}

// createWindows creates the windows a record at ts >= TimeDifference
// needs (Kafka Streams' createWindows): the right window of the previous
// record if the record falls into it, the record's left window, and its
// right window if later records fall into it.
func (p *slidingAggregate[K, V, A]) createWindows(r operators.Record[K, V], closeTime int64, leftAgg, rightAgg *slidingWindow[A],
	leftExists, rightExists bool, prev int64, hasPrev bool) error {
	ts := r.Timestamp
	if hasPrev && !p.exists(prev+1) && prev+1+p.diff >= ts {
		if err := p.updateWindow(r, prev+1, nil, false, closeTime); err != nil {
			return err
		}
	}
	if !leftExists {
		// The left window holds the records of the latest window ending
		// before ts if the previous record is in it, and ts.
		var seed *slidingWindow[A]
		if hasPrev && leftAgg != nil && ts-p.diff <= prev {
			seed = &slidingWindow[A]{start: ts - p.diff, agg: leftAgg.agg, ts: ts}
		}
		if err := p.updateWindow(r, ts-p.diff, seed, false, closeTime); err != nil {
			return err
		}
	}
	if !rightExists && rightAgg != nil && rightAgg.ts > ts {
		return p.createRightWindow(r, rightAgg)
	}
	return nil
}

// createRightWindow stores the record's right window, [ts+1,
// ts+1+TimeDifference], with the aggregate of the records after ts that
// agg holds (Kafka Streams' createCurrentRecordRightWindow). The record is
// not in it.
func (p *slidingAggregate[K, V, A]) createRightWindow(r operators.Record[K, V], agg *slidingWindow[A]) error {
	start := r.Timestamp + 1
	if err := p.view.put(p.kbuf, start, agg.agg, agg.ts, r.Headers); errors.Is(err, state.ErrWindowExpired) {
		return nil // past the store's retention: the window could never be read
	} else if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if p.final || p.cached {
		return nil
	}
	return p.next.Process(operators.Record[window.Windowed[K], operators.Change[A]]{
		Key:   window.Windowed[K]{Key: r.Key, Window: window.Window{Start: start, End: start + p.diff}},
		Value: operators.Change[A]{New: agg.agg, HasNew: true}, Timestamp: agg.ts, Headers: r.Headers,
	})
}

// updateWindow adds the record to the window starting at start, unless it
// has closed (Kafka Streams' updateWindowAndForward): the window's
// aggregate starts from seed's, or, without seed, empty. exists says the
// window is in the store, with seed as its value: then its old aggregate
// is forwarded with the new.
func (p *slidingAggregate[K, V, A]) updateWindow(r operators.Record[K, V], start int64, seed *slidingWindow[A], exists bool, closeTime int64) error {
	win := window.Window{Start: start, End: start + p.diff}
	if win.End < closeTime {
		p.late.drop(r.Timestamp, win, closeTime)
		return nil
	}
	var agg A
	ts := r.Timestamp
	switch {
	case seed != nil:
		agg, ts = p.add(r.Key, r.Value, seed.agg), max(ts, seed.ts)
	case p.init != nil:
		agg = p.add(r.Key, r.Value, p.init())
	default:
		agg = p.first(r.Key, r.Value)
	}
	if err := p.view.put(p.kbuf, start, agg, ts, r.Headers); errors.Is(err, state.ErrWindowExpired) {
		p.late.drop(r.Timestamp, win, closeTime) // past the store's retention
		return nil
	} else if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if p.final || p.cached {
		return nil
	}
	c := operators.Change[A]{New: agg, HasNew: true}
	if exists {
		c.Old, c.HasOld = seed.agg, true
	}
	return p.next.Process(operators.Record[window.Windowed[K], operators.Change[A]]{
		Key: window.Windowed[K]{Key: r.Key, Window: win}, Value: c, Timestamp: ts, Headers: r.Headers,
	})
}

// emitFinal forwards the windows closed since the last emission, in the
// store's order (by start, then key, within a segment), with Kafka
// Streams' range arithmetic for sliding windows: a window closed when its
// inclusive end is before the close time, so those starting in
// [last close time - TimeDifference, close time - TimeDifference - 1].
// Kafka Streams throttles this to once per emit interval of wall-clock
// time; Sluice emits as soon as the close time moves.
func (p *slidingAggregate[K, V, A]) emitFinal(closeTime int64, headers []operators.Header) error {
	if p.lastEmit != -1 && p.lastEmit >= closeTime {
		return nil
	}
	upper := closeTime - p.diff - 1
	if upper < 0 {
		return nil
	}
	lower := int64(0)
	if p.lastEmit != -1 {
		lower = max(0, p.lastEmit-p.diff)
	}
	for ek, v := range p.view.ws.FetchAll(lower, upper) {
		r, err := p.view.decodeWindow(ek.Key, ek.Start, v, p.diff)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		r.Headers = headers
		if err := p.next.Process(r); err != nil {
			return err
		}
	}
	if err := p.view.ws.IterErr(); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	p.lastEmit = closeTime
	p.emitMD.set(closeTime)
	return nil
}
