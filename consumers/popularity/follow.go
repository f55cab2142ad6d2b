package popularity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/schemas"
)

// Filter returns the events of one fetch that count, in order; it may reuse
// evs' backing array. Follow calls it on its own goroutine with every event
// of a fetch that decodes (those naming no item too, in offset order per
// partition) and counts what it returns at once: there is no sink to
// confirm, so a Filter commits whatever state it keeps before it returns.
// The serving consumer passes (*clickstream.Quality).Filter, so that state
// built from the raw clickstream counts what the clickstream consumer keeps.
type Filter func(evs []schemas.ClickEvent) []schemas.ClickEvent

// Follow feeds t from the clickstream topic until ctx is done, then returns
// nil. It reads without a consumer group (each replica builds its own
// popularity), from the first record stamped at or after now-lookback in
// every partition. Events that do not decode with limits (the clickstream
// consumer's, but for the age, which the lookback bounds) are skipped, and
// so are those keep drops (nil keeps every event). An item's category path
// comes from its point behind itemsAlias in store (cached for up to t's
// MaxItems items; an item the store does not know counts overall only, and
// is looked up again next time). Each observer then gets the kept events
// naming an item of each fetch that decoded any event naming an item (none,
// when keep dropped them all), in offset order per partition, on Follow's
// goroutine (the serving consumer's co-occurrence tracker is one); the
// slice is reused after the call. An error is returned only when the client
// cannot be built.
//
// The topic can hold the same event more than once: a producer's retry, a
// replay, and on the embedded broker with broker.sync_writes a kill -9. With
// sync_writes the broker fsyncs every produced batch before acknowledging it,
// so a kill loses nothing acknowledged, but kfake saves idempotent
// producers' sequence windows only on a clean shutdown: after a kill -9, a
// producer's retry of a batch that was written but not acknowledged is
// appended again, the same event ids at new offsets. Without a keep that
// drops duplicate ids (the clickstream consumer's dedup window), Follow
// counts them twice. The rate guard judges by event time, so a replay from
// now-lookback is judged as the events were when live (but for each user's
// first events: the follower starts every user with a full bucket).
func Follow(ctx context.Context, kc kafka.Config, topic string, lookback time.Duration, store pipeline.VectorStore, itemsAlias string, t *Tracker, limits schemas.Limits, keep Filter, log *slog.Logger, observers ...func([]schemas.ClickEvent)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := kc.Opts(log)
	if err != nil {
		return fmt.Errorf("popularity: kafka options: %w", err)
	}
	from := time.Now().Add(-lookback)
	opts = append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(from.UnixMilli())),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("popularity: kafka client: %w", err)
	}
	defer cl.Close()
	log.Info("popularity: following the clickstream", "topic", topic, "from", from)

	cats := newCategoryCache(t.max)
	lim := limits
	lim.MaxAge = 0 // the lookback bounds the age; older events decay away
	var evs []schemas.ClickEvent
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, part int32, err error) {
			log.Warn("popularity: fetch", "topic", topic, "partition", part, "err", err)
		})
		now := time.Now()
		evs = evs[:0]
		skipped, named := 0, 0
		fs.EachRecord(func(r *kgo.Record) {
			ev, err := schemas.DecodeClick(r.Value, now, lim)
			if err != nil {
				skipped++
				return
			}
			if ev.ItemID != "" {
				named++
			}
			evs = append(evs, ev)
		})
		if skipped > 0 {
			log.Debug("popularity: skipped invalid events", "n", skipped)
		}
		// Every decoded event is judged, those naming no item too (a
		// search spends its user's tokens), as the clickstream consumer
		// judges them.
		if keep != nil && len(evs) > 0 {
			n := len(evs)
			evs = keep(evs)
			if dropped := n - len(evs); dropped > 0 {
				log.Debug("popularity: dropped duplicate or rate-limited events", "n", dropped)
			}
		}
		if named == 0 {
			continue
		}
		evs = slices.DeleteFunc(evs, func(ev schemas.ClickEvent) bool { return ev.ItemID == "" })
		if err := cats.fill(ctx, store, itemsAlias, evs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("popularity: item categories unavailable; counting these events overall only", "items", len(evs), "err", err)
		}
		for _, ev := range evs {
			t.Observe(ev.ItemID, cats.get(ev.ItemID), ev.Type, ev.Timestamp)
		}
		for _, o := range observers {
			o(evs)
		}
	}
}

// categoryCache maps item ids to category paths, bounded: when full, an
// arbitrary tenth is dropped. Owned by one goroutine.
type categoryCache struct {
	max int
	m   map[string][]string
}

func newCategoryCache(maxItems int) *categoryCache {
	return &categoryCache{max: maxItems, m: map[string][]string{}}
}

func (c *categoryCache) get(id string) []string { return c.m[id] }

// fill looks up, in one call, the items of evs not cached yet. Items the
// store does not have stay uncached; a cached item keeps its path until it
// is dropped (category moves are rare). A missing items collection is not an
// error (no catalog yet).
func (c *categoryCache) fill(ctx context.Context, store pipeline.VectorStore, alias string, evs []schemas.ClickEvent) error {
	var ids []string
	asked := map[string]bool{}
	for _, ev := range evs {
		if _, ok := c.m[ev.ItemID]; !ok && !asked[ev.ItemID] {
			asked[ev.ItemID] = true
			ids = append(ids, ev.ItemID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	pts, err := store.Get(ctx, alias, ids)
	if errors.Is(err, pipeline.ErrNoCollection) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %d items from %s: %w", len(ids), alias, err)
	}
	for _, p := range pts {
		if len(c.m) >= c.max {
			drop := max(1, c.max/10)
			for id := range c.m {
				delete(c.m, id)
				if drop--; drop == 0 {
					break
				}
			}
		}
		cats, _ := p.Payload[pipeline.PayloadCategory].([]string)
		c.m[p.ID] = slices.Clone(cats)
	}
	return nil
}
