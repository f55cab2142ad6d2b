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

// Follow feeds t from the clickstream topic until ctx is done, then returns
// nil. It reads without a consumer group (each replica builds its own
// popularity), from the first record stamped at or after now-lookback in
// every partition. Events that do not decode with limits (the clickstream
// consumer's, but for the age, which the lookback bounds) are skipped; an
// item's category path comes from its point behind itemsAlias in store
// (cached for up to t's MaxItems items; an item the store does not know
// counts overall only, and is looked up again next time). Each observer then gets the
// events of each fetch that name an item, in offset order per partition,
// on Follow's goroutine (the serving consumer's co-occurrence tracker is
// one). An error is returned only when the client cannot be built.
func Follow(ctx context.Context, kc kafka.Config, topic string, lookback time.Duration, store pipeline.VectorStore, itemsAlias string, t *Tracker, limits schemas.Limits, log *slog.Logger, observers ...func([]schemas.ClickEvent)) error {
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
		evs, skipped := evs[:0], 0
		fs.EachRecord(func(r *kgo.Record) {
			ev, err := schemas.DecodeClick(r.Value, now, lim)
			if err != nil {
				skipped++
				return
			}
			if ev.ItemID != "" {
				evs = append(evs, ev)
			}
		})
		if skipped > 0 {
			log.Debug("popularity: skipped invalid events", "n", skipped)
		}
		if len(evs) == 0 {
			continue
		}
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
