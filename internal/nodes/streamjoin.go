package nodes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// Stream-stream joins, as Kafka Streams' KStreamImplJoin wires them: each
// input goes through a window node (KStreamJoinWindow) that forwards the
// record to its join node and then keeps it in the input's window store;
// the join node of each side (KStreamKStreamJoinLeftSide/RightSide) looks
// the record up in the other side's window store; a pass-through node
// merges the two sides' results. A left or outer join keeps the records
// that have not matched yet in a shared store (the outer join store, a
// list-valued key-value store keyed by timestamp ‖ side ‖ key) until
// their window closes, and emits them joined with an absent value then.

// JoinWindow is the window node of one input of a stream-stream join: it
// forwards each record, then puts it into the window store named store
// (a store retaining duplicates), under its timestamp. A record with a
// null key is forwarded but not stored; a tombstone is forwarded, and the
// store ignores it. A record too old for the store's retention is
// forwarded (it still joins what the other side holds) and counted as
// dropped ("late") for the store.
func JoinWindow[K, V any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[V], next Node[K, V]) (Node[K, V], error) {
	ws, err := openWindowStore(ctx, store)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &joinWindow[K, V]{ctx: ctx, node: node, store: store, ws: ws, keys: keys, values: values, next: next}, nil
}

func openWindowStore(ctx Context, name string) (*state.WindowStore, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(*state.WindowStore)
	if !ok {
		return nil, fmt.Errorf("sluice: store %s is a %T, not a window store", name, s)
	}
	return ws, nil
}

type joinWindow[K, V any] struct {
	ctx    Context
	node   string
	store  string
	ws     *state.WindowStore
	keys   serde.Serde[K]
	values serde.Serde[V]
	next   Node[K, V]
	kbuf   []byte
	vbuf   []byte
}

func (p *joinWindow[K, V]) Process(r operators.Record[K, V]) error {
	// Forward first: the join node below looks the record up in the other
	// side's store before the record is in its own (in a self-join the
	// first side then does not meet the record itself, the second does).
	if err := p.next.Process(r); err != nil {
		return err
	}
	if r.NullKey || r.Tombstone {
		return nil
	}
	var err error
	if p.kbuf, err = p.keys.Encode(p.kbuf[:0], r.Key); err != nil {
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot serialize key: %w", p.store, err)}
	}
	if p.vbuf, err = p.values.Encode(p.vbuf[:0], r.Value); err != nil {
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot serialize value: %w", p.store, err)}
	}
	if p.vbuf == nil {
		// A value that encodes to no bytes ("" as a string) is a value: a
		// nil one would be a Kafka null, which the store ignores.
		p.vbuf = []byte{}
	}
	if r.Timestamp < 0 {
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: negative timestamp %d", p.store, r.Timestamp)}
	}
	if err := p.ws.Put(p.kbuf, r.Timestamp, p.vbuf); errors.Is(err, state.ErrWindowExpired) {
		p.ctx.RecordDropped(p.node, "late")
	} else if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return nil
}

// JoinTimeTrackers hands the two join nodes of one task of a left or
// outer join the same time tracker (Kafka Streams' TimeTrackerSupplier):
// the stream time both sides have seen, and the smallest timestamp put
// into the outer join store since it was last scanned. The tracker is
// found through the task's instance of the shared store, which both join
// nodes of a task open: the first node creates it, the second takes it.
type JoinTimeTrackers struct {
	mu      sync.Mutex
	pending map[state.Store]*joinTimeTracker
}

// NewJoinTimeTrackers returns the trackers of one join.
func NewJoinTimeTrackers() *JoinTimeTrackers {
	return &JoinTimeTrackers{pending: map[state.Store]*joinTimeTracker{}}
}

func (t *JoinTimeTrackers) claim(shared state.Store) *joinTimeTracker {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tt, ok := t.pending[shared]; ok {
		delete(t.pending, shared)
		return tt
	}
	tt := newJoinTimeTracker()
	t.pending[shared] = tt
	return tt
}

// joinTimeTracker is Kafka Streams' KStreamImplJoin.TimeTracker without
// the wall-clock throttle of the outer store scans (at most one per
// emit.interval.ms.kstreams.outer.join.spurious.results.fix, 1 s by
// default, which Kafka Streams' TopologyTestDriver sets to 0): Sluice
// scans whenever the stream time and the smallest waiting timestamp say a
// record may have expired. Neither field is
// kept in a store: after a restart the stream time starts again at -1 and
// minTime at MaxInt64, as in Kafka Streams.
type joinTimeTracker struct {
	streamTime int64
	minTime    int64
}

