package runtime

import (
	"errors"
	"fmt"
	"strings"
)

// ErrClosed is returned by Run on an App that was closed.
var ErrClosed = errors.New("sluice: app is closed")

// ProduceError is a record the runtime could not write to Kafka.
type ProduceError struct {
	Topic     string
	Partition int32
	Err       error
}

// Error implements error.
func (e *ProduceError) Error() string {
	return fmt.Sprintf("sluice: produce to topic %s, partition %d: %v", e.Topic, e.Partition, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProduceError) Unwrap() error { return e.Err }

// CoPartitionError reports input topics of one sub-topology whose partition
// counts differ: records of a key would not meet in one task.
type CoPartitionError struct {
	SubTopology int
	// Topics and their partition counts, in the sub-topology's order.
	Topics     []string
	Partitions []int32
}

// Error implements error.
func (e *CoPartitionError) Error() string {
	parts := make([]string, len(e.Topics))
	for i, t := range e.Topics {
		parts[i] = fmt.Sprintf("%s (%d partitions)", t, e.Partitions[i])
	}
	return fmt.Sprintf("sluice: topics %s are read by sub-topology %d and must be co-partitioned: give them the same number of partitions",
		strings.Join(parts, " and "), e.SubTopology)
}

// BrokerError reports brokers that could not be reached or used at
// start-up.
type BrokerError struct {
	Brokers []string
	Err     error
}

// Error implements error.
func (e *BrokerError) Error() string {
	return fmt.Sprintf("sluice: cannot use Kafka brokers %v: %v", e.Brokers, e.Err)
}

// Unwrap returns the underlying error.
func (e *BrokerError) Unwrap() error { return e.Err }

// MissingTopicError reports source topics that do not exist, or the topic
// an option names (Option: "DeadLetterQueue").
type MissingTopicError struct {
	Topics []string
	// Option is the option that names the topics; "" for source topics.
	Option string
}

// Error implements error.
func (e *MissingTopicError) Error() string {
	if e.Option != "" {
		return fmt.Sprintf("sluice: topic %v, set by option %s, does not exist: create it before starting the application", e.Topics, e.Option)
	}
	return fmt.Sprintf("sluice: source topics %v do not exist: create them before starting the application", e.Topics)
}

// FencedError stops an instance that another took the place of: under
// ExactlyOnce a newer producer with its transactional ID fenced it (or,
// on brokers with KIP-890 part 2 transactions, the broker fenced its
// producer when its transaction outlived TransactionTimeout, e.g. a
// paused process), or a newer member joined the group with its
// InstanceID. Nothing it wrote in its open transaction is visible to
// read_committed consumers; its tasks' uncommitted state was dropped.
// Restarting it is safe.
type FencedError struct {
	// TransactionalID is the instance's transactional ID; empty under
	// AtLeastOnce.
	TransactionalID string
	// InstanceID is the instance's static member ID, if it has one.
	InstanceID string
	Err        error
}

// Error implements error.
func (e *FencedError) Error() string {
	var who []string
	if e.TransactionalID != "" {
		who = append(who, "transactional ID "+e.TransactionalID)
	}
	if e.InstanceID != "" {
		who = append(who, "instance ID "+e.InstanceID)
	}
	if len(who) == 0 {
		who = append(who, "this instance")
	}
	return fmt.Sprintf("sluice: fenced: %s can no longer commit (another instance took over, or the broker fenced a transaction that outlived its timeout): %v", strings.Join(who, " and "), e.Err)
}

// Unwrap returns the underlying error.
func (e *FencedError) Unwrap() error { return e.Err }
