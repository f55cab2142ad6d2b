package health

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logged records the messages of warnings.
type logged struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }
func (l *logged) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		l.msgs = append(l.msgs, r.Message)
	}
	return nil
}
func (l *logged) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logged) WithGroup(string) slog.Handler      { return l }
func (l *logged) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

type stallers []Stall

func (s stallers) Stalled(after time.Duration) []Stall {
	var out []Stall
	for _, st := range s {
		if time.Since(st.Since) > after {
			out = append(out, st)
		}
	}
	return out
}

// A sink that is down, or frozen (answers nothing), makes the process not
// ready with the reason, is logged at least every WarnEvery while it stays
// down, and ready again once it answers. Issue 12, finding 3: /healthz said
// ok through 30 s of ClickHouse down or frozen.
func TestReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		log := &logged{}
		reg := prometheus.NewRegistry()
		c, err := New(cfg, slog.New(log), reg)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		state := "up"
		c.Add("kafka", func(context.Context) error { return nil })
		c.Add("analytics.clickhouse", func(ctx context.Context) error {
			mu.Lock()
			s := state
			mu.Unlock()
			switch s {
			case "down":
				return errors.New("dial tcp 127.0.0.1:9000: connection refused")
			case "frozen":
				<-ctx.Done() // a SIGSTOPped server accepts and never answers
				return ctx.Err()
			}
			return nil
		})
		set := func(s string) { mu.Lock(); state = s; mu.Unlock() }

		if ok, body := c.Ready(); ok || !strings.Contains(body, "starting") {
			t.Errorf("before Started: ready %v %q", ok, body)
		}
		c.Started()
		if ok, body := c.Ready(); ok || !strings.Contains(body, "not probed yet") {
			t.Errorf("before the first probe: ready %v %q", ok, body)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait()
		if ok, body := c.Ready(); !ok || body != "kafka: ok\nanalytics.clickhouse: ok\n" {
			t.Errorf("all up: ready %v %q", ok, body)
		}

		for _, tc := range []struct{ state, reason string }{
			{"down", "connection refused"},
			{"frozen", "no answer"},
		} {
			set(tc.state)
			before := log.count()
			// Noticed within one interval and one probe timeout.
			time.Sleep(cfg.Interval + cfg.Timeout)
			// 30 s down: not ready throughout, a warning at least every 10 s.
			for range 15 {
				time.Sleep(cfg.Interval)
				synctest.Wait()
				if ok, body := c.Ready(); ok || !strings.Contains(body, "analytics.clickhouse: down for") || !strings.Contains(body, tc.reason) {
					t.Fatalf("%s: ready %v %q", tc.state, ok, body)
				}
			}
			if n := log.count() - before; n < 3 {
				t.Errorf("%s for 30 s: %d warnings, want one at least every 10 s", tc.state, n)
			}
			if got := testutil.ToFloat64(c.up.WithLabelValues("analytics.clickhouse")); got != 0 {
				t.Errorf("%s: up gauge %v", tc.state, got)
			}
			set("up")
			time.Sleep(cfg.Interval + cfg.Timeout)
			synctest.Wait()
			if ok, body := c.Ready(); !ok {
				t.Errorf("back up after %s: ready %v %q", tc.state, ok, body)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestStalledPartitionsAreNotReady(t *testing.T) {
	c, err := New(DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Started()
	now := time.Now()
	c.Watch(stallers{
		{Group: "g", Topic: "shop.clickstream.v1", Partition: 2, Since: now.Add(-2 * time.Minute), Waiting: 17},
		{Group: "g", Topic: "shop.clickstream.v1", Partition: 3, Since: now.Add(-10 * time.Second), Waiting: 5},
	})
	ok, body := c.Ready()
	if ok || !strings.Contains(body, "partition shop.clickstream.v1/2 (group g): stalled: 17 records waiting, no progress for 2m") ||
		strings.Contains(body, "/3") {
		t.Errorf("ready %v %q, want partition 2 stalled and 3 not", ok, body)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Interval = 0 }, "health.interval"},
		{func(c *Config) { c.Timeout = 0 }, "health.timeout"},
		{func(c *Config) { c.StallAfter = 0 }, "health.stall_after"},
		{func(c *Config) { c.WarnEvery = time.Second }, "health.warn_every"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate("health"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want %s", err, tc.want)
		}
	}
}

// A probe that ignores its context (clickhouse-go's handshake waits for its
// own dial timeout) still fails the check after Config.Timeout, and is not
// started again while it runs.
func TestProbeIgnoringItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(DefaultConfig(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Started()
		release := make(chan struct{})
		var mu sync.Mutex
		calls := 0
		c.Add("stuck", func(context.Context) error {
			mu.Lock()
			calls++
			mu.Unlock()
			<-release
			return nil
		})
		c.ProbeAll(t.Context())
		if ok, body := c.Ready(); ok || !strings.Contains(body, "no answer within 2s") {
			t.Errorf("ready %v %q", ok, body)
		}
		c.ProbeAll(t.Context())
		if ok, body := c.Ready(); ok || !strings.Contains(body, "still waiting") {
			t.Errorf("ready %v %q", ok, body)
		}
		close(release)
		synctest.Wait()
		c.ProbeAll(t.Context())
		if ok, body := c.Ready(); !ok {
			t.Errorf("after the probe returned: ready %v %q", ok, body)
		}
		mu.Lock()
		defer mu.Unlock()
		if calls != 2 {
			t.Errorf("probe started %d times, want 2 (not while the first ran)", calls)
		}
	})
}
