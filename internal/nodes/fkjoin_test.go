package nodes

import (
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// fkContext is the part of a Context the foreign-key join's processors
// use without stores: the task ID and the drop counter.
type fkContext struct{ droppedCounter }

func (fkContext) TaskID() string { return "1_3" }

// fkValue is SubscriptionSendProcessorSupplierTest's LeftValue: a left
// value holding its foreign key ("" for null), serialized as the key or
// "null".
func fkOf(_ string, v string) operators.Maybe[string] {
	if v == "" {
		return operators.None[string]()
	}
	return operators.Some(v)
}

var fkLeftValues = serde.Func(func(dst []byte, v string) ([]byte, error) {
	if v == "" {
		return append(dst, "null"...), nil
	}
	return append(dst, v...), nil
}, func(b []byte) (string, error) { return string(b), nil })

func fkHash(v string) string {
	b, _ := fkLeftValues.Encode(nil, v)
	h := Hash128(b)
	return fmt.Sprintf("%x", uint64(h[0]))[:6]
}

// Ports SubscriptionSendProcessorSupplierTest, with the expectations of
// Kafka Streams 4.3.1's SubscriptionSendProcessorSupplier, which differ
// from the test class of October 2024 where a left join's foreign key
// goes from a value to null and where a left row is deleted: 4.3.1
// unsubscribes the old key with DELETE_KEY_NO_PROPAGATE and subscribes the
// null key with PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE (its
// leftJoinInstructions), where the older code sent
// DELETE_KEY_AND_PROPAGATE. Each subscription is printed as
// <key>:<instruction>:<hash prefix or null>:<pk>:<partition>; the
// partition is the task's (3). A null left value is a Change side without
// a value ("-").
func TestFKSubscriptionSend(t *testing.T) {
	const (
		fk1, fk2 = "fk1", "fk2"
		null     = "" // a left value whose foreign key is null
	)
	type change struct {
		newV, oldV string
		hasN, hasO bool
	}
	upd := func(n, o string) change { return change{n, o, true, true} }
	ins := func(n string) change { return change{newV: n, hasN: true} }
	del := func(o string) change { return change{oldV: o, hasO: true} }
	sub := func(key string, in FKInstruction, hashOf string) string {
		h := "null"
		if hashOf != "-" {
			h = fkHash(hashOf)
		}
		if key == "" {
			key = "<null>"
		}
		return fmt.Sprintf("%s:%v:%s:pk:3", key, in, h)
	}
	for _, tc := range []struct {
		name    string
		left    bool
		c       change
		want    []string
		dropped int
	}{
		{"leftJoinShouldPropagateNewPrimaryKeyWithNonNullFK", true, ins(fk1),
			[]string{sub(fk1, PropagateNullIfNoFKValAvailable, fk1)}, 0},
		{"leftJoinShouldPropagateNewPrimaryKeyWithNullFK", true, ins(null),
			[]string{sub("", PropagateNullIfNoFKValAvailable, null)}, 0},
		{"leftJoinShouldPropagateChangeOfFKFromNonNullToNonNullValue", true, upd(fk2, fk1),
			[]string{sub(fk1, DeleteKeyNoPropagate, fk2), sub(fk2, PropagateNullIfNoFKValAvailable, fk2)}, 0},
		{"leftJoinShouldPropagateNewRecordOfUnchangedFK", true, upd(fk1, fk1),
			[]string{sub(fk1, PropagateNullIfNoFKValAvailable, fk1)}, 0},
		{"leftJoinShouldPropagateChangeOfFKFromNonNullToNullValue", true, upd(null, fk1),
			[]string{sub(fk1, DeleteKeyNoPropagate, null), sub("", PropagateNullIfNoFKValAvailable, null)}, 0},
		{"leftJoinShouldPropagateChangeFromNullFKToNonNullFKValue", true, upd(fk1, null),
			[]string{sub(fk1, PropagateNullIfNoFKValAvailable, fk1)}, 0},
		{"leftJoinShouldPropagateChangeFromNullFKToNullFKValue", true, upd(null, null),
			[]string{sub("", PropagateNullIfNoFKValAvailable, null)}, 0},
		{"leftJoinShouldPropagateDeletionOfAPrimaryKey", true, del(fk1),
			[]string{sub(fk1, DeleteKeyNoPropagate, "-"), sub("", PropagateNullIfNoFKValAvailable, "-")}, 0},
		{"leftJoinShouldPropagateDeletionOfAPrimaryKeyThatHadNullFK", true, del(null),
			[]string{sub("", PropagateNullIfNoFKValAvailable, "-")}, 0},
		{"leftJoinShouldPropagateNothingWhenOldAndNewLeftValueIsNull", true, change{}, nil, 0},
		{"innerJoinShouldPropagateNewPrimaryKey", false, ins(fk1),
			[]string{sub(fk1, PropagateOnlyIfFKValAvailable, fk1)}, 0},
		{"innerJoinShouldNotPropagateNewPrimaryKeyWithNullFK", false, ins(null), nil, 1},
		{"innerJoinShouldDeleteOldAndPropagateNewFK", false, upd(fk2, fk1),
			[]string{sub(fk1, DeleteKeyNoPropagate, fk2), sub(fk2, PropagateNullIfNoFKValAvailable, fk2)}, 0},
		{"innerJoinShouldPropagateNothingWhenOldAndNewFKIsNull", false, upd(null, null), nil, 1},
		{"innerJoinShouldPropagateDeletionOfPrimaryKey", false, del(fk1),
			[]string{sub(fk1, DeleteKeyAndPropagate, "-")}, 0},
		{"innerJoinShouldPropagateNothingWhenOldAndNewLeftValueIsNull", false, change{}, nil, 0},
		// Not in the Java test: the inner join's other cases.
		{"innerJoinUnchangedFK", false, upd(fk1, fk1), []string{sub(fk1, PropagateOnlyIfFKValAvailable, fk1)}, 0},
		{"innerJoinFKBecomesNull", false, upd(null, fk1), []string{sub(fk1, DeleteKeyAndPropagate, null)}, 1},
		{"innerJoinFKWasNull", false, upd(fk1, null), []string{sub(fk1, PropagateOnlyIfFKValAvailable, fk1)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &fkContext{droppedCounter{dropped: map[string]int{}}}
			next := &collect[string, Subscription[string]]{}
			p, err := FKSubscriptionSend(ctx, "send", fkOf, serde.String, fkLeftValues, tc.left, next)
			if err != nil {
				t.Fatal(err)
			}
			c := tc.c
			if err := p.Process(operators.Record[string, operators.Change[string]]{Key: "pk", Timestamp: 7,
				Value: operators.Change[string]{New: c.newV, HasNew: c.hasN, Old: c.oldV, HasOld: c.hasO}}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range next.got {
				h := "null"
				if r.Value.Hash.Present {
					h = fmt.Sprintf("%x", uint64(r.Value.Hash.H[0]))[:6]
				}
				k := r.Key
				if r.NullKey {
					k = "<null>"
				}
				if r.Timestamp != 7 || r.Value.Version != 1 || !r.Value.HasPartition {
					t.Errorf("subscription %+v: want timestamp 7, version 1 and a partition", r)
				}
				got = append(got, fmt.Sprintf("%s:%v:%s:%s:%d", k, r.Value.Instruction, h, r.Value.PrimaryKey, r.Value.PrimaryPartition))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("forwarded\n %v\nwant\n %v", got, tc.want)
			}
			if ctx.dropped["send null-foreign-key"] != tc.dropped {
				t.Errorf("dropped %v, want %d null-foreign-key", ctx.dropped, tc.dropped)
			}
		})
	}
}

// Ports ResponseJoinProcessorSupplierTest: an answer is joined only if the
// left row's current value has the answer's hash; an answer without a
// right value gives a tombstone (inner join, or no left row) or the row
// joined with None (left join).
func TestFKResponseJoin(t *testing.T) {
	hashOf := func(v string) ValueHash { return ValueHash{H: Hash128([]byte(v)), Present: true} }
	for _, tc := range []struct {
		name    string
		left    bool
		row     string // "" for no left row
		hash    ValueHash
		value   operators.Maybe[string]
		want    string
		dropped int
	}{
		{"shouldNotForwardWhenHashDoesNotMatch", false, "lhsValue", hashOf("oldLhsValue"), operators.Some("rhsValue"), "", 1},
		{"shouldIgnoreUpdateWhenLeftHasBecomeNull", false, "", hashOf("lhsValue"), operators.Some("rhsValue"), "", 1},
		{"shouldForwardWhenHashMatches", false, "lhsValue", hashOf("lhsValue"), operators.Some("rhsValue"), "lhs1=(lhsValue,rhsValue)@5", 0},
		{"shouldEmitTombstoneForInnerJoinWhenRightIsNull", false, "lhsValue", hashOf("lhsValue"), operators.None[string](), "lhs1=<null>@5", 0},
		{"shouldEmitResultForLeftJoinWhenRightIsNull", true, "lhsValue", hashOf("lhsValue"), operators.None[string](), "lhs1=(lhsValue,null)@5", 0},
		{"shouldEmitTombstoneForLeftJoinWhenRightIsNullAndLeftIsNull", true, "", ValueHash{}, operators.None[string](), "lhs1=<null>@5", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &droppedCounter{dropped: map[string]int{}}
			next := &collect[string, string]{}
			left := rows{}
			if tc.row != "" {
				left["lhs1"] = struct {
					v  string
					ts int64
				}{tc.row, 1}
			}
			p, err := FKResponseJoin(ctx, "resolve", func(Context) (ValueGetter[string, string], error) { return left, nil }, serde.String, tc.left,
				func(_ string, v string, o operators.Maybe[string]) string { return "(" + v + "," + o.Or("null") + ")" }, next)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := tc.value.Get()
			if err := p.Process(operators.Record[string, Response[string]]{Key: "lhs1", Timestamp: 5,
				Value: Response[string]{Hash: tc.hash, Value: v, HasValue: ok, PrimaryPartition: 0}}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range next.got {
				v := r.Value
				if r.Tombstone {
					v = "<null>"
				}
				got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, v, r.Timestamp))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("forwarded %v, want %q", got, tc.want)
			}
			if ctx.dropped["resolve stale-response"] != tc.dropped {
				t.Errorf("dropped %v, want %d stale-response", ctx.dropped, tc.dropped)
			}
		})
	}
}