func newJoinTimeTracker() *joinTimeTracker {
	return &joinTimeTracker{streamTime: -1, minTime: math.MaxInt64}
}

// StreamJoinSide configures the join node of one side of a stream-stream
// join.
type StreamJoinSide struct {
	// Node is the join node's name.
	Node string
	// Left is set for the node of the left input (JOINTHIS/OUTERTHIS).
	Left bool
	// Outer is set if the side's unmatched records are emitted joined with
	// an absent value: the left side of a left join, both of an outer join.
	Outer bool
	// OtherStore is the window store of the other side.
	OtherStore string
	// SharedStore is the outer join store of a left or outer join; "" for
	// an inner join.
	SharedStore string
	// Trackers share the time tracker between the two sides of a task; nil
	// for an inner join.
	Trackers *JoinTimeTrackers
	Windows  window.Join
}

// StreamJoinLeft returns the join node of the left side of a stream-stream
// join (Kafka Streams' KStreamKStreamJoinLeftSide), which takes the left
// records; StreamJoinRight the right side's. join gets the key, the left
// value and the right value; an absent value is one a left or outer join
// did not find. It gets the key's zero value, and the result keeps a null
// key, for a null-key record that an outer side forwards.
func StreamJoinLeft[K, VL, VR, VO any](ctx Context, side StreamJoinSide, keys serde.Serde[K], lvalues serde.Serde[VL], rvalues serde.Serde[VR],
	join func(k K, l operators.Maybe[VL], r operators.Maybe[VR]) VO, next Node[K, VO]) (Node[K, VL], error) {
	j, err := newStreamJoin(ctx, side, keys, lvalues, rvalues, join, next)
	if err != nil {
		return nil, err
	}
	return streamJoinLeft[K, VL, VR, VO]{j}, nil
}

// StreamJoinRight returns the join node of the right side of a
// stream-stream join (KStreamKStreamJoinRightSide); see StreamJoinLeft.
func StreamJoinRight[K, VL, VR, VO any](ctx Context, side StreamJoinSide, keys serde.Serde[K], lvalues serde.Serde[VL], rvalues serde.Serde[VR],
	join func(k K, l operators.Maybe[VL], r operators.Maybe[VR]) VO, next Node[K, VO]) (Node[K, VR], error) {
	j, err := newStreamJoin(ctx, side, keys, lvalues, rvalues, join, next)
	if err != nil {
		return nil, err
	}
	return streamJoinRight[K, VL, VR, VO]{j}, nil
}

type streamJoinLeft[K, VL, VR, VO any] struct{ j *streamJoin[K, VL, VR, VO] }

func (p streamJoinLeft[K, VL, VR, VO]) Process(r operators.Record[K, VL]) error {
	return p.j.process(r.Key, r.NullKey, r.Tombstone, operators.MaybeOf(r.Value, !r.Tombstone), operators.None[VR](), r.Timestamp, r.Headers)
}

type streamJoinRight[K, VL, VR, VO any] struct{ j *streamJoin[K, VL, VR, VO] }

func (p streamJoinRight[K, VL, VR, VO]) Process(r operators.Record[K, VR]) error {
	return p.j.process(r.Key, r.NullKey, r.Tombstone, operators.None[VL](), operators.MaybeOf(r.Value, !r.Tombstone), r.Timestamp, r.Headers)
}

// streamJoin is Kafka Streams' KStreamKStreamJoinProcessor for one side.
// The values of the side's own records arrive in l (left side) or r
// (right side).
type streamJoin[K, VL, VR, VO any] struct {
	ctx     Context
	node    string
	left    bool
	outer   bool
	other   *state.WindowStore
	otherNm string
	shared  *outerJoinStore
	tt      *joinTimeTracker
	keys    serde.Serde[K]
	lvalues serde.Serde[VL]
	rvalues serde.Serde[VR]
	join    func(K, operators.Maybe[VL], operators.Maybe[VR]) VO
	next    Node[K, VO]

	// joinBefore and joinAfter are the side's own look-up range: the
	// windows' Before and After for the left side, swapped for the right.
	joinBefore, joinAfter int64
	// windowsBefore, windowsAfter and grace are the windows' own.
	windowsBefore, windowsAfter, grace int64

	kbuf    []byte
	expired []expiredEntry
}

