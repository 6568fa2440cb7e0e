package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreStall bounds how long a restore may go without progress.
const restoreStall = 30 * time.Second

// changelogReader reads a topic partition from an offset up to an end,
// with a client of its own (not the group's), handing each data record to
// a callback. It is how a task's stores restore their changelogs; standby
// tasks and global tables will read their topics with it too. Control
// records (transaction markers) are read and passed over, so a partition
// ending in one does not hang the read. A read honours its context: when
// it ends, the read stops and returns the context's error, and whatever
// the callback applied stays applied (the caller's meta record of the
// changelog offsets, not moved, makes the next read start over from it).
//
// With readCommitted (exactly-once) a read sees committed records only:
// its clients read with isolation level read_committed and its end is the
// partition's last stable offset (kadm's ListCommittedOffsets), not the
// high watermark, which may be held by an open transaction. The records
// below the end that belong to aborted transactions are filtered out, and
// a read whose last records are such never gets a record at end-1: it
// also ends at the first record (or transaction marker) at or past the
// end, which comes once the transactions open at the end are over (Kafka
// Streams' restore consumer ends at its position instead, which franz-go
// does not expose for a client's partitions). A task's restore reads to
// the log end offset instead (readToLogEnd): it waits for the
// transactions open below it, which may hold the last stable offset
// below committed records of the task.
type changelogReader struct {
	// clientOpts are the options of the reader's clients (brokers, TLS,
	// SASL, the App's client context).
	clientOpts []kgo.Opt
	// clientMetrics, if set, gives each client its Kafka client metrics,
	// named client (App.baseClientOpts).
	clientMetrics func(client string) kgo.Opt
	admin         *kadm.Client
	// readCommitted: read committed records only, to the last stable
	// offset (exactly-once).
	readCommitted bool
	// stall bounds how long a read may go without progress (restoreStall
	// when zero).
	stall time.Duration
	log   *slog.Logger
	// restored counts the records handed to the callback and remaining
	// is the number still to read, by the label given to read.
	restored  *prometheus.CounterVec
	remaining *prometheus.GaugeVec
}

// read reads topic's partition from offset from (negative: the log start)
// to the end offset listed when the read starts (the last stable offset
// with readCommitted), handing each data record to apply; label names the
// reader in logs and metrics (the store). It returns the number of records
// applied and the offset it read to (the end offset).
func (cr *changelogReader) read(ctx context.Context, topic string, partition int32, from int64, label string, apply func(*kgo.Record) error) (int64, int64, error) {
	return cr.readTo(ctx, topic, partition, from, label, false, apply)
}

// readToLogEnd is read with the partition's log end offset (its high
// watermark) as the end even with readCommitted: the read then ends only
// once every transaction open below that end is over, and hands on the
// committed records of all of them. A task's changelog restores so under
// exactly-once, as Kafka Streams' restores do (KAFKA-10167): the last
// stable offset can be held back by another producer's open transaction
// (a zombie's, until its transaction timeout) below committed
// transactions of this task, and a restore that stopped there would
// leave out committed changes the group's committed offsets already
// cover (a local state lagging its last commit restores nothing at all
// when its changelog offset is past the last stable offset).
func (cr *changelogReader) readToLogEnd(ctx context.Context, topic string, partition int32, from int64, label string, apply func(*kgo.Record) error) (int64, int64, error) {
	return cr.readTo(ctx, topic, partition, from, label, true, apply)
}

