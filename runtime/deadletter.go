package runtime

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/operators"
)

// The production error handler (OnProductionError) and the dead-letter
// writes it makes.
//
// A record a sink writes can fail in two places:
//
//   - Before it is produced: its record batch (the record alone in a
//     batch, batchBytes) is over the topic's limit, the smaller of the
//     client's ProducerBatchMaxBytes and the topic's max.message.bytes
//     (looked up with DescribeConfigs the first time the topic is
//     written, recordLimits). The collector then calls the handler at
//     once, on the task's goroutine, with the input record being
//     processed: the record is never produced, so nothing else fails with
//     it (franz-go would fail it the same way for a batch over
//     ProducerBatchMaxBytes; the broker for one over max.message.bytes,
//     together with the other records buffered for its partition).
//   - Asynchronously, when the broker refuses it with a non-retriable
//     record error (isRecordError: MESSAGE_TOO_LARGE after the topic's
//     limit was lowered, RECORD_LIST_TOO_LARGE, INVALID_RECORD, a policy
//     violation, ...). The record carries its origin (sinkContext: the
//     input record it came from, by reference, the task and the sink) to
//     its promise. franz-go fails every record buffered for the
//     partition with the batch's error: a size refusal is re-checked
//     against the topic's limit, looked up again, so that only a record
//     over it is handled as refused (as Kafka's Java producer splits a
//     batch refused as too large).
//
// Under AtLeastOnce an asynchronous refusal is handled at the commit, after
// the flush and before the offsets: records refused only with their batch
// are sent again, the handler decides for the others, dead-letter records
// are produced and the flush repeats until nothing more fails; only then
// the offsets commit. Under ExactlyOnce franz-go's producer cannot commit
// the transaction of a refused batch (it fails its producer ID): the
// transaction aborts and the tasks replay from the last commit, knowing
// what was refused (the topic's new limit; for other errors, the refused
// output of each input record, producer.remembered), so the replay hands
// the record to the handler before it is produced, and a dead-letter
// record is written once, in the transaction that commits the input
// offset past its record.

// recordBatchOverhead bounds the bytes of a record batch besides its one
// record: franz-go's recordBatchOverhead (65, counting the array length
// the broker's limit does not) plus the few bytes a flexible produce
// request may add. The check is thus a few bytes stricter than the
// broker's.
const recordBatchOverhead = 70

// batchBytes returns the wire size of a record batch holding only the
// record (v2 format, uncompressed): what franz-go and the broker compare
// with their limits for a record alone in its batch.
func batchBytes(key, value []byte, headers []operators.Header) int {
	n := 1 + 1 + 1 // attributes, timestamp delta 0, offset delta 0
	n += bytesLen(key) + bytesLen(value) + varintLen(len(headers))
	for _, h := range headers {
		n += varintLen(len(h.Key)) + len(h.Key) + bytesLen(h.Value)
	}
	return recordBatchOverhead + varintLen(n) + n
}

// bytesLen is the wire size of a nullable byte array of a record.
func bytesLen(b []byte) int {
	if b == nil {
		return 1 // varint -1
	}
	return varintLen(len(b)) + len(b)
}

// varintLen is the size of n as a zig-zag varint.
func varintLen(n int) int {
	u := uint64(n)<<1 ^ uint64(int64(n)>>63)
	l := 1
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}

// recordLimits knows the largest record batch each topic takes: the
// smaller of the client's ProducerBatchMaxBytes and the topic's
// max.message.bytes. The franz-go producer batches to the same limit
// (kgo.ProducerBatchMaxBytesFn), so a batch of small records is never
// over a topic's own limit.
type recordLimits struct {
	// client is the client's ProducerBatchMaxBytes (franz-go's default
	// 1,000,012, or what ClientOptions set).
	client int32
	admin  *kgo.Client
	log    *slog.Logger
	mu     sync.Mutex // serialises lookups
	topics atomic.Pointer[map[string]int32]
}

