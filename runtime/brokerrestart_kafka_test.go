//go:build kafka

package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/runtime"
)

// scriptBroker is a real Kafka broker of the test's own, run by
// scripts/kafka.sh in a directory of the test, so that the test can stop
// (SIGTERM or SIGKILL) and restart it without disturbing the broker other
// tests share (KAFKA_BROKERS).
type scriptBroker struct {
	script  string
	dir     string
	brokers []string
}

func startScriptBroker(t *testing.T) *scriptBroker {
	t.Helper()
	script, err := filepath.Abs("../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptBroker{script: script, dir: filepath.Join(t.TempDir(), "kafka")}
	out := b.run(t, "start")
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "KAFKA_BROKERS="); ok {
			b.brokers = strings.Split(v, ",")
		}
	}
	if len(b.brokers) == 0 {
		t.Fatalf("kafka.sh start printed no KAFKA_BROKERS: %s", out)
	}
	t.Cleanup(func() { _ = exec.Command(b.script, "stop", b.dir).Run() })
	return b
}

// run runs kafka.sh cmd on the broker's directory.
func (b *scriptBroker) run(t *testing.T, cmd string) string {
	t.Helper()
	c := exec.Command(b.script, cmd, b.dir)
	c.Stderr = os.Stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("kafka.sh %s %s: %v (broker log: %s/broker.log)", cmd, b.dir, err, b.dir)
	}
	return string(out)
}

// dialProbe dials addr every 20 ms from now until a dial's outcome is
// want (true: connected), and returns the time of that dial: when the
// broker's listener closed (want false) or opened (true), to measure
// the App's reactions from.
func dialProbe(addr string, want bool) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		for {
			at := time.Now()
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			if (err == nil) == want {
				ch <- at
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return ch
}

// outputLog reads the output topic read_committed for as long as the test
// runs: every count update, per key, in order.
type outputLog struct {
	mu      sync.Mutex
	updates map[string][]int64
	total   int
	bad     []string
}

func readOutput(t *testing.T, brokers []string, topic string) *outputLog {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	o := &outputLog{updates: map[string][]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			o.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				o.total++
				if len(r.Value) != 8 {
					o.bad = append(o.bad, fmt.Sprintf("%s/%d@%d: %d-byte value", r.Topic, r.Partition, r.Offset, len(r.Value)))
					return
				}
				o.updates[string(r.Key)] = append(o.updates[string(r.Key)], int64(binary.BigEndian.Uint64(r.Value)))
			})
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return o
}

func (o *outputLog) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

// exact reports whether the latest count of each of keys is want.
func (o *outputLog) exact(keys []string, want int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range keys {
		u := o.updates[k]
		if len(u) == 0 || u[len(u)-1] != want {
			return false
		}
	}
	return true
}

// brokerFaultInstance is one App of the test, with its logs.
type brokerFaultInstance struct {
	app  *runtime.App
	logs *logCapture
	done chan error
}

// The broker is stopped under running Apps, with SIGTERM and later with
// SIGKILL (SIGTERM only under exactly-once: see below), and restarted
// after a few seconds each time: the Apps log a
// warning naming the brokers within 5 s of losing them, report the outage
// (BrokersReachable), log its end once, resume by themselves, never stop,
// and the final count of every key is exact (at-least-once), or every
// update 1..n is there exactly once (exactly-once). Figures are logged
// (go test -v).
func TestBrokerRestartExactCounts(t *testing.T) {
	b := startScriptBroker(t)
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) { brokerRestart(t, b, g) })
	}
}

