// Package broker runs the embedded Kafka broker used by `streamrec run` and
// `streamrec broker`: franz-go's kfake, a real Kafka-protocol server, on a
// fixed loopback port with its records and group offsets persisted in a data
// directory, so kcat or any Kafka client can talk to it and state survives a
// restart.
//
// It is meant for development and single-node shops. Production points the
// pipeline at Apache Kafka or Redpanda instead.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// Port is the loopback port to listen on (127.0.0.1:Port).
	Port int `yaml:"port"`
	// DataDir is where records and offsets are persisted. Empty keeps
	// everything in memory.
	DataDir string `yaml:"data_dir"`
	// DefaultPartitions is the partition count of auto-created topics.
	DefaultPartitions int `yaml:"default_partitions"`
	// SyncWrites fsyncs every produced batch before acknowledging it. Off,
	// batches acknowledged shortly before a machine crash can be lost (as
	// with Kafka's default flush settings); a process kill loses nothing.
	SyncWrites bool `yaml:"sync_writes"`
	// MaxMessageBytes is the largest produce batch accepted.
	MaxMessageBytes int `yaml:"max_message_bytes"`
}

// DefaultConfig listens on 127.0.0.1:9092 and persists under ./data/kafka.
func DefaultConfig() Config {
	return Config{Port: 9092, DataDir: "data/kafka", DefaultPartitions: 3, MaxMessageBytes: 1 << 20}
}

// Validate reports the first invalid field, named under prefix ("broker").
func (c Config) Validate(prefix string) error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%s.port: %d out of range 0..65535", prefix, c.Port)
	case c.DefaultPartitions <= 0:
		return fmt.Errorf("%s.default_partitions must be > 0", prefix)
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("%s.max_message_bytes must be > 0", prefix)
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	log     *slog.Logger
}

// Start starts the broker. Port 0 picks a free port (for tests).
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	if err := cfg.Validate("broker"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.Port),
		kfake.DefaultNumPartitions(cfg.DefaultPartitions),
		kfake.AllowAutoTopicCreation(),
		kfake.WithLogger(logger{log}),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(cfg.MaxMessageBytes)}),
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("broker.data_dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if cfg.Port != 0 && isAddrInUse(err) {
			return nil, fmt.Errorf("start embedded broker: port %d is in use (another broker running? set broker.port or kafka.brokers): %w", cfg.Port, err)
		}
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	b := &Broker{cluster: c, log: log}
	log.Info("embedded kafka broker started", "addr", b.Addr(), "data_dir", cfg.DataDir)
	return b, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Cluster exposes the kfake cluster, for tests that inject faults.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker, persisting its state to the data directory.
func (b *Broker) Close() {
	b.cluster.Close()
	b.log.Info("embedded kafka broker stopped")
}

// Run keeps the broker up until ctx is done, then closes it.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}

func isAddrInUse(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "listen"
}

// logger routes kfake's log lines to slog.
type logger struct{ log *slog.Logger }

func (l logger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		// kfake logs every request at info; that is debug for us.
		sl = slog.LevelDebug
	default:
		sl = slog.LevelDebug - 4
	}
	if !l.log.Enabled(context.Background(), sl) {
		return
	}
	l.log.Log(context.Background(), sl, fmt.Sprintf(msg, args...), "component", "broker")
}
