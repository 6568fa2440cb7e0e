package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/runtime"
)

// firstSeen reads topic from its start in the background and records when
// each key first appears.
type firstSeen struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func watchKeys(t *testing.T, c *testCluster, topic string) *firstSeen {
	t.Helper()
	f := &firstSeen{seen: map[string]time.Time{}}
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			f.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				if _, ok := f.seen[string(r.Key)]; !ok {
					f.seen[string(r.Key)] = now
				}
			})
			f.mu.Unlock()
		}
	}()
	return f
}

// wait waits until key appears, and returns when it did.
func (f *firstSeen) wait(t *testing.T, key string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		at, ok := f.seen[key]
		f.mu.Unlock()
		if ok {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %q not in the output within %v", key, timeout)
		}
		<-tick.C
	}
}

// A static member killed with kill -9 and restarted with the same instance
// ID and state directory, within its session timeout, processes its tasks
// again within 5s (no wait for the session timeout, 45s by default), and
// the other member keeps its tasks.
func TestStaticMemberKill9Restart(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 2, input, output)
	appID := topic(t, "app")
	dir := t.TempDir()
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SLUICE_TEST_CHILD=wordcount", "TOPOLOGY=keyed", "INPUT="+input, "OUTPUT="+output,
			"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+dir, "INSTANCE_ID=killed")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	topo, err := keyedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	cmd := child()
	other := start(t, topo, append(childOptions(appID, c.brokers, t.TempDir()), runtime.InstanceID("other"))...)
	waitTasks(t, []*instance{other}, 1)
	mine, _ := other.app.Tasks()
	childPartition := int32(1)
	if mine[0] == "0_1" {
		childPartition = 0
	}
	seen := watchKeys(t, c, output)
	produce := func(key string, partition int32) {
		cl := c.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: input, Partition: partition, Key: []byte(key), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		produce(fmt.Sprintf("before-%d", i), childPartition)
		seen.wait(t, fmt.Sprintf("before-%d", i), 2*time.Minute)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v before it was killed", err)
	}
	restart := time.Now()
	cmd = child()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	produce("after", childPartition)
	took := seen.wait(t, "after", time.Minute).Sub(restart)
	t.Logf("static member kill -9 and restart: processing again %v after the restart (real broker: %v)", took, c.real)
	if took > 5*time.Second {
		t.Errorf("the restarted static member processed again after %v, want within 5s", took)
	}
	if got, _ := other.app.Tasks(); !slices.Equal(got, mine) {
		t.Errorf("the other member's tasks %v, want %v as before the restart", got, mine)
	}
	other.stop(t)
}
