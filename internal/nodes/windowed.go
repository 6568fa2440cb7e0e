package nodes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// MetadataContext is implemented by task contexts that keep processor
// metadata: small values a processor needs across restarts next to its
// stores (Kafka Streams' ProcessorMetadata, which it keeps in the commit's
// offset metadata). The runtime commits them with the task's local state;
// they are lost when a task moves to an instance without its local state.
type MetadataContext interface {
	// ProcessorMetadata returns the value of key, if set.
	ProcessorMetadata(key string) (int64, bool)
	// SetProcessorMetadata sets key to v.
	SetProcessorMetadata(key string, v int64)
}

// metadata reads and writes one processor metadata value, in memory when
// the context keeps none.
type metadata struct {
	md  MetadataContext
	key string
}

func newMetadata(ctx Context, key string) metadata {
	md, _ := ctx.(MetadataContext)
	return metadata{md: md, key: key}
}

func (m metadata) get(def int64) int64 {
	if m.md == nil {
		return def
	}
	if v, ok := m.md.ProcessorMetadata(m.key); ok {
		return v
	}
	return def
}

func (m metadata) set(v int64) {
	if m.md != nil {
		m.md.SetProcessorMetadata(m.key, v)
	}
}

// lateLog logs dropped late records at most once per interval per node,
// with the number dropped since the last line.
type lateLog struct {
	ctx     Context
	node    string
	last    time.Time
	dropped int64
}

const lateLogInterval = 10 * time.Second

func (l *lateLog) drop(ts int64, w window.Window, closeTime int64) {
	l.ctx.RecordDropped(l.node, "late")
	l.dropped++
	now := l.ctx.WallClockTime()
	if now.Sub(l.last) < lateLogInterval {
		return
	}
	l.last = now
	lg, ok := l.ctx.(interface{ Logger() *slog.Logger })
	if !ok {
		return
	}
	lg.Logger().Warn("dropping records for closed windows", "node", l.node, "topic", l.ctx.Topic(),
		"partition", l.ctx.Partition(), "offset", l.ctx.Offset(), "timestamp", ts, "window", w.String(),
		"close_time", closeTime, "dropped_since_last_log", l.dropped)
	l.dropped = 0
}

// Emit says how a windowed aggregation forwards its results.
type Emit struct {
	// Final forwards each window once, when it closes, instead of every
	// update (Kafka Streams' EmitStrategy.onWindowClose).
	Final bool
	// CloseWhenIdle, if positive, lets wall-clock time close windows when
	// the processor has seen no record for that long: its observed stream
	// time then advances with the wall clock from the last record's
	// (assuming event time keeps pace with wall-clock time), so that the
	// last windows close and, with Final, are emitted even when no new
	// record arrives. A departure from Kafka Streams, where windows close
	// only when records advance stream time.
	CloseWhenIdle time.Duration
	// CountTombstones hands records with a null value to the aggregator
	// (as V's zero value) instead of dropping them. Only Count sets it: its
	// aggregator ignores the value, and Kafka Streams' windowed and
	// session aggregations drop only records with a null key, so a
	// windowed count counts tombstones. Typed aggregators of values never
	// see a null: for them a tombstone is dropped and counted.
	CountTombstones bool
}

// idleClock advances a windowed aggregation's observed stream time with
// the wall clock while no record arrives (Emit.CloseWhenIdle).
type idleClock struct {
	idle     time.Duration
	lastWall int64 // wall-clock ms of the last record (or of the start)
	lastObs  int64 // observed stream time after the last record
}

// schedule starts the punctuation that calls advance with the stream time
// the wall clock implies, when the processor has been idle long enough.
func (c *idleClock) schedule(ctx Context, node string, observed int64, advance func(int64) error) error {
	if c.idle <= 0 {
		return nil
	}
	c.lastWall, c.lastObs = ctx.WallClockTime().UnixMilli(), observed
	interval := min(c.idle, time.Second)
	_, err := ctx.Schedule(interval, operators.WallClockTime, func(now int64) error {
		idleFor := now - c.lastWall
		if idleFor < c.idle.Milliseconds() || c.lastObs < 0 {
			return nil
		}
		return advance(c.lastObs + idleFor)
	})
	if err != nil {
		return &operators.NodeError{Node: node, Err: err}
	}
	return nil
}

