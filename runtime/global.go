package runtime

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// The global reader keeps the instance's global stores (Kafka Streams'
// GlobalStreamThread, GlobalStateManagerImpl and GlobalStateUpdateTask):
//
//   - every instance holds every partition of every global store's topic,
//     read with clients of the reader's own, in no consumer group (the
//     group's subscription leaves the global topics out);
//   - a global store has no changelog: its topic is restored instead, from
//     the offsets of the store's own checkpoint file,
//     <state dir>/<app ID>/global/<store>.checkpoint (from the start
//     without one, and always for an in-memory store; see
//     loadCheckpoints for when local rows are deleted first) to
//     the end offsets listed when the restore starts, with the App's
//     changelog reader, before the App joins the group: no task processes
//     a record before every global table has caught up;
//   - then one client reads on from there while the App runs, and the
//     records go through the global store's own task (its source and the
//     processor writing the store), so that a record the source cannot
//     deserialize follows the deserialization policy and is counted, and
//     an error names the topic, partition and offset; a row keeps its
//     record's own timestamp, as Kafka Streams' GlobalStateUpdateTask
//     stamps it (no timestamp extractor);
//   - the stores of all global tables live in one Pebble DB, written at
//     once (no pending batch: there is no commit to wait for), which the
//     tasks read through views of their own while the reader writes: a
//     PebbleDB is safe for concurrent use, and a global store has no
//     record cache. An in-memory global store is guarded by a lock
//     (syncStore). Every commit interval and at shutdown, the reader makes
//     the DB durable and then writes the checkpoint, so the checkpoint
//     never runs ahead of the stores; after a crash the records since are
//     applied again, which leaves a table as it was (each record sets or
//     deletes its key).
//
// The restore applies the records through the same task as the updates
// that follow, deserializing them: Kafka Streams restores a global table's
// bytes as they are (no deserialization), so a record it cannot read fails
// later, in a join; here it follows the deserialization policy at once.
//
// Under ExactlyOnce the reader's clients read committed records only
// (kgo.FetchIsolationLevel(kgo.ReadCommitted())), as Kafka Streams' global
// consumer reads with isolation.level=read_committed under
// exactly_once_v2, so that aborted records never reach a global store; the
// restore reads to the last stable offset (changelogReader).
type globalReader struct {
	a   *App
	dir string
	db  *state.PebbleDB // nil when every global store is in memory
	// mem holds the in-memory global stores, shared by the tasks.
	mem   map[string]*syncStore
	tasks map[string]*task.Task // by topic: the task writing the store
	// globals are the topology's global stores, by topic.
	globals map[string]*topology.GlobalStore
	// partitions is the partition count of each global topic.
	partitions map[string]int32
	// next is the next offset to read of each global partition: what the
	// stores reflect. checkpoint is what the checkpoint file holds.
	next       map[state.TopicPartition]int64
	checkpoint map[state.TopicPartition]int64
	written    bool // the checkpoint files were written since the start
	loaded     bool // the checkpoints were read (writeCheckpoint may write)

	cancel context.CancelFunc
	done   chan struct{} // closed when the live reader ends
	err    error         // the live reader's error, once done is closed
}

// globalDirName is the global stores' directory in the App's directory of
// the state directory (not a task ID: the sweep leaves it alone).
const globalDirName = "global"

