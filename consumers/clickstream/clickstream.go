// Package clickstream is the consumer kind for shop.clickstream.v1: it
// decodes and validates every event, dead-letters the invalid ones with
// their reason, drops duplicates and dead-letters suspected bots (Quality),
// writes the rest to the analytics store and counts them by event type.
//
// Profile updates (issue 6) plug in as a further handler of the kept events
// (Options.Then).
package clickstream

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// NewTally returns the tally of clickstream events by type, exported as
// streamrec_clickstream_events_total{type}.
func NewTally(reg prometheus.Registerer) *consumers.Tally {
	return consumers.NewTally("clickstream", reg, "streamrec_clickstream_events_total",
		"Valid clickstream events consumed, by type.", "type")
}

// Options are the clickstream sink's parts. Tally is required; the others
// are optional.
type Options struct {
	Limits schemas.Limits
	// Now is the clock timestamps are checked against (nil: time.Now).
	Now   func() time.Time
	Tally *consumers.Tally
	// Quality drops duplicates and dead-letters rate-limited events (nil:
	// every valid event is kept).
	Quality *Quality
	// Analytics receives the kept events (nil: they are only counted).
	Analytics pipeline.Analytics
	// Then, if not nil, runs after Analytics with the kept events and their
	// records (the profile updater); its error fails the batch like the
	// sink's (the runtime retries it), so it must be idempotent.
	Then func(ctx context.Context, kept []consumers.Event[schemas.ClickEvent]) error
}

// NewSink returns the clickstream sink. A batch is confirmed (and its
// offsets committed) only once its kept events are durable in Analytics.
func NewSink(o Options) pipeline.Sink {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return consumers.Typed[schemas.ClickEvent]{
		Decode: func(data []byte) (schemas.ClickEvent, error) { return schemas.DecodeClick(data, now(), o.Limits) },
		Handle: func(ctx context.Context, evs []consumers.Event[schemas.ClickEvent], res *pipeline.Result) error {
			return handle(ctx, o, evs, res)
		},
	}
}

func handle(ctx context.Context, o Options, evs []consumers.Event[schemas.ClickEvent], res *pipeline.Result) error {
	events := make([]schemas.ClickEvent, len(evs))
	for i, ev := range evs {
		events[i] = ev.Value
	}
	kept, keptEvs := events, evs
	commit := func() {}
	if o.Quality != nil {
		var verdicts []Verdict
		verdicts, commit = o.Quality.Check(events, make([]Verdict, 0, len(events)))
		kept = make([]schemas.ClickEvent, 0, len(events))
		keptEvs = make([]consumers.Event[schemas.ClickEvent], 0, len(events))
		for i, v := range verdicts {
			switch v {
			case Keep:
				kept = append(kept, events[i])
				keptEvs = append(keptEvs, evs[i])
			case Limited:
				rl := o.Quality.cfg.RateLimit
				res.Reject(evs[i].Record, fmt.Errorf("%w: user %q above %g events/s (burst %d)",
					ErrRateLimited, events[i].UserID, rl.EventsPerSecond, rl.Burst))
			}
		}
	}
	if o.Analytics != nil && len(kept) > 0 {
		if err := o.Analytics.InsertEvents(ctx, kept); err != nil {
			return fmt.Errorf("clickstream: insert %d events: %w", len(kept), err)
		}
	}
	if o.Then != nil && len(keptEvs) > 0 {
		if err := o.Then(ctx, keptEvs); err != nil {
			return err
		}
	}
	commit()
	for _, ev := range kept {
		o.Tally.Add(string(ev.Type), 1)
	}
	return nil
}
