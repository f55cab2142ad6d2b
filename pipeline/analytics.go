package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/streamrec/streamrec/schemas"
)

// Analytics is where analysts' rows go: every valid clickstream event, every
// catalog change and every recommendation served. The logical schema is the
// one in schemas/clickhouse (tables events, items, recommendations); every
// backend stores the same columns.
//
// Contract:
//   - Each Insert blocks until its rows are durable in the backend (the
//     server acknowledged the INSERT; the embedded store fsynced its file), or
//     fails. A nil error means every row given is stored; an error means none
//     may be assumed stored, and the caller retries (the consumer runtime does,
//     then commits offsets only after a nil return).
//   - Backends batch rows from concurrent callers by rows, bytes and time
//     (pipeline.BatchPolicy) and retry transient failures themselves before
//     returning an error; a Permanent error is one that retrying cannot fix.
//   - Inserts are idempotent by key: inserting an event with the same
//     event_id, a catalog change with the same (item_id, updated_at), or a
//     recommendation with the same request_id again leaves every reader's view
//     unchanged (deduplicated reads: ClickHouse FINAL and the *_stats views;
//     the embedded store's SQL views).
//   - Safe for concurrent use. Close flushes what is pending, then releases
//     the backend; Inserts after Close fail with ErrClosed.
type Analytics interface {
	InsertEvents(ctx context.Context, events []schemas.ClickEvent) error
	InsertItems(ctx context.Context, changes []schemas.CatalogChange) error
	InsertRecommendations(ctx context.Context, served []ServedRecommendation) error
	Close() error
}

// ErrClosed is returned by an Analytics backend used after Close.
var ErrClosed = errors.New("analytics: closed")

// ServedRecommendation is one recommendation reply as the analytics table
// recommendations stores it.
type ServedRecommendation struct {
	RequestID    string
	Kind         schemas.RecoKind
	UserID       string
	ItemID       string
	Query        string
	Items        []string
	Scores       []float32
	Latency      time.Duration
	ModelVersion string
	Fallback     bool
	Error        string
	ServedAt     time.Time
}
