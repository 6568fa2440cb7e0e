package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
)

// inputHeader is the header of a changelog record that says which input
// record caused the change: partition (4 bytes) and offset (8 bytes),
// big-endian, then the topic. After restoring a changelog, a task resumes
// after the latest input record its state reflects, even when that is past
// the group's committed offset, so input is not applied to state twice.
const inputHeader = "sluice.input"

func appendInputPosition(dst []byte, topic string, partition int32, offset int64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return append(dst, topic...)
}

func parseInputPosition(b []byte) (topicPartition, int64, bool) {
	if len(b) < 12 {
		return topicPartition{}, 0, false
	}
	p := int32(binary.BigEndian.Uint32(b))
	off := int64(binary.BigEndian.Uint64(b[4:]))
	return topicPartition{string(b[12:]), p}, off, true
}

// loggedStore writes every change of a key-value store to its changelog
// topic, on the task's partition, through the task's producer: a put as
// the value, a delete as a tombstone. Each record carries the position of
// the input record that caused it (inputHeader).
//
// The record timestamp is Kafka Streams': for a put into a timestamped
// store, the value's timestamp, which is logged without it
// (ChangeLoggingTimestampedKeyValueBytesStore); for any other write (a put
// into a key-value, window or session store whose values carry no
// timestamp, a delete) the timestamp of the record that caused it
// (ProcessorContext.timestamp()): the record being processed, the
// punctuation's time in a punctuator, or, when a record cache flushes the
// write later, that of the cached write (SetRecordContext).
type loggedStore struct {
	state.KeyValueStore
	topic       string
	partition   int32
	timestamped bool
	// skip is the length of the store key's prefix that the changelog key
	// leaves out: the 8-byte segment ID of window and session stores.
	skip int
	p    *producer
	// position returns the input record being processed and the timestamp
	// of the record being processed (task.Task.RecordTimestamp).
	position func() (topic string, partition int32, offset int64, recordTime int64)
	// flushed is the record context of the cached write being flushed,
	// set by the record cache for the next write only.
	flushed    state.RecordContext
	hasFlushed bool
	hbuf       []byte
	hdr        [1]operators.Header
}

// SetRecordContext implements state.RecordContextSetter: the next write
// is one the record cache flushes, caused by a record of timestamp
// rc.Timestamp.
func (s *loggedStore) SetRecordContext(rc state.RecordContext) {
	s.flushed, s.hasFlushed = rc, true
}

// headers returns the headers of the next changelog record and the
// timestamp of the record that caused it.
func (s *loggedStore) headers() ([]operators.Header, int64) {
	topic, part, off, ts := s.position()
	if s.hasFlushed {
		ts, s.hasFlushed = s.flushed.Timestamp, false
	}
	ts = max(ts, 0)
	if off < 0 {
		return nil, ts
	}
	s.hbuf = appendInputPosition(s.hbuf[:0], topic, part, off)
	s.hdr[0] = operators.Header{Key: inputHeader, Value: s.hbuf}
	return s.hdr[:], ts
}

func (s *loggedStore) Put(key, value []byte) error {
	hdrs, ts := s.headers()
	if s.timestamped && len(value) < 8 {
		return fmt.Errorf("sluice: store %s: value of %d bytes has no timestamp", s.Name(), len(value))
	}
	if err := s.KeyValueStore.Put(key, value); err != nil {
		return err
	}
	if err := s.p.err(); err != nil {
		return err
	}
	v := value
	if s.timestamped {
		ts, v = int64(binary.BigEndian.Uint64(value)), value[8:]
	}
	if v == nil {
		v = []byte{}
	}
	s.p.sendChangelog(s.topic, s.partition, key[s.skip:], v, hdrs, ts)
	return nil
}

func (s *loggedStore) Delete(key []byte) error {
	hdrs, ts := s.headers()
	if err := s.KeyValueStore.Delete(key); err != nil {
		return err
	}
	if err := s.p.err(); err != nil {
		return err
	}
	s.p.sendChangelog(s.topic, s.partition, key[s.skip:], nil, hdrs, ts)
	return nil
}

// DeleteRange implements state.RangeDeleter without logging: window and
// session stores drop expired segments with it, and their changelogs
// expire the same records by retention (cleanup.policy compact,delete).
func (s *loggedStore) DeleteRange(from, to []byte) error {
	if rd, ok := s.KeyValueStore.(state.RangeDeleter); ok {
		return rd.DeleteRange(from, to)
	}
	var keys [][]byte
	for k := range s.KeyValueStore.Range(from, to) {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := s.KeyValueStore.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// restoreStall bounds how long a restore may go without progress.
const restoreStall = 30 * time.Second

// restore replays a changelog partition from offset from (negative: the
// log start) to the end offset read when restoring starts, handing each
// data record to apply, with a client of its own (not the group's). It
// returns the number of records applied and the offset it restored to.
// Control records (transaction markers) are read and passed over, so a
// changelog ending in one does not hang the restore.
func (a *App) restore(ctx context.Context, topic string, partition int32, from int64, store string, apply func(*kgo.Record) error) (int64, int64, error) {
	adm := kadm.NewClient(a.admin)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sluice: restore %s partition %d: list start offsets: %w", topic, partition, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sluice: restore %s partition %d: list end offsets: %w", topic, partition, err)
	}
	start, ok1 := starts.Lookup(topic, partition)
	end, ok2 := ends.Lookup(topic, partition)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("sluice: restore %s: the broker lists no partition %d", topic, partition)
	}
	first := max(from, start.Offset)
	if first >= end.Offset {
		return 0, end.Offset, nil // nothing new, or everything deleted by retention
	}
	remaining := a.metrics.restoreRemaining.WithLabelValues(store)
	remaining.Set(float64(end.Offset - first))
	defer remaining.Set(0)
	a.log.Info("restoring store", "store", store, "topic", topic, "partition", partition, "from", first, "to", end.Offset)
	opts := append(a.baseClientOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(first)}}),
		kgo.KeepControlRecords(), // a transaction marker may be the last offset
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(32<<20),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var n int64
	last := first - 1
	restored := a.metrics.restored.WithLabelValues(store)
	lastLog := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, restoreStall)
		fs := cl.PollFetches(pctx)
		stalled := errors.Is(pctx.Err(), context.DeadlineExceeded)
		cancel()
		if err := ctx.Err(); err != nil {
			return n, 0, err
		}
		if stalled {
			return n, 0, fmt.Errorf("sluice: restore %s partition %d stalled at offset %d of %d for %v",
				topic, partition, last+1, end.Offset, restoreStall)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("sluice: restore %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return n, 0, ferr
		}
		var batch int64
		fs.EachRecord(func(r *kgo.Record) {
			if err != nil || r.Offset >= end.Offset {
				return
			}
			last = r.Offset
			if r.Attrs.IsControl() {
				return
			}
			if err = apply(r); err != nil {
				err = fmt.Errorf("sluice: restore %s partition %d offset %d: %w", topic, partition, r.Offset, err)
				return
			}
			batch++
		})
		if err != nil {
			return n, 0, err
		}
		n += batch
		restored.Add(float64(batch))
		remaining.Set(float64(end.Offset - 1 - last))
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			a.log.Info("restoring store", "store", store, "partition", partition, "restored", n, "remaining", end.Offset-1-last)
		}
		if last >= end.Offset-1 {
			return n, end.Offset, nil
		}
	}
}
