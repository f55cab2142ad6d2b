package consumers

import (
	"context"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tally counts what a consumer kind processed, by one label (an event type,
// a catalog op, "rejected"), exports the counts as a Prometheus counter and
// logs them periodically, so an operator sees what flows. Safe for
// concurrent use.
type Tally struct {
	name    string
	counter *prometheus.CounterVec

	mu     sync.Mutex
	counts map[string]int64
}

// NewTally creates a tally logged as name and exported as the counter
// metric (e.g. streamrec_clickstream_events_total) with the given label.
// reg may be nil.
func NewTally(name string, reg prometheus.Registerer, metric, help, label string) *Tally {
	t := &Tally{
		name:    name,
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metric, Help: help}, []string{label}),
		counts:  map[string]int64{},
	}
	if reg != nil {
		reg.MustRegister(t.counter)
	}
	return t
}

// Add counts n under label.
func (t *Tally) Add(label string, n int64) {
	t.counter.WithLabelValues(label).Add(float64(n))
	t.mu.Lock()
	t.counts[label] += n
	t.mu.Unlock()
}

// Snapshot returns the counts so far.
func (t *Tally) Snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}

// Total is the sum of all counts.
func (t *Tally) Total() int64 {
	var n int64
	for _, v := range t.Snapshot() {
		n += v
	}
	return n
}

// Run logs the counts every interval while they change, and a summary when
// ctx is done.
func (t *Tally) Run(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last int64
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			log.Info(t.name+" consumed (final)", t.attrs(t.Snapshot())...)
			return nil
		case now := <-tick.C:
			snap := t.Snapshot()
			var total int64
			for _, v := range snap {
				total += v
			}
			if total == last {
				continue
			}
			rate := float64(total-last) / now.Sub(lastAt).Seconds()
			last, lastAt = total, now
			log.Info(t.name+" consumed", append(t.attrs(snap), "per_sec", int64(rate))...)
		}
	}
}

func (t *Tally) attrs(snap map[string]int64) []any {
	keys := make([]string, 0, len(snap))
	var total int64
	for k, v := range snap {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	out := []any{"total", total}
	for _, k := range keys {
		out = append(out, k, snap[k])
	}
	return out
}
