//go:build kafkasecure

// The security suite: a real Kafka 4.3.1 broker with a SASL_SSL listener,
// a TLS-only listener and ACLs enforced by KRaft's StandardAuthorizer,
// started by scripts/kafka.sh run-secure (make test-kafka-secure, part of
// make test-kafka), which sets the KAFKA_SECURE_* variables. Under this
// build tag the variables are required: the suite fails without them.
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
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/sluicehq/sluice/runtime"
)

// secureBroker is the secured broker of scripts/kafka.sh run-secure.
type secureBroker struct {
	saslBrokers []string // SASL_SSL
	tlsBrokers  []string // SSL, no SASL: User:ANONYMOUS
	ca          *x509.CertPool
	admin       *testCluster // the super user's clients
	user, pass  string       // alice: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
}

func newSecureBroker(t *testing.T) *secureBroker {
	t.Helper()
	env := map[string]string{}
	for _, k := range []string{"KAFKA_SECURE_BROKERS", "KAFKA_SECURE_TLS_BROKERS", "KAFKA_SECURE_CA",
		"KAFKA_SECURE_ADMIN_USER", "KAFKA_SECURE_ADMIN_PASSWORD", "KAFKA_SECURE_USER", "KAFKA_SECURE_PASSWORD"} {
		if env[k] = os.Getenv(k); env[k] == "" {
			t.Fatalf("%s is not set: run the security suite with make test-kafka-secure (scripts/kafka.sh run-secure starts its broker)", k)
		}
	}
	pem, err := os.ReadFile(env["KAFKA_SECURE_CA"])
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", env["KAFKA_SECURE_CA"])
	}
	b := &secureBroker{
		saslBrokers: strings.Split(env["KAFKA_SECURE_BROKERS"], ","),
		tlsBrokers:  strings.Split(env["KAFKA_SECURE_TLS_BROKERS"], ","),
		ca:          ca,
		user:        env["KAFKA_SECURE_USER"],
		pass:        env["KAFKA_SECURE_PASSWORD"],
	}
	b.admin = &testCluster{brokers: b.saslBrokers, real: true, opts: []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{RootCAs: ca}),
		kgo.SASL(plain.Auth{User: env["KAFKA_SECURE_ADMIN_USER"], Pass: env["KAFKA_SECURE_ADMIN_PASSWORD"]}.AsMechanism()),
	}}
	return b
}

func (b *secureBroker) adm(t *testing.T) *kadm.Client { return kadm.NewClient(b.admin.client(t)) }

// createTopics creates topics as the super user.
func (b *secureBroker) createTopics(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	b.admin.createTopics(t, partitions, topics...)
}

// acl is one ACL of an application: operations on a resource.
type acl struct {
	rtype   kmsg.ACLResourceType
	name    string
	pattern kadm.ACLPattern
	ops     []kadm.ACLOperation
}

// appACLs are the ACLs Kafka Streams documents for an application
// (docs/streams/developer-guide/security.html, "Required ACL setting for
// secure Kafka clusters"): READ on the input topics, WRITE on the output
// topics, and on the resources prefixed with the application ID, the
// internal topics (create, read, write; delete, for the purge of
// repartition topics) and the consumer group; under exactly-once, WRITE
// and DESCRIBE on the transactional IDs, which are prefixed with the
// application ID too. Kafka Streams' documentation grants ALL on the
// prefixed topics and groups; these are the operations within ALL that an
// application uses.
func appACLs(appID, input, output string, eos bool) []acl {
	acls := []acl{
		{kmsg.ACLResourceTypeTopic, input, kadm.ACLPatternLiteral, []kadm.ACLOperation{kadm.OpRead}},
		{kmsg.ACLResourceTypeTopic, output, kadm.ACLPatternLiteral, []kadm.ACLOperation{kadm.OpWrite}},
		{kmsg.ACLResourceTypeTopic, appID, kadm.ACLPatternPrefixed,
			[]kadm.ACLOperation{kadm.OpCreate, kadm.OpRead, kadm.OpWrite, kadm.OpDelete, kadm.OpDescribe}},
		{kmsg.ACLResourceTypeGroup, appID, kadm.ACLPatternPrefixed, []kadm.ACLOperation{kadm.OpRead}},
	}
	if eos {
		acls = append(acls, acl{kmsg.ACLResourceTypeTransactionalId, appID, kadm.ACLPatternPrefixed,
			[]kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}})
	}
	return acls
}

