package state_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sluicehq/sluice/state"
)

// The layout benchmarks measure what the design asks to decide by
// measurement: one Pebble DB per task, or one DB per instance with the
// tasks' stores under their own prefixes. The workload is a stateful
// task's: each of 8 tasks owns 100,000 keys (16-byte keys, 16-byte values);
// per commit interval each task reads 10,000 random keys of its own (the
// record cache's misses) and writes them back in one batch with a meta
// record of its input offset. One op is one commit interval of all 8 tasks,
// run by as many goroutines as the machine has cores, each task's interval
// on one goroutine. The DBs of a layout share one block cache (see
// benchLayouts for the sizes) and run on the OS file system.
//
// Run with:
//
//	go test -run '^$' -bench PebbleLayout -benchmem -benchtime 40x -timeout 1h ./state/
//
// Metrics: records/s and MB/s count read-modify-writes (one Get and one Put
// each) per second of wall time; ns/get and ns/put are the time a worker
// spends per Get and per Put (batch build and commit); allocs/record;
// cpu-ns/record is the CPU time of the whole process (compactions
// included) per record; w-amp is the bytes written to the WAL and to
// sstables by flushes and compactions over the key and value bytes the
// tasks wrote, counted after the compactions the run started have
// finished; tables and wal-files are the files open at the end.

const (
	benchTasks       = 8
	benchKeysPerTask = 100_000
	benchDirty       = 10_000 // dirty keys per task per commit interval
	benchKeyLen      = 16
	benchValueLen    = 16
)

type benchLayout struct {
	name   string
	shared bool
	sync   bool // commit with sync
	cache  int64
	opts   state.PebbleOptions
}

// The layouts compare at two memory budgets, the size of the shared block
// cache, which Pebble charges with every DB's memtables (two per DB: the
// one filling and the one flushing or kept for reuse), so that memtables
// and cached blocks share one budget. At 16 MiB, half of it for
// memtables: 8 DBs with 512 KiB memtables against one with 4 MiB ones; at
// 80 MiB, 64 MiB of memtables: Pebble's default of 4 MiB for 8 DBs against
// 32 MiB for one. The first layout is the default per-task one at 16 MiB,
// whose memtables alone overflow the budget.
var benchLayouts = []benchLayout{
	{name: "16MiB/per-task/memtable=4MiB", cache: 16 << 20},
	{name: "16MiB/per-task/memtable=512KiB", cache: 16 << 20, opts: state.PebbleOptions{MemTableSize: 512 << 10}},
	{name: "16MiB/shared/memtable=4MiB", shared: true, cache: 16 << 20},
	{name: "16MiB/shared/memtable=4MiB/compactions=2", shared: true, cache: 16 << 20, opts: state.PebbleOptions{MaxConcurrentCompactions: 2}},
	{name: "16MiB/per-task/memtable=512KiB/sync", sync: true, cache: 16 << 20, opts: state.PebbleOptions{MemTableSize: 512 << 10}},
	{name: "16MiB/shared/memtable=4MiB/sync", shared: true, sync: true, cache: 16 << 20},
	{name: "16MiB/per-task/memtable=512KiB/nowal", cache: 16 << 20, opts: state.PebbleOptions{MemTableSize: 512 << 10, DisableWAL: true}},
	{name: "16MiB/shared/memtable=4MiB/nowal", shared: true, cache: 16 << 20, opts: state.PebbleOptions{DisableWAL: true}},
	{name: "80MiB/per-task/memtable=4MiB", cache: 80 << 20},
	{name: "80MiB/shared/memtable=32MiB", shared: true, cache: 80 << 20, opts: state.PebbleOptions{MemTableSize: 32 << 20}},
}

// benchKey writes the key of entry i of a task: a hash of i first, so that
// a task's keys spread over its key space like hashed record keys, then i.
func benchKey(dst []byte, i uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], i*0x9E3779B97F4A7C15)
	return binary.BigEndian.AppendUint64(dst, i)
}

