package runtime

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/partition"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
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
	if sc, ok := r.Context.(*sinkContext); ok && (sc.explicit || sc.by != nil) {
		return true
	}
	return r.Key != nil || r.Context == explicitPartition
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Context == explicitPartition {
		return int(r.Partition)
	}
	if sc, ok := r.Context.(*sinkContext); ok {
		if sc.explicit {
			return int(r.Partition)
		}
		if sc.by != nil {
			return partition.ForKey(sc.by, n)
		}
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
	// logged is the promise of changelog records: it also tracks the end
	// offset of each changelog partition written (ends), for checkpoints.
	logged func(*kgo.Record, error)
	endsMu sync.Mutex
	ends   map[state.TopicPartition]int64
	first  atomic.Pointer[ProduceError]
	// produced counts the records sent, finished those whose promise
	// ran: franz-go calls the promise of a record it refuses before
	// buffering it after Produce returns, and Flush does not wait for
	// those, so a commit waits for finished to reach produced (wait).
	// Two counters, each written by one side (the workers, the promises),
	// not a WaitGroup both sides write: its counter's cache line moving
	// between the cores at every record was 6% of a count's CPU.
	_        [64]byte
	produced atomic.Int64
	_        [64]byte // produced and finished on cache lines of their own
	finished atomic.Int64
	_        [64]byte
	// waiting is set while wait waits for finished to reach waitFor; the
	// promise that gets it there closes waitDone.
	waiting  atomic.Bool
	waitMu   sync.Mutex
	waitFor  int64
	waitDone chan struct{}
	// txnStart is produced when the transaction began (resetSent).
	txnStart atomic.Int64
	// sinkPromise is the promise of the records sinks write: a record
	// Kafka refuses (isRecordError) goes to refused, for the production
	// handler (deadletter.go); other failures are kept as promise keeps
	// them.
	sinkPromise func(*kgo.Record, error)
	refusedMu   sync.Mutex
	refused     []refusal
	// remembered are the sink records refused in aborted transactions, by
	// input record (ExactlyOnce; see rememberRefused). Written by the
	// poll loop while no task runs, under rememberedMu, read by the tasks:
	// by the workers between the writes, by a task's restore (its
	// processors' Init) under rememberedMu (recall).
	rememberedMu sync.RWMutex
	remembered   map[outputKey]*rememberedRefusal
	// commits counts the commits that forgot remembered refusals
	// (forgetRemembered).
	commits int64
	// limits are the topics' record size limits; handler applies
	// OnProductionError. Both nil in tests that make a bare producer.
	limits  *recordLimits
	handler *productionHandler
	// gen is the value of the GenerationHeader of changelog records: the
	// group generation of the instance's latest assignment (setGeneration),
	// nil before the first.
	gen atomic.Pointer[[]byte]

	// Records staged during a round (produceRecord, beginRound): the
	// batch being filled, the round's channel to its goroutine and that
	// goroutine's end, nil outside of rounds; spare are emptied batches
	// for reuse, under a lock of their own (the goroutine returns them
	// while a worker may hold stageMu, waiting to hand it a batch).
	stageMu     sync.Mutex
	staged      []stagedRecord
	handoff     chan []stagedRecord
	handoffDone chan struct{}
	spareMu     sync.Mutex
	spare       [][]stagedRecord
}

// setGeneration sets the group generation changelog records are tagged
// with from now on (GenerationHeader).
func (p *producer) setGeneration(g int32) {
	b := generationBytes(g)
	p.gen.Store(&b)
}

// generation returns the group generation changelog records are tagged
// with, 0 before the first assignment or without a producer (an instance
// not started).
func (p *producer) generation() int32 {
	if p == nil {
		return 0
	}
	if b := p.gen.Load(); b != nil {
		g, _ := decodeGeneration(*b)
		return g
	}
	return 0
}