// Ports SubscriptionJoinProcessorSupplierTest (version 1 subscriptions; a
// version-0 one answers by its key's partition, -1): each instruction's
// answer, stamped with the later of the subscription's and the right row's
// timestamps.
func TestFKSubscriptionJoin(t *testing.T) {
	right := rows{"fk1": {"foo", 9}}
	for _, tc := range []struct {
		name string
		fk   string
		in   FKInstruction
		v0   bool
		want string
	}{
		{"shouldDeleteKeyAndPropagateFKV1", "fk1", DeleteKeyAndPropagate, false, "pk1=none@9 partition 12"},
		{"shouldDeleteKeyAndPropagateFKV0", "fk1", DeleteKeyAndPropagate, true, "pk1=none@9 partition -1"},
		{"shouldPropagateOnlyIfFKAvailableV1", "fk1", PropagateOnlyIfFKValAvailable, false, "pk1=foo@9 partition 12"},
		{"shouldPropagateOnlyIfFKAvailableV1 (no row)", "fk2", PropagateOnlyIfFKValAvailable, false, ""},
		{"shouldPropagateNullIfNoFKAvailableV1", "fk1", PropagateNullIfNoFKValAvailable, false, "pk1=foo@9 partition 12"},
		{"shouldPropagateNullIfNoFKAvailableV1 (no row)", "fk2", PropagateNullIfNoFKValAvailable, false, "pk1=none@3 partition 12"},
		{"shouldDeleteKeyNoPropagateV1", "fk1", DeleteKeyNoPropagate, false, ""},
		{"null foreign key", "", PropagateNullIfNoFKValAvailable, false, "pk1=none@3 partition 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &collect[string, Response[string]]{}
			p, err := FKSubscriptionJoin(nil, "join", func(Context) (ValueGetter[string, string], error) { return right, nil }, next)
			if err != nil {
				t.Fatal(err)
			}
			sub := Subscription[string]{Instruction: tc.in, PrimaryKey: "pk1", Version: 1, PrimaryPartition: 12, HasPartition: true,
				Hash: ValueHash{H: [2]int64{1, 2}, Present: true}}
			if tc.v0 {
				sub.Version, sub.PrimaryPartition, sub.HasPartition = 0, 0, false
			}
			if err := p.Process(operators.Record[CombinedKey[string, string], Subscription[string]]{
				Key: CombinedKey[string, string]{FK: tc.fk, HasFK: tc.fk != "", PK: "pk1"}, Value: sub, Timestamp: 3}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range next.got {
				if r.Value.Hash != sub.Hash {
					t.Errorf("answer hash %v, want the subscription's %v", r.Value.Hash, sub.Hash)
				}
				got = append(got, fmt.Sprintf("%s=%s@%d partition %d", r.Key, operators.MaybeOf(r.Value.Value, r.Value.HasValue).Or("none"), r.Timestamp, r.Value.PrimaryPartition))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("forwarded %v, want %q", got, tc.want)
			}
		})
	}
}

