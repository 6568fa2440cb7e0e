package runtime

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/operators"
)

// Option configures an App. Options are validated by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	appID          string
	brokers        []string
	clientOpts     []kgo.Opt
	tls            *tls.Config
	tlsNil         bool
	sasl           []*saslCreds
	stateDir       string
	commitInterval time.Duration
	workers        int
	logger         *slog.Logger
	registerer     prometheus.Registerer
	httpAddr       string
	advertisedAddr string
	onStateChange  func(newState, oldState State)
	startupTimeout time.Duration
	maxPollRecords int
	skipBadRecords bool
	onDeserialize  operators.ErrorHandler
	onProcess      operators.ErrorHandler
	onProduce      operators.ErrorHandler
	deadLetter     string
	cacheBytes     int64
	// changelogBuffer is ChangelogBufferBytes.
	changelogBuffer int
	blockCache      int64
	memTableBytes   int64
	cleanupDelay    time.Duration
	metricsLevel    MetricsLevel
	shutdownTime    time.Duration

	guarantee         Guarantee
	commitIntervalSet bool
	instanceID        string
	sessionTimeout    time.Duration
	txnTimeout        time.Duration
	standbys          int
	acceptableLag     int64
	maxWarmups        int
	probingInterval   time.Duration
}

func defaultConfig() config {
	return config{
		commitInterval:  30 * time.Second,
		workers:         1,
		startupTimeout:  30 * time.Second,
		maxPollRecords:  50000,
		cacheBytes:      10 << 20,
		changelogBuffer: 1 << 20,
		blockCache:      64 << 20,
		memTableBytes:   1 << 20,
		cleanupDelay:    10 * time.Minute,
		shutdownTime:    30 * time.Second,
		sessionTimeout:  45 * time.Second,
		txnTimeout:      10 * time.Second,
		acceptableLag:   10000,
		maxWarmups:      2,
		probingInterval: 10 * time.Minute,
	}
}

// Guarantee is a processing guarantee: what a failure may do to the output.
type Guarantee int

const (
	// AtLeastOnce (the default): after a failure, input processed since
	// the last commit is processed again, so its output and state updates
	// may be written twice; nothing is lost. Kafka Streams: at_least_once.
	AtLeastOnce Guarantee = iota
	// ExactlyOnce: each commit writes the output, changelog and
	// repartition records and the input offsets in one Kafka transaction,
	// so a read_committed consumer sees the effect of every input record
	// exactly once, whatever fails. Kafka Streams: exactly_once_v2.
	ExactlyOnce
)

// String is the guarantee's name as Kafka Streams' processing.guarantee
// spells it.
func (g Guarantee) String() string {
	switch g {
	case AtLeastOnce:
		return "at_least_once"
	case ExactlyOnce:
		return "exactly_once_v2"
	}
	return fmt.Sprintf("Guarantee(%d)", int(g))
}

// ProcessingGuarantee sets the processing guarantee; default AtLeastOnce.
// Under ExactlyOnce the commit interval defaults to 100ms, as in Kafka
// Streams. Kafka Streams: processing.guarantee.
func ProcessingGuarantee(g Guarantee) Option {
	return optionFunc(func(c *config) { c.guarantee = g })
}

// InstanceID makes the instance a static member of the group (Kafka's
// group.instance.id): restarted with the same ID within the session
// timeout, it gets its tasks back at once, without a rebalance. Each
// instance of the application needs its own ID; a second instance started
// with an ID in use fences the first, which stops with a FencedError.
// Kafka Streams: group.instance.id.
func InstanceID(id string) Option { return optionFunc(func(c *config) { c.instanceID = id }) }

// SessionTimeout sets how long the group waits for a silent instance
// before moving its tasks to the others; default 45s. Shorter fails over
// faster after a crash, at the risk of moving tasks during a long pause
// (a garbage collection, a slow disk). Kafka Streams: session.timeout.ms.
func SessionTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.sessionTimeout = d })
}

