package runtime

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/internal/partition"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// Interactive queries (Kafka Streams' KafkaStreams.store and
// queryMetadataForKey): typed read-only views of a store across this
// instance's tasks, and where every key's task runs in the group.
//
// Safety while the tasks run: a read runs under App.mu, the lock the poll
// loop holds for each round of processing and committing and the group
// callbacks hold while they change the assignment. A read therefore runs
// between two rounds (while the loop polls), never while a worker
// processes a task: the record cache and the stores need no lock of their
// own, the processing path pays nothing, and a task read is one this
// instance runs, restored, at that moment. The price is on the reader's
// side: a read waits for the round in progress to end (bounded by
// MaxPollRecords' work), and a long Range holds the next round back for
// its duration. docs/interactive-queries.md says why this beats a lock per
// task.
//
// What a view reads: the stores of the active tasks this instance runs
// and has restored (a restoring task is not ready: ErrStoreNotReady); with
// AllowStandby also the standby copies, which lag. Range and All gather
// their results under the lock and return them as a slice, so the caller
// holds no lock while it looks at them.

// Sentinels of StoreQueryError.
var (
	// ErrUnknownStore: the topology has no store of that name, or none of
	// the asked kind (Kafka Streams' UnknownStateStoreException).
	ErrUnknownStore = errors.New("sluice: unknown store")
	// ErrStoreNotLocal: no task of this instance holds the key's
	// partition of the store; KeyQueryMetadata says which instance does.
	ErrStoreNotLocal = errors.New("sluice: the key's task does not run on this instance")
	// ErrStoreNotReady: the store exists here but cannot be read now (its
	// task restores, was rolled back, or the App is not running yet):
	// retry (Kafka Streams' StateStoreMigratedException and
	// StreamsNotStartedException).
	ErrStoreNotReady = errors.New("sluice: store not ready: retry")
)

// StoreQueryError is the error of an interactive query: the store, the
// task if one is concerned, and the cause (one of the sentinels above, or
// a store's or serde's error).
type StoreQueryError struct {
	Store string
	Task  string
	Err   error
}

func (e *StoreQueryError) Error() string {
	if e.Task != "" {
		return fmt.Sprintf("store %s task %s: %v", e.Store, e.Task, e.Err)
	}
	return fmt.Sprintf("store %s: %v", e.Store, e.Err)
}

func (e *StoreQueryError) Unwrap() error { return e.Err }

// QueryOption is an option of a store view.
type QueryOption interface{ applyQuery(*queryOptions) }

type queryOptions struct{ standby bool }

type queryOptionFunc func(*queryOptions)

func (f queryOptionFunc) applyQuery(o *queryOptions) { f(o) }

// AllowStandby lets a view read a standby copy of a task's store when
// this instance does not run the task as active: the copy may lag behind
// the active (Kafka Streams: StoreQueryParameters.enableStaleStores).
func AllowStandby() QueryOption { return queryOptionFunc(func(o *queryOptions) { o.standby = true }) }

// advertisedAddr is the host:port to advertise (AdvertisedAddr, else the
// HTTP listener's address with an unspecified IP replaced by the host
// name), "" for none.
func (a *App) advertisedAddr() string {
	if a.cfg.advertisedAddr != "" {
		return a.cfg.advertisedAddr
	}
	if a.httpLn == nil {
		return ""
	}
	addr := a.httpLn.Addr().String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			return net.JoinHostPort(h, port)
		}
	}
	return addr
}

// AdvertisedAddr returns the "host:port" this instance advertises to the
// group for interactive queries (option AdvertisedAddr), or "".
func (a *App) AdvertisedAddr() string { return a.advertised }

// storeRef is a store of a task-generating sub-topology, or a global
// store (every instance holds it whole).
type storeRef struct {
	spec   *topology.StoreSpec
	sub    int
	global bool
}

