// Package kafka turns streamrec's Kafka configuration into franz-go client
// options and makes sure the topics the pipeline uses exist.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Config says how to reach a Kafka cluster.
type Config struct {
	// Brokers is the seed list, host:port each.
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	SASL     SASL     `yaml:"sasl"`
	TLS      TLS      `yaml:"tls"`
}

// SASL configures SASL authentication. An empty Mechanism disables it.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	User      string `yaml:"user"`
	Password  string `yaml:"password"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// DefaultConfig points at the embedded broker's address.
func DefaultConfig() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "streamrec"}
}

// Validate reports the first invalid field, named under prefix ("kafka").
func (c Config) Validate(prefix string) error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%s.brokers must not be empty", prefix)
	}
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("%s.brokers[%d]: %q is not host:port", prefix, i, b)
		}
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.User == "" {
			return fmt.Errorf("%s.sasl.user must be set when %s.sasl.mechanism is", prefix, prefix)
		}
	default:
		return fmt.Errorf("%s.sasl.mechanism: unknown %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", prefix, c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("%s.tls.cert_file and %s.tls.key_file must be set together", prefix, prefix)
	}
	return nil
}

// Opts returns the client options for c. Callers add their own (consumer
// group, topics, producer tuning) after these.
func (c Config) Opts(log *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if log != nil {
		// franz-go narrates group membership at info; keep warnings and
		// errors unless debug logging is on.
		h := log.Handler()
		if !h.Enabled(context.Background(), slog.LevelDebug) {
			h = minLevel{Handler: h, min: slog.LevelWarn}
		}
		opts = append(opts, kgo.WithLogger(kslog.New(slog.New(h).With("component", "kafka"))))
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}

func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by config
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: no certificates in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Topic describes a topic the pipeline needs.
type Topic struct {
	Name       string `yaml:"name"`
	Partitions int32  `yaml:"partitions"`
	// Replication is the replication factor; -1 uses the broker default.
	Replication int16 `yaml:"replication"`
	// Compact makes the topic log-compacted (cleanup.policy=compact), for
	// topics whose newest record per key is the state, such as the catalog.
	Compact bool `yaml:"compact"`
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left as they are (their partition count is not changed).
func EnsureTopics(ctx context.Context, cl *kgo.Client, topics ...Topic) error {
	adm := kadm.NewClient(cl)
	var errs []error
	for _, t := range topics {
		var configs map[string]*string
		if t.Compact {
			compact := "compact"
			configs = map[string]*string{"cleanup.policy": &compact}
		}
		repl := t.Replication
		if repl == 0 {
			repl = -1
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, repl, configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s (%d partitions): %w", t.Name, t.Partitions, err))
		}
	}
	return errors.Join(errs...)
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
