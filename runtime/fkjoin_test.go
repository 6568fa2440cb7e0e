package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
// first instance starts and some while it runs, before the second joins. Once the application has
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
	topo, err := fkJoinTopology(leftTopic, rightTopic, out, leftJoin)
	if err != nil {
		t.Fatal(err)
	}
	first, second, want := fkJoinInput(leftTopic, rightTopic, leftJoin)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := c.client(t)
	if err := prod.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := topic(t, "app")
	opts := []runtime.Option{runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100 * time.Millisecond)}
	// The second instance joins while the first is processing: the tasks
	// of both sub-topologies are spread over the two by a rebalance, with
	// subscriptions and responses in flight.
	in1 := start(t, topo, opts...)
	if err := prod.ProduceSync(ctx, second...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	in2 := start(t, topo, opts...)
	// The tasks spread over both instances at some point (possibly once
	// the first has done all the work, on a fast run).
	awaitTasksOnEach(ctx, t, in1, in2)
	c.awaitFKJoin(ctx, t, topo, app, []string{leftTopic, rightTopic}, out, want, in1, in2)
	in1.stop(t)
	in2.stop(t)
	c.checkFKJoinOutput(t, out, want)
	if n := c.partitionCount(t, app+"-enrich-subscription-registration-topic"); n != 2 {
		t.Errorf("subscription topic has %d partitions, want the right table's 2", n)
	}
	if n := c.partitionCount(t, app+"-enrich-subscription-response-topic"); n != 4 {
		t.Errorf("response topic has %d partitions, want the left table's 4", n)
	}
}

// fkJoinTopology joins the orders of leftTopic with the customers of
// rightTopic by the customer named after the "|" of an order ("none": no
// customer), "<order>+<customer or null>", into out; the join is named
// "enrich".
func fkJoinTopology(leftTopic, rightTopic, out string, leftJoin bool) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	orders := dsl.TableFromTopic(b, leftTopic, serde.String, serde.String)
	customers := dsl.TableFromTopic(b, rightTopic, serde.String, serde.String)
	var j dsl.Table[string, string]
	if leftJoin {
		j = dsl.TableLeftJoinForeignKey(orders, customers, fkCustomer, fkJoiner, serde.String, dsl.Named("enrich"))
	} else {
		j = dsl.TableJoinForeignKey(orders, customers, fkCustomer, func(k, v, o string) string { return fkJoiner(k, v, dsl.Some(o)) },
			serde.String, dsl.Named("enrich"))
	}
	j.ToStream().To(out, serde.String, serde.String)
	return b.Build()
}

func fkCustomer(_, v string) dsl.Maybe[string] {
	_, c, _ := strings.Cut(v, "|")
	if c == "none" {
		return dsl.None[string]()
	}
	return dsl.Some(c)
}

func fkJoiner(_, v string, o dsl.Maybe[string]) string { return v + "+" + o.Or("null") }

// fkJoinInput makes random updates of both tables in two halves: 60 orders
// referring to 12 customers (two of them never written), values unique so
// that every update changes the hash; some orders have no customer
// ("none"), some are deleted, and customers are updated and deleted. want
// is the join of the final rows, computed in Go. Event times are recent:
// a real broker deletes a topic's records whose timestamps are older than
// its retention (7 days by default) at its next retention check (every 5
// minutes), so records of 1970 would vanish from the input (the
// application then finds nothing to read) or from the output (the test
// then cannot read it to its end) when a check falls within the test.
func fkJoinInput(leftTopic, rightTopic string, leftJoin bool) (first, second []*kgo.Record, want map[string]string) {
	rng := rand.New(rand.NewPCG(11, uint64(len(leftTopic))))
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	leftRows, rightRows := map[string]string{}, map[string]string{}
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
		r.Timestamp = time.UnixMilli(base + int64(i))
		if i < 1500 {
			first = append(first, r)
		} else {
			second = append(second, r)
		}
	}
	want = map[string]string{}
	for k, v := range leftRows {
		key, ok := fkCustomer(k, v).Get()
		rv, found := rightRows[key]
		switch {
		case ok && found:
			want[k] = fkJoiner(k, v, dsl.Some(rv))
		case leftJoin:
			want[k] = fkJoiner(k, v, dsl.None[string]())
		}
	}
	return first, second, want
}

