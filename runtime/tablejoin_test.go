package runtime_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// An outer table-table join runs on the broker over 2-partition topics:
// the last result of each key equals the join of both tables' final rows
// (a tombstone where neither has one), and the result store is logged to
// its changelog. Where both final rows exist, the last result is stamped
// with the later of their timestamps whatever order the task read the two
// topics in (the last update of the key read is a final row, and the
// other side's final row is in its store then); where one is missing the
// timestamp depends on that order (a delete's own timestamp counts), so it
// is not checked.
func TestTableJoinOuterOnBroker(t *testing.T) {
	c := newCluster(t)
	leftTopic, rightTopic, out := topic(t, "left"), topic(t, "right"), topic(t, "joined")
	c.create(t, 2, leftTopic, rightTopic, out)

	b := dsl.NewBuilder()
	left := dsl.TableFromTopic(b, leftTopic, serde.String, serde.String)
	right := dsl.TableFromTopic(b, rightTopic, serde.String, serde.String).
		Filter(func(_, v string) bool { return v != "hidden" }) // read through a getter by the left side
	joiner := func(_ string, l, r dsl.Maybe[string]) string { return l.Or("-") + "+" + r.Or("-") }
	dsl.TableOuterJoin(left, right, joiner, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "joined"})).
		ToStream().To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	// Updates of 40 keys on both sides, in time order: rows set, replaced,
	// hidden by the filter and deleted, so that every rule of the outer
	// join is met on both partitions.
	type row struct {
		v  string
		ok bool
		ts int64
	}
	final := map[string][2]row{}
	var rs []*kgo.Record
	ts := int64(1)
	put := func(side int, key, v string, ok bool) {
		tp := leftTopic
		if side == 1 {
			tp = rightTopic
		}
		r := &kgo.Record{Topic: tp, Key: []byte(key), Timestamp: time.UnixMilli(ts)}
		if ok {
			r.Value = []byte(v)
		}
		rs = append(rs, r)
		f := final[key]
		f[side] = row{v, ok, ts}
		final[key] = f
		ts++
	}
	for round := range 3 {
		for i := range 40 {
			k := fmt.Sprintf("k%02d", i)
			switch (i + round) % 5 {
			case 0:
				put(0, k, fmt.Sprintf("L%d.%d", i, round), true)
			case 1:
				put(1, k, fmt.Sprintf("R%d.%d", i, round), true)
			case 2:
				put(0, k, fmt.Sprintf("L%d.%d", i, round), true)
				put(1, k, fmt.Sprintf("R%d.%d", i, round), true)
			case 3:
				put(0, k, "", false)
				put(1, k, "hidden", true)
			case 4:
				put(1, k, "", false)
			}
		}
	}
	// result is a key's last result; ts is -1 where it is not checked.
	type result struct {
		v  string
		ok bool
		ts int64
	}
	want := map[string]result{}
	for k, f := range final {
		l, r := f[0], f[1]
		if r.v == "hidden" {
			r.ok = false
		}
		if !l.ok && !r.ok {
			want[k] = result{ts: -1}
			continue
		}
		lm, rm := dsl.None[string](), dsl.None[string]()
		if l.ok {
			lm = dsl.Some(l.v)
		}
		if r.ok {
			rm = dsl.Some(r.v)
		}
		w := result{v: joiner(k, lm, rm), ok: true, ts: -1}
		if l.ok && r.ok {
			w.ts = max(l.ts, r.ts)
		}
		want[k] = w
	}
	prod := c.client(t)
	// Two minutes: on a fresh real broker of a loaded machine the first
	// group join alone has taken more than one.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	app := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	// The keys whose last result is a tombstone may never have had a
	// result: wait for the last result of every other key, then check all.
	cl := c.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got := map[string]result{}
	same := func(g, w result) bool { return g.v == w.v && g.ok == w.ok && (w.ts < 0 || g.ts == w.ts) }
	done := func() bool {
		for k, w := range want {
			if g, seen := got[k]; w.ok && (!seen || !same(g, w)) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		select {
		case err := <-in.done:
			t.Fatalf("Run returned before the results were out: %v", err)
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("after two minutes the results still differ from the oracle:\n got  %v\n want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = result{v: string(r.Value), ok: r.Value != nil, ts: r.Timestamp.UnixMilli()}
		})
	}
	// Everything is out once the output has caught up: stop, then read to
	// the end to see the tombstones too.
	in.stop(t)
	end := c.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	all := map[string]result{}
	for {
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := end.PollFetches(fctx)
		fcancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			all[string(r.Key)] = result{v: string(r.Value), ok: r.Value != nil, ts: r.Timestamp.UnixMilli()}
		})
		if n == 0 {
			break
		}
	}
	for k, w := range want {
		g, seen := all[k]
		if !w.ok && !seen {
			continue // never joined
		}
		if !same(g, w) {
			t.Errorf("key %s: last result %+v, want %+v", k, g, w)
		}
	}

	// The result store was logged.
	changelog := app + "-joined-changelog"
	logged := c.client(t, kgo.ConsumeTopics(changelog), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
	defer lcancel()
	if fs := logged.PollFetches(lctx); fs.NumRecords() == 0 {
		t.Errorf("changelog %s of the join's store is empty: %v", changelog, fs.Err0())
	}
}