// forTopic returns topic's limit, looking the topic's max.message.bytes up
// the first time (once per topic; on failure the client's limit stands
// until learn looks again).
func (l *recordLimits) forTopic(topic string) int32 {
	if l == nil {
		return 1 << 30
	}
	if m := l.topics.Load(); m != nil {
		if v, ok := (*m)[topic]; ok {
			return v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.learn(ctx, topic)
	return l.known(topic)
}

// known returns topic's limit without looking it up: the client's limit
// for a topic not looked up yet. It is franz-go's
// ProducerBatchMaxBytesFn, called when a partition is first produced to,
// after the collector's forTopic.
func (l *recordLimits) known(topic string) int32 {
	if m := l.topics.Load(); m != nil {
		if v, ok := (*m)[topic]; ok {
			return v
		}
	}
	return l.client
}

// learn looks up the max.message.bytes of topics (again).
func (l *recordLimits) learn(ctx context.Context, topics ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	found := map[string]int32{}
	rcs, err := kadm.NewClient(l.admin).DescribeTopicConfigs(ctx, topics...)
	if err == nil {
		for _, rc := range rcs {
			if rc.Err != nil {
				continue
			}
			for _, c := range rc.Configs {
				if c.Key == "max.message.bytes" && c.Value != nil {
					if v, perr := strconv.ParseInt(*c.Value, 10, 32); perr == nil {
						found[rc.Name] = int32(v)
					}
				}
			}
		}
	}
	old := l.topics.Load()
	m := map[string]int32{}
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	for _, t := range topics {
		v, ok := found[t]
		if !ok {
			if _, had := m[t]; had {
				continue // keep what was known
			}
			l.log.Info("max.message.bytes of the topic unknown (DescribeConfigs needs the DESCRIBE_CONFIGS ACL): records are checked against the producer's ProducerBatchMaxBytes",
				"topic", t, "producer_batch_max_bytes", l.client, "err", err)
			v = l.client
		}
		// franz-go takes batch limits in [512, 1 GiB].
		m[t] = max(512, min(v, l.client))
	}
	l.topics.Store(&m)
}

// sinkContext is the context of a record a sink writes (kgo.Record's
// Context): how it is partitioned, and its origin, for its promise
// (sinkOrigin). It lives in the same allocation as the record
// (sinkRecord).
type sinkContext struct {
	// Context is set once, when the record's allocation is made, and
	// never written again, recycled or not (sinkRecords): franz-go may
	// call its Done after the promise ran (the goroutine that waits for
	// the partitions of a topic new to the client, waitUnknownTopic,
	// loops on the context of the record that started it).
	context.Context
	sinkOrigin
}

// sinkOrigin is what a sink record's promise needs to know of it.
type sinkOrigin struct {
	in   *kgo.Record // nil: written outside of a record's processing (a punctuator, a cache flush)
	task string
	node string
	// explicit: the record's partition was chosen (Partition); else by is
	// what it is partitioned by (murmur2), nil for its key.
	explicit bool
	by       []byte
	// seq is the record's place among the records the sink wrote for
	// in (producer.remembered's key).
	seq int32
	// sentAgain: the record was refused with its batch and sent again
	// (handleRefused).
	sentAgain bool
	// own is the allocation of the record and its context, recycled
	// once Kafka acknowledged the record (sinkRecords).
	own *sinkRecordInline
}

// sinkRecord is a record a sink writes and its context, in one
// allocation.
type sinkRecord struct {
	rec kgo.Record
	ctx sinkContext
}

// refusal is a sink record Kafka refused (isRecordError).
type refusal struct {
	rec *kgo.Record
	sc  *sinkContext
	err error
}

// outputKey identifies a record a sink wrote for an input record: stable
// across replays of the input record, as processing is deterministic.
//
// A record written outside of a record's processing (no input record) is
// identified by its sink, topic and content (sum).
type outputKey struct {
	topic     string
	partition int32
	offset    int64
	node      string
	out       string // the output topic
	seq       int32
	sum       uint64
}

// contentSum identifies a record by its key and value (outputKey.sum).
func contentSum(key, value []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(key)
	_, _ = h.Write([]byte{0xff, byte(len(key)), byte(len(key) >> 8), byte(len(key) >> 16)})
	_, _ = h.Write(value)
	return h.Sum64()
}

// remembered is what the producer keeps of an output record refused in an
// aborted transaction (ExactlyOnce).
type rememberedRefusal struct {
	err   error
	size  bool // refused as too large
	times int
	// at is the producer's commit count when it was remembered: an entry
	// without an input record lives noInputLifetime commits.
	at int64
}

// noInputLifetime is how many commits a refusal of a record written
// without an input record is remembered: a punctuator that writes the
// same refused record again and again costs one abort, not one per
// occurrence.
const noInputLifetime = 1000

// isRecordError reports an error of Kafka about the records themselves,
// which sending again cannot cure and which does not compromise the
// producer: it goes to the production handler. Fencing, authorization,
// transaction and configuration errors are fatal instead (as in Kafka
// Streams' RecordCollectorImpl.recordSendError), and so are retriable
// ones franz-go gave up on (CORRUPT_MESSAGE included): Kafka Streams hands
// those to the handler, whose default RETRY re-initialises the task;
// Sluice has no RETRY, and franz-go retries them without a delivery
// timeout here.
func isRecordError(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.PolicyViolation, kerr.InvalidTimestamp} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isSizeError reports a refusal for size.
func isSizeError(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// productionHandler applies OnProductionError and writes the dead-letter
// records it asks for.
type productionHandler struct {
	handle     operators.ErrorHandler
	deadLetter string
	log        *slog.Logger
	dropped    func(task, node, reason string)
	// deadLettered counts a dead-letter record the handler wrote (nil:
	// not counted beyond dropped).
	deadLettered func(task, node string)
	// logged rate-limits the log lines of records dropped or
	// dead-lettered: one per logInterval, with the number not logged.
	logMu      sync.Mutex
	loggedAt   time.Time
	suppressed int64
}

const productionLogInterval = 10 * time.Second

// errorContext describes the input record in of task to a handler; the
// headers are converted (the handler may not keep them).
func errorContext(task, node string, in *kgo.Record) *operators.ErrorContext {
	ec := &operators.ErrorContext{Kind: operators.ProductionFailure, TaskID: task, Node: node, Partition: -1, Offset: -1, Timestamp: -1}
	if in == nil {
		return ec
	}
	ec.Topic, ec.Partition, ec.Offset = in.Topic, in.Partition, in.Offset
	ec.Timestamp = in.Timestamp.UnixMilli()
	ec.SourceKey, ec.SourceValue = in.Key, in.Value
	if len(in.Headers) > 0 {
		ec.Headers = make([]operators.Header, len(in.Headers))
		for i, h := range in.Headers {
			ec.Headers[i] = operators.Header{Key: h.Key, Value: h.Value}
		}
	}
	return ec
}

// decide runs the handler on a refused record of node (sink) of task,
// written for the input record in (nil outside of a record's
// processing), and carries out its decision: nil to go on (the record is
// dropped, counted, and for DeadLetter the input record is sent to the
// dead-letter queue through p), or perr, which stops the task (the
// caller names the task, node and input record). outTS is the refused
// record's timestamp: without an input record it is the context's, as
// Kafka Streams' punctuator context has the punctuation's time.
func (h *productionHandler) decide(p *producer, r *runner, task, node string, in *kgo.Record, outTS int64, perr *operators.ProductionError) error {
	ec := errorContext(task, node, in)
	if in == nil {
		ec.Timestamp = outTS
	}
	action, err := h.call(ec, perr)
	if err != nil {
		return err
	}
	if action == operators.DeadLetter && h.deadLetter == "" {
		return fmt.Errorf("sluice: task %s: OnProductionError returned DeadLetter but no dead-letter queue topic is configured "+
			"(runtime.DeadLetterQueue): %w", task, perr)
	}
	switch action {
	case operators.Continue:
		h.dropped(task, node, "production-error")
		h.logDropped("dropping a record Kafka cannot take (OnProductionError: continue)", ec, perr)
		return nil
	case operators.DeadLetter:
		// Without an input record (a punctuator's or a record cache's
		// write) the dead-letter record has a null key and value, as
		// Kafka Streams writes for a punctuator (and the task's handlers).
		hs := operators.DeadLetterHeaders(ec, perr)
		var key, value []byte
		if in != nil {
			key, value = in.Key, in.Value
		}
		p.sendDeadLetter(r, h.deadLetter, key, value, hs, ec.Timestamp)
		h.dropped(task, node, "dead-letter")
		if h.deadLettered != nil {
			h.deadLettered(task, node)
		}
		h.logDropped("sending the input record of a record Kafka cannot take to the dead-letter queue", ec, perr, "dead_letter_topic", h.deadLetter)
		return nil
	}
	return perr
}

// call runs the user's handler; a panic in it is an error that stops the
// instance, as Kafka Streams fails the task on an exception of the
// production handler ("Fatal user code error in production error
// callback"), never another handler.
func (h *productionHandler) call(ec *operators.ErrorContext, perr *operators.ProductionError) (a operators.Action, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sluice: task %s: the production error handler panicked on %v: %w", ec.TaskID, perr,
				&operators.PanicError{Node: ec.Node, Value: v, Stack: debug.Stack()})
		}
	}()
	return h.handle(ec, perr), nil
}

