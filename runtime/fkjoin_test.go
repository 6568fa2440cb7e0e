package runtime_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// A foreign-key join of a 4-partition left table with a 2-partition right
// table (not co-partitioned) runs on two instances of one application:
// random updates of both tables, with foreign-key changes, foreign keys
// that become None and deletes on both sides, some written before the
// instances start and some while they run. Once the application has
// consumed every input and internal topic to its end, the last result of
// each key equals the join computed in Go from the tables' final rows (a
// tombstone, or nothing, where there is none), for the inner and the left
// join. The subscription topic gets the right table's partition count and
// the response topic the left's.
func TestFKJoinTwoInstances(t *testing.T) {
	for _, kind := range []string{"inner", "left"} {
		t.Run(kind, func(t *testing.T) { testFKJoinTwoInstances(t, kind == "left") })
	}
}

func testFKJoinTwoInstances(t *testing.T, leftJoin bool) {
	c := newCluster(t)
	leftTopic, rightTopic, out := topic(t, "orders"), topic(t, "customers"), topic(t, "enriched")
	c.create(t, 4, leftTopic, out)
	c.create(t, 2, rightTopic)

	fk := func(_, v string) dsl.Maybe[string] {
		_, c, _ := strings.Cut(v, "|")
		if c == "none" {
			return dsl.None[string]()
		}
		return dsl.Some(c)
	}
	joiner := func(_, v string, o dsl.Maybe[string]) string { return v + "+" + o.Or("null") }
	b := dsl.NewBuilder()
	orders := dsl.TableFromTopic(b, leftTopic, serde.String, serde.String)
	customers := dsl.TableFromTopic(b, rightTopic, serde.String, serde.String)
	var j dsl.Table[string, string]
	if leftJoin {
		j = dsl.TableLeftJoinForeignKey(orders, customers, fk, joiner, serde.String, dsl.Named("enrich"))
	} else {
		j = dsl.TableJoinForeignKey(orders, customers, fk, func(k, v, o string) string { return joiner(k, v, dsl.Some(o)) }, serde.String, dsl.Named("enrich"))
	}
	j.ToStream().To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	// Random updates: 60 orders referring to 12 customers, values unique
	// so that every update changes the hash; some orders have no customer
	// ("none"), some are deleted, and customers are updated and deleted.
	rng := rand.New(rand.NewPCG(11, uint64(len(leftTopic))))
	leftRows, rightRows := map[string]string{}, map[string]string{}
	var first, second []*kgo.Record
	for i := range 3000 {
		var r *kgo.Record
		if rng.IntN(3) == 0 {
			k := fmt.Sprintf("c%02d", rng.IntN(12))
			r = &kgo.Record{Topic: rightTopic, Key: []byte(k)}
			if rng.IntN(5) == 0 {
				delete(rightRows, k)
			} else {
				v := fmt.Sprintf("C%d", i)
				rightRows[k] = v
				r.Value = []byte(v)
			}
		} else {
			k := fmt.Sprintf("o%02d", rng.IntN(60))
			r = &kgo.Record{Topic: leftTopic, Key: []byte(k)}
			switch n := rng.IntN(10); {
			case n == 0:
				delete(leftRows, k)
			default:
				c := fmt.Sprintf("c%02d", rng.IntN(14)) // c12, c13: never a customer
				if n == 1 {
					c = "none"
				}
				v := fmt.Sprintf("O%d|%s", i, c)
				leftRows[k] = v
				r.Value = []byte(v)
			}
		}
		r.Timestamp = time.UnixMilli(int64(1000 + i))
		if i < 1500 {
			first = append(first, r)
		} else {
			second = append(second, r)
		}
	}
	want := map[string]string{}
	for k, v := range leftRows {
		key, ok := fk(k, v).Get()
		rv, found := rightRows[key]
		switch {
		case ok && found:
			want[k] = joiner(k, v, dsl.Some(rv))
		case leftJoin:
			want[k] = joiner(k, v, dsl.None[string]())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := c.client(t)
	if err := prod.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := topic(t, "app")
	opts := []runtime.Option{runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100 * time.Millisecond)}
	in1 := start(t, topo, opts...)
	in2 := start(t, topo, opts...)
	if err := prod.ProduceSync(ctx, second...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Wait until the group has committed every source topic, the internal
	// ones included, to its end, and the output shows the oracle's rows:
	// then nothing is in flight.
	var internal []string
	for _, it := range topo.InternalTopics() {
		if it.Kind == topology.Repartition {
			internal = append(internal, app+"-"+it.Name)
		}
	}
	if len(internal) != 2 {
		t.Fatalf("internal topics %v: want the subscription and the response topic", internal)
	}
	sources := append([]string{leftTopic, rightTopic}, internal...)
	adm := kadm.NewClient(c.client(t))
	caughtUp := func() bool {
		ends, err := adm.ListEndOffsets(ctx, sources...)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, app)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			if cm, found := committed.Lookup(o.Topic, o.Partition); !found || cm.At < o.Offset {
				ok = false
			}
		})
		return ok
	}
	got := map[string]*string{}
	matches := func(g map[string]*string) string {
		for k, w := range want {
			if v := g[k]; v == nil || *v != w {
				return fmt.Sprintf("key %s: got %v, want %q", k, show(v), w)
			}
		}
		for k, v := range g {
			if _, ok := want[k]; !ok && v != nil {
				return fmt.Sprintf("key %s: got %q, want no row", k, *v)
			}
		}
		return ""
	}
	record := func(m map[string]*string) func(*kgo.Record) {
		return func(r *kgo.Record) {
			if r.Value == nil {
				m[string(r.Key)] = nil
				return
			}
			v := string(r.Value)
			m[string(r.Key)] = &v
		}
	}
	cl := c.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	for matches(got) != "" || !caughtUp() {
		for _, in := range []*instance{in1, in2} {
			select {
			case <-in.finished:
				t.Fatalf("Run returned while the output was awaited: %v", <-in.done)
			default:
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the output did not reach the oracle's rows with every topic consumed: %s (caught up: %v)", matches(got), caughtUp())
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cl.PollFetches(pctx).EachRecord(record(got))
		pcancel()
	}
	in1.stop(t)
	in2.stop(t)

	// The whole output, read again to its end, ends in the oracle's rows.
	final := map[string]*string{}
	for _, r := range c.readToEnd(t, out) {
		record(final)(r)
	}
	if d := matches(final); d != "" {
		t.Errorf("final output differs from the oracle: %s", d)
	}
	if n := c.partitionCount(t, app+"-enrich-subscription-registration-topic"); n != 2 {
		t.Errorf("subscription topic has %d partitions, want the right table's 2", n)
	}
	if n := c.partitionCount(t, app+"-enrich-subscription-response-topic"); n != 4 {
		t.Errorf("response topic has %d partitions, want the left table's 4", n)
	}
}

func show(v *string) string {
	if v == nil {
		return "<none or tombstone>"
	}
	return fmt.Sprintf("%q", *v)
}