// fkMatches says how the rows g differ from want ("" when they do not): a
// key absent from want must have no row or a tombstone.
func fkMatches(g map[string]*string, want map[string]string) string {
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

func fkRecord(m map[string]*string) func(*kgo.Record) {
	return func(r *kgo.Record) {
		if r.Value == nil {
			m[string(r.Key)] = nil
			return
		}
		v := string(r.Value)
		m[string(r.Key)] = &v
	}
}

// awaitFKJoin waits until the application has committed every source
// topic, the join's internal ones included, to its end, and out shows
// want's rows: then nothing is in flight.
func (c *testCluster) awaitFKJoin(ctx context.Context, t *testing.T, topo *topology.Topology, app string, inputs []string, out string,
	want map[string]string, ins ...*instance) {
	t.Helper()
	sources := slices.Clone(inputs)
	for _, it := range topo.InternalTopics() {
		if it.Kind == topology.Repartition {
			sources = append(sources, app+"-"+it.Name)
		}
	}
	if len(sources) != len(inputs)+2 {
		t.Fatalf("source topics %v: want the inputs, the subscription and the response topic", sources)
	}
	adm := kadm.NewClient(c.client(t))
	// behind lists the partitions whose committed offset is below their
	// end ("" when there are none).
	behind := func(ctx context.Context) string {
		ends, err := adm.ListEndOffsets(ctx, sources...)
		if err != nil {
			return err.Error()
		}
		committed, err := adm.FetchOffsets(ctx, app)
		if err != nil {
			return err.Error()
		}
		var lag []string
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			if cm, found := committed.Lookup(o.Topic, o.Partition); !found || cm.At < o.Offset {
				lag = append(lag, fmt.Sprintf("%s/%d at %d of %d", o.Topic, o.Partition, cm.At, o.Offset))
			}
		})
		return strings.Join(lag, ", ")
	}
	caughtUp := func() bool { return behind(ctx) == "" }
	got := map[string]*string{}
	cl := c.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	for fkMatches(got, want) != "" || !caughtUp() {
		for _, in := range ins {
			select {
			case <-in.finished:
				t.Fatalf("Run returned while the output was awaited: %v", <-in.done)
			default:
			}
		}
		if ctx.Err() != nil {
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			t.Fatalf("the output did not reach the oracle's rows with every topic consumed: %s; committed offsets behind: %s", fkMatches(got, want), behind(dctx))
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cl.PollFetches(pctx).EachRecord(fkRecord(got))
		pcancel()
	}
}

// checkFKJoinOutput reads out again, whole, to its end: its last record of
// each key are want's rows.
func (c *testCluster) checkFKJoinOutput(t *testing.T, out string, want map[string]string) {
	t.Helper()
	final := map[string]*string{}
	for _, r := range c.readToEnd(t, out) {
		fkRecord(final)(r)
	}
	if d := fkMatches(final, want); d != "" {
		t.Errorf("final output differs from the oracle: %s", d)
	}
}

// A foreign-key join killed with kill -9 in the middle of its work (a
// child process), twice, then restarted on its state directory: the
// output ends in the oracle's rows. At-least-once may repeat output and
// subscriptions, and may answer a subscription twice, but a stale answer
// is dropped and a repeated one is the same: the final result of each key
// is the join of the final rows.
func TestFKJoinKill9AndRestart(t *testing.T) {
	c := newCluster(t)
	leftTopic, rightTopic, out := topic(t, "orders"), topic(t, "customers"), topic(t, "enriched")
	c.create(t, 4, leftTopic, out)
	c.create(t, 2, rightTopic)
	first, second, want := fkJoinInput(leftTopic, rightTopic, true)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	prod := c.client(t)
	if err := prod.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := topic(t, "app")
	dir := t.TempDir()
	seen := 0
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SLUICE_TEST_CHILD=wordcount", "TOPOLOGY=fkjoin", "INPUT="+leftTopic, "RIGHT="+rightTopic, "OUTPUT="+out,
			"APP_ID="+app, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			if err := prod.ProduceSync(ctx, second...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		// Kill once the child has written more output than before: in the
		// middle of the work, at a point the test does not choose.
		n := 0
		cl := c.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
		for n <= seen+20 {
			if ctx.Err() != nil {
				t.Fatalf("round %d: the child wrote %d results, not more than %d", round, n, seen+20)
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			n += cl.PollFetches(pctx).NumRecords()
			pcancel()
		}
		cl.Close()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v before it was killed", round, err)
		}
		seen = n
	}
	topo, err := fkJoinTopology(leftTopic, rightTopic, out, true)
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, topo, childOptions(app, c.brokers, dir)...)
	c.awaitFKJoin(ctx, t, topo, app, []string{leftTopic, rightTopic}, out, want, in)
	in.stop(t)
	c.checkFKJoinOutput(t, out, want)
}