func (h *productionHandler) logDropped(msg string, ec *operators.ErrorContext, perr *operators.ProductionError, attrs ...any) {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	now := time.Now()
	if !h.loggedAt.IsZero() && now.Sub(h.loggedAt) < productionLogInterval {
		h.suppressed++
		return
	}
	attrs = append(attrs, "task", ec.TaskID, "node", ec.Node, "topic", ec.Topic, "partition", ec.Partition, "offset", ec.Offset,
		"err", perr, "not_logged_since_last", h.suppressed)
	h.log.Warn(msg, attrs...)
	h.loggedAt, h.suppressed = now, 0
}

// sendDeadLetterChecked produces a dead-letter record of the
// deserialization or processing handler (written through the task's
// collector): never to the production handler, so that a record counted
// as dead-lettered is written or the instance stops. Over the dead-letter
// topic's limit it is an error that stops the task.
func (p *producer) sendDeadLetterChecked(r *runner, topic string, key, value []byte, headers []operators.Header, ts int64) error {
	if err := p.err(); err != nil {
		return err
	}
	if size, limit := batchBytes(key, value, headers), p.limits.forTopic(topic); size > int(limit) {
		return fmt.Errorf("sluice: cannot write a dead-letter record of %d bytes to topic %s: %w", size, topic, errTooLarge(size, limit))
	}
	hs := make([]operators.Header, len(headers))
	for i, h := range headers {
		hs[i] = operators.Header{Key: h.Key, Value: bytesCloneNullable(h.Value)}
	}
	p.sendDeadLetter(r, topic, bytesCloneNullable(key), bytesCloneNullable(value), hs, ts)
	return nil
}

