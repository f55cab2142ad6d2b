// Package catalog is the consumer kind for shop.catalog.v1: it decodes and
// validates every catalog change, dead-letters the invalid ones with their
// reason and counts the valid ones by operation.
//
// The topic is compacted and keyed by item id, so besides the JSON changes
// it carries tombstones (records with a null value): each is a delete of the
// item its key names, as of the record's timestamp
// (schemas.DecodeCatalogRecord), indexed and recorded like any delete. A
// tombstone with an empty or invalid key is dead-lettered with the reason.
//
// Embedding and vector-store upserts (issue 4) plug in as a further handler
// of the valid changes.
package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// NewTally returns the tally of catalog changes by op, exported as
// streamrec_catalog_changes_total{op}.
func NewTally(reg prometheus.Registerer) *consumers.Tally {
	return consumers.NewTally("catalog", reg, "streamrec_catalog_changes_total",
		"Valid catalog changes consumed, by op.", "op")
}

// NewSink returns the catalog sink. now is the clock that updated_at is
// checked against (nil: time.Now).
func NewSink(lim schemas.Limits, now func() time.Time, tally *consumers.Tally) consumers.Typed[schemas.CatalogChange] {
	s := consumers.Counting(nil, func(v schemas.CatalogChange) string { return string(v.Op) }, tally)
	s.DecodeRecord = decoder(lim, now)
	return s
}

// decoder decodes a catalog record, a tombstone included, checking
// timestamps against now (nil: time.Now).
func decoder(lim schemas.Limits, now func() time.Time) func(pipeline.Record) (schemas.CatalogChange, error) {
	if now == nil {
		now = time.Now
	}
	return func(rec pipeline.Record) (schemas.CatalogChange, error) {
		return schemas.DecodeCatalogRecord(rec.Key, rec.Value, rec.Timestamp, now(), lim)
	}
}

// Handler is what a catalog sink does with a batch's valid changes
// (consumers.Typed's Handle).
type Handler = func(ctx context.Context, evs []consumers.Event[schemas.CatalogChange], res *pipeline.Result) error

// RecordItems returns a handler that runs next, then writes every valid
// change (upserts and deletes, each a row of the items table) to an. The
// batch is confirmed only when both succeed; both are idempotent, so a retry
// after a failure of either is safe.
func RecordItems(next Handler, an pipeline.Analytics) Handler {
	return func(ctx context.Context, evs []consumers.Event[schemas.CatalogChange], res *pipeline.Result) error {
		if err := next(ctx, evs, res); err != nil {
			return err
		}
		changes := make([]schemas.CatalogChange, len(evs))
		for i, ev := range evs {
			changes[i] = ev.Value
		}
		if err := an.InsertItems(ctx, changes); err != nil {
			return fmt.Errorf("catalog: insert %d item rows: %w", len(changes), err)
		}
		return nil
	}
}
