//go:build kafka

package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// decoded is one record as read by Sluice's decoders or by Kafka Streams'
// (compat/java/ReadWithKafkaStreams), in the program's output format.
type decoded struct {
	partition  int32
	offset     int64
	ts         int64
	key        string
	start, end string // "-" outside windows
	value      string // "null" for a tombstone
	valueTs    string // timestamped stores: the value's timestamp, else "-"
	// target is the partition Kafka Streams would write the record to
	// (windowed outputs), else "-".
	target string
}

func (d decoded) String() string {
	return fmt.Sprintf("p%d@%d ts=%d %s[%s,%s]=%s vts=%s target=%s", d.partition, d.offset, d.ts, d.key, d.start, d.end, d.value, d.valueTs, d.target)
}

// What a Java Kafka Streams 4.3.1 application reads from a Sluice
// application's topics is what Sluice wrote: the changelogs of a key-value
// count, a window count and a session count, restored as Kafka Streams
// restores them (its RecordConverters, WindowKeySchema, SessionKeySchema,
// ValueAndTimestampSerde), decode record for record to the keys, windows,
// values and timestamps Sluice's own decoders read, and hold the counts of
// the input; the windowed outputs decode with TimeWindowedDeserializer and
// SessionWindowedDeserializer to the final counts, each record in the
// partition Kafka Streams' WindowedStreamPartitioner gives it.
//
// It is built with the kafka tag only, which make test-kafka sets: it
// needs the real broker (KAFKA_BROKERS) and a JDK; the Java program is
// fetched, compiled and run by scripts/kafka.sh compat.
func TestKafkaStreamsReadsSluiceTopics(t *testing.T) {
	if os.Getenv("KAFKA_BROKERS") == "" {
		t.Fatal("KAFKA_BROKERS is not set: run it with make test-kafka, which starts a real broker")
	}
	c := newCluster(t)
	input, timeOut, sessOut := topic(t, "in"), topic(t, "time"), topic(t, "sessions")
	c.create(t, 2, input)
	c.create(t, 3, timeOut, sessOut)
	const size = time.Minute
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey()
	g.Count(dsl.Named("kvcount"))
	dsl.WindowedBy(g, window.Tumbling(size, time.Hour)).Count(dsl.Named("wcount")).
		ToStream().To(timeOut, window.TimeKeySerde(serde.String, size), serde.Int64)
	dsl.WindowedBySession(g, window.Session{Gap: 30 * time.Second, Grace: time.Hour}).Count(dsl.Named("scount")).
		ToStream().To(sessOut, window.SessionKeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	// Input: keys k0..k5, event times over five minutes; the sessions of a
	// key are its runs of records at most 30 s apart.
	base := time.Now().Add(-10*time.Minute).UnixMilli() / 60_000 * 60_000
	perKey := map[string][]int64{}
	var rs []*kgo.Record
	for i := range 60 {
		k := fmt.Sprintf("k%d", i%6)
		ts := base + int64(i)*5000 + int64(i%6)*(int64(i%4)*9000)
		perKey[k] = append(perKey[k], ts)
		rs = append(rs, &kgo.Record{Topic: input, Key: []byte(k), Value: []byte("v"), Timestamp: time.UnixMilli(ts)})
	}
	wantKV := map[string]string{}
	wantTime := map[string]string{}
	wantSess := map[string]string{}
	for k, tss := range perKey {
		wantKV[k] = strconv.Itoa(len(tss))
		for _, ts := range tss {
			w := fmt.Sprintf("%s[%d,%d]", k, ts/60_000*60_000, ts/60_000*60_000+60_000)
			n, _ := strconv.Atoi(wantTime[w])
			wantTime[w] = strconv.Itoa(n + 1)
		}
		sorted := slices.Sorted(slices.Values(tss))
		start, n := sorted[0], 1
		for i := 1; i <= len(sorted); i++ {
			if i < len(sorted) && sorted[i]-sorted[i-1] <= 30_000 {
				n++
				continue
			}
			wantSess[fmt.Sprintf("%s[%d,%d]", k, start, sorted[i-1])] = strconv.Itoa(n)
			if i < len(sorted) {
				start, n = sorted[i], 1
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client(t).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	appID := topic(t, "app")
	changelog := func(store string) string { return appID + "-" + store + "-changelog" }
	in := start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.CommitInterval(50*time.Millisecond))
	// The run is over when the windowed outputs hold the final counts.
	c.awaitWindows(t, timeOut, window.TimeKeySerde(serde.String, size), wantTime)
	c.awaitWindows(t, sessOut, window.SessionKeySerde(serde.String), wantSess)
	in.stop(t)

	specs := []struct{ kind, topic string }{
		{"kv-changelog", changelog("kvcount")},
		{"window-changelog", changelog("wcount")},
		{"session-changelog", changelog("scount")},
		{"time-windowed", timeOut},
		{"session-windowed", sessOut},
	}
	args := []string{"compat", strings.Join(c.brokers, ",")}
	for _, s := range specs {
		args = append(args, s.kind+":"+s.topic+":"+strconv.FormatInt(size.Milliseconds(), 10))
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer jcancel()
	script, err := filepath.Abs("../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(jctx, script, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/kafka.sh compat: %v\n%s", err, stderr.String())
	}
	java := map[string][]decoded{}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 11 {
			t.Fatalf("ReadWithKafkaStreams printed %q: want 11 tab-separated fields", line)
		}
		java[f[1]] = append(java[f[1]], decoded{partition: int32(atoi(t, f[2])), offset: int64(atoi(t, f[3])), ts: int64(atoi(t, f[4])),
			key: f[5], start: f[6], end: f[7], value: f[8], valueTs: f[9], target: f[10]})
	}

	for _, s := range specs {
		sluice := c.sluiceRead(t, s.kind, s.topic)
		got := java[s.topic]
		sortDecoded(got)
		if len(sluice) == 0 {
			t.Errorf("%s %s: Sluice wrote nothing", s.kind, s.topic)
		}
		// Record for record, Kafka Streams reads what Sluice meant.
		if fmt.Sprint(got) != fmt.Sprint(sluice) {
			t.Errorf("%s %s: Kafka Streams decoded\n %v\nSluice decoded\n %v", s.kind, s.topic, got, sluice)
		}
		for _, d := range got {
			if d.target != "-" && d.target != strconv.Itoa(int(d.partition)) {
				t.Errorf("%s %s: record %v is in partition %d, Kafka Streams would write it to %s", s.kind, s.topic, d, d.partition, d.target)
			}
			if d.valueTs != "-" && d.valueTs != strconv.FormatInt(d.ts, 10) {
				t.Errorf("%s %s: record %v: restored timestamp %s, record timestamp %d", s.kind, s.topic, d, d.valueTs, d.ts)
			}
		}
		// And the state it restores, or the results it reads, are the
		// counts of the input.
		var want map[string]string
		switch s.kind {
		case "kv-changelog":
			want = wantKV
		case "window-changelog", "time-windowed":
			want = wantTime
		default:
			want = wantSess
		}
		if latest := latestWindows(got); !maps.Equal(latest, want) {
			t.Errorf("%s %s: Kafka Streams reads %v\n want %v", s.kind, s.topic, latest, want)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("ReadWithKafkaStreams printed %q for a number", s)
	}
	return n
}

func sortDecoded(ds []decoded) {
	slices.SortFunc(ds, func(a, b decoded) int {
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.offset - b.offset)
	})
}

// latestWindows is the latest value per key (and window), tombstones
// removing it, in the order of each partition.
func latestWindows(ds []decoded) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		k := d.key
		if d.start != "-" {
			k = fmt.Sprintf("%s[%s,%s]", d.key, d.start, d.end)
		}
		if d.value == "null" {
			delete(m, k)
		} else {
			m[k] = d.value
		}
	}
	return m
}