// openGlobals opens the global stores and restores them from their topics
// to the end offsets of the moment, then starts the live reader. It is
// called before the App joins the group.
func (a *App) openGlobals(ctx context.Context) error {
	gs := a.topo.GlobalStores()
	if len(gs) == 0 {
		return nil
	}
	g := &globalReader{
		a: a, dir: filepath.Join(a.appDir, globalDirName),
		mem: map[string]*syncStore{}, tasks: map[string]*task.Task{}, globals: map[string]*topology.GlobalStore{},
		partitions: map[string]int32{}, next: map[state.TopicPartition]int64{}, checkpoint: map[state.TopicPartition]int64{},
	}
	a.globals = g
	persistent := false
	for _, gs := range gs {
		g.globals[gs.Topic] = gs
		persistent = persistent || !gs.Store.InMemory
	}
	if err := g.partitionCounts(ctx); err != nil {
		return err
	}
	if persistent {
		if err := g.openDB(); err != nil {
			return err
		}
		if err := g.loadCheckpoints(ctx); err != nil {
			return err
		}
	}
	// A restore cut short keeps the checkpointed offsets of the partitions
	// it did not finish (what it applied beyond them is applied again),
	// and so does a start-up that fails before the restore.
	for tp, off := range g.checkpoint {
		g.next[tp] = off
	}
	g.loaded = true
	for _, gs := range gs {
		t, err := task.New(task.Config{
			ApplicationID: a.cfg.appID,
			SubTopology:   gs.SubTopology,
			Partition:     -1, // all of them: Kafka Streams' global task is -1_-1 too
			// No Collector: a global store's sub-topology has no sink.
			OpenBase: func(spec *topology.StoreSpec) (state.KeyValueStore, error) {
				return g.base(spec), nil
			},
			Logger:                 a.log.With("global_store", gs.Store.Name),
			OnDeserializationError: a.cfg.onDeserialize,
			// No processing handler: Kafka Streams 4.3.1 applies it to a
			// global store only with processing.exception.handler.global.enabled
			// (false by default); a global store has no sink either.
			// As Kafka Streams 4.3.1, no dead-letter record for a global
			// store's records: DeadLetter drops them, logged and counted.
			DeadLetterTopic: a.cfg.deadLetter,
			GlobalStore:     true,
			Dropped: func(_, node, reason string) {
				a.metrics.dropped.WithLabelValues("global", node, reason).Inc()
			},
		})
		if err != nil {
			return fmt.Errorf("sluice: global store %s: %w", gs.Store.Name, err)
		}
		g.tasks[gs.Topic] = t
	}
	if err := g.restore(ctx); err != nil {
		return err
	}
	g.startLive()
	return nil
}

// partitionCounts reads the partition count of each global topic, failing
// with a MissingTopicError for those that do not exist.
func (g *globalReader) partitionCounts(ctx context.Context) error {
	topics := g.a.topo.GlobalTopics()
	md, err := kadm.NewClient(g.a.admin).Metadata(ctx, topics...)
	if err != nil {
		return &BrokerError{Brokers: g.a.brokers, Err: err}
	}
	var missing []string
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) || len(td.Partitions) == 0 {
			missing = append(missing, t)
			continue
		}
		if td.Err != nil {
			return fmt.Errorf("sluice: describe global topic %s: %w", t, td.Err)
		}
		g.partitions[t] = int32(len(td.Partitions))
	}
	if len(missing) > 0 {
		return &MissingTopicError{Topics: missing}
	}
	return nil
}

// loadCheckpoints reads the checkpoint file of each persistent global
// store, <store>.checkpoint in the global directory: the next offset of
// each partition of its topic that the store reflects. The offsets are the
// store's own (Kafka Streams 4.3 keeps them in each store), so a store
// whose name changed, a generated name moved by an operation added before
// it say, finds none and restores its topic from the start instead of
// taking another store's offsets. A store restores from the start, its
// local rows deleted first (restoring over them would keep rows whose
// deletes compaction removed), when its checkpoint is missing or
// unreadable, names another topic, or has an offset outside its
// partition's log (before the log start: retention deleted records the
// store lacks; past the end: the topic was recreated). Kafka Streams'
// global consumer fails on such an offset (auto.offset.reset none) and
// wipes the global state for the next start. The rows and checkpoints of
// stores the topology no longer has are deleted.
func (g *globalReader) loadCheckpoints(ctx context.Context) error {
	keep := map[string]bool{}
	for _, gs := range g.globals {
		if !gs.Store.InMemory {
			keep[gs.Store.Name] = true
		}
	}
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return fmt.Errorf("sluice: global stores: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), checkpointFile)
		if !ok || e.IsDir() {
			continue
		}
		store, err := url.PathUnescape(name)
		if err != nil || keep[store] {
			continue
		}
		g.a.log.Info("deleting a global store the topology no longer has", "store", store, "dir", g.dir)
		if err := os.Remove(filepath.Join(g.dir, e.Name())); err != nil {
			return fmt.Errorf("sluice: global stores: %w", err)
		}
		if store != "" {
			if err := g.db.KeyValueStore(store).(state.RangeDeleter).DeleteRange(nil, nil); err != nil {
				return fmt.Errorf("sluice: global store %s: delete: %w", store, err)
			}
		}
	}
	for _, topic := range g.a.topo.GlobalTopics() {
		gs := g.globals[topic]
		if gs.Store.InMemory {
			continue
		}
		path := g.checkpointPath(gs.Store.Name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := g.reset(gs, ""); err != nil {
				return err
			}
			continue
		}
		cp, err := state.ReadCheckpoint(g.a.fs(), path)
		if err != nil {
			if err := g.reset(gs, "unreadable checkpoint: "+err.Error()); err != nil {
				return err
			}
			continue
		}
		var other string
		for tp := range cp {
			if tp.Topic != topic {
				other = tp.Topic
			}
		}
		if other != "" {
			if err := g.reset(gs, fmt.Sprintf("its checkpoint is of topic %s, not %s", other, topic)); err != nil {
				return err
			}
			continue
		}
		maps.Copy(g.checkpoint, cp)
	}
	return g.checkOffsets(ctx)
}

