package task_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// A session store written before retention became spec.Retention + 1ms,
// with the default segment interval, must still open: for an odd
// retention in ms above 120s the default interval (retention/2) moves by
// 1ms and the store refuses its own entries.
func TestSessionStoreReopensAfterRetentionPlus1ms(t *testing.T) {
	spec := &topology.StoreSpec{Name: "s", Kind: topology.Session, Retention: 5*time.Minute + 1*time.Millisecond}
	base := state.NewInMemoryKeyValueStore("s")
	old, err := state.NewSessionStore(base, state.SessionStoreOptions{Retention: spec.Retention})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	if err := old.Put([]byte("k"), now, now, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := task.WrapStore(spec, base); err != nil {
		t.Errorf("reopen with the new retention: %v", err)
	}
}