// sluiceRead reads topic to its end and decodes it with Sluice's own
// decoders, in the layout of kind (see ReadWithKafkaStreams), sorted by
// partition and offset.
func (c *testCluster) sluiceRead(t *testing.T, kind, topic string) []decoded {
	t.Helper()
	cl := c.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadmEnds(ctx, cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, e := range ends {
		total += e
	}
	var out []decoded
	for _, r := range c.readRecords(t, topic, int(total), 30*time.Second) {
		d := decoded{partition: r.Partition, offset: r.Offset, ts: r.Timestamp.UnixMilli(), start: "-", end: "-", value: "null", valueTs: "-", target: "-"}
		value := r.Value
		switch kind {
		case "kv-changelog":
			d.key = string(r.Key)
			if value != nil {
				d.valueTs = strconv.FormatInt(d.ts, 10) // a timestamped store's value timestamp is the record's
			}
		case "window-changelog":
			k, start, _, err := state.SplitWindowKey(r.Key)
			if err != nil {
				t.Fatalf("%s partition %d offset %d: %v", topic, r.Partition, r.Offset, err)
			}
			d.key, d.start, d.end = string(k), strconv.FormatInt(start, 10), strconv.FormatInt(start+60_000, 10)
			if value != nil {
				d.valueTs = strconv.FormatInt(d.ts, 10)
			}
		case "session-changelog":
			k, start, end, err := state.SplitSessionKey(r.Key)
			if err != nil {
				t.Fatalf("%s partition %d offset %d: %v", topic, r.Partition, r.Offset, err)
			}
			d.key, d.start, d.end = string(k), strconv.FormatInt(start, 10), strconv.FormatInt(end, 10)
		case "time-windowed", "session-windowed":
			keys := window.TimeKeySerde(serde.String, time.Minute)
			if kind == "session-windowed" {
				keys = window.SessionKeySerde(serde.String)
			}
			w, err := keys.Decode(r.Key)
			if err != nil {
				t.Fatalf("%s partition %d offset %d: %v", topic, r.Partition, r.Offset, err)
			}
			d.key, d.start, d.end = w.Key, strconv.FormatInt(w.Window.Start, 10), strconv.FormatInt(w.Window.End, 10)
			d.target = strconv.Itoa(int(r.Partition)) // where Sluice put it; the Java side says where Kafka Streams would
		}
		if value != nil {
			if len(value) != 8 {
				t.Fatalf("%s partition %d offset %d: value of %d bytes, want an 8-byte int64", topic, r.Partition, r.Offset, len(value))
			}
			d.value = strconv.FormatInt(int64(binary.BigEndian.Uint64(value)), 10)
		}
		out = append(out, d)
	}
	sortDecoded(out)
	return out
}

// awaitWindows reads topic of windowed String keys and Int64 values until
// the latest value of each key and window equals want, or fails the test
// after a minute.
func (c *testCluster) awaitWindows(t *testing.T, topic string, keys serde.Serde[window.Windowed[string]], want map[string]string) {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[string]string{}
	for !maps.Equal(got, want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s after a minute: %v\n want %v", topic, got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			w, err := keys.Decode(r.Key)
			if err != nil {
				t.Errorf("%s partition %d offset %d: %v", topic, r.Partition, r.Offset, err)
				return
			}
			k := fmt.Sprintf("%s[%d,%d]", w.Key, w.Window.Start, w.Window.End)
			if r.Value == nil {
				delete(got, k)
				return
			}
			got[k] = int64Text(r.Value)
		})
	}
}

// kadmEnds returns the end offset of each partition of topic.
func kadmEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	m := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m, nil
}