// brokenScan is a subscription store whose scans end early with an I/O
// error after the first entry (as a Pebble iterator's error ends one).
type brokenScan struct{ state.KeyValueStore }

func (s brokenScan) Prefix(prefix []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for k, v := range s.KeyValueStore.Prefix(prefix) {
			yield(k, v)
			return
		}
	}
}

func (brokenScan) IterErr() error { return errors.New("disk on fire") }

type storeContext struct {
	fkContext
	store state.Store
}

func (c *storeContext) Store(string) (state.Store, error) { return c.store, nil }

// A right update whose scan of the subscription store ends with an error
// fails the task, naming the store, and answers none of the subscribers:
// not only those read before the error (Kafka Streams: the iterator's
// exception leaves ForeignTableJoinProcessorSupplier.process).
func TestFKForeignTableJoinScanError(t *testing.T) {
	mem := state.NewInMemoryKeyValueStore("subs")
	subs := SubscriptionSerde(serde.String)
	for _, pk := range []string{"a", "b"} {
		v, err := subs.Encode(make([]byte, 8), Subscription[string]{Instruction: PropagateOnlyIfFKValAvailable, Version: 1, PrimaryKey: pk, HasPartition: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := mem.Put(AppendCombinedKey(nil, []byte("fk"), []byte(pk)), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, broken := range []bool{false, true} {
		var store state.Store = mem
		if broken {
			store = brokenScan{mem}
		}
		ctx := &storeContext{fkContext: fkContext{droppedCounter{dropped: map[string]int{}}}, store: store}
		next := &collect[string, Response[string]]{}
		p, err := FKForeignTableJoin[string](ctx, "foreign", "subs", serde.String, serde.String, next)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Process(operators.Record[string, operators.Change[string]]{Key: "fk", Value: operators.Change[string]{New: "x", HasNew: true}, Timestamp: 1})
		switch {
		case !broken && (err != nil || len(next.got) != 2):
			t.Errorf("intact store: %v, %d answers; want 2", err, len(next.got))
		case broken && (err == nil || !strings.Contains(err.Error(), "store subs") || len(next.got) != 0):
			t.Errorf("broken scan: error %v, %d answers; want an error naming store subs and no answer", err, len(next.got))
		}
	}
}
