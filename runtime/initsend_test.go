package runtime_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

// A processor's Init runs while its task is being restored, off the poll
// loop; what it writes to its logged store and forwards to a sink is sent
// once the task is activated, inside the transaction of its first commit,
// and its store write stays in the task's pending state until that
// commit. Here Init announces a task once, when its store has no marker
// yet, and the first transaction is aborted: the revived task's Init finds
// no marker (the local state did not keep the aborted write) and announces
// again. Each task's announcement and marker reach the output and the
// changelog (read_committed) exactly once.
func TestInitSendsReachOutputOnce(t *testing.T) {
	c := newCluster(t)
	in, out, app := topic(t, "in"), topic(t, "out"), topic(t, "app")
	const partitions = 3
	c.create(t, partitions, in, out)

	b := dsl.NewBuilder()
	seen := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "seen"}, serde.String, serde.String)
	dsl.Process(dsl.FromTopic(b, in, serde.String, serde.String), func() operators.Processor[string, string, string, string] {
		var store *state.KV[string, string]
		return &operators.ProcessorFuncs[string, string, string, string]{
			InitFunc: func(ctx operators.ProcessorContext[string, string]) (err error) {
				if store, err = seen.Open(ctx); err != nil {
					return err
				}
				k := "init-" + ctx.TaskID()
				if _, ok, err := store.Get(k); err != nil || ok {
					return err
				}
				if err := store.Put(k, "1"); err != nil {
					return err
				}
				return ctx.Forward(operators.Record[string, string]{Key: k, Value: "init", Timestamp: time.Now().UnixMilli()})
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				if err := store.Put(r.Key, r.Value); err != nil {
					return err
				}
				return ctx.Forward(r)
			},
		}
	}, dsl.ConnectStores(seen)).To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	const n = 30
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprint("k", i))
	}
	c.produceKeys(t, in, keys...)
	var aborted atomic.Bool
	hook := func(stage string) error {
		if stage == "offsets" && aborted.CompareAndSwap(false, true) {
			return runtime.ErrInjected
		}
		return nil
	}
	inst := startHooked(t, topo, hook, eosOptions(c, app)...)
	got := c.readCommitted(t, out, n+partitions, time.Minute)
	inst.stop(t)
	if !aborted.Load() {
		t.Fatal("no transaction was aborted")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var inits []string
	for _, r := range readCommitted(t, ctx, c, out) {
		if string(r.Value) == "init" {
			inits = append(inits, string(r.Key))
		}
	}
	want := []string{"init-0_0", "init-0_1", "init-0_2"}
	slices.Sort(inits)
	if !slices.Equal(inits, want) {
		t.Errorf("Init records in the output (read_committed) %v, want each task's once %v (read %d records first)", inits, want, len(got))
	}
	var logged []string
	for _, r := range readCommitted(t, ctx, c, app+"-seen-changelog") {
		if k := string(r.Key); len(k) > 5 && k[:5] == "init-" {
			logged = append(logged, k)
		}
	}
	slices.Sort(logged)
	if !slices.Equal(logged, want) {
		t.Errorf("Init writes in the store's changelog %v, want each task's once %v", logged, want)
	}
}
