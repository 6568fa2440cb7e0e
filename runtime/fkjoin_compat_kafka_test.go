//go:build kafka

package runtime_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// Kafka Streams 4.3.1 restores the subscription store of a Sluice
// foreign-key join from its changelog as its own: its CombinedKeySchema
// and SubscriptionWrapperSerde (compat/java/ReadWithKafkaStreams,
// fk-subscription-changelog) decode every record to the keys, instructions,
// partitions, hashes and timestamps Sluice wrote, and the subscriptions
// left at the end are those of the left rows' final foreign keys. (The
// subscription and response topics are purged after each commit, so their
// bytes are checked against Kafka Streams' serdes by TestFKWireGolden,
// internal/nodes.)
func TestKafkaStreamsReadsFKSubscriptionStore(t *testing.T) {
	c := newCluster(t)
	leftTopic, rightTopic, out := topic(t, "orders"), topic(t, "customers"), topic(t, "enriched")
	c.create(t, 4, leftTopic, out)
	c.create(t, 2, rightTopic)
	b := dsl.NewBuilder()
	fk := func(_, v string) dsl.Maybe[string] {
		c, _, _ := strings.Cut(v, "|")
		return dsl.Some(c)
	}
	dsl.TableJoinForeignKey(dsl.TableFromTopic(b, leftTopic, serde.String, serde.String), dsl.TableFromTopic(b, rightTopic, serde.String, serde.String),
		fk, func(_, v, o string) string { return v + "+" + o }, serde.String, dsl.Named("enrich")).
		ToStream().To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	final := map[string]string{}
	// Recent event times: a real broker deletes records older than the
	// topic's retention by their timestamps.
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	put := func(tp, k, v string) {
		r := &kgo.Record{Topic: tp, Key: []byte(k), Timestamp: time.UnixMilli(base + int64(len(rs)))}
		if v != "" {
			r.Value = []byte(v)
		}
		rs = append(rs, r)
		if tp == leftTopic {
			final[k] = v
		}
	}
	for i := range 10 {
		put(rightTopic, fmt.Sprintf("c%d", i), fmt.Sprintf("C%d", i))
	}
	for i := range 30 {
		put(leftTopic, fmt.Sprintf("o%02d", i), fmt.Sprintf("c%d|a", i%10))
	}
	for i := range 30 {
		switch i % 3 {
		case 0:
			put(leftTopic, fmt.Sprintf("o%02d", i), fmt.Sprintf("c%d|b", (i+1)%10)) // another customer
		case 1:
			put(leftTopic, fmt.Sprintf("o%02d", i), "") // deleted
		}
	}
	want := map[string]string{}
	var subs []string
	for k, v := range final {
		if v != "" {
			c, _ := fk(k, v).Get()
			want[k] = v + "+C" + strings.TrimPrefix(c, "c")
			subs = append(subs, c+"/"+k)
		}
	}
	slices.Sort(subs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The first 40 records (the customers and the orders' first rows)
	// are joined and committed before the changes come, so that the
	// changelog holds the first subscriptions and then their deletes.
	prod := c.client(t)
	if err := prod.ProduceSync(ctx, rs[:40]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := topic(t, "app")
	in := start(t, topo, runtime.ApplicationID(app), runtime.Brokers(c.brokers...), runtime.CommitInterval(100*time.Millisecond))
	got := map[string]string{}
	each := func(r *kgo.Record) {
		if r.Value == nil {
			delete(got, string(r.Key))
		} else {
			got[string(r.Key)] = string(r.Value)
		}
	}
	if !c.readWhileRunning(t, in, out, time.Minute, each, func() bool { return len(got) == 30 }) {
		t.Fatalf("join results %v, want the 30 orders' first", got)
	}
	if err := prod.ProduceSync(ctx, rs[40:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if !c.readWhileRunning(t, in, out, time.Minute, each, func() bool { return fmt.Sprint(got) == fmt.Sprint(want) }) {
		t.Fatalf("join results %v, want %v", got, want)
	}
	in.stop(t)

	changelog := app + "-enrich-subscription-store-changelog"
	sluice := c.sluiceReadSubscriptions(t, changelog)
	script, err := filepath.Abs("../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer jcancel()
	cmd := exec.CommandContext(jctx, script, "compat", strings.Join(c.brokers, ","), "fk-subscription-changelog:"+changelog)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	jout, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/kafka.sh compat: %v\n%s", err, stderr.String())
	}
	var java []decoded
	for line := range strings.Lines(string(jout)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 11 {
			t.Fatalf("ReadWithKafkaStreams printed %q: want 11 tab-separated fields", line)
		}
		java = append(java, decoded{partition: int32(atoi(t, f[2])), offset: int64(atoi(t, f[3])), ts: int64(atoi(t, f[4])),
			key: f[5], start: f[6], end: f[7], value: f[8], valueTs: f[9], target: f[10]})
	}
	sortDecoded(java)
	// A commit logs a key's last write only: at least the 30 first
	// subscriptions, the 10 new ones and the 20 deletes.
	if len(sluice) < 60 {
		t.Fatalf("changelog %s has %d records, want at least 60", changelog, len(sluice))
	}
	if fmt.Sprint(java) != fmt.Sprint(sluice) {
		t.Errorf("Kafka Streams decoded\n %v\nSluice decoded\n %v", java, sluice)
	}
	latest := map[string]bool{}
	for _, d := range java {
		latest[d.key] = d.value != "null"
	}
	var left []string
	for k, ok := range latest {
		if ok {
			left = append(left, k)
		}
	}
	slices.Sort(left)
	if !slices.Equal(left, subs) {
		t.Errorf("Kafka Streams restores the subscriptions %v, want %v", left, subs)
	}
}

// sluiceReadSubscriptions reads a subscription store's changelog with
// Sluice's decoders, in ReadWithKafkaStreams' fk-subscription-changelog
// layout, sorted by partition and offset.
func (c *testCluster) sluiceReadSubscriptions(t *testing.T, topic string) []decoded {
	t.Helper()
	subs := nodes.SubscriptionSerde(serde.String)
	var out []decoded
	for _, r := range c.readToEnd(t, topic) {
		d := decoded{partition: r.Partition, offset: r.Offset, ts: r.Timestamp.UnixMilli(), start: "-", end: "-", value: "null", valueTs: "-", target: "-"}
		fk, pk, err := nodes.SplitCombinedKey(r.Key)
		if err != nil {
			t.Fatalf("%s partition %d offset %d: %v", topic, r.Partition, r.Offset, err)
		}
		d.key = string(fk) + "/" + string(pk)
		if r.Value != nil {
			s, err := subs.Decode(r.Value)
			if err != nil {
				t.Fatalf("%s partition %d offset %d: %v", topic, r.Partition, r.Offset, err)
			}
			d.start, d.end = s.Instruction.String(), strconv.Itoa(int(s.PrimaryPartition))
			d.value = "nohash"
			if s.Hash.Present {
				d.value = fmt.Sprintf("%d,%d", s.Hash.H[0], s.Hash.H[1])
			}
			d.valueTs = strconv.FormatInt(d.ts, 10)
		}
		out = append(out, d)
	}
	sortDecoded(out)
	return out
}
