package dsl

import (
	"reflect"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
)

// Event time. A source stamps each record it reads with a timestamp: by
// default the record's Kafka timestamp (CreateTime or LogAppendTime, as the
// topic says), else what the source's extractor returns. That timestamp is
// the record's from then on: stream time, punctuation, windows, the
// timestamps of aggregates and of the records written to topics follow it.
//
// A negative timestamp is invalid. What the source does with such a record
// is its invalid-timestamp policy, FailOnInvalidTimestamp by default.
//
// The source decides the timestamp after decoding the record and before
// forwarding it, and then advances stream time (the task's
// StampRecord), so a record skipped as undecodable or for an invalid
// timestamp never moves stream time. The runtime chooses which of a task's
// input partitions goes next by the event times of their head records, as
// Kafka Streams does, decoding a head record once more to extract it when
// a task reads several partitions.

// Timestamps sets the timestamp extractor of a source (FromTopic,
// FromTopics, TableFromTopic): f returns the timestamp of each record, in
// milliseconds since the Unix epoch, from its decoded key and value (absent
// for a Kafka null key or value), its headers
// (valid only during the call) and its Kafka timestamp. Typical uses read
// an event time from a field of the value. A negative result is invalid and
// goes to the source's policy (OnInvalidTimestamp). The default is the
// record's Kafka timestamp.
//
// f is called on the task's goroutine, once per decoded record; a record
// that cannot be decoded is never passed to it. Its key and value types
// must be the source's; the option does not carry them to the compiler,
// so Build fails, naming the source and the option, on a mismatch. The
// last Timestamps or WallClockTimestamps option given to a source wins;
// only sources take them (giving one to another operation does not
// compile).
//
// Kafka Streams: Consumed.withTimestampExtractor with a TimestampExtractor
// (without the partition-time argument: use OnInvalidTimestamp's
// UsePreviousStreamTime for that).
func Timestamps[K, V any](f func(key Maybe[K], value Maybe[V], headers []operators.Header, recordTimestamp int64) int64) TimestampOption {
	return TimestampOption{f: func(o *options) { o.timestamps = f }}
}

// TimestampOption is the option Timestamps, WallClockTimestamps and
// OnInvalidTimestamp return: sources (FromTopic, FromTopics,
// TableFromTopic) take it.
type TimestampOption struct{ f func(*options) }

func (t TimestampOption) apply(o *options)    { t.f(o) }
func (TimestampOption) sourceOperation()      {}
func (TimestampOption) tableSourceOperation() {}

// WallClockTimestamps stamps each record a source reads with the task's
// wall-clock time when the record is processed: processing-time semantics.
// The clock is the system clock in the runtime and the driver's clock in
// the test driver. Kafka Streams: WallclockTimestampExtractor.
func WallClockTimestamps() TimestampOption {
	return TimestampOption{f: func(o *options) { o.timestamps = wallClockTimestamps{} }}
}

// wallClockTimestamps marks WallClockTimestamps in options.timestamps.
type wallClockTimestamps struct{}

// InvalidTimestampPolicy says what a source does with a record whose
// timestamp is negative, whether it is the record's Kafka timestamp or what
// the source's extractor returned. The zero value is
// FailOnInvalidTimestamp.
//
// In Kafka Streams the policy is part of the default extractor, and a
// record for which a user's extractor returns a negative timestamp is
// always dropped; here the policy applies to whichever timestamp the source
// settled on, so such a record fails the task unless the policy says
// otherwise.
type InvalidTimestampPolicy int

const (
	// FailOnInvalidTimestamp stops the task with an error naming the
	// source, the topic, partition and offset of the record and the
	// timestamp (an *operators.InvalidTimestampError). It is the default,
	// as in Kafka Streams (FailOnInvalidTimestamp, its default extractor).
	FailOnInvalidTimestamp InvalidTimestampPolicy = iota
	// SkipInvalidTimestamp drops the record and counts it with the reason
	// "invalid-timestamp" (the task's dropped-records metric, or
	// testdriver's DroppedRecords). It logs a warning with the record's
	// topic, partition, offset and timestamp, at most one per source per
	// 10 seconds, each telling how many records were skipped since the
	// previous one. Stream time does not move. Kafka Streams:
	// LogAndSkipOnInvalidTimestamp.
	SkipInvalidTimestamp
	// UsePreviousStreamTime stamps the record with the task's stream time
	// (the largest timestamp processed before it). Before the task has
	// processed any record there is none, and the record is skipped as with
	// SkipInvalidTimestamp, where Kafka Streams'
	// UsePartitionTimeOnInvalidTimestamp fails. Kafka Streams' partition
	// time is per input partition; the task's stream time is the same as
	// long as the task reads one partition.
	UsePreviousStreamTime
)

// OnInvalidTimestamp sets a source's invalid-timestamp policy (FromTopic,
// FromTopics, TableFromTopic); the default is FailOnInvalidTimestamp. Only
// sources take it. An unknown policy makes Build fail. Kafka Streams:
// the choice of FailOnInvalidTimestamp, LogAndSkipOnInvalidTimestamp or
// UsePartitionTimeOnInvalidTimestamp as the source's extractor.
func OnInvalidTimestamp(p InvalidTimestampPolicy) TimestampOption {
	return TimestampOption{f: func(o *options) { o.onInvalid = p }}
}

// sourceStamps is how a source stamps its records, as its options say.
type sourceStamps[K, V any] struct {
	extract   func(Maybe[K], Maybe[V], []operators.Header, int64) int64
	wallClock bool
	onInvalid nodes.InvalidTimestampPolicy
	raw       bool // a global table's source: records keep their own timestamps
}

// sourceTimestamps reads the timestamp options of the source named node;
// an extractor of other key or value types than the source's, or an
// unknown policy, is a build error naming node.
func sourceTimestamps[K, V any](b *Builder, node string, o options) sourceStamps[K, V] {
	var st sourceStamps[K, V]
	switch f := o.timestamps.(type) {
	case nil:
	case wallClockTimestamps:
		st.wallClock = true
	case func(Maybe[K], Maybe[V], []operators.Header, int64) int64:
		st.extract = f // nil: the records' timestamps
	default:
		b.fail(node, "the source reads keys of type %v and values of type %v, but its dsl.Timestamps extractor is a %T",
			reflect.TypeFor[K](), reflect.TypeFor[V](), f)
	}
	switch o.onInvalid {
	case FailOnInvalidTimestamp:
		st.onInvalid = nodes.FailOnInvalidTimestamp
	case SkipInvalidTimestamp:
		st.onInvalid = nodes.SkipInvalidTimestamp
	case UsePreviousStreamTime:
		st.onInvalid = nodes.UsePreviousStreamTime
	default:
		b.fail(node, "unknown invalid-timestamp policy %d", int(o.onInvalid))
	}
	return st
}

// forTask returns the source's timestamping for the task of ctx.
func (st sourceStamps[K, V]) forTask(ctx nodes.Context) nodes.SourceTimestamps[K, V] {
	ts := nodes.SourceTimestamps[K, V]{Extract: st.extract, OnInvalid: st.onInvalid, Raw: st.raw}
	if st.wallClock {
		ts.Extract = func(Maybe[K], Maybe[V], []operators.Header, int64) int64 { return ctx.WallClockTime().UnixMilli() }
	}
	return ts
}