func newProducer(cl *kgo.Client) *producer {
	p := &producer{cl: cl}
	p.promise = func(r *kgo.Record, err error) {
		if err != nil {
			p.first.CompareAndSwap(nil, &ProduceError{Topic: r.Topic, Partition: r.Partition, Err: err})
		}
		p.finish()
	}
	p.sinkPromise = func(r *kgo.Record, err error) {
		if err != nil && isRecordError(err) {
			if sc, ok := r.Context.(*sinkContext); ok && p.handler != nil {
				p.refusedMu.Lock()
				p.refused = append(p.refused, refusal{rec: r, sc: sc, err: err})
				p.refusedMu.Unlock()
				p.finish()
				return
			}
		}
		p.promise(r, err)
		if err == nil {
			if sc, ok := r.Context.(*sinkContext); ok && sc.own != nil {
				// Acknowledged: nothing refers to the record any more
				// (franz-go is done with it, and only a refused one is
				// kept, above). Emptied now, so that the pool keeps no
				// input record (and its fetch's buffer) alive; never its
				// context.Context (sinkContext).
				own := sc.own
				own.rec, own.ctx.sinkOrigin = kgo.Record{}, sinkOrigin{}
				sinkRecords.Put(own)
			}
		}
	}
	p.ends = map[state.TopicPartition]int64{}
	p.logged = func(r *kgo.Record, err error) {
		if err == nil {
			tp := state.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			p.endsMu.Lock()
			if r.Offset+1 > p.ends[tp] {
				p.ends[tp] = r.Offset + 1
			}
			p.endsMu.Unlock()
		}
		p.promise(r, err)
	}
	return p
}

// changelogEnds returns the end offset of each changelog partition after
// the records acknowledged so far.
func (p *producer) changelogEnds() map[state.TopicPartition]int64 {
	p.endsMu.Lock()
	defer p.endsMu.Unlock()
	return maps.Clone(p.ends)
}

// sentInTxn returns the number of records sent since resetSent.
func (p *producer) sentInTxn() int64 { return p.produced.Load() - p.txnStart.Load() }

// resetSent restarts the count of sentInTxn (a transaction begins).
func (p *producer) resetSent() { p.txnStart.Store(p.produced.Load()) }

// reset forgets the sends of an aborted transaction: their failures
// (kgo.ErrAborting) and the changelog ends they reached, which go back to
// ends, those of the last commit.
func (p *producer) reset(ends map[state.TopicPartition]int64) {
	p.first.Store(nil)
	p.endsMu.Lock()
	p.ends = maps.Clone(ends)
	if p.ends == nil {
		p.ends = map[state.TopicPartition]int64{}
	}
	p.endsMu.Unlock()
}

// err returns the first send error, or nil.
func (p *producer) err() error {
	if e := p.first.Load(); e != nil {
		return e
	}
	return nil
}

// sendChangelog sends a changelog record of the task of r (a copy of key,
// value and headers: the caller reuses them) and tracks its partition's
// end offset.
func (p *producer) sendChangelog(r *runner, topic string, part int32, key, value []byte, headers []operators.Header, ts int64) {
	var gen []byte
	if g := p.gen.Load(); g != nil {
		// The value is shared by every record of the generation: franz-go
		// does not modify it.
		gen = *g
	}
	p.sendFor(r, p.record(topic, part, key, value, headers, ts, gen), p.logged)
}

// sendFor sends rec, a record of the task of r (nil: of no task). While
// the task restores, its record waits in r.held: its processors' Init
// run in task.New on the restore's goroutine (restoreRunner), and may
// write to a logged store or forward to a sink; sent from there, a record
// could reach franz-go in the middle of a commit (after its flush, or
// between one transaction's end and the next's beginning, where franz-go
// fails it and the instance rolls back). The poll loop sends what waited
// when it activates the task (activateRestoredLocked), between rounds
// and commits, as Kafka Streams' stream thread sends what a processor's
// init writes.
func (p *producer) sendFor(r *runner, rec *kgo.Record, promise func(*kgo.Record, error)) {
	if r != nil && r.restoring {
		r.held = append(r.held, stagedRecord{rec, promise})
		return
	}
	p.produceRecord(rec, promise)
}

// changelogRecord is a changelog record with room for its headers (the
// input position, a format version, the generation) in one allocation.
type changelogRecord struct {
	rec    kgo.Record
	hdrs   [3]kgo.RecordHeader
	inline [inlineBytes]byte
}