// TransactionTimeout bounds, under ExactlyOnce, how long a transaction may
// stay open: the broker aborts a crashed instance's open transaction after
// it, and read_committed consumers of the partitions it wrote wait until
// then. Default 10s, as Kafka Streams. Kafka Streams: the producer's
// transaction.timeout.ms.
func TransactionTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.txnTimeout = d })
}

// NumStandbyReplicas sets how many standby replicas each stateful task
// has: copies of its stores on other instances, kept current by reading
// its changelogs, so that when the task moves (its instance failed) the
// new owner restores only what the standby had not read yet. Default 0.
// Kafka Streams: num.standby.replicas.
func NumStandbyReplicas(n int) Option { return optionFunc(func(c *config) { c.standbys = n }) }

// AcceptableRecoveryLag is the number of changelog records an instance's
// copy of a task's state may lag behind and still be given the task as
// active: a task is not moved to an instance further behind while another
// is caught up; the instance gets a warm-up replica instead. Default
// 10000. Kafka Streams: acceptable.recovery.lag.
func AcceptableRecoveryLag(n int64) Option {
	return optionFunc(func(c *config) { c.acceptableLag = n })
}

// MaxWarmupReplicas bounds the warm-up replicas (standbys that exist only
// to catch a copy up before a task moves to it) assigned at a time;
// default 2. Kafka Streams: max.warmup.replicas.
func MaxWarmupReplicas(n int) Option { return optionFunc(func(c *config) { c.maxWarmups = n }) }

// ProbingRebalanceInterval sets how often, while warm-up replicas exist,
// the group rebalances to check whether they caught up and their tasks
// can move; default 10 minutes. Kafka Streams:
// probing.rebalance.interval.ms.
func ProbingRebalanceInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.probingInterval = d })
}

// ApplicationID sets the application ID: the consumer group, and the prefix
// of internal topic names. Required. Kafka Streams: application.id.
func ApplicationID(id string) Option { return optionFunc(func(c *config) { c.appID = id }) }

// Brokers sets the seed brokers; required. For a broker in the same
// process, start one with connectors.StartEmbedded and pass its Brokers.
// Kafka Streams: bootstrap.servers.
func Brokers(addrs ...string) Option {
	return optionFunc(func(c *config) { c.brokers = append(c.brokers, addrs...) })
}

// ClientOptions passes options through to the franz-go clients of the App
// (all of them: the group's, the admin's, the restore, standby and global
// readers'). Options that conflict with how the runtime drives the client
// (group, balancers, commits) are overridden, and so are TLS and SASL when
// the TLS and SASL options are given: prefer those, which New validates
// and which keep the password out of logs and errors.
func ClientOptions(opts ...kgo.Opt) Option {
	return optionFunc(func(c *config) { c.clientOpts = append(c.clientOpts, opts...) })
}

// StateDir sets the directory of local state; the App keeps its tasks'
// Pebble databases and checkpoint files in <dir>/<application ID>, which
// one instance at a time may use (the App locks it). The default is
// "sluice" in os.TempDir(). Kafka Streams: state.dir.
func StateDir(dir string) Option { return optionFunc(func(c *config) { c.stateDir = dir }) }

// CacheMaxBytes sets the memory of the record caches in front of the
// stores, shared out among the tasks when they are created: a cache holds
// each key's latest update until the commit (or until it is full), so
// downstream and the changelog see one update per key per commit interval.
// Default 10 MiB; 0 turns caching off, so every update is forwarded at
// once (and logged per key and commit, or at once with
// ChangelogBufferBytes(0)). Kafka Streams: statestore.cache.max.bytes.
func CacheMaxBytes(n int64) Option { return optionFunc(func(c *config) { c.cacheBytes = n }) }

// ChangelogBufferBytes sets how much each store without a record cache
// (CacheMaxBytes(0), DisableCaching, a processor's store) keeps of its
// latest writes per key until the commit, per task: it then logs each
// key's latest write once instead of every write (downstream still sees
// every update). Default 1 MiB; 0 logs every write at once, as Kafka
// Streams does. See docs/state.md, Changelogs.
func ChangelogBufferBytes(n int) Option {
	return optionFunc(func(c *config) { c.changelogBuffer = n })
}

