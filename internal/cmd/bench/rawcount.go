package main

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

// rawCount is the floor of count per key with the record cache off: a
// franz-go group consumer that counts each record's key in a map and
// produces the new count (8 bytes, big-endian, as serde.Int64 writes it)
// for every record it reads, as the topology does with every update
// forwarded, flushing and committing every commit interval and at the end.
// It writes no changelog: the floor Sluice's extra work is measured
// against.
func rawCount(ctx context.Context, brokers []string, input, group string, n int, partitions int32, commit time.Duration) (result, error) {
	output := group + "-out"
	if err := connectors.CreateTopics(ctx, brokers, partitions, output); err != nil {
		return result{}, err
	}
	cl, err := rawCountClient(brokers, input, group, output)
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	start, cpu := time.Now(), cpuTime()
	if err := rawCountLoop(ctx, cl, n, commit); err != nil {
		return result{}, err
	}
	// Leave the group inside the clock, as the Sluice workloads' Close
	// does (with their final flush and commit).
	if err := cl.LeaveGroupContext(ctx); err != nil {
		return result{}, err
	}
	r := result{name: "raw franz-go consume→count in a map→produce", records: n, elapsed: time.Since(start), cpu: cpuTime() - cpu}
	r.written, err = endOffsets(ctx, brokers, output)
	r.want = int64(n)
	if err != nil {
		return r, err
	}
	return r, dropTopics(ctx, brokers, output)
}

func rawCountClient(brokers []string, input, group, output string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.DefaultProduceTopic(output))
}

// rawCountLoop runs the raw count until it has read n records, or, when
// ctx is cancelled, until then (the latency benchmark's run). Each output
// record carries its input record's headers, as Kafka Streams' count
// forwards them: the latency benchmark's send time travels in one.
func rawCountLoop(ctx context.Context, cl *kgo.Client, n int, commit time.Duration) error {
	counts := map[string]int64{}
	var perr firstError
	seen, last := 0, time.Now()
	for seen < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			c := counts[string(r.Key)] + 1
			counts[string(r.Key)] = c
			cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(c)), Headers: r.Headers}, perr.promise)
			seen++
		})
		if time.Since(last) >= commit || seen >= n {
			if err := cl.Flush(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if err := perr.get(); err != nil {
				return err
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			last = time.Now()
		}
	}
	return nil
}

// firstError keeps the first error of produce promises, which franz-go
// calls from its own goroutines.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (e *firstError) promise(_ *kgo.Record, err error) {
	if err != nil {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
}

func (e *firstError) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}
