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
	"strconv"
	"strings"
	"time"

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
	// SessionTimeout is how long the group coordinator waits for a silent
	// member (a crashed process) before giving its partitions to others.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout is how long members may take to finish their
	// in-flight batches and commit when a rebalance starts.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// InstanceID turns on static group membership (KIP-345) for every
	// consumer group of this process: a process restarted with the same id
	// within SessionTimeout gets its partitions back at once, without a
	// rebalance and without waiting for its old session to expire. It
	// must be unique per process (a second process with the same id fences
	// the first) and stable across restarts: a Kubernetes StatefulSet's pod
	// name, a host name. A static member does not leave its groups when it
	// stops, so its partitions wait SessionTimeout for a replacement; empty
	// (the default) is dynamic membership.
	InstanceID string `yaml:"instance_id"`
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

// DefaultConfig points at the embedded broker's address, with Kafka's
// default session timeout (45 s) and dynamic membership.
func DefaultConfig() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "streamrec",
		SessionTimeout: 45 * time.Second, RebalanceTimeout: time.Minute}
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
	// Brokers refuse sessions outside group.min/max.session.timeout.ms
	// (6 s and 30 min by default).
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		return fmt.Errorf("%s.session_timeout: %s is outside 6s..30m (the brokers' group.min/max.session.timeout.ms defaults)", prefix, c.SessionTimeout)
	}
	if c.RebalanceTimeout < time.Second {
		return fmt.Errorf("%s.rebalance_timeout must be >= 1s", prefix)
	}
	if len(c.InstanceID) > 249 || strings.ContainsFunc(c.InstanceID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return fmt.Errorf("%s.instance_id: %q must be at most 249 printable ASCII characters without spaces", prefix, c.InstanceID)
	}
	return nil
}

// GroupOpts returns the consumer-group options of c: session and rebalance
// timeouts and, when set, the static instance id.
func (c Config) GroupOpts() []kgo.Opt {
	var opts []kgo.Opt
	if c.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(c.SessionTimeout))
	}
	if c.RebalanceTimeout > 0 {
		opts = append(opts, kgo.RebalanceTimeout(c.RebalanceTimeout))
	}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts
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

// DefaultMaxMessageBytes is Kafka's default max.message.bytes (1 MiB plus
// the record batch overhead), assumed when a topic's cannot be read.
const DefaultMaxMessageBytes = 1_048_588

// MaxMessageBytes returns the smallest max.message.bytes of topics: the
// largest record batch the brokers accept on every one of them. A producer
// whose kgo.ProducerBatchMaxBytes is at most this never builds a batch the
// brokers refuse as too large (franz-go's default, 1,000,012, is below
// Kafka's default, so records the brokers accept can be refused by the
// client).
func MaxMessageBytes(ctx context.Context, cl *kgo.Client, topics ...string) (int32, error) {
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("describe configs of %v: %w", topics, err)
	}
	var least int32
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, fmt.Errorf("describe configs of %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			n, err := strconv.ParseInt(*c.Value, 10, 32)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("topic %s: max.message.bytes %q is not a positive int32", rc.Name, *c.Value)
			}
			if least == 0 || int32(n) < least {
				least = int32(n)
			}
		}
	}
	if least == 0 {
		return 0, fmt.Errorf("topics %v: no max.message.bytes in their configs", topics)
	}
	return least, nil
}

// IsTooLarge reports whether a produce error means the record (or its
// batch) is larger than the client or the brokers take: sending it again
// cannot succeed.
func IsTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
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
