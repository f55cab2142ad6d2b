// Package duckdb runs SQL over the embedded analytics store (package
// parquetstore) with an in-memory DuckDB: no server, the Parquet files are
// read where they lie. It is the only package that links DuckDB (cgo).
//
// Open creates views with the names and columns of ClickHouse's read side
// (schemas/clickhouse/0001_init.sql), deduplicated as ClickHouse's FINAL
// and *_stats views are:
//
//   - events: one row per event_id (the one ingested last);
//   - items: the newest row per item_id by updated_at, deletes included
//     (deleted = 1);
//   - recommendations: one row per request_id (the one written last);
//   - item_hourly_stats, search_stats, reco_ctr_stats: the analyst views,
//     computed from every stored row with ClickHouse's distinct-count
//     semantics, so a replayed row changes no answer.
//
// Every stored row, duplicates included, is in raw.events, raw.items and
// raw.recommendations (like ClickHouse's tables read without FINAL).
//
// A query reads one generation of each table (parquetstore.Snapshot),
// pinned until it ends: it never sees a half-compacted table nor fails
// because compaction removed a file, even while a Store in another process
// writes and merges, and a query counts at least the rows of any query on
// the same DB that ended before it began.
//
// Times are UTC TIMESTAMPs with milliseconds (ClickHouse has whole seconds
// plus a *_ms column); the views add event_ms, updated_ms and served_ms so
// that ClickHouse queries ordering by them still run. Macros name a few
// ClickHouse functions (toStartOfHour, toDate, countIf, uniqExact, ...;
// see Macros) so that common ClickHouse queries run unchanged.
package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/streamrec/streamrec/pipeline/parquetstore"
)

// DB is an in-memory DuckDB with views over one store folder. Safe for
// concurrent use.
type DB struct {
	db  *sql.DB
	dir string

	// The raw views read the files of pinned while active > 0. A query
	// joins the running ones while their snapshots are the newest;
	// otherwise it waits for them to end (idle is closed when active drops
	// to 0), then pins the newest generations and points the views at them.
	mu      sync.Mutex
	active  int
	idle    chan struct{}
	pinned  []*parquetstore.Snapshot // by table, as tables
	viewing [][]string               // the files each raw view reads, by table; nil: none
}

// Result is the answer to a query: column names and DuckDB types, and rows
// of values as database/sql scans them (string, int64, float64, bool,
// time.Time, []any for lists, nil for NULL); HUGEINTs that fit are int64.
type Result struct {
	Columns []string
	Types   []string
	Rows    [][]any
}

// Open opens an in-memory DuckDB over the store folder dir, which need not
// exist yet: a table with no files is an empty view until files appear.
// The session time zone is UTC, as on streamrec's ClickHouse servers.
func Open(ctx context.Context, dir string) (*DB, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("duckdb open %s: %w", dir, err)
	}
	conn, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb open: %w", err)
	}
	d := &DB{db: sql.OpenDB(conn), dir: abs, viewing: make([][]string, len(tables))}
	stmts := []string{"SET GLOBAL TimeZone = 'UTC'", "CREATE SCHEMA raw"}
	for _, t := range tables {
		stmts = append(stmts, "CREATE VIEW raw."+t.name+" AS "+t.empty())
	}
	for _, v := range views {
		stmts = append(stmts, "CREATE VIEW "+v.name+" AS "+v.sql)
	}
	for _, m := range Macros {
		stmts = append(stmts, "CREATE OR REPLACE MACRO "+m)
	}
	for _, s := range stmts {
		if _, err := d.db.ExecContext(ctx, s); err != nil {
			d.db.Close()
			return nil, fmt.Errorf("duckdb open: %s: %w", firstLine(s), err)
		}
	}
	return d, nil
}

// Close releases the database.
func (d *DB) Close() error { return d.db.Close() }

// Dir is the store folder the views read.
func (d *DB) Dir() string { return d.dir }

// Query runs one SQL statement (or several: the last one's rows are
// returned) and returns its result. The statements read the newest
// generation of each table (see the package documentation); if queries on
// older ones still run, Query first waits for them to end.
func (d *DB) Query(ctx context.Context, query string) (*Result, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	return d.query(ctx, query)
}

// acquire makes the views read pinned generations that are the newest, and
// counts the caller as a query on them until release.
func (d *DB) acquire(ctx context.Context) error {
	d.mu.Lock()
	for d.active > 0 {
		newest, err := d.newest()
		if err != nil {
			d.mu.Unlock()
			return err
		}
		if newest {
			d.active++
			d.mu.Unlock()
			return nil
		}
		idle := d.idle
		d.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
		d.mu.Lock()
	}
	defer d.mu.Unlock()
	if err := d.pin(ctx); err != nil {
		return err
	}
	d.active, d.idle = 1, make(chan struct{})
	return nil
}

// release ends a query; the last one unpins the generations.
func (d *DB) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active--
	if d.active > 0 {
		return
	}
	for _, s := range d.pinned {
		s.Close()
	}
	d.pinned = nil
	close(d.idle)
}

// newest reports whether no table has a newer generation than the pinned
// one.
func (d *DB) newest() (bool, error) {
	for i, t := range tables {
		gen, err := parquetstore.LatestGeneration(d.dir, t.name)
		if err != nil {
			return false, fmt.Errorf("duckdb %s generation: %w", t.name, err)
		}
		if gen != d.pinned[i].Generation {
			return false, nil
		}
	}
	return true, nil
}

// pin pins the newest generation of every table and points each raw view
// whose files changed at the new ones. No query runs meanwhile.
func (d *DB) pin(ctx context.Context) (err error) {
	snaps := make([]*parquetstore.Snapshot, 0, len(tables))
	defer func() {
		if err != nil {
			for _, s := range snaps {
				s.Close()
			}
		}
	}()
	for i, t := range tables {
		s, err := parquetstore.OpenSnapshot(d.dir, t.name)
		if err != nil {
			return fmt.Errorf("duckdb read %s: %w", t.name, err)
		}
		snaps = append(snaps, s)
		if slices.Equal(s.Files, d.viewing[i]) {
			continue
		}
		body := t.empty()
		if len(s.Files) > 0 {
			body = t.read(s.Files)
		}
		if _, err := d.db.ExecContext(ctx, "CREATE OR REPLACE VIEW raw."+t.name+" AS "+body); err != nil {
			d.viewing[i] = nil // unknown: replaced at the next pin
			return fmt.Errorf("duckdb view raw.%s: %w", t.name, err)
		}
		d.viewing[i] = s.Files
	}
	d.pinned = snaps
	return nil
}

func (d *DB) query(ctx context.Context, query string) (*Result, error) {
	rows, err := d.db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, c := range cols {
		res.Columns = append(res.Columns, c.Name())
		res.Types = append(res.Types, c.DatabaseTypeName())
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = normalize(v)
		}
		res.Rows = append(res.Rows, vals)
	}
	return res, rows.Err()
}

// normalize turns HUGEINTs (sums and counts of integers) that fit into
// int64.
func normalize(v any) any {
	switch x := v.(type) {
	case *big.Int:
		if x.IsInt64() {
			return x.Int64()
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	}
	return v
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
