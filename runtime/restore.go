package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
