package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Updater folds clickstream events into users' profiles. Its Handle is the
// clickstream sink's Options.Then.
//
// The vector of a profile is exact: with touches i of weight w_i (by event
// type) at event times t_i of items with unit vectors v_i, the stored sum
// at the reference time T (the newest event time applied) is
// Σ w_i·2^(-(T-t_i)/HalfLife)·v_i, whatever the order and batching of the
// events (event times count to the millisecond); the point's vector is its
// direction.
//
// It pins the items collection the alias named at NewUpdater: item vectors
// are read from it and profiles written to the users collection of its
// model version, so a profile never mixes two models' vectors. After a
// re-embedding moves the items alias, a new Updater (a restart) moves
// UsersAlias to the new version's users collection, where profile vectors
// start afresh.
//
// Safe for concurrent use by one goroutine per partition: the clickstream
// is keyed by user_id, so concurrent calls touch disjoint users.
type Updater struct {
	store pipeline.VectorStore
	items string // items collection, resolved from the alias
	users string // users collection
	dim   int
	cfg   Config
	// halfLifeMs is cfg.HalfLife in milliseconds.
	halfLifeMs float64
	log        *slog.Logger
	metrics    metrics
}

type metrics struct {
	updates, skipped, missing prometheus.Counter
}

// NewUpdater resolves itemsAlias to the items collection (items_<version>),
// checks it has vectors of dim, creates the users collection of the same
// version with dim and points UsersAlias at it. log and reg may be nil.
func NewUpdater(ctx context.Context, store pipeline.VectorStore, itemsAlias string, dim int, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Updater, error) {
	if err := cfg.Validate("profiles"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	items, err := store.ResolveAlias(ctx, itemsAlias)
	if err != nil {
		return nil, fmt.Errorf("profiles: resolve items alias %s: %w", itemsAlias, err)
	}
	// Ensuring an existing collection checks its dimension.
	if err := store.EnsureCollection(ctx, items, dim); err != nil {
		return nil, fmt.Errorf("profiles: items collection %s with dim %d: %w", items, dim, err)
	}
	users := UsersCollection(strings.TrimPrefix(items, "items_"))
	if err := store.EnsureCollection(ctx, users, dim); err != nil {
		return nil, fmt.Errorf("profiles: users collection %s: %w", users, err)
	}
	prev, resolveErr := store.ResolveAlias(ctx, UsersAlias)
	if resolveErr != nil || prev != users {
		if err := store.SetAlias(ctx, UsersAlias, users); err != nil {
			return nil, fmt.Errorf("profiles: alias %s -> %s: %w", UsersAlias, users, err)
		}
		if resolveErr == nil {
			log.Info("profiles: users alias moved to the items' model version", "from", prev, "to", users)
		}
	}
	u := &Updater{
		store: store, items: items, users: users, dim: dim, cfg: cfg,
		halfLifeMs: float64(cfg.HalfLife) / 1e6,
		log:        log,
		metrics: metrics{
			updates: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "streamrec_profiles_updates_total",
				Help: "Clickstream events applied to user profiles.",
			}),
			skipped: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "streamrec_profiles_skipped_total",
				Help: "Clickstream events skipped because their user's profile already holds their offset (replays).",
			}),
			missing: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "streamrec_profiles_items_missing_total",
				Help: "Applied events whose item had no vector (counted as touches, not in the profile vector).",
			}),
		},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{u.metrics.updates, u.metrics.skipped, u.metrics.missing} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("profiles: register metrics: %w", err)
			}
		}
	}
	return u, nil
}

// Collection is the users collection the updater writes.
func (u *Updater) Collection() string { return u.users }

// ItemsCollection is the items collection the updater reads vectors from.
func (u *Updater) ItemsCollection() string { return u.items }

