package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Transactions under ExactlyOnce: franz-go's lower-level transactional API
// on the App's one group client (BeginTransaction, Flush, EndTransaction),
// with the offsets added to the transaction by a TxnOffsetCommit of
// Sluice's own. Why not kgo.GroupTransactSession: it commits what was
// polled, not what was processed (a runner holds polled records across
// rounds), and any revoke fails the whole transaction, so the revoked
// tasks could not be committed on revoke as Kafka Streams does; its abort
// rewinds every partition to positions Sluice does not keep. Here Sluice
// commits exactly the runners' offsets, with the tasks' processor metadata
// in the offset metadata, and decides itself what rolls back.

// txnLayer is the transaction protocol on the group client.
type txnLayer struct {
	cl         *kgo.Client
	admin      *kgo.Client
	log        *slog.Logger
	group      string
	id         string // the transactional ID
	instanceID string
	// addOffsets: the cluster does not run KIP-890 part 2 transactions
	// (its transaction.version feature is below 2, or its brokers lack
	// TxnOffsetCommit v5), so the group's offsets partition is added to
	// each transaction with AddOffsetsToTxn first, and TxnOffsetCommit is
	// sent at v4 at most (as franz-go does then) through v4.
	addOffsets bool
	v4         *kgo.Client
	// newClient makes a client with the App's base options and opts.
	newClient func(opts ...kgo.Opt) (*kgo.Client, error)

	// pid is the producer ID last used (init, TxnOffsetCommit), -1
	// before: what diagnostics name as this instance's producer.
	pid atomic.Int64

	// ids caches topic IDs: TxnOffsetCommit v6 (KIP-1319) names topics by
	// ID, and its responses may carry only the ID.
	idsMu sync.Mutex
	ids   map[string][16]byte
}

// retryBackoff is the first wait before retrying a transactional request
// refused with CONCURRENT_TRANSACTIONS (the broker is still completing the
// previous transaction) or a coordinator error; it doubles up to 500ms.
const retryBackoff = 10 * time.Millisecond

// init initialises the producer ID: a predecessor with the same
// transactional ID is fenced and its open transaction aborted, at once
// rather than at its transaction timeout. It also learns whether the
// broker needs AddOffsetsToTxn.
func (t *txnLayer) init(ctx context.Context) error {
	t.pid.Store(-1)
	pid, epoch, err := t.cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("sluice: init the producer ID of transactional ID %s: %w", t.id, err)
	}
	t.pid.Store(pid)
	req := kmsg.NewPtrApiVersionsRequest()
	resp, err := req.RequestWith(ctx, t.admin)
	if err != nil {
		return fmt.Errorf("sluice: API versions of the brokers: %w", err)
	}
	tv := int16(0)
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" {
			tv = f.MaxVersionLevel
		}
	}
	// Decided once: franz-go opts in to KIP-890 part 2 when the cluster
	// is upgraded while it runs, and explicit AddOffsetsToTxn and v4
	// remain valid on an upgraded cluster until this instance restarts.
	t.addOffsets = tv < 2
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.TxnOffsetCommit) && k.MaxVersion < 5 {
			t.addOffsets = true
		}
	}
	if t.addOffsets && t.newClient != nil {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
		if t.v4, err = t.newClient(kgo.MaxVersions(vs)); err != nil {
			return err
		}
	}
	t.log.Info("transactions", "transactional_id", t.id, "producer_id", pid, "producer_epoch", epoch,
		"transaction_version", tv, "add_offsets_to_txn", t.addOffsets)
	return nil
}

// close closes the layer's own client, if any.
func (t *txnLayer) close() {
	if t.v4 != nil {
		t.v4.Close()
	}
}

// begin opens a transaction: franz-go refuses transactional produces
// outside of one.
func (t *txnLayer) begin() error {
	if err := t.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("sluice: begin a transaction of transactional ID %s: %w", t.id, err)
	}
	return nil
}

