package qdrant

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config configures a Store.
type Config struct {
	// Addr is Qdrant's gRPC endpoint, host:port (Qdrant serves gRPC on 6334).
	Addr string `yaml:"addr"`
	// APIKey is sent as the api-key header when set. Use it with TLS.
	APIKey string `yaml:"api_key"`
	// TLS connects with TLS (system roots unless CAFile is set).
	TLS bool `yaml:"tls"`
	// CAFile is a PEM bundle of the CAs to trust; needs TLS.
	CAFile string `yaml:"ca_file"`
	// BatchSize is the most points one upsert or delete call carries.
	BatchSize int `yaml:"batch_size"`
	// Timeout bounds each attempt of each call.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is the backoff for transient errors.
	Retry Retry `yaml:"retry"`
}

// Retry is an exponential backoff: the first retry waits about Initial, each
// next one twice as long up to Max, and a call is tried at most MaxAttempts
// times in all.
type Retry struct {
	Initial     time.Duration `yaml:"initial"`
	Max         time.Duration `yaml:"max"`
	MaxAttempts int           `yaml:"max_attempts"`
}

// DefaultConfig is a local Qdrant without TLS.
func DefaultConfig() Config {
	return Config{
		Addr:      "localhost:6334",
		BatchSize: 256,
		Timeout:   10 * time.Second,
		Retry:     Retry{Initial: 100 * time.Millisecond, Max: 5 * time.Second, MaxAttempts: 5},
	}
}

// Validate reports every invalid field, each named under prefix ("qdrant").
func (c Config) Validate(prefix string) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(prefix+"."+format, args...))
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" {
		bad("addr: %q is not host:port", c.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		bad("addr: port %q is not a number in 1..65535", port)
	}
	if c.CAFile != "" && !c.TLS {
		bad("ca_file needs %s.tls: true", prefix)
	}
	if c.BatchSize <= 0 {
		bad("batch_size must be > 0")
	}
	if c.Timeout <= 0 {
		bad("timeout must be > 0")
	}
	if c.Retry.Initial <= 0 {
		bad("retry.initial must be > 0")
	}
	if c.Retry.Max < c.Retry.Initial {
		bad("retry.max must be >= %s.retry.initial", prefix)
	}
	if c.Retry.MaxAttempts < 1 {
		bad("retry.max_attempts must be >= 1")
	}
	return errors.Join(errs...)
}