// without returns acls without op on the resource named name.
func without(acls []acl, rtype kmsg.ACLResourceType, name string, op kadm.ACLOperation) []acl {
	var out []acl
	found := false
	for _, a := range acls {
		if a.rtype == rtype && a.name == name {
			var ops []kadm.ACLOperation
			for _, o := range a.ops {
				if o == op {
					found = true
					continue
				}
				ops = append(ops, o)
			}
			if len(ops) == 0 {
				continue
			}
			a.ops = ops
		}
		out = append(out, a)
	}
	if !found {
		panic("without: no such ACL")
	}
	return out
}

// grant creates acls for principal as the super user.
func (b *secureBroker) grant(t *testing.T, principal string, acls []acl) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := b.adm(t)
	for _, a := range acls {
		bld := kadm.NewACLs().Allow(principal).AllowHosts("*").Operations(a.ops...).ResourcePatternType(a.pattern)
		switch a.rtype {
		case kmsg.ACLResourceTypeTopic:
			bld = bld.Topics(a.name)
		case kmsg.ACLResourceTypeGroup:
			bld = bld.Groups(a.name)
		case kmsg.ACLResourceTypeTransactionalId:
			bld = bld.TransactionalIDs(a.name)
		}
		res, err := adm.CreateACLs(ctx, bld)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %v %v on %v %s: %v", principal, r.Operation, r.Type, r.Name, r.Err)
			}
		}
		// The broker applies an ACL when the controller's metadata
		// reaches it, after CreateAcls returns; DescribeAcls answers
		// from the broker's authorizer, so once it lists the ACLs, they
		// are enforced.
		for {
			res, err := adm.DescribeACLs(ctx, bld)
			applied := err == nil
			for _, r := range res {
				applied = applied && r.Err == nil && len(r.Described) > 0
			}
			if applied {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("ACLs of %s on %v %s not applied by the broker: %v", principal, a.rtype, a.name, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// logBuffer collects an App's logs at debug level, to check that no
// secret reaches them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecret fails the test if s holds the password.
func noSecret(t *testing.T, what, s, password string) {
	t.Helper()
	if strings.Contains(s, password) {
		t.Errorf("%s holds the password", what)
	}
}

// mechanisms are the SASL options under test, by Kafka's name.
var mechanisms = map[string]func(user, pass string) runtime.Option{
	"PLAIN":         runtime.SASLPlain,
	"SCRAM-SHA-256": runtime.SASLScram256,
	"SCRAM-SHA-512": runtime.SASLScram512,
}

// An application given the ACLs Kafka Streams documents runs and counts
// exactly, under each SASL mechanism and both guarantees; nothing it logs
// at debug level holds the password.
func TestSecureAppWithDocumentedACLs(t *testing.T) {
	b := newSecureBroker(t)
	for _, tc := range []struct {
		mechanism string
		eos       bool
	}{
		{"PLAIN", false},
		{"PLAIN", true},
		{"SCRAM-SHA-256", true},
		{"SCRAM-SHA-512", false},
	} {
		name := tc.mechanism + "/at-least-once"
		if tc.eos {
			name = tc.mechanism + "/exactly-once"
		}
		t.Run(name, func(t *testing.T) {
			input, output, appID := topic(t, "lines"), topic(t, "counts"), topic(t, "app")
			b.createTopics(t, 2, input, output)
			b.grant(t, "User:"+b.user, appACLs(appID, input, output, tc.eos))
			want := map[string]int64{}
			b.admin.produce(t, input, lines(0, 300, 37, want)...)
			var logs logBuffer
			opts := []runtime.Option{
				runtime.ApplicationID(appID), runtime.Brokers(b.saslBrokers...),
				runtime.TLS(&tls.Config{RootCAs: b.ca}), mechanisms[tc.mechanism](b.user, b.pass),
				runtime.CommitInterval(100 * time.Millisecond), runtime.StartupTimeout(30 * time.Second),
				runtime.Logger(logs.logger()),
			}
			if tc.eos {
				opts = append(opts, runtime.ProcessingGuarantee(runtime.ExactlyOnce))
			}
			in := start(t, wordCount(t, input, output), opts...)
			got, _ := b.admin.counts(t, output, time.Minute, untilFailed(t, in, equalCounts(want)))
			if d := diffCounts(got, want); d != "" {
				t.Fatalf("counts differ: %s", d)
			}
			in.stop(t)
			l := logs.String()
			if !strings.Contains(l, "sasl.user="+b.user) || !strings.Contains(l, "sasl.password=[redacted]") {
				t.Errorf("the start-up log does not show the SASL user with the password redacted:\n%s", firstLines(l, 5))
			}
			noSecret(t, "the App's debug log", l, b.pass)
		})
	}
}

// untilFailed is done, or fails the test at once when in's Run returned.
func untilFailed(t *testing.T, in *instance, done func(map[string]int64) bool) func(map[string]int64) bool {
	return func(m map[string]int64) bool {
		select {
		case err := <-in.done:
			t.Fatalf("Run returned %v before the counts were complete", err)
		default:
		}
		return done(m)
	}
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(s, "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}

// An application missing one of the ACLs fails at start-up, within its
// StartupTimeout, with an *AuthorizationError naming the resource and the
// operation.
func TestSecureMissingACLFailsAtStartup(t *testing.T) {
	b := newSecureBroker(t)
	type want struct {
		rtype, name, op string
		namePrefix      bool // name is a prefix of the resource (internal topic, transactional ID)
	}
	for _, tc := range []struct {
		name  string
		eos   bool
		drop  func(appID, input, output string) (kmsg.ACLResourceType, string, kadm.ACLOperation)
		want  func(appID, input, output string) want
		extra func(appID string) []acl // granted besides
	}{
		{"no READ on the input topic", false,
			func(_, input, _ string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeTopic, input, kadm.OpRead
			},
			func(_, input, _ string) want { return want{"TOPIC", input, "READ", false} }, nil},
		{"no WRITE on the output topic", false,
			func(_, _, output string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeTopic, output, kadm.OpWrite
			},
			func(_, _, output string) want { return want{"TOPIC", output, "WRITE", false} }, nil},
		{"no CREATE on the internal topics", false,
			func(appID, _, _ string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeTopic, appID, kadm.OpCreate
			},
			func(appID, _, _ string) want { return want{"TOPIC", appID + "-counts-", "CREATE", true} }, nil},
		{"no DELETE on the internal topics", false,
			func(appID, _, _ string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeTopic, appID, kadm.OpDelete
			},
			func(appID, _, _ string) want { return want{"TOPIC", appID + "-counts-repartition", "DELETE", false} }, nil},
		{"no READ on the group", false,
			func(appID, _, _ string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeGroup, appID, kadm.OpRead
			},
			func(appID, _, _ string) want { return want{"GROUP", appID, "READ", false} }, nil},
		// DESCRIBE without READ: the group is described, but a group
		// that does not exist yet comes without its authorized
		// operations (GROUP_ID_NOT_FOUND), so the refused join is what
		// names it.
		{"DESCRIBE but no READ on the group", false,
			func(appID, _, _ string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeGroup, appID, kadm.OpRead
			},
			func(appID, _, _ string) want { return want{"GROUP", appID, "READ", false} },
			func(appID string) []acl {
				return []acl{{kmsg.ACLResourceTypeGroup, appID, kadm.ACLPatternLiteral, []kadm.ACLOperation{kadm.OpDescribe}}}
			}},
		{"no WRITE on the transactional ID", true,
			func(appID, _, _ string) (kmsg.ACLResourceType, string, kadm.ACLOperation) {
				return kmsg.ACLResourceTypeTransactionalId, appID, kadm.OpWrite
			},
			func(appID, _, _ string) want { return want{"TRANSACTIONAL_ID", appID + "-", "WRITE", true} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input, output, appID := topic(t, "lines"), topic(t, "counts"), topic(t, "app")
			b.createTopics(t, 2, input, output)
			rtype, name, op := tc.drop(appID, input, output)
			acls := without(appACLs(appID, input, output, tc.eos), rtype, name, op)
			if tc.extra != nil {
				acls = append(acls, tc.extra(appID)...)
			}
			b.grant(t, "User:"+b.user, acls)
			var logs logBuffer
			opts := []runtime.Option{
				runtime.ApplicationID(appID), runtime.Brokers(b.saslBrokers...),
				runtime.TLS(&tls.Config{RootCAs: b.ca}), runtime.SASLScram256(b.user, b.pass),
				runtime.CommitInterval(100 * time.Millisecond), runtime.StartupTimeout(20 * time.Second),
				runtime.Logger(logs.logger()),
			}
			if tc.eos {
				opts = append(opts, runtime.ProcessingGuarantee(runtime.ExactlyOnce))
			}
			began := time.Now()
			in := start(t, wordCount(t, input, output), opts...)
			var err error
			select {
			case err = <-in.done:
			case <-time.After(45 * time.Second):
				t.Fatal("Run did not fail within 45 s")
			}
			w := tc.want(appID, input, output)
			var ae *runtime.AuthorizationError
			if !errors.As(err, &ae) {
				t.Fatalf("Run returned %v after %v, want an *AuthorizationError", err, time.Since(began))
			}
			nameOK := ae.Resource == w.name || (w.namePrefix && strings.HasPrefix(ae.Resource, w.name))
			if ae.ResourceType != w.rtype || !nameOK || ae.Operation != w.op || ae.Principal != "User:"+b.user {
				t.Errorf("AuthorizationError %+v, want %s %s on %s %s (principal User:%s)", *ae, w.op, w.rtype, w.name,
					map[bool]string{true: "(prefix)"}[w.namePrefix], b.user)
			}
			for _, s := range []string{ae.ResourceType, ae.Resource, ae.Operation} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			t.Logf("after %v: %v", time.Since(began).Round(time.Millisecond), err)
			noSecret(t, "the error", err.Error(), b.pass)
			noSecret(t, "the App's debug log", logs.String(), b.pass)
		})
	}
}

// TLS without SASL, on the SSL listener (principal User:ANONYMOUS, given
// the application's ACLs): the application runs. With a CA that did not
// sign the broker's certificate, Run fails at start-up with an error that
// says so; with a wrong password, with one that says authentication
// failed; neither holds the password.
func TestSecureTLS(t *testing.T) {
	b := newSecureBroker(t)
	t.Run("TLS only", func(t *testing.T) {
		input, output, appID := topic(t, "lines"), topic(t, "counts"), topic(t, "app")
		b.createTopics(t, 2, input, output)
		b.grant(t, "User:ANONYMOUS", appACLs(appID, input, output, false))
		want := map[string]int64{}
		b.admin.produce(t, input, lines(0, 100, 11, want)...)
		in := start(t, wordCount(t, input, output), runtime.ApplicationID(appID), runtime.Brokers(b.tlsBrokers...),
			runtime.TLS(&tls.Config{RootCAs: b.ca}), runtime.CommitInterval(100*time.Millisecond))
		got, _ := b.admin.counts(t, output, time.Minute, untilFailed(t, in, equalCounts(want)))
		if d := diffCounts(got, want); d != "" {
			t.Fatalf("counts differ: %s", d)
		}
		in.stop(t)
	})
	t.Run("wrong CA", func(t *testing.T) {
		other := otherCA(t)
		err := runToFailure(t, runtime.Brokers(b.tlsBrokers...), runtime.TLS(&tls.Config{RootCAs: other}))
		var be *runtime.BrokerError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("Run returned %v, want a *BrokerError saying the certificate is signed by an unknown authority", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		const wrong = "not-the-password-4711"
		var logs logBuffer
		err := runToFailure(t, runtime.Brokers(b.saslBrokers...), runtime.TLS(&tls.Config{RootCAs: b.ca}),
			runtime.SASLScram512(b.user, wrong), runtime.Logger(logs.logger()))
		if !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
			t.Errorf("Run returned %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		noSecret(t, "the error", err.Error(), wrong)
		noSecret(t, "the App's debug log", logs.String(), wrong)
	})
}

// runToFailure runs word count with opts and returns Run's error, which
// must come within the start-up timeout (5 s) and a margin.
func runToFailure(t *testing.T, opts ...runtime.Option) error {
	t.Helper()
	input, output := topic(t, "lines"), topic(t, "counts")
	opts = append([]runtime.Option{runtime.ApplicationID(topic(t, "app")), runtime.StartupTimeout(5 * time.Second)}, opts...)
	in := start(t, wordCount(t, input, output), opts...)
	select {
	case err := <-in.done:
		if err == nil {
			t.Fatal("Run returned nil")
		}
		t.Logf("Run: %v", err)
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not fail within 30 s")
	}
	return nil
}

// otherCA is a CA that signed nothing the broker has.
func otherCA(t *testing.T) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not-the-broker-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
