// Package cooccur is the serving consumer's collaborative signal: item-kNN on
// co-occurrence, learned online from the clickstream. Every serving replica
// builds its own Tracker in memory (a follower feeds it, starting a lookback
// before now).
//
// # Model
//
// Interactions are binary: a user either has touched an item recently or
// not, whatever the event type. Each user has a window of the Window
// distinct items touched most recently, the newest part of a history of
// the History latest distinct items, which Recommend never returns (a
// user's own past items would otherwise lead: they co-occurred with the
// window when the user touched them). When an item enters a user's
// window, it co-occurs once with every item already there: co(i,j) and
// co(j,i) grow by one, and n(j), the number of times j entered a window,
// grows by one. An item is then scored for a user by the cosine of the
// binary user-item matrix, summed over the user's window:
//
//	score(j) = Σ_{i in window} d^p(i) · co(i,j) / sqrt(n(i)·n(j))
//
// where p(i) is i's place in the window, 0 for the newest, and d is
// RecencyDecay (1: all alike).
//
// # Approximations
//
// The counts are exact until a list is pruned: each item keeps at most
// 2×Neighbours co-occurrence counts, and a list that reaches that is cut to
// the Neighbours largest (ties: the older item). Rare pairs are forgotten
// and start again from zero when they recur, and co(i,j) and co(j,i) are
// pruned independently, so they may differ. An item that leaves a user's
// window and enters it again counts again, as if from a new user.
//
// # Memory
//
// Bounded by the config: at most MaxItems items, each with at most
// 2×Neighbours−1 counts, and at most MaxUsers histories of at most History
// items. A count costs about 12 bytes in its item's map once the list is
// long (a list that has been pruned keeps the room for 2×Neighbours: about
// 5 KB at the default 200; a short list about 140 bytes), a history 4
// bytes an item plus about 80 bytes and the user id, an item about 60 bytes
// plus its id. The worst case of the defaults is about 1 GB of counts
// (200,000 items with full lists) and about 100 MB of histories; a Zipf-like
// clickstream fills only the popular items' lists: BenchmarkObserve's 4.3M
// counts over 57,000 items (500,000 events, defaults) take 19 bytes a
// count, all in. Each concurrent Recommend takes 8 bytes an item of pooled
// scratch.
//
// Items are never forgotten: once MaxItems items have been seen, new ones
// are not tracked at all (streamrec_cooccur_dropped_items_total grows), so
// MaxItems must cover the catalogue and its churn over a replica's life.
//
// # Cost
//
// Observe of a new item costs two map updates per window item: about 7 µs
// at the default window of 20 on a warm tracker (BenchmarkObserve, this
// 2-core machine), mostly cache misses, so replaying the lookback runs at
// some 140,000 events a second. Recommend reads at most Window ×
// 2·Neighbours counts: about 0.12 ms for a full window of 20. Window is the
// knob for both.
package cooccur

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the tracker (config section "cooccurrence").
type Config struct {
	// Window is how many distinct items per user (the newest) a new item
	// is paired with.
	Window int `yaml:"window"`
	// Neighbours is how many co-occurrence counts are kept per item: when an
	// item's list reaches 2×Neighbours it is pruned to the Neighbours
	// largest counts.
	Neighbours int `yaml:"neighbours"`
	// MaxItems bounds the items tracked. Items are never forgotten: beyond
	// it new items are not tracked at all.
	MaxItems int `yaml:"max_items"`
	// MaxUsers bounds the users' windows kept: between MaxUsers/2 and
	// MaxUsers, the users least recently observed are forgotten first.
	MaxUsers int `yaml:"max_users"`
	// Lookback is how far before start the follower begins reading; the
	// tracker itself does not use it.
	Lookback time.Duration `yaml:"lookback"`
	// History is how many distinct items per user (the newest, the window
	// among them) Recommend never returns: what the user touched lately
	// is not recommended back. At least Window.
	History int `yaml:"history"`
	// RecencyDecay weighs a user's window items by recency in Recommend and
	// Score: the p-th newest (p from 0) counts RecencyDecay^p. 1 weighs
	// them all alike.
	RecencyDecay float64 `yaml:"recency_decay"`
}