// record notes a record's arrival.
func (c *idleClock) record(ctx Context, observed int64) {
	if c.idle > 0 {
		c.lastWall, c.lastObs = ctx.WallClockTime().UnixMilli(), observed
	}
}

// windowView is the typed view of a window store of timestamped
// aggregates (8-byte timestamp, then the aggregate's encoding).
type windowView[K, A any] struct {
	ctx   Context
	name  string
	ws    *state.WindowStore
	cache *state.CachingStore
	keys  serde.Serde[K]
	aggs  serde.Serde[A]
	vbuf  []byte
}

func openWindowView[K, A any](ctx Context, name string, keys serde.Serde[K], aggs serde.Serde[A]) (*windowView[K, A], error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(*state.WindowStore)
	if !ok {
		return nil, fmt.Errorf("sluice: store %s is a %T, not a window store", name, s)
	}
	c, _ := ws.Base().(*state.CachingStore)
	return &windowView[K, A]{ctx: ctx, name: name, ws: ws, cache: c, keys: keys, aggs: aggs}, nil
}

// restoredStreamTime is the observed stream time of a time- or
// sliding-window aggregation whose task starts without its processor
// metadata (restored on another instance): the largest record timestamp
// in its store, read from the windows that start last, one of which holds
// the newest record (every window starts at or before the timestamps of
// its records, and the newest record, never late, is in a window that
// starts after every other record's: tumbling and hopping windows, the
// left window of a sliding one or a right window that contains it). The
// values' timestamps are the largest of their windows' records. -1 for an
// empty store. Without it the aggregation would restart from the latest
// window start, up to a window size behind, and accept as on time records
// that were late before the restart, changing windows already closed.
func (v *windowView[K, A]) restoredStreamTime() (int64, error) {
	latest := v.ws.ObservedStreamTime()
	if latest < 0 {
		return -1, nil
	}
	t := latest
	for _, b := range v.ws.FetchAll(latest, latest) {
		if len(b) < 8 {
			return -1, fmt.Errorf("sluice: store %s: value of %d bytes has no timestamp", v.name, len(b))
		}
		t = max(t, int64(binary.BigEndian.Uint64(b)))
	}
	return t, v.ws.IterErr()
}

// startStreamTime is the observed stream time a windowed aggregation
// starts with: the later of its processor metadata and what its store says
// (restoredStreamTime). The metadata alone is not enough: it is the local
// state's, which may be older than the store restored from the changelog
// (the task ran on another instance since).
func (v *windowView[K, A]) startStreamTime(md metadata) (int64, error) {
	t, err := v.restoredStreamTime()
	if err != nil {
		return -1, err
	}
	return max(t, md.get(-1)), nil
}

func (v *windowView[K, A]) get(kb []byte, start int64) (agg A, ts int64, ok bool, err error) {
	b, ok, err := v.ws.Fetch(kb, start)
	if err != nil || !ok {
		return agg, 0, false, err
	}
	ts, agg, err = decodeTimestampedAgg(v.name, v.aggs, b)
	return agg, ts, err == nil, err
}

func (v *windowView[K, A]) put(kb []byte, start int64, agg A, ts int64, headers []operators.Header) error {
	if v.cache != nil {
		v.cache.SetRecordContext(state.RecordContext{Timestamp: ts, Headers: cachedHeaders(headers)})
	}
	buf := binary.BigEndian.AppendUint64(v.vbuf[:0], uint64(ts))
	buf, err := v.aggs.Encode(buf, agg)
	if err != nil {
		return fmt.Errorf("sluice: store %s: cannot serialize value: %w", v.name, err)
	}
	v.vbuf = buf
	return v.ws.Put(kb, start, buf)
}