// readTo is read to the log end offset (logEnd) or, with readCommitted,
// to the last stable offset.
func (cr *changelogReader) readTo(ctx context.Context, topic string, partition int32, from int64, label string, logEnd bool, apply func(*kgo.Record) error) (int64, int64, error) {
	// The brokers may be unreachable for a while (an outage): the
	// listings are retried until ctx ends (the task closes).
	var starts kadm.ListedOffsets
	err := retryBrokers(ctx, cr.log, "restore "+topic+": list start offsets", func() (err error) {
		if starts, err = cr.admin.ListStartOffsets(ctx, topic); err == nil {
			err = starts.Error()
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sluice: restore %s partition %d: list start offsets: %w", topic, partition, err)
	}
	list, what := cr.admin.ListEndOffsets, "end"
	if cr.readCommitted && !logEnd {
		list, what = cr.admin.ListCommittedOffsets, "last stable"
	}
	var ends kadm.ListedOffsets
	err = retryBrokers(ctx, cr.log, "restore "+topic+": list "+what+" offsets", func() (err error) {
		if ends, err = list(ctx, topic); err == nil {
			err = ends.Error()
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sluice: restore %s partition %d: list %s offsets: %w", topic, partition, what, err)
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
	// The store's partitions restore at the same time (one task each):
	// each read adds its part to the gauge and takes it away at its end.
	remaining := cr.remaining.WithLabelValues(label)
	left := float64(end.Offset - first)
	remaining.Add(left)
	defer func() { remaining.Sub(left) }()
	cr.log.Info("restoring store", "store", label, "topic", topic, "partition", partition, "from", first, "to", end.Offset)
	opts := append(slices.Clone(cr.clientOpts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(first)}}),
		kgo.KeepControlRecords(), // a transaction marker may be the last offset
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(32<<20),
	)
	if cr.readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if cr.clientMetrics != nil {
		opts = append(opts, cr.clientMetrics(fmt.Sprintf("restore-%s-%d", topic, partition)))
	}
	stall := cr.stall
	if stall <= 0 {
		stall = restoreStall
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var n int64
	last := first - 1
	restored := cr.restored.WithLabelValues(label)
	lastLog := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, stall)
		fs := cl.PollFetches(pctx)
		stalled := errors.Is(pctx.Err(), context.DeadlineExceeded)
		cancel()
		if err := ctx.Err(); err != nil {
			return n, 0, err
		}
		if stalled {
			return n, 0, fmt.Errorf("sluice: restore %s partition %d stalled at offset %d of %d for %v",
				topic, partition, last+1, end.Offset, stall)
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
		past := false // a record at or past the end came
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end.Offset {
				past = true
			}
			if err != nil || past {
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
		now := float64(end.Offset - 1 - last)
		remaining.Add(now - left)
		left = now
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			cr.log.Info("restoring store", "store", label, "partition", partition, "restored", n, "remaining", end.Offset-1-last)
		}
		if last >= end.Offset-1 || past {
			return n, end.Offset, nil
		}
	}
}

// newChangelogReader returns the App's changelog reader, on its admin
// client.
func (a *App) newChangelogReader() *changelogReader {
	cr := &changelogReader{clientOpts: a.connOpts(), admin: kadm.NewClient(a.admin), log: a.log,
		restored: a.metrics.restored, remaining: a.metrics.restoreRemaining}
	cr.clientMetrics = func(client string) kgo.Opt { return kafkaMetrics(a.promReg, a.log, a.cfg.appID, client) }
	if a.cfg.guarantee == ExactlyOnce {
		// An open transaction holds the end until it ends, at most the
		// transaction timeout of its producer (Sluice's instances use
		// the App's): a read waits for it rather than fail.
		cr.readCommitted, cr.stall = true, max(restoreStall, 2*a.cfg.txnTimeout)
	}
	return cr
}

// restoreTask replays a changelog partition of a task's store into it
// with the App's changelog reader, to the log end offset: see
// changelogReader.readToLogEnd.
func (a *App) restoreTask(ctx context.Context, topic string, partition int32, from int64, store string, apply func(*kgo.Record) error) (int64, int64, error) {
	return a.changelogs.readToLogEnd(ctx, topic, partition, from, store, apply)
}

// restore replays a partition of a global store's topic into it with the
// App's changelog reader: see changelogReader.read.
func (a *App) restore(ctx context.Context, topic string, partition int32, from int64, store string, apply func(*kgo.Record) error) (int64, int64, error) {
	return a.changelogs.read(ctx, topic, partition, from, store, apply)
}
