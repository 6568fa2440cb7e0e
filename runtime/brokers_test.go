package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
)

// lines is a slog handler keeping the messages logged.
type lines struct {
	mu  sync.Mutex
	msg []string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msg = append(l.msg, string(p))
	return len(p), nil
}

func (l *lines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msg {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newTestWatch() (*brokerWatch, *lines, prometheus.Gauge) {
	out := &lines{}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	w := newBrokerWatch(slog.New(slog.NewTextHandler(out, nil)), g)
	w.grace = 20 * time.Millisecond
	w.arm()
	return w, out, g
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}

// pending reports whether an outage is pending its grace period.
func (w *brokerWatch) pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.lostAt.IsZero()
}

var refused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// Every broker failing for the grace period is an outage, logged once and
// reported until the first answer, which is logged once too.
func TestBrokerWatchOutage(t *testing.T) {
	w, out, g := newTestWatch()
	if ok, _, _ := w.status(); ok {
		t.Fatal("reachable before any answer")
	}
	w.observe("b1:9092", nil)
	w.observe("b2:9092", nil)
	ok, since, err := w.status()
	if !ok || since.IsZero() || err != nil || gaugeValue(g) != 1 {
		t.Fatalf("after answers: %v %v %v gauge %v", ok, since, err, gaugeValue(g))
	}
	// One broker of two down: no outage.
	w.observe("b1:9092", io.EOF)
	if ok, _, _ := w.status(); !ok || w.pending() {
		t.Fatal("an outage declared with one broker of two up")
	}
	lost := time.Now()
	w.observe("b2:9092", refused)
	waitCond(t, "outage declared", func() bool { ok, _, _ := w.status(); return !ok })
	ok, since, err = w.status()
	if ok || since.Before(lost) || !errors.Is(err, syscall.ECONNREFUSED) || gaugeValue(g) != 0 {
		t.Fatalf("during the outage: %v %v %v gauge %v", ok, since, err, gaugeValue(g))
	}
	w.observe("b2:9092", refused) // more failures: still one warning
	if n := out.count("brokers unreachable"); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
	w.observe("b1:9092", nil)
	w.observe("b2:9092", nil)
	if ok, _, err := w.status(); !ok || err != nil || gaugeValue(g) != 1 || out.count("brokers reachable again") != 1 {
		t.Fatalf("after the outage: %v %v gauge %v, %d recovery logs", ok, err, gaugeValue(g), out.count("brokers reachable again"))
	}
}

// A failure followed by an answer within the grace period is no outage;
// requests this process cancelled are not failures.
func TestBrokerWatchBlip(t *testing.T) {
	w, _, _ := newTestWatch()
	w.grace = time.Hour
	w.observe("b1:9092", nil)
	w.observe("b1:9092", io.EOF)
	if !w.pending() {
		t.Fatal("a failure of the only broker is not pending")
	}
	w.observe("b1:9092", nil)
	if w.pending() {
		t.Fatal("an answer within the grace period did not end the pending outage")
	}
	w.observe("b1:9092", net.ErrClosed)
	w.observe("b1:9092", context.Canceled)
	if ok, _, _ := w.status(); !ok || w.pending() {
		t.Fatal("a closed connection or a cancelled request was taken for a broker failure")
	}
}

func TestTransientBrokerErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{&net.DNSError{Err: "no such host", Name: "kafka", IsNotFound: true}, true},
		{io.EOF, true},
		{kerr.CoordinatorNotAvailable, true},
		{kerr.NotCoordinator, true},
		{kerr.SaslAuthenticationFailed, false},
		{kerr.TopicAuthorizationFailed, false},
		{errors.New("other"), false},
	} {
		if got := transientBrokerErr(c.err); got != c.want {
			t.Errorf("transientBrokerErr(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
