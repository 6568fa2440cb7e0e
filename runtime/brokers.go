package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker reachability: every client of the App (the group client, the
// admin client, the changelog, standby and global readers) reports its
// connection attempts and requests to one brokerWatch through franz-go's
// hooks. A broker is down from a failed connection attempt or request
// until one succeeds; the brokers are lost when every broker the App
// has talked to is down, and an outage is declared when they have been
// lost for outageGrace: the App logs a warning naming the brokers and the
// last error, BrokersReachable reports it, and the gauge
// sluice_brokers_reachable drops to 0. The first successful connection or
// request ends it, with one log line saying how long it lasted.
//
// Nothing about an outage is fatal: franz-go keeps retrying produces
// (no delivery timeout, unlimited retries), fetches and group requests,
// and the committer skips a commit the brokers could not take (see
// commit.go), so the App resumes by itself when a broker answers again.

// outageGrace is how long every broker must have been failing before an
// outage is declared: a single dropped connection that the client
// re-establishes at once is no outage. With the client's requests in
// flight (fetches wait at most FetchMaxWait, heartbeats every 3 s) a
// broker that stops is noticed within milliseconds, so the warning comes
// about outageGrace after the brokers are gone.
const outageGrace = time.Second

// brokerWatch is the kgo hook that tracks broker reachability (see
// above). Its methods are safe for concurrent use: franz-go calls the
// hooks from its connection goroutines.
type brokerWatch struct {
	log   *slog.Logger
	gauge prometheus.Gauge
	// grace is outageGrace (shorter in tests).
	grace time.Duration

	mu sync.Mutex
	// brokers maps each broker address ("host:port") to whether its
	// latest connection attempt or request succeeded.
	brokers map[string]bool
	// answered: some broker answered once.
	answered bool
	// lostAt is when every known broker became down; zero while one is up.
	lostAt time.Time
	// outage: the outage was declared (logged) and has not ended.
	outage bool
	// since is when the reachability last changed: the outage's start
	// (lostAt) while in an outage, else the end of the last one (or the
	// first answer).
	since time.Time
	// lastErr is the latest connection or request error.
	lastErr error
	// errAddr is the broker lastErr came from.
	errAddr string
	// armed: the App started; before, the start-up's own retry logs.
	armed bool
	timer *time.Timer
}

func newBrokerWatch(log *slog.Logger, gauge prometheus.Gauge) *brokerWatch {
	return &brokerWatch{log: log, gauge: gauge, grace: outageGrace, brokers: map[string]bool{}}
}

var (
	_ kgo.HookBrokerConnect = (*brokerWatch)(nil)
	_ kgo.HookBrokerE2E     = (*brokerWatch)(nil)
)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (w *brokerWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	w.observe(brokerAddr(meta), err)
}

// OnBrokerE2E implements kgo.HookBrokerE2E: a request written and its
// response read, or failed.
func (w *brokerWatch) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	w.observe(brokerAddr(meta), e2e.Err())
}

func brokerAddr(m kgo.BrokerMetadata) string {
	return net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port)))
}

// observe records the outcome of a connection attempt or request to the
// broker at addr.
func (w *brokerWatch) observe(addr string, err error) {
	if err != nil && ownError(err) {
		return // a request this process cancelled, or a client closing
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.brokers[addr] = err == nil
	if err == nil {
		if !w.answered {
			w.answered = true
			w.since = now
			w.gauge.Set(1)
		}
		if w.outage {
			w.log.Info("brokers reachable again", "broker", addr, "outage", now.Sub(w.lostAt).Round(time.Millisecond))
			w.outage = false
			w.since = now
			w.gauge.Set(1)
		}
		w.lostAt = time.Time{}
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		return
	}
	w.lastErr, w.errAddr = err, addr
	if !w.lostAt.IsZero() || !w.allDownLocked() {
		return
	}
	w.lostAt = now
	lostAt := now
	w.timer = time.AfterFunc(w.grace, func() { w.declare(lostAt) })
}

// allDownLocked reports whether every known broker is down.
func (w *brokerWatch) allDownLocked() bool {
	for _, up := range w.brokers {
		if up {
			return false
		}
	}
	return true
}

// declare declares the outage that began at lostAt, if it goes on.
func (w *brokerWatch) declare(lostAt time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.lostAt.Equal(lostAt) || w.outage {
		return
	}
	w.outage = true
	w.since = lostAt
	w.gauge.Set(0)
	if w.armed {
		w.log.Warn("brokers unreachable: every broker failed; retrying until one answers (nothing is lost: processing resumes then)",
			"brokers", w.addrsLocked(), "for", time.Since(lostAt).Round(time.Millisecond), "last_broker", w.errAddr, "err", w.lastErr)
	}
}

func (w *brokerWatch) addrsLocked() []string {
	addrs := make([]string, 0, len(w.brokers))
	for a := range w.brokers {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	return addrs
}

// arm makes the watch log outages: the App started (the start-up logs
// its own retries, waitBrokers).
func (w *brokerWatch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = true
}

// stop stops the watch's timer: the App stopped.
func (w *brokerWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// status returns whether the brokers are reachable, since when, and the
// last error while not.
func (w *brokerWatch) status() (bool, time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !w.answered:
		return false, time.Time{}, w.lastErr
	case w.outage:
		return false, w.since, w.lastErr
	}
	return true, w.since, nil
}

// ownError reports an error of this process's own making, not the
// brokers': a request whose context ended, a client or connection closed
// here.
func ownError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, net.ErrClosed)
}

