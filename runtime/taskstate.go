package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// Local state of a task: one Pebble DB per task, in <state dir>/<app
// ID>/<task ID>, holding all of the task's persistent stores under their
// own key prefixes, meta records of the input positions and changelog
// offsets the state reflects, and Kafka Streams' .checkpoint file of the
// changelog offsets (for tools and layout: restores start from the meta
// record, see below). (Why one DB per task rather than one per instance:
// the measurements in the state package's documentation.)
//
// The at-least-once commit protocol keeps the local state from ever
// running ahead of the changelog, and the changelog's records tell which
// input caused them:
//
//  1. The task flushes its record caches: each dirty entry is written to
//     the DB's pending batch (not to the DB) and produced to the changelog
//     with a header of the input position it reflects (task.InputHeader).
//  2. The producer is flushed: output and changelog records are acked.
//  3. The pending batch and the meta records of the task's input
//     positions and changelog offsets are committed to the DB atomically;
//     the log is synced in the background (the next commit waits for
//     it), or at once for a DB holding a store without a changelog.
//  4. The group's offsets are committed.
//
// The checkpoint file (the changelog end offsets) is written when the
// task closes and after a restore, not at each commit.
//
// On assignment a store restores its changelog from the offset of the
// changelog-ends meta record (from the start without it or without local
// state) to the end, skipping the records whose input position is past the resume
// position: the later of the group's committed offset and the local meta
// record. Such records come from a flush whose commit never completed (a
// crash between steps 1 and 4); their input is processed again, and
// applying them too would count it twice. The task then resumes at the
// resume position. So a crash at any step neither loses nor double-applies
// input in the state; output may repeat (at-least-once).
//
// Under exactly-once the same pending batch and meta records are committed
// to the DB after the transaction (exactlyOnce, commit.go), without a
// sync: the DB holds a prefix of the committed transactions, at most the
// last one missing after a crash (commitLocal syncs each commit in the
// background before the next applies). A checkpoint file written earlier
// could then be ahead of the DB, which is why restores start from the meta
// record; the file is written only after a synced state (close after
// unsynced commits, finishRestore).

// metaPositions is the meta record of the input positions a task's local
// state reflects.
var metaPositions = []byte("positions")

// metaChangelogEnds is the meta record of the end offsets of the task's
// changelog partitions when the local state last committed: with the
// input positions, it tells whether another instance wrote the changelog
// since (checkLocalState).
var metaChangelogEnds = []byte("changelog-ends")

// metaProcessors is the meta record of the task's processor metadata
// (operators.MetadataContext: windowed aggregations' observed stream time
// and last emitted close time), committed with the state.
var metaProcessors = []byte("processor-metadata")

// checkpointFile is the name of a task's checkpoint file in its directory.
const checkpointFile = ".checkpoint"

// taskState is the local state of one task.
type taskState struct {
	dir string
	// fs is the file system of the DB and the checkpoint file
	// (App.stateFS; nil: the OS's, see fsys).
	fs    vfs.FS
	db    *state.PebbleDB // nil until a persistent store opens
	cache *state.Cache
	share *state.CacheShare // the task counts in it until close
	// positions are the next input offsets the local state reflects, as
	// of its last commit (or open).
	positions map[topicPartition]int64
	// metadata is the processor metadata as of the last commit.
	metadata map[string]int64
	// loggedEnds are the changelog end offsets recorded with the last
	// commit of the local state (its meta record).
	loggedEnds map[topicPartition]int64
	// resume are the next input offsets to process: the later of
	// positions and the group's committed offsets.
	resume map[topicPartition]int64
	// changelogs are the task's changelog partitions, and checkpoint the
	// offsets up to which the local state reflects them: the meta
	// record's at open, then what restores and commits reached.
	changelogs []state.TopicPartition
	checkpoint map[state.TopicPartition]int64
	fresh      bool // the DB was created empty
	// unlogged: the DB holds a persistent store without a changelog
	// (StoreSpec.DisableLogging), which no restore can rebuild, so each
	// commit of the local state syncs its log (commitLocalState).
	unlogged bool
	// gen is the largest group generation of the changelog records the
	// local state reflects (metaGeneration; see GenerationHeader): as of
	// the last commit, the generation the task wrote with; after a
	// restore, the largest its genFilters kept. 0: unknown.
	gen int32
	// openGen is gen as the meta record had it at open: the generation a
	// restore from the meta record's changelog offsets starts from (each
	// store's; a store's restore moves gen, not openGen).
	openGen int32
	// unsynced: a commit since the last checkpoint file was not synced.
	unsynced bool
	// synced receives the result of the background sync of the DB's log
	// started after the last unsynced commit; nil when none is pending.
	synced chan error
}

