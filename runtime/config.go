package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Option configures an App. Options are validated by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	appID          string
	brokers        []string
	clientOpts     []kgo.Opt
	stateDir       string
	commitInterval time.Duration
	workers        int
	logger         *slog.Logger
	registerer     prometheus.Registerer
	startupTimeout time.Duration
	maxPollRecords int
	skipBadRecords bool
}

func defaultConfig() config {
	return config{
		commitInterval: 30 * time.Second,
		workers:        1,
		startupTimeout: 30 * time.Second,
		maxPollRecords: 10000,
	}
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

// ClientOptions passes options through to the franz-go client, such as
// kgo.DialTLSConfig or kgo.SASL. Options that conflict with how the runtime
// drives the client (group, balancers, commits) are overridden.
func ClientOptions(opts ...kgo.Opt) Option {
	return optionFunc(func(c *config) { c.clientOpts = append(c.clientOpts, opts...) })
}

// StateDir sets the directory of local state. Kafka Streams: state.dir.
// Stores are in memory for now (restored from their changelogs when a task
// starts), so nothing is written there yet; persistent stores will keep
// their Pebble databases and offset checkpoints in it.
func StateDir(dir string) Option { return optionFunc(func(c *config) { c.stateDir = dir }) }

// CommitInterval sets how often processing progress is committed: stores
// flushed, output flushed, offsets committed. Default 30s, as Kafka
// Streams' commit.interval.ms; at least 1ms.
func CommitInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.commitInterval = d })
}

// Workers sets the number of goroutines that process tasks; default 1.
// Kafka Streams: num.stream.threads.
func Workers(n int) Option { return optionFunc(func(c *config) { c.workers = n }) }

// Logger sets the logger; the default discards.
func Logger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// Registerer registers the App's Prometheus metrics; by default they are
// not registered anywhere.
func Registerer(r prometheus.Registerer) Option {
	return optionFunc(func(c *config) { c.registerer = r })
}

// StartupTimeout bounds how long Run waits for the brokers at start-up
// before failing; default 30s.
func StartupTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.startupTimeout = d })
}

// MaxPollRecords bounds the records handed to the tasks per poll; default
// 10000. Kafka Streams: max.poll.records.
func MaxPollRecords(n int) Option { return optionFunc(func(c *config) { c.maxPollRecords = n }) }

// SkipUndecodableRecords makes tasks log, count and skip input records
// they cannot deserialize, instead of failing (Kafka Streams'
// LogAndContinueExceptionHandler; the default is to fail, as
// LogAndFailExceptionHandler).
func SkipUndecodableRecords() Option { return optionFunc(func(c *config) { c.skipBadRecords = true }) }

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
	if c.workers < 1 {
		errs = append(errs, &ConfigError{"Workers", fmt.Sprintf("%d: need at least 1", c.workers)})
	}
	if c.startupTimeout <= 0 {
		errs = append(errs, &ConfigError{"StartupTimeout", "must be positive"})
	}
	if c.maxPollRecords < 1 {
		errs = append(errs, &ConfigError{"MaxPollRecords", "need at least 1"})
	}
	return errors.Join(errs...)
}
