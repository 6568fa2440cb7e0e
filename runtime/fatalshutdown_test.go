package runtime_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A fatal processing error (an undecodable value, with the default
// fail-on-deserialization-error policy) shuts the App down within
// ShutdownTimeout too: with the brokers holding back every LeaveGroup
// (kfake), Run returns the error at the bound instead of waiting for the
// client's leave request to time out and retry.
func TestFatalErrorShutdownIsBounded(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.Int64).To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	const bound = 3 * time.Second
	in := start(t, topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.ShutdownTimeout(bound))
	waitTasks(t, []*instance{in}, 1)

	stop := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stop) }) }
	defer release()
	e.Cluster().ControlKey(int16(kmsg.LeaveGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		e.Cluster().SleepControl(func() { <-stop })
		return nil, nil, false
	})

	c.produce(t, input, "not an int64") // fails to decode: fatal
	produced := time.Now()
	select {
	case <-in.finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within two minutes of a fatal error")
	}
	// The bound, and slack for the poll that meets the record and for a
	// loaded machine.
	if took := time.Since(produced); took > bound+3*time.Second {
		t.Errorf("Run returned %v after the fatal record was produced, want within ShutdownTimeout %v", took, bound)
	}
	err = <-in.done
	if err == nil || !strings.Contains(err.Error(), input) {
		t.Fatalf("Run = %v, want the deserialization error naming topic %s", err, input)
	}
}

// A Close while a commit of the poll loop cannot finish (the brokers hold
// back every OffsetCommit, as a rebalance held up by a crashed member
// does) returns within ShutdownTimeout, with nil or the error that says
// the final commit did not finish in time, not the loop's abandoned
// commit's "commit offsets: client closed".
func TestShutdownDuringStuckCommitNamesTheTimeout(t *testing.T) {
	e, c := embeddedCluster(t)
	input, output := topic(t, "in"), topic(t, "out")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).To(output, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	const bound = 3 * time.Second
	in := start(t, topo, runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.ShutdownTimeout(bound), runtime.CommitInterval(10*time.Millisecond))
	waitTasks(t, []*instance{in}, 1)

	stop := make(chan struct{})
	held := make(chan struct{})
	var once, heldOnce sync.Once
	release := func() { once.Do(func() { close(stop) }) }
	defer release()
	e.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		heldOnce.Do(func() { close(held) })
		e.Cluster().SleepControl(func() { <-stop })
		return nil, nil, false
	})
	c.produce(t, input, "v")
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("no offset commit within a minute")
	}
	closed := time.Now()
	go func() { _ = in.app.Close() }()
	select {
	case <-in.finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within two minutes of Close")
	}
	if took := time.Since(closed); took > bound+3*time.Second {
		t.Errorf("Run returned %v after Close, want within ShutdownTimeout %v", took, bound)
	}
	// A shutdown asked for returns nil even when its final commit is
	// abandoned at the bound (logged; the input is processed again).
	if err := <-in.done; err != nil {
		t.Errorf("Run = %v, want nil after Close", err)
	}
}
