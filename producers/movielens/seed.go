package movielens

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	pbar "github.com/streamrec/streamrec/internal/progress"
	"github.com/streamrec/streamrec/producers"
)

// Seed sends every movie of ds as a catalog upsert (Movie.CatalogChange,
// updated now) through p, drawing a progress bar on progress unless it is
// nil, then waits until p has delivered them (producers.Producer.Flush). It
// returns the number of changes sent.
//
// It stops sending when ctx ends or a change is rejected, and returns that
// error, joined with the delivery errors. Sending again is harmless: the
// catalog topic is compacted by item id.
func Seed(ctx context.Context, p *producers.Producer, ds *Dataset, progress io.Writer) (int, error) {
	bar := pbar.New(progress, int64(len(ds.Movies)), "movielens catalog", "movies")
	now := time.Now().UTC()
	n := 0
	var err error
	for _, m := range ds.Movies {
		if err = ctx.Err(); err != nil {
			break
		}
		if err = p.SendCatalog(ctx, m.CatalogChange(now), nil); err != nil {
			break
		}
		n++
		_ = bar.Add(1)
	}
	if err != nil || n == 0 {
		_ = bar.Exit()
	} else {
		_ = bar.Finish()
	}
	if ferr := p.Flush(ctx); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if err != nil {
		return n, fmt.Errorf("movielens: seed %d of %d movies: %w", n, len(ds.Movies), err)
	}
	return n, nil
}
