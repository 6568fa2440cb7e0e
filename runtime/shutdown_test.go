package runtime_test

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/connectors"
)

// shutdownBound is the ShutdownTimeout of the instance stopped by SIGTERM
// in TestCrashThenSIGTERM, and exitSlack what the process may take beyond
// it to exit (the race detector's exit work on a loaded machine).
const (
	shutdownBound = 5 * time.Second
	exitSlack     = 5 * time.Second
)

// An instance is killed with kill -9 in the middle of its work; another
// starts on the same state directory and application ID and gets SIGTERM
// while it cannot have finished taking over: in the middle of the
// rebalance (the killed member holds it up until its session times out),
// or in the middle of restoring a store (its state directory deleted, the
// changelog's fetches held back on kfake). It exits with status 0 within
// its ShutdownTimeout, without a panic, and a restart ends with the exact
// counts: an abandoned restore resumes from the checkpoint.
func TestCrashThenSIGTERM(t *testing.T) {
	for _, tc := range []struct {
		name string
		// deadSession is the killed instance's session timeout: how long
		// the group waits for it before the rebalance can complete.
		deadSession time.Duration
		// signalOn is the log line of the second instance after which
		// the SIGTERM comes.
		signalOn string
		// joined waits, after that line, for the second instance to be
		// a member of the group with the killed one, in a rebalance that
		// cannot complete until the killed one's session times out.
		joined bool
		// restore deletes the state directory before the second
		// instance starts, so that it restores the whole changelog, and
		// stalls the changelog's fetches on kfake.
		restore bool
	}{
		{name: "mid-rebalance", deadSession: 20 * time.Second, signalOn: "msg=running", joined: true},
		{name: "mid-restore", deadSession: 6 * time.Second, signalOn: `msg="restoring store"`, restore: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *testCluster
			var embedded *connectors.Embedded
			if os.Getenv("KAFKA_BROKERS") != "" {
				c = newCluster(t)
			} else {
				e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(e.Close)
				embedded, c = e, &testCluster{brokers: e.Brokers()}
			}
			input, output := topic(t, "lines"), topic(t, "counts")
			c.create(t, 2, input, output)
			appID := topic(t, "app")
			dir := t.TempDir()
			want := map[string]int64{}
			c.produce(t, input, lines(0, 10000, 211, want)...)
			env := []string{"SLUICE_TEST_CHILD=wordcount", "INPUT=" + input, "OUTPUT=" + output,
				"APP_ID=" + appID, "BROKERS=" + strings.Join(c.brokers, ","), "STATE_DIR=" + dir}

			// The first instance, killed in the middle of its work.
			first := exec.Command(os.Args[0], "-test.run=^$")
			first.Env = append(os.Environ(), append(env, "SESSION_TIMEOUT="+tc.deadSession.String())...)
			first.Stderr = os.Stderr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			// Killed once its first sub-topology has consumed and committed
			// every line: at-least-once, lines it processed and did not
			// commit would be split into words again by the next owner, and
			// the repartition topic would hold their words twice (so would
			// Kafka Streams'); the counting sub-topology's own state is
			// what a crash must not double-apply.
			c.counts(t, output, 2*time.Minute, countedOver(3000))
			waitCommitted(t, c, appID, input)
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			var ee *exec.ExitError
			if err := first.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the first instance ended with %v before it was killed", err)
			}
			release := func() {}
			if tc.restore {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if embedded != nil {
					release = stallFetchPartition(t, embedded, appID+"-counts-changelog", -1)
					defer release()
				}
			}

			// The second instance, stopped by SIGTERM.
			second := exec.Command(os.Args[0], "-test.run=^$")
			second.Env = append(os.Environ(), append(env, "SIGNALS=1", "LOG=1", "SESSION_TIMEOUT=6s",
				"SHUTDOWN_TIMEOUT="+shutdownBound.String())...)
			logs := watchStderr(t, second, tc.signalOn)
			if err := second.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-logs.matched:
			case <-time.After(2 * time.Minute):
				_ = second.Process.Kill()
				t.Fatalf("the second instance did not log %q within two minutes; its log:\n%s", tc.signalOn, logs.String())
			}
			if tc.joined {
				waitGroupMembers(t, c, appID, 2)
			}
			if err := second.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()
			exited := make(chan error, 1)
			go func() { exited <- second.Wait() }()
			select {
			case err := <-exited:
				took := time.Since(signalled)
				if err != nil {
					t.Errorf("exit after SIGTERM: %v, want status 0", err)
				}
				if took > shutdownBound+exitSlack {
					t.Errorf("exited %v after SIGTERM, want within the ShutdownTimeout %v (and %v to exit)", took, shutdownBound, exitSlack)
				}
			case <-time.After(2 * time.Minute):
				_ = second.Process.Kill()
				<-exited
				t.Errorf("still running two minutes after SIGTERM")
			}
			release()
			if s := logs.String(); strings.Contains(s, "panic") || t.Failed() {
				t.Fatalf("the second instance's log:\n%s", s)
			} else if testing.Verbose() {
				t.Logf("the second instance's log:\n%s", s)
			}

			// A restart counts every input exactly once, the input before
			// the crash and more since.
			in := start(t, wordCount(t, input, output), childOptions(appID, c.brokers, dir)...)
			c.produce(t, input, lines(10000, 2000, 211, want)...)
			if got, _ := c.counts(t, output, 2*time.Minute, equalCounts(want)); !maps.Equal(got, want) {
				t.Fatalf("after the restart: %s\nthe second instance's log:\n%s", diffCounts(got, want), logs.String())
			}
			in.stop(t)
		})
	}
}

// waitCommitted waits until group has committed the end offset of every
// partition of topic.
func waitCommitted(t *testing.T, c *testCluster, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		committed, cerr := adm.FetchOffsets(ctx, group)
		if err == nil && cerr == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if c, ok := committed.Lookup(o.Topic, o.Partition); !ok || c.At < o.Offset {
					done = false
				}
			})
			if done {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("group %s did not commit all of %s within two minutes: %v %v", group, topic, err, cerr)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker: commits have nothing to wait on
	}
}

// waitGroupMembers waits until group has n members.
func waitGroupMembers(t *testing.T, c *testCluster, group string, n int) {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil && len(gs[group].Members) >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("group %s did not reach %d members within a minute: %v, %+v", group, n, err, gs[group])
		}
		time.Sleep(50 * time.Millisecond) // polling the broker: a join has nothing to wait on
	}
}

// stderrWatch collects a child's stderr and closes matched at the first
// line containing a given string.
type stderrWatch struct {
	mu      sync.Mutex
	sb      strings.Builder
	matched chan struct{}
}

func (w *stderrWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sb.String()
}

func watchStderr(t *testing.T, cmd *exec.Cmd, match string) *stderrWatch {
	t.Helper()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &stderrWatch{matched: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pipe)
		seen := false
		for sc.Scan() {
			w.mu.Lock()
			w.sb.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if !seen && strings.Contains(sc.Text(), match) {
				seen = true
				close(w.matched)
			}
		}
	}()
	return w
}
