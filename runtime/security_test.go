package runtime_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/runtime"
)

// Invalid security options are ConfigErrors naming the option, and none
// holds the password.
func TestSecurityConfigErrors(t *testing.T) {
	const pw = "s3cret-pw-0815"
	topo := wordCount(t, "in", "out")
	for _, tc := range []struct {
		name string
		opts []runtime.Option
		key  string
	}{
		{"empty user", []runtime.Option{runtime.SASLPlain("", pw)}, "SASLPlain"},
		{"empty password", []runtime.Option{runtime.SASLScram512("alice", "")}, "SASLScram512"},
		{"two mechanisms", []runtime.Option{runtime.SASLPlain("alice", pw), runtime.SASLScram256("alice", pw)}, "SASLScram256"},
		{"nil TLS config", []runtime.Option{runtime.TLS(nil)}, "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]runtime.Option{runtime.ApplicationID("app"), runtime.Brokers("127.0.0.1:1")}, tc.opts...)
			_, err := runtime.New(topo, opts...)
			var ce *runtime.ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("New = %v, want a ConfigError for %s", err, tc.key)
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err)} {
				if strings.Contains(s, pw) {
					t.Errorf("the error holds the password: %s", s)
				}
			}
		})
	}
}

// syncBuffer is a log destination for a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// On an embedded broker that requires SASL (SCRAM-SHA-256): the App
// authenticates every client it makes with the SASL option and counts
// exactly; with a wrong password (and the right one in ClientOptions,
// which the SASL option overrides) Run fails at start-up. Neither the logs (debug level, text and JSON)
// nor the errors hold a password.
func TestSASLOnEmbeddedBroker(t *testing.T) {
	const user, pw, wrong = "alice", "s3cret-pw-4242", "wr0ng-pw-1717"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", user, pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &testCluster{brokers: kc.ListenAddrs(), opts: []kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha256Mechanism())}}
	input, output := topic(t, "lines"), topic(t, "counts")
	c.createTopics(t, 2, input, output)
	want := map[string]int64{}
	c.produce(t, input, lines(0, 200, 23, want)...)

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jlogger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	appID := topic(t, "app")
	in := start(t, wordCount(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.SASLScram256(user, pw), runtime.CommitInterval(100*time.Millisecond), runtime.Logger(logger))
	got, _ := c.counts(t, output, time.Minute, equalCounts(want))
	if d := diffCounts(got, want); d != "" {
		t.Fatalf("counts differ: %s", d)
	}
	in.stop(t)
	// A new instance with an empty state directory (start gives each
	// its own) restores the counts from the changelog with a client of
	// the restore reader's own, which must authenticate too.
	c.produce(t, input, lines(200, 100, 23, want)...)
	var logs2 syncBuffer
	in = start(t, wordCount(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(c.brokers...),
		runtime.SASLScram256(user, pw), runtime.CommitInterval(100*time.Millisecond),
		runtime.Logger(slog.New(slog.NewTextHandler(&logs2, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	got, _ = c.counts(t, output, time.Minute, equalCounts(want))
	if d := diffCounts(got, want); d != "" {
		t.Fatalf("after a restore: counts differ: %s", d)
	}
	in.stop(t)
	if !strings.Contains(logs2.String(), "restoring store") {
		t.Error("the second instance restored no store")
	}
	if !strings.Contains(logs.String(), "sasl.password=[redacted]") {
		t.Errorf("the start-up log does not show the redacted password:\n%.2000s", logs.String())
	}

	bad := start(t, wordCount(t, input, output), runtime.ApplicationID(topic(t, "bad")), runtime.Brokers(c.brokers...),
		runtime.SASLScram256(user, wrong), runtime.StartupTimeout(5*time.Second), runtime.Logger(jlogger),
		// ClientOptions do not undo the SASL option.
		runtime.ClientOptions(kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha256Mechanism())))
	select {
	case err = <-bad.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run with a wrong password did not fail within 30 s")
	}
	// kfake closes the connection on a failed SCRAM exchange (the error
	// is an EOF); Kafka answers SASL_AUTHENTICATION_FAILED, which the
	// secure suite checks (security_kafka_test.go).
	var be *runtime.BrokerError
	if !errors.As(err, &be) {
		t.Errorf("Run with a wrong password = %v, want a *BrokerError", err)
	}
	for what, s := range map[string]string{"logs": logs.String() + logs2.String(), "error": fmt.Sprintf("%v %+v", err, err)} {
		for _, p := range []string{pw, wrong} {
			if strings.Contains(s, p) {
				t.Errorf("the %s hold a password", what)
			}
		}
	}
}

// The TLS option reaches every client: against an embedded broker that
// speaks only TLS, an App without it cannot start, with it counts
// exactly (security_kafka_test.go does the same against Kafka).
func TestTLSOptionOnEmbeddedBroker(t *testing.T) {
	serverCfg, clientCfg := testTLSConfigs(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverCfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &testCluster{brokers: kc.ListenAddrs(), opts: []kgo.Opt{kgo.DialTLSConfig(clientCfg.Clone())}}
	input, output := topic(t, "lines"), topic(t, "counts")
	c.createTopics(t, 2, input, output)
	want := map[string]int64{}
	c.produce(t, input, lines(0, 100, 13, want)...)
	in := start(t, wordCount(t, input, output), runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.TLS(clientCfg), runtime.CommitInterval(100*time.Millisecond))
	got, _ := c.counts(t, output, time.Minute, equalCounts(want))
	if d := diffCounts(got, want); d != "" {
		t.Fatalf("counts differ: %s", d)
	}
	in.stop(t)
}

// createTopics creates topics with the cluster's client options
// (connectors.CreateTopicsWith).
func (c *testCluster) createTopics(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.opts...)
	if err := connectors.CreateTopicsWith(ctx, opts, partitions, topics...); err != nil {
		t.Fatal(err)
	}
}

// testTLSConfigs are a server's TLS config with a certificate for
// 127.0.0.1 signed by a CA made here, and a client's that trusts the CA.
func testTLSConfigs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	return server, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// The global reader authenticates too: on an embedded broker that
// requires SASL, a global table is read whole at start-up and its live
// updates afterwards reach the join.
func TestSASLGlobalTable(t *testing.T) {
	const user, pw = "alice", "s3cret-pw-9090"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &testCluster{brokers: kc.ListenAddrs(), opts: []kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha512Mechanism())}}
	pages, clicks, out := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched")
	c.createTopics(t, 2, pages, clicks, out)
	c.produceKV(t, pages, pageRows(50, "")...)
	first, want := clickRows("a", 100, 50)
	c.produceKV(t, clicks, first...)
	in := start(t, globalPipeline(t, pages, clicks, out), runtime.ApplicationID(topic(t, "app")), runtime.Brokers(c.brokers...),
		runtime.SASLScram512(user, pw), runtime.CommitInterval(100*time.Millisecond))
	if d := diffStrings(c.latestValues(t, out, len(want), time.Minute), want); d != "" {
		t.Fatalf("clicks joined with the table read at start-up: %s", d)
	}
	// A new page, read by the global reader's live client: a click on it
	// is joined with "?" (a left join) until the reader has it; the
	// click is sent again until its join finds the page.
	c.produceKV(t, pages, "/p100", "cat100")
	deadline := time.Now().Add(time.Minute)
	for {
		c.produceKV(t, clicks, "b0", "/p100")
		got := c.latestValues(t, out, len(want)+1, time.Minute)
		if got["b0"] == "/p100=cat100" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live update of the global table never reached the join: b0 is %q", got["b0"])
		}
	}
	in.stop(t)
}