type expiredEntry struct {
	key   []byte // the outer join store key: ts ‖ side ‖ key
	value []byte // one element of its list: side ‖ value
}

func newStreamJoin[K, VL, VR, VO any](ctx Context, side StreamJoinSide, keys serde.Serde[K], lvalues serde.Serde[VL], rvalues serde.Serde[VR],
	join func(K, operators.Maybe[VL], operators.Maybe[VR]) VO, next Node[K, VO]) (*streamJoin[K, VL, VR, VO], error) {
	other, err := openWindowStore(ctx, side.OtherStore)
	if err != nil {
		return nil, &operators.NodeError{Node: side.Node, Err: err}
	}
	w := side.Windows
	j := &streamJoin[K, VL, VR, VO]{
		ctx: ctx, node: side.Node, left: side.Left, outer: side.Outer, other: other, otherNm: side.OtherStore,
		keys: keys, lvalues: lvalues, rvalues: rvalues, join: join, next: next,
		windowsBefore: w.Before.Milliseconds(), windowsAfter: w.After.Milliseconds(), grace: w.Grace.Milliseconds(),
	}
	j.joinBefore, j.joinAfter = j.windowsBefore, j.windowsAfter
	if !side.Left {
		j.joinBefore, j.joinAfter = j.windowsAfter, j.windowsBefore
	}
	if side.SharedStore != "" {
		kv, err := OpenKeyValueStore(ctx, side.SharedStore)
		if err != nil {
			return nil, &operators.NodeError{Node: side.Node, Err: err}
		}
		j.shared = &outerJoinStore{name: side.SharedStore, kv: kv}
		j.tt = side.Trackers.claim(kv)
	} else {
		j.tt = newJoinTimeTracker()
	}
	return j, nil
}

func (j *streamJoin[K, VL, VR, VO]) process(key K, nullKey, tombstone bool, l operators.Maybe[VL], r operators.Maybe[VR], ts int64, headers []operators.Header) error {
	// Every record advances the shared stream time, even one dropped below.
	j.tt.streamTime = max(j.tt.streamTime, ts)
	if j.outer && nullKey && !tombstone {
		// Kafka Streams 4 forwards a null-key record of an outer side at
		// once, joined with an absent value, its key still null.
		return j.forward(key, true, j.join(key, l, r), ts, headers)
	}
	if nullKey || tombstone {
		j.ctx.RecordDropped(j.node, nullReason(nullKey))
		return nil
	}
	if ts == j.tt.streamTime && j.shared != nil {
		if err := j.emitExpired(headers); err != nil {
			return err
		}
	}
	var err error
	if j.kbuf, err = j.keys.Encode(j.kbuf[:0], key); err != nil {
		return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: cannot serialize key: %w", j.otherNm, err)}
	}
	kb := j.kbuf
	from, to := max(0, ts-j.joinBefore), max(0, ts+j.joinAfter)
	matched := false
	for otherTs, ob := range j.other.FetchKey(kb, from, to) {
		matched = true
		if j.shared != nil {
			// The other record has a partner now: it leaves the outer join
			// store (all the values of its key and timestamp).
			if err := j.shared.deleteIfPresent(otherTs, !j.left, kb); err != nil {
				return &operators.NodeError{Node: j.node, Err: err}
			}
		}
		res, err := j.joinStored(key, l, r, ob)
		if err != nil {
			return err
		}
		if err := j.forward(key, false, res, max(ts, otherTs), headers); err != nil {
			return err
		}
	}
	if err := j.other.IterErr(); err != nil {
		return &operators.NodeError{Node: j.node, Err: err}
	}
	if !j.outer || matched {
		return nil
	}
	if j.shared == nil || to < j.tt.streamTime {
		// The record's window has closed already (it is out of order): no
		// partner can come any more, the absent result is due now.
		return j.forward(key, false, j.join(key, l, r), ts, headers)
	}
	j.tt.minTime = min(j.tt.minTime, ts)
	var vb []byte
	if j.left {
		v, _ := l.Get()
		vb, err = j.lvalues.Encode(nil, v)
	} else {
		v, _ := r.Get()
		vb, err = j.rvalues.Encode(nil, v)
	}
	if err != nil {
		return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: cannot serialize value: %w", j.shared.name, err)}
	}
	if err := j.shared.add(ts, j.left, kb, vb); err != nil {
		return &operators.NodeError{Node: j.node, Err: err}
	}
	return nil
}

