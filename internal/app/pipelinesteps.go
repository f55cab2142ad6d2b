package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/internal/config"
	pbar "github.com/streamrec/streamrec/internal/progress"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/movielens"
	"github.com/streamrec/streamrec/schemas"
)

// The steps `streamrec produce`, the demo and the evaluation share: a
// producer for bulk traffic, seeding the MovieLens catalog, sending
// clickstream events with a progress bar, and waiting until the pipeline
// has taken them in.

// newProducer builds a producer for bulk traffic on its own client (5 ms
// linger, 100,000 records buffered); close the client when done.
func newProducer(cfg config.Config, log *slog.Logger) (*producers.Producer, *kgo.Client, error) {
	cl, err := newClient(cfg.Kafka, log, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, nil, err
	}
	p, err := producers.New(cl, cfg.Producer, producers.WithLogger(log))
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return p, cl, nil
}

// seedMovies sends ds's movies to the catalog topic and waits until store's
// items collection holds them all, drawing progress bars.
func seedMovies(ctx context.Context, p *producers.Producer, store pipeline.VectorStore, ds *movielens.Dataset, progress io.Writer) error {
	if _, err := movielens.Seed(ctx, p, ds, progress); err != nil {
		return err
	}
	return waitIndexed(ctx, store, len(ds.Movies), progress)
}

// sendClicks sends events in order and waits for their delivery, drawing a
// progress bar labelled desc.
func sendClicks(ctx context.Context, p *producers.Producer, events []schemas.ClickEvent, progress io.Writer, desc string) error {
	bar := pbar.New(progress, int64(len(events)), desc, "events")
	for _, ev := range events {
		if err := p.SendClick(ctx, ev, nil); err != nil {
			_ = bar.Exit()
			return err
		}
		_ = bar.Add(1)
	}
	if err := p.Flush(ctx); err != nil {
		_ = bar.Exit()
		return err
	}
	_ = bar.Finish()
	return nil
}

// waitIndexed waits until the items collection holds n items.
func waitIndexed(ctx context.Context, store pipeline.VectorStore, n int, progress io.Writer) error {
	coll, err := store.ResolveAlias(ctx, catalog.ItemsAlias)
	if err != nil {
		return err
	}
	bar := pbar.New(progress, int64(n), "embedding movies", "movies")
	defer bar.Finish()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		have, err := store.Count(ctx, coll)
		if err != nil {
			return err
		}
		_ = bar.Set(have)
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// waitConsumed waits until group has committed the end of every partition
// of topic and followed() reached want, drawing the committed count. It
// gives up when neither moves for stall.
func waitConsumed(ctx context.Context, cl *kgo.Client, group, topic string, followed func() int64, want int64, progress io.Writer) error {
	const stall = 2 * time.Minute
	adm := kadm.NewClient(cl)
	bar := pbar.New(progress, want, "clickstream consumed", "events")
	defer bar.Finish()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastCommitted, lastFollowed int64 = -1, -1
	moved := time.Now()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("eval: end offsets of %s: %w", topic, err)
		}
		offs, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return fmt.Errorf("eval: offsets of group %s: %w", group, err)
		}
		var committed, end int64
		ends.Each(func(e kadm.ListedOffset) {
			end += e.Offset
			if o, ok := offs.Lookup(topic, e.Partition); ok {
				committed += o.At
			}
		})
		_ = bar.Set64(min(committed, want))
		f := followed()
		if committed >= end && f >= want {
			return nil
		}
		if committed != lastCommitted || f != lastFollowed {
			lastCommitted, lastFollowed, moved = committed, f, time.Now()
		} else if time.Since(moved) > stall {
			return fmt.Errorf("eval: stalled for %s: group %s committed %d of %d records of %s, the serving follower applied %d of %d events",
				stall, group, committed, end, topic, f, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
