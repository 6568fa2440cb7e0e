package runtime_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// A task whose DB holds a persistent store without a changelog
// (DisableLogging) commits its local state with a sync before the group's
// offsets move on (taskState.unlogged): nothing restores such a store after
// a crash, so offsets committed past unsynced state would lose its
// updates. While the state directory's WAL syncs hang, the group's
// committed offsets must stay put. (Tasks whose stores all have changelogs
// sync in the background: their changelogs are the durable record.)
func TestUnloggedStoreSyncsBeforeOffsetsCommit(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "words"), topic(t, "counts")
	c.create(t, 1, input, output)
	b := dsl.NewBuilder()
	dsl.FromTopic(b, input, serde.String, serde.String).GroupByKey().
		Count(dsl.Materialized(dsl.StoreOptions{Name: "counts", DisableLogging: true})).
		ToStream().To(output, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var hang atomic.Bool
	release := make(chan struct{})
	var hung atomic.Int64
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if hang.Load() && syncs(op.Kind) && strings.HasPrefix(op.Path, dir) && strings.HasSuffix(op.Path, ".log") {
			hung.Add(1)
			<-release
		}
		return nil
	}))
	appID := topic(t, "app")
	_, _ = runApp(t, topo, fs, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
		runtime.CommitInterval(20*time.Millisecond))
	t.Cleanup(func() { hang.Store(false); close(release) })
	adm := kadm.NewClient(c.client(t))
	committed := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, appID)
		if err != nil {
			return -1
		}
		o, ok := offs.Lookup(input, 0)
		if !ok {
			return -1
		}
		return o.At
	}
	c.produceKeys(t, input, "a", "b", "c")
	deadline := time.Now().Add(time.Minute)
	for committed() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("offsets never reached 3 (at %d)", committed())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hang.Store(true)
	c.produceKeys(t, input, "a", "b", "c")
	// Wait until a WAL sync hangs: from then on nothing the task committed
	// locally after it is durable.
	for hung.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no WAL sync after the second batch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	soon := time.Now().Add(10 * time.Second)
	for time.Now().Before(soon) {
		if at := committed(); at >= 6 {
			t.Fatalf("group offset committed at %d while the task DB's WAL sync of that state hangs (%d hung syncs): a machine crash now loses the counts of the non-logged store for input the group will never redeliver", at, hung.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
