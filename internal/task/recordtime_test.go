package task_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/operators"
)

// RecordTimestamp is Kafka Streams' record context timestamp, which the
// changelogs of stores without timestamps in their values carry: the
// timestamp of the record being processed (not stream time, for a record
// out of order), the punctuation's time inside a punctuator (stream-time
// and wall-clock), and the record's again once the punctuator returns.
func TestRecordTimestamp(t *testing.T) {
	var seen []string
	var r *rig
	r = mustRig(t, &proc{
		InitFunc: func(c procCtx) error {
			if _, err := c.Schedule(10*time.Millisecond, operators.StreamTime, func(ts int64) error {
				seen = append(seen, fmt.Sprintf("stream-time punctuation@%d: %d", ts, r.task.RecordTimestamp()))
				return nil
			}); err != nil {
				return err
			}
			_, err := c.Schedule(time.Second, operators.WallClockTime, func(ts int64) error {
				seen = append(seen, fmt.Sprintf("wall-clock punctuation@%d: %d", ts, r.task.RecordTimestamp()))
				return nil
			})
			return err
		},
		ProcessFunc: func(c procCtx, rec operators.Record[string, int64]) error {
			seen = append(seen, fmt.Sprintf("process@%d: %d", rec.Timestamp, r.task.RecordTimestamp()))
			return nil
		},
	})
	if got := r.task.RecordTimestamp(); got != -1 {
		t.Errorf("RecordTimestamp before any record = %d, want -1", got)
	}
	ok(t, r.pipe("a", 0, 25))
	ok(t, r.pipe("b", 0, 7)) // out of order: stream time stays 25
	seen = append(seen, fmt.Sprintf("after: %d", r.task.RecordTimestamp()))
	ok(t, r.task.PunctuateWallClock(time.UnixMilli(5000)))
	seen = append(seen, fmt.Sprintf("after: %d", r.task.RecordTimestamp()))
	want(t, "record timestamps", seen, []string{
		"process@25: 25",
		"stream-time punctuation@25: 25",
		"process@7: 7",
		"after: 7",
		"wall-clock punctuation@5000: 5000",
		"after: 7",
	})
}
