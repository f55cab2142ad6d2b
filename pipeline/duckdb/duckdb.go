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
// Times are UTC TIMESTAMPs with milliseconds (ClickHouse has whole seconds
// plus a *_ms column); the views add event_ms, updated_ms and served_ms so
// that ClickHouse queries ordering by them still run. Macros name a few
// ClickHouse functions (toStartOfHour, toDate, countIf, uniqExact, ...;
// see Macros) so that common ClickHouse queries run unchanged.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2"
)

// DB is an in-memory DuckDB with views over one store folder. Safe for
// concurrent use.
type DB struct {
	db  *sql.DB
	dir string

	mu      sync.Mutex
	reading map[string]bool // tables whose raw view reads files (else an empty relation)
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
	d := &DB{db: sql.OpenDB(conn), dir: abs, reading: map[string]bool{}}
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
	if err := d.refresh(ctx); err != nil {
		d.db.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the database.
func (d *DB) Close() error { return d.db.Close() }

// Dir is the store folder the views read.
func (d *DB) Dir() string { return d.dir }

// refresh points each raw view at its table's files once the table has
// any, and back at an empty relation if they are gone.
func (d *DB) refresh(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range tables {
		files, err := filepath.Glob(t.glob(d.dir))
		if err != nil {
			return fmt.Errorf("duckdb list %s files: %w", t.name, err)
		}
		has := len(files) > 0
		if has == d.reading[t.name] {
			continue
		}
		body := t.empty()
		if has {
			body = t.read(d.dir)
		}
		if _, err := d.db.ExecContext(ctx, "CREATE OR REPLACE VIEW raw."+t.name+" AS "+body); err != nil {
			return fmt.Errorf("duckdb view raw.%s: %w", t.name, err)
		}
		d.reading[t.name] = has
	}
	return nil
}

// queryAttempts bounds the retries of a query that found a part file gone:
// compaction removes parts between DuckDB listing and opening them.
const queryAttempts = 3

// Query runs one SQL statement (or several: the last one's rows are
// returned) and returns its result. It first points the views at any table
// whose first files appeared since the last query.
func (d *DB) Query(ctx context.Context, query string) (*Result, error) {
	var err error
	for range queryAttempts {
		if err = d.refresh(ctx); err != nil {
			return nil, err
		}
		var res *Result
		res, err = d.query(ctx, query)
		if err == nil || !fileGone(err) || ctx.Err() != nil {
			return res, err
		}
	}
	return nil, err
}

// fileGone reports whether err says a file listed for a query was missing
// when DuckDB opened it.
func fileGone(err error) bool {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return errors.Is(err, os.ErrNotExist)
	}
	msg := de.Msg
	return de.Type == duckdb.ErrorTypeIO &&
		(strings.Contains(msg, "No files found") || strings.Contains(msg, "No such file") || strings.Contains(msg, "Cannot open file"))
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