// BlockCacheBytes sets the size of the Pebble block cache shared by all the
// instance's stores; default 64 MiB. With the memtables (MemTableBytes, two
// per task), it bounds the memory of persistent state.
func BlockCacheBytes(n int64) Option { return optionFunc(func(c *config) { c.blockCache = n }) }

// MemTableBytes sets the size of a Pebble memtable of a task's database;
// each task has up to two. Default 1 MiB.
func MemTableBytes(n int64) Option { return optionFunc(func(c *config) { c.memTableBytes = n }) }

// StateCleanupDelay sets how long the local state of a task that moved to
// another instance is kept before it is deleted (it is reused if the task
// comes back meanwhile); default 10 minutes. Kafka Streams:
// state.cleanup.delay.ms.
func StateCleanupDelay(d time.Duration) Option {
	return optionFunc(func(c *config) { c.cleanupDelay = d })
}

// CommitInterval sets how often processing progress is committed: stores
// flushed, output flushed, offsets committed. Default 30s (100ms under
// ExactlyOnce), as Kafka Streams' commit.interval.ms; at least 1ms.
func CommitInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.commitInterval, c.commitIntervalSet = d, true })
}

// ShutdownTimeout bounds a graceful shutdown: from the cancellation of
// Run's context (or Close) to Run's return. Within it Run commits what was
// processed, closes the tasks and leaves the group; a rebalance or a
// restore in progress is abandoned (a restore resumes from the task's
// checkpoint at the next start). What is still unfinished shortly before
// it expires (the commit, or the client's leave, which waits for a
// rebalance in progress) is abandoned; the App then leaves the group with
// a request of its own, so the group need not wait for its session to
// time out, and input processed since the last successful commit is
// processed again (at-least-once). Default 30s, Kubernetes' default grace
// period. Kafka Streams: the timeout of KafkaStreams.close(Duration).
func ShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.shutdownTime = d })
}

// Workers sets the number of goroutines that process tasks; default 1.
// Kafka Streams: num.stream.threads.
func Workers(n int) Option { return optionFunc(func(c *config) { c.workers = n }) }

// Logger sets the logger; the default discards.
func Logger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// Registerer registers the App's Prometheus metrics, and the Kafka client
// metrics of its clients (franz-go's kprom), with r. If r is also a
// prometheus.Gatherer (a *prometheus.Registry, prometheus.DefaultRegisterer),
// the HTTP server's /metrics serves r, with whatever else it holds;
// otherwise the App keeps a registry of its own that holds the same
// metrics (and the Go and process collectors) and serves that. Without
// this option the metrics go to the App's own registry alone, with the Go
// and process collectors. New fails if a metric clashes with one in r.
func Registerer(r prometheus.Registerer) Option {
	return optionFunc(func(c *config) { c.registerer = r })
}

// HTTPAddr serves the App's HTTP endpoints (runtime/http.go: /metrics,
// /healthz, /readyz, /topology, interactive queries, the web page) on addr,
// e.g. "127.0.0.1:8080"; ":0" picks a free port (App.HTTPURL names it).
// Off by default ("" is off). The listener opens in New: an address that
// cannot be bound fails New with a *ConfigError naming runtime.HTTPAddr.
// Requests are served while Run runs. The address is also what this
// instance advertises to the group for interactive queries (Kafka
// Streams: application.server).
func HTTPAddr(addr string) Option { return optionFunc(func(c *config) { c.httpAddr = addr }) }

// AdvertisedAddr sets the "host:port" this instance advertises to the
// group for interactive queries: the address at which the other
// instances reach its HTTP server (Kafka Streams: application.server).
// Default: the HTTPAddr listener's address, with an unspecified IP (":8080",
// "0.0.0.0:8080") replaced by os.Hostname(). Without HTTPAddr and
// AdvertisedAddr the instance advertises nothing: other instances cannot
// forward queries to it, and KeyQueryMetadata names no host for its
// tasks.
func AdvertisedAddr(hostport string) Option {
	return optionFunc(func(c *config) { c.advertisedAddr = hostport })
}