// benchTask is one task's stores, in its own DB or in the shared one.
type benchTask struct {
	db    *state.PebbleDB
	store state.KeyValueStore
	meta  []byte
	batch *state.Batch
	rng   *rand.Rand

	getNanos, putNanos int64
}

// benchInstance opens the DBs of a layout in dir and loads every task's
// keys.
func benchInstance(b *testing.B, dir string, l benchLayout, cache *pebble.Cache) (dbs []*state.PebbleDB, tasks []*benchTask) {
	o := l.opts
	o.Cache = cache
	open := func(name string) *state.PebbleDB {
		db, err := state.OpenPebble(filepath.Join(dir, name), o)
		if err != nil {
			b.Fatal(err)
		}
		dbs = append(dbs, db)
		return db
	}
	var shared *state.PebbleDB
	if l.shared {
		shared = open("instance")
	}
	for i := range benchTasks {
		t := &benchTask{db: shared, meta: fmt.Appendf(nil, "offsets/0_%d", i), rng: rand.New(rand.NewPCG(uint64(i), 1))}
		if t.db == nil {
			t.db = open(fmt.Sprintf("0_%d", i))
			t.store = t.db.KeyValueStore("counts")
		} else {
			t.store = t.db.KeyValueStore(fmt.Sprintf("0_%d/counts", i))
		}
		t.batch = t.db.NewBatch()
		tasks = append(tasks, t)
	}
	// Load the keys in batches of a commit interval's size.
	var k []byte
	v := make([]byte, benchValueLen)
	for _, t := range tasks {
		for i := range uint64(benchKeysPerTask) {
			k = benchKey(k, i)
			binary.BigEndian.PutUint64(v, i)
			if err := t.batch.Put(t.store, k, v); err != nil {
				b.Fatal(err)
			}
			if t.batch.Len() == benchDirty {
				if err := t.batch.Commit(false); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := t.batch.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
	for _, db := range dbs {
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	return dbs, tasks
}

// interval runs one commit interval of t: read benchDirty random keys,
// then write them back with the offset in one batch.
func (t *benchTask) interval(offset uint64, sync bool, keys [][]byte) error {
	start := time.Now()
	for j := range keys {
		i := t.rng.Uint64N(benchKeysPerTask)
		keys[j] = benchKey(keys[j], i)
		if _, ok, err := t.store.Get(keys[j]); err != nil || !ok {
			return fmt.Errorf("get %x: %v %v", keys[j], ok, err)
		}
	}
	mid := time.Now()
	var v [benchValueLen]byte
	for _, k := range keys {
		binary.BigEndian.PutUint64(v[:], offset)
		binary.BigEndian.PutUint64(v[8:], t.rng.Uint64())
		if err := t.batch.Put(t.store, k, v[:]); err != nil {
			return err
		}
	}
	if err := t.batch.PutMeta(t.meta, binary.BigEndian.AppendUint64(nil, offset)); err != nil {
		return err
	}
	if err := t.batch.Commit(sync); err != nil {
		return err
	}
	end := time.Now()
	t.getNanos += mid.Sub(start).Nanoseconds()
	t.putNanos += end.Sub(mid).Nanoseconds()
	return nil
}

func BenchmarkPebbleLayout(b *testing.B) {
	for _, l := range benchLayouts {
		b.Run(l.name, func(b *testing.B) {
			cache := pebble.NewCache(l.cache)
			defer cache.Unref()
			dir := b.TempDir()
			dbs, tasks := benchInstance(b, dir, l, cache)
			defer func() {
				for _, t := range tasks {
					_ = t.batch.Close()
				}
				for _, db := range dbs {
					if err := db.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
						b.Error(err)
					}
				}
			}()
			waitCompactions(b, dbs)

			workers := runtime.GOMAXPROCS(0)
			keys := make([][][]byte, workers)
			for w := range keys {
				keys[w] = make([][]byte, benchDirty)
			}
			before := sumMetrics(dbs)
			cpuBefore := cpuTime()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.SetBytes(benchTasks * benchDirty * (benchKeyLen + benchValueLen))
			b.ResetTimer()
			offset := uint64(0)
			for b.Loop() {
				offset++
				var wg sync.WaitGroup
				errs := make([]error, workers)
				for w := range workers {
					wg.Go(func() {
						for i := w; i < len(tasks); i += workers {
							if err := tasks[i].interval(offset, l.sync, keys[w]); err != nil {
								errs[w] = err
								return
							}
						}
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			waitCompactions(b, dbs) // count the compactions the run owes
			cpu := cpuTime() - cpuBefore
			after := sumMetrics(dbs)

			records := float64(b.N) * benchTasks * benchDirty
			var getNanos, putNanos int64
			for _, t := range tasks {
				getNanos += t.getNanos
				putNanos += t.putNanos
			}
			b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(getNanos)/records, "ns/get")
			b.ReportMetric(float64(putNanos)/records, "ns/put")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/records, "allocs/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/records, "cpu-ns/record")
			b.ReportMetric(float64(after.written-before.written)/(records*(benchKeyLen+benchValueLen)), "w-amp")
			b.ReportMetric(float64(after.tables), "tables")
			b.ReportMetric(float64(after.walFiles), "wal-files")

			drop, reclaim, reclaimed := benchDrop(b, dir, l, dbs, tasks)
			b.ReportMetric(float64(drop.Microseconds())/1000, "drop-ms")
			b.ReportMetric(float64(reclaim.Milliseconds()), "reclaim-ms")
			b.ReportMetric(100*reclaimed, "reclaimed-%")
		})
	}
}

// benchDrop deletes the state of task 0 for good, as when a task moves
// away: closing its DB and removing its directory, or a range deletion over
// its store in the shared DB. It returns the time that takes; the time
// until at least half of the task's share of the disk is back (at once for
// a removed directory; for the shared DB, once the tombstone is flushed, as
// the next commits would do, and compactions have dropped the sstables
// under it); and the share of the task's part of the disk that came back
// (within 30 seconds).
func benchDrop(b *testing.B, dir string, l benchLayout, dbs []*state.PebbleDB, tasks []*benchTask) (drop, reclaim time.Duration, reclaimed float64) {
	for _, db := range dbs {
		if err := state.PebbleFlushMemTableForTest(db); err != nil {
			b.Fatal(err)
		}
	}
	waitCompactions(b, dbs)
	before := dirSize(b, dir)
	share := before / benchTasks
	t := tasks[0]
	start := time.Now()
	if l.shared {
		if err := t.store.(state.RangeDeleter).DeleteRange(nil, nil); err != nil {
			b.Fatal(err)
		}
		drop = time.Since(start)
		if err := state.PebbleFlushMemTableForTest(t.db); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); dirSize(b, dir) > before-share/2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		_ = t.batch.Close()
		if err := t.db.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "0_0")); err != nil {
			b.Fatal(err)
		}
		drop = time.Since(start)
	}
	reclaim = time.Since(start)
	if l.shared {
		waitCompactions(b, dbs)
	}
	return drop, reclaim, float64(before-dirSize(b, dir)) / float64(share)
}

type benchMetrics struct {
	written  uint64 // bytes written to the WAL and to sstables
	tables   int64
	walFiles int64
}

func sumMetrics(dbs []*state.PebbleDB) benchMetrics {
	var s benchMetrics
	for _, db := range dbs {
		m := state.PebbleMetricsForTest(db)
		s.written += m.WAL.BytesWritten
		for _, l := range m.Levels {
			s.written += l.TableBytesFlushed + l.TableBytesCompacted
			s.tables += l.TablesCount
		}
		s.walFiles += m.WAL.Files
	}
	return s
}

// waitCompactions waits until no DB has had a flush or compaction in
// progress for three polls in a row.
func waitCompactions(b *testing.B, dbs []*state.PebbleDB) {
	deadline := time.Now().Add(5 * time.Minute)
	for idle := 0; idle < 3; {
		idle++
		for _, db := range dbs {
			m := state.PebbleMetricsForTest(db)
			if m.Compact.NumInProgress > 0 || m.Flush.NumInProgress > 0 {
				idle = 0
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("compactions still running after 5 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted by a compaction during the walk
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
