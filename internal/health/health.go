// Package health decides a process's liveness and readiness.
//
// Readiness is the state of named checks (Kafka, each sink: ClickHouse,
// Qdrant, the local stores), each probed in the background every
// Config.Interval with a timeout, and of the consumers' partitions: one whose
// records wait while its committed offset has not moved for
// Config.StallAfter is stalled (a poison record the sink keeps failing, a
// sink that hangs). Probing in the background keeps /readyz cheap and its
// answer at most one interval old, however often it is asked; a check that
// is down logs a warning every WarnEvery while it stays down.
//
// Liveness only says the process answers: restarting a process cannot
// bring a database back, so dependencies never fail it.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the checks.
type Config struct {
	// Interval is how often each check is probed.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe; a probe that takes longer fails (a frozen
	// server).
	Timeout time.Duration `yaml:"timeout"`
	// StallAfter is how long a partition's records may wait without its
	// committed offset moving before the process is not ready.
	StallAfter time.Duration `yaml:"stall_after"`
	// WarnEvery is how often a check that stays down is logged again.
	WarnEvery time.Duration `yaml:"warn_every"`
}

// DefaultConfig probes every 2 s with a 2 s timeout, calls a partition
// stalled after 1 minute without progress and repeats warnings every 10 s.
func DefaultConfig() Config {
	return Config{Interval: 2 * time.Second, Timeout: 2 * time.Second, StallAfter: time.Minute, WarnEvery: 10 * time.Second}
}

// Validate reports the first invalid field, named under prefix ("health").
func (c Config) Validate(prefix string) error {
	switch {
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("%s.interval must be >= 100ms", prefix)
	case c.Timeout < 10*time.Millisecond:
		return fmt.Errorf("%s.timeout must be >= 10ms", prefix)
	case c.StallAfter < time.Second:
		return fmt.Errorf("%s.stall_after must be >= 1s", prefix)
	case c.WarnEvery < c.Interval:
		return fmt.Errorf("%s.warn_every must be >= %s.interval", prefix, prefix)
	}
	return nil
}

// Stall is a partition whose records wait while its offset does not move.
type Stall struct {
	Group     string
	Topic     string
	Partition int32
	// Since is when the partition last made progress (or, if it never
	// did, when its records started waiting).
	Since time.Time
	// Waiting is how many records wait in the process.
	Waiting int
}

// Staller reports stalled partitions; the consumer runtime is one.
type Staller interface {
	Stalled(after time.Duration) []Stall
}

// Checker runs the probes and answers readiness. Safe for concurrent use.
type Checker struct {
	cfg Config
	log *slog.Logger
	up  *prometheus.GaugeVec

	mu       sync.Mutex
	checks   []*check
	stallers []Staller
	started  bool
}

type check struct {
	name  string
	probe func(ctx context.Context) error

	// Under Checker.mu.
	err      error // nil: up
	probed   bool
	downAt   time.Time
	warnedAt time.Time
	// busySince is when the probe still running started (zero: none).
	busySince time.Time
}

// New returns a checker; reg may be nil (metrics not registered).
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Checker, error) {
	if err := cfg.Validate("health"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{cfg: cfg, log: log, up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "streamrec_health_check_up",
		Help: "1 while the named dependency (kafka, a sink) answered its last probe, else 0.",
	}, []string{"check"})}
	if reg != nil {
		if err := reg.Register(c.up); err != nil {
			return nil, fmt.Errorf("health metrics: %w", err)
		}
	}
	return c, nil
}

// Add registers a check. A probe that has not returned within
// Config.Timeout fails the check (it is not started again until it
// returns), so a client that ignores its context cannot hide a frozen
// server. Add checks before Run.
func (c *Checker) Add(name string, probe func(ctx context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks = append(c.checks, &check{name: name, probe: probe})
}

// Watch adds partitions to watch for stalls.
func (c *Checker) Watch(s Staller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stallers = append(c.stallers, s)
}

// Started marks the process as started: until then it is not ready.
func (c *Checker) Started() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
}

// Run probes every check each Config.Interval until ctx is done; it
// returns nil.
func (c *Checker) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.ProbeAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ProbeAll probes every check once, concurrently, and records the results.
func (c *Checker) ProbeAll(ctx context.Context) {
	c.mu.Lock()
	checks := slices.Clone(c.checks)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, ch := range checks {
		wg.Go(func() {
			c.mu.Lock()
			busy := ch.busySince
			if busy.IsZero() {
				ch.busySince = time.Now()
			}
			c.mu.Unlock()
			if !busy.IsZero() {
				// A client that ignores its context (a handshake with a
				// frozen server) still holds the last probe.
				c.record(ch, fmt.Errorf("no answer: the probe started %s ago is still waiting", time.Since(busy).Round(time.Millisecond)))
				return
			}
			pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			defer cancel()
			res := make(chan error, 1)
			go func() {
				err := ch.probe(pctx)
				c.mu.Lock()
				ch.busySince = time.Time{}
				c.mu.Unlock()
				res <- err
			}()
			var err error
			select {
			case err = <-res:
				if err == nil && pctx.Err() != nil {
					err = pctx.Err()
				}
			case <-pctx.Done():
				err = pctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
			}
			if ctx.Err() != nil {
				return // shutting down: not the dependency's fault
			}
			c.record(ch, err)
		})
	}
	wg.Wait()
}

func (c *Checker) record(ch *check, err error) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	was := ch.err
	ch.err, ch.probed = err, true
	if err == nil {
		c.up.WithLabelValues(ch.name).Set(1)
		if was != nil {
			c.log.Info("dependency is back", "check", ch.name, "down_for", now.Sub(ch.downAt).Round(time.Millisecond))
		}
		return
	}
	c.up.WithLabelValues(ch.name).Set(0)
	if was == nil {
		ch.downAt = now
	}
	if was == nil || now.Sub(ch.warnedAt) >= c.cfg.WarnEvery {
		ch.warnedAt = now
		c.log.Warn("dependency is down; not ready", "check", ch.name, "down_for", now.Sub(ch.downAt).Round(time.Millisecond), "err", err)
	}
}

// Ready reports whether the process is ready, with one line per check and
// per stalled partition.
func (c *Checker) Ready() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	ready := c.started
	if !c.started {
		b.WriteString("starting: not ready\n")
	}
	for _, ch := range c.checks {
		switch {
		case !ch.probed:
			ready = false
			fmt.Fprintf(&b, "%s: not probed yet\n", ch.name)
		case ch.err != nil:
			ready = false
			fmt.Fprintf(&b, "%s: down for %s: %v\n", ch.name, time.Since(ch.downAt).Round(time.Second), ch.err)
		default:
			fmt.Fprintf(&b, "%s: ok\n", ch.name)
		}
	}
	for _, s := range c.stallers {
		for _, st := range s.Stalled(c.cfg.StallAfter) {
			ready = false
			fmt.Fprintf(&b, "partition %s/%d (group %s): stalled: %d records waiting, no progress for %s\n",
				st.Topic, st.Partition, st.Group, st.Waiting, time.Since(st.Since).Round(time.Second))
		}
	}
	return ready, b.String()
}