// decodeWindow decodes the window of key kb starting at start, with the
// stored value b, into the record to forward for it, without headers: the
// window ends at start + size, and the record carries the window's
// timestamp.
func (v *windowView[K, A]) decodeWindow(kb []byte, start int64, b []byte, size int64) (operators.Record[window.Windowed[K], operators.Change[A]], error) {
	var r operators.Record[window.Windowed[K], operators.Change[A]]
	k, err := v.keys.Decode(kb)
	if err != nil {
		return r, fmt.Errorf("sluice: store %s: cannot deserialize key: %w", v.name, err)
	}
	ts, agg, err := decodeTimestampedAgg(v.name, v.aggs, b)
	if err != nil {
		return r, err
	}
	r.Key = window.Windowed[K]{Key: k, Window: window.Window{Start: start, End: start + size}}
	r.Value = operators.Change[A]{New: agg, HasNew: true}
	r.Timestamp = ts
	return r, nil
}

// forwardOnFlush makes the view's record cache, if it has one, forward
// each window it flushes to next, with its new and old aggregates and the
// context of its last write (windows of the given size), and reports
// whether it did: the aggregation then does not forward updates itself.
func (v *windowView[K, A]) forwardOnFlush(node string, size int64, next Node[window.Windowed[K], operators.Change[A]]) bool {
	if v.cache == nil {
		return false
	}
	v.cache.SetFlushListener(func(key, nv []byte, deleted bool, ov []byte, hasOld bool, rc state.RecordContext) error {
		if deleted {
			return nil // windows leave the store only by expiring: nothing to forward
		}
		kb, start, _, err := state.SplitWindowKey(key[8:]) // key: segment ID ‖ changelog key
		if err != nil {
			return &operators.NodeError{Node: node, Err: err}
		}
		r, err := v.decodeWindow(kb, start, nv, size)
		if err != nil {
			return &operators.NodeError{Node: node, Err: err}
		}
		if hasOld {
			if _, r.Value.Old, err = decodeTimestampedAgg(v.name, v.aggs, ov); err != nil {
				return &operators.NodeError{Node: node, Err: err}
			}
			r.Value.HasOld = true
		}
		r.Headers, _ = rc.Headers.([]operators.Header)
		v.ctx.CacheForward(true)
		err = next.Process(r)
		v.ctx.CacheForward(false)
		return err
	})
	return true
}

func decodeTimestampedAgg[A any](store string, aggs serde.Serde[A], b []byte) (int64, A, error) {
	var a A
	if len(b) < 8 {
		return 0, a, fmt.Errorf("sluice: store %s: value of %d bytes has no timestamp", store, len(b))
	}
	a, err := aggs.Decode(b[8:])
	if err != nil {
		return 0, a, fmt.Errorf("sluice: store %s: cannot deserialize value: %w", store, err)
	}
	return int64(binary.BigEndian.Uint64(b)), a, nil
}

// WindowAggregate aggregates the records of each key per time window
// (tumbling or hopping, window.Time) into the window store named store,
// Kafka Streams' KStreamWindowAggregate: first makes a window's aggregate
// from its first record, add folds in the next ones. A record is added to
// every window that contains it and has not closed; a window [start, end)
// closes when the processor's observed stream time (the largest timestamp
// it has seen) reaches end + grace, and a record for a closed window is
// dropped, counted as "late" and logged (rate-limited).
//
// With emitFinal false every update is forwarded, as a Change with the
// window's new aggregate, through the store's record cache if it has one;
// with emitFinal true nothing is forwarded until a window closes, and then
// its final aggregate once (Kafka Streams' EmitStrategy.onWindowClose).
// The forwarded timestamp is the largest timestamp of the window's records.
func WindowAggregate[K, V, A any](ctx Context, node, store string, w window.Time, emit Emit, keys serde.Serde[K], aggs serde.Serde[A],
	first func(K, V) A, add func(K, V, A) A, next Node[window.Windowed[K], operators.Change[A]]) (Node[K, V], error) {
	emitFinal := emit.Final
	if err := w.Validate(); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	v, err := openWindowView(ctx, store, keys, aggs)
	if err != nil {
		return nil, err
	}
	p := &windowAggregate[K, V, A]{ctx: ctx, node: node, w: w, final: emitFinal, countTombstones: emit.CountTombstones, view: v, first: first, add: add, next: next,
		observedMD: newMetadata(ctx, store+".observed-stream-time"), emitMD: newMetadata(ctx, store+".last-emit-close-time"),
		late: lateLog{ctx: ctx, node: node}}
	if p.observed, err = v.startStreamTime(p.observedMD); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	p.lastEmit = p.emitMD.get(-1)
	p.idle.idle = emit.CloseWhenIdle
	if err := p.idle.schedule(ctx, node, p.observed, p.advance); err != nil {
		return nil, err
	}
	p.cached = !emitFinal && v.forwardOnFlush(node, w.Size.Milliseconds(), next)
	return p, nil
}