// inlineBytes is the room for the bytes of a record (key, value, header
// values) in the allocation of the record itself: a changelog record of a
// count (a key, eight bytes of count, the input position header) fits,
// and so does a sink record of one, so each costs one allocation.
const inlineBytes = 96

// inlineOr returns the first size bytes of inline if they fit, else a new
// slice.
func inlineOr(inline *[inlineBytes]byte, size int) []byte {
	if size <= inlineBytes {
		return inline[:size:size]
	}
	return make([]byte, size)
}

// record makes the record of a send, with copies of key, value and
// headers (in one buffer), and a GenerationHeader of value gen if gen is
// not nil.
func (p *producer) record(topic string, part int32, key, value []byte, headers []operators.Header, ts int64, gen []byte) *kgo.Record {
	cr := &changelogRecord{}
	r := &cr.rec
	r.Topic, r.Timestamp = topic, time.UnixMilli(ts)
	size := len(key) + len(value)
	for _, h := range headers {
		size += len(h.Value)
	}
	buf := inlineOr(&cr.inline, size)
	n := 0
	if key != nil {
		r.Key = buf[:len(key):len(key)]
		copy(r.Key, key)
	}
	n += len(key)
	if value != nil {
		r.Value = buf[n : n+len(value) : n+len(value)]
		copy(r.Value, value)
	}
	n += len(value)
	nh := len(headers)
	if gen != nil {
		nh++
	}
	if nh > 0 {
		if nh <= len(cr.hdrs) {
			r.Headers = cr.hdrs[:0:nh]
		} else {
			r.Headers = make([]kgo.RecordHeader, 0, nh)
		}
		for _, h := range headers {
			var v []byte
			if h.Value != nil {
				v = buf[n : n+len(h.Value) : n+len(h.Value)]
				copy(v, h.Value)
				n += len(h.Value)
			}
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: v})
		}
		if gen != nil {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: GenerationHeader, Value: gen})
		}
	}
	if part >= 0 {
		r.Partition = part
		r.Context = explicitPartition
	}
	return r
}

// produceRecord sends r, handing it to franz-go off the workers. During a
// round of processing (beginRound to endRound) produceRecord only appends the
// record to a batch; a full batch (stageBatch records) goes to a goroutine
// of the round's own that calls kgo.Client.Produce for each record in turn,
// so that franz-go's share of a send (its partitioner, its buffer's locks,
// the promise's bookkeeping: about a quarter of a worker's time on the
// every-update path) runs on another core while the worker goes on. One
// goroutine and batches in staging order keep the order of the sends, so
// each partition's records stay in the order the tasks sent them.
// endRound hands over the last batch and waits until the goroutine has
// produced everything: between rounds (commits, aborts, rebalances,
// shutdown) every record sent is in franz-go's buffer, as if produced at
// once. Outside of rounds (tests, a commit's resends) produceRecord calls
// Produce itself. docs/architecture.md ("Per-record cost") has the
// measurements.
func (p *producer) produceRecord(r *kgo.Record, promise func(*kgo.Record, error)) {
	p.produced.Add(1)
	p.stageMu.Lock()
	if p.handoff == nil {
		p.stageMu.Unlock()
		p.cl.Produce(context.Background(), r, promise)
		return
	}
	p.staged = append(p.staged, stagedRecord{r, promise})
	if len(p.staged) < stageBatch {
		p.stageMu.Unlock()
		return
	}
	b := p.staged
	p.staged = p.takeBatch()
	p.handoff <- b // under stageMu: the batches go in the order they were staged
	p.stageMu.Unlock()
}

// stageBatch is the number of records handed to the round's goroutine at
// once: a channel send per record would cost more than it saves.
const stageBatch = 256

// stagedRecord is a record waiting in a batch to be produced.
type stagedRecord struct {
	r       *kgo.Record
	promise func(*kgo.Record, error)
}

// takeBatch returns an empty batch, a recycled one if there is one.
func (p *producer) takeBatch() []stagedRecord {
	p.spareMu.Lock()
	defer p.spareMu.Unlock()
	if n := len(p.spare); n > 0 {
		b := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return b
	}
	return make([]stagedRecord, 0, stageBatch)
}

