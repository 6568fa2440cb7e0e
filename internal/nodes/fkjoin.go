package nodes

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// A foreign-key table-table join runs in two sub-topologies, as Kafka
// Streams 4.3.1's (KTableImpl.doJoinOnForeignKey):
//
//   - below the left table, FKSubscriptionSend turns each left update into
//     subscriptions keyed by the foreign key, written to the
//     subscription-registration topic, which is co-partitioned with the
//     right table;
//   - in the right table's sub-topology, FKSubscriptionReceive keeps them in
//     the subscription store under CombinedKey(foreign key, primary key) and
//     FKSubscriptionJoin answers each with the right row; FKForeignTableJoin
//     answers every subscriber of a right key when its row changes. The
//     answers (FKResponseSink) go to the subscription-response topic, keyed
//     by the primary key and written to the left row's partition;
//   - back in the left table's sub-topology, FKResponseJoin drops an answer
//     given for a left value that has changed since (the hash of its
//     serialization differs) and joins the others with the left row;
//     FKResult is the result table.

// CombinedKey is the key of a subscription inside the right side: the
// foreign key (absent for a left join's subscription of a row without one)
// and the left row's primary key (Kafka Streams' CombinedKey).
type CombinedKey[KO, K any] struct {
	FK    KO
	HasFK bool
	PK    K
}

// taskPartition is the partition of the task ctx belongs to, from its ID
// "<sub-topology>_<partition>": the partition of a left row, which its
// response must come back to.
func taskPartition(ctx Context) (int32, error) {
	id := ctx.TaskID()
	i := strings.LastIndexByte(id, '_')
	p, err := strconv.ParseInt(id[i+1:], 10, 32)
	if i < 0 || err != nil {
		return 0, fmt.Errorf("sluice: task ID %q has no partition", id)
	}
	return int32(p), nil
}

// FKSubscriptionSend returns the processor below the left table of a
// foreign-key join (Kafka Streams' SubscriptionSendProcessorSupplier): for
// each update it forwards the subscriptions, keyed by foreign key (a null
// key for a left join's row without one), that keep the right side's
// subscription store right and ask for the responses the result needs:
//
//   - inner join: a new row subscribes (PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE);
//     a row whose foreign key changed unsubscribes the old one
//     (DELETE_KEY_NO_PROPAGATE) and subscribes the new one
//     (PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE, so the old result is deleted
//     when the new key has no row); an update that keeps the foreign key
//     subscribes again (PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE); a delete, or a
//     foreign key that became None, unsubscribes with a response
//     (DELETE_KEY_AND_PROPAGATE); a row whose foreign key is None is
//     dropped ("null-foreign-key");
//   - left join: a changed foreign key unsubscribes the old one
//     (DELETE_KEY_NO_PROPAGATE), and every update, deletes included,
//     subscribes with PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE (with a null key
//     when the new value has no foreign key); a delete of an absent row
//     sends nothing.
//
// Foreign keys are compared by their serialization. Each subscription
// carries the hash of the new value's serialization (none for a delete)
// and the task's partition. An out-of-order update of a versioned table
// (Change.NotLatest) is dropped ("out-of-order"), as Kafka Streams does.
func FKSubscriptionSend[K, V, KO any](ctx Context, node string, fk func(K, V) operators.Maybe[KO], fkeys serde.Serde[KO], values serde.Serde[V],
	leftJoin bool, next Node[KO, Subscription[K]]) (Node[K, operators.Change[V]], error) {
	part, err := taskPartition(ctx)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &fkSend[K, V, KO]{ctx: ctx, node: node, fk: fk, fkeys: fkeys, values: values, left: leftJoin, part: part, next: next}, nil
}

type fkSend[K, V, KO any] struct {
	ctx    Context
	node   string
	fk     func(K, V) operators.Maybe[KO]
	fkeys  serde.Serde[KO]
	values serde.Serde[V]
	left   bool
	part   int32
	next   Node[KO, Subscription[K]]
	buf    []byte
	obuf   []byte
}

