// Package popularity answers cold-start requests: a Tracker keeps
// time-decayed interaction counts per item, overall and per category, and
// Follow feeds it from the clickstream. Every serving replica builds its
// own popularity (no consumer group), starting a lookback before now.
package popularity

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/streamrec/streamrec/consumers/profiles"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Config configures popularity.
type Config struct {
	// HalfLife: an event counts half as much as one of the same type
	// HalfLife later, by event time.
	HalfLife time.Duration `yaml:"half_life"`
	// Lookback is how far before start Follow begins reading. The serving
	// consumer's one follower also feeds co-occurrence and starts from the
	// longer of this and cooccurrence.lookback; older events only decay
	// away here.
	Lookback time.Duration `yaml:"lookback"`
	// MaxItems bounds the items tracked (and the item categories cached):
	// beyond it the least popular are dropped.
	MaxItems int `yaml:"max_items"`
	// Weights per event type; the profile updater's defaults.
	Weights profiles.Weights `yaml:"weights"`
}

// DefaultConfig: a 6h half-life, 24h lookback, 100,000 items, default
// weights.
func DefaultConfig() Config {
	return Config{HalfLife: 6 * time.Hour, Lookback: 24 * time.Hour, MaxItems: 100_000, Weights: profiles.DefaultWeights()}
}

// Validate reports the first invalid field, named under prefix
// ("popularity").
func (c Config) Validate(prefix string) error {
	if c.HalfLife < time.Millisecond {
		return fmt.Errorf("%s.half_life must be > 0 (at least 1ms)", prefix)
	}
	if c.Lookback < 0 {
		return fmt.Errorf("%s.lookback must be >= 0", prefix)
	}
	if c.MaxItems <= 0 {
		return fmt.Errorf("%s.max_items must be > 0", prefix)
	}
	return c.Weights.Validate(prefix + ".weights")
}

// renormAt is how many half-lives past the reference time an event may be
// before every score is rescaled to a new reference (2^60 keeps float64
// far from overflow and loses no relative precision).
const renormAt = 60

var _ pipeline.Popularity = (*Tracker)(nil)

// Tracker keeps time-decayed counts of items: an event of weight w at time
// t adds w·2^(-(T-t)/HalfLife) to its item's score at time T, overall and
// in every category of the item's path. Scores are kept as
// w·2^((t-t0)/HalfLife) against a reference t0 that moves forward now and
// then, so they never overflow; the ranking does not depend on t0.
//
// At most MaxItems items are kept: an item arriving when the tracker is
// full first drops the least popular tenth (amortised O(log n) per new
// item). Safe for concurrent use.
type Tracker struct {
	weights    profiles.Weights
	halfLifeMs float64
	max        int

	mu     sync.RWMutex
	t0     int64 // reference, Unix ms
	latest int64 // newest event time observed, Unix ms; scores are reported at it
	seen   bool
	items  map[string]*entry
	byCat  map[string]map[string]*entry
}

type entry struct {
	id    string
	score float64 // scaled to t0
	cats  []string
}

// NewTracker returns an empty tracker for cfg.
func NewTracker(cfg Config) (*Tracker, error) {
	if err := cfg.Validate("popularity"); err != nil {
		return nil, err
	}
	return &Tracker{
		weights:    cfg.Weights,
		halfLifeMs: float64(cfg.HalfLife) / 1e6,
		max:        cfg.MaxItems,
		items:      map[string]*entry{},
		byCat:      map[string]map[string]*entry{},
	}, nil
}

// Observe counts an event of type typ on item at time at. categories are
// the item's category path (root first; nil when unknown): the item
// counts in every level. An item's latest categories replace earlier ones.
// Events of a type weighted 0, and events without an item, are ignored.
func (t *Tracker) Observe(itemID string, categories []string, typ schemas.EventType, at time.Time) {
	w := t.weights.Of(typ)
	if itemID == "" || w <= 0 {
		return
	}
	ms := at.UnixMilli()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.seen {
		t.t0, t.latest, t.seen = ms, ms, true
	}
	t.latest = max(t.latest, ms)
	x := float64(ms-t.t0) / t.halfLifeMs
	if x > renormAt {
		k := math.Exp2(-x)
		for _, e := range t.items {
			e.score *= k
		}
		t.t0, x = ms, 0
	}
	e := t.items[itemID]
	if e == nil {
		if len(t.items) >= t.max {
			t.prune()
		}
		e = &entry{id: itemID}
		t.items[itemID] = e
		t.index(e, categories)
	} else if !slices.Equal(e.cats, categories) {
		t.unindex(e)
		t.index(e, categories)
	}
	e.score += w * math.Exp2(x)
}

func (t *Tracker) index(e *entry, cats []string) {
	e.cats = slices.Clone(cats)
	for _, c := range e.cats {
		m := t.byCat[c]
		if m == nil {
			m = map[string]*entry{}
			t.byCat[c] = m
		}
		m[e.id] = e
	}
}

func (t *Tracker) unindex(e *entry) {
	for _, c := range e.cats {
		if m := t.byCat[c]; m != nil {
			delete(m, e.id)
			if len(m) == 0 {
				delete(t.byCat, c)
			}
		}
	}
}

// prune drops the least popular tenth of the items (at least one). The
// caller holds mu.
func (t *Tracker) prune() {
	all := make([]*entry, 0, len(t.items))
	for _, e := range t.items {
		all = append(all, e)
	}
	slices.SortFunc(all, less)
	keep := t.max - max(1, t.max/10)
	for _, e := range all[keep:] {
		t.unindex(e)
		delete(t.items, e.id)
	}
}

// less orders entries most popular first, ties by id.
func less(a, b *entry) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// Top returns up to k items, most popular first (ties by item id), with
// their scores at the newest event time observed. category "" ranks every
// item, otherwise the items with that category at any level of their path.
func (t *Tracker) Top(category string, k int) []pipeline.Scored {
	if k <= 0 {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	set := t.items
	if category != "" {
		set = t.byCat[category]
	}
	// A min-heap of the best k seen, worst at the root.
	h := make([]*entry, 0, min(k, len(set)))
	worse := func(i, j int) bool { return less(h[i], h[j]) > 0 }
	down := func(i int) {
		for {
			l, m := 2*i+1, i
			if l < len(h) && worse(l, m) {
				m = l
			}
			if r := l + 1; r < len(h) && worse(r, m) {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for _, e := range set {
		if len(h) < k {
			h = append(h, e)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if !worse(i, p) {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			continue
		}
		if less(e, h[0]) < 0 {
			h[0] = e
			down(0)
		}
	}
	slices.SortFunc(h, less)
	scale := math.Exp2(-float64(t.latest-t.t0) / t.halfLifeMs)
	out := make([]pipeline.Scored, len(h))
	for i, e := range h {
		out[i] = pipeline.Scored{ItemID: e.id, Score: e.score * scale}
	}
	return out
}

// Len is the number of items tracked.
func (t *Tracker) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.items)
}
