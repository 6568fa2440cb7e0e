package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/partition"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// readRecords reads topic from the start until it has n records or the
// deadline passes, and returns what it read.
func (c *testCluster) readRecords(t *testing.T, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rs []*kgo.Record
	for len(rs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { rs = append(rs, r) })
	}
	return rs
}

// sessionResults reads a topic of session-windowed string keys into the
// latest value per "key@start-end" (a tombstone removes it), as text made
// by decode, until done holds or the deadline passes.
func (c *testCluster) sessionResults(t *testing.T, topic string, decode func([]byte) string, timeout time.Duration, done func(map[string]string) bool) map[string]string {
	t.Helper()
	keys := window.SessionKeySerde(serde.String)
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	latest := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !done(latest) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			k, err := keys.Decode(r.Key)
			if err != nil {
				t.Errorf("record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				return
			}
			name := fmt.Sprintf("%s@%d-%d", k.Key, k.Window.Start, k.Window.End)
			if r.Value == nil {
				delete(latest, name)
				return
			}
			latest[name] = decode(r.Value)
		})
	}
	return latest
}

func containsAll(want map[string]string) func(map[string]string) bool {
	return func(got map[string]string) bool {
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
}

func int64Text(b []byte) string {
	if len(b) != 8 {
		return fmt.Sprintf("<%d bytes>", len(b))
	}
	return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)), 10)
}

// changelogRecord is what a session changelog record should be: the
// session key (key ‖ end ‖ start, Kafka Streams' SessionKeySchema), the
// raw aggregate or a tombstone, the causing record's timestamp.
type changelogRecord struct {
	key        string
	start, end int64
	value      string // "" for a tombstone
	ts         int64
}

func (r changelogRecord) String() string {
	v := r.value
	if v == "" {
		v = "<tombstone>"
	}
	return fmt.Sprintf("%s [%d,%d] = %s @%d", r.key, r.start, r.end, v, r.ts)
}

func decodeSessionChangelog(t *testing.T, rs []*kgo.Record, decode func([]byte) string) []changelogRecord {
	t.Helper()
	keys := window.SessionKeySerde(serde.String)
	out := make([]changelogRecord, 0, len(rs))
	for _, r := range rs {
		k, err := keys.Decode(r.Key)
		if err != nil {
			t.Fatalf("changelog record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		cr := changelogRecord{key: k.Key, start: k.Window.Start, end: k.Window.End, ts: r.Timestamp.UnixMilli()}
		if r.Value != nil {
			cr.value = decode(r.Value)
		}
		out = append(out, cr)
	}
	return out
}

// Session aggregates with a String value and with an Int64 sum of 2e12 per
// record: their changelogs carry the raw aggregate as the value and the
// causing record's timestamp, tombstones too (Kafka Streams'
// ChangeLoggingSessionBytesStore: context.timestamp()), with the record
// cache on (the String one) and off (the Int64 one); and both restore
// exactly from their changelogs after the state directory is deleted. (A
// sum of 2e12 used to be logged as the record timestamp, which a real
// broker refuses with INVALID_TIMESTAMP.)
func TestSessionChangelogRestoresExactly(t *testing.T) {
	c := newCluster(t)
	input, strOut, sumOut := topic(t, "in"), topic(t, "records"), topic(t, "sums")
	c.create(t, 1, input, strOut, sumOut)
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey()
	sessions := dsl.WindowedBySession(g, window.Session{Gap: time.Minute, Grace: time.Hour})
	records := func(n int) string { return "records=" + strconv.Itoa(n) }
	count := func(s string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "records="))
		if err != nil {
			return -1_000_000 // shows in the results as a wrong count
		}
		return n
	}
	dsl.SessionAggregate(sessions, func() string { return records(0) },
		func(_ string, _ string, agg string) string { return records(count(agg) + 1) },
		func(_ string, a, b string) string { return records(count(a) + count(b)) },
		serde.String, dsl.Named("strsess")).
		ToStream().To(strOut, window.SessionKeySerde(serde.String), serde.String)
	const per = 2_000_000_000_000
	dsl.SessionAggregate(sessions, func() int64 { return 0 },
		func(_ string, _ string, agg int64) int64 { return agg + per },
		func(_ string, a, b int64) int64 { return a + b },
		serde.Int64, dsl.Named("sumsess"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true})).
		ToStream().To(sumOut, window.SessionKeySerde(serde.String), serde.Int64)
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
	str := func(b []byte) string { return string(b) }
	// Recent event times: a real broker deletes changelog records older
	// than the topic's retention by their timestamps.
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	cl := c.client(t, kgo.DefaultProduceTopic(input))
	wantStr, wantSum := map[string]string{}, map[string]string{}
	// pipe produces one record and waits until both aggregations forwarded
	// its session, so that the cached one flushed it before the next.
	pipe := func(key string, ts int64, start int64, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v"), Timestamp: time.UnixMilli(ts)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s@%d-%d", key, start, ts)
		for k := range wantStr {
			if strings.HasPrefix(k, key+"@") {
				delete(wantStr, k)
				delete(wantSum, k)
			}
		}
		wantStr[name], wantSum[name] = records(n), strconv.FormatInt(int64(n)*per, 10)
		if got := c.sessionResults(t, strOut, str, 30*time.Second, containsAll(wantStr)); !maps.Equal(got, wantStr) {
			t.Fatalf("String sessions after %s@%d: got %v, want %v", key, ts, got, wantStr)
		}
		if got := c.sessionResults(t, sumOut, int64Text, 30*time.Second, containsAll(wantSum)); !maps.Equal(got, wantSum) {
			t.Fatalf("Int64 sessions after %s@%d: got %v, want %v", key, ts, got, wantSum)
		}
	}
	in := run()
	pipe("a", base, base, 1)
	pipe("b", base+5000, base+5000, 1)
	pipe("a", base+10000, base, 2)
	pipe("a", base+20000, base, 3)
	in.stop(t)

	// The changelogs, record for record, as Kafka Streams writes them.
	for _, tc := range []struct {
		store  string
		decode func([]byte) string
		agg    func(n int) string
	}{
		{"strsess", str, records},
		{"sumsess", int64Text, func(n int) string { return strconv.FormatInt(int64(n)*per, 10) }},
	} {
		want := []changelogRecord{
			{"a", base, base, tc.agg(1), base},
			{"b", base + 5000, base + 5000, tc.agg(1), base + 5000},
			{"a", base, base, "", base + 10000},
			{"a", base, base + 10000, tc.agg(2), base + 10000},
			{"a", base, base + 10000, "", base + 20000},
			{"a", base, base + 20000, tc.agg(3), base + 20000},
		}
		changelog := appID + "-" + tc.store + "-changelog"
		got := decodeSessionChangelog(t, c.readRecords(t, changelog, len(want), 30*time.Second), tc.decode)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("changelog %s:\n got  %v\n want %v", changelog, got, want)
		}
	}

	// Without local state, both stores restore from their changelogs: the
	// next record of a joins its session of 3 records.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	in = run()
	pipe("a", base+30000, base, 4)
	pipe("b", base+6000, base+5000, 2)
	in.stop(t)
}

