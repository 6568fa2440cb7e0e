package task

import "github.com/sluicehq/sluice/operators"

// PartitionGroup holds the records waiting in a task's input partitions,
// one queue per partition, and chooses which record goes next: the head
// of the partition whose head record has the smallest event time
// (Task.EventTime: the source's timestamp extractor decides it), the
// partition added first on a tie. So a task reading several partitions
// processes them in event-time order, as Kafka Streams' PartitionGroup
// does, and its stream time moves as evenly as the inputs allow.
//
// R is the caller's record type; Raw describes one to the task. The zero
// value is ready once Raw is set.
type PartitionGroup[R any] struct {
	// Raw fills raw with the record r, for the task's timestamp
	// extractor. raw may be kept only until the next call.
	Raw func(r R, raw *operators.RawRecord)
	// Wait, if set, reports whether the empty queue at index i is to be
	// waited for: its partition has records the consumer has not fetched
	// yet. Next then takes nothing (Kafka Streams' PartitionGroup
	// readyToProcess with a known fetch lag above zero), so that records
	// are taken in event-time order across the partitions, not in the
	// order fetches happen to bring them.
	Wait   func(i int) bool
	queues []*partitionQueue[R]
	raw    operators.RawRecord
}

type partitionQueue[R any] struct {
	topic     string
	partition int32
	recs      []R
	pos       int
	// head is the event time of recs[headOf], valid when headOf == pos.
	head   int64
	headOf int
}

// Queue returns the index of the queue of (topic, partition), adding an
// empty one at the end if there is none. Indexes do not change.
func (g *PartitionGroup[R]) Queue(topic string, partition int32) int {
	for i, q := range g.queues {
		if q.topic == topic && q.partition == partition {
			return i
		}
	}
	g.queues = append(g.queues, &partitionQueue[R]{topic: topic, partition: partition, headOf: -1})
	return len(g.queues) - 1
}

// Add queues records of the queue at index i, in offset order.
func (g *PartitionGroup[R]) Add(i int, recs ...R) {
	q := g.queues[i]
	q.recs = append(q.recs, recs...)
}

// Empty reports whether the queue at index i has no record left to take.
func (g *PartitionGroup[R]) Empty(i int) bool {
	q := g.queues[i]
	return q.pos >= len(q.recs)
}

// Len is the number of queued records not yet taken.
func (g *PartitionGroup[R]) Len() int {
	n := 0
	for _, q := range g.queues {
		n += len(q.recs) - q.pos
	}
	return n
}

// Next takes the record that goes next and returns it with the index of
// its queue; ok is false when every queue is empty, or when Wait holds for
// an empty queue of a task with several. t gives the event
// times of the head records (each is computed once per head).
func (g *PartitionGroup[R]) Next(t *Task) (i int, r R, ok bool) {
	best, wait := -1, false
	if len(g.queues) == 1 {
		if q := g.queues[0]; q.pos < len(q.recs) {
			best = 0
		}
	} else {
		var bestTs int64
		for j, q := range g.queues {
			if q.pos >= len(q.recs) {
				// Every empty queue is asked, so that their waits run at
				// the same time rather than one after the other.
				wait = g.Wait != nil && g.Wait(j) || wait
				continue
			}
			if ts := g.headTime(t, q); best < 0 || ts < bestTs {
				best, bestTs = j, ts
			}
		}
	}
	if best < 0 || wait {
		return -1, r, false
	}
	q := g.queues[best]
	r = q.recs[q.pos]
	q.pos++
	return best, r, true
}

// headTime is the event time of q's head record, computed once per head.
func (g *PartitionGroup[R]) headTime(t *Task, q *partitionQueue[R]) int64 {
	if q.headOf == q.pos {
		return q.head
	}
	g.raw = operators.RawRecord{}
	g.Raw(q.recs[q.pos], &g.raw)
	q.head, q.headOf = t.EventTime(&g.raw), q.pos
	g.raw = operators.RawRecord{}
	return q.head
}

// Reset drops the records taken so far, and keeps those not yet taken.
func (g *PartitionGroup[R]) Reset() {
	for _, q := range g.queues {
		n := copy(q.recs, q.recs[q.pos:])
		clear(q.recs[n:])
		q.recs, q.pos, q.headOf = q.recs[:n], 0, -1
	}
}
