// Package parquetstore is streamrec's embedded analytics store: the rows of
// pipeline.Analytics as Parquet files in a folder, for `make run` without a
// ClickHouse server. Package duckdb queries them with SQL.
//
// # Layout
//
//	<dir>/<table>/date=YYYY-MM-DD/part-<seq>-<level>.parquet
//	<dir>/manifests/<table>/gen-<generation>.json
//
// for the tables events (partitioned by event_time), items (updated_at) and
// recommendations (served_at), with the columns of the ClickHouse tables in
// schemas/clickhouse/0001_init.sql (EventRow, ItemRow, RecommendationRow).
// One difference: a time is one Parquet TIMESTAMP(MILLIS, UTC) column
// (event_time, updated_at, served_at, ingested_at) instead of a DateTime
// plus a UInt16 millisecond column; the SQL views add event_ms, updated_ms
// and served_ms back. Booleans are UInt8 as in ClickHouse; item versions are
// not stored (updated_at is the version). Files are zstd-compressed.
//
// # Reading
//
// A folder holds part files that are no longer live (replaced by a merge,
// kept while a reader may still read them), so readers do not list it:
// they read a generation, a manifest of a table's live parts, pinned with
// OpenSnapshot. See Snapshot for the contract: a reader sees every row of a
// generation once, never a half-compacted table, and its files stay until
// it lets go, whatever process it runs in.
//
// # Writing
//
// Each table has one goroutine that owns its pending rows, its folders and
// its generations. Insert calls enqueue their rows (a bounded queue) and
// block until the rows are in a part file that was written under a
// temporary name, fsynced, renamed into place and its folder fsynced, and
// a generation that lists it was published the same way. A batch is
// written at Config.Batch.MaxRecords rows, MaxBytes or MaxWait after its
// first row.
//
// # Compaction
//
// When a write leaves a day with more than Config.CompactParts parts, the
// table goroutine merges that day's newest parts into one (see
// table.compact) and publishes a generation that lists the merged part
// instead of its sources; the sources are removed once no generation that
// a reader holds lists them. Merges are tiered by level so that a row is
// rewritten a few times a day rather than at every merge.
//
// # Idempotency
//
// Rows are never deduplicated on write: inserting a row again stores it
// again, as a ClickHouse ReplacingMergeTree does until it merges. Readers
// deduplicate (package duckdb's views): events by event_id, items newest per
// item_id by updated_at, recommendations by request_id, ties going to the
// row written last (part names sort by write order).
//
// A flock on <dir>/.lock keeps a second writer out of the folder.
package parquetstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/internal/dirlock"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Errors.
var (
	// ErrLocked is returned by Open when another Store holds the folder.
	ErrLocked = errors.New("parquetstore: folder in use by another store")
)

// Store is the embedded pipeline.Analytics backend. Safe for concurrent use.
type Store struct {
	dir    string
	lock   *os.File
	events *table[EventRow]
	items  *table[ItemRow]
	recos  *table[RecommendationRow]
	now    func() time.Time

	// mu guards closed; Insert holds it shared while it enqueues, so that
	// after Close sets closed no request can reach a stopped table.
	mu     sync.RWMutex
	closed bool
}

var _ pipeline.Analytics = (*Store)(nil)

// Open opens (creating it if needed) the store in dir, locks it, and starts
// one writer goroutine per table; Close stops them. log may be nil; reg may
// be nil.
func Open(dir string, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate("analytics.local"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "parquetstore")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("parquetstore open %s: %w", dir, err)
	}
	lock, err := lockDir(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("parquetstore open %s: %w", dir, err)
	}
	s := &Store{dir: dir, lock: lock, now: time.Now}
	m := newMetrics()
	codec := &zstd.Codec{Level: zstd.SpeedDefault, Concurrency: 1}
	s.events, err = newTable(dir, TableEvents, cfg, func(r *EventRow) time.Time { return r.EventTime }, (*EventRow).size, log, m, codec)
	if err == nil {
		s.items, err = newTable(dir, TableItems, cfg, func(r *ItemRow) time.Time { return r.UpdatedAt }, (*ItemRow).size, log, m, codec)
	}
	if err == nil {
		s.recos, err = newTable(dir, TableRecommendations, cfg, func(r *RecommendationRow) time.Time { return r.ServedAt }, (*RecommendationRow).size, log, m, codec)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	if reg != nil {
		if err := m.register(reg, s.events.queue, s.items.queue, s.recos.queue); err != nil {
			lock.Close()
			return nil, fmt.Errorf("parquetstore metrics: %w", err)
		}
	}
	go s.events.run()
	go s.items.run()
	go s.recos.run()
	return s, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// InsertEvents stores events; see pipeline.Analytics.
func (s *Store) InsertEvents(ctx context.Context, events []schemas.ClickEvent) error {
	now := s.now()
	rows := make([]EventRow, len(events))
	size := 0
	for i, e := range events {
		rows[i] = EventRowOf(e, now)
		size += rows[i].size()
	}
	return insert(ctx, s, s.events, rows, size)
}

// InsertItems stores catalog changes; see pipeline.Analytics.
func (s *Store) InsertItems(ctx context.Context, changes []schemas.CatalogChange) error {
	rows := make([]ItemRow, len(changes))
	size := 0
	for i, c := range changes {
		rows[i] = ItemRowOf(c)
		size += rows[i].size()
	}
	return insert(ctx, s, s.items, rows, size)
}

// InsertRecommendations stores served replies; see pipeline.Analytics.
func (s *Store) InsertRecommendations(ctx context.Context, served []pipeline.ServedRecommendation) error {
	rows := make([]RecommendationRow, len(served))
	size := 0
	for i, r := range served {
		rows[i] = RecommendationRowOf(r)
		size += rows[i].size()
	}
	return insert(ctx, s, s.recos, rows, size)
}

// insert hands rows to t's goroutine and waits until they are durable. If
// ctx ends first, the rows may still be written later (readers deduplicate
// the caller's retry).
func insert[R any](ctx context.Context, s *Store, t *table[R], rows []R, size int) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return pipeline.ErrClosed
	}
	if len(rows) == 0 {
		s.mu.RUnlock()
		return nil
	}
	req := &request[R]{ctx: ctx, rows: rows, size: size, done: make(chan error, 1)}
	select {
	case t.queue <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("parquetstore insert %d %s rows: %w", len(rows), t.name, ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("parquetstore insert %d %s rows: %w", len(rows), t.name, ctx.Err())
	}
}

// Close writes the rows queued and pending, stops the table goroutines and
// releases the folder. Inserts after Close fail with pipeline.ErrClosed.
// Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.events.stop)
	close(s.items.stop)
	close(s.recos.stop)
	<-s.events.done
	<-s.items.done
	<-s.recos.done
	return s.lock.Close()
}

// lockDir locks the folder's lock file (internal/dirlock), reporting
// another holder as ErrLocked.
func lockDir(path string) (*os.File, error) {
	f, err := dirlock.Lock(path)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, ErrLocked
	}
	return f, err
}
