package consumers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/consumers/clickstream"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// TestKindSinks: each consumer kind counts valid records by their label and
// rejects invalid ones with the decoder's reason (the runtime dead-letters
// those).
func TestKindSinks(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	type kind struct {
		tally func(prometheus.Registerer) *consumers.Tally
		sink  func(schemas.Limits, func() time.Time, *consumers.Tally) pipeline.Sink
	}
	click := kind{clickstream.NewTally, func(lim schemas.Limits, now func() time.Time, tally *consumers.Tally) pipeline.Sink {
		return clickstream.NewSink(clickstream.Options{Limits: lim, Now: now, Tally: tally})
	}}
	cat := kind{catalog.NewTally, func(lim schemas.Limits, now func() time.Time, tally *consumers.Tally) pipeline.Sink {
		return catalog.NewSink(lim, now, tally)
	}}
	cases := []struct {
		name   string
		kind   kind
		value  string
		label  string // counted under this label; "" = rejected
		reason string
	}{
		{"click view", click, `{"event_id":"e1","type":"view","user_id":"u1","item_id":"i1","timestamp":"2026-11-28T11:59:00Z"}`, "view", ""},
		{"click search", click, `{"event_id":"e2","type":"search","user_id":"u1","query":"tea","timestamp":"2026-11-28T11:59:00Z"}`, "search", ""},
		{"click unknown type", click, `{"event_id":"e3","type":"buy","user_id":"u1","timestamp":"2026-11-28T11:59:00Z"}`, "", `event.type: unknown value "buy"`},
		{"click from the future", click, `{"event_id":"e4","type":"view","user_id":"u1","item_id":"i1","timestamp":"2026-11-28T14:00:00Z"}`, "", "event.timestamp: 2h0m0s in the future"},
		{"click not json", click, `{"event_id":`, "", "malformed JSON"},
		{"catalog upsert", cat, `{"op":"upsert","item_id":"i1","title":"Tea","in_stock":true,"updated_at":"2026-11-28T11:00:00Z"}`, "upsert", ""},
		{"catalog delete", cat, `{"op":"delete","item_id":"i1","updated_at":"2026-11-28T11:00:00Z"}`, "delete", ""},
		{"catalog upsert without title", cat, `{"op":"upsert","item_id":"i1","updated_at":"2026-11-28T11:00:00Z"}`, "", "title: missing"},
		{"catalog unknown op", cat, `{"op":"patch","item_id":"i1","updated_at":"2026-11-28T11:00:00Z"}`, "", `unknown value "patch"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tally := tc.kind.tally(nil)
			sink := tc.kind.sink(schemas.DefaultLimits(), func() time.Time { return now }, tally)
			res, err := sink.Write(context.Background(), []pipeline.Record{{Value: []byte(tc.value)}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.label != "" {
				if len(res.Rejected) != 0 || tally.Snapshot()[tc.label] != 1 {
					t.Fatalf("rejected %v, tally %v; want counted as %s", res.Rejected, tally.Snapshot(), tc.label)
				}
				return
			}
			if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Err.Error(), tc.reason) || tally.Total() != 0 {
				t.Fatalf("rejected %v, tally %v; want one rejection with %q", res.Rejected, tally.Snapshot(), tc.reason)
			}
		})
	}
}