// findStore returns the store named name of the tasks.
func (a *App) findStore(name string) (storeRef, error) {
	for _, st := range a.topo.SubTopologies() {
		for _, s := range st.Stores {
			if s.Name == name {
				return storeRef{spec: s, sub: st.ID}, nil
			}
		}
	}
	if g := a.topo.GlobalStore(name); g != nil {
		return storeRef{spec: g.Store, global: true}, nil
	}
	return storeRef{}, &StoreQueryError{Store: name, Err: ErrUnknownStore}
}

// keyTask is the task whose partition holds the encoded key of the
// store: the partition the sinks' default partitioner (murmur2, as Kafka's)
// gives the key among the sub-topology's partitions.
func (a *App) keyTask(ref storeRef, key []byte) (taskID, error) {
	n, err := a.subTasks(ref)
	if err != nil {
		return taskID{}, err
	}
	if n <= 0 {
		return taskID{}, &StoreQueryError{Store: ref.spec.Name, Err: fmt.Errorf("%w: sub-topology %d has no partitions", ErrStoreNotReady, ref.sub)}
	}
	return taskID{sub: ref.sub, partition: int32(partition.ForKey(key, int(n)))}, nil
}

// subTasks is the number of tasks of the store's sub-topology. The layout
// is read once the App has joined (a.bal set under a.mu after the layout
// was planned), never while start plans it.
func (a *App) subTasks(ref storeRef) (int32, error) {
	a.mu.Lock()
	var l *layout
	if a.bal != nil && a.bal.assigned.Load() != nil {
		l = a.layout
	}
	a.mu.Unlock()
	if l == nil {
		return 0, &StoreQueryError{Store: ref.spec.Name, Err: fmt.Errorf("%w: the App has not joined its group yet", ErrStoreNotReady)}
	}
	return l.tasks[ref.sub], nil
}

// readTask runs f on the store of task id under a.mu: the active task's
// if this instance runs it restored, else with standby a standby copy's.
// lag is the standby's lag in changelog records, -1 for an active.
func (a *App) readTask(ref storeRef, id taskID, standby bool, f func(state.Store) error) (lag int64, err error) {
	name := ref.spec.Name
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.runners[id]; r != nil {
		if r.restoring || r.task == nil || r.rolledBack {
			return 0, &StoreQueryError{Store: name, Task: id.String(), Err: fmt.Errorf("%w: the task is restoring", ErrStoreNotReady)}
		}
		s := r.task.Store(name)
		if s == nil {
			return 0, &StoreQueryError{Store: name, Task: id.String(), Err: ErrUnknownStore}
		}
		if err := f(s); err != nil {
			return 0, &StoreQueryError{Store: name, Task: id.String(), Err: err}
		}
		return -1, nil
	}
	if standby {
		lag, ok, err := a.standbys.query(ref.spec, id, f)
		if ok || err != nil {
			if err != nil {
				err = &StoreQueryError{Store: name, Task: id.String(), Err: err}
			}
			return lag, err
		}
	}
	return 0, &StoreQueryError{Store: name, Task: id.String(), Err: ErrStoreNotLocal}
}

// readGlobal runs f on a read-only view of a global store of its own: the
// global reader writes the store meanwhile, which a Pebble view of its own
// or the in-memory store's lock make safe (global.go). The stores exist
// once the App has joined (a.bal is set under a.mu after openGlobals).
func (a *App) readGlobal(ref storeRef, f func(state.Store) error) error {
	a.mu.Lock()
	g := a.globals
	if a.bal == nil {
		g = nil
	}
	a.mu.Unlock()
	if g == nil {
		return &StoreQueryError{Store: ref.spec.Name, Err: fmt.Errorf("%w: the App has not started", ErrStoreNotReady)}
	}
	if err := f(task.ReadOnly(g.base(ref.spec))); err != nil {
		return &StoreQueryError{Store: ref.spec.Name, Err: err}
	}
	return nil
}