// Handle applies a batch of kept clickstream events, in offset order, to
// their users' profiles: one Get of the users, one Get of the items, one
// Upsert of the changed users. When it returns nil the profiles are
// durable. It is idempotent: an event at or below the offset a profile
// holds for its partition is skipped, so a retried or replayed batch never
// counts twice. An error means some, all or none of the users may be
// written; retrying the batch is safe.
func (u *Updater) Handle(ctx context.Context, evs []consumers.Event[schemas.ClickEvent]) error {
	if len(evs) == 0 {
		return nil
	}
	byUser := make(map[string][]int, len(evs))
	var order []string
	for i, ev := range evs {
		id := ev.Value.UserID
		if _, ok := byUser[id]; !ok {
			order = append(order, id)
		}
		byUser[id] = append(byUser[id], i)
	}
	stored, err := u.store.Get(ctx, u.users, order)
	if err != nil {
		return fmt.Errorf("profiles: read %d users from %s: %w", len(order), u.users, err)
	}
	states := make(map[string]*state, len(order))
	for _, p := range stored {
		s, err := decodeState(p, u.dim)
		if err != nil {
			return fmt.Errorf("profiles: %s: %w", u.users, err)
		}
		states[p.ID] = s
	}

	// Decide which events apply, and which items they need.
	var skipped int
	apply := make(map[string][]int, len(order))
	var itemIDs []string
	seenItem := map[string]bool{}
	for _, id := range order {
		s := states[id]
		if s == nil {
			s = &state{id: id}
			states[id] = s
		}
		for _, i := range byUser[id] {
			rec := evs[i].Record
			if s.hasSrc && rec.Partition == s.part && rec.Offset <= s.off {
				skipped++
				continue
			}
			if s.hasSrc && rec.Partition != s.part {
				u.log.Warn("profiles: user's events moved to another partition (was the clickstream repartitioned?)",
					"user", id, "from", s.part, "to", rec.Partition)
			}
			s.part, s.off, s.hasSrc = rec.Partition, rec.Offset, true
			apply[id] = append(apply[id], i)
			item := evs[i].Value.ItemID
			if item != "" && u.cfg.Weights.Of(evs[i].Value.Type) > 0 && !seenItem[item] {
				seenItem[item] = true
				itemIDs = append(itemIDs, item)
			}
		}
	}
	if len(apply) == 0 {
		u.metrics.skipped.Add(float64(skipped))
		return nil
	}

	vecs := make(map[string][]float64, len(itemIDs))
	if len(itemIDs) > 0 {
		pts, err := u.store.Get(ctx, u.items, itemIDs)
		if errors.Is(err, pipeline.ErrNoCollection) {
			// Dropped after a re-embedding: touches still count; vectors
			// resume with the next Updater on the new version.
			u.log.Warn("profiles: items collection is gone; restart to follow the items alias", "collection", u.items)
		} else if err != nil {
			return fmt.Errorf("profiles: read %d items from %s: %w", len(itemIDs), u.items, err)
		}
		for _, p := range pts {
			if v := unit(p.Vector); v != nil && len(v) == u.dim {
				vecs[p.ID] = v
			}
		}
	}

	var applied, missing int
	points := make([]pipeline.Point, 0, len(apply))
	for _, id := range order {
		idx := apply[id]
		if len(idx) == 0 {
			continue
		}
		s := states[id]
		for _, i := range idx {
			ev := evs[i].Value
			w := u.cfg.Weights.Of(ev.Type)
			vec := vecs[ev.ItemID]
			if ev.ItemID != "" && w > 0 && vec == nil {
				missing++
			}
			u.apply(s, ev, w, vec)
			applied++
		}
		points = append(points, s.point(u.dim))
	}
	if err := u.store.Upsert(ctx, u.users, points); err != nil {
		return fmt.Errorf("profiles: upsert %d users into %s: %w", len(points), u.users, err)
	}
	u.metrics.updates.Add(float64(applied))
	u.metrics.skipped.Add(float64(skipped))
	u.metrics.missing.Add(float64(missing))
	return nil
}

// apply folds one event into s: the sum and mass are decayed to the newer
// of their reference time and the event's, the event's weight (decayed to
// that reference) is added with its item's unit vector vec (nil: the item
// has none), and the touch is recorded.
func (u *Updater) apply(s *state, ev schemas.ClickEvent, w float64, vec []float64) {
	at := ev.Timestamp.UnixMilli()
	if !s.hasRef {
		s.ref, s.hasRef = at, true
	}
	if at > s.ref {
		k := math.Exp2(-float64(at-s.ref) / u.halfLifeMs)
		for i := range s.sum {
			s.sum[i] *= k
		}
		s.mass *= k
		s.ref = at
	} else if at < s.ref {
		w *= math.Exp2(-float64(s.ref-at) / u.halfLifeMs)
	}
	if vec != nil && w > 0 {
		if s.sum == nil {
			s.sum = make([]float64, len(vec))
		}
		for i, f := range vec {
			s.sum[i] += w * f
		}
		s.mass += w
	}
	if ev.ItemID == "" {
		return
	}
	if u.cfg.MaxRecent > 0 {
		t := touch{typ: ev.Type, item: ev.ItemID, at: at}
		// Newest first; a touch goes before older and equally old ones.
		pos := len(s.recent)
		for i, r := range s.recent {
			if r.at <= at {
				pos = i
				break
			}
		}
		if pos < u.cfg.MaxRecent {
			s.recent = slices.Insert(s.recent, pos, t)
			if len(s.recent) > u.cfg.MaxRecent {
				s.recent = s.recent[:u.cfg.MaxRecent]
			}
		}
	}
	if ev.Type == schemas.EventPurchase && u.cfg.MaxPurchased > 0 {
		s.purchased = slices.DeleteFunc(s.purchased, func(id string) bool { return id == ev.ItemID })
		s.purchased = slices.Insert(s.purchased, 0, ev.ItemID)
		if len(s.purchased) > u.cfg.MaxPurchased {
			s.purchased = s.purchased[:u.cfg.MaxPurchased]
		}
	}
}

// unit returns v scaled to unit length in float64, or nil for an empty or
// zero vector.
func unit(v []float32) []float64 {
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return nil
	}
	inv := 1 / math.Sqrt(ss)
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f) * inv
	}
	return out
}