// DefaultConfig: windows of 20 items weighted by a recency decay of 0.9
// (on MovieLens a user's latest items predict the next better than more of
// their history: docs/evaluation.md), 200 neighbours, 200,000 items and
// users, a 30-day lookback.
func DefaultConfig() Config {
	return Config{Window: 20, Neighbours: 200, MaxItems: 200_000, MaxUsers: 200_000, Lookback: 30 * 24 * time.Hour, History: 100, RecencyDecay: 0.9}
}

// Validate reports every invalid field, named under prefix
// ("cooccurrence").
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("%s.window must be > 0", prefix))
	}
	if c.Neighbours <= 0 {
		errs = append(errs, fmt.Errorf("%s.neighbours must be > 0", prefix))
	}
	if c.MaxItems <= 0 || c.MaxItems > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("%s.max_items must be > 0 and <= %d", prefix, math.MaxInt32))
	}
	if c.MaxUsers < 2 {
		errs = append(errs, fmt.Errorf("%s.max_users must be >= 2", prefix))
	}
	if c.History < c.Window {
		errs = append(errs, fmt.Errorf("%s.history must be >= %s.window (%d)", prefix, prefix, c.Window))
	}
	if !(c.RecencyDecay > 0 && c.RecencyDecay <= 1) {
		errs = append(errs, fmt.Errorf("%s.recency_decay must be > 0 and <= 1", prefix))
	}
	if c.Lookback < 0 {
		errs = append(errs, fmt.Errorf("%s.lookback must be >= 0", prefix))
	}
	return errors.Join(errs...)
}

// Candidate is an item scored by co-occurrence with a user's window or with
// one item.
type Candidate struct {
	ItemID string
	Score  float64
	// Because is the item of the user's window that contributes most to
	// Score (for explanations; ties: the newest); "" for Similar.
	Because string
}

// Tracker keeps the co-occurrence counts and the users' windows (see the
// package doc). Safe for concurrent use, meant for one writer and many
// readers: Observe takes the write lock, the queries a read lock for at most
// Window × 2·Neighbours map reads, and call skip without holding it (so
// skip may call the tracker).
type Tracker struct {
	window, neighbours, maxItems, halfUsers, history int
	// weight[p] is the weight of the p-th newest window item.
	weight []float64

	mu    sync.RWMutex
	ids   map[string]int32
	names []string // by index; only appended to, so a copy of the header may be read unlocked
	items []item   // by index
	// Two generations of windows (item indexes, newest first): users fills
	// to MaxUsers/2, then becomes oldUsers (dropping the older one). Observe
	// moves a user found in oldUsers back to users.
	users, oldUsers map[string]*window
	pairs           int    // counts across items
	pruneBuf        []pair // prune's scratch

	scratch sync.Pool // *scratch for Recommend and Similar

	dropped prometheus.Counter
	pruned  prometheus.Counter
}

type item struct {
	n  uint32           // times it entered a window
	co map[int32]uint32 // co(this, index)
}

type pair struct {
	j int32
	c uint32
}

// NewTracker returns an empty tracker for cfg, registering its metrics on
// reg (nil: not registered).
func NewTracker(cfg Config, reg prometheus.Registerer) (*Tracker, error) {
	if err := cfg.Validate("cooccurrence"); err != nil {
		return nil, err
	}
	t := &Tracker{
		window:     cfg.Window,
		neighbours: cfg.Neighbours,
		maxItems:   cfg.MaxItems,
		halfUsers:  cfg.MaxUsers / 2,
		history:    cfg.History,
		weight:     make([]float64, cfg.Window),
		ids:        map[string]int32{},
		users:      map[string]*window{},
		oldUsers:   map[string]*window{},
		scratch:    sync.Pool{New: func() any { return new(scratch) }},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamrec_cooccur_dropped_items_total",
			Help: "Interactions with new items not tracked because cooccurrence.max_items items are tracked.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamrec_cooccur_pruned_entries_total",
			Help: "Co-occurrence counts dropped by pruning items' lists to cooccurrence.neighbours.",
		}),
	}
	for p := range t.weight {
		t.weight[p] = math.Pow(cfg.RecencyDecay, float64(p))
	}
	gauge := func(name, help string, f func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			t.mu.RLock()
			defer t.mu.RUnlock()
			return float64(f())
		})
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{
			gauge("streamrec_cooccur_items", "Items tracked.", func() int { return len(t.names) }),
			gauge("streamrec_cooccur_users", "Users' windows held (both generations).", func() int { return len(t.users) + len(t.oldUsers) }),
			gauge("streamrec_cooccur_pairs", "Co-occurrence counts held, across items.", func() int { return t.pairs }),
			t.dropped, t.pruned,
		} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// Observe records that user interacted with item (any event type with an
