package runtime

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/partition"
	"github.com/sluicehq/sluice/operators"
)

// explicitPartition marks records whose partition the runtime chose (a
// changelog record goes to its task's partition); other records are
// partitioned by key.
var explicitPartition = context.WithValue(context.Background(), explicitPartitionKey{}, true)

type explicitPartitionKey struct{}

// partitioner partitions records as Kafka's default partitioner does:
// murmur2 of the key; records without a key go round-robin.
type partitioner struct{}

func (partitioner) ForTopic(string) kgo.TopicPartitioner { return &topicPartitioner{} }

type topicPartitioner struct{ next int }

func (*topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Key != nil || r.Context == explicitPartition
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Context == explicitPartition {
		return int(r.Partition)
	}
	if r.Key == nil {
		p.next++
		return p.next % n
	}
	return partition.ForKey(r.Key, n)
}

// producer sends what the tasks' sinks and changelogs write, asynchronously;
// flush waits for all of it. The first send error is kept and reported
// by err: at-least-once cannot go on past a lost record.
type producer struct {
	cl      *kgo.Client
	promise func(*kgo.Record, error)
	first   atomic.Pointer[ProduceError]
}

func newProducer(cl *kgo.Client) *producer {
	p := &producer{cl: cl}
	p.promise = func(r *kgo.Record, err error) {
		if err == nil {
			return
		}
		p.first.CompareAndSwap(nil, &ProduceError{Topic: r.Topic, Partition: r.Partition, Err: err})
	}
	return p
}

// err returns the first send error, or nil.
func (p *producer) err() error {
	if e := p.first.Load(); e != nil {
		return e
	}
	return nil
}

// send copies key, value and headers (the caller reuses them) into one
// allocation and produces the record.
func (p *producer) send(topic string, part int32, key, value []byte, headers []operators.Header, ts int64) {
	r := &kgo.Record{Topic: topic, Timestamp: time.UnixMilli(ts)}
	buf := make([]byte, len(key)+len(value))
	if key != nil {
		r.Key = buf[:len(key):len(key)]
		copy(r.Key, key)
	}
	if value != nil {
		r.Value = buf[len(key):]
		copy(r.Value, value)
	}
	if len(headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(headers))
		for i, h := range headers {
			r.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: append([]byte(nil), h.Value...)}
		}
	}
	if part >= 0 {
		r.Partition = part
		r.Context = explicitPartition
	}
	p.cl.Produce(context.Background(), r, p.promise)
}

// collector is a task's operators.Collector.
type collector struct{ p *producer }

func (c collector) Send(topic string, part int32, key, value []byte, headers []operators.Header, ts int64) error {
	if err := c.p.err(); err != nil {
		return err
	}
	c.p.send(topic, part, key, value, headers, ts)
	return nil
}
