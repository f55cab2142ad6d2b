package clickstream

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/schemas"
)

// QualityConfig configures the clickstream's data-quality guards.
type QualityConfig struct {
	// DedupWindow is how many recent event ids are remembered: an event whose
	// id is among them is dropped as a duplicate (producer retries, replays).
	// The window holds between DedupWindow/2 and DedupWindow ids; 0 disables
	// it. Duplicates older than the window still collapse in the analytics
	// store (ReplacingMergeTree, deduplicated views).
	DedupWindow int `yaml:"dedup_window"`
	// RateLimit guards against bots: per user, by event time.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
}

// RateLimitConfig is a per-user token bucket over event time: a user may
// send Burst events at once and EventsPerSecond on average; events beyond
// that are dead-lettered with the reason. Event time, not arrival time, so
// that catching up on a backlog does not trip it.
type RateLimitConfig struct {
	// EventsPerSecond is the sustained rate per user; 0 disables the guard.
	EventsPerSecond float64 `yaml:"events_per_second"`
	Burst           int     `yaml:"burst"`
	// MaxUsers bounds the users tracked; users idle the longest are
	// forgotten first (they start again with a full bucket).
	MaxUsers int `yaml:"max_users"`
}

// DefaultQualityConfig remembers 1M event ids (about 11 MB: 10.7 bytes an
// id, BenchmarkDedupWindow) and lets a user send 20 events/s with bursts of 100.
func DefaultQualityConfig() QualityConfig {
	return QualityConfig{
		DedupWindow: 1_000_000,
		RateLimit:   RateLimitConfig{EventsPerSecond: 20, Burst: 100, MaxUsers: 200_000},
	}
}

// Validate reports every invalid field, named under prefix.
func (c QualityConfig) Validate(prefix string) error {
	var errs []error
	if c.DedupWindow < 0 {
		errs = append(errs, fmt.Errorf("%s.dedup_window must be >= 0", prefix))
	}
	r := c.RateLimit
	if r.EventsPerSecond < 0 {
		errs = append(errs, fmt.Errorf("%s.rate_limit.events_per_second must be >= 0", prefix))
	}
	if r.EventsPerSecond > 0 {
		if r.Burst < 1 {
			errs = append(errs, fmt.Errorf("%s.rate_limit.burst must be >= 1", prefix))
		}
		if r.MaxUsers < 1 {
			errs = append(errs, fmt.Errorf("%s.rate_limit.max_users must be >= 1", prefix))
		}
	}
	return errors.Join(errs...)
}

// ErrRateLimited is the reason a rate-limited event is dead-lettered with.
var ErrRateLimited = errors.New("user over the event-rate limit (suspected bot)")

// Quality holds the guards' state: the window of recent event ids and the
// users' token buckets. Safe for concurrent use by the partitions' workers.
//
// State changes only when a batch is committed (Check's commit func), so a
// batch that fails in the sink and is retried is judged exactly as before:
// its events are not mistaken for their own duplicates, and its users' tokens
// are not spent twice.
type Quality struct {
	cfg  QualityConfig
	seed maphash.Seed

	mu sync.Mutex
	// Two generations of event-id hashes: cur fills to DedupWindow/2, then
	// becomes prev and a new cur starts.
	cur, prev *idSet
	// Two generations of buckets in the same way: users not seen for a
	// generation are forgotten.
	users, oldUsers map[string]bucket

	duplicates prometheus.Counter
	limited    prometheus.Counter
	ids        prometheus.GaugeFunc
}

// bucket is a user's token bucket: tokens left at event time at (Unix ns).
type bucket struct {
	tokens float64
	at     int64
}