type windowAggregate[K, V, A any] struct {
	ctx   Context
	node  string
	w     window.Time
	final bool
	// countTombstones: see Emit.CountTombstones.
	countTombstones bool
	cached          bool
	view            *windowView[K, A]
	first           func(K, V) A
	add             func(K, V, A) A
	next            Node[window.Windowed[K], operators.Change[A]]

	observed, lastEmit int64
	observedMD, emitMD metadata
	late               lateLog
	idle               idleClock
	wins               []window.Window
	kbuf               []byte
}

// advance moves the observed stream time to t on wall-clock time
// (Emit.CloseWhenIdle) and emits what that closes.
func (p *windowAggregate[K, V, A]) advance(t int64) error {
	if t <= p.observed {
		return nil
	}
	p.observed = t
	p.observedMD.set(t)
	if p.final {
		return p.emitFinal(t-p.w.Grace.Milliseconds(), nil)
	}
	return nil
}

func (p *windowAggregate[K, V, A]) Process(r operators.Record[K, V]) error {
	if r.NullKey || (r.Tombstone && !p.countTombstones) {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
		return nil
	}
	if r.Timestamp > p.observed {
		p.observed = r.Timestamp
		p.observedMD.set(p.observed)
	}
	p.idle.record(p.ctx, p.observed)
	closeTime := p.observed - p.w.Grace.Milliseconds()
	var err error
	if p.kbuf, err = p.view.keys.Encode(p.kbuf[:0], r.Key); err != nil {
		return &operators.SerializationError{Node: p.node, Part: "key", Err: err}
	}
	// Emit what closed before writing: the write may advance the store's
	// retention past the windows it closed.
	if p.final {
		if err := p.emitFinal(closeTime, r.Headers); err != nil {
			return err
		}
	}
	p.wins = p.w.WindowsFor(p.wins[:0], r.Timestamp)
	for _, win := range p.wins {
		if win.End <= closeTime {
			p.late.drop(r.Timestamp, win, closeTime)
			continue
		}
		old, oldTs, ok, err := p.view.get(p.kbuf, win.Start)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		agg, ts := p.first(r.Key, r.Value), r.Timestamp
		if ok {
			agg, ts = p.add(r.Key, r.Value, old), max(oldTs, r.Timestamp)
		}
		if err := p.view.put(p.kbuf, win.Start, agg, ts, r.Headers); errors.Is(err, state.ErrWindowExpired) {
			p.late.drop(r.Timestamp, win, closeTime) // past the store's retention
			continue
		} else if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if p.final || p.cached {
			continue
		}
		if err := p.next.Process(operators.Record[window.Windowed[K], operators.Change[A]]{
			Key: window.Windowed[K]{Key: r.Key, Window: win}, Value: operators.Change[A]{New: agg, HasNew: true, Old: old, HasOld: ok},
			Timestamp: ts, Headers: r.Headers,
		}); err != nil {
			return err
		}
	}
	return nil
}