// OnStateChange calls fn on each change of the App's State, with the new
// and the old state (Kafka Streams: KafkaStreams.setStateListener), in the
// order of the changes. fn runs on the goroutine that changed the state (the
// poll loop, a group callback, Run), possibly while the App holds its
// internal locks: it must return quickly, and must call no method of the
// App but State and HTTPURL (hand other work to a goroutine of its own).
// The HTTP server still answers while fn runs, up to NotRunning or Error.
func OnStateChange(fn func(newState, oldState State)) Option {
	return optionFunc(func(c *config) { c.onStateChange = fn })
}

// StartupTimeout bounds how long Run waits for the brokers at start-up
// before failing; default 30s.
func StartupTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.startupTimeout = d })
}

// MaxPollRecords bounds the records handed to the tasks per poll; default
// 50000. Each poll is one round of work for the workers, so larger polls
// spread the round's fixed cost (measured: the stateless benchmark went
// from 0.82-0.92 of the raw franz-go loop at 10000 to 0.92-1.02 at 50000);
// the records are in memory already, fetched by the client. Kafka Streams:
// max.poll.records.
func MaxPollRecords(n int) Option { return optionFunc(func(c *config) { c.maxPollRecords = n }) }

// SkipUndecodableRecords makes tasks log, count and skip input records
// they cannot deserialize, instead of failing (Kafka Streams'
// LogAndContinueExceptionHandler; the default is to fail, as
// LogAndFailExceptionHandler).
func SkipUndecodableRecords() Option { return optionFunc(func(c *config) { c.skipBadRecords = true }) }

// OnDeserializationError sets the handler of input records a source cannot
// deserialize; default operators.LogAndFail. Kafka Streams:
// deserialization.exception.handler.
func OnDeserializationError(h operators.ErrorHandler) Option {
	return optionFunc(func(c *config) { c.onDeserialize = h })
}

// OnProcessingError sets the handler of errors and panics of user code (a
// node's function, processor or punctuator); default operators.LogAndFail.
// Kafka Streams: processing.exception.handler.
func OnProcessingError(h operators.ErrorHandler) Option {
	return optionFunc(func(c *config) { c.onProcess = h })
}

// OnProductionError sets the handler of records a sink cannot serialize or
// Kafka refuses to write (too large, invalid); default
// operators.LogAndFail. Kafka Streams: production.exception.handler.
func OnProductionError(h operators.ErrorHandler) Option {
	return optionFunc(func(c *config) { c.onProduce = h })
}

// DeadLetterQueue names the topic that handlers returning
// operators.DeadLetter write failed input records to, with Kafka Streams'
// error headers (operators.DeadLetterHeaders). The topic must exist. Kafka
// Streams: errors.dead.letter.queue.topic.name.
func DeadLetterQueue(topic string) Option {
	return optionFunc(func(c *config) { c.deadLetter = topic })
}

// ConfigError is an invalid option; Key names the option.
type ConfigError struct {
	Key string
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return fmt.Sprintf("sluice: config %s: %s", e.Key, e.Msg) }

