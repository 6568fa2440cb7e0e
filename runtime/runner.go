package runtime

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
)

// runner drives one task: it queues the records polled for the task's
// partitions and processes them, smallest head event time first across
// partitions (task.PartitionGroup), and tracks the offsets to commit.
type runner struct {
	id    taskID
	task  *task.Task
	st    *taskState
	group task.PartitionGroup[*kgo.Record]
	// queues are the task's input partitions, at the indexes of their
	// queues in group.
	queues []*partitionQueue
	raw    operators.RawRecord
	hdrs   []operators.Header
	// cur is the input record being processed, nil between records: the
	// origin of what the task's sinks write (sinkContext).
	cur *kgo.Record
	// now is the time of the current processing round.
	now time.Time
	// processed counts input records since the metrics were last updated,
	// busy the time spent processing them (metrics.go: taskRound).
	processed int64
	busy      time.Duration
	err       error
	// rolledBack: a group callback aborted the transaction holding the
	// runner's progress (ExactlyOnce); it waits for the poll loop's
	// revive and is neither processed nor committed (ready skips it).
	rolledBack bool

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
	// held are the records the task sent while it restored (its
	// processors' Init): the poll loop sends them when it activates the
	// task (producer.sendFor).
	held []stagedRecord
}

// partitionQueue is the progress of one input partition of a task.
type partitionQueue struct {
	topic     string
	partition int32
	// next is the offset after the last processed record, -1 before any;
	// committed is the offset last committed.
	next      int64
	epoch     int32
	committed int64
	// fetched is the offset after the last record fetched (control
	// records included), end the partition's high watermark in the last
	// fetch that had it; -1 until known. waitSince is when the task began
	// to wait for the partition's records, zero when it does not wait.
	fetched   int64
	end       int64
	waitSince time.Time
}

// maxFetchWait bounds how long a task waits for a partition whose
// position is not known yet (no fetch has returned it); one whose records
// are known to be on the broker past its position waits up to maxLagWait. The wait ends as soon as records arrive;
// the bound is for a partition that stays empty (franz-go returns an
// empty partition only in a fetch that has records of another) or whose
// records are slow to come: it waits again only once records of it
// arrived. The waits of a task's partitions run at the same time.
const maxFetchWait = time.Second

// queue returns the index of the queue of an input partition, adding it
// if it is new.
func (r *runner) queue(topic string, partition int32) int {
	if r.group.Raw == nil {
		r.group.Raw = r.describe
		r.group.Wait = r.waiting
	}
	i := r.group.Queue(topic, partition)
	if i == len(r.queues) {
		r.queues = append(r.queues, &partitionQueue{topic: topic, partition: partition, next: -1, committed: -1, fetched: -1, end: -1})
	}
	return i
}

// add queues polled records of one partition, whose high watermark was
// end in the fetch (-1 if unknown). A control record (a transaction
// marker) is not queued; it only moves the partition's fetch position.
func (r *runner) add(topic string, partition int32, recs []*kgo.Record, end int64) {
	i := r.queue(topic, partition)
	q := r.queues[i]
	if end >= 0 {
		q.end = end
	}
	if len(recs) == 0 {
		return
	}
	q.fetched = recs[len(recs)-1].Offset + 1
	q.waitSince = time.Time{}
	from := 0
	for j, rec := range recs {
		if rec.Attrs.IsControl() {
			r.group.Add(i, recs[from:j]...)
			from = j + 1
		}
	}
	r.group.Add(i, recs[from:]...)
}

// waiting reports whether the task waits for the empty queue i: the
// partition has records on the broker past its fetch position, or no
// fetch has told its position yet (Kafka Streams waits while the fetch lag
// is above zero or unknown), and the wait has not lasted maxFetchWait.
func (r *runner) waiting(i int) bool {
	q := r.queues[i]
	pos := q.fetched
	if pos < 0 {
		pos = q.next // a resumed position, or -1
	}
	if pos >= 0 && q.end <= pos || q.end == 0 {
		return false // caught up (or an empty partition a fetch returned)
	}
	if q.waitSince.IsZero() {
		q.waitSince = r.now
	}
	if pos >= 0 && q.end > pos {
		// Records known to be on the broker past the position (the
		// clients keep control records, so a transaction marker moves
		// the position too): wait for them, as Kafka Streams does with
		// no limit (PartitionGroup.readyToProcess); processing the other
		// partitions ahead would let a join's window stores expire what
		// these records join with. maxLagWait only guards against an end
		// offset that went stale.
		return r.now.Sub(q.waitSince) < maxLagWait
	}
	return r.now.Sub(q.waitSince) < maxFetchWait
}

// maxLagWait bounds the wait for a partition whose records are known to be
// on the broker past the task's position (see waiting).
const maxLagWait = 30 * time.Second

// taskID is the task's ID: its runner's while it restores (what its
// processors' Init send names it), "" without a task.
func (r *runner) taskID() string {
	switch {
	case r.task != nil:
		return r.task.ID()
	case r.restoring:
		return r.id.String()
	}
	return ""
}

// process runs the queued records through the task and fires wall-clock
// punctuations; it stops at the first error.
func (r *runner) process(now time.Time) error {
	r.now = now
	start := time.Now() // one clock read per round, not per record
	for {
		i, rec, ok := r.group.Next(r.task)
		if !ok {
			break
		}
		if err := r.processOne(r.queues[i], rec); err != nil {
			return err
		}
	}
	r.group.Reset()
	r.busy += time.Since(start)
	return r.task.PunctuateWallClock(now)
}

// describe fills raw with rec; its headers stay valid until the next
// call.
func (r *runner) describe(rec *kgo.Record, raw *operators.RawRecord) {
	r.hdrs = r.hdrs[:0]
	for _, h := range rec.Headers {
		r.hdrs = append(r.hdrs, operators.Header{Key: h.Key, Value: h.Value})
	}
	*raw = operators.RawRecord{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Timestamp: rec.Timestamp.UnixMilli(), Key: rec.Key, Value: rec.Value,
	}
	if len(r.hdrs) > 0 {
		raw.Headers = r.hdrs
	}
}

func (r *runner) processOne(q *partitionQueue, rec *kgo.Record) error {
	r.describe(rec, &r.raw)
	r.cur = rec
	err := r.task.Process(&r.raw)
	r.cur = nil
	if err != nil {
		return err
	}
	q.next, q.epoch = rec.Offset+1, rec.LeaderEpoch
	r.processed++
	return nil
}

// offsets adds the offsets to commit (progress since the last commit) to m.
//
// A partition whose every fetched record was processed commits its fetch
// position, which is past the transaction markers that follow its last
// record (as Kafka Streams commits the consumer's position), so that its
// committed offset reaches the end of a transactional log.
func (r *runner) offsets(m map[string]map[int32]kgo.EpochOffset) {
	for i, q := range r.queues {
		next, epoch := q.next, q.epoch
		if q.fetched > next && r.group.Empty(i) {
			next, epoch = q.fetched, -1
		}
		if next < 0 || next == q.committed {
			continue
		}
		if m[q.topic] == nil {
			m[q.topic] = map[int32]kgo.EpochOffset{}
		}
		m[q.topic][q.partition] = kgo.EpochOffset{Epoch: epoch, Offset: next}
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