// readLocal runs f on the store of every restored active task of the
// store's sub-topology here, in task order, under a.mu; it returns the
// tasks read.
func (a *App) readLocal(ref storeRef, f func(taskID, state.Store) error) ([]taskID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []taskID
	for id, r := range a.runners {
		if id.sub == ref.sub && !r.restoring && r.task != nil && !r.rolledBack {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, taskID.compare)
	for _, id := range ids {
		s := a.runners[id].task.Store(ref.spec.Name)
		if s == nil {
			continue
		}
		if err := f(id, s); err != nil {
			return nil, &StoreQueryError{Store: ref.spec.Name, Task: id.String(), Err: err}
		}
	}
	return ids, nil
}

// view is what every typed view holds.
type view struct {
	a    *App
	ref  storeRef
	opts queryOptions
}

func newView[K, V any](a *App, name string, kinds []topology.StoreKind, opts []QueryOption) (view, serde.Serde[K], serde.Serde[V], error) {
	ref, err := a.findStore(name)
	if err != nil {
		return view{}, nil, nil, err
	}
	if !slices.Contains(kinds, ref.spec.Kind) {
		return view{}, nil, nil, &StoreQueryError{Store: name, Err: fmt.Errorf("%w: it is a %s store, not a %s store", ErrUnknownStore, ref.spec.Kind, kinds[0])}
	}
	if ref.spec.Serdes == nil {
		return view{}, nil, nil, &StoreQueryError{Store: name, Err: errors.New("its serdes are unknown (a store of the Processor API or an internal store)")}
	}
	ks, ok1 := ref.spec.Serdes.KeySerde().(serde.Serde[K])
	vs, ok2 := ref.spec.Serdes.ValueSerde().(serde.Serde[V])
	if !ok1 || !ok2 {
		var k K
		var v V
		return view{}, nil, nil, &StoreQueryError{Store: name, Err: fmt.Errorf("the store's serdes are %T and %T, not of %T keys and %T values",
			ref.spec.Serdes.KeySerde(), ref.spec.Serdes.ValueSerde(), k, v)}
	}
	var o queryOptions
	for _, opt := range opts {
		opt.applyQuery(&o)
	}
	return view{a: a, ref: ref, opts: o}, ks, vs, nil
}

// rawValue is the value's encoding in the store: without a timestamped
// store's timestamp.
func (v view) rawValue(b []byte) ([]byte, error) {
	if !v.ref.spec.Timestamped {
		return b, nil
	}
	_, raw, err := nodes.DecodeTimestamped(b)
	return raw, err
}

// KeyValue is an entry of a key-value store.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KeyValueView is a read-only typed view of a key-value store (versioned
// stores included: their latest values) across this instance's tasks:
// Kafka Streams' ReadOnlyKeyValueStore (QueryableStoreTypes.keyValueStore).
// It is safe for concurrent use and stays valid while the App runs.
type KeyValueView[K, V any] struct {
	v      view
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// KeyValueStoreView returns a view of the key-value store named store. K
// and V must be the types of the store's serdes.
func KeyValueStoreView[K, V any](a *App, store string, opts ...QueryOption) (*KeyValueView[K, V], error) {
	v, ks, vs, err := newView[K, V](a, store, []topology.StoreKind{topology.KeyValue, topology.Versioned}, opts)
	if err != nil {
		return nil, err
	}
	return &KeyValueView[K, V]{v: v, keys: ks, values: vs}, nil
}

// Get returns the value of key; ok is false when the store has none. A
// key whose task does not run here fails with ErrStoreNotLocal, one whose
// task restores with ErrStoreNotReady.
func (s *KeyValueView[K, V]) Get(key K) (value V, ok bool, err error) {
	kb, err := s.keys.Encode(nil, key)
	if err != nil {
		return value, false, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("serialize key: %w", err)}
	}
	raw, ok, _, err := s.v.getRaw(kb)
	if err != nil || !ok {
		return value, false, err
	}
	if value, err = s.values.Decode(raw); err != nil {
		return value, false, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize the value of key %v: %w", key, err)}
	}
	return value, true, nil
}

// getRaw returns the value's encoding (timestamp removed) of the encoded
// key, and the task's standby lag (-1: read from the active).
func (v view) getRaw(key []byte) (raw []byte, ok bool, lag int64, err error) {
	read := func(f func(state.Store) error) (int64, error) { return -1, v.a.readGlobal(v.ref, f) }
	if !v.ref.global {
		id, err := v.a.keyTask(v.ref, key)
		if err != nil {
			return nil, false, 0, err
		}
		read = func(f func(state.Store) error) (int64, error) { return v.a.readTask(v.ref, id, v.opts.standby, f) }
	}
	lag, err = read(func(s state.Store) error {
		var b []byte
		var err error
		switch st := s.(type) {
		case state.VersionedKeyValueStore:
			var rec state.VersionedRecord
			rec, ok, err = st.Get(key)
			b = rec.Value
		case state.KeyValueStore:
			b, ok, err = st.Get(key)
		default:
			return fmt.Errorf("not a key-value store (%T)", s)
		}
		if err != nil || !ok {
			return err
		}
		raw, err = v.rawValue(b)
		// The store's bytes may be reused by the task's next read once
		// the lock is released: the caller decodes a copy.
		raw = bytes.Clone(raw)
		return err
	})
	return raw, ok, lag, err
}

// Range returns the entries with from <= key <= to in the order of the
// keys' encodings, from every task of this instance (Kafka Streams'
// ReadOnlyKeyValueStore.range over the local stores).
func (s *KeyValueView[K, V]) Range(from, to K) ([]KeyValue[K, V], error) {
	fb, err := s.keys.Encode(nil, from)
	if err != nil {
		return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("serialize key: %w", err)}
	}
	tb, err := s.keys.Encode(nil, to)
	if err != nil {
		return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("serialize key: %w", err)}
	}
	return s.collect(fb, append(tb, 0))
}