func brokerRestart(t *testing.T, b *scriptBroker, g runtime.Guarantee) {
	const (
		records  = 200_000
		keys     = 100
		produce  = 40 * time.Second // the input is written over this span
		outage   = 5 * time.Second  // how long the broker stays down
		warnedBy = 5 * time.Second  // the bound on the warning
	)
	c := &testCluster{brokers: b.brokers, real: true}
	input, output := topic(t, "in"), topic(t, "counts")
	c.create(t, 4, input, output)
	topo := countByKey(t, input, output)
	appID := topic(t, "app")
	var insts []*brokerFaultInstance
	for i := range 2 {
		logs := newLogCapture()
		app, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(b.brokers...), runtime.StateDir(t.TempDir()),
			runtime.ProcessingGuarantee(g), runtime.CacheMaxBytes(0), runtime.Logger(slog.New(logs)),
			runtime.StartupTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		in := &brokerFaultInstance{app: app, logs: logs, done: make(chan error, 1)}
		go func() { in.done <- app.Run(context.Background()) }()
		t.Cleanup(func() {
			_ = app.Close()
			if t.Failed() {
				logs.dump(t, fmt.Sprintf("instance %d", i), 300)
			}
		})
		insts = append(insts, in)
	}
	out := readOutput(t, b.brokers, output)

	// The input: records keys k00..k99 in turn, written over `produce`,
	// through the outages (the producer retries too).
	prod := c.client(t, kgo.DefaultProduceTopic(input))
	var produceErr atomic.Pointer[error]
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		const step = 20 * time.Millisecond
		per := records / int(produce/step)
		tick := time.NewTicker(step)
		defer tick.Stop()
		for i := 0; i < records; {
			<-tick.C
			for j := 0; j < per && i < records; j, i = j+1, i+1 {
				r := &kgo.Record{Key: fmt.Appendf(nil, "k%02d", i%keys), Value: []byte("v")}
				prod.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
					if err != nil {
						produceErr.CompareAndSwap(nil, &err)
					}
				})
			}
		}
		if err := prod.Flush(context.Background()); err != nil {
			produceErr.CompareAndSwap(nil, &err)
		}
	}()

	stillRunning := func(when string) {
		t.Helper()
		for i, in := range insts {
			select {
			case err := <-in.done:
				t.Fatalf("%s: instance %d: Run returned %v", when, i, err)
			default:
			}
			if s := in.app.State(); !s.IsRunningOrRebalancing() {
				t.Fatalf("%s: instance %d: State %v", when, i, s)
			}
		}
	}
	progress := func(n int, timeout time.Duration, what string) {
		t.Helper()
		base := out.count()
		waitFor(t, timeout, fmt.Sprintf("%d more output records (%s)", n, what), func() bool { return out.count() >= base+n })
	}

	progress(5000, 2*time.Minute, "before the first stop")
	stops := []string{"halt", "kill"}
	if g == runtime.ExactlyOnce {
		// Kafka 4.3.1 can leave a transaction hanging when it is killed
		// (SIGKILL) mid-transaction: in CI the group's offsets stayed
		// unstable for good, held by an instance's own producer whose
		// transaction no coordinator knew after the restart, and every
		// instance failed after the bounded wait naming it (docs/chaos.md,
		// "Known issue"). Under exactly-once the broker is stopped with
		// SIGTERM only.
		stops = stops[:1]
	}
	for _, how := range stops {
		stillRunning("before " + how)
		closed := dialProbe(b.brokers[0], false)
		stopped := time.Now()
		b.run(t, how)
		gone := time.Now()
		// The broker is lost when its listener closes: on SIGTERM, Kafka
		// answers through its controlled shutdown first.
		lost := <-closed
		for i, in := range insts {
			w := in.logs.wait(t, "brokers unreachable", stopped, warnedBy+time.Until(lost))
			if d := w.at.Sub(lost); d > warnedBy {
				t.Errorf("%s: instance %d warned %v after the broker's listener closed, want within %v", how, i, d, warnedBy)
			}
			if !strings.Contains(w.attrs["brokers"], b.brokers[0]) || w.attrs["err"] == "" {
				t.Errorf("%s: instance %d: warning %v does not name the broker %s and the error", how, i, w.attrs, b.brokers[0])
			}
			t.Logf("%s: instance %d warned %v after the listener closed (%v after the signal; the process exited %v after it): %s",
				how, i, w.at.Sub(lost).Round(time.Millisecond), w.at.Sub(stopped).Round(time.Millisecond), gone.Sub(stopped).Round(time.Millisecond), w.attrs["err"])
			ok, since, err := in.app.BrokersReachable()
			if ok || err == nil || since.After(w.at) {
				t.Errorf("%s: instance %d: BrokersReachable during the outage = %v, %v, %v; want false since the outage began, with its error", how, i, ok, since, err)
			}
		}
		stillRunning("during the outage after " + how)
		<-time.After(time.Until(gone.Add(outage)))
		listening := dialProbe(b.brokers[0], true)
		b.run(t, "restart")
		back := <-listening
		for i, in := range insts {
			r := in.logs.wait(t, "brokers reachable again", gone, time.Minute)
			if n := len(in.logs.find("brokers reachable again", gone)); n != 1 {
				t.Errorf("%s: instance %d logged the recovery %d times, want once", how, i, n)
			}
			waitFor(t, time.Minute, "BrokersReachable after the restart", func() bool { ok, _, _ := in.app.BrokersReachable(); return ok })
			t.Logf("%s: instance %d: reachable again %v after the broker's listener opened (outage %s)", how, i, r.at.Sub(back).Round(time.Millisecond), r.attrs["outage"])
		}
		progress(5000, 2*time.Minute, "after the restart")
		t.Logf("%s: processing resumed: 5000 output records %v after the broker's listener opened", how, time.Since(back).Round(time.Millisecond))
	}

	<-produced
	if p := produceErr.Load(); p != nil {
		t.Fatalf("producing the input: %v", *p)
	}
	names := make([]string, keys)
	for k := range keys {
		names[k] = fmt.Sprintf("k%02d", k)
	}
	want := int64(records / keys)
	waitFor(t, 3*time.Minute, "every key's count exact", func() bool { return out.exact(names, want) })
	stillRunning("at the end")
	for i, in := range insts {
		if err := in.app.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-in.done; err != nil {
			t.Errorf("instance %d: Run = %v", i, err)
		}
	}

	for i, in := range insts {
		warns := map[string]int{}
		in.logs.mu.Lock()
		for _, r := range in.logs.records {
			if r.level >= slog.LevelWarn {
				warns[r.msg]++
			}
		}
		in.logs.mu.Unlock()
		t.Logf("instance %d: warnings logged: %v", i, warns)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.bad) > 0 {
		t.Fatalf("bad output records: %v", out.bad)
	}
	repeats := 0
	for _, k := range names {
		u := out.updates[k]
		seen := map[int64]bool{}
		for _, v := range u {
			if v < 1 || v > want {
				t.Errorf("key %s: count %d outside 1..%d (over-counted)", k, v, want)
			}
			if seen[v] {
				repeats++
			}
			seen[v] = true
		}
		if int64(len(seen)) != want {
			t.Errorf("key %s: %d distinct counts, want every one of 1..%d (an update lost)", k, len(seen), want)
		}
		if g == runtime.ExactlyOnce {
			for i, v := range u {
				if v != int64(i+1) {
					t.Errorf("key %s: update %d is %d, want %d: exactly-once broken", k, i, v, i+1)
					break
				}
			}
		}
	}
	t.Logf("%v: %d input records, %d output records, %d repeated updates (at-least-once may repeat)", g, records, out.total, repeats)
}