// checkpointPath is the checkpoint file of the global store named store.
func (g *globalReader) checkpointPath(store string) string {
	return filepath.Join(g.dir, url.PathEscape(store)+checkpointFile)
}

// checkOffsets resets the stores whose checkpointed offsets are outside
// their partitions' logs, or name partitions their topics do not have
// (see loadCheckpoints).
func (g *globalReader) checkOffsets(ctx context.Context) error {
	if len(g.checkpoint) == 0 {
		return nil
	}
	adm := kadm.NewClient(g.a.admin)
	topics := g.a.topo.GlobalTopics()
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("sluice: global stores: list start offsets of %v: %w", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("sluice: global stores: list end offsets of %v: %w", topics, err)
	}
	bad := map[string][]string{}
	for tp, off := range g.checkpoint {
		start, ok1 := starts.Lookup(tp.Topic, tp.Partition)
		end, ok2 := ends.Lookup(tp.Topic, tp.Partition)
		switch {
		case !ok1 || !ok2:
			bad[tp.Topic] = append(bad[tp.Topic], fmt.Sprintf("partition %d: no such partition", tp.Partition))
		case off < start.Offset || off > end.Offset:
			bad[tp.Topic] = append(bad[tp.Topic], fmt.Sprintf("partition %d: offset %d outside [%d, %d]", tp.Partition, off, start.Offset, end.Offset))
		}
	}
	for _, topic := range topics {
		if len(bad[topic]) == 0 {
			continue
		}
		slices.Sort(bad[topic])
		if err := g.reset(g.globals[topic], fmt.Sprintf("its checkpoint does not match topic %s: %s", topic, strings.Join(bad[topic], "; "))); err != nil {
			return err
		}
	}
	return nil
}

// openDB opens the global stores' Pebble DB, writing at once (no pending
// batch), on the App's block cache.
func (g *globalReader) openDB() error {
	db, err := state.OpenPebble(g.dir, state.PebbleOptions{
		FS: g.a.fs(), Cache: g.a.blockCache, MemTableSize: uint64(g.a.cfg.memTableBytes), Logger: g.a.log,
	})
	if err != nil {
		return fmt.Errorf("sluice: global stores: %w", err)
	}
	g.db = db
	return nil
}

