package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/topology"
)

func TestProcessIDPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := loadProcessID(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadProcessID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("process ID changed across loads: %v then %v", a, b)
	}
	if a == (processID{}) {
		t.Fatal("zero process ID")
	}
	if v := a.String()[14]; v != '4' {
		t.Fatalf("%v is not a version 4 UUID", a)
	}
	c, err := loadProcessID(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("two directories got the same process ID")
	}
	if err := os.WriteFile(filepath.Join(dir, processIDFile), []byte("not-a-uuid"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadProcessID(dir); err == nil || !strings.Contains(err.Error(), processIDFile) {
		t.Fatalf("corrupt process.id: got %v, want an error naming the file", err)
	}
}

func TestTaskOffsetsSnapshot(t *testing.T) {
	var o taskOffsets
	if s := o.snapshot(); len(s) != 0 {
		t.Fatalf("empty: %v", s)
	}
	o.set(taskID{0, 1}, 10)
	s1 := o.snapshot()
	o.set(taskID{0, 1}, offsetSumRunning)
	o.set(taskID{1, 0}, 5)
	if s1[taskID{0, 1}] != 10 || len(s1) != 1 {
		t.Fatalf("an earlier snapshot changed: %v", s1)
	}
	o.remove(taskID{0, 1})
	if s := o.snapshot(); len(s) != 1 || s[taskID{1, 0}] != 5 {
		t.Fatalf("after remove: %v", s)
	}
}

func TestExactlyOnceCommitIntervalDefault(t *testing.T) {
	topo := &topology.Topology{}
	for _, tc := range []struct {
		opts []Option
		want time.Duration
	}{
		{nil, 30 * time.Second},
		{[]Option{ProcessingGuarantee(ExactlyOnce)}, 100 * time.Millisecond},
		{[]Option{ProcessingGuarantee(ExactlyOnce), CommitInterval(time.Second)}, time.Second},
		{[]Option{CommitInterval(time.Second), ProcessingGuarantee(ExactlyOnce)}, time.Second},
	} {
		a, err := New(topo, append(tc.opts, ApplicationID("x"), Brokers("localhost:1"))...)
		if err != nil {
			t.Fatal(err)
		}
		if a.cfg.commitInterval != tc.want {
			t.Errorf("%d options: commit interval %v, want %v", len(tc.opts), a.cfg.commitInterval, tc.want)
		}
	}
	_, err := New(topo, ApplicationID("x"), Brokers("localhost:1"), ProcessingGuarantee(Guarantee(7)), NumStandbyReplicas(-1))
	for _, key := range []string{"ProcessingGuarantee", "NumStandbyReplicas"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("invalid %s: got %v", key, err)
		}
	}
}