func (p *fkSend[K, V, KO]) Process(r operators.Record[K, operators.Change[V]]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	if r.Value.NotLatest {
		// An out-of-order update of a versioned table: the row's latest
		// value, which the response resolver reads, is another (Kafka
		// Streams 4.3.1, KIP-914: dropped when the table is versioned).
		p.ctx.RecordDropped(p.node, "out-of-order")
		return nil
	}
	c := r.Value
	var hash ValueHash
	if c.HasNew {
		b, err := p.values.Encode(p.buf[:0], c.New)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("cannot serialize the left value to hash it: %w", err)}
		}
		p.buf = b
		hash = ValueHash{H: Hash128(b), Present: true}
	}
	var oldFK, newFK operators.Maybe[KO]
	if c.HasOld {
		oldFK = p.fk(r.Key, c.Old)
	}
	if c.HasNew {
		newFK = p.fk(r.Key, c.New)
	}
	send := func(fk operators.Maybe[KO], in FKInstruction) error {
		v, ok := fk.Get()
		out := operators.Record[KO, Subscription[K]]{Key: v, NullKey: !ok, Timestamp: r.Timestamp, Headers: r.Headers,
			Value: Subscription[K]{Hash: hash, Instruction: in, Version: SubscriptionVersion, PrimaryKey: r.Key, PrimaryPartition: p.part, HasPartition: true}}
		return p.next.Process(out)
	}
	if p.left {
		if !c.HasNew && !c.HasOld {
			return nil
		}
		if oldFK.Present() {
			changed, err := p.changed(newFK, oldFK)
			if err != nil {
				return err
			}
			if changed {
				if err := send(oldFK, DeleteKeyNoPropagate); err != nil {
					return err
				}
			}
		}
		return send(newFK, PropagateNullIfNoFKValAvailable)
	}
	if !c.HasNew {
		if oldFK.Present() {
			return send(oldFK, DeleteKeyAndPropagate)
		}
		return nil
	}
	if !newFK.Present() {
		p.ctx.RecordDropped(p.node, "null-foreign-key")
		if oldFK.Present() {
			return send(oldFK, DeleteKeyAndPropagate)
		}
		return nil
	}
	if !oldFK.Present() {
		return send(newFK, PropagateOnlyIfFKValAvailable)
	}
	changed, err := p.changed(newFK, oldFK)
	if err != nil {
		return err
	}
	if !changed {
		return send(newFK, PropagateOnlyIfFKValAvailable)
	}
	if err := send(oldFK, DeleteKeyNoPropagate); err != nil {
		return err
	}
	return send(newFK, PropagateNullIfNoFKValAvailable)
}

// changed compares two foreign keys by their serialization, an absent one
// differing from any present one. old is present.
func (p *fkSend[K, V, KO]) changed(newFK, oldFK operators.Maybe[KO]) (bool, error) {
	n, ok := newFK.Get()
	if !ok {
		return true, nil
	}
	o, _ := oldFK.Get()
	nb, err := p.fkeys.Encode(p.buf[:0], n)
	if err != nil {
		return false, &operators.NodeError{Node: p.node, Err: fmt.Errorf("cannot serialize foreign key: %w", err)}
	}
	p.buf = nb
	ob, err := p.fkeys.Encode(p.obuf[:0], o)
	if err != nil {
		return false, &operators.NodeError{Node: p.node, Err: fmt.Errorf("cannot serialize foreign key: %w", err)}
	}
	p.obuf = ob
	return !bytes.Equal(nb, ob), nil
}

// FKSubscriptionReceive returns the processor below the source of the
// subscription-registration topic (Kafka Streams'
// SubscriptionReceiveProcessorSupplier): it keeps each subscription in the
// timestamped key-value store named store under the CombinedKey of its
// foreign and primary key (a delete instruction removes it) and forwards
// it. A subscription with a null foreign key is forwarded without touching
// the store if it asks for PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE (a left
// join's row without a foreign key), else dropped ("null-foreign-key").
func FKSubscriptionReceive[K, KO any](ctx Context, node, store string, fkeys serde.Serde[KO], keys serde.Serde[K],
	next Node[CombinedKey[KO, K], Subscription[K]]) (Node[KO, Subscription[K]], error) {
	s, err := openTimestamped(ctx, store, serde.Bytes, SubscriptionSerde(keys))
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &fkReceive[K, KO]{ctx: ctx, node: node, store: s, fkeys: fkeys, keys: keys, next: next}, nil
}

type fkReceive[K, KO any] struct {
	ctx   Context
	node  string
	store *timestamped[[]byte, Subscription[K]]
	fkeys serde.Serde[KO]
	keys  serde.Serde[K]
	next  Node[CombinedKey[KO, K], Subscription[K]]
	fbuf  []byte
	pbuf  []byte
	kbuf  []byte
}

