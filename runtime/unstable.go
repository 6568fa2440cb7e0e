package runtime

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The wait for stable committed offsets (committedOffsets) is bounded.
// A transaction that commits offsets of the group ends within its
// transaction timeout: its producer commits or aborts it, a successor with
// its transactional ID aborts it (InitProducerID), or the broker aborts it
// once the timeout has passed, which its periodic check notices up to
// transaction.abort.timed.out.transaction.cleanup.interval.ms (10s by
// default) later. Past unstableWarnAfter the wait logs an error naming the
// transactions that hold the offsets, as far as the broker tells
// (holdersOfGroupOffsets); past unstableFailAfter it fails the instance
// with that error, as Kafka Streams' task.timeout.ms fails a thread whose
// tasks cannot initialise: a transaction open for longer is hanging (the
// broker lost track of it) and only an operator can end it
// (kafka-transactions.sh find-hanging, then abort).

// unstableWarnAfter is how long committedOffsets waits for stable offsets
// before it logs the transactions holding them.
func (a *App) unstableWarnAfter() time.Duration {
	if a.unstableBounds != nil {
		return a.unstableBounds[0]
	}
	return a.cfg.txnTimeout + 15*time.Second
}

// unstableFailAfter is how long committedOffsets waits for stable offsets
// before it fails.
func (a *App) unstableFailAfter() time.Duration {
	if a.unstableBounds != nil {
		return a.unstableBounds[1]
	}
	return 3*a.cfg.txnTimeout + 60*time.Second
}

// offsetsTopic is Kafka's internal topic of the groups' committed offsets.
const offsetsTopic = "__consumer_offsets"

// offsetsPartition returns the partition of __consumer_offsets that holds
// group's offsets, as Kafka computes it: Utils.abs of the group ID's Java
// String.hashCode, modulo the topic's partition count.
func offsetsPartition(group string, partitions int32) int32 {
	var h int32
	for _, c := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(c)
	}
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}

// holdersOfGroupOffsets describes the transactions that make the group's
// committed offsets unstable, as far as the brokers tell: those open in
// the group's partition of __consumer_offsets (its leader's view, which
// also shows a hanging transaction the coordinators lost), each by its
// producer ID and epoch, the offset it starts at and, when a transaction
// coordinator knows the producer ID, its transactional ID, state and start
// time; when that partition cannot be described, the open transactions of
// the application's transactional IDs (<application ID>-...). ownPID is
// this instance's producer ID (-1 if none), marked in the description. It
// needs DESCRIBE on __consumer_offsets and on the transactional IDs; what
// it cannot learn it says.
func (a *App) holdersOfGroupOffsets(ctx context.Context, ownPID int64) string {
	adm := kadm.NewClient(a.admin)
	txns := a.openTransactions(ctx, adm)
	mine := func(pid int64) string {
		if pid == ownPID {
			return " (this instance's producer)"
		}
		return ""
	}
	describe := func(d kadm.DescribedTransaction) string {
		s := fmt.Sprintf("transactional ID %s (state %s, producer ID %d epoch %d%s", d.TxnID, d.State, d.ProducerID, d.ProducerEpoch, mine(d.ProducerID))
		if d.StartTimestamp > 0 {
			s += ", started " + time.UnixMilli(d.StartTimestamp).UTC().Format(time.RFC3339Nano)
		}
		return s + fmt.Sprintf(", timeout %v)", time.Duration(d.TimeoutMillis)*time.Millisecond)
	}
	held, why := a.offsetsPartitionProducers(ctx, adm)
	if why != "" {
		var parts []string
		for _, d := range txns {
			if strings.HasPrefix(d.TxnID, a.cfg.appID+"-") {
				parts = append(parts, describe(d))
			}
		}
		if len(parts) == 0 {
			return fmt.Sprintf("unknown (%s; no transaction of the application's transactional IDs is open)", why)
		}
		return fmt.Sprintf("unknown (%s); the application's open transactions: %s", why, strings.Join(parts, "; "))
	}
	if len(held) == 0 {
		return "no transaction open in the group's partition of " + offsetsTopic + " (it may have ended just now)"
	}
	var parts []string
	for _, h := range held {
		s := fmt.Sprintf("producer ID %d epoch %d%s, open in %s partition %d from offset %d, last write %s",
			h.ProducerID, h.ProducerEpoch, mine(h.ProducerID), h.Topic, h.Partition, h.CurrentTxnStartOffset,
			time.UnixMilli(h.LastTimestamp).UTC().Format(time.RFC3339Nano))
		found := false
		for _, d := range txns {
			if d.ProducerID == h.ProducerID {
				s += ", " + describe(d)
				found = true
			}
		}
		if !found {
			s += ", no open transaction of the transaction coordinators has this producer ID (a hanging transaction)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// offsetsPartitionProducers returns the producers with a transaction open
// in the group's partition of __consumer_offsets, or why they are unknown.
func (a *App) offsetsPartitionProducers(ctx context.Context, adm *kadm.Client) ([]kadm.DescribedProducer, string) {
	md, err := adm.Metadata(ctx, offsetsTopic)
	if err != nil {
		return nil, fmt.Sprintf("metadata of %s: %v", offsetsTopic, err)
	}
	td, ok := md.Topics[offsetsTopic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return nil, fmt.Sprintf("no metadata of %s: %v", offsetsTopic, td.Err)
	}
	p := offsetsPartition(a.cfg.appID, int32(len(td.Partitions)))
	var set kadm.TopicsSet
	set.Add(offsetsTopic, p)
	dp, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return nil, fmt.Sprintf("describe the producers of %s partition %d: %v", offsetsTopic, p, err)
	}
	var out []kadm.DescribedProducer
	var perr error
	dp.EachPartition(func(dpp kadm.DescribedProducersPartition) {
		if dpp.Err != nil {
			perr = dpp.Err
		}
		for _, pr := range dpp.ActiveProducers {
			if pr.CurrentTxnStartOffset >= 0 {
				out = append(out, pr)
			}
		}
	})
	if perr != nil {
		return nil, fmt.Sprintf("describe the producers of %s partition %d: %v", offsetsTopic, p, perr)
	}
	slices.SortFunc(out, func(x, y kadm.DescribedProducer) int { return int(x.CurrentTxnStartOffset - y.CurrentTxnStartOffset) })
	return out, ""
}

// openTransactions returns the transactions the transaction coordinators
// have open (ongoing, or preparing their commit or abort), described; nil
// if they cannot be listed.
func (a *App) openTransactions(ctx context.Context, adm *kadm.Client) []kadm.DescribedTransaction {
	lt, err := adm.ListTransactions(ctx, nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
	if err != nil || len(lt) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(lt))
	dt, err := adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		return nil
	}
	var out []kadm.DescribedTransaction
	for _, id := range ids {
		if d, ok := dt[id]; ok && d.Err == nil {
			out = append(out, d)
		}
	}
	return out
}

// ownProducerID returns the producer ID this instance last used under
// ExactlyOnce, -1 if none.
func (a *App) ownProducerID() int64 {
	if c, ok := a.commits.(*exactlyOnce); ok && c.txn != nil {
		return c.txn.pid.Load()
	}
	return -1
}
