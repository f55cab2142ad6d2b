package clickhouse_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*clickhouse.Config)
		want   []string
	}{
		{"default", func(*clickhouse.Config) {}, nil},
		{"no addr", func(c *clickhouse.Config) { c.Addr = "" }, []string{"clickhouse.addr must be set"}},
		{"no database", func(c *clickhouse.Config) { c.Database = "" }, []string{"clickhouse.database must be set"}},
		{"no user", func(c *clickhouse.Config) { c.User = "" }, []string{"clickhouse.user must be set"}},
		{"zero dial timeout", func(c *clickhouse.Config) { c.DialTimeout = 0 },
			[]string{"clickhouse.dial_timeout must be > 0"}},
		{"several", func(c *clickhouse.Config) { c.Addr, c.DialTimeout = "", -time.Second },
			[]string{"clickhouse.addr must be set", "clickhouse.dial_timeout must be > 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clickhouse.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate("clickhouse")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOpenFailsFast(t *testing.T) {
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = ""
	if _, err := clickhouse.Open(context.Background(), cfg, nil); err == nil {
		t.Fatal("Open with an invalid config: nil error")
	}
}

// open connects to a fresh database of the test server.
func open(t *testing.T) (context.Context, driver.Conn) {
	t.Helper()
	cfg := chtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	conn, err := clickhouse.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ctx, conn
}
