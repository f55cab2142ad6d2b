// Package clickstream is the consumer kind for shop.clickstream.v1: it
// decodes and validates every event, dead-letters the invalid ones with
// their reason and counts the valid ones by event type.
//
// Analytics (issue 5) and profile updates (issue 6) plug in as further
// handlers of the valid events.
package clickstream

import (
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

// NewSink returns the clickstream sink. now is the clock that timestamps are
// checked against (nil: time.Now).
func NewSink(lim schemas.Limits, now func() time.Time, tally *consumers.Tally) pipeline.Sink {
	if now == nil {
		now = time.Now
	}
	return consumers.Counting(
		func(data []byte) (schemas.ClickEvent, error) { return schemas.DecodeClick(data, now(), lim) },
		func(v schemas.ClickEvent) string { return string(v.Type) },
		tally)
}