// NewQuality returns the guards for cfg, registering their metrics on reg
// (nil: not registered).
func NewQuality(cfg QualityConfig, reg prometheus.Registerer) (*Quality, error) {
	if err := cfg.Validate("clickstream.quality"); err != nil {
		return nil, err
	}
	q := &Quality{
		cfg:      cfg,
		seed:     maphash.MakeSeed(),
		cur:      newIDSet(cfg.DedupWindow / 2),
		prev:     newIDSet(cfg.DedupWindow / 2),
		users:    map[string]bucket{},
		oldUsers: map[string]bucket{},
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamrec_clickstream_duplicates_total",
			Help: "Clickstream events dropped because their event_id was seen within the dedup window.",
		}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamrec_clickstream_rate_limited_total",
			Help: "Clickstream events dead-lettered by the per-user rate guard.",
		}),
	}
	q.ids = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "streamrec_clickstream_dedup_ids",
		Help: "Event ids held by the dedup window.",
	}, func() float64 { return float64(q.WindowLen()) })
	if reg != nil {
		for _, c := range []prometheus.Collector{q.duplicates, q.limited, q.ids} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

// Verdict is what Check decided for one event.
type Verdict uint8

// Verdicts.
const (
	Keep      Verdict = iota
	Duplicate         // seen within the window (or earlier in the batch): drop
	Limited           // over its user's rate: dead-letter with ErrRateLimited
)

// Check judges the events of one batch, in order, into verdicts (reused if
// it has room). It changes no state: commit, called once the kept events are
// durable, records their ids and spends their users' tokens.
func (q *Quality) Check(events []schemas.ClickEvent, verdicts []Verdict) (out []Verdict, commit func()) {
	out = verdicts[:0]
	hashes := make([]uint64, 0, len(events))
	inBatch := make(map[uint64]struct{}, len(events))
	var buckets map[string]bucket
	rl := q.cfg.RateLimit
	if rl.EventsPerSecond > 0 {
		buckets = map[string]bucket{}
	}
	nDup, nLim := 0, 0

	q.mu.Lock()
	for i := range events {
		ev := &events[i]
		if q.cfg.DedupWindow > 0 {
			h := maphash.String(q.seed, ev.EventID)
			_, seen := inBatch[h]
			seen = seen || q.cur.has(h) || q.prev.has(h)
			if seen {
				out = append(out, Duplicate)
				nDup++
				continue
			}
			inBatch[h] = struct{}{}
		}
		if buckets != nil {
			b, ok := buckets[ev.UserID]
			if !ok {
				b, ok = q.users[ev.UserID]
			}
			if !ok {
				b, ok = q.oldUsers[ev.UserID]
			}
			at := ev.Timestamp.UnixNano()
			if !ok {
				b = bucket{tokens: float64(rl.Burst), at: at}
			} else if at > b.at {
				b.tokens = min(float64(rl.Burst), b.tokens+float64(at-b.at)/float64(time.Second)*rl.EventsPerSecond)
				b.at = at
			}
			if b.tokens < 1 {
				buckets[ev.UserID] = b
				out = append(out, Limited)
				nLim++
				continue
			}
			b.tokens--
			buckets[ev.UserID] = b
		}
		// Only kept events enter the window: a rate-limited one whose
		// dead-letter was not confirmed must be judged the same next time.
		if q.cfg.DedupWindow > 0 {
			hashes = append(hashes, maphash.String(q.seed, ev.EventID))
		}
		out = append(out, Keep)
	}
	q.mu.Unlock()

	return out, func() {
		q.duplicates.Add(float64(nDup))
		q.limited.Add(float64(nLim))
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, h := range hashes {
			if q.cur.full() {
				// Reuse prev's slots for the new generation.
				q.prev, q.cur = q.cur, q.prev
				clear(q.cur.slots)
				q.cur.n = 0
			}
			q.cur.add(h)
		}
		for u, b := range buckets {
			if len(q.users) >= max(rl.MaxUsers/2, 1) {
				q.oldUsers, q.users = q.users, make(map[string]bucket, len(q.users))
			}
			delete(q.oldUsers, u)
			q.users[u] = b
		}
	}
}

// Filter judges events as Check does and commits at once, for a reader with
// no sink to confirm first (the serving consumer's popularity follower,
// which counts the events it returns at once): it returns the kept events,
// in order, in events' backing array. Dropped events are counted in the
// metrics like Check's; rate-limited ones are not dead-lettered.
func (q *Quality) Filter(events []schemas.ClickEvent) []schemas.ClickEvent {
	verdicts, commit := q.Check(events, nil)
	commit()
	kept := events[:0]
	for i, v := range verdicts {
		if v == Keep {
			kept = append(kept, events[i])
		}
	}
	return kept
}

// WindowLen is the number of event ids the dedup window holds.
func (q *Quality) WindowLen() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cur.n + q.prev.n
}

// WindowBytes is the memory the dedup window holds, allocated up front
// (NewQuality), so it never grows:
// two generations of DedupWindow/2 slots at a load of 3/4, 8 bytes a slot.
func (q *Quality) WindowBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return 8 * (len(q.cur.slots) + len(q.prev.slots))
}
