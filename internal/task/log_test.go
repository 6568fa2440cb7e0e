package task_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
)

// Skipped undecodable records are all counted, but logged at most once per
// node per 10 seconds of the task's clock, with the number not logged.
func TestUndecodableRecordsLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	r, err := newRig(t, &proc{}, func(c *task.Config) {
		c.OnDeserializationError = operators.LogAndContinue
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("not an int64")
	for range 3 {
		ok(t, r.pipeRaw([]byte("k"), bad, 1))
	}
	r.now = r.now.Add(9 * time.Second)
	ok(t, r.pipeRaw([]byte("k"), bad, 1))
	if n := strings.Count(buf.String(), "after a deserialization error"); n != 1 {
		t.Fatalf("logged %d lines for 4 bad records within 9s, want 1:\n%s", n, buf.String())
	}
	r.now = r.now.Add(time.Second)
	ok(t, r.pipeRaw([]byte("k"), bad, 1))
	if n := strings.Count(buf.String(), "after a deserialization error"); n != 2 {
		t.Fatalf("logged %d lines after 10s, want 2:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "skipped_since_last_log=3") {
		t.Errorf("the second line does not say 3 records were skipped unlogged:\n%s", buf.String())
	}
	if len(r.dropped) != 5 {
		t.Errorf("counted %d dropped records, want 5", len(r.dropped))
	}
}

// While a punctuator runs, the record metadata is empty (as in Kafka
// Streams), but InputPosition still names the record whose processing
// fired a stream-time punctuation, and the last record for a wall-clock
// one: the runtime tags changelog writes with it.
func TestInputPositionDuringPunctuation(t *testing.T) {
	type pos struct {
		offset, input int64
	}
	var seen []pos
	var r *rig
	p := &proc{InitFunc: func(ctx procCtx) error {
		for _, typ := range []operators.PunctuationType{operators.StreamTime, operators.WallClockTime} {
			if _, err := ctx.Schedule(10*time.Millisecond, typ, func(int64) error {
				_, _, in := r.task.InputPosition()
				seen = append(seen, pos{ctx.Offset(), in})
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}}
	r = mustRig(t, p)
	ok(t, r.pipe("k", 1, 100)) // offset 0: the first stream-time punctuation
	ok(t, r.pipe("k", 1, 115)) // offset 1: stream time passes 110
	r.now = r.now.Add(time.Second)
	ok(t, r.task.PunctuateWallClock(r.now))
	want(t, "offset and input position seen by punctuators", seen, []pos{{-1, 0}, {-1, 1}, {-1, 1}})
}
