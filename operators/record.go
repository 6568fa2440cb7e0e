package operators

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/state"
)

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is a typed record as it moves between processors.
//
// Timestamp is in milliseconds since the Unix epoch, as in Kafka.
// NullKey and Tombstone report a Kafka null key or value: Key or Value is
// then the zero value of its type. A tombstone is a record whose value is
// null (a delete in a compacted topic) or a table update that deleted its
// key. Sinks write them as nulls; stream aggregations and repartitioning
// skip records with a null key, and aggregations skip tombstones, as Kafka
// Streams does with null keys and values. An operation that computes a new
// key or value clears the flag.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp int64
	Headers   []Header
	NullKey   bool
	Tombstone bool
}

// Change is an update of a table row: the new value and the value it
// replaced. HasNew is false for a delete; HasOld is false when the key had
// no value before (or the old value is not known).
//
// NotLatest marks an update of a versioned table that is not the key's
// latest version: an out-of-order record, older than the key's latest,
// kept in the table's history. It is forwarded, but the operations that
// keep only the latest state (table aggregations, table-table joins) skip
// it. The zero value means latest, as every update of a table that is not
// versioned is. Kafka Streams: Change.isLatest.
type Change[V any] struct {
	New       V
	Old       V
	HasNew    bool
	HasOld    bool
	NotLatest bool
}

// RawRecord is a record as read from a topic, before deserialization.
// Key and Value are nil for Kafka nulls. The slices belong to the caller
// and are valid only during the call that received them.
type RawRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Collector receives the records that sinks write. The slices passed to
// Send are reused by the caller after Send returns: a Collector that keeps
// them must copy them. A partition below zero means the collector chooses
// the partition (murmur2 of the key, as Kafka's default partitioner).
type Collector interface {
	Send(topic string, partition int32, key, value []byte, headers []Header, timestamp int64) error
}

// PartitionKeyCollector is a Collector that can choose a record's
// partition by other bytes than its key: murmur2 of partitionKey, as
// Kafka's default partitioner does for a key. A sink of windowed keys
// sends through it to partition by the key without its window (Kafka
// Streams' WindowedStreamPartitioner). A collector without partitions
// (the test driver's) need not implement it.
type PartitionKeyCollector interface {
	SendPartitionedBy(topic string, partitionKey, key, value []byte, headers []Header, timestamp int64) error
}

// PunctuationType says which clock drives a punctuation schedule.
type PunctuationType int

const (
	// StreamTime punctuations fire as the task's stream time advances, that
	// is, only when records arrive. Kafka Streams: PunctuationType.STREAM_TIME.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations fire on the system clock (or, in the test
	// driver, on the driver's clock). Kafka Streams: WALL_CLOCK_TIME.
	WallClockTime
)

// String implements fmt.Stringer.
func (t PunctuationType) String() string {
	switch t {
	case StreamTime:
		return "stream-time"
	case WallClockTime:
		return "wall-clock-time"
	}
	return fmt.Sprintf("PunctuationType(%d)", int(t))
}

// Punctuator is called by a punctuation schedule with the time it fires at,
// in milliseconds: the stream time for StreamTime schedules and the clock
// time for WallClockTime schedules.
type Punctuator func(timestamp int64) error

// Cancellable cancels a punctuation schedule.
type Cancellable interface {
	Cancel()
}

// ProcessingContext is what a processor written by a user sees of its task
// (Kafka Streams' api.ProcessingContext). It is valid for the lifetime of
// the task; its record metadata methods describe the record being
// processed. Inside a punctuator there is no such record: Topic is "" and
// Partition and Offset are -1, as in Kafka Streams.
type ProcessingContext interface {
	// TaskID names the task, "<sub-topology>_<partition>" as in Kafka Streams.
	TaskID() string
	// ApplicationID is the application ID (the consumer group).
	ApplicationID() string
	// Topic, Partition and Offset locate the input record being processed.
	Topic() string
	Partition() int32
	Offset() int64
	// StreamTime is the largest timestamp the task has processed, in ms; it
	// never goes back. It is -1 before the first record.
	StreamTime() int64
	// WallClockTime is the task's clock: system time in production, the
	// driver's clock in tests.
	WallClockTime() time.Time
	// Store returns the state store named name that the node declared.
	Store(name string) (state.Store, error)
	// Schedule runs p every interval on the given clock until cancelled.
	Schedule(interval time.Duration, typ PunctuationType, p Punctuator) (Cancellable, error)
}