// reset deletes the local rows and the checkpoint of the global store gs,
// so that it restores its topic from the start; reason, if not empty, is
// logged. The checkpoint file goes first: a crash in between leaves no
// checkpoint, and the next start deletes the rows again.
func (g *globalReader) reset(gs *topology.GlobalStore, reason string) error {
	if reason != "" {
		g.a.log.Warn("deleting a global store's local rows: it restores its topic from the start",
			"store", gs.Store.Name, "topic", gs.Topic, "reason", reason)
	}
	if err := os.Remove(g.checkpointPath(gs.Store.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sluice: global store %s: %w", gs.Store.Name, err)
	}
	if err := g.db.KeyValueStore(gs.Store.Name).(state.RangeDeleter).DeleteRange(nil, nil); err != nil {
		return fmt.Errorf("sluice: global store %s: delete: %w", gs.Store.Name, err)
	}
	for tp := range g.checkpoint {
		if tp.Topic == gs.Topic {
			delete(g.checkpoint, tp)
		}
	}
	return nil
}

// base returns the store a global store's task writes: a view of the
// global DB, or the shared in-memory store.
func (g *globalReader) base(spec *topology.StoreSpec) state.KeyValueStore {
	if spec.InMemory || g.db == nil {
		s := g.mem[spec.Name]
		if s == nil {
			s = &syncStore{kv: state.NewInMemoryKeyValueStore(spec.Name)}
			g.mem[spec.Name] = s
		}
		return s
	}
	return g.db.KeyValueStore(spec.Name)
}

// views returns the global stores as a task reads them: each a view of
// its own (a Pebble store view is not safe for concurrent use), read-only.
func (g *globalReader) views() map[string]state.Store {
	if g == nil {
		return nil
	}
	m := make(map[string]state.Store, len(g.globals))
	for _, gs := range g.globals {
		m[gs.Store.Name] = task.ReadOnly(g.base(gs.Store))
	}
	return m
}

// restore brings every global store up to the end offsets of its topic's
// partitions listed when each partition's restore starts.
func (g *globalReader) restore(ctx context.Context) error {
	for _, topic := range g.a.topo.GlobalTopics() {
		gs, t := g.globals[topic], g.tasks[topic]
		var raw operators.RawRecord
		for p := range g.partitions[topic] {
			tp := state.TopicPartition{Topic: topic, Partition: p}
			from := int64(-1)
			if off, ok := g.checkpoint[tp]; ok {
				from = off
			}
			start := time.Now()
			n, end, err := g.a.restore(ctx, topic, p, from, gs.Store.Name, func(r *kgo.Record) error {
				return t.Process(rawRecord(r, &raw))
			})
			if err != nil {
				return fmt.Errorf("sluice: global store %s: %w", gs.Store.Name, err)
			}
			g.next[tp] = end
			if n > 0 {
				g.a.log.Info("restored global store", "store", gs.Store.Name, "topic", topic, "partition", p,
					"from", from, "to", end, "records", n, "took", time.Since(start))
			}
		}
	}
	return g.writeCheckpoint()
}

// rawRecord fills raw with r; raw's headers are a new slice.
func rawRecord(r *kgo.Record, raw *operators.RawRecord) *operators.RawRecord {
	*raw = operators.RawRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		raw.Headers = append(raw.Headers, operators.Header{Key: h.Key, Value: h.Value})
	}
	return raw
}

// writeCheckpoint makes the global DB durable, then writes each
// persistent store's checkpoint file with the offsets it reflects: a
// checkpoint never runs ahead of its store. It writes nothing before the
// checkpoints were loaded (a start-up that failed before keeps them).
func (g *globalReader) writeCheckpoint() error {
	if g.db == nil || !g.loaded {
		return nil
	}
	changed := !g.written
	for tp, off := range g.next {
		if !g.globals[tp.Topic].Store.InMemory && g.checkpoint[tp] != off {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := g.db.Flush(); err != nil {
		return fmt.Errorf("sluice: global stores: flush: %w", err)
	}
	cps := map[string]map[state.TopicPartition]int64{}
	for tp, off := range g.next {
		if gs := g.globals[tp.Topic]; !gs.Store.InMemory {
			if cps[gs.Store.Name] == nil {
				cps[gs.Store.Name] = map[state.TopicPartition]int64{}
			}
			cps[gs.Store.Name][tp] = off
		}
	}
	for _, gs := range g.globals {
		if gs.Store.InMemory {
			continue
		}
		path := g.checkpointPath(gs.Store.Name)
		if cp := cps[gs.Store.Name]; len(cp) > 0 {
			if err := state.WriteCheckpoint(g.a.fs(), path, cp); err != nil {
				return fmt.Errorf("sluice: global store %s: write checkpoint: %w", gs.Store.Name, err)
			}
		} else if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sluice: global store %s: %w", gs.Store.Name, err)
		}
	}
	g.checkpoint = map[state.TopicPartition]int64{}
	for _, cp := range cps {
		maps.Copy(g.checkpoint, cp)
	}
	g.written = true
	return nil
}

// startLive starts the reader that keeps the global stores up to date
// while the App runs, from the offsets the restore reached.
func (g *globalReader) startLive() {
	ctx, cancel := context.WithCancel(g.a.closeCtx)
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		g.err = g.live(ctx)
		if g.err != nil && ctx.Err() == nil {
			g.a.mu.Lock()
			g.a.failLocked(g.err)
			g.a.mu.Unlock()
		}
	}()
}

