package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/state"
)

// loggedStore writes every change of a key-value store to its changelog
// topic, on the task's partition, through the task's producer: a put as
// the value, a delete as a tombstone. For a timestamped store the value's
// timestamp becomes the changelog record's timestamp and the value is
// logged without it, as Kafka Streams logs timestamped stores.
type loggedStore struct {
	state.KeyValueStore
	topic       string
	partition   int32
	timestamped bool
	p           *producer
	now         func() int64
}

func (s *loggedStore) Put(key, value []byte) error {
	if err := s.KeyValueStore.Put(key, value); err != nil {
		return err
	}
	if err := s.p.err(); err != nil {
		return err
	}
	ts, v := s.now(), value
	if s.timestamped && len(value) >= 8 {
		ts, v = int64(binary.BigEndian.Uint64(value)), value[8:]
	}
	if v == nil {
		v = []byte{}
	}
	s.p.send(s.topic, s.partition, key, v, nil, ts)
	return nil
}

func (s *loggedStore) Delete(key []byte) error {
	if err := s.KeyValueStore.Delete(key); err != nil {
		return err
	}
	if err := s.p.err(); err != nil {
		return err
	}
	s.p.send(s.topic, s.partition, key, nil, nil, s.now())
	return nil
}

// restore replays a changelog partition into store, from the start to the
// end offset read when restoring starts, with a client of its own (not the
// group's). It returns the number of records applied.
func (a *App) restore(ctx context.Context, store state.KeyValueStore, topic string, partition int32, timestamped bool) (int64, error) {
	adm := kadm.NewClient(a.admin)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("sluice: restore %s: list end offsets: %w", topic, err)
	}
	end, ok := ends.Lookup(topic, partition)
	if !ok || end.Err != nil {
		return 0, fmt.Errorf("sluice: restore %s: no end offset for partition %d: %v", topic, partition, end.Err)
	}
	if end.Offset == 0 {
		return 0, nil
	}
	opts := append(a.baseClientOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var n int64
	var buf []byte
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = fmt.Errorf("sluice: restore %s partition %d: %w", t, p, err)
		})
		if ferr != nil {
			return n, ferr
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset >= end.Offset {
				done = true
				return
			}
			if r.Value == nil {
				err = store.Delete(r.Key)
			} else if timestamped {
				buf = binary.BigEndian.AppendUint64(buf[:0], uint64(r.Timestamp.UnixMilli()))
				buf = append(buf, r.Value...)
				err = store.Put(r.Key, buf)
			} else {
				err = store.Put(r.Key, r.Value)
			}
			if err == nil {
				n++
			}
			if r.Offset >= end.Offset-1 {
				done = true
			}
		})
		if err != nil {
			return n, fmt.Errorf("sluice: restore %s partition %d: %w", topic, partition, err)
		}
		if done {
			return n, nil
		}
	}
}