// The inputs of a table-table join must be co-partitioned: tables of 2 and
// 3 partitions fail at start-up naming both.
func TestTableJoinCoPartitioningValidated(t *testing.T) {
	c := newCluster(t)
	leftTopic, rightTopic, out := topic(t, "left"), topic(t, "right"), topic(t, "joined")
	c.create(t, 2, leftTopic)
	c.create(t, 3, rightTopic, out)
	b := dsl.NewBuilder()
	dsl.TableJoin(dsl.TableFromTopic(b, leftTopic, serde.String, serde.String), dsl.TableFromTopic(b, rightTopic, serde.String, serde.String),
		func(_, l, r string) string { return l + r }, serde.String).ToStream().To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.wantCoPartitionError(t, topo, leftTopic+" (2 partitions)", rightTopic+" (3 partitions)")
}

// A materialized table join's store is restored from its changelog: a new
// instance with empty local state takes over, and the updates it then
// joins retract the right old results from a count downstream. (The join's
// store is behind the record cache, whose flushes carry the old value the
// store held: a store restored short would leave the counts too high.)
func TestTableJoinStoreRestored(t *testing.T) {
	c := newCluster(t)
	usersTopic, okTopic, out := topic(t, "users"), topic(t, "active"), topic(t, "per-region")
	c.create(t, 2, usersTopic, okTopic, out)

	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, usersTopic, serde.String, serde.String)
	active := dsl.TableFromTopic(b, okTopic, serde.String, serde.String)
	regions := dsl.TableJoin(users, active, func(_, region, _ string) string { return region }, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "active-users"}))
	dsl.TableGroupBy(regions, func(user, region string) (dsl.Maybe[string], string) { return dsl.Some(region), user },
		serde.String, serde.String).Count(dsl.Named("regions")).
		ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	const n = 20
	region := map[string]string{}
	isActive := map[string]bool{}
	produce := func(rs ...*kgo.Record) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.client(t).ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	want := func() map[string]int64 {
		w := map[string]int64{"r0": 0, "r1": 0, "r2": 0, "r3": 0}
		for u, r := range region {
			if isActive[u] {
				w[r]++
			}
		}
		return w
	}
	ts := int64(1)
	var rs []*kgo.Record
	for i := range n {
		u := fmt.Sprintf("u%02d", i)
		region[u], isActive[u] = fmt.Sprintf("r%d", i%4), true
		rs = append(rs, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(region[u]), Timestamp: time.UnixMilli(ts)},
			&kgo.Record{Topic: okTopic, Key: []byte(u), Value: []byte("yes"), Timestamp: time.UnixMilli(ts + 1)})
		ts += 2
	}
	produce(rs...)
	app := topic(t, "app")
	first := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	if got, _ := c.counts(t, out, 2*time.Minute, equalCounts(want())); !equalCounts(want())(got) {
		t.Fatalf("before the restart:\n%s", diffCounts(got, want()))
	}
	first.stop(t)

	// A new instance, its state directory empty: every store restores.
	second := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond),
		runtime.StateDir(t.TempDir()))
	rs = nil
	for i := range n {
		u := fmt.Sprintf("u%02d", i)
		if i%2 == 0 {
			region[u] = fmt.Sprintf("r%d", (i+1)%4)
			rs = append(rs, &kgo.Record{Topic: usersTopic, Key: []byte(u), Value: []byte(region[u]), Timestamp: time.UnixMilli(ts)})
		}
		if i%5 == 0 {
			isActive[u] = false
			rs = append(rs, &kgo.Record{Topic: okTopic, Key: []byte(u), Timestamp: time.UnixMilli(ts + 1)})
		}
		ts += 2
	}
	produce(rs...)
	if got, _ := c.counts(t, out, 2*time.Minute, equalCounts(want())); !equalCounts(want())(got) {
		t.Fatalf("after the restart:\n%s", diffCounts(got, want()))
	}
	second.stop(t)
}
