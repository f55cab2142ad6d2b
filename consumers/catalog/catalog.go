// Package catalog is the consumer kind for shop.catalog.v1: it decodes and
// validates every catalog change, dead-letters the invalid ones with their
// reason and counts the valid ones by operation.
//
// Embedding and vector-store upserts (issue 4) plug in as a further handler
// of the valid changes.
package catalog

import (
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
func NewSink(lim schemas.Limits, now func() time.Time, tally *consumers.Tally) pipeline.Sink {
	if now == nil {
		now = time.Now
	}
	return consumers.Counting(
		func(data []byte) (schemas.CatalogChange, error) { return schemas.DecodeCatalog(data, now(), lim) },
		func(v schemas.CatalogChange) string { return string(v.Op) },
		tally)
}