// topicIDs returns the IDs of topics, from the cache or the brokers.
func (t *txnLayer) topicIDs(ctx context.Context, topics []string) (map[string][16]byte, error) {
	t.idsMu.Lock()
	defer t.idsMu.Unlock()
	if t.ids == nil {
		t.ids = map[string][16]byte{}
	}
	var missing []string
	for _, tp := range topics {
		if _, ok := t.ids[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	if len(missing) > 0 {
		md, err := kadm.NewClient(t.admin).Metadata(ctx, missing...)
		if err != nil {
			return nil, fmt.Errorf("sluice: topic IDs of %v: %w", missing, err)
		}
		for _, tp := range missing {
			d, ok := md.Topics[tp]
			if !ok {
				return nil, fmt.Errorf("sluice: topic ID of %s: not in the brokers' metadata", tp)
			}
			if d.Err != nil {
				return nil, fmt.Errorf("sluice: topic ID of %s: %w", tp, d.Err)
			}
			t.ids[tp] = d.ID
		}
	}
	out := make(map[string][16]byte, len(topics))
	for _, tp := range topics {
		out[tp] = t.ids[tp]
	}
	return out, nil
}

// forget drops a topic's cached ID.
func (t *txnLayer) forget(topic string) {
	t.idsMu.Lock()
	delete(t.ids, topic)
	t.idsMu.Unlock()
}

// commitOffsets adds offsets, with each partition's metadata (meta, may be
// empty), to the open transaction. The broker refuses it (KIP-447) when
// this member's generation is over: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID
// or FENCED_INSTANCE_ID, which the caller answers with an abort.
func (t *txnLayer) commitOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset, meta map[string]map[int32]string) error {
	if len(offsets) == 0 {
		return nil // output only (a wall-clock punctuation): EndTxn commits it
	}
	topics := make([]string, 0, len(offsets))
	for tp := range offsets {
		topics = append(topics, tp)
	}
	ids, err := t.topicIDs(ctx, topics)
	if err != nil {
		return err
	}
	byID := make(map[[16]byte]string, len(ids))
	for tp, id := range ids {
		byID[id] = tp
	}
	if t.addOffsets {
		if err := t.retry(ctx, "AddOffsetsToTxn", func() error { return t.addOffsetsToTxn(ctx) }); err != nil {
			return err
		}
	}
	var sentMember string
	var sentGen int32
	send := func() error {
		pid, epoch, err := t.cl.ProducerID(ctx)
		if err != nil {
			return err
		}
		t.pid.Store(pid)
		member, gen := t.cl.GroupMetadata()
		sentMember, sentGen = member, gen
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group = t.id, t.group
		req.ProducerID, req.ProducerEpoch = pid, epoch
		req.Generation, req.MemberID = gen, member
		if t.instanceID != "" {
			req.InstanceID = kmsg.StringPtr(t.instanceID)
		}
		for tp, ps := range offsets {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = tp, ids[tp]
			for p, eo := range ps {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, eo.Offset, eo.Epoch
				if m, ok := meta[tp][p]; ok {
					rp.Metadata = kmsg.StringPtr(m)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		via := t.cl
		if t.v4 != nil {
			via = t.v4
		}
		resp, err := req.RequestWith(ctx, via)
		if err != nil {
			return err
		}
		for _, rt := range resp.Topics {
			name := rt.Topic
			if name == "" {
				name = byID[rt.TopicID]
			}
			for _, rp := range rt.Partitions {
				if e := kerr.ErrorForCode(rp.ErrorCode); e != nil {
					if errors.Is(e, kerr.UnknownTopicID) {
						t.forget(name) // recreated: the next commit looks it up again
					}
					return fmt.Errorf("topic %s partition %d: %w", name, rp.Partition, e)
				}
			}
		}
		return nil
	}
	err = t.retry(ctx, "TxnOffsetCommit", send)
	if errors.Is(err, kerr.IllegalGeneration) {
		// A join and sync completed while the commit was on its way
		// (the poll loop holds back the callbacks, not the rebalance).
		// Still the same member, it still owns its partitions until its
		// revoke callback runs, which waits for this commit: send again
		// with the new generation rather than abort every task.
		if member, gen := t.cl.GroupMetadata(); member == sentMember && gen > sentGen {
			t.log.Info("offsets refused by a generation that just ended: sending them again with the new one",
				"group", t.group, "generation", gen, "was", sentGen)
			err = t.retry(ctx, "TxnOffsetCommit", send)
		}
	}
	return err
}

func (t *txnLayer) addOffsetsToTxn(ctx context.Context) error {
	pid, epoch, err := t.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = t.id, pid, epoch, t.group
	resp, err := req.RequestWith(ctx, t.cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// retry runs fn until it succeeds, fails with an error other than
// CONCURRENT_TRANSACTIONS or a retriable coordinator error, or ctx ends.
func (t *txnLayer) retry(ctx context.Context, name string, fn func() error) error {
	backoff := retryBackoff
	for {
		err := fn()
		if err == nil || !(errors.Is(err, kerr.ConcurrentTransactions) || errors.Is(err, kerr.CoordinatorLoadInProgress) ||
			errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable)) {
			if err != nil {
				return fmt.Errorf("sluice: %s of transactional ID %s, group %s: %w", name, t.id, t.group, err)
			}
			return nil
		}
		t.log.Debug("transactional request refused for now: retrying", "request", name, "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("sluice: %s of transactional ID %s, group %s: %w (last refusal: %w)", name, t.id, t.group, ctx.Err(), err)
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// commit ends the open transaction with a commit. An error means the
// transaction did not commit (or its outcome is unknown): the caller
// aborts.
func (t *txnLayer) commit(ctx context.Context) error {
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("sluice: commit the transaction of transactional ID %s: %w", t.id, err)
	}
	return nil
}

// abort drops the records buffered for the open transaction and aborts
// it. Its error decides whether the instance can go on (DESIGN: "TryAbort
// decides"): nil when the transaction is aborted and the producer usable
// (franz-go re-initialises the producer ID when its epoch was bumped by a
// transaction timeout), an error when it was fenced by a newer producer
// with the same transactional ID (PRODUCER_FENCED and kin) or the abort
// cannot be confirmed.
func (t *txnLayer) abort(ctx context.Context) error {
	if err := t.cl.AbortBufferedRecords(ctx); err != nil {
		return fmt.Errorf("sluice: abort the buffered records of transactional ID %s: %w", t.id, err)
	}
	var err error
	backoff := 100 * time.Millisecond
	for try := 0; ; try++ {
		// A retry after an unconfirmed outcome (a transport error)
		// re-initialises the producer ID, which aborts on the broker.
		if err = t.cl.EndTransaction(ctx, kgo.TryAbort); err == nil {
			return nil
		}
		if ke, ok := errors.AsType[*kerr.Error](err); ok && !ke.Retriable || ctx.Err() != nil {
			break
		}
		// The brokers unreachable (an outage): retried until ctx ends;
		// other errors three times.
		if !transientBrokerErr(err) && try >= 2 {
			break
		}
		if try == 0 || try%10 == 0 {
			t.log.Warn("abort the transaction: brokers unavailable, retrying", "transactional_id", t.id, "attempt", try+1, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	return fmt.Errorf("sluice: abort the transaction of transactional ID %s: %w", t.id, err)
}

// isFencing reports errors after which this instance must not go on: a
// newer producer with its transactional ID, or a newer member with its
// instance ID, took its place.
func isFencing(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.FencedInstanceID)
}

// abortReason is the metrics label of an abort caused by err.
func abortReason(err error) string {
	switch {
	case err == nil:
		return "requested"
	case isRebalanceError(err) || errors.Is(err, kerr.StaleMemberEpoch) || errors.Is(err, kerr.GroupIDNotFound):
		return "group"
	case errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) || errors.Is(err, kerr.OperationNotAttempted):
		return "producer"
	case errors.Is(err, kerr.TransactionAbortable):
		return "abortable"
	case errors.Is(err, errInjected):
		return "injected"
	case errors.Is(err, errRefused):
		return "refused"
	}
	return "error"
}

// errInjected is the error of a test's commit hook.
var errInjected = errors.New("sluice: abort injected by a test")