// awaitTasksOnEach waits until each instance holds at least one task.
func awaitTasksOnEach(ctx context.Context, t *testing.T, ins ...*instance) {
	t.Helper()
	for {
		var wake []<-chan struct{}
		all := true
		for _, in := range ins {
			ids, changed := in.app.Tasks()
			wake = append(wake, changed)
			all = all && len(ids) > 0
		}
		if all {
			return
		}
		select {
		case <-wake[0]:
		case <-wake[len(wake)-1]:
		case <-time.After(time.Second):
		case <-ctx.Done():
			t.Fatal("the instances did not all get tasks")
		}
	}
}

func show(v *string) string {
	if v == nil {
		return "<none or tombstone>"
	}
	return fmt.Sprintf("%q", *v)
}

// Ports KTableKTableForeignKeyInnerJoinMultiIntegrationTest
// (shouldInnerJoinMultiPartitionQueryable): two foreign-key joins in a
// chain, over tables of 3, 5 and 7 partitions with an output of 11, on
// three instances; both results materialized and uncached. Of the four
// rows of table1 only key 1 joins all the way: "value1=1.33,value2=10,value3=waffle".
func TestFKJoinChainThreeInstances(t *testing.T) {
	c := newCluster(t)
	t1, t2, t3, out := topic(t, "table1"), topic(t, "table2"), topic(t, "table3"), topic(t, "output")
	c.create(t, 3, t1)
	c.create(t, 5, t2)
	c.create(t, 7, t3)
	c.create(t, 11, out)
	// Kafka's FloatSerializer: the big-endian IEEE 754 bits.
	float32s := serde.Func(func(dst []byte, v float32) ([]byte, error) {
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(v)), nil
	}, func(b []byte) (float32, error) {
		if len(b) != 4 {
			return 0, fmt.Errorf("float of %d bytes", len(b))
		}
		return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
	})
	b := dsl.NewBuilder()
	table1 := dsl.TableFromTopic(b, t1, serde.Int32, float32s)
	table2 := dsl.TableFromTopic(b, t2, serde.String, serde.Int64)
	table3 := dsl.TableFromTopic(b, t3, serde.Int32, serde.String)
	noCache := dsl.StoreOptions{DisableCaching: true}
	first, second := noCache, noCache
	first.Name, second.Name = "INNER-store1", "INNER-store2"
	j1 := dsl.TableJoinForeignKey(table1, table2, func(_ int32, v float32) dsl.Maybe[string] {
		return dsl.Some(strconv.Itoa(int(v)))
	}, func(_ int32, v float32, o int64) string {
		return "value1=" + strconv.FormatFloat(float64(v), 'g', -1, 32) + ",value2=" + strconv.FormatInt(o, 10)
	}, serde.String, dsl.Materialized(first))
	dsl.TableJoinForeignKey(j1, table3, func(_ int32, v string) dsl.Maybe[int32] {
		// Hard-wired as in the Java test.
		if strings.Contains(v, "value2=10") {
			return dsl.Some[int32](10)
		}
		return dsl.Some[int32](0)
	}, func(_ int32, v, o string) string { return v + ",value3=" + o }, serde.String, dsl.Materialized(second)).
		ToStream().To(out, serde.Int32, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rs []*kgo.Record
	add := func(tp string, k, v []byte) { rs = append(rs, &kgo.Record{Topic: tp, Key: k, Value: v}) }
	for k, v := range map[int32]float32{1: 1.33, 2: 2.22, 3: -1.22, 4: -2.22} {
		kb, _ := serde.Int32.Encode(nil, k)
		vb, _ := float32s.Encode(nil, v)
		add(t1, kb, vb)
	}
	for i := range 10 {
		vb, _ := serde.Int64.Encode(nil, int64(i*10))
		add(t2, []byte(strconv.Itoa(i)), vb)
	}
	kb, _ := serde.Int32.Encode(nil, 10)
	add(t3, kb, []byte("waffle"))
	if err := c.client(t).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := topic(t, "app")
	opts := []runtime.Option{runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100 * time.Millisecond)}
	ins := []*instance{start(t, topo, opts...), start(t, topo, opts...), start(t, topo, opts...)}
	got := map[int32]string{}
	want := map[int32]string{1: "value1=1.33,value2=10,value3=waffle"}
	if !c.readWhileRunning(t, ins[0], out, time.Minute, func(r *kgo.Record) {
		k, err := serde.Int32.Decode(r.Key)
		if err != nil {
			t.Errorf("output key %x: %v", r.Key, err)
			return
		}
		if r.Value == nil {
			delete(got, k)
		} else {
			got[k] = string(r.Value)
		}
	}, func() bool { return fmt.Sprint(got) == fmt.Sprint(want) }) {
		t.Fatalf("output %v, want %v", got, want)
	}
	for _, in := range ins {
		in.stop(t)
	}
}