// beginRound starts staging the records the workers send (see above).
func (p *producer) beginRound() {
	if p.cl == nil {
		return
	}
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	ch := make(chan []stagedRecord, stageDepth)
	done := make(chan struct{})
	p.handoff, p.handoffDone = ch, done
	if p.staged == nil {
		p.staged = p.takeBatch()
	}
	go func() {
		defer close(done)
		for b := range ch {
			for i, s := range b {
				p.cl.Produce(context.Background(), s.r, s.promise)
				b[i] = stagedRecord{}
			}
			p.spareMu.Lock()
			if len(p.spare) < stageDepth {
				p.spare = append(p.spare, b[:0])
			}
			p.spareMu.Unlock()
		}
	}()
}

// stageDepth is the number of full batches that may wait for the round's
// goroutine: a worker that gets that far ahead waits, as it would for
// franz-go's buffer.
const stageDepth = 16

// endRound hands over the records staged and waits until they are all
// produced (given to franz-go: not acknowledged), then stops staging.
func (p *producer) endRound() {
	p.stageMu.Lock()
	ch, done := p.handoff, p.handoffDone
	if ch == nil {
		p.stageMu.Unlock()
		return
	}
	if len(p.staged) > 0 {
		ch <- p.staged
		p.staged = nil
	}
	close(ch)
	p.handoff, p.handoffDone = nil, nil
	p.stageMu.Unlock()
	<-done
}

// finish counts a record whose promise ran, and ends a wait it completes.
func (p *producer) finish() {
	n := p.finished.Add(1)
	if p.waiting.Load() {
		p.waitMu.Lock()
		if p.waitDone != nil && n >= p.waitFor {
			close(p.waitDone)
			p.waitDone = nil
			p.waiting.Store(false)
		}
		p.waitMu.Unlock()
	}
}

// flush waits until every record sent so far is acknowledged or failed,
// and returns the first failure. The caller must not send concurrently.
func (p *producer) flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("sluice: flush output: %w", err)
	}
	if err := p.wait(ctx); err != nil {
		return err
	}
	return p.err()
}

// wait waits until the promise of every record sent so far has run.
func (p *producer) wait(ctx context.Context) error {
	target := p.produced.Load()
	if p.finished.Load() >= target {
		return nil
	}
	done := make(chan struct{})
	p.waitMu.Lock()
	p.waitFor, p.waitDone = target, done
	p.waiting.Store(true)
	p.waitMu.Unlock()
	defer func() {
		p.waitMu.Lock()
		p.waitDone = nil
		p.waiting.Store(false)
		p.waitMu.Unlock()
	}()
	// A promise that got there before waiting was set saw no waiter.
	if p.finished.Load() >= target {
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sluice: flush output: %w", ctx.Err())
	}
	return nil
}

// sinkRecord makes the record a sink writes for the input record in (nil
// outside of a record's processing) of task: a copy of key, value and
// headers, with its origin in its context (sinkContext). by, if not nil,
// is what it is partitioned by; part >= 0 is its partition.
func (p *producer) sinkRecord(topic string, part int32, by, key, value []byte, headers []operators.Header, ts int64) *sinkRecord {
	sri := sinkRecords.Get().(*sinkRecordInline)
	sr := &sri.sinkRecord
	sr.ctx.own = sri // empty: new, or emptied when recycled (sinkPromise)
	r := &sr.rec
	r.Topic, r.Timestamp = topic, time.UnixMilli(ts)
	buf := inlineOr(&sri.inline, len(key)+len(value)+len(by))
	if key != nil {
		r.Key = buf[:len(key):len(key)]
		copy(r.Key, key)
	}
	if value != nil {
		r.Value = buf[len(key) : len(key)+len(value) : len(key)+len(value)]
		copy(r.Value, value)
	}
	if by != nil {
		sr.ctx.by = buf[len(key)+len(value):]
		copy(sr.ctx.by, by)
	}
	if len(headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(headers))
		for i, h := range headers {
			r.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: bytesCloneNullable(h.Value)}
		}
	}
	if part >= 0 {
		r.Partition = part
		sr.ctx.explicit = true
	}
	r.Context = &sr.ctx
	return sr
}

