package dsl

import (
	"maps"
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// BufferFullStrategy is what a suppression buffer does when an update
// would take it over one of its bounds.
type BufferFullStrategy int

const (
	// EmitEarlyWhenFull emits the oldest buffered updates until the buffer
	// is within its bounds again (Kafka Streams: emitEarlyWhenFull, the
	// default of a bounded buffer). Not allowed with UntilWindowCloses,
	// whose results would no longer be final.
	EmitEarlyWhenFull BufferFullStrategy = iota
	// ShutDownWhenFull fails the task with a *BufferFullError naming the
	// suppress node and its bounds (Kafka Streams: shutDownWhenFull, which
	// throws a StreamsException).
	ShutDownWhenFull
)

// BufferConfig bounds the suppression buffer; zero MaxRecords and MaxBytes
// = unbounded (Kafka Streams: BufferConfig.unbounded(), maxRecords,
// maxBytes). Bytes are counted as Kafka Streams counts them: per entry,
// its serialized key and values, its buffer time and its record context
// (timestamp, offset, topic, partition, headers).
type BufferConfig struct {
	MaxRecords int64
	MaxBytes   int64
	OnFull     BufferFullStrategy
}

func (c BufferConfig) bounded() bool { return c.MaxRecords != 0 || c.MaxBytes != 0 }

// BufferFullError is the error that fails a task when a suppression
// buffer with ShutDownWhenFull goes over a bound: it names the suppress
// node, its buffer store and the bounds (0: unbounded).
type BufferFullError = nodes.BufferFullError

// Suppressed configures Table.Suppress: made by UntilWindowCloses or
// UntilTimeLimit (Kafka Streams: Suppressed).
type Suppressed struct {
	name          string
	windowCloses  bool
	limit         time.Duration
	buf           BufferConfig
	loggingOff    bool
	loggingConfig map[string]string
}

// UntilWindowCloses suppresses the updates of a windowed table until its
// windows close, then emits each window's final result once: when the
// suppress node's stream time (the largest timestamp of the updates it was
// given) reaches the window's end + grace (sessions: end + gap + grace), in
// window-end order, with the latest value and its timestamp. Deletes are
// not emitted. Valid only on a table made by a windowed aggregation (and
// the table operations after it); a bounded buffer must use
// ShutDownWhenFull. Kafka Streams: Suppressed.untilWindowCloses.
func UntilWindowCloses(buf BufferConfig) Suppressed {
	return Suppressed{windowCloses: true, buf: buf}
}

// UntilTimeLimit holds each key's updates for limit of the suppress node's
// stream time after the first buffered one, then emits the latest (deletes
// included); a limit of 0 lets every update through at once. Kafka
// Streams: Suppressed.untilTimeLimit.
func UntilTimeLimit(limit time.Duration, buf BufferConfig) Suppressed {
	return Suppressed{limit: limit, buf: buf}
}

// WithName names the suppress node; its buffer store is then
// "<name>-store" and its changelog "<application.id>-<name>-store-changelog".
// Without a name they are generated ("KTABLE-SUPPRESS-...",
// "KTABLE-SUPPRESS-STATE-STORE-..."). Kafka Streams: Suppressed.withName.
func (s Suppressed) WithName(name string) Suppressed {
	s.name = name
	return s
}

// WithLoggingDisabled keeps the buffer without a changelog: a task that
// moves or restarts loses what it buffered. Kafka Streams:
// BufferConfig.withLoggingDisabled.
func (s Suppressed) WithLoggingDisabled() Suppressed {
	s.loggingOff, s.loggingConfig = true, nil
	return s
}

// WithLoggingEnabled logs the buffer (the default) with config overriding
// the changelog topic's configs. Kafka Streams:
// BufferConfig.withLoggingEnabled.
func (s Suppressed) WithLoggingEnabled(config map[string]string) Suppressed {
	s.loggingOff, s.loggingConfig = false, maps.Clone(config)
	return s
}

// windowClose is what a table made by a windowed aggregation carries for
// UntilWindowCloses: the end of a key's window and how long after it the
// window closes (grace; sessions: gap + grace).
type windowClose[K any] struct {
	end  func(K) int64
	wait time.Duration
}

func timeWindowClose[K any](wait time.Duration) *windowClose[window.Windowed[K]] {
	return &windowClose[window.Windowed[K]]{end: func(w window.Windowed[K]) int64 { return w.Window.End }, wait: wait}
}

// Suppress holds back the table's updates as s says (UntilWindowCloses,
// UntilTimeLimit) in a buffer that is logged to a changelog and restored
// with the task, so a restart neither loses nor repeats with a different
// value what it would emit. The result is a table like any other: a join
// reading it sees, for a key in the buffer, the value emitted before its
// buffered updates. The table's key and value serdes are required. Kafka
// Streams: KTable.suppress.
func (t Table[K, V]) Suppress(s Suppressed) Table[K, V] {
	b := t.b
	// As Kafka Streams: a given name uses up no index, a generated one
	// two (the node's and the store's).
	name, store := s.name, s.name+"-store"
	if name == "" {
		name = b.newName("KTABLE-SUPPRESS")
		store = b.newName("KTABLE-SUPPRESS-STATE-STORE")
	}
	if t.keys == nil || t.values == nil {
		b.fail(name, "suppress needs the table's key and value serdes")
	}
	if t.versioned {
		// Kafka Streams (KTableImpl.suppress): "suppress() is only
		// supported for non-versioned KTables"; versioned semantics are
		// inherited through a Filter or TableMapValues without a store.
		b.fail(name, "suppress is only supported for non-versioned tables: the table of node %s is versioned (kept in a versioned store, or computed without a store of its own from one)", t.node.Name)
	}
	if s.buf.MaxRecords < 0 || s.buf.MaxBytes < 0 {
		b.fail(name, "suppression buffer bounds must not be negative (MaxRecords %d, MaxBytes %d)", s.buf.MaxRecords, s.buf.MaxBytes)
	}
	cfg := nodes.SuppressConfig[K]{MaxRecords: s.buf.MaxRecords, MaxBytes: s.buf.MaxBytes, ShutDownWhenFull: s.buf.OnFull == ShutDownWhenFull}
	if s.windowCloses {
		switch {
		case t.closing == nil:
			b.fail(name, "UntilWindowCloses is only defined for a windowed aggregation's table (window close time is only defined for windowed computations)")
		case s.buf.bounded() && s.buf.OnFull != ShutDownWhenFull:
			b.fail(name, "UntilWindowCloses with a bounded buffer needs ShutDownWhenFull: emitting early would emit results that are not final")
		default:
			end := t.closing.end
			cfg.Wait, cfg.BufferTime = t.closing.wait.Milliseconds(), func(k K, _ int64) int64 { return end(k) }
			cfg.DropTombstones = true
		}
	} else {
		if s.limit < 0 {
			b.fail(name, "suppress time limit %v is negative", s.limit)
		}
		cfg.Wait = s.limit.Milliseconds()
	}
	b.addStore(&topology.StoreSpec{Name: store, Kind: topology.SuppressionBuffer, InMemory: true,
		DisableLogging: s.loggingOff, ChangelogConfig: s.loggingConfig, Generated: s.name == ""})
	keys, values := t.keys, t.values
	n := processor(b, name, []string{store}, func(ctx nodes.Context, next nodes.Node[K, operators.Change[V]]) (nodes.Node[K, operators.Change[V]], error) {
		return nodes.Suppress(ctx, name, store, keys, values, cfg, next)
	}, t.node)
	out := t
	out.node, out.store = n, ""
	out.view = tableView[K, V]{}
	if t.view.open != nil {
		parent := t.view
		out.view = tableView[K, V]{stores: append([]string{store}, parent.stores...), open: func(ctx nodes.Context) (nodes.ValueGetter[K, V], error) {
			g, err := parent.open(ctx)
			if err != nil {
				return nil, err
			}
			return nodes.SuppressGetter(ctx, store, keys, values, g)
		}}
	}
	return out
}
