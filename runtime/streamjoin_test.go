package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/partition"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// An outer stream-stream join runs on the broker over topics of 2
// partitions and gives exactly what a direct computation of the join
// gives; its window stores and its shared store restore from their
// changelogs (written in Kafka Streams' layout) after the state directory
// is deleted: records that arrive after the restart still meet the
// restored ones, and the restored unmatched records come out joined with
// an absent value once a later record closes their windows.
func TestStreamJoinOuterOnBroker(t *testing.T) {
	c := newCluster(t)
	left, right, out := topic(t, "left"), topic(t, "right"), topic(t, "joined")
	const partitions = 2
	c.create(t, partitions, left, right, out)

	b := dsl.NewBuilder()
	ls := dsl.FromTopic(b, left, serde.String, serde.String)
	rs := dsl.FromTopic(b, right, serde.String, serde.String)
	w := window.JoinTimeDifference(10 * time.Second)
	dsl.OuterJoin(ls, rs, func(_ string, l, r dsl.Maybe[string]) string { return l.Or("null") + "+" + r.Or("null") }, w,
		dsl.StreamJoined(dsl.StreamJoinOptions{StoreName: "pairs"})).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	run := func() *instance {
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50*time.Millisecond))
	}
	// Recent event times: a real broker deletes changelog records older
	// than the topic's retention by their timestamps.
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	type rec struct {
		topic, key, value string
		ts                int64
	}
	produce := func(recs ...rec) {
		t.Helper()
		cl := c.client(t)
		var krs []*kgo.Record
		for _, r := range recs {
			krs = append(krs, &kgo.Record{Topic: r.topic, Key: []byte(r.key), Value: []byte(r.value), Timestamp: time.UnixMilli(r.ts)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// want is the oracle: the join's results, computed directly.
	var want []string
	result := func(key, value string, ts int64) string { return fmt.Sprintf("%s=%s@%d", key, value, ts-base) }

	// Phase 1, all within 5 s of each other (the windows are 10 s, so
	// nothing closes while they arrive, in whatever order the two topics
	// are read): keys of 4 kinds.
	var phase1 []rec
	for i := range 24 {
		k := fmt.Sprintf("k%02d", i)
		t0 := base + int64(i%5)*1000
		switch i % 4 {
		case 0: // left only: absent on the right once its window closes
			phase1 = append(phase1, rec{left, k, "L" + k, t0})
			want = append(want, result(k, "L"+k+"+null", t0))
		case 1: // right only
			phase1 = append(phase1, rec{right, k, "R" + k, t0})
			want = append(want, result(k, "null+R"+k, t0))
		case 2: // one pair 2 s apart, and (phase 2) a second right record
			phase1 = append(phase1, rec{left, k, "L" + k, t0}, rec{right, k, "R" + k, t0 + 2000})
			want = append(want, result(k, "L"+k+"+R"+k, t0+2000), result(k, "L"+k+"+S"+k, t0+3000))
		case 3: // duplicates: two equal left records and one right
			phase1 = append(phase1, rec{left, k, "L" + k, t0}, rec{left, k, "L" + k, t0}, rec{right, k, "R" + k, t0 + 1000})
			want = append(want, result(k, "L"+k+"+R"+k, t0+1000), result(k, "L"+k+"+R"+k, t0+1000))
		}
	}
	in := run()
	produce(phase1...)
	pairs := 0
	for _, w := range want {
		if !strings.Contains(w, "null") {
			pairs++
		}
	}
	// The matched pairs of phase 1 are out (the second right records of
	// phase 2 are not sent yet); then every input record is committed.
	c.joinResults(t, out, base, pairs-6, time.Minute)
	waitCommitted(t, c, appID, left)
	waitCommitted(t, c, appID, right)
	in.stop(t)

	// The shared store's changelog holds the unmatched records in Kafka
	// Streams' layout: key = int64 ts ‖ side (1 left, 0 right) ‖ key, value
	// = ListSerde of byte arrays (1, int32 count, int32 length ‖ entry),
	// each entry side ‖ value. Its latest value per key is the store.
	shared := map[string]string{}
	for _, r := range c.readToEnd(t, appID+"-pairs-outer-shared-join-store-changelog") {
		if len(r.Key) < 9 {
			t.Fatalf("shared store changelog key %x: shorter than ts and side", r.Key)
		}
		side := map[byte]string{1: "left", 0: "right"}[r.Key[8]]
		name := fmt.Sprintf("%d %s %s", int64(binary.BigEndian.Uint64(r.Key))-base, side, r.Key[9:])
		if r.Value == nil {
			delete(shared, name)
			continue
		}
		v := r.Value
		if len(v) < 5 || v[0] != 1 {
			t.Fatalf("shared store changelog value %x of %s: not a ListSerde list", v, name)
		}
		n := int(binary.BigEndian.Uint32(v[1:5]))
		var entries []string
		for v = v[5:]; len(v) >= 4; {
			l := int(binary.BigEndian.Uint32(v))
			entries = append(entries, fmt.Sprintf("%d:%s", v[4], v[5:4+l]))
			v = v[4+l:]
		}
		if len(entries) != n || len(v) != 0 {
			t.Fatalf("shared store changelog value of %s: %d entries of %d, %d bytes left", name, len(entries), n, len(v))
		}
		shared[name] = strings.Join(entries, ",")
	}
	var wantShared []string
	for i := range 24 {
		k := fmt.Sprintf("k%02d", i)
		switch i % 4 {
		case 0:
			wantShared = append(wantShared, fmt.Sprintf("%d left %s=1:L%s", int64(i%5)*1000, k, k))
		case 1:
			wantShared = append(wantShared, fmt.Sprintf("%d right %s=0:R%s", int64(i%5)*1000, k, k))
		}
	}
	var gotShared []string
	for k, v := range shared {
		gotShared = append(gotShared, k+"="+v)
	}
	slices.Sort(gotShared)
	slices.Sort(wantShared)
	if !slices.Equal(gotShared, wantShared) {
		t.Errorf("shared store (from its changelog):\n got  %v\n want %v", gotShared, wantShared)
	}

	// Without local state, the stores restore from their changelogs.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	in = run()
	// Phase 2: a second right record for each pair key meets the restored
	// left record.
	var phase2 []rec
	for i := 2; i < 24; i += 4 {
		k := fmt.Sprintf("k%02d", i)
		phase2 = append(phase2, rec{right, k, "S" + k, base + int64(i%5)*1000 + 3000})
	}
	produce(phase2...)
	c.joinResults(t, out, base, pairs, time.Minute)
	// Then a record 60 s later on each partition of each topic closes
	// every window: the restored unmatched records come out. The closing
	// records wait for partners of their own.
	var closing []rec
	for _, tp := range []string{left, right} {
		for p := range partitions {
			closing = append(closing, rec{tp, keyFor(p, partitions, tp), "x", base + 60_000})
		}
	}
	produce(closing...)
	got := c.joinResults(t, out, base, len(want), time.Minute)
	in.stop(t)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("join results:\n got  %v\n want %v", got, want)
	}
}

// keyFor returns a key with the given prefix that the default partitioner
// puts in partition p of n.
func keyFor(p, n int, prefix string) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if partition.ForKey([]byte(k), n) == p {
			return k
		}
	}
}