// BrokersReachable reports whether the App reaches its Kafka brokers. ok
// is false before any broker has answered (while Run starts, or retries
// at start-up), and during an outage: from the moment every broker the
// App talks to has failed (a refused or dropped connection, a request
// that failed) for a second, until one answers again. since is when ok
// last changed: the start of the outage while ok is false, else the
// first answer or the end of the last outage (zero before any answer).
// err is the last connection or request error while ok is false. An
// outage is not fatal: Run goes on retrying, and resumes processing when
// a broker answers (see the package documentation, "Broker outages").
// After Run returns it keeps reporting what it saw last. Safe to call
// from any goroutine. Kafka Streams has no such call; its
// KafkaStreams.state() stays RUNNING through an outage, as State does.
// The gauge sluice_brokers_reachable follows ok (1 or 0).
func (a *App) BrokersReachable() (ok bool, since time.Time, err error) {
	return a.watch.status()
}

// startupRetryLog is how often the start-up logs that the brokers do not
// answer yet.
const startupRetryLog = 5 * time.Second

// waitBrokers asks the brokers for their metadata until one answers, or
// until sctx (the start-up timeout) ends: a broker that is not up yet (a
// refused connection, a name that does not resolve yet, a timeout) is
// retried, with a backoff from 100 ms to 1 s, logged at most every
// startupRetryLog. An error no retry cures (authentication, a
// misconfigured client) fails at once. ctx is Run's.
func (a *App) waitBrokers(ctx, sctx context.Context, adm *kadm.Client) error {
	start := time.Now()
	var lastLog time.Time
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := adm.BrokerMetadata(sctx)
		if err == nil {
			if attempt > 1 {
				a.log.Info("brokers answered", "brokers", a.brokers, "attempts", attempt, "after", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sctx.Err() != nil || !transientBrokerErr(err) {
			if sctx.Err() != nil {
				err = fmt.Errorf("no answer within %v (StartupTimeout), %d attempts: %w", a.cfg.startupTimeout, attempt, a.lastStartupErr(err))
			}
			return &BrokerError{Brokers: a.brokers, Err: err}
		}
		if time.Since(lastLog) >= startupRetryLog {
			lastLog = time.Now()
			a.log.Warn("start-up: brokers do not answer; retrying until StartupTimeout",
				"brokers", a.brokers, "attempt", attempt, "startup_timeout", a.cfg.startupTimeout,
				"remaining", time.Until(start.Add(a.cfg.startupTimeout)).Round(time.Millisecond), "err", err)
		}
		select {
		case <-sctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// lastStartupErr returns err, or, when err is only the start-up
// timeout's context error, the broker's last error the watch saw.
func (a *App) lastStartupErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		if _, _, last := a.watch.status(); last != nil {
			return fmt.Errorf("%w (last error: %w)", err, last)
		}
	}
	return err
}

// transientBrokerErr reports an error of brokers that are not up (yet,
// or for the moment): a connection refused or dropped, a name that does
// not resolve (yet), a timeout, a retriable Kafka error (a coordinator
// moving or loading). Authentication and authorization errors, and other
// Kafka errors, are not.
func transientBrokerErr(err error) bool {
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Retriable
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*os.SyscallError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*kgo.ErrFirstReadEOF](err); ok {
		// Also what a TLS or SASL mismatch looks like: retried until the
		// timeout, whose error says so.
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
}

// retryBrokers calls fn until it returns nil or an error other than a
// transient broker error (transientBrokerErr), or until ctx ends, with a
// backoff from 100 ms to 1 s: a request the App cannot go on without,
// made while the brokers may be unreachable (an outage). Retries are
// logged every startupRetryLog, naming what.
func (a *App) retryBrokers(ctx context.Context, what string, fn func() error) error {
	return retryBrokers(ctx, a.log, what, fn)
}

func retryBrokers(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	var lastLog time.Time
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !transientBrokerErr(err) || ctx.Err() != nil {
			return err
		}
		if time.Since(lastLog) >= startupRetryLog {
			lastLog = time.Now()
			log.Warn(what+": brokers unavailable, retrying", "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