// fsys is the file system of the task's DB and checkpoint file: ts.fs,
// or the operating system's if none was set.
func (ts *taskState) fsys() vfs.FS {
	if ts.fs != nil {
		return ts.fs
	}
	return vfs.Default
}

// openTaskState opens (or creates) the local state of task id. committed
// holds the group's committed offsets of the task's input partitions.
func (a *App) openTaskState(id taskID, committed map[topicPartition]int64, persistent bool) (*taskState, error) {
	ts := &taskState{
		dir:        filepath.Join(a.appDir, id.String()),
		fs:         a.fs(),
		cache:      a.cacheShare.NewCache(),
		share:      a.cacheShare,
		positions:  map[topicPartition]int64{},
		resume:     map[topicPartition]int64{},
		checkpoint: map[state.TopicPartition]int64{},
	}
	for tp, off := range committed {
		ts.resume[tp] = off
	}
	if !persistent {
		ts.share.Add(1)
		return ts, nil
	}
	a.cancelCleanup(id)
	if _, err := os.Stat(ts.dir); errors.Is(err, os.ErrNotExist) {
		ts.fresh = true
	}
	db, err := state.OpenPebble(ts.dir, state.PebbleOptions{
		FS: ts.fsys(), Cache: a.blockCache, MemTableSize: uint64(a.cfg.memTableBytes), BufferWrites: true, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	ts.db = db
	if err := errors.Join(
		readMeta(db, metaPositions, decodePositions, &ts.positions),
		readMeta(db, metaChangelogEnds, decodePositions, &ts.loggedEnds),
		readMeta(db, metaProcessors, task.DecodeMetadata, &ts.metadata),
		readMeta(db, metaGeneration, decodeGeneration, &ts.gen),
	); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sluice: task %s: local state in %s: %w", id, ts.dir, err)
	}
	ts.openGen = ts.gen
	for tp, off := range ts.positions {
		if off > ts.resume[tp] {
			ts.resume[tp] = off
		}
	}
	// The stores restore from the changelog offsets of the DB's meta
	// record, committed atomically with the data they describe, never
	// from the checkpoint file: under exactly-once the DB applies without
	// a sync, and a crash may lose the last applies while a file written
	// before said more (see the package comment). A DB without the meta
	// record restores from the changelogs' start.
	for tp, off := range ts.loggedEnds {
		ts.checkpoint[state.TopicPartition{Topic: tp.topic, Partition: tp.partition}] = off
	}
	if !ts.fresh {
		cp, err := state.ReadCheckpoint(ts.fsys(), filepath.Join(ts.dir, checkpointFile))
		if err != nil {
			a.log.Warn("unreadable checkpoint file (not used: the DB's meta record tells where the restore starts)", "task", id, "err", err)
		}
		for tp, off := range cp {
			if meta, ok := ts.checkpoint[tp]; !ok || off > meta {
				a.log.Info("checkpoint file ahead of the local state (a crash lost its last unsynced commit): restoring from the DB's meta record",
					"task", id, "topic", tp.Topic, "partition", tp.Partition, "checkpoint", off, "meta", meta, "has_meta", ok)
			}
		}
	}
	ts.share.Add(1)
	return ts, nil
}

// readMeta decodes the meta record key of db into *dst, which it leaves
// as it is when there is no such record.
func readMeta[T any](db *state.PebbleDB, key []byte, decode func([]byte) (T, error), dst *T) error {
	b, ok, err := db.GetMeta(key)
	if err != nil || !ok {
		return err
	}
	v, err := decode(b)
	if err != nil {
		return fmt.Errorf("meta record %s: %w", key, err)
	}
	*dst = v
	return nil
}

// confirmed reports whether a changelog record caused by the input record
// at (tp, offset) belongs to committed progress, so that restoring it does
// not count that input twice.
func (ts *taskState) confirmed(tp topicPartition, offset int64) bool {
	return offset < ts.resume[tp]
}

// commitLocal commits the pending writes of the task's DB with the input
// positions next, the processor metadata md and the changelog offsets
// they reflect (step 3 of the protocol). durable syncs the DB's log
// (a DB holding a store without a changelog). Without it (the changelogs,
// or under exactly-once the transaction, are the durable record) the
// commit applies at once and its log is synced in the
// background; the next commit waits for that sync before it applies. So a
// crash loses at most the last commit, which the next start restores from
// the changelogs. (Pebble keeps an unsynced write in the log's current
// block in memory until the block fills, up to 32 KiB: without the
// background sync a kill -9 lost many small commits.)
func (ts *taskState) commitLocal(next map[topicPartition]int64, md map[string]int64, ends map[state.TopicPartition]int64, durable bool) error {
	if ts.db == nil {
		return nil
	}
	if err := ts.waitSync(); err != nil {
		return err
	}
	for tp, off := range next {
		ts.positions[tp] = off
	}
	if err := ts.db.PutPendingMeta(metaPositions, encodePositions(ts.positions)); err != nil {
		return err
	}
	logged := make(map[topicPartition]int64, len(ts.changelogs))
	for _, tp := range ts.changelogs {
		off, ok := ends[tp]
		if cp, has := ts.checkpoint[tp]; !ok || (has && cp > off) {
			off, ok = cp, has
		}
		if ok {
			logged[topicPartition{tp.Topic, tp.Partition}] = off
		}
	}
	if err := ts.db.PutPendingMeta(metaChangelogEnds, encodePositions(logged)); err != nil {
		return err
	}
	if len(md) > 0 {
		ts.metadata = md
		if err := ts.db.PutPendingMeta(metaProcessors, task.EncodeMetadata(md)); err != nil {
			return err
		}
	}
	if err := ts.putGeneration(); err != nil {
		return err
	}
	if err := ts.db.Commit(durable); err != nil {
		return err
	}
	ts.loggedEnds = logged
	if !durable {
		ts.unsynced = true
		db, synced := ts.db, make(chan error, 1)
		go func() { synced <- db.Flush() }()
		ts.synced = synced
	}
	return nil
}

// putGeneration adds the meta record of ts.gen to the DB's pending writes,
// if it is known.
func (ts *taskState) putGeneration() error {
	if ts.gen <= 0 {
		return nil
	}
	return ts.db.PutPendingMeta(metaGeneration, generationBytes(ts.gen))
}

// waitSync waits for the background sync of the last unsynced commit, if
// one is pending, and returns its error.
func (ts *taskState) waitSync() error {
	if ts.synced == nil {
		return nil
	}
	err := <-ts.synced
	ts.synced = nil
	if err != nil {
		return fmt.Errorf("sluice: sync local state %s: %w", ts.dir, err)
	}
	return nil
}

// checkpointOnClose makes the DB's commits durable and writes the
// checkpoint file with the changelog offsets they reflect, when commits
// since the last checkpoint were not synced (exactly-once writes no
// checkpoint per commit): the file then never runs ahead of the data. The
// pending writes (an uncommitted transaction's) are not applied.
func (ts *taskState) checkpointOnClose() error {
	if ts.db == nil || !ts.unsynced {
		return nil
	}
	if err := ts.waitSync(); err != nil {
		return err
	}
	if err := ts.db.Flush(); err != nil {
		return err
	}
	cp := make(map[state.TopicPartition]int64, len(ts.loggedEnds))
	for tp, off := range ts.loggedEnds {
		cp[state.TopicPartition{Topic: tp.topic, Partition: tp.partition}] = off
	}
	ts.unsynced = false
	return state.WriteCheckpoint(ts.fsys(), filepath.Join(ts.dir, checkpointFile), cp)
}

// close closes the DB, dropping writes not committed, and takes the task
// out of the cache budget's share; after unsynced commits it first makes
// them durable and writes the checkpoint file (checkpointOnClose).
func (ts *taskState) close() error {
	if ts.share != nil {
		ts.share.Add(-1)
		ts.share = nil
	}
	if ts.db == nil {
		return nil
	}
	err := ts.checkpointOnClose()
	if err != nil {
		err = fmt.Errorf("sluice: checkpoint local state %s: %w", ts.dir, err)
	}
	if serr := ts.waitSync(); serr != nil { // a failed checkpoint left it pending
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, ts.db.Close())
	ts.db = nil
	return err
}

// encodePositions encodes input positions: per partition, the topic's
// length (uvarint), the topic, the partition (4 bytes) and the next offset
// (8 bytes), big-endian.
func encodePositions(m map[topicPartition]int64) []byte {
	var b []byte
	for tp, off := range m {
		b = binary.AppendUvarint(b, uint64(len(tp.topic)))
		b = append(b, tp.topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(tp.partition))
		b = binary.BigEndian.AppendUint64(b, uint64(off))
	}
	return b
}

func decodePositions(b []byte) (map[topicPartition]int64, error) {
	m := map[topicPartition]int64{}
	for len(b) > 0 {
		n, l := binary.Uvarint(b)
		if l <= 0 || n > uint64(len(b)-l) || uint64(len(b)-l)-n < 12 { // n+12 could wrap around
			return nil, fmt.Errorf("sluice: corrupt input positions (%d bytes left)", len(b))
		}
		b = b[l:]
		topic := string(b[:n])
		b = b[n:]
		p := int32(binary.BigEndian.Uint32(b))
		m[topicPartition{topic, p}] = int64(binary.BigEndian.Uint64(b[4:]))
		b = b[12:]
	}
	return m, nil
}

// restoreBatchSize is the number of changelog records written to Pebble
// per batch when restoring.
const restoreBatchSize = 10000

// restoreStore restores the store of spec from its changelog partition
// into kv (a Pebble store of ts.db, or an in-memory one) and records the
// changelog partition in ts. It returns the number of records applied.
func (a *App) restoreStore(ctx context.Context, ts *taskState, kv state.KeyValueStore, spec *topology.StoreSpec, topic string, partition int32) (int64, error) {
	tp := state.TopicPartition{Topic: topic, Partition: partition}
	ts.changelogs = append(ts.changelogs, tp)
	from := int64(-1) // the log start
	if ts.db != nil && !spec.InMemory {
		if off, ok := ts.checkpoint[tp]; ok {
			from = off
		}
	}
	var batch *state.Batch
	var put func(k, v []byte) error
	var del func(k []byte) error
	if !spec.Kind.RestoresThroughStore() && ts.db != nil && !spec.InMemory {
		batch = ts.db.NewBatch()
		defer batch.Close()
		put = func(k, v []byte) error { return batch.Put(kv, k, v) }
		del = func(k []byte) error { return batch.Delete(kv, k) }
	}
	// Window and session changelog keys become segmented store keys, and
	// versioned changelog records versions: the restorer writes them
	// through the store, into the DB's pending writes.
	segmented := spec.Kind.RestoresThroughStore()
	restorer, err := task.NewChangelogRestorer(spec, kv, put, del)
	if err != nil {
		return 0, err
	}
	flush := func() error {
		if batch == nil || batch.Len() == 0 {
			return nil
		}
		return batch.Commit(false)
	}
	var skipped, stale int64
	// A record written by a member whose generation is below that of an
	// earlier record is a zombie's (GenerationHeader). A restore from the
	// local state's offsets starts from the generation the state reflects.
	var gf genFilter
	if from >= 0 {
		gf.max = ts.openGen
	}
	cur := a.prod.generation()
	apply := func(r *kgo.Record) error {
		if g, ok := recordGeneration(r); ok {
			prev := gf.max
			if gf.stale(g, cur) {
				if stale == 0 {
					a.log.Warn("restore: skipping changelog records of a former owner written after a newer owner's (a zombie's writes)",
						"store", spec.Name, "topic", topic, "partition", partition, "offset", r.Offset,
						"generation", g, "newer_generation", prev, "current_generation", cur)
				}
				stale++
				return nil
			}
		}
		for _, h := range r.Headers {
			if h.Key != task.InputHeader {
				continue
			}
			if topic, p, off, ok := task.ParseInputPosition(h.Value); ok && !ts.confirmed(topicPartition{topic, p}, off) {
				skipped++
				return nil
			}
		}
		err := restorer.Apply(r.Key, r.Value, r.Timestamp.UnixMilli())
		if err == nil && batch != nil && batch.Len() >= restoreBatchSize {
			err = flush()
		}
		if err == nil && segmented && ts.db != nil && ts.db.Pending() >= restoreBatchSize {
			err = ts.db.Commit(false) // window and session stores restore into the pending writes
		}
		return err
	}
	start := time.Now()
	n, end, err := a.restoreTask(ctx, topic, partition, from, spec.Name, apply)
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, err
	}
	ts.checkpoint[tp] = end
	// The task's generation: the largest of its partitions' (they have the
	// same writers), unless one started the group's new incarnation.
	if gf.max > ts.gen || (ts.gen > cur && gf.max <= cur && gf.max > 0) {
		ts.gen = gf.max
	}
	if n > 0 || skipped > 0 || stale > 0 {
		a.log.Info("restored store", "store", spec.Name, "topic", topic, "partition", partition, "from", from,
			"to", end, "records", n, "skipped_uncommitted", skipped, "skipped_stale_generation", stale,
			"generation", gf.max, "took", time.Since(start))
	}
	a.metrics.staleSkipped.Add(float64(stale))
	return n, nil
}

// finishRestore makes what the restores wrote durable, with the meta
// record of the changelog offsets it reflects (where the next restore
// starts), and writes the checkpoint file, so that the next start does not
// restore it again.
func (a *App) finishRestore(ts *taskState) error {
	if ts.db == nil || len(ts.changelogs) == 0 {
		return nil
	}
	logged := maps.Clone(ts.loggedEnds)
	if logged == nil {
		logged = map[topicPartition]int64{}
	}
	for tp, off := range ts.checkpoint {
		logged[topicPartition{tp.Topic, tp.Partition}] = off
	}
	if err := ts.db.PutPendingMeta(metaChangelogEnds, encodePositions(logged)); err != nil {
		return err
	}
	if err := ts.putGeneration(); err != nil {
		return err
	}
	// Window and session stores restored into the pending writes.
	if err := ts.db.Commit(false); err != nil {
		return err
	}
	ts.loggedEnds = logged
	if err := ts.db.Flush(); err != nil {
		return err
	}
	return state.WriteCheckpoint(ts.fsys(), filepath.Join(ts.dir, checkpointFile), ts.checkpoint)
}
