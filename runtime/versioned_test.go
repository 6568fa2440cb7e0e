package runtime_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A stream-table join with a grace period on a versioned table runs on the
// broker over topics of 2 partitions. The versioned table's changelog is
// Kafka Streams' (one record per version, the version's timestamp, an
// out-of-order version too; compact with min.compaction.lag.ms = history
// retention + 1 day), and so is the join buffer's ("<join>-Buffer").
// Across a restart on local state, and one after the state directory is
// deleted (both stores restore from their changelogs), a click that waited
// in the buffer meets a table version that arrived after it, within the
// grace; late clicks read the history (an out-of-order version included);
// and every result is the one the join gives uninterrupted (each click
// joined with the version valid at its time).
func TestVersionedJoinWithGraceRestoresOnBroker(t *testing.T) {
	c := newCluster(t)
	users, clicks, out := topic(t, "users"), topic(t, "clicks"), topic(t, "enriched")
	const partitions = 2
	c.create(t, partitions, users, clicks, out)

	b := dsl.NewBuilder()
	tb := dsl.TableFromTopic(b, users, serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Minute}))
	dsl.JoinTable(dsl.FromTopic(b, clicks, serde.String, serde.String), tb, func(_, click, user string) string { return click + "@" + user },
		dsl.JoinGrace(5*time.Second), dsl.Named("enrich")).
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
			krs = append(krs, &kgo.Record{Topic: r.topic, Key: []byte(r.key), Value: []byte(r.value), Timestamp: time.UnixMilli(base + r.ts)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	usersLog := appID + "-users-changelog"
	// versionsLogged waits until the table's changelog holds n records: the
	// table has the versions, so clicks produced next meet them.
	versionsLogged := func(n int) []*kgo.Record {
		t.Helper()
		rs := c.readRecords(t, usersLog, n, time.Minute)
		if len(rs) < n {
			t.Fatalf("%s: %d records within a minute, want %d", usersLog, len(rs), n)
		}
		return rs
	}
	const keys = 8
	var want []string
	result := func(k, click, user string, ts int64) string { return fmt.Sprintf("%s=%s@%s@%d", k, click, user, ts) }

	// Phase 1: three versions of each user, the last out of order.
	in := run()
	var vs []rec
	for i := range keys {
		k := fmt.Sprintf("u%d", i)
		vs = append(vs, rec{users, k, "A", 0}, rec{users, k, "B", 10_000}, rec{users, k, "C", 5000})
	}
	produce(vs...)
	logged := versionsLogged(3 * keys)
	// Then three clicks per user: stream time 12 s minus the grace of 5 s
	// releases those of 2 s and 7 s; the one of 12 s waits in the buffer.
	var cs []rec
	for i := range keys {
		k := fmt.Sprintf("u%d", i)
		cs = append(cs, rec{clicks, k, "c1", 2000}, rec{clicks, k, "c2", 7000}, rec{clicks, k, "c3", 12_000})
		want = append(want, result(k, "c1", "A", 2000), result(k, "c2", "C", 7000))
	}
	produce(cs...)
	c.joinResults(t, out, 0, len(want), time.Minute)
	waitCommitted(t, c, appID, clicks)
	waitCommitted(t, c, appID, users)
	in.stop(t)

	// The versioned changelog: each user's versions in the order written,
	// with their own timestamps.
	perKey := map[string][]string{}
	for _, r := range logged {
		perKey[string(r.Key)] = append(perKey[string(r.Key)], fmt.Sprintf("%s@%d", r.Value, r.Timestamp.UnixMilli()-base))
	}
	for i := range keys {
		k := fmt.Sprintf("u%d", i)
		if got, want := perKey[k], []string{"A@0", "B@10000", "C@5000"}; !slices.Equal(got, want) {
			t.Errorf("%s: versions of %s: %v, want %v", usersLog, k, got, want)
		}
	}
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfgs, err := adm.DescribeTopicConfigs(ctx, usersLog)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(usersLog, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cf := range rc.Configs {
		if cf.Value != nil {
			got[cf.Key] = *cf.Value
		}
	}
	if got["cleanup.policy"] != "compact" || got["min.compaction.lag.ms"] != strconv.FormatInt((time.Minute+24*time.Hour).Milliseconds(), 10) {
		t.Errorf("%s: cleanup.policy=%s min.compaction.lag.ms=%s, want compact and %d", usersLog,
			got["cleanup.policy"], got["min.compaction.lag.ms"], (time.Minute + 24*time.Hour).Milliseconds())
	}
	// The buffer's changelog: 3 clicks per user buffered, 2 released.
	buffered := map[string]bool{}
	for _, r := range c.readToEnd(t, appID+"-enrich-Buffer-changelog") {
		if r.Value == nil {
			delete(buffered, string(r.Key))
		} else {
			buffered[string(r.Key)] = true
		}
	}
	if len(buffered) != keys {
		t.Errorf("the join buffer's changelog holds %d records, want the %d clicks of 12 s", len(buffered), keys)
	}

	// Phase 2, restarted on its local state: a version of 11 s, which the
	// waiting clicks of 12 s must see later; clicks of 1 s and 6 s, older
	// than the buffer's stream time minus the grace, joined at once with
	// the history (A, and C, the out-of-order version).
	in = run()
	vs = nil
	for i := range keys {
		k := fmt.Sprintf("u%d", i)
		vs = append(vs, rec{users, k, "D", 11_000})
		want = append(want, result(k, "c3", "D", 12_000))
	}
	produce(vs...)
	versionsLogged(4 * keys)
	cs = nil
	for i := range keys {
		k := fmt.Sprintf("u%d", i)
		cs = append(cs, rec{clicks, k, "c5", 6000}, rec{clicks, k, "c6", 1000})
		want = append(want, result(k, "c5", "C", 6000), result(k, "c6", "A", 1000))
	}
	produce(cs...)
	c.joinResults(t, out, 0, len(want)-keys, time.Minute)
	waitCommitted(t, c, appID, clicks)
	waitCommitted(t, c, appID, users)
	in.stop(t)

	// Phase 3, without local state: the stores restore from their
	// changelogs, and a click of 60 s on each partition (of a key with no
	// user) releases the clicks of 12 s, which see the version of 11 s.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	in = run()
	var closing []rec
	for p := range partitions {
		closing = append(closing, rec{clicks, keyFor(p, partitions, "nobody"), "tick", 60_000})
	}
	produce(closing...)
	all := c.joinResults(t, out, base, len(want), time.Minute)
	in.stop(t)
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("join results:\n got  %v\n want %v", all, want)
	}
}
