// Package synth generates realistic synthetic shop traffic and produces it
// through a producers.Producer: a catalog of items with English (and some
// Chinese) product text, and a clickstream of user sessions that search,
// view, click, add to cart and buy, with Zipf-distributed item popularity.
// It drives `streamrec produce`.
package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	pbar "github.com/streamrec/streamrec/internal/progress"
	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/schemas"
)

// Report is what a Run produced.
type Report struct {
	// CatalogItems is the number of catalog changes sent.
	CatalogItems int
	// Events counts the clickstream events sent per type, duplicates
	// included.
	Events map[schemas.EventType]int
	// Duplicates is the number of events sent a second time.
	Duplicates int
	// Sent, Delivered and Failed count the records (items and events) the
	// Producer sent during the run, and their delivery results.
	Sent, Delivered, Failed int64
	// Rate is the achieved clickstream rate in events per second.
	Rate float64
	// Elapsed is the whole run, catalog and drain included.
	Elapsed time.Duration
}

// EventsSent is the number of clickstream events sent.
func (r Report) EventsSent() int {
	n := 0
	for _, c := range r.Events {
		n += c
	}
	return n
}

// String summarises r on one line.
func (r Report) String() string {
	types := make([]string, 0, len(r.Events))
	for _, t := range slices.Sorted(maps.Keys(r.Events)) {
		types = append(types, fmt.Sprintf("%s %d", t, r.Events[t]))
	}
	return fmt.Sprintf("%d items and %d events (%s; %d duplicates) sent at %.1f events/s; %d delivered, %d failed in %s",
		r.CatalogItems, r.EventsSent(), strings.Join(types, ", "), r.Duplicates, r.Rate, r.Delivered, r.Failed,
		r.Elapsed.Round(time.Millisecond))
}

// Run generates cfg's catalog and, when cfg.SendCatalog is set, sends it and
// waits for its delivery. It then sends the clickstream at cfg.Rate events per
// second, paced evenly, until cfg.Duration has passed or cfg.Events are sent,
// and waits for every delivery. A progress bar is drawn on progress unless it
// is nil.
//
// Cancelling ctx stops generation early; Run still waits up to
// cfg.DrainTimeout for what it sent, then returns the report with ctx's error.
// The error also joins every delivery error (see producers.Producer.Flush).
// The report's Sent, Delivered and Failed are differences of p.Stats, so
// they include records others send through p meanwhile.
func Run(ctx context.Context, p *producers.Producer, cfg Config, progress io.Writer) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	start, before := time.Now(), p.Stats()
	rep := Report{Events: make(map[schemas.EventType]int)}

	// Records are sent with sendCtx, which outlives ctx so that a stopped run
	// drains: it ends DrainTimeout after generation stops (or ctx ends while
	// a send is blocked on a full buffer), failing what is still unsent.
	sendCtx, cancelSend := context.WithCancelCause(context.WithoutCancel(ctx))
	stopped, finished := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		t := time.NewTimer(cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSend(fmt.Errorf("produce.drain_timeout (%s) passed", cfg.DrainTimeout))
		case <-finished:
			cancelSend(nil)
		}
	})
	defer wg.Wait()
	defer close(finished)

	cat := NewCatalog(cfg, start)
	var err error
	if cfg.SendCatalog {
		rep.CatalogItems, err = sendCatalog(ctx, sendCtx, p, cat, progress)
		if err == nil {
			err = p.Flush(sendCtx)
		}
	}
	if err == nil {
		err = stream(ctx, sendCtx, p, NewTraffic(cat, cfg), cfg, &rep, progress)
	}
	close(stopped)
	err = errors.Join(err, p.Flush(sendCtx), context.Cause(sendCtx), ctx.Err())

	after := p.Stats()
	rep.Sent, rep.Delivered, rep.Failed = after.Sent-before.Sent, after.Delivered-before.Delivered, after.Failed-before.Failed
	rep.Elapsed = time.Since(start)
	return rep, err
}

// sendCatalog sends cat's items until done or ctx ends.
func sendCatalog(ctx, sendCtx context.Context, p *producers.Producer, cat *Catalog, progress io.Writer) (int, error) {
	bar := pbar.New(progress, int64(len(cat.Items)), "catalog", "items")
	n := 0
	for _, it := range cat.Items {
		if ctx.Err() != nil {
			break
		}
		if err := p.SendCatalog(sendCtx, it, nil); err != nil {
			return n, err
		}
		n++
		_ = bar.Add(1)
	}
	endBar(ctx, bar, n)
	return n, nil
}

// stream sends tr's events at cfg.Rate through a token bucket that holds
// 100 ms of events, until cfg.Duration, cfg.Events or ctx ends it, and
// records the sent events and the achieved rate in rep.
func stream(ctx, sendCtx context.Context, p *producers.Producer, tr *Traffic, cfg Config, rep *Report, progress io.Writer) error {
	total := int64(cfg.Rate * cfg.Duration.Seconds())
	if cfg.Events > 0 && (total == 0 || int64(cfg.Events) < total) {
		total = int64(cfg.Events)
	}
	bar := pbar.New(progress, max(total, 1), "events", "events")
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	const burst = 100 * time.Millisecond

	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTimer(time.Hour)
	defer tick.Stop()

	start := time.Now()
	next, n := start, 0
	defer func() {
		rep.Rate = float64(n) / time.Since(start).Seconds()
		endBar(ctx, bar, n)
	}()
	for cfg.Events == 0 || n < cfg.Events {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return nil
		default:
		}
		if wait := time.Until(next); wait > 0 {
			tick.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-deadline:
				return nil
			case <-tick.C:
			}
		}
		ev, dup := tr.Next(time.Now())
		if err := p.SendClick(sendCtx, ev, nil); err != nil {
			return err
		}
		n++
		rep.Events[ev.Type]++
		if dup {
			rep.Duplicates++
		}
		_ = bar.Add(1)
		// Tokens unused for longer than the burst (a send blocked on a full
		// buffer) are dropped rather than spent all at once.
		next = next.Add(interval)
		if floor := time.Now().Add(-burst); next.Before(floor) {
			next = floor
		}
	}
	return nil
}

// endBar completes bar at n steps, or leaves it where it stopped if ctx
// ended the run (or nothing was sent).
func endBar(ctx context.Context, bar *progressbar.ProgressBar, n int) {
	if ctx.Err() != nil || n == 0 {
		_ = bar.Exit()
		return
	}
	bar.ChangeMax(n)
	_ = bar.Finish()
}