func (c *config) validate() error {
	var errs []error
	if c.appID == "" {
		errs = append(errs, &ConfigError{"ApplicationID", "required"})
	}
	if len(c.brokers) == 0 {
		errs = append(errs, &ConfigError{"Brokers", "no brokers configured (for an in-process broker, start connectors.StartEmbedded and pass its Brokers)"})
	}
	if c.commitInterval < time.Millisecond {
		errs = append(errs, &ConfigError{"CommitInterval", fmt.Sprintf("%v is below 1ms", c.commitInterval)})
	}
	if c.advertisedAddr != "" {
		if host, port, err := net.SplitHostPort(c.advertisedAddr); err != nil || host == "" || port == "" || len(c.advertisedAddr) > maxHostLen {
			errs = append(errs, &ConfigError{"AdvertisedAddr", fmt.Sprintf("%q is not a host:port", c.advertisedAddr)})
		}
	}
	if c.workers < 1 {
		errs = append(errs, &ConfigError{"Workers", fmt.Sprintf("%d: need at least 1", c.workers)})
	}
	if c.startupTimeout <= 0 {
		errs = append(errs, &ConfigError{"StartupTimeout", "must be positive"})
	}
	if c.shutdownTime <= 0 {
		errs = append(errs, &ConfigError{"ShutdownTimeout", "must be positive"})
	}
	if c.changelogBuffer < 0 {
		errs = append(errs, &ConfigError{"ChangelogBufferBytes", fmt.Sprintf("%d is negative", c.changelogBuffer)})
	}
	if c.cacheBytes < 0 {
		errs = append(errs, &ConfigError{"CacheMaxBytes", fmt.Sprintf("%d is negative", c.cacheBytes)})
	}
	if c.blockCache < 1<<20 {
		errs = append(errs, &ConfigError{"BlockCacheBytes", fmt.Sprintf("%d is below 1 MiB", c.blockCache)})
	}
	if c.memTableBytes < 64<<10 {
		errs = append(errs, &ConfigError{"MemTableBytes", fmt.Sprintf("%d is below 64 KiB", c.memTableBytes)})
	}
	if c.cleanupDelay < 0 {
		errs = append(errs, &ConfigError{"StateCleanupDelay", "must not be negative"})
	}
	if c.guarantee != AtLeastOnce && c.guarantee != ExactlyOnce {
		errs = append(errs, &ConfigError{"ProcessingGuarantee", fmt.Sprintf("%v: want AtLeastOnce or ExactlyOnce", c.guarantee)})
	}
	if c.sessionTimeout < time.Second {
		errs = append(errs, &ConfigError{"SessionTimeout", fmt.Sprintf("%v is below 1s", c.sessionTimeout)})
	}
	if c.txnTimeout < time.Second {
		errs = append(errs, &ConfigError{"TransactionTimeout", fmt.Sprintf("%v is below 1s", c.txnTimeout)})
	}
	if c.standbys < 0 {
		errs = append(errs, &ConfigError{"NumStandbyReplicas", fmt.Sprintf("%d is negative", c.standbys)})
	}
	if c.acceptableLag < 0 {
		errs = append(errs, &ConfigError{"AcceptableRecoveryLag", fmt.Sprintf("%d is negative", c.acceptableLag)})
	}
	if c.maxWarmups < 1 {
		errs = append(errs, &ConfigError{"MaxWarmupReplicas", fmt.Sprintf("%d: need at least 1", c.maxWarmups)})
	}
	if c.probingInterval < time.Second {
		errs = append(errs, &ConfigError{"ProbingRebalanceInterval", fmt.Sprintf("%v is below 1s", c.probingInterval)})
	}
	for _, h := range []struct {
		key string
		h   *operators.ErrorHandler
	}{{"OnDeserializationError", &c.onDeserialize}, {"OnProcessingError", &c.onProcess}, {"OnProductionError", &c.onProduce}} {
		if *h.h == nil {
			*h.h = operators.LogAndFail
		}
	}
	if c.skipBadRecords {
		c.onDeserialize = operators.LogAndContinue
	}
	errs = append(errs, c.validateSecurity()...)
	if c.maxPollRecords < 1 {
		errs = append(errs, &ConfigError{"MaxPollRecords", "need at least 1"})
	}
	if len(errs) == 0 && c.guarantee == ExactlyOnce && !c.commitIntervalSet {
		c.commitInterval = 100 * time.Millisecond
	}
	if len(errs) == 0 && c.guarantee == ExactlyOnce && c.commitInterval >= c.txnTimeout {
		// Each transaction would time out before its commit (Kafka
		// Streams refuses it too).
		errs = append(errs, &ConfigError{"CommitInterval", fmt.Sprintf("%v under ExactlyOnce must be below TransactionTimeout (%v)", c.commitInterval, c.txnTimeout)})
	}
	return errors.Join(errs...)
}