// All returns every entry of this instance's tasks in the order of the
// keys' encodings.
func (s *KeyValueView[K, V]) All() ([]KeyValue[K, V], error) { return s.collect(nil, nil) }

func (s *KeyValueView[K, V]) collect(from, to []byte) ([]KeyValue[K, V], error) {
	raw, _, err := s.v.rangeRaw(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]KeyValue[K, V], 0, len(raw))
	for _, e := range raw {
		k, err := s.keys.Decode(e.key)
		if err != nil {
			return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize key %x: %w", e.key, err)}
		}
		v, err := s.values.Decode(e.value)
		if err != nil {
			return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize the value of key %v: %w", k, err)}
		}
		out = append(out, KeyValue[K, V]{Key: k, Value: v})
	}
	return out, nil
}

type rawEntry struct{ key, value []byte }

// rangeRaw returns the entries of this instance's restored active tasks
// with from <= key < to (nil: unbounded), sorted by key, and the tasks
// read.
func (v view) rangeRaw(from, to []byte) ([]rawEntry, []taskID, error) {
	var out []rawEntry
	read := func(s state.Store) error {
		kv, ok := s.(state.KeyValueStore)
		if !ok {
			return fmt.Errorf("a range over a %s store is not supported", v.ref.spec.Kind)
		}
		for k, b := range kv.Range(from, to) {
			raw, err := v.rawValue(b)
			if err != nil {
				return fmt.Errorf("key %x: %w", k, err)
			}
			out = append(out, rawEntry{bytes.Clone(k), bytes.Clone(raw)})
		}
		return iterErr(s)
	}
	var ids []taskID
	var err error
	if v.ref.global {
		err = v.a.readGlobal(v.ref, read)
	} else {
		ids, err = v.a.readLocal(v.ref, func(_ taskID, s state.Store) error { return read(s) })
	}
	slices.SortFunc(out, func(x, y rawEntry) int { return bytes.Compare(x.key, y.key) })
	return out, ids, err
}

