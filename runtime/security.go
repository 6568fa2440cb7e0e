package runtime

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TLS makes every client of the App connect with TLS, configured by cfg
// (its RootCAs verify the brokers' certificates; Certificates, if any,
// authenticate the App to brokers that ask for client certificates). When
// cfg.ServerName is empty, each broker's host name is verified. The App
// keeps a clone of cfg. Kafka Streams: security.protocol=SSL (or SASL_SSL
// with a SASL option) and the ssl.* settings.
func TLS(cfg *tls.Config) Option {
	return optionFunc(func(c *config) {
		if cfg == nil {
			c.tls, c.tlsNil = nil, true
			return
		}
		c.tls, c.tlsNil = cfg.Clone(), false
	})
}

// SASLPlain authenticates every client of the App with SASL/PLAIN as user.
// PLAIN sends the password as it is: use it with TLS, which New does not
// enforce (a broker may sit behind a TLS proxy) but Run warns about. Kafka
// Streams: sasl.mechanism=PLAIN with PlainLoginModule in sasl.jaas.config.
func SASLPlain(user, password string) Option {
	return saslOption("SASLPlain", saslPlain, user, password)
}

// SASLScram256 authenticates every client of the App with
// SCRAM-SHA-256 as user; the password never crosses the network. Kafka
// Streams: sasl.mechanism=SCRAM-SHA-256 with ScramLoginModule.
func SASLScram256(user, password string) Option {
	return saslOption("SASLScram256", saslScram256, user, password)
}

// SASLScram512 authenticates every client of the App with
// SCRAM-SHA-512 as user. Kafka Streams: sasl.mechanism=SCRAM-SHA-512
// with ScramLoginModule.
func SASLScram512(user, password string) Option {
	return saslOption("SASLScram512", saslScram512, user, password)
}

// saslMechanism is one of the SASL mechanisms the options offer, by
// Kafka's name.
type saslMechanism string

const (
	saslPlain    saslMechanism = "PLAIN"
	saslScram256 saslMechanism = "SCRAM-SHA-256"
	saslScram512 saslMechanism = "SCRAM-SHA-512"
)

// saslCreds are the SASL user and password. The password is a secret: it
// is never formatted (String, GoString and LogValue redact it), and
// configError messages name only the option and the user.
type saslCreds struct {
	option    string // the Option that set them, for ConfigError
	mechanism saslMechanism
	user      string
	password  secret
}

// secret is a value that must never reach a log or an error message.
type secret string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format implements fmt.Formatter: every verb prints the redaction.
func (secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// String describes the credentials without the password.
func (s *saslCreds) String() string {
	return fmt.Sprintf("SASL %s as %s (password %s)", s.mechanism, s.user, redacted)
}

// GoString implements fmt.GoStringer, as String.
func (s *saslCreds) GoString() string { return s.String() }

func saslOption(name string, m saslMechanism, user, password string) Option {
	return optionFunc(func(c *config) {
		c.sasl = append(c.sasl, &saslCreds{option: name, mechanism: m, user: user, password: secret(password)})
	})
}

// validateSecurity checks the TLS and SASL options.
func (c *config) validateSecurity() []error {
	var errs []error
	if c.tlsNil {
		errs = append(errs, &ConfigError{"TLS", "nil *tls.Config (for TLS with the system's CAs, pass &tls.Config{})"})
	}
	if len(c.sasl) > 1 {
		var names []string
		for _, s := range c.sasl {
			names = append(names, s.option)
		}
		errs = append(errs, &ConfigError{c.sasl[1].option, fmt.Sprintf("more than one SASL option (%s): choose one", strings.Join(names, ", "))})
	}
	for _, s := range c.sasl {
		if s.user == "" {
			errs = append(errs, &ConfigError{s.option, "empty user name"})
		}
		if s.password == "" {
			errs = append(errs, &ConfigError{s.option, fmt.Sprintf("empty password for user %s", s.user)})
		}
	}
	return errs
}

// clientOptsWithSecurity are the franz-go options of every client the App makes
// (baseClientOpts): the SASL option's mechanism, then ClientOptions, then
// the TLS option's config. The security options win over ClientOptions
// that set the same: franz-go authenticates with the first mechanism
// given (kgo.SASL appends), and the last kgo.DialTLSConfig.
func (c *config) clientOptsWithSecurity() []kgo.Opt {
	var opts []kgo.Opt
	if len(c.sasl) > 0 {
		opts = append(opts, kgo.SASL(c.sasl[0].mechanismImpl()))
	}
	opts = append(opts, c.clientOpts...)
	if c.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(c.tls.Clone()))
	}
	return opts
}

// mechanismImpl is franz-go's implementation of s. The password is read
// from s when a connection authenticates, so it is held in one place.
func (s *saslCreds) mechanismImpl() sasl.Mechanism {
	user, pass := s.user, string(s.password)
	switch s.mechanism {
	case saslScram256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case saslScram512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}

// principal is the Kafka principal the App authenticates as, for
// AuthorizationError: User:<name> with SASL, else empty (without SASL the
// broker's principal depends on its listener: User:ANONYMOUS, or a client
// certificate's subject).
func (c *config) principal() string {
	if len(c.sasl) == 0 {
		return ""
	}
	return "User:" + c.sasl[0].user
}

// String describes the configuration's settings that matter to an
// operator, secrets redacted: it is what Run logs at start (LogValue).
func (c *config) String() string {
	var b strings.Builder
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", a.Key, a.Value)
	}
	return b.String()
}

// LogValue implements slog.LogValuer: the settings, with the SASL
// password redacted and nothing of the TLS configuration but whether it
// is on.
func (c *config) LogValue() slog.Value {
	security := "none"
	switch {
	case c.tls != nil && len(c.sasl) > 0:
		security = "SASL_SSL"
	case c.tls != nil:
		security = "SSL"
	case len(c.sasl) > 0:
		security = "SASL_PLAINTEXT"
	}
	attrs := []slog.Attr{
		slog.String("application.id", c.appID),
		slog.String("bootstrap.servers", strings.Join(c.brokers, ",")),
		slog.String("security.protocol", security),
	}
	if len(c.sasl) > 0 {
		s := c.sasl[0]
		attrs = append(attrs, slog.String("sasl.mechanism", string(s.mechanism)),
			slog.String("sasl.user", s.user), slog.Any("sasl.password", s.password))
	}
	attrs = append(attrs,
		slog.String("processing.guarantee", c.guarantee.String()),
		slog.Duration("commit.interval", c.commitInterval),
		slog.Int("num.stream.threads", c.workers),
		slog.Int("num.standby.replicas", c.standbys),
		slog.String("state.dir", c.stateDir),
		slog.Int("client.options", len(c.clientOpts)),
	)
	if c.instanceID != "" {
		attrs = append(attrs, slog.String("group.instance.id", c.instanceID))
	}
	if c.deadLetter != "" {
		attrs = append(attrs, slog.String("errors.dead.letter.queue.topic.name", c.deadLetter))
	}
	return slog.GroupValue(slices.Clip(attrs)...)
}