// readToEnd reads topic from the start to the end offsets it has now.
func (c *testCluster) readToEnd(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(c.client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	var rs []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: not read to its end offsets %v within a minute", topic, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			rs = append(rs, r)
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return rs
}

// joinResults reads topic from the start until it has n records (or the
// deadline passes) and returns them as key=value@ts-base.
func (c *testCluster) joinResults(t *testing.T, topic string, base int64, n int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	for _, r := range c.readRecords(t, topic, n, timeout) {
		got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Timestamp.UnixMilli()-base))
	}
	if len(got) < n {
		t.Fatalf("topic %s: %d records within %v, want %d: %v", topic, len(got), timeout, n, got)
	}
	return got
}

// The inputs of a stream-stream join must be co-partitioned: topics of 3
// and 2 partitions fail at start-up naming both.
func TestStreamJoinCoPartitioningValidated(t *testing.T) {
	c := newCluster(t)
	left, right, out := topic(t, "left"), topic(t, "right"), topic(t, "joined")
	c.create(t, 3, left, out)
	c.create(t, 2, right)
	b := dsl.NewBuilder()
	dsl.Join(dsl.FromTopic(b, left, serde.String, serde.String), dsl.FromTopic(b, right, serde.String, serde.String),
		func(_ string, l, r string) string { return l + r }, window.JoinTimeDifference(time.Second)).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.wantCoPartitionError(t, topo, left+" (3 partitions)", right+" (2 partitions)")
}

// A rekeyed input of a stream-stream join goes through a repartition topic
// of the other input's partition count (Kafka Streams'
// CopartitionedTopicsEnforcer): a 2-partition stream re-keyed by its
// value and joined with a 4-partition stream gives every pair.
func TestStreamJoinRekeyedInputTakesOtherInputsCount(t *testing.T) {
	c := newCluster(t)
	clicks, users, out := topic(t, "clicks"), topic(t, "users"), topic(t, "joined")
	c.create(t, 2, clicks)
	c.create(t, 4, users, out)
	b := dsl.NewBuilder()
	// A click's key is the page, its value the user.
	byUser := dsl.Map(dsl.FromTopic(b, clicks, serde.String, serde.String), func(page, user string) (string, string) { return user, page }).
		WithKeySerde(serde.String).WithValueSerde(serde.String)
	dsl.Join(byUser, dsl.FromTopic(b, users, serde.String, serde.String),
		func(_ string, page, region string) string { return page + "@" + region }, window.JoinTimeDifference(time.Hour)).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	const n = 20
	var recs []*kgo.Record
	var want []string
	for i := range n {
		u := fmt.Sprintf("user%d", i)
		recs = append(recs,
			&kgo.Record{Topic: users, Key: []byte(u), Value: []byte(fmt.Sprintf("r%d", i%3)), Timestamp: time.UnixMilli(base + int64(i))},
			&kgo.Record{Topic: clicks, Key: []byte(fmt.Sprintf("/p%d", i)), Value: []byte(u), Timestamp: time.UnixMilli(base + 1000 + int64(i))})
		want = append(want, fmt.Sprintf("%s=/p%d@r%d@%d", u, i, i%3, 1000+i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(50*time.Millisecond))
	got := c.joinResults(t, out, base, n, time.Minute)
	in.stop(t)
	if p := c.partitionCount(t, appID+"-KSTREAM-MAP-0000000001-repartition"); p != 4 {
		t.Errorf("repartition topic: %d partitions, want 4", p)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("join results:\n got  %v\n want %v", got, want)
	}
}