// joinStored joins the side's own value with the other side's value ob
// from its window store.
func (j *streamJoin[K, VL, VR, VO]) joinStored(key K, l operators.Maybe[VL], r operators.Maybe[VR], ob []byte) (VO, error) {
	var err error
	if j.left {
		var v VR
		if v, err = j.rvalues.Decode(ob); err == nil {
			return j.join(key, l, operators.Some(v)), nil
		}
	} else {
		var v VL
		if v, err = j.lvalues.Decode(ob); err == nil {
			return j.join(key, operators.Some(v), r), nil
		}
	}
	var zero VO
	return zero, &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: cannot deserialize value: %w", j.otherNm, err)}
}

func (j *streamJoin[K, VL, VR, VO]) forward(key K, nullKey bool, v VO, ts int64, headers []operators.Header) error {
	return j.next.Process(operators.Record[K, VO]{Key: key, NullKey: nullKey, Value: v, Timestamp: ts, Headers: headers})
}

// emitExpired emits the records of the outer join store whose window has
// closed, joined with an absent value, each with its own timestamp and
// the current record's headers, in the store's order (timestamp, then
// right before left, then key bytes), and deletes them (Kafka Streams'
// emitNonJoinedOuterRecords, including how it keeps minTime).
func (j *streamJoin[K, VL, VR, VO]) emitExpired(headers []operators.Header) error {
	tt := j.tt
	// Nothing can have expired yet. The sum wraps around as Java's does
	// (minTime is MaxInt64 after a scan emptied the store and after a
	// restart).
	if tt.minTime+j.joinAfter+j.grace >= tt.streamTime {
		return nil
	}
	tt.minTime = math.MaxInt64
	// Collect first, then forward and delete: the loop body of a store
	// iteration must not write to the store it iterates.
	j.expired = j.expired[:0]
	leftOpen, rightOpen := false, false
	for k, list := range j.shared.kv.Range(nil, nil) {
		ts, isLeft, _, err := splitOuterJoinKey(k)
		if err != nil {
			return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: %w", j.shared.name, err)}
		}
		elems, err := splitValueList(list)
		if err != nil {
			return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: key %x: %w", j.shared.name, k, err)}
		}
		stop := false
		for _, e := range elems {
			tt.minTime = ts
			if leftOpen && rightOpen {
				stop = true
				break
			}
			lookBack := j.windowsBefore
			if isLeft {
				lookBack = j.windowsAfter
			}
			if tt.minTime+lookBack+j.grace >= tt.streamTime {
				if isLeft {
					leftOpen = true
				} else {
					rightOpen = true
				}
				continue
			}
			j.expired = append(j.expired, expiredEntry{key: bytes.Clone(k), value: bytes.Clone(e)})
		}
		if stop {
			break
		}
	}
	var prev []byte
	for _, e := range j.expired {
		if err := j.forwardExpired(e, headers); err != nil {
			return err
		}
		if prev != nil && !bytes.Equal(prev, e.key) {
			if err := j.shared.kv.Delete(prev); err != nil {
				return &operators.NodeError{Node: j.node, Err: err}
			}
		}
		prev = e.key
	}
	if prev != nil {
		if err := j.shared.kv.Delete(prev); err != nil {
			return &operators.NodeError{Node: j.node, Err: err}
		}
	}
	return nil
}

func (j *streamJoin[K, VL, VR, VO]) forwardExpired(e expiredEntry, headers []operators.Header) error {
	ts, _, kb, _ := splitOuterJoinKey(e.key)
	k, err := j.keys.Decode(kb)
	if err != nil {
		return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: cannot deserialize key: %w", j.shared.name, err)}
	}
	if len(e.value) == 0 {
		return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: empty value of key %x", j.shared.name, e.key)}
	}
	var res VO
	if e.value[0] == 1 {
		v, err := j.lvalues.Decode(e.value[1:])
		if err != nil {
			return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: cannot deserialize left value: %w", j.shared.name, err)}
		}
		res = j.join(k, operators.Some(v), operators.None[VR]())
	} else {
		v, err := j.rvalues.Decode(e.value[1:])
		if err != nil {
			return &operators.NodeError{Node: j.node, Err: fmt.Errorf("store %s: cannot deserialize right value: %w", j.shared.name, err)}
		}
		res = j.join(k, operators.None[VL](), operators.Some(v))
	}
	return j.forward(k, false, res, ts, headers)
}

