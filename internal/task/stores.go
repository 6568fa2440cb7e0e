package task

import (
	"fmt"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// The store stack, the same in the runtime and the test driver, from the
// bottom up:
//
//   - the base: a key-value store of the task's Pebble database, or an
//     in-memory one (Config.OpenBase), restored from the changelog by the
//     caller;
//   - the changelog logger (loggedStore), if the store logs and the task
//     has a ChangelogWriter: every write that reaches it is logged, at
//     once or, with Config.ChangelogBuffer and no record cache, the
//     latest write of each key when the task flushes;
//   - the record cache (state.CachingStore), if the store caches and the
//     task has a Cache: updates of a key between two flushes reach the
//     logger, and are forwarded downstream, as one;
//   - the store's kind over it: the key-value store itself, or a window or
//     session store keeping its entries in it (WrapStore).
//
// A versioned store is stacked differently: its changelog records are its
// versions, not the writes to its base, so the logger
// (loggedVersionedStore) sits above the versioned store, and there is no
// record cache (Kafka Streams does not cache versioned stores either).

// openStore builds the store of spec on the base Config.OpenBase opens.
func (t *Task) openStore(spec *topology.StoreSpec) (state.Store, error) {
	var kv state.KeyValueStore
	if t.cfg.OpenBase == nil {
		kv = state.NewInMemoryKeyValueStore(spec.Name)
	} else {
		var err error
		if kv, err = t.cfg.OpenBase(spec); err != nil {
			return nil, err
		}
	}
	if spec.Kind == topology.Versioned {
		vs, err := WrapStore(spec, kv)
		if err != nil {
			return nil, err
		}
		if t.cfg.Changelog != nil && !spec.DisableLogging {
			vs = &loggedVersionedStore{VersionedKeyValueStore: vs.(state.VersionedKeyValueStore),
				topic: ChangelogTopic(t.cfg.ApplicationID, spec), partition: t.cfg.Partition, w: t.cfg.Changelog,
				position: t.InputPosition}
		}
		return vs, nil
	}
	if t.cfg.Changelog != nil && !spec.DisableLogging {
		ls := &loggedStore{KeyValueStore: kv, topic: ChangelogTopic(t.cfg.ApplicationID, spec), partition: t.cfg.Partition,
			timestamped: spec.Timestamped, w: t.cfg.Changelog, skip: spec.Kind.SegmentPrefixLen(), version: versionHeader(spec),
			position: func() (string, int32, int64, int64) {
				tp, p, o := t.InputPosition()
				return tp, p, o, t.RecordTimestamp()
			}}
		if t.cfg.ChangelogBuffer > 0 && !spec.RetainDuplicates && (t.cfg.Cache == nil || spec.DisableCaching) {
			// Below a record cache the writes are already one per key
			// per flush; a store of duplicates never writes a key twice.
			ls.buf, ls.hasInput = newChangelogBuffer(t.cfg.ChangelogBuffer), t.HasInput
			ls.slots, _ = kv.(state.SlotPutter)
			t.addDirty(spec.Name, ls)
		}
		kv = ls
	}
	if t.cfg.Cache != nil && !spec.DisableCaching {
		c := state.NewCachingStore(kv, t.cfg.Cache)
		// Writes whose operator sets no record context (a user
		// processor's) are logged, when flushed, with the timestamp of
		// the record that made them, not of the record processed at
		// flush time.
		c.SetDefaultRecordContext(func() state.RecordContext { return state.RecordContext{Timestamp: t.RecordTimestamp()} })
		t.addDirty(spec.Name, c)
		kv = c
	}
	return WrapStore(spec, kv)
}

// WrapStore makes the store of spec from the key-value store its entries
// live in: base itself for a key-value store, a window or session store
// kept in base otherwise (with spec's retention and segment interval), or
// a versioned store kept in base (with spec's history retention).
func WrapStore(spec *topology.StoreSpec, base state.KeyValueStore) (state.Store, error) {
	switch spec.Kind {
	case topology.KeyValue, topology.SuppressionBuffer:
		// A suppression buffer keeps its entries as they are in the
		// changelog; the suppress node holds them in time order in memory
		// and writes each change through (internal/nodes/suppress.go).
		return base, nil
	case topology.Window:
		return state.NewWindowStore(base, state.WindowStoreOptions{Retention: spec.StoreRetention(),
			SegmentInterval: spec.EffectiveSegmentInterval(), RetainDuplicates: spec.RetainDuplicates,
			FetchCacheBytes: fetchCacheBytes(spec)})
	case topology.Session:
		return state.NewSessionStore(base, state.SessionStoreOptions{Retention: spec.StoreRetention(),
			SegmentInterval: spec.EffectiveSegmentInterval()})
	case topology.Versioned:
		return state.NewVersionedKeyValueStore(base, state.VersionedStoreOptions{HistoryRetention: spec.HistoryRetention})
	}
	return nil, fmt.Errorf("sluice: store %s: unknown kind %d", spec.Name, spec.Kind)
}

// joinFetchCacheBytes is the budget of the fetch cache of each window
// store that retains duplicates, a stream-stream join's
// (state.WindowStoreOptions.FetchCacheBytes): the join fetches the other
// side's windows of every record's key, and keeping the keys' live entries
// in memory spares the base store's seeks (docs/performance.md). It is
// not part of the record cache's budget (runtime.CacheMaxBytes): each
// task's join takes up to twice this on top.
const joinFetchCacheBytes = 4 << 20

func fetchCacheBytes(spec *topology.StoreSpec) int64 {
	if spec.RetainDuplicates {
		return joinFetchCacheBytes
	}
	return 0
}

// ReadOnly wraps a global store for the tasks that read it: its writes
// fail, as Kafka Streams hands processors a read-only decorator of a
// global store. Only the global reader writes it.
func ReadOnly(kv state.KeyValueStore) state.KeyValueStore { return readOnlyStore{kv} }

type readOnlyStore struct{ state.KeyValueStore }

func (s readOnlyStore) Put(_, _ []byte) error {
	return fmt.Errorf("sluice: global store %s is read-only: only the global reader writes it", s.Name())
}

func (s readOnlyStore) Delete(_ []byte) error {
	return fmt.Errorf("sluice: global store %s is read-only: only the global reader writes it", s.Name())
}

// Close releases nothing: the store belongs to the global reader.
func (s readOnlyStore) Close() error { return nil }

// IterErr implements state.IterErrReporter for a store below that does,
// so that an iteration cut short by an I/O error is not taken for a
// complete one.
func (s readOnlyStore) IterErr() error {
	if r, ok := s.KeyValueStore.(state.IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// addDirty registers a layer of the store name whose unflushed writes
// Flush waits for (Task.dirty).
func (t *Task) addDirty(name string, d interface{ Dirty() int }) {
	if t.dirty == nil {
		t.dirty = map[string][]interface{ Dirty() int }{}
	}
	t.dirty[name] = append(t.dirty[name], d)
}