func iterErr(s state.Store) error {
	if r, ok := s.(state.IterErrReporter); ok {
		return r.IterErr()
	}
	return nil
}

// WindowValue is a value of a window: its start and end (the start plus
// the windows' size; the start when the size is unknown).
type WindowValue[V any] struct {
	Start, End time.Time
	Value      V
}

// WindowedKeyValue is a key's value of a window.
type WindowedKeyValue[K, V any] struct {
	Key K
	WindowValue[V]
}

// WindowView is a read-only typed view of a window store across this
// instance's tasks: Kafka Streams' ReadOnlyWindowStore
// (QueryableStoreTypes.windowStore). Safe for concurrent use.
type WindowView[K, V any] struct {
	v      view
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// WindowStoreView returns a view of the window store named store.
func WindowStoreView[K, V any](a *App, store string, opts ...QueryOption) (*WindowView[K, V], error) {
	v, ks, vs, err := newView[K, V](a, store, []topology.StoreKind{topology.Window}, opts)
	if err != nil {
		return nil, err
	}
	return &WindowView[K, V]{v: v, keys: ks, values: vs}, nil
}

// Fetch returns the key's windows that start in [from, to], in order of
// start (Kafka Streams' ReadOnlyWindowStore.fetch(key, timeFrom, timeTo)).
func (s *WindowView[K, V]) Fetch(key K, from, to time.Time) ([]WindowValue[V], error) {
	kb, err := s.keys.Encode(nil, key)
	if err != nil {
		return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("serialize key: %w", err)}
	}
	raw, _, err := s.v.fetchWindows(kb, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	out := make([]WindowValue[V], 0, len(raw))
	for _, w := range raw {
		val, err := s.values.Decode(w.value)
		if err != nil {
			return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize the value of key %v window %d: %w", key, w.start, err)}
		}
		out = append(out, WindowValue[V]{Start: time.UnixMilli(w.start), End: time.UnixMilli(w.end), Value: val})
	}
	return out, nil
}

// FetchAll returns every key's windows that start in [from, to] on this
// instance's tasks, by key encoding, then start.
func (s *WindowView[K, V]) FetchAll(from, to time.Time) ([]WindowedKeyValue[K, V], error) {
	var out []WindowedKeyValue[K, V]
	var all []rawWindow
	_, err := s.v.a.readLocal(s.v.ref, func(_ taskID, st state.Store) error {
		ws, ok := st.(*state.WindowStore)
		if !ok {
			return fmt.Errorf("not a window store (%T)", st)
		}
		for k, b := range ws.FetchAll(from.UnixMilli(), to.UnixMilli()) {
			raw, err := s.v.rawValue(b)
			if err != nil {
				return fmt.Errorf("key %x window %d: %w", k.Key, k.Start, err)
			}
			all = append(all, rawWindow{key: bytes.Clone(k.Key), start: k.Start, end: s.v.windowEnd(k.Start), value: bytes.Clone(raw)})
		}
		return iterErr(ws)
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(all, func(x, y rawWindow) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		return cmp.Compare(x.start, y.start)
	})
	for _, w := range all {
		k, err := s.keys.Decode(w.key)
		if err != nil {
			return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize key %x: %w", w.key, err)}
		}
		val, err := s.values.Decode(w.value)
		if err != nil {
			return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize the value of key %v window %d: %w", k, w.start, err)}
		}
		out = append(out, WindowedKeyValue[K, V]{Key: k, WindowValue: WindowValue[V]{Start: time.UnixMilli(w.start), End: time.UnixMilli(w.end), Value: val}})
	}
	return out, nil
}

type rawWindow struct {
	key        []byte
	start, end int64
	value      []byte
}

func (v view) windowEnd(start int64) int64 {
	if v.ref.spec.WindowSize <= 0 {
		return start
	}
	return start + v.ref.spec.WindowSize.Milliseconds()
}

// fetchWindows returns the encoded key's windows (window stores) or
// sessions (session stores: those ending at or after from and starting at
// or before to) with their raw values, and the standby lag (-1: active).
func (v view) fetchWindows(key []byte, from, to int64) ([]rawWindow, int64, error) {
	id, err := v.a.keyTask(v.ref, key)
	if err != nil {
		return nil, 0, err
	}
	var out []rawWindow
	lag, err := v.a.readTask(v.ref, id, v.opts.standby, func(s state.Store) error {
		switch st := s.(type) {
		case *state.WindowStore:
			for start, b := range st.FetchKey(key, from, to) {
				raw, err := v.rawValue(b)
				if err != nil {
					return fmt.Errorf("window %d: %w", start, err)
				}
				out = append(out, rawWindow{start: start, end: v.windowEnd(start), value: bytes.Clone(raw)})
			}
			return st.IterErr()
		case *state.SessionStore:
			for sk, b := range st.FindSessions(key, from, to) {
				raw, err := v.rawValue(b)
				if err != nil {
					return fmt.Errorf("session %d-%d: %w", sk.Start, sk.End, err)
				}
				out = append(out, rawWindow{start: sk.Start, end: sk.End, value: bytes.Clone(raw)})
			}
			return st.IterErr()
		}
		return fmt.Errorf("not a window or session store (%T)", s)
	})
	return out, lag, err
}

// SessionValue is a value of a session: the timestamps of its first and
// last records.
type SessionValue[V any] struct {
	Start, End time.Time
	Value      V
}

// SessionView is a read-only typed view of a session store across this
// instance's tasks: Kafka Streams' ReadOnlySessionStore
// (QueryableStoreTypes.sessionStore). Safe for concurrent use.
type SessionView[K, V any] struct {
	v      view
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// SessionStoreView returns a view of the session store named store.
func SessionStoreView[K, V any](a *App, store string, opts ...QueryOption) (*SessionView[K, V], error) {
	v, ks, vs, err := newView[K, V](a, store, []topology.StoreKind{topology.Session}, opts)
	if err != nil {
		return nil, err
	}
	return &SessionView[K, V]{v: v, keys: ks, values: vs}, nil
}

// Fetch returns the key's sessions in order (Kafka Streams'
// ReadOnlySessionStore.fetch(key)).
func (s *SessionView[K, V]) Fetch(key K) ([]SessionValue[V], error) {
	return s.FindSessions(key, time.UnixMilli(0), time.UnixMilli(math.MaxInt64))
}

// FindSessions returns the key's sessions that end at or after
// earliestEnd and start at or before latestStart (Kafka Streams'
// ReadOnlySessionStore.findSessions).
func (s *SessionView[K, V]) FindSessions(key K, earliestEnd, latestStart time.Time) ([]SessionValue[V], error) {
	kb, err := s.keys.Encode(nil, key)
	if err != nil {
		return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("serialize key: %w", err)}
	}
	raw, _, err := s.v.fetchWindows(kb, earliestEnd.UnixMilli(), latestStart.UnixMilli())
	if err != nil {
		return nil, err
	}
	out := make([]SessionValue[V], 0, len(raw))
	for _, w := range raw {
		val, err := s.values.Decode(w.value)
		if err != nil {
			return nil, &StoreQueryError{Store: s.v.ref.spec.Name, Err: fmt.Errorf("deserialize the value of key %v session %d-%d: %w", key, w.start, w.end, err)}
		}
		out = append(out, SessionValue[V]{Start: time.UnixMilli(w.start), End: time.UnixMilli(w.end), Value: val})
	}
	return out, nil
}

// KeyQueryMetadata is where a key of a store lives in the group (Kafka
// Streams' KeyQueryMetadata): the advertised host running its task as
// active, those keeping standbys of it, its partition and task. Active is
// "" when no instance advertising a host runs it.
type KeyQueryMetadata struct {
	Active    string
	Standbys  []string
	Partition int32
	Task      string
}

// QueryMetadataForKey returns where key of store lives, from the latest
// assignment this instance received (Kafka Streams:
// KafkaStreams.queryMetadataForKey). The partition is the one the sinks'
// default partitioner gives the key's encoding by the store's key serde.
// During a rebalance the answer may be out of date: the instance it names
// then answers ErrStoreNotReady or ErrStoreNotLocal, never another key's
// or a stale task's value.
func QueryMetadataForKey[K any](a *App, store string, key K) (KeyQueryMetadata, error) {
	ref, err := a.findStore(store)
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	if ref.spec.Serdes == nil {
		return KeyQueryMetadata{}, &StoreQueryError{Store: store, Err: errors.New("its serdes are unknown (a store of the Processor API or an internal store)")}
	}
	ks, ok := ref.spec.Serdes.KeySerde().(serde.Serde[K])
	if !ok {
		var k K
		return KeyQueryMetadata{}, &StoreQueryError{Store: store, Err: fmt.Errorf("the store's key serde is %T, not one of %T keys", ref.spec.Serdes.KeySerde(), k)}
	}
	kb, err := ks.Encode(nil, key)
	if err != nil {
		return KeyQueryMetadata{}, &StoreQueryError{Store: store, Err: fmt.Errorf("serialize key: %w", err)}
	}
	return a.keyMetadata(ref, kb)
}

func (a *App) keyMetadata(ref storeRef, key []byte) (KeyQueryMetadata, error) {
	if ref.global {
		// Every instance holds a global store whole: this one answers.
		return KeyQueryMetadata{Active: a.advertised, Partition: -1}, nil
	}
	id, err := a.keyTask(ref, key)
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	m := KeyQueryMetadata{Partition: id.partition, Task: id.String()}
	for _, h := range a.hostTasks() {
		if _, ok := slices.BinarySearchFunc(h.active, id, taskID.compare); ok {
			m.Active = h.host
		}
		if _, ok := slices.BinarySearchFunc(h.standbys, id, taskID.compare); ok {
			m.Standbys = append(m.Standbys, h.host)
		}
	}
	return m, nil
}

// hostTasks are the hosts' tasks of the latest assignment.
func (a *App) hostTasks() []hostTasks {
	a.mu.Lock()
	b := a.bal
	a.mu.Unlock()
	if b == nil {
		return nil
	}
	return b.standbyAssignment().hosts
}

// InstanceMetadata is an instance of the application as the latest
// assignment describes it (Kafka Streams' StreamsMetadata): its advertised
// host, its active and standby tasks, and the stores they hold.
type InstanceMetadata struct {
	Host         string
	Tasks        []string
	StandbyTasks []string
	Stores       []string
}

// Instances returns every instance advertising a host in the latest
// assignment this instance received, sorted by host (Kafka Streams:
// KafkaStreams.metadataForAllStreamsClients).
func (a *App) Instances() []InstanceMetadata {
	var out []InstanceMetadata
	for _, h := range a.hostTasks() {
		m := InstanceMetadata{Host: h.host}
		stores := map[string]bool{}
		for _, id := range h.active {
			m.Tasks = append(m.Tasks, id.String())
			if st := a.topo.SubTopology(id.sub); st != nil {
				for _, s := range st.Stores {
					stores[s.Name] = true
				}
			}
		}
		for _, id := range h.standbys {
			m.StandbyTasks = append(m.StandbyTasks, id.String())
		}
		for s := range stores {
			m.Stores = append(m.Stores, s)
		}
		slices.Sort(m.Stores)
		out = append(out, m)
	}
	return out
}