// emitFinal forwards the windows closed since the last emission, in the
// store's order (by start, then key), with Kafka Streams' range
// arithmetic (AbstractKStreamTimeWindowAggregateProcessor). Kafka Streams
// throttles this to once per emit interval of wall-clock time; Sluice
// emits as soon as the close time moves past a window end.
func (p *windowAggregate[K, V, A]) emitFinal(closeTime int64, headers []operators.Header) error {
	if p.lastEmit != -1 && p.lastEmit >= closeTime {
		return nil
	}
	size := p.w.Size.Milliseconds()
	upper := closeTime - size
	if upper < 0 {
		return nil
	}
	lower := int64(0)
	if p.lastEmit != -1 {
		lower = max(0, p.lastEmit-size) + 1
		// Nothing to do unless a window ends in (lastEmit, closeTime].
		a, b := p.w.WindowsFor(nil, upper), p.w.WindowsFor(nil, lower-1)
		if len(a) > 0 && len(b) > 0 && a[0] == b[0] && a[len(a)-1] == b[len(b)-1] {
			return nil
		}
	}
	for ek, v := range p.view.ws.FetchAll(lower, upper) {
		r, err := p.view.decodeWindow(ek.Key, ek.Start, v, size)
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

// SessionAggregate aggregates the records of each key per session (Kafka
// Streams' KStreamSessionWindowAggregate) in the session store named
// store: a record at ts joins every session of its key within the gap
// (those ending at or after ts-gap and starting at or before ts+gap); the
// sessions it bridges are merged with merge into one, removed, and the
// merged session [earliest start, latest end] is stored with the record
// added by add (init for a new session). A record whose merged session
// ends before the close time (observed stream time - grace - gap) is
// dropped, counted as "late" and logged (rate-limited).
//
// With emitFinal false every change is forwarded (through the record cache
// if the store has one): a removed session as a Change with only the old
// aggregate, the merged one with its new aggregate, timestamped with the
// session's end. With emitFinal true each session is forwarded once, when
// it closes.
func SessionAggregate[K, V, A any](ctx Context, node, store string, w window.Session, emit Emit, keys serde.Serde[K], aggs serde.Serde[A],
	init func() A, add func(K, V, A) A, merge func(K, A, A) A, next Node[window.Windowed[K], operators.Change[A]]) (Node[K, V], error) {
	return newSessionAggregate(ctx, node, store, w, emit, keys, aggs, init, nil, add, merge, next)
}

// SessionReduce is SessionAggregate where a session's aggregate starts as
// its first value and merged sessions are combined with reduce too (Kafka
// Streams' SessionWindowedKStream.reduce).
func SessionReduce[K, V any](ctx Context, node, store string, w window.Session, emit Emit, keys serde.Serde[K], values serde.Serde[V],
	add func(K, V, V) V, merge func(K, V, V) V, next Node[window.Windowed[K], operators.Change[V]]) (Node[K, V], error) {
	return newSessionAggregate(ctx, node, store, w, emit, keys, values, nil, func(_ K, v V) V { return v }, add, merge, next)
}

// newSessionAggregate: a new session's aggregate is init() with the record
// added, or without init, first(record).
func newSessionAggregate[K, V, A any](ctx Context, node, store string, w window.Session, emit Emit, keys serde.Serde[K], aggs serde.Serde[A],
	init func() A, first func(K, V) A, add func(K, V, A) A, merge func(K, A, A) A, next Node[window.Windowed[K], operators.Change[A]]) (Node[K, V], error) {
	emitFinal := emit.Final
	if err := w.Validate(); err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	s, err := ctx.Store(store)
	if err != nil {
		return nil, err
	}
	ss, ok := s.(*state.SessionStore)
	if !ok {
		return nil, fmt.Errorf("sluice: store %s is a %T, not a session store", store, s)
	}
	p := &sessionAggregate[K, V, A]{ctx: ctx, node: node, store: store, w: w, final: emitFinal, countTombstones: emit.CountTombstones, ss: ss, keys: keys, aggs: aggs,
		init: init, first: first, add: add, merge: merge, next: next,
		observedMD: newMetadata(ctx, store+".observed-stream-time"), emitMD: newMetadata(ctx, store+".last-emit-close-time"),
		late: lateLog{ctx: ctx, node: node}}
	// Without metadata (a task restored on another instance), the store's
	// latest session end is the stream time: the newest record, never
	// late, ends its session.
	p.observed = max(p.observedMD.get(-1), ss.ObservedStreamTime())
	p.lastEmit = p.emitMD.get(-1)
	p.cache, _ = ss.Base().(*state.CachingStore)
	p.idle.idle = emit.CloseWhenIdle
	if err := p.idle.schedule(ctx, node, p.observed, p.advance); err != nil {
		return nil, err
	}
	if !emitFinal && p.cache != nil {
		p.cached = true
		p.cache.SetFlushListener(func(key, nv []byte, deleted bool, ov []byte, hasOld bool, rc state.RecordContext) error {
			kb, start, end, err := state.SplitSessionKey(key[8:]) // key: segment ID ‖ changelog key
			if err != nil {
				return &operators.NodeError{Node: node, Err: err}
			}
			k, err := keys.Decode(kb)
			if err != nil {
				return &operators.NodeError{Node: node, Err: fmt.Errorf("store %s: cannot deserialize key: %w", store, err)}
			}
			r := operators.Record[window.Windowed[K], operators.Change[A]]{Key: window.Windowed[K]{Key: k, Window: window.Window{Start: start, End: end}}, Timestamp: end}
			r.Headers, _ = rc.Headers.([]operators.Header)
			if !deleted {
				if r.Value.New, err = aggs.Decode(nv); err != nil {
					return &operators.NodeError{Node: node, Err: err}
				}
				r.Value.HasNew = true
			}
			if hasOld {
				if r.Value.Old, err = aggs.Decode(ov); err != nil {
					return &operators.NodeError{Node: node, Err: err}
				}
				r.Value.HasOld = true
			}
			ctx.CacheForward(true)
			err = next.Process(r)
			ctx.CacheForward(false)
			return err
		})
	}
	return p, nil
}

type sessionAggregate[K, V, A any] struct {
	ctx   Context
	node  string
	store string
	w     window.Session
	final bool
	// countTombstones: see Emit.CountTombstones.
	countTombstones bool
	cached          bool
	ss              *state.SessionStore
	cache           *state.CachingStore
	keys            serde.Serde[K]
	aggs            serde.Serde[A]
	init            func() A
	first           func(K, V) A
	add             func(K, V, A) A
	merge           func(K, A, A) A
	next            Node[window.Windowed[K], operators.Change[A]]

	observed, lastEmit int64
	observedMD, emitMD metadata
	late               lateLog
	idle               idleClock
	kbuf, vbuf         []byte
	merged             []mergedSession[A]
}

// advance moves the observed stream time to t on wall-clock time
// (Emit.CloseWhenIdle) and emits what that closes.
func (p *sessionAggregate[K, V, A]) advance(t int64) error {
	if t <= p.observed {
		return nil
	}
	p.observed = t
	p.observedMD.set(t)
	if p.final {
		return p.emitFinal(t-p.w.Grace.Milliseconds()-p.w.Gap.Milliseconds(), nil)
	}
	return nil
}

type mergedSession[A any] struct {
	w   window.Window
	agg A
}

func (p *sessionAggregate[K, V, A]) Process(r operators.Record[K, V]) error {
	if r.NullKey || (r.Tombstone && !p.countTombstones) {
		p.ctx.RecordDropped(p.node, nullReason(r.NullKey))
		return nil
	}
	ts := r.Timestamp
	if ts > p.observed {
		p.observed = ts
		p.observedMD.set(ts)
	}
	p.idle.record(p.ctx, p.observed)
	gap, grace := p.w.Gap.Milliseconds(), p.w.Grace.Milliseconds()
	closeTime := p.observed - grace - gap
	var err error
	if p.kbuf, err = p.keys.Encode(p.kbuf[:0], r.Key); err != nil {
		return &operators.SerializationError{Node: p.node, Part: "key", Err: err}
	}
	// Emit what closed before writing (see windowAggregate).
	if p.final {
		if err := p.emitFinal(closeTime, r.Headers); err != nil {
			return err
		}
	}
	p.merged = p.merged[:0]
	var agg A
	has := p.init != nil
	if has {
		agg = p.init()
	}
	merged := window.Window{Start: ts, End: ts}
	for sk, v := range p.ss.FindSessions(p.kbuf, ts-gap, ts+gap) {
		a, err := p.aggs.Decode(v)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize value: %w", p.store, err)}
		}
		w := window.Window{Start: sk.Start, End: sk.End}
		p.merged = append(p.merged, mergedSession[A]{w: w, agg: a})
		if has {
			agg = p.merge(r.Key, agg, a)
		} else {
			agg, has = a, true
		}
		merged.Start, merged.End = min(merged.Start, w.Start), max(merged.End, w.End)
	}
	if err := p.ss.IterErr(); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if merged.End < closeTime {
		p.late.drop(ts, merged, closeTime)
	} else {
		if p.cache != nil {
			// The record's own timestamp, as Kafka Streams' record context:
			// the changelog records of these writes carry it; what the
			// flush forwards is stamped with the session's end.
			p.cache.SetRecordContext(state.RecordContext{Timestamp: ts, Headers: cachedHeaders(r.Headers)})
		}
		if merged != (window.Window{Start: ts, End: ts}) {
			for _, m := range p.merged {
				if err := p.ss.Remove(p.kbuf, m.w.Start, m.w.End); err != nil {
					return &operators.NodeError{Node: p.node, Err: err}
				}
				if !p.final && !p.cached {
					if err := p.next.Process(operators.Record[window.Windowed[K], operators.Change[A]]{
						Key: window.Windowed[K]{Key: r.Key, Window: m.w}, Value: operators.Change[A]{Old: m.agg, HasOld: true},
						Timestamp: m.w.End, Headers: r.Headers,
					}); err != nil {
						return err
					}
				}
			}
		}
		if has {
			agg = p.add(r.Key, r.Value, agg)
		} else {
			agg = p.first(r.Key, r.Value)
		}
		if p.vbuf, err = p.aggs.Encode(p.vbuf[:0], agg); err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot serialize value: %w", p.store, err)}
		}
		v := p.vbuf
		if v == nil {
			// An aggregate that encodes to no bytes ("") is a value: a nil
			// slice would remove the session.
			v = []byte{}
		}
		if err := p.ss.Put(p.kbuf, merged.Start, merged.End, v); err != nil {
			// ErrWindowExpired cannot happen here: the store keeps
			// sessions 1ms past the close time (task.WrapStore).
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if !p.final && !p.cached {
			if err := p.next.Process(operators.Record[window.Windowed[K], operators.Change[A]]{
				Key: window.Windowed[K]{Key: r.Key, Window: merged}, Value: operators.Change[A]{New: agg, HasNew: true},
				Timestamp: merged.End, Headers: r.Headers,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// emitFinal forwards the sessions that closed since the last emission:
// those ending in [last close time, close time - 1] (Kafka Streams'
// KStreamSessionWindowAggregate), timestamped with their end.
func (p *sessionAggregate[K, V, A]) emitFinal(closeTime int64, headers []operators.Header) error {
	if p.lastEmit != -1 && p.lastEmit >= closeTime {
		return nil
	}
	upper := closeTime - 1
	if upper < 0 {
		return nil
	}
	lower := max(0, p.lastEmit)
	for sk, v := range p.ss.FindSessionsByEnd(lower, upper) {
		k, err := p.keys.Decode(sk.Key)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize key: %w", p.store, err)}
		}
		a, err := p.aggs.Decode(v)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize value: %w", p.store, err)}
		}
		if err := p.next.Process(operators.Record[window.Windowed[K], operators.Change[A]]{
			Key: window.Windowed[K]{Key: k, Window: window.Window{Start: sk.Start, End: sk.End}}, Value: operators.Change[A]{New: a, HasNew: true},
			Timestamp: sk.End, Headers: headers,
		}); err != nil {
			return err
		}
	}
	if err := p.ss.IterErr(); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	p.lastEmit = closeTime
	p.emitMD.set(closeTime)
	return nil
}