// outerJoinStore is the outer join store of a left or outer join, in
// Kafka Streams' layout (a ListValueStore of TimestampedKeyAndJoinSide to
// LeftOrRightValue), so that its changelog is the one a Java application
// writes: the key is int64 timestamp (big-endian) ‖ one byte side (1 left,
// 0 right) ‖ the key's encoding; the value is the list of the values put
// under that key, as Kafka's ListSerde of byte arrays writes it (one byte
// 1 for variable-size entries, int32 count, then int32 length and bytes of
// each entry), each entry being one byte side ‖ the value's encoding.
type outerJoinStore struct {
	name string
	kv   state.KeyValueStore
	kbuf []byte
	vbuf []byte
}

// AppendOuterJoinKey appends the outer join store key of (ts, side, key)
// to dst: Kafka Streams' TimestampedKeyAndJoinSideSerializer.
func AppendOuterJoinKey(dst []byte, ts int64, left bool, key []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	side := byte(0)
	if left {
		side = 1
	}
	return append(append(dst, side), key...)
}

func splitOuterJoinKey(b []byte) (ts int64, left bool, key []byte, err error) {
	if len(b) < 9 {
		return 0, false, nil, fmt.Errorf("outer join key %x is shorter than its 9-byte timestamp and side", b)
	}
	return int64(binary.BigEndian.Uint64(b)), b[8] == 1, b[9:], nil
}

// listVariableSize is the flag of Kafka's ListSerializer for entries of
// variable size (SerializationStrategy.VARIABLE_SIZE).
const listVariableSize = 1

// splitValueList splits a value of the outer join store into its entries
// (slices of b).
func splitValueList(b []byte) ([][]byte, error) {
	if len(b) < 5 || b[0] != listVariableSize {
		return nil, fmt.Errorf("value list %x: not a list of variable-size entries", b)
	}
	n := int(int32(binary.BigEndian.Uint32(b[1:5])))
	if n < 0 {
		return nil, fmt.Errorf("value list: negative count %d", n)
	}
	b = b[5:]
	out := make([][]byte, 0, min(n, len(b)/4))
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("value list: entry %d of %d is missing", i, n)
		}
		l := int(int32(binary.BigEndian.Uint32(b)))
		if l < 0 || l > len(b)-4 {
			return nil, fmt.Errorf("value list: entry %d has a bad length %d", i, l)
		}
		out = append(out, b[4:4+l])
		b = b[4+l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("value list: %d trailing bytes", len(b))
	}
	return out, nil
}

// add appends the value v of a record of the given side to the list of
// (ts, side, key), writing the whole list (ListValueStore.put).
func (s *outerJoinStore) add(ts int64, left bool, key, v []byte) error {
	s.kbuf = AppendOuterJoinKey(s.kbuf[:0], ts, left, key)
	old, ok, err := s.kv.Get(s.kbuf)
	if err != nil {
		return err
	}
	var n uint32
	buf := append(s.vbuf[:0], listVariableSize, 0, 0, 0, 0)
	if ok {
		if len(old) < 5 || old[0] != listVariableSize {
			return fmt.Errorf("store %s: key %x: value %x is not a list", s.name, s.kbuf, old)
		}
		n = binary.BigEndian.Uint32(old[1:5])
		buf = append(buf, old[5:]...)
	}
	binary.BigEndian.PutUint32(buf[1:5], n+1)
	buf = binary.BigEndian.AppendUint32(buf, uint32(1+len(v)))
	side := byte(0)
	if left {
		side = 1
	}
	buf = append(append(buf, side), v...)
	s.vbuf = buf
	return s.kv.Put(s.kbuf, buf)
}

// deleteIfPresent deletes the list of (ts, side, key) if there is one
// (ListValueStore.putIfAbsent with a null value: no write, and nothing
// logged, when there is none).
func (s *outerJoinStore) deleteIfPresent(ts int64, left bool, key []byte) error {
	s.kbuf = AppendOuterJoinKey(s.kbuf[:0], ts, left, key)
	_, ok, err := s.kv.Get(s.kbuf)
	if err != nil || !ok {
		return err
	}
	return s.kv.Delete(s.kbuf)
}