// item). An item already in the user's window only moves to its front;
// otherwise it co-occurs with every item of the window, n(item) grows and
// it enters the window, the oldest leaving beyond Window. Empty ids, and
// new items once MaxItems are tracked, are ignored.
func (t *Tracker) Observe(user, itemID string) {
	if user == "" || itemID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.ids[itemID]
	if !ok {
		if len(t.names) >= t.maxItems {
			t.dropped.Inc()
			return
		}
		id := strings.Clone(itemID)
		j = int32(len(t.names))
		t.ids[id] = j
		t.names = append(t.names, id)
		t.items = append(t.items, item{})
	}
	// The map keys are the windows' own copies of the ids: assigning to an
	// existing string key would store the caller's string instead.
	uw, ok := t.users[user]
	if !ok {
		if uw, ok = t.oldUsers[user]; ok {
			delete(t.oldUsers, user)
		} else {
			uw = &window{user: strings.Clone(user)}
		}
		if len(t.users) >= t.halfUsers {
			old := t.oldUsers
			clear(old)
			t.oldUsers, t.users = t.users, old
		}
		t.users[uw.user] = uw
	}
	h := uw.items
	p := slices.Index(h, j)
	if p < 0 || p >= t.window {
		// New to the window: it co-occurs with the window's items.
		for _, i := range h[:min(len(h), t.window)] {
			t.incr(i, j)
			t.incr(j, i)
		}
		t.items[j].n++
	}
	if p < 0 {
		if len(h) < t.history {
			h = append(h, 0)
		}
		p = len(h) - 1
	}
	copy(h[1:p+1], h[:p])
	h[0] = j
	uw.items = h
}

// window is a user's history: item indexes, newest first, the first Window
// of them the window.
type window struct {
	user  string // the map key
	items []int32
}

// incr adds one to co(i, j), pruning i's list when it reaches 2×Neighbours.
// The caller holds mu.
func (t *Tracker) incr(i, j int32) {
	m := t.items[i].co
	if m == nil {
		m = map[int32]uint32{}
		t.items[i].co = m
	}
	c, ok := m[j]
	m[j] = c + 1
	if !ok {
		t.pairs++
		if len(m) >= 2*t.neighbours {
			t.prune(m)
		}
	}
}

// prune keeps the Neighbours largest counts of m, ties by the smaller
// index: O(Neighbours) every Neighbours new entries. The map is cleared and
// refilled rather than deleted from, so that it keeps no tombstones to
// probe past. The caller holds mu.
func (t *Tracker) prune(m map[int32]uint32) {
	s := t.pruneBuf[:0]
	for j, c := range m {
		s = append(s, pair{j, c})
	}
	selectTop(s, t.neighbours)
	clear(m)
	for _, p := range s[:t.neighbours] {
		m[p.j] = p.c
	}
	n := len(s) - t.neighbours
	t.pairs -= n
	t.pruned.Add(float64(n))
	t.pruneBuf = s
}

// before orders pairs largest count first, ties by the smaller index.
func before(a, b pair) bool {
	return a.c > b.c || a.c == b.c && a.j < b.j
}

// selectTop reorders s so that s[:k] holds its k first pairs by before, in
// no particular order (quickselect, median-of-three pivots; expected
// O(len(s))). 0 < k < len(s).
func selectTop(s []pair, k int) {
	lo, hi := 0, len(s)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if before(s[mid], s[lo]) {
			s[lo], s[mid] = s[mid], s[lo]
		}
		if before(s[hi], s[lo]) {
			s[lo], s[hi] = s[hi], s[lo]
		}
		if before(s[mid], s[hi]) {
			s[mid], s[hi] = s[hi], s[mid]
		}
		p, i := s[hi], lo
		for j := lo; j < hi; j++ {
			if before(s[j], p) {
				s[i], s[j] = s[j], s[i]
				i++
			}
		}
		s[i], s[hi] = s[hi], s[i]
		switch {
		case i == k:
			return
		case i < k:
			lo = i + 1
		default:
			hi = i - 1
		}
	}
}

