package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/runtime"
)

// changelogTransactions reads every partition of a changelog written by
// transactions of one producer, read_uncommitted with the transaction
// markers, and returns per partition the data records of the last
// committed transaction (those between the marker before it and its
// commit marker) and the records of all committed transactions.
func changelogTransactions(t *testing.T, c *testCluster, topic string) (last, committed map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(c.client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		parts[o.Partition] = kgo.NewOffset().AtStart()
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl := c.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond))
	last, committed = map[int32]int64{}, map[int32]int64{}
	open := map[int32]int64{} // data records since the partition's last marker
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: partitions left %v", topic, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				open[r.Partition]++
				return
			}
			// A marker's key: version (int16), type (int16: 0 abort, 1 commit).
			if len(r.Key) >= 4 && r.Key[3] == 1 {
				last[r.Partition] = open[r.Partition]
				committed[r.Partition] += open[r.Partition]
			}
			open[r.Partition] = 0
		})
	}
	return last, committed
}

// The test: after kill -9 of an exactly-once instance in the
// middle of its work, the restart keeps its local state and restores at
// most the changelog records of each partition's last commit (the local
// state applies after the transaction commits, without a sync, so the kill
// may have cost it that commit), never the whole store, which Kafka
// Streams wipes and restores after an unclean stop under exactly-once. The
// counts stay exactly once: every update of every key once, in order, read
// committed.
func TestExactlyOnceKill9RestoresAtMostTheLastCommit(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "words"), topic(t, "counts")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	want := map[string]int64{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_TEST_CHILD=wordcount", "TOPOLOGY=keyed", "GUARANTEE=eos", "INPUT="+input,
		"OUTPUT="+output, "APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	// Rounds of input, each committed before the next, so that the
	// changelog holds many transactions; then a large round, and the kill
	// once its first commit is visible: in the middle of its work.
	fed := 0
	for range 4 {
		keyedInput(t, c, input, fed, 2000, 3000, want)
		fed += 2000
		if n := committedCounts(t, c, output, int64(fed)-1, 2*time.Minute); n < int64(fed) {
			t.Fatalf("the child committed counts of %d of the %d records", n, fed)
		}
	}
	// The large round at a steady rate (a chunk every 10ms, about a
	// second in all: some ten commits), killed a third of the way in.
	var rs []*kgo.Record
	for i := range 20000 {
		k := fmt.Sprintf("k%d", (fed+i)%3000)
		want[k]++
		rs = append(rs, &kgo.Record{Key: []byte(k), Value: []byte("x")})
	}
	produced := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.DefaultProduceTopic(input))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for len(rs) > 0 {
			<-tick.C
			chunk := rs[:min(200, len(rs))]
			rs = rs[len(chunk):]
			if err := cl.ProduceSync(context.Background(), chunk...).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()
	if n := committedCounts(t, c, output, int64(fed)+7000, 2*time.Minute); n <= int64(fed)+7000 {
		t.Fatalf("the child committed counts of %d records, want more than %d", n, fed+7000)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v before it was killed", err)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	changelog := appID + "-counts-changelog"
	last, committed := changelogTransactions(t, c, changelog)
	var bound, total int64
	for p, n := range last {
		bound += n
		total += committed[p]
	}
	t.Logf("changelog %s after the kill: %d committed records (by partition %v), last commits %v", changelog, total, committed, last)
	if total == 0 || bound >= total {
		t.Fatalf("the child committed %d changelog records, its last commits %d: the kill did not land mid-work", total, bound)
	}

	reg := prometheus.NewRegistry()
	in := start(t, keyedCount(t, input, output), eosOptions(c, appID, runtime.StateDir(dir), runtime.Registerer(reg),
		runtime.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))...)
	checkExactlyOnce(t, c.updates(t, output, want, 2*time.Minute), want)
	in.stop(t)
	n := restored(t, reg)
	t.Logf("restored %v changelog records after kill -9 (the last commits held %d, the changelog %d)", n, bound, total)
	if n > float64(bound) {
		t.Errorf("restored %v changelog records after kill -9, want at most the %d of the last commits (of %d committed)", n, bound, total)
	}
}

// committedCounts reads topic read_committed (string keys, int64 counts)
// until the latest counts add up to more than n or timeout, and returns
// their sum.
func committedCounts(t *testing.T, c *testCluster, topic string, n int64, timeout time.Duration) int64 {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	latest := map[string]int64{}
	for sum(latest) <= n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if len(r.Value) == 8 {
				latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
			}
		})
	}
	return sum(latest)
}