// sinkRecordInline is a sinkRecord with room for its bytes.
type sinkRecordInline struct {
	sinkRecord
	inline [inlineBytes]byte
}

// sinkRecords recycles the sink records Kafka acknowledged (sinkPromise):
// a record per output record was the largest allocation of the
// every-update path (docs/architecture.md, per-record cost).
var sinkRecords = sync.Pool{New: func() any {
	sri := new(sinkRecordInline)
	sri.ctx.Context = context.Background()
	return sri
}}

// taskCollector is a task's operators.Collector: it writes what the sinks
// of the task write, each bound to its sink (ForNode).
type taskCollector struct {
	p *producer
	r *runner
	// anon serves Send calls not made through a sink's collector.
	anon nodeCollector
}

func newTaskCollector(p *producer, r *runner) *taskCollector {
	c := &taskCollector{p: p, r: r}
	c.anon.t = c
	return c
}

// ForNode returns the collector of the sink node: internal/task hands each
// node its own, so that a refused record names its sink.
func (c *taskCollector) ForNode(node string) operators.Collector {
	return &nodeCollector{t: c, node: node}
}

// Send is how internal/task writes the dead-letter records of the
// deserialization and processing handlers (sinks write through ForNode's
// collectors): they bypass the production handler
// (sendDeadLetterChecked).
func (c *taskCollector) Send(topic string, part int32, key, value []byte, headers []operators.Header, ts int64) error {
	if c.p.handler != nil && topic == c.p.handler.deadLetter && part < 0 {
		return c.p.sendDeadLetterChecked(c.r, topic, key, value, headers, ts)
	}
	return c.anon.Send(topic, part, key, value, headers, ts)
}

// nodeCollector is the collector of one sink of a task.
type nodeCollector struct {
	t    *taskCollector
	node string
	// seqIn and seq count the records the sink wrote for the input record
	// seqIn (outputKey.seq).
	seqIn *kgo.Record
	seq   int32
}

func (c *nodeCollector) Send(topic string, part int32, key, value []byte, headers []operators.Header, ts int64) error {
	return c.send(topic, part, nil, key, value, headers, ts)
}

// SendPartitionedBy implements operators.PartitionKeyCollector: the record
// goes to the partition of partitionKey (murmur2), not of its key.
func (c *nodeCollector) SendPartitionedBy(topic string, by, key, value []byte, headers []operators.Header, ts int64) error {
	if by == nil {
		by = []byte{}
	}
	return c.send(topic, -1, by, key, value, headers, ts)
}

func (c *nodeCollector) send(topic string, part int32, by, key, value []byte, headers []operators.Header, ts int64) error {
	p := c.t.p
	if err := p.err(); err != nil {
		return err
	}
	in := c.t.r.cur
	if t := c.t.r.task; in != nil && t != nil && !t.HasInput() {
		// A punctuator's or a record cache's write (an eviction while
		// in is processed): it has no input record, as the handlers of
		// internal/task see it.
		in = nil
	}
	if in != c.seqIn || in == nil {
		c.seqIn, c.seq = in, 0
	}
	seq := c.seq
	c.seq++
	if p.handler != nil {
		size := batchBytes(key, value, headers)
		if limit := p.limits.forTopic(topic); size > int(limit) {
			return c.refuse(in, topic, part, size, ts, errTooLarge(size, limit))
		}
		if restoring := c.t.r.restoring; restoring || len(p.remembered) > 0 {
			k := outputKey{node: c.node, out: topic}
			if in != nil {
				k.topic, k.partition, k.offset, k.seq = in.Topic, in.Partition, in.Offset, seq
			} else {
				k.partition, k.offset, k.sum = -1, -1, contentSum(key, value)
			}
			if err := p.recall(k, restoring); err != nil {
				return c.refuse(in, topic, part, size, ts, err)
			}
		}
	}
	sr := p.sinkRecord(topic, part, by, key, value, headers, ts)
	sr.ctx.in, sr.ctx.node, sr.ctx.seq, sr.ctx.task = in, c.node, seq, c.t.r.taskID()
	p.sendFor(c.t.r, &sr.rec, p.sinkPromise)
	return nil
}