// userWindow is user's window, nil and false if unknown. The caller holds
// mu (read or write).
func (t *Tracker) userWindow(user string) ([]int32, bool) {
	h, ok := t.userHistory(user)
	return h[:min(len(h), t.window)], ok
}

// userHistory is user's history (the window first), nil and false if
// unknown. The caller holds mu (read or write).
func (t *Tracker) userHistory(user string) ([]int32, bool) {
	if w, ok := t.users[user]; ok {
		return w.items, true
	}
	if w, ok := t.oldUsers[user]; ok {
		return w.items, true
	}
	return nil, false
}

// cosine is item i's contribution co/sqrt(n(i)·n(j)) to j's score; the one
// expression Recommend, Similar and Score share, so they agree exactly.
func cosine(co, ni, nj uint32) float64 {
	return float64(co) / math.Sqrt(float64(ni)*float64(nj))
}

// scored is a candidate by index.
type scored struct {
	j, because int32
	score      float64
}

// scratch is a query's working memory, pooled: Recommend's sums are dense,
// by item index (8 bytes an item, zero between uses).
type scratch struct {
	scores  []float64 // Recommend's sums
	touched []int32   // the indexes with a sum
	window  []int32   // Recommend's copy of the user's history, then window
	all     []scored  // Similar's candidates
	heap    []scored  // the n best so far, worst at the root
}

// Recommend scores every item j co-occurring with the user's window items i,
// score(j) = Σ_i d^p(i)·co(i,j)/sqrt(n(i)·n(j)) (see the package doc),
// skipping the user's history (the window among it) and the items for
// which skip is true (skip may be nil), and returns the n best,
// ties by item id ascending. An unknown user, or n <= 0, gets nil.
//
// The reasons (Because) are found after skip has run, under a second read
// lock: an Observe in between may change them (or, rarely, leave one "").
func (t *Tracker) Recommend(user string, n int, skip func(itemID string) bool) []Candidate {
	if n <= 0 {
		return nil
	}
	s := t.scratch.Get().(*scratch)
	defer t.putScratch(s)
	t.mu.RLock()
	h, ok := t.userHistory(user)
	if !ok {
		t.mu.RUnlock()
		return nil
	}
	w := h[:min(len(h), t.window)]
	if len(t.items) > cap(s.scores) {
		s.scores = make([]float64, len(t.items), cap(t.items))
	}
	s.scores = s.scores[:len(t.items)]
	scores := s.scores
	for p, i := range w {
		it, wt := &t.items[i], t.weight[p]
		for j, c := range it.co {
			if scores[j] == 0 {
				s.touched = append(s.touched, j)
			}
			scores[j] += wt * cosine(c, it.n, t.items[j].n)
		}
	}
	s.window = append(s.window[:0], h...)
	names := t.names
	t.mu.RUnlock()

	for _, i := range s.window { // the whole history
		scores[i] = 0
	}
	s.window = s.window[:len(w)]
	for _, j := range s.touched {
		if x := scores[j]; x > 0 {
			s.push(scored{j: j, score: x}, n, names, skip)
		}
	}
	if len(s.heap) > 0 {
		// Only the winners' reasons: n × Window reads.
		t.mu.RLock()
		for k := range s.heap {
			s.heap[k].because = t.because(s.window, s.heap[k].j)
		}
		t.mu.RUnlock()
	}
	return s.result(names, true)
}

// because is the item of window contributing most to j's score (ties: the
// newest), -1 if none. The caller holds mu.
func (t *Tracker) because(window []int32, j int32) int32 {
	best, top := int32(-1), 0.0
	nj := t.items[j].n
	for p, i := range window {
		if c := t.items[i].co[j]; c > 0 {
			if x := t.weight[p] * cosine(c, t.items[i].n, nj); x > top {
				best, top = i, x
			}
		}
	}
	return best
}