// live reads every partition of the global topics from g.next on, with a
// client in no group, applying each record to its global store; every
// commit interval it checkpoints. It returns when ctx ends (nil) or on an
// error (a record that fails with the fail policy, a fetch error).
func (g *globalReader) live(ctx context.Context) error {
	parts := map[string]map[int32]kgo.Offset{}
	for tp, off := range g.next {
		if parts[tp.Topic] == nil {
			parts[tp.Topic] = map[int32]kgo.Offset{}
		}
		parts[tp.Topic][tp.Partition] = kgo.NewOffset().At(off)
	}
	opts := append(g.a.baseClientOpts("global"),
		// No group: the instance reads every partition itself.
		kgo.ConsumePartitions(parts),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if g.a.cfg.guarantee == ExactlyOnce {
		// As Kafka Streams' global consumer under exactly_once_v2:
		// aborted records never reach a global store.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("sluice: global reader: %w", err)
	}
	defer cl.Close()
	tick := time.NewTicker(g.a.cfg.commitInterval)
	defer tick.Stop()
	var raw operators.RawRecord
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("sluice: global reader: topic %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var perr error
		fs.EachRecord(func(r *kgo.Record) {
			if perr != nil {
				return
			}
			t := g.tasks[r.Topic]
			if t == nil {
				return
			}
			if perr = t.Process(rawRecord(r, &raw)); perr == nil {
				g.next[state.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
			}
		})
		if perr != nil {
			return fmt.Errorf("sluice: global reader: %w", perr)
		}
		select {
		case <-tick.C:
			if err := g.writeCheckpoint(); err != nil {
				return err
			}
		default:
		}
	}
}

// stop stops the live reader, if it runs, and waits for it to end.
func (g *globalReader) stop() {
	if g == nil || g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
}

// close stops the live reader, checkpoints and closes the global stores;
// the tasks reading them must be closed already.
func (g *globalReader) close() {
	if g == nil {
		return
	}
	g.stop()
	if g.err == nil {
		if err := g.writeCheckpoint(); err != nil {
			g.a.log.Warn("global stores: checkpoint at shutdown", "err", err)
		}
	}
	for _, t := range g.tasks {
		_ = t.Close()
	}
	if g.db != nil {
		if err := g.db.Close(); err != nil {
			g.a.log.Warn("global stores: close", "dir", g.dir, "err", err)
		}
		g.db = nil
	}
}

// syncStore is an in-memory global store that the tasks read while the
// global reader writes: every call holds its lock, and what Get returns
// and iteration yields are copies. The lock is exclusive for reads too:
// the in-memory store marks the entries it lends out on Get and Range.
type syncStore struct {
	mu sync.Mutex
	kv state.KeyValueStore
}

func (s *syncStore) Name() string { return s.kv.Name() }
func (s *syncStore) Flush() error { return nil }
func (s *syncStore) Close() error { return nil }

func (s *syncStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok, err := s.kv.Get(key)
	return slices.Clone(v), ok, err
}

func (s *syncStore) Put(key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kv.Put(key, value)
}

func (s *syncStore) Delete(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kv.Delete(key)
}

func (s *syncStore) ApproximateCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kv.ApproximateCount()
}

func (s *syncStore) Range(from, to []byte) iter.Seq2[[]byte, []byte] {
	return s.copied(func() iter.Seq2[[]byte, []byte] { return s.kv.Range(from, to) })
}

func (s *syncStore) Prefix(prefix []byte) iter.Seq2[[]byte, []byte] {
	return s.copied(func() iter.Seq2[[]byte, []byte] { return s.kv.Prefix(prefix) })
}

// copied yields copies of the entries of seq, collected under the lock.
func (s *syncStore) copied(seq func() iter.Seq2[[]byte, []byte]) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		var ks, vs [][]byte
		s.mu.Lock()
		for k, v := range seq() {
			ks, vs = append(ks, slices.Clone(k)), append(vs, slices.Clone(v))
		}
		s.mu.Unlock()
		for i := range ks {
			if !yield(ks[i], vs[i]) {
				return
			}
		}
	}
}
