package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// processID identifies an instance's state directory: created once, kept
// in <StateDir>/<application ID>/process.id, so an instance restarted on
// the same directory has the same ID (Kafka Streams' process ID, kept in
// its state directory's kafka-streams-process-metadata).
type processID [16]byte

// String is the ID as a UUID.
func (p processID) String() string {
	h := hex.EncodeToString(p[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// parseProcessID parses String's form.
func parseProcessID(s string) (processID, error) {
	var p processID
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
	if err != nil || len(b) != len(p) {
		return p, fmt.Errorf("%q is not a process ID (a UUID)", s)
	}
	copy(p[:], b)
	return p, nil
}

const processIDFile = "process.id"

// loadProcessID reads the directory's process ID, or creates one (a random
// version 4 UUID) when it has none. The caller holds the directory's lock.
func loadProcessID(dir string) (processID, error) {
	path := filepath.Join(dir, processIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		p, perr := parseProcessID(string(b))
		if perr == nil {
			return p, nil
		}
		return p, fmt.Errorf("sluice: state directory file %s: %w (delete it to get a new one)", path, perr)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return processID{}, fmt.Errorf("sluice: read %s: %w", path, err)
	}
	var p processID
	if _, err := rand.Read(p[:]); err != nil {
		return p, err
	}
	p[6] = p[6]&0x0f | 0x40
	p[8] = p[8]&0x3f | 0x80
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(p.String()+"\n"), 0o644); err != nil {
		return p, fmt.Errorf("sluice: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return p, fmt.Errorf("sluice: write %s: %w", path, err)
	}
	return p, nil
}

// offsetSumRunning is the offset sum of a task running as active here:
// caught up by definition (Kafka Streams' Task.LATEST_OFFSET).
const offsetSumRunning = -2

// taskOffsets holds, per task with local state on this instance (active,
// standby, or left behind on disk), the sum over its changelog partitions
// of the offsets its local state reflects, or offsetSumRunning. The
// member metadata sent when the instance joins the group carries a
// snapshot, from which the group leader computes each instance's lag per
// task. Writers (commits, standby applies, the start-up scan) call set and
// remove; the group goroutine reads snapshot without taking a.mu.
type taskOffsets struct {
	mu   sync.Mutex
	cur  map[taskID]int64
	snap atomic.Pointer[map[taskID]int64]
}

// set records a task's offset sum.
func (o *taskOffsets) set(id taskID, sum int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil {
		o.cur = map[taskID]int64{}
	}
	if old, ok := o.cur[id]; ok && old == sum {
		return
	}
	o.cur[id] = sum
	c := maps.Clone(o.cur)
	o.snap.Store(&c)
}

// remove forgets a task whose local state is gone.
func (o *taskOffsets) remove(id taskID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.cur[id]; !ok {
		return
	}
	delete(o.cur, id)
	c := maps.Clone(o.cur)
	o.snap.Store(&c)
}

// snapshot returns the offset sums; the caller must not modify the map.
func (o *taskOffsets) snapshot() map[taskID]int64 {
	if p := o.snap.Load(); p != nil {
		return *p
	}
	return nil
}
