package task_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
)

// A task reads a global store through ReadOnly: reads reach the store,
// writes fail naming it, and Close leaves it open for its owner.
func TestReadOnlyGlobalStore(t *testing.T) {
	kv := state.NewInMemoryKeyValueStore("pages")
	if err := kv.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	ro := task.ReadOnly(kv)
	if v, ok, err := ro.Get([]byte("k")); err != nil || !ok || string(v) != "v" {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
	for name, err := range map[string]error{"Put": ro.Put([]byte("k"), []byte("w")), "Delete": ro.Delete([]byte("k"))} {
		if err == nil || !strings.Contains(err.Error(), "global store pages is read-only") {
			t.Errorf("%s = %v, want a read-only error naming the store", name, err)
		}
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := kv.Get([]byte("k")); err != nil || !ok {
		t.Errorf("the store after the view's Close: %v %v", ok, err)
	}
}

type failingIter struct{ state.KeyValueStore }

func (failingIter) IterErr() error { return errors.New("corrupt block") }

// The read-only view reports the iteration errors of the store below.
func TestReadOnlyForwardsIterErr(t *testing.T) {
	ro := task.ReadOnly(failingIter{state.NewInMemoryKeyValueStore("pages")})
	r, ok := ro.(state.IterErrReporter)
	if !ok {
		t.Fatal("the read-only view hides IterErrReporter")
	}
	if err := r.IterErr(); err == nil || err.Error() != "corrupt block" {
		t.Errorf("IterErr = %v, want the store's", err)
	}
	if err := task.ReadOnly(state.NewInMemoryKeyValueStore("m")).(state.IterErrReporter).IterErr(); err != nil {
		t.Errorf("IterErr of a store without iteration errors = %v", err)
	}
}
