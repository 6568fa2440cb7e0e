package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/runtime"
)

// metricSum sums the samples of metric name in reg (counters and gauges).
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// Failover to a standby: two instances with NumStandbyReplicas(1) and a
// count per key; the instance running the task (a child process) is
// killed with kill -9 while it processes. The other instance, which kept
// the task's standby, takes the task over after the session timeout,
// restoring at most what its standby had not applied when the active
// died, and the counts are exact.
func TestStandbyFailoverAfterKill9(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	appID := topic(t, "app")
	changelog := appID + "-counts-changelog"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_TEST_CHILD=wordcount", "TOPOLOGY=keyed", "INPUT="+input, "OUTPUT="+output,
		"APP_ID="+appID, "BROKERS="+strings.Join(c.brokers, ","), "STATE_DIR="+t.TempDir(), "STANDBYS=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	cl := c.client(t, kgo.DefaultProduceTopic(input))
	want := map[string]int64{}
	produce := func(from, n int) {
		t.Helper()
		rs := make([]*kgo.Record, n)
		for i := range rs {
			k := fmt.Sprintf("k%d", (from+i)%13)
			want[k]++
			rs[i] = &kgo.Record{Key: []byte(k), Value: []byte("x")}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 500)
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("before the standby: %s", diffCounts(got, want))
	}

	topo, err := keyedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	standby := start(t, topo, append(childOptions(appID, c.brokers, t.TempDir()),
		runtime.NumStandbyReplicas(1), runtime.Registerer(reg))...)
	deadline := time.Now().Add(2 * time.Minute)
	for metricSum(t, reg, "sluice_standby_records_applied_total") < float64(changelogRecords(t, c, changelog)) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby applied %v of the changelog's %d records", metricSum(t, reg, "sluice_standby_records_applied_total"),
				changelogRecords(t, c, changelog))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ids, _ := standby.app.Tasks(); len(ids) != 0 {
		t.Fatalf("the standby's instance runs %v, want no task: the child's state is caught up", ids)
	}

	// More input; the kill lands once the child has processed some of it.
	before := maps.Clone(want)
	produce(500, 3000)
	c.counts(t, output, time.Minute, func(got map[string]int64) bool {
		for k, n := range got {
			if n > before[k] {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v before it was killed", err)
	}
	applied := metricSum(t, reg, "sluice_standby_records_applied_total")
	killed := time.Now()

	waitTasks(t, []*instance{standby}, 1)
	if got, _ := c.counts(t, output, 2*time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after the failover: %s", diffCounts(got, want))
	}
	end := changelogRecords(t, c, changelog)
	restored := metricSum(t, reg, "sluice_restored_records_total")
	t.Logf("failover: changelog %d records, the standby had applied %v at the kill, the promoted task restored %v; exact counts %v after the kill (real broker: %v)",
		end, applied, restored, time.Since(killed), c.real)
	if restored > float64(end)-applied {
		t.Errorf("the promoted task restored %v records, more than the standby's lag at the kill (%d - %v)", restored, end, applied)
	}
	if restored >= float64(end) {
		t.Errorf("the promoted task restored the whole changelog (%v records)", restored)
	}
	if n := metricSum(t, reg, "sluice_standby_promotions_total"); n != 1 {
		t.Errorf("promotions: %v, want 1", n)
	}
	standby.stop(t)
}