func (p *fkReceive[K, KO]) Process(r operators.Record[KO, Subscription[K]]) error {
	if r.Tombstone {
		p.ctx.RecordDropped(p.node, "null-value")
		return nil
	}
	sub := r.Value
	if r.NullKey {
		if sub.Instruction != PropagateNullIfNoFKValAvailable {
			p.ctx.RecordDropped(p.node, "null-foreign-key")
			return nil
		}
		return p.next.Process(operators.Record[CombinedKey[KO, K], Subscription[K]]{Key: CombinedKey[KO, K]{PK: sub.PrimaryKey},
			Value: sub, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	kb, err := p.combined(r.Key, sub.PrimaryKey)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	if sub.Instruction == DeleteKeyAndPropagate || sub.Instruction == DeleteKeyNoPropagate {
		err = p.store.delete(kb)
	} else {
		err = p.store.put(kb, sub, r.Timestamp)
	}
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return p.next.Process(operators.Record[CombinedKey[KO, K], Subscription[K]]{Key: CombinedKey[KO, K]{FK: r.Key, HasFK: true, PK: sub.PrimaryKey},
		Value: sub, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *fkReceive[K, KO]) combined(fk KO, pk K) ([]byte, error) {
	var err error
	if p.fbuf, err = p.fkeys.Encode(p.fbuf[:0], fk); err != nil {
		return nil, fmt.Errorf("store %s: cannot serialize foreign key: %w", p.store.name, err)
	}
	if p.pbuf, err = p.keys.Encode(p.pbuf[:0], pk); err != nil {
		return nil, fmt.Errorf("store %s: cannot serialize primary key: %w", p.store.name, err)
	}
	p.kbuf = AppendCombinedKey(p.kbuf[:0], p.fbuf, p.pbuf)
	return p.kbuf, nil
}

// FKSubscriptionJoin returns the processor that answers each subscription
// with the right table's row of its foreign key, read through right (Kafka
// Streams' SubscriptionJoinProcessorSupplier), as its instruction says:
// DELETE_KEY_AND_PROPAGATE answers without a value,
// PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE with the row or without a value,
// PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE only when there is a row, and
// DELETE_KEY_NO_PROPAGATE not at all. The answer, keyed by the primary key,
// carries the subscription's hash and partition; its timestamp is the
// largest of the subscription's and the right row's (the subscription's
// when there is no row).
func FKSubscriptionJoin[K, KO, VO any](ctx Context, node string, right func(Context) (ValueGetter[KO, VO], error),
	next Node[K, Response[VO]]) (Node[CombinedKey[KO, K], Subscription[K]], error) {
	g, err := right(ctx)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &fkSubscriptionJoin[K, KO, VO]{node: node, right: g, next: next}, nil
}

type fkSubscriptionJoin[K, KO, VO any] struct {
	node  string
	right ValueGetter[KO, VO]
	next  Node[K, Response[VO]]
}

func (p *fkSubscriptionJoin[K, KO, VO]) Process(r operators.Record[CombinedKey[KO, K], Subscription[K]]) error {
	sub := r.Value
	var (
		fv  VO
		fts int64
		ok  bool
		err error
	)
	if r.Key.HasFK {
		if fv, fts, ok, err = p.right.Get(r.Key.FK); err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
	}
	ts := r.Timestamp
	if ok {
		ts = max(ts, fts)
	}
	resp := Response[VO]{Hash: sub.Hash, PrimaryPartition: -1}
	if sub.HasPartition {
		resp.PrimaryPartition = sub.PrimaryPartition
	}
	switch sub.Instruction {
	case DeleteKeyAndPropagate:
	case PropagateNullIfNoFKValAvailable:
		resp.Value, resp.HasValue = fv, ok
	case PropagateOnlyIfFKValAvailable:
		if !ok {
			return nil
		}
		resp.Value, resp.HasValue = fv, true
	case DeleteKeyNoPropagate:
		return nil
	default:
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("unknown subscription instruction %v", sub.Instruction)}
	}
	return p.next.Process(operators.Record[K, Response[VO]]{Key: r.Key.PK, Value: resp, Timestamp: ts, Headers: r.Headers})
}

// FKForeignTableJoin returns the processor below the right table (Kafka
// Streams' ForeignTableJoinProcessorSupplier): on each update of a right
// row it answers every subscription to its key in the subscription store
// (a prefix scan of the CombinedKeys) with the row's new value, absent for
// a delete, at the update's timestamp. A null key is dropped ("null-key"),
// and so is an out-of-order update of a versioned table ("out-of-order").
func FKForeignTableJoin[K, KO, VO any](ctx Context, node, store string, fkeys serde.Serde[KO], keys serde.Serde[K],
	next Node[K, Response[VO]]) (Node[KO, operators.Change[VO]], error) {
	s, err := openTimestamped(ctx, store, serde.Bytes, SubscriptionSerde(keys))
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &fkForeignJoin[K, KO, VO]{ctx: ctx, node: node, store: s, fkeys: fkeys, keys: keys, next: next}, nil
}

type fkForeignJoin[K, KO, VO any] struct {
	ctx   Context
	node  string
	store *timestamped[[]byte, Subscription[K]]
	fkeys serde.Serde[KO]
	keys  serde.Serde[K]
	next  Node[K, Response[VO]]
	fbuf  []byte
	pbuf  []byte
}

type fkSubscriber[K any] struct {
	pk  K
	sub Subscription[K]
}

func (p *fkForeignJoin[K, KO, VO]) Process(r operators.Record[KO, operators.Change[VO]]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	if r.Value.NotLatest {
		// An out-of-order update of a versioned right table: its row's
		// latest value is another (as Kafka Streams 4.3.1).
		p.ctx.RecordDropped(p.node, "out-of-order")
		return nil
	}
	fb, err := p.fkeys.Encode(p.fbuf[:0], r.Key)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot serialize foreign key: %w", p.store.name, err)}
	}
	p.fbuf = fb
	p.pbuf = AppendCombinedKey(p.pbuf[:0], fb, nil)
	// Read the subscribers first, then forward: the store is not read
	// while the records go downstream.
	var subs []fkSubscriber[K]
	for k, v := range p.store.store.Prefix(p.pbuf) {
		_, pkb, err := SplitCombinedKey(k)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: %w", p.store.name, err)}
		}
		pk, err := p.keys.Decode(pkb)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: cannot deserialize primary key: %w", p.store.name, err)}
		}
		sub, err := p.store.decodeValue(v)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		subs = append(subs, fkSubscriber[K]{pk: pk, sub: sub})
	}
	if r, ok := p.store.store.(state.IterErrReporter); ok {
		if err := r.IterErr(); err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("store %s: scan of the subscriptions to a foreign key: %w", p.store.name, err)}
		}
	}
	for _, s := range subs {
		resp := Response[VO]{Hash: s.sub.Hash, Value: r.Value.New, HasValue: r.Value.HasNew, PrimaryPartition: -1}
		if s.sub.HasPartition {
			resp.PrimaryPartition = s.sub.PrimaryPartition
		}
		if err := p.next.Process(operators.Record[K, Response[VO]]{Key: s.pk, Value: resp, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
			return err
		}
	}
	return nil
}

