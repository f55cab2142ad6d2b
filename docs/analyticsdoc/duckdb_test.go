package analyticsdoc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline/duckdb"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
)

// TestAnalystQueriesDuckDB runs the guide's queries as `streamrec sql` does
// under `make run`: the dataset goes through the embedded store
// (parquetstore, the pipeline.Analytics backend of make run) into Parquet
// files, and DuckDB (package duckdb) queries them. Each query runs its
// DuckDB variant where the guide gives one, else its ClickHouse text
// unchanged, and must return the rows TestAnalystQueries expects from
// ClickHouse. The dataset is stored a second time (a replay, through a
// reopened store) and the answers must not move. A variant is there only
// while the ClickHouse text cannot give the right answer on DuckDB: the
// test fails when it can, so that the guide drops the variant.
func TestAnalystQueriesDuckDB(t *testing.T) {
	queries := docQueries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	d := newDataset(time.Now())

	d.store(ctx, t, dir)
	db, err := duckdb.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := backend{
		loc: time.UTC, // duckdb.Open sets the session's time zone
		now: func(t *testing.T) time.Time {
			t.Helper()
			res, err := db.Query(ctx, "SELECT now()")
			if err != nil {
				t.Fatal(err)
			}
			return res.Rows[0][0].(time.Time).In(time.UTC)
		},
		query: func(sql string) ([][]cell, error) {
			res, err := db.Query(ctx, sql)
			if err != nil {
				return nil, err
			}
			return normalizeRows(res.Rows), nil
		},
	}

	res, err := db.Query(ctx, "SELECT version()")
	if err != nil {
		t.Fatal(err)
	}
	version := fmt.Sprint(res.Rows[0][0])
	t.Run("backend=duckdb-"+majorMinor(version), func(t *testing.T) {
		t.Logf("DuckDB %s over the embedded store (parquetstore)", version)
		nonEmpty := make(map[string]bool)
		t.Run("once", func(t *testing.T) {
			checkQueries(t, b, d, queries, docQuery.onDuckDB, nonEmpty)
		})
		t.Run("variants needed", func(t *testing.T) {
			for _, q := range queries {
				if q.duckdb == "" {
					continue
				}
				failed := false
				asIs := b
				asIs.query = func(sql string) ([][]cell, error) {
					rows, err := b.query(sql)
					failed = err != nil // an error is an answer here: the variant is needed
					return rows, nil
				}
				got, now := runQuery(t, asIs, q.sql)
				want := normalizeRows(expectations[q.name](d, window{now: now, loc: b.loc}))
				if !failed && diffRows(got, want) == "" {
					t.Errorf("query %s runs unchanged on DuckDB with the right answer: drop its DuckDB variant from %s", q.name, docFile)
				}
			}
		})

		d.store(ctx, t, dir)
		for table, n := range map[string]int{"events": len(d.events), "items": len(d.items), "recommendations": len(d.recos)} {
			if rows, err := b.query("SELECT count() FROM raw." + table); err != nil || len(rows) != 1 || rows[0][0].num != float64(2*n) {
				t.Fatalf("raw.%s after the replay: %v %v, want %d rows", table, rows, err, 2*n)
			}
		}
		t.Run("replayed", func(t *testing.T) {
			checkQueries(t, b, d, queries, docQuery.onDuckDB, nonEmpty)
		})
		checkNonEmpty(t, queries, nonEmpty)
	})
}

// store writes the whole dataset through a freshly opened embedded store in
// dir, then closes it (Close writes what is pending), as a `make run`
// pipeline that restarts and replays would.
func (d *dataset) store(ctx context.Context, t *testing.T, dir string) {
	t.Helper()
	s, err := parquetstore.Open(dir, parquetstore.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.InsertItems(ctx, d.items); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertEvents(ctx, d.events); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRecommendations(ctx, d.recos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