// ErrStoreNotDeclared is returned by ProcessingContext.Store for a store
// the node did not declare.
var ErrStoreNotDeclared = errors.New("sluice: state store not declared by the processor")

// NodeError is the error a task returns when one of its nodes fails: on
// an input record (Topic, Partition and Offset locate it), in a punctuator
// or while the task starts or closes (Topic is then ""). A record the
// source could not decode or stamp is one too, with the
// *DeserializationError or *InvalidTimestampError as Err. Nodes return it
// naming themselves; the task fills in the rest.
type NodeError struct {
	// Task is the task's ID, "<sub-topology>_<partition>".
	Task string
	// Node is the node that failed; "" when the task cannot tell.
	Node string
	// Topic, Partition and Offset locate the input record being
	// processed; Topic is "" when the error is not tied to a record.
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

// Error implements error.
func (e *NodeError) Error() string {
	var de *DeserializationError
	var ie *InvalidTimestampError
	if errors.As(e.Err, &de) || errors.As(e.Err, &ie) {
		return fmt.Sprintf("sluice: task %s: %v", e.Task, e.Err) // the error names node and record
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sluice: task %s", e.Task)
	if e.Node != "" {
		fmt.Fprintf(&b, ", node %s", e.Node)
	}
	if e.Topic != "" {
		fmt.Fprintf(&b, ", record at topic %s, partition %d, offset %d", e.Topic, e.Partition, e.Offset)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *NodeError) Unwrap() error { return e.Err }

// FailedRecord returns the *NodeError in err's chain that locates an
// input record (its Topic is set): where a task stopped, for a handler to
// log, skip past or dead-letter. ok is false for errors not tied to a
// record.
func FailedRecord(err error) (e *NodeError, ok bool) {
	if errors.As(err, &e) && e.Topic != "" {
		return e, true
	}
	return nil, false
}

// DeserializationError is an input record that a source could not decode.
type DeserializationError struct {
	Node      string
	Topic     string
	Partition int32
	Offset    int64
	// Part is "key" or "value".
	Part string
	Err  error
}

// Error implements error.
func (e *DeserializationError) Error() string {
	return fmt.Sprintf("sluice: source %s: cannot deserialize the %s of the record at topic %s, partition %d, offset %d: %v",
		e.Node, e.Part, e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the underlying error.
func (e *DeserializationError) Unwrap() error { return e.Err }

// InvalidTimestampError is an input record whose timestamp is negative,
// under FailOnInvalidTimestamp.
type InvalidTimestampError struct {
	Node      string
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the invalid timestamp: the record's, or what the
	// source's extractor returned for it.
	Timestamp int64
}

// Error implements error.
func (e *InvalidTimestampError) Error() string {
	return fmt.Sprintf("sluice: source %s: invalid (negative) timestamp %d of the record at topic %s, partition %d, offset %d: "+
		"extract a valid one or choose another invalid-timestamp policy (dsl.Timestamps, dsl.OnInvalidTimestamp)",
		e.Node, e.Timestamp, e.Topic, e.Partition, e.Offset)
}

// SerializationError is an output record that a sink could not encode.
type SerializationError struct {
	Node  string
	Topic string
	// Part is "key" or "value".
	Part string
	Err  error
}

// Error implements error.
func (e *SerializationError) Error() string {
	return fmt.Sprintf("sluice: sink %s: cannot serialize the %s of a record for topic %s: %v", e.Node, e.Part, e.Topic, e.Err)
}

// Unwrap returns the underlying error.
func (e *SerializationError) Unwrap() error { return e.Err }