// FKResponseSink returns the sink of the subscription-response topic: each
// response, keyed by its primary key, goes to the partition of the left row
// that subscribed (Kafka Streams' default partitioner of that sink), or by
// its key when the subscription carried no partition (version 0).
func FKResponseSink[K, VO any](ctx Context, node, topic string, keys serde.Serde[K], values serde.Serde[Response[VO]]) Node[K, Response[VO]] {
	return &fkResponseSink[K, VO]{node: node, topic: topic, keys: keys, values: values, out: ctx.Collector()}
}

type fkResponseSink[K, VO any] struct {
	node   string
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[Response[VO]]
	out    operators.Collector
	kbuf   []byte
	vbuf   []byte
}

func (p *fkResponseSink[K, VO]) Process(r operators.Record[K, Response[VO]]) error {
	var err error
	if p.kbuf, err = encode(p.node, p.keys, p.kbuf[:0], r.Key); err != nil {
		return &operators.SerializationError{Node: p.node, Topic: p.topic, Part: "key", Err: err}
	}
	if p.vbuf, err = encode(p.node, p.values, p.vbuf[:0], r.Value); err != nil {
		return &operators.SerializationError{Node: p.node, Topic: p.topic, Part: "value", Err: err}
	}
	k, v := p.kbuf, p.vbuf
	if k == nil {
		k = []byte{}
	}
	if err := p.out.Send(p.topic, r.Value.PrimaryPartition, k, v, r.Headers, r.Timestamp); err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	return nil
}

// FKResponseJoin returns the processor below the source of the
// subscription-response topic (Kafka Streams'
// ResponseJoinProcessorSupplier): it reads the left row of the response's
// key through left and drops the response ("stale-response") unless the
// hash of the row's serialization (values) equals the response's, both
// absent included: the row changed since it subscribed, and a newer
// response is on its way. Otherwise it forwards joiner's result, or a
// tombstone when the response has no right value and the join is inner or
// the left row is gone, at the response's timestamp.
func FKResponseJoin[K, V, VO, VR any](ctx Context, node string, left func(Context) (ValueGetter[K, V], error), values serde.Serde[V],
	leftJoin bool, joiner func(K, V, operators.Maybe[VO]) VR, next Node[K, VR]) (Node[K, Response[VO]], error) {
	g, err := left(ctx)
	if err != nil {
		return nil, &operators.NodeError{Node: node, Err: err}
	}
	return &fkResponseJoin[K, V, VO, VR]{ctx: ctx, node: node, left: g, values: values, leftJoin: leftJoin, joiner: joiner, next: next}, nil
}

