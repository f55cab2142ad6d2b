// Package clickhouse is streamrec's ClickHouse adapter: a native-protocol
// connection (clickhouse-go/v2) and the versioned schema migrations under
// schemas/clickhouse.
//
// The DDL runs on ClickHouse 18.16 (Debian bookworm, used in tests) and on
// current releases, so it avoids DateTime64, Map, Bool, JSON and
// LowCardinality. Only the native protocol is used: over HTTP clickhouse-go
// fails against 18.16.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config is the ClickHouse connection of a component.
type Config struct {
	// Addr is host:port of the server's native protocol (default port 9000).
	Addr string `yaml:"addr"`
	// Database every unqualified table name resolves in.
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// DialTimeout bounds connecting and the handshake.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// DefaultConfig is a local server's default user and database.
func DefaultConfig() Config {
	return Config{
		Addr:        "127.0.0.1:9000",
		Database:    "default",
		User:        "default",
		DialTimeout: 5 * time.Second,
	}
}

// Validate reports every invalid field, naming its key under prefix (for
// example "clickhouse").
func (c Config) Validate(prefix string) error {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	var errs []error
	if c.Addr == "" {
		errs = append(errs, fmt.Errorf("%s must be set", key("addr")))
	}
	if c.Database == "" {
		errs = append(errs, fmt.Errorf("%s must be set", key("database")))
	}
	if c.User == "" {
		errs = append(errs, fmt.Errorf("%s must be set", key("user")))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s must be > 0", key("dial_timeout")))
	}
	return errors.Join(errs...)
}

// Open connects over the native protocol and pings the server, so a wrong
// address or credentials fail here. log receives the driver's warnings (for
// example about an old server version); nil discards them. The connection is
// a pool, safe for concurrent use; the caller closes it.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (driver.Conn, error) {
	if err := cfg.Validate("clickhouse"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := ch.Open(&ch.Options{
		Protocol:    ch.Native,
		Addr:        []string{cfg.Addr},
		Auth:        ch.Auth{Database: cfg.Database, Username: cfg.User, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		Logger:      log,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse open %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse ping %s: %w", cfg.Addr, err)
	}
	return conn, nil
}