// bytesCloneNullable copies b, keeping a nil nil (a Kafka null) and an
// empty b empty (not null): franz-go writes a nil header value as null.
func bytesCloneNullable(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// sendDeadLetter produces a dead-letter record, partitioned by its key (as
// Kafka Streams' dead-letter records have no partition). Its failure is
// fatal, as any send's. r is the runner of the task it is for, nil if
// none (sendFor).
func (p *producer) sendDeadLetter(r *runner, topic string, key, value []byte, headers []operators.Header, ts int64) {
	rec := &kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: time.UnixMilli(ts)}
	rec.Headers = make([]kgo.RecordHeader, len(headers))
	for i, h := range headers {
		rec.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	p.sendFor(r, rec, p.promise)
}

// refuse handles a record of size bytes to topic that Kafka would refuse
// (over limit) or refused (err) before it is produced: the handler
// decides (see decide).
// in is the input record the record was written for, nil if none.
func (c *nodeCollector) refuse(in *kgo.Record, topic string, part int32, size int, ts int64, err error) error {
	perr := &operators.ProductionError{Node: c.node, Topic: topic, Partition: part, Size: size, Err: err}
	return c.t.p.handler.decide(c.t.p, c.t.r, c.t.r.taskID(), c.node, in, ts, perr)
}

// errTooLarge is the error of a record refused before it is produced.
func errTooLarge(size int, limit int32) error {
	return fmt.Errorf("%w: its record batch of %d bytes is over the topic's limit of %d bytes (the smaller of the producer's ProducerBatchMaxBytes and the topic's max.message.bytes)",
		kerr.MessageTooLarge, size, limit)
}

// errRefused aborts a transaction in which Kafka refused records.
var errRefused = errors.New("sluice: Kafka refused records of the transaction: aborting it to replay them through the production handler")

// hasRefused reports refusals not handled yet.
func (p *producer) hasRefused() bool {
	p.refusedMu.Lock()
	defer p.refusedMu.Unlock()
	return len(p.refused) > 0
}

// takeRefused returns and forgets the refusals so far.
func (p *producer) takeRefused() []refusal {
	p.refusedMu.Lock()
	defer p.refusedMu.Unlock()
	rs := p.refused
	p.refused = nil
	return rs
}

// handleRefused handles the asynchronous refusals of the records sent so
// far (AtLeastOnce, after a flush): a record refused only with its batch
// (its own batch fits the topic's limit, looked up again) is sent again
// once; the handler decides for the others. It returns whether anything
// was sent (the caller flushes again), or the error that stops the
// instance.
func (p *producer) handleRefused(ctx context.Context) (bool, error) {
	rs := p.takeRefused()
	if len(rs) == 0 {
		return false, nil
	}
	p.learnLimits(ctx, rs)
	for _, f := range rs {
		r := f.rec
		size := recordBatchBytes(r)
		if isSizeError(f.err) && size <= int(p.limits.known(r.Topic)) && !f.sc.sentAgain {
			f.sc.sentAgain = true
			p.produceRecord(r, p.sinkPromise)
			continue
		}
		perr := &operators.ProductionError{Node: f.sc.node, Topic: r.Topic, Partition: r.Partition, Size: size, Err: f.err}
		if err := p.handler.decide(p, nil, f.sc.task, f.sc.node, f.sc.in, r.Timestamp.UnixMilli(), perr); err != nil {
			ne := &operators.NodeError{Task: f.sc.task, Node: f.sc.node, Err: err}
			if in := f.sc.in; in != nil {
				ne.Topic, ne.Partition, ne.Offset = in.Topic, in.Partition, in.Offset
			}
			// Kept as the producer's failure: no later flush succeeds, so
			// no commit (the shutdown's included) passes the record.
			p.first.CompareAndSwap(nil, &ProduceError{Topic: r.Topic, Partition: r.Partition, Err: ne})
			return true, ne
		}
	}
	return true, nil
}

// learnLimits looks up again the limits of the topics that refused records
// as too large.
func (p *producer) learnLimits(ctx context.Context, rs []refusal) {
	var topics []string
	seen := map[string]bool{}
	for _, f := range rs {
		if isSizeError(f.err) && !seen[f.rec.Topic] {
			seen[f.rec.Topic] = true
			topics = append(topics, f.rec.Topic)
		}
	}
	if len(topics) > 0 && p.limits != nil {
		p.limits.learn(ctx, topics...)
	}
}

// rememberRefused keeps what the aborted transaction's refusals tell
// (ExactlyOnce): the topics' limits, looked up again, and each refused
// output of an input record, so that its replay hands it to the handler
// before producing it (nodeCollector.Send). A record refused for size
// whose batch fits the topic's limit was refused with its batch and is
// produced again on replay; refused a second time, it is handed to the
// handler.
func (p *producer) rememberRefused(ctx context.Context) {
	rs := p.takeRefused()
	if len(rs) == 0 {
		return
	}
	p.learnLimits(ctx, rs)
	p.rememberedMu.Lock()
	defer p.rememberedMu.Unlock()
	if p.remembered == nil {
		p.remembered = map[outputKey]*rememberedRefusal{}
	}
	for _, f := range rs {
		k := outputKey{node: f.sc.node, out: f.rec.Topic}
		if in := f.sc.in; in != nil {
			k.topic, k.partition, k.offset, k.seq = in.Topic, in.Partition, in.Offset, f.sc.seq
		} else {
			// Written by a punctuator or a cache flush, whose order on
			// replay is not the input's: known by its content.
			k.partition, k.offset, k.sum = -1, -1, contentSum(f.rec.Key, f.rec.Value)
		}
		m := p.remembered[k]
		if m == nil {
			m = &rememberedRefusal{}
			p.remembered[k] = m
		}
		m.err, m.size, m.at = f.err, isSizeError(f.err), p.commits
		m.times++
	}
}

// recall returns the error an output k was refused with in an aborted
// transaction, if its replay must go to the handler before it is produced
// (a refusal other than for size, or a second one for size); nil
// otherwise. offLoop: the caller is a task's restore, which runs off the
// poll loop and reads under rememberedMu.
func (p *producer) recall(k outputKey, offLoop bool) error {
	if offLoop {
		p.rememberedMu.RLock()
		defer p.rememberedMu.RUnlock()
	}
	if m := p.remembered[k]; m != nil && (!m.size || m.times > 1) {
		return m.err
	}
	return nil
}

// forgetRemembered drops what is remembered of the input records below the
// committed offsets, and of the records written without one after
// noInputLifetime commits.
func (p *producer) forgetRemembered(offsets map[string]map[int32]kgo.EpochOffset) {
	p.commits++
	p.rememberedMu.Lock()
	defer p.rememberedMu.Unlock()
	for k, m := range p.remembered {
		if k.offset < 0 {
			// Without an input record: known by content, kept for a
			// while, as such a record may come again (a punctuator).
			if p.commits-m.at > noInputLifetime {
				delete(p.remembered, k)
			}
			continue
		}
		if eo, ok := offsets[k.topic][k.partition]; ok && k.offset < eo.Offset {
			delete(p.remembered, k)
		}
	}
}

// recordBatchBytes is batchBytes of a kgo.Record.
func recordBatchBytes(r *kgo.Record) int {
	hs := make([]operators.Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = operators.Header{Key: h.Key, Value: h.Value}
	}
	return batchBytes(r.Key, r.Value, hs)
}