type fkResponseJoin[K, V, VO, VR any] struct {
	ctx      Context
	node     string
	left     ValueGetter[K, V]
	values   serde.Serde[V]
	leftJoin bool
	joiner   func(K, V, operators.Maybe[VO]) VR
	next     Node[K, VR]
	buf      []byte
}

func (p *fkResponseJoin[K, V, VO, VR]) Process(r operators.Record[K, Response[VO]]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	if r.Tombstone {
		p.ctx.RecordDropped(p.node, "null-value")
		return nil
	}
	resp := r.Value
	if resp.Version != ResponseVersion {
		return &operators.NodeError{Node: p.node, Err: fmt.Errorf("subscription response version %d is not supported", resp.Version)}
	}
	cur, _, ok, err := p.left.Get(r.Key)
	if err != nil {
		return &operators.NodeError{Node: p.node, Err: err}
	}
	var hash ValueHash
	if ok {
		if p.buf, err = p.values.Encode(p.buf[:0], cur); err != nil {
			return &operators.NodeError{Node: p.node, Err: fmt.Errorf("cannot serialize the left value to hash it: %w", err)}
		}
		hash = ValueHash{H: Hash128(p.buf), Present: true}
	}
	if hash != resp.Hash {
		p.ctx.RecordDropped(p.node, "stale-response")
		return nil
	}
	out := operators.Record[K, VR]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
	if !ok || (!resp.HasValue && !p.leftJoin) {
		// Kafka Streams calls the joiner with a null left value when a
		// right value answers a deleted row, which cannot happen: a
		// delete's subscription has no hash, and is answered without a
		// value. Sluice forwards the tombstone either way.
		out.Tombstone = true
		return p.next.Process(out)
	}
	out.Value = p.joiner(r.Key, cur, operators.MaybeOf(resp.Value, resp.HasValue))
	return p.next.Process(out)
}

// FKResult returns the node that makes the result of a foreign-key join a
// table (Kafka Streams' KTableSource of the join's output): with a store it
// keeps each result there (a tombstone deletes it) and forwards it with the
// value it replaced, through the store's record cache if it has one;
// without one it forwards each result with no old value. Unlike a table
// source it forwards a tombstone for a key it has no row of (a change with
// neither a new nor an old value): the join's unnecessary tombstones reach
// ToStream and the table-table joins below, as in Kafka Streams.
func FKResult[K, VR any](ctx Context, node, store string, keys serde.Serde[K], values serde.Serde[VR], next Node[K, operators.Change[VR]]) (Node[K, VR], error) {
	p := &fkResult[K, VR]{ctx: ctx, node: node, next: next}
	if store != "" {
		s, err := openTimestamped(ctx, store, keys, values)
		if err != nil {
			return nil, &operators.NodeError{Node: node, Err: err}
		}
		p.store = s
		p.cached = s.forwardOnFlush(node, next)
	}
	return p, nil
}

type fkResult[K, VR any] struct {
	ctx    Context
	node   string
	store  *timestamped[K, VR]
	cached bool
	next   Node[K, operators.Change[VR]]
}

func (p *fkResult[K, VR]) Process(r operators.Record[K, VR]) error {
	if r.NullKey {
		p.ctx.RecordDropped(p.node, "null-key")
		return nil
	}
	ch := operators.Change[VR]{New: r.Value, HasNew: !r.Tombstone}
	if p.store != nil {
		kb, err := p.store.key(r.Key)
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if ch.Old, _, ch.HasOld, err = p.store.get(kb); err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		p.store.setContext(r.Timestamp, r.Headers)
		if r.Tombstone {
			err = p.store.delete(kb)
		} else {
			err = p.store.put(kb, r.Value, r.Timestamp)
		}
		if err != nil {
			return &operators.NodeError{Node: p.node, Err: err}
		}
		if p.cached {
			return nil
		}
	}
	return p.next.Process(operators.Record[K, operators.Change[VR]]{Key: r.Key, Value: ch, Timestamp: r.Timestamp, Headers: r.Headers})
}