// Windowed results written to a topic land in the partition of their key
// alone, murmur2 of the key's bytes (Kafka Streams'
// WindowedStreamPartitioner), for time and session windows: every window
// of a key in one partition.
func TestWindowedSinkPartitionsByKey(t *testing.T) {
	c := newCluster(t)
	input, timeOut, sessOut := topic(t, "in"), topic(t, "time"), topic(t, "sessions")
	c.create(t, 1, input)
	const partitions = 5
	c.create(t, partitions, timeOut, sessOut)
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey()
	dsl.WindowedBy(g, window.Tumbling(time.Second, time.Hour)).Count(dsl.Named("tw")).
		ToStream().To(timeOut, window.TimeKeySerde(serde.String, time.Second), serde.Int64)
	dsl.WindowedBySession(g, window.Session{Gap: 100 * time.Millisecond, Grace: time.Hour}).Count(dsl.Named("sw")).
		ToStream().To(sessOut, window.SessionKeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 1000 * 1000
	var rs []*kgo.Record
	const keys, windows = 12, 8
	for w := range windows {
		for k := range keys {
			rs = append(rs, &kgo.Record{Topic: input, Key: []byte(fmt.Sprintf("key%d", k)), Value: []byte("v"),
				Timestamp: time.UnixMilli(base + int64(w)*1000 + int64(k))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client(t).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	in := start(t, topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.CommitInterval(50*time.Millisecond), runtime.CacheMaxBytes(0))
	// Without a cache each record's window is forwarded once: 96 records
	// per topic (each session holds one record: 100ms gap, 1s apart).
	for _, tc := range []struct {
		topic  string
		suffix int
	}{{timeOut, 8}, {sessOut, 16}} {
		got := c.readRecords(t, tc.topic, keys*windows, time.Minute)
		if len(got) != keys*windows {
			t.Fatalf("%s: read %d records, want %d", tc.topic, len(got), keys*windows)
		}
		perKey := map[string]map[int32]bool{}
		wrong := 0
		for _, r := range got {
			key := r.Key[:len(r.Key)-tc.suffix]
			if want := int32(partition.ForKey(key, partitions)); r.Partition != want {
				if wrong++; wrong <= 3 {
					t.Errorf("%s: record of key %q window %x in partition %d, want %d (murmur2 of the key)",
						tc.topic, key, r.Key[len(key):], r.Partition, want)
				}
			}
			if perKey[string(key)] == nil {
				perKey[string(key)] = map[int32]bool{}
			}
			perKey[string(key)][r.Partition] = true
		}
		if wrong > 0 {
			t.Errorf("%s: %d of %d records not in the partition of their key", tc.topic, wrong, len(got))
		}
		for k, ps := range perKey {
			if len(ps) != 1 {
				t.Errorf("%s: the windows of key %q are in %d partitions", tc.topic, k, len(ps))
			}
		}
	}
	in.stop(t)
}
