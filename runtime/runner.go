package runtime

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
)

// runner drives one task: it queues the records polled for the task's
// partitions and processes them, smallest head timestamp first across
// partitions, and tracks the offsets to commit.
type runner struct {
	id     taskID
	task   *task.Task
	st     *taskState
	queues []*partitionQueue
	raw    operators.RawRecord
	hdrs   []operators.Header
	// processed counts input records since the metrics were last updated.
	processed int64
	err       error

	// While restoring, the task's stores restore in restoreRunner, its
	// partitions are paused, and it takes no part in processing and
	// commits; task is nil. restoreDone is closed when the restore is
	// over, with the task in pending or the error in restoreErr (written
	// before the close, read after it). The poll loop then sets task.
	restoring     bool
	restoreCtx    context.Context
	cancelRestore context.CancelFunc
	restoreDone   chan struct{}
	pending       *task.Task
	restoreErr    error
}

// partitionQueue is one input partition of a task.
type partitionQueue struct {
	topic     string
	partition int32
	recs      []*kgo.Record
	pos       int
	// next is the offset after the last processed record, -1 before any;
	// committed is the offset last committed.
	next      int64
	epoch     int32
	committed int64
	// head is the event time of recs[headOf], valid when headOf == pos.
	head   int64
	headOf int
}

func (r *runner) queue(topic string, partition int32) *partitionQueue {
	for _, q := range r.queues {
		if q.topic == topic && q.partition == partition {
			return q
		}
	}
	q := &partitionQueue{topic: topic, partition: partition, next: -1, committed: -1, headOf: -1}
	r.queues = append(r.queues, q)
	return q
}

// add queues polled records of one partition.
func (r *runner) add(topic string, partition int32, recs []*kgo.Record) {
	q := r.queue(topic, partition)
	q.recs = append(q.recs, recs...)
}

// process runs the queued records through the task and fires wall-clock
// punctuations; it stops at the first error.
func (r *runner) process(now time.Time) error {
	if len(r.queues) == 1 {
		q := r.queues[0]
		for q.pos < len(q.recs) {
			if err := r.processOne(q); err != nil {
				return err
			}
		}
	} else {
		for {
			var best *partitionQueue
			var bestTs int64
			for _, q := range r.queues {
				if q.pos >= len(q.recs) {
					continue
				}
				if ts := r.headTime(q); best == nil || ts < bestTs {
					best, bestTs = q, ts
				}
			}
			if best == nil {
				break
			}
			if err := r.processOne(best); err != nil {
				return err
			}
		}
	}
	for _, q := range r.queues {
		clear(q.recs)
		q.recs, q.pos, q.headOf = q.recs[:0], 0, -1
	}
	return r.task.PunctuateWallClock(now)
}

// headTime is the event time of q's head record (the task's source may
// extract it from the record), computed once per head.
func (r *runner) headTime(q *partitionQueue) int64 {
	if q.headOf == q.pos {
		return q.head
	}
	rec := q.recs[q.pos]
	r.hdrs = r.hdrs[:0]
	for _, h := range rec.Headers {
		r.hdrs = append(r.hdrs, operators.Header{Key: h.Key, Value: h.Value})
	}
	raw := operators.RawRecord{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Timestamp: rec.Timestamp.UnixMilli(), Key: rec.Key, Value: rec.Value}
	if len(r.hdrs) > 0 {
		raw.Headers = r.hdrs
	}
	q.head, q.headOf = r.task.EventTime(&raw), q.pos
	return q.head
}

func (r *runner) processOne(q *partitionQueue) error {
	rec := q.recs[q.pos]
	q.pos++
	r.hdrs = r.hdrs[:0]
	for _, h := range rec.Headers {
		r.hdrs = append(r.hdrs, operators.Header{Key: h.Key, Value: h.Value})
	}
	r.raw = operators.RawRecord{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Timestamp: rec.Timestamp.UnixMilli(), Key: rec.Key, Value: rec.Value,
	}
	if len(r.hdrs) > 0 {
		r.raw.Headers = r.hdrs
	}
	if err := r.task.Process(&r.raw); err != nil {
		return err
	}
	q.next, q.epoch = rec.Offset+1, rec.LeaderEpoch
	r.processed++
	return nil
}

// offsets adds the offsets to commit (progress since the last commit) to m.
func (r *runner) offsets(m map[string]map[int32]kgo.EpochOffset) {
	for _, q := range r.queues {
		if q.next < 0 || q.next == q.committed {
			continue
		}
		if m[q.topic] == nil {
			m[q.topic] = map[int32]kgo.EpochOffset{}
		}
		m[q.topic][q.partition] = kgo.EpochOffset{Epoch: q.epoch, Offset: q.next}
	}
}

// positions returns the next offset of each input partition the task has
// processed records of.
func (r *runner) positions() map[topicPartition]int64 {
	m := make(map[topicPartition]int64, len(r.queues))
	for _, q := range r.queues {
		if q.next >= 0 {
			m[topicPartition{q.topic, q.partition}] = q.next
		}
	}
	return m
}

// committed marks the offsets in m as committed.
func (r *runner) committed(m map[string]map[int32]kgo.EpochOffset) {
	for _, q := range r.queues {
		if eo, ok := m[q.topic][q.partition]; ok {
			q.committed = eo.Offset
		}
	}
}