// Similar returns the n items with the highest co(item,j)/sqrt(n(item)·n(j)),
// ties by id ascending, skipping those for which skip is true (skip may be
// nil). An unknown item, or n <= 0, gets nil.
func (t *Tracker) Similar(itemID string, n int, skip func(itemID string) bool) []Candidate {
	if n <= 0 {
		return nil
	}
	s := t.scratch.Get().(*scratch)
	defer t.putScratch(s)
	t.mu.RLock()
	i, ok := t.ids[itemID]
	if !ok {
		t.mu.RUnlock()
		return nil
	}
	it := &t.items[i]
	for j, c := range it.co {
		s.all = append(s.all, scored{j: j, score: cosine(c, it.n, t.items[j].n)})
	}
	names := t.names
	t.mu.RUnlock()
	for _, c := range s.all {
		s.push(c, n, names, skip)
	}
	return s.result(names, false)
}

// Score returns, for each of items in order, the score Recommend gives it
// for user (0 if none), with its Because. Unlike Recommend it also scores
// items of the user's window.
func (t *Tracker) Score(user string, items []string) []Candidate {
	out := make([]Candidate, len(items))
	t.mu.RLock()
	defer t.mu.RUnlock()
	w, _ := t.userWindow(user)
	for k, id := range items {
		out[k].ItemID = id
		j, ok := t.ids[id]
		if !ok || len(w) == 0 {
			continue
		}
		// One pass for the score and its reason, chosen as because does.
		nj := t.items[j].n
		var score, top float64
		best := int32(-1)
		for p, i := range w {
			if c := t.items[i].co[j]; c > 0 {
				x := t.weight[p] * cosine(c, t.items[i].n, nj)
				score += x
				if x > top {
					best, top = i, x
				}
			}
		}
		if best >= 0 {
			out[k].Because = t.names[best]
		}
		out[k].Score = score
	}
	return out
}

// Window returns a copy of user's window, newest first; nil for an unknown
// user.
func (t *Tracker) Window(user string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	w, ok := t.userWindow(user)
	if !ok {
		return nil
	}
	return t.ids2names(w)
}

// History returns a copy of user's history (the History latest distinct
// items, the window first), newest first; nil for an unknown user.
func (t *Tracker) History(user string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	h, ok := t.userHistory(user)
	if !ok {
		return nil
	}
	return t.ids2names(h)
}

// ids2names maps item indexes to ids. The caller holds mu.
func (t *Tracker) ids2names(idx []int32) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = t.names[i]
	}
	return out
}

func (t *Tracker) putScratch(s *scratch) {
	for _, j := range s.touched {
		s.scores[j] = 0
	}
	s.touched, s.all, s.heap = s.touched[:0], s.all[:0], s.heap[:0]
	t.scratch.Put(s)
}

// better orders candidates best first: higher score, then smaller id.
func better(a, b scored, names []string) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return names[a.j] < names[b.j]
}

// push offers c to the heap of the n best seen (worst at the root), unless
// skip rejects it.
func (s *scratch) push(c scored, n int, names []string, skip func(string) bool) {
	h := s.heap
	if len(h) == n && !better(c, h[0], names) {
		return
	}
	if skip != nil && skip(names[c.j]) {
		return
	}
	if len(h) < n {
		h = append(h, c)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !better(h[p], h[i], names) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		s.heap = h
		return
	}
	h[0] = c
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(h) && better(h[m], h[l], names) {
			m = l
		}
		if r := l + 1; r < len(h) && better(h[m], h[r], names) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// result is the heap's candidates, best first.
func (s *scratch) result(names []string, because bool) []Candidate {
	if len(s.heap) == 0 {
		return nil
	}
	slices.SortFunc(s.heap, func(a, b scored) int {
		switch {
		case better(a, b, names):
			return -1
		case better(b, a, names):
			return 1
		}
		return 0
	})
	out := make([]Candidate, len(s.heap))
	for k, c := range s.heap {
		out[k] = Candidate{ItemID: names[c.j], Score: c.score}
		if because && c.because >= 0 {
			out[k].Because = names[c.because]
		}
	}
	return out
}
