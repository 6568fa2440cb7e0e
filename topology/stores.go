package topology

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// StoreKind is the kind of a state store. What a kind means for the rest of
// the system (its changelog topic's configs, whether retention applies, the
// layout of its keys in the store and in the changelog, its segment
// interval) is defined here, in the kinds table, and nowhere else: the DSL,
// the runtime and the test driver ask the spec. A new kind (versioned
// key-value stores, suppression buffers) is a new constant and a new row.
type StoreKind int

const (
	// KeyValue stores map keys to values. Changelog: cleanup.policy=compact,
	// the store's keys and values as they are.
	KeyValue StoreKind = iota
	// Window stores hold values per key and time window. Changelog:
	// compact,delete with retention.ms = the store's retention plus
	// ChangelogRetentionExtra; keys are key ‖ int64 start ‖ int32 seq (the
	// seq is 0 unless the store keeps duplicates). In the store each key has
	// an 8-byte segment ID in front.
	Window
	// Session stores hold values per key and session. Changelog as Window's;
	// keys are key ‖ int64 end ‖ int64 start, behind an 8-byte segment ID in
	// the store.
	Session
	// Versioned key-value stores keep each key's latest value and its
	// history for StoreSpec.HistoryRetention, to be read as of a past time
	// (state.VersionedKeyValueStore). Changelog: cleanup.policy=compact
	// with min.compaction.lag.ms = HistoryRetention + one day; a record
	// is a version, its key the store's key, its value the value's
	// encoding alone (a tombstone for a delete) and its timestamp the
	// version's (Kafka Streams' ChangeLoggingVersionedKeyValueBytesStore).
	// The store is rebuilt by putting the records back in order; it is
	// never cached, as in Kafka Streams.
	Versioned
	// SuppressionBuffer is the buffer of a suppress node (Kafka Streams'
	// InMemoryTimeOrderedKeyValueChangeBuffer): a key-value store of the
	// buffered updates, one per key. Changelog: cleanup.policy=compact; the
	// key as it is, the value Kafka Streams' BufferValue serialization
	// followed by the 8-byte buffer time, with the header "v" = 3 (see
	// ChangelogVersion), a tombstone when the key leaves the buffer.
	SuppressionBuffer
)

// kind is the behaviour of a store kind.
type kind struct {
	name string
	// windowed kinds keep entries for StoreSpec.Retention against stream
	// time; their changelog deletes by time as well as compacting.
	windowed bool
	// segmentPrefix is the number of bytes a store key has in front of the
	// changelog key (the segment ID of segmented stores).
	segmentPrefix int
	// retentionSlack is added to StoreSpec.Retention for the store itself
	// (not its changelog).
	retentionSlack time.Duration
	// keyLayout is the changelog key layout, for errors and docs.
	keyLayout string
	// throughStore: the changelog is restored by writing its records
	// through the store of the kind (task.WrapStore), not into its base
	// as they are; implied by a segment prefix.
	throughStore bool
	// version, when not 0, is the value of the "v" header of the kind's
	// changelog records (Kafka Streams versions its buffer changelog so).
	version byte
}

var kinds = [...]kind{
	KeyValue: {name: "key-value", keyLayout: "key"},
	Window:   {name: "window", windowed: true, segmentPrefix: 8, keyLayout: "key ‖ int64 start ‖ int32 seq"},
	// One millisecond more than the spec: a session is accepted while its
	// end is not before the close time (stream time - gap - grace), and a
	// store with retention gap + grace would already count a session ending
	// exactly there as expired.
	Session:           {name: "session", windowed: true, segmentPrefix: 8, retentionSlack: time.Millisecond, keyLayout: "key ‖ int64 end ‖ int64 start"},
	Versioned:         {name: "versioned", keyLayout: "key", throughStore: true},
	SuppressionBuffer: {name: "suppression-buffer", keyLayout: "key", version: 3},
}

func (k StoreKind) info() kind {
	if k < 0 || int(k) >= len(kinds) {
		return kind{name: fmt.Sprintf("StoreKind(%d)", int(k))}
	}
	return kinds[k]
}

// String implements fmt.Stringer: "key-value", "window", "session",
// "versioned", "suppression-buffer".
func (k StoreKind) String() string { return k.info().name }

// Windowed reports whether stores of the kind keep entries for a retention
// period against stream time (window and session stores).
func (k StoreKind) Windowed() bool { return k.info().windowed }

// SegmentPrefixLen is the number of bytes in front of a changelog key in
// the store's own keys: the 8-byte segment ID of window and session
// stores, 0 for key-value stores. A changelog logger below the store skips
// them.
func (k StoreKind) SegmentPrefixLen() int { return k.info().segmentPrefix }

// RestoresThroughStore reports whether the kind's changelog is restored by
// writing its records through a store of the kind made on the base
// (window, session and versioned stores) rather than into the base as
// they are (key-value stores): the store then reads what it wrote during
// the restore.
func (k StoreKind) RestoresThroughStore() bool {
	i := k.info()
	return i.throughStore || i.segmentPrefix > 0
}

// ChangelogVersion is the value of the one-byte header "v" the kind's
// changelog records carry (ok false: they carry none): 3 for suppression
// buffers, the version of Kafka Streams' buffer changelog format.
func (k StoreKind) ChangelogVersion() (v byte, ok bool) {
	v = k.info().version
	return v, v != 0
}

// ChangelogKeyLayout describes the keys of the kind's changelog records.
func (k StoreKind) ChangelogKeyLayout() string { return k.info().keyLayout }

