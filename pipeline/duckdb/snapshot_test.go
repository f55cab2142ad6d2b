package duckdb_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/streamrec/streamrec/pipeline/duckdb"
	"github.com/streamrec/streamrec/schemas"
)

// readerDirEnv, when set, makes TestQueriesDuringCompaction the reader
// process of its parent: it queries the store folder named there.
const readerDirEnv = "STREAMREC_TEST_DUCKDB_READER_DIR"

// queriesPerReader is how many queries each reader runs: three in this
// process (two sharing one DB) and one in a child process.
const queriesPerReader = 100

// days is how many days (folders of parts, each merged at every insert)
// the events span.
const days = 2

// insertsDuringReads is the fewest inserts, each followed by a merge per
// day, that the readers in this process see happen while they query.
const insertsDuringReads = 20

// countQuery counts every stored row and the distinct events in one
// statement, so that both come from one snapshot: every event is inserted
// once, so a row seen twice makes them differ.
const countQuery = "SELECT (SELECT count() FROM raw.events) AS raw, (SELECT count() FROM events) AS distinct_events"

// acks counts the events inserted so far and wakes those waiting for more.
type acks struct {
	mu      sync.Mutex
	started int64 // events handed to InsertEvents
	acked   int64 // events whose InsertEvents returned nil
	more    chan struct{}
}

func newAcks() *acks { return &acks{more: make(chan struct{})} }

func (a *acks) start(n int64) {
	a.mu.Lock()
	a.started += n
	a.mu.Unlock()
}

func (a *acks) ack(n int64) {
	a.mu.Lock()
	a.acked += n
	close(a.more)
	a.more = make(chan struct{})
	a.mu.Unlock()
}

func (a *acks) counts() (started, acked int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.started, a.acked
}

// waitAbove blocks until more than n events are acknowledged (or ctx
// ends) and returns how many are.
func (a *acks) waitAbove(ctx context.Context, n int64) (int64, error) {
	for {
		a.mu.Lock()
		acked, more := a.acked, a.more
		a.mu.Unlock()
		if acked > n {
			return acked, nil
		}
		select {
		case <-more:
		case <-ctx.Done():
			return acked, ctx.Err()
		}
	}
}

// TestQueriesDuringCompaction: queries through duckdb.DB (the code path of
// `streamrec sql`) while the store merges and replaces parts at every
// insert never fail, never see a row twice, never lose one, and never count
// fewer rows than the query before. Readers run in this process, two of
// them sharing one DB, and in a child process.
func TestQueriesDuringCompaction(t *testing.T) {
	if dir := os.Getenv(readerDirEnv); dir != "" {
		childReader(t, dir)
		return
	}
	dir := t.TempDir()
	s := openStore(t, dir, 2) // every insert after the second merges
	defer s.Close()
	a := newAcks()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()

	// The writer inserts one event a day at a time, each a new part that
	// makes the day merge, until the readers are done.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			batch := make([]schemas.ClickEvent, days)
			for d := range batch {
				batch[d] = schemas.ClickEvent{EventID: fmt.Sprintf("e%06d-%d", i, d), Type: schemas.EventView, UserID: "u", ItemID: "i",
					Timestamp: at("2024-05-01 10:00:00.000").AddDate(0, 0, d)}
			}
			a.start(days)
			if err := s.InsertEvents(ctx, batch); err != nil {
				if ctx.Err() == nil {
					t.Errorf("insert %d: %v", i, err)
					stop()
				}
				return
			}
			a.ack(days)
		}
	})
	if _, err := a.waitAbove(ctx, 2); err != nil {
		t.Fatal(err)
	}

	// The child reads while this process writes; it stops on its own
	// after queriesPerReader queries.
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestQueriesDuringCompaction$", "-test.count=1")
	child.Env = append(os.Environ(), readerDirEnv+"="+dir)
	childDone := make(chan struct{})
	var childOut []byte
	var childErr error
	go func() {
		defer close(childDone)
		childOut, childErr = child.CombinedOutput()
	}()

	// The readers go on until the writer has inserted (and merged) at
	// least insertsDuringReads times more since they started.
	_, before := a.counts()
	merged := func() bool {
		_, acked := a.counts()
		return acked >= before+insertsDuringReads*days
	}
	shared := openDB(t, dir)
	var readers sync.WaitGroup
	var queries atomic.Int64
	for r, db := range []*duckdb.DB{shared, shared, openDB(t, dir)} {
		readers.Go(func() {
			// A query counts at least the rows acknowledged before it
			// started, at most those handed to InsertEvents when it ended,
			// and no fewer than the query before.
			var last int64
			for q := 0; ctx.Err() == nil && (q < queriesPerReader || !merged()); q++ {
				_, lo := a.counts()
				raw, distinct, err := countBoth(ctx, db)
				hi, _ := a.counts()
				if msg := check(raw, distinct, last, err); msg != "" {
					t.Errorf("reader %d query %d: %s", r, q, msg)
					return // one report per reader
				}
				if raw < lo || raw > hi {
					t.Errorf("reader %d query %d: %d rows, want %d (acknowledged) to %d (inserted)", r, q, raw, lo, hi)
					return
				}
				last = raw
				queries.Add(1)
			}
		})
	}
	readers.Wait()
	<-childDone
	stop()
	wg.Wait()
	if childErr != nil {
		t.Errorf("reader process: %v\n%s", childErr, childOut)
	}
	_, acked := a.counts()
	t.Logf("%d queries in this process and %d in another during %d inserts", queries.Load(), queriesPerReader, acked/days)
}

// childReader is the reader process: queriesPerReader queries as fast as
// they go, each counting at least the rows of the one before, none twice.
func childReader(t *testing.T, dir string) {
	db := openDB(t, dir)
	var last int64
	for q := range queriesPerReader {
		raw, distinct, err := countBoth(t.Context(), db)
		if msg := check(raw, distinct, last, err); msg != "" {
			t.Fatalf("query %d: %s", q, msg)
		}
		last = raw
	}
}

// check says what is wrong with a count of raw rows and distinct events
// after one of last rows, if anything.
func check(raw, distinct, last int64, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case raw != distinct:
		return fmt.Sprintf("raw.events has %d rows and events %d: rows seen twice, or not one snapshot", raw, distinct)
	case raw < last:
		return fmt.Sprintf("%d rows after %d", raw, last)
	}
	return ""
}

func openDB(t *testing.T, dir string) *duckdb.DB {
	t.Helper()
	db, err := duckdb.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// countBoth runs countQuery.
func countBoth(ctx context.Context, db *duckdb.DB) (raw, distinct int64, err error) {
	res, err := db.Query(ctx, countQuery)
	if err != nil {
		return 0, 0, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 2 {
		return 0, 0, fmt.Errorf("got %v", res.Rows)
	}
	raw, ok1 := res.Rows[0][0].(int64)
	distinct, ok2 := res.Rows[0][1].(int64)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("got %T %T", res.Rows[0][0], res.Rows[0][1])
	}
	return raw, distinct, nil
}