// StoreSpec describes a state store of the topology. The zero value of
// each option is the default of Kafka Streams: logged, cached, persistent.
type StoreSpec struct {
	Name string
	Kind StoreKind
	// InMemory keeps the store in memory instead of Pebble; it is still
	// restored from its changelog.
	InMemory bool
	// DisableLogging turns the changelog topic off (Kafka Streams:
	// withLoggingDisabled): the store does not survive the task moving.
	DisableLogging bool
	// DisableCaching turns the record cache off (withCachingDisabled):
	// every update is forwarded and logged.
	DisableCaching bool
	// ChangelogConfig overrides topic configs of the changelog topic.
	ChangelogConfig map[string]string
	// Timestamped stores keep each value's timestamp with it: an 8-byte
	// big-endian timestamp before the value's encoding, as Kafka Streams'
	// timestamped stores (the DSL's aggregations, tables and windows use them;
	// session stores are not, in Kafka Streams neither). In
	// the changelog the timestamp is the record's timestamp and the value
	// is the encoding alone.
	Timestamped bool
	// RetainDuplicates makes a window store keep every value put for a key
	// and window, each under its own sequence number, as the stores of
	// Kafka Streams' stream-stream joins do. Window stores only.
	RetainDuplicates bool
	// Generated reports that the name was generated, not given by the user.
	Generated bool
	// Retention is how long window and session stores keep a window after
	// its start (sessions: after their end), against stream time.
	Retention time.Duration
	// SegmentInterval is the width of a window or session store's segments;
	// zero means Kafka Streams' default, max(Retention/2, 1 minute).
	SegmentInterval time.Duration
	// HistoryRetention is how long a versioned store keeps the versions
	// of a key older than its latest, against the store's observed stream
	// time; it is also how late a write may come (Kafka Streams: the
	// historyRetention of Stores.persistentVersionedKeyValueStore).
	// Versioned stores only.
	HistoryRetention time.Duration
	// Serdes are the serdes of the store's keys and values, for
	// interactive queries (the runtime's typed views and HTTP); nil when
	// unknown (a store of the Processor API, an internal store). The DSL
	// sets them on the stores of its aggregations and tables.
	Serdes StoreSerdes
	// WindowSize is the size of the windows a window store holds (a
	// window's end is its start plus the size), for interactive queries;
	// zero when unknown. Window stores of windowed aggregations only.
	WindowSize time.Duration
}

// VersionedChangelogCompactionLagExtra is what a versioned store's
// changelog adds to the history retention for min.compaction.lag.ms, so
// that compaction does not remove versions the store still keeps while
// event time follows wall-clock time (the broker measures the lag against
// record timestamps): Kafka Streams'
// VERSIONED_STORE_CHANGE_LOG_ADDITIONAL_COMPACTION_LAG_MS, one day.
const VersionedChangelogCompactionLagExtra = 24 * time.Hour

// ChangelogRetentionExtra is what a windowed changelog keeps beyond the
// store's retention: Kafka Streams'
// windowstore.changelog.additional.retention.ms default, one day.
const ChangelogRetentionExtra = 24 * time.Hour

// minSegmentInterval is Kafka Streams' lower bound of the default segment
// interval.
const minSegmentInterval = time.Minute

// ChangelogTopic is the name of the store's changelog topic, before the
// application ID prefix: "<store>-changelog".
func (s *StoreSpec) ChangelogTopic() string { return s.Name + "-changelog" }

// StoreRetention is the retention the store itself applies: Retention,
// plus the slack its kind needs (a session store keeps a session 1 ms
// longer, see Session). Zero for key-value stores.
func (s *StoreSpec) StoreRetention() time.Duration {
	k := s.Kind.info()
	if !k.windowed {
		return 0
	}
	return s.Retention + k.retentionSlack
}

// EffectiveSegmentInterval is SegmentInterval, or Kafka Streams' default
// for a zero one: max(Retention/2, 1 minute), from the spec's Retention.
// Zero for key-value stores.
func (s *StoreSpec) EffectiveSegmentInterval() time.Duration {
	if !s.Kind.Windowed() {
		return 0
	}
	if s.SegmentInterval != 0 {
		return s.SegmentInterval
	}
	return max(s.Retention/2, minSegmentInterval)
}

// ChangelogTopicConfig returns the configs the store's changelog topic is
// created with: Kafka Streams' for the kind (key-value: compact; window
// and session: compact,delete with retention.ms = Retention +
// ChangelogRetentionExtra; versioned: compact with min.compaction.lag.ms =
// HistoryRetention + VersionedChangelogCompactionLagExtra unless
// ChangelogConfig sets it), then ChangelogConfig's overrides.
func (s *StoreSpec) ChangelogTopicConfig() map[string]string {
	cfg := ChangelogTopicConfig()
	if s.Kind.Windowed() {
		cfg["cleanup.policy"] = "compact,delete"
		cfg["retention.ms"] = strconv.FormatInt((s.Retention + ChangelogRetentionExtra).Milliseconds(), 10)
	}
	if s.Kind == Versioned {
		// A time.Duration in ms is far from overflowing int64 when a day
		// is added (Kafka Streams caps the sum at Long.MAX_VALUE).
		lag := (s.HistoryRetention + VersionedChangelogCompactionLagExtra).Milliseconds()
		if s.HistoryRetention > math.MaxInt64-VersionedChangelogCompactionLagExtra {
			lag = math.MaxInt64 / int64(time.Millisecond)
		}
		cfg["min.compaction.lag.ms"] = strconv.FormatInt(lag, 10)
	}
	for k, v := range s.ChangelogConfig {
		cfg[k] = v
	}
	return cfg
}

// ChangelogTopicConfig returns the configs Kafka Streams creates key-value
// changelog topics with.
func ChangelogTopicConfig() map[string]string {
	return map[string]string{
		"cleanup.policy":         "compact",
		"message.timestamp.type": "CreateTime",
	}
}
