package parquetstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/schemas"
)

// snapshot pins the newest generation of events in dir.
func snapshot(t *testing.T, dir string) *parquetstore.Snapshot {
	t.Helper()
	s, err := parquetstore.OpenSnapshot(dir, parquetstore.TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rowsOf counts the rows in files, failing if one is gone.
func rowsOf(t *testing.T, files []string) int {
	t.Helper()
	n := 0
	for _, f := range files {
		rows, err := parquet.ReadFile[parquetstore.EventRow](f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(rows)
	}
	return n
}

func insertEvent(t *testing.T, s *parquetstore.Store, id string) {
	t.Helper()
	if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{event(id, day1)}); err != nil {
		t.Fatal(err)
	}
}

func exist(files []string) bool {
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

// TestSnapshotPinsReplacedParts: an Insert's rows are in the newest
// generation when it returns; a merge publishes a generation without its
// sources, which stay on disk while a snapshot holds them and go at the
// first flush (or Close) after it is closed. A table goroutine handles one
// flush at a time, and a flush merges and collects after it answers its
// Inserts: an Insert returns after every flush before its own has ended.
func TestSnapshotPinsReplacedParts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(c *parquetstore.Config) { c.CompactParts = 2 })
	defer s.Close()
	insertEvent(t, s, "a")
	insertEvent(t, s, "b")
	old := snapshot(t, dir)
	defer old.Close()
	if len(old.Files) != 2 || rowsOf(t, old.Files) != 2 || old.Generation == 0 {
		t.Fatalf("generation %d: %v", old.Generation, old.Files)
	}

	insertEvent(t, s, "c") // three parts: the flush merges them into one
	insertEvent(t, s, "d") // its flush collects
	cur := snapshot(t, dir)
	if cur.Generation <= old.Generation || rowsOf(t, cur.Files) != 4 {
		t.Fatalf("generation %d after %d: %v", cur.Generation, old.Generation, cur.Files)
	}
	for _, f := range old.Files {
		if slices.Contains(cur.Files, f) {
			t.Errorf("%s replaced but still listed", f)
		}
	}
	if rowsOf(t, old.Files) != 2 {
		t.Error("the pinned generation changed")
	}
	cur.Close()

	old.Close()
	// e's flush collects after its Insert returns, and before f's starts.
	insertEvent(t, s, "e")
	insertEvent(t, s, "f")
	if exist(old.Files) {
		t.Errorf("replaced parts left after their last reader and a flush: %v", files(t, dir, "events"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cur = snapshot(t, dir)
	defer cur.Close()
	if got := len(files(t, dir, "events")); got != len(cur.Files) || rowsOf(t, cur.Files) != 6 {
		t.Errorf("files %v, generation %d lists %v", files(t, dir, "events"), cur.Generation, cur.Files)
	}
}

// TestCloseKeepsHeldParts: Close removes the replaced parts no reader
// holds; those a reader holds stay, and the next Open removes them once it
// has let go.
func TestCloseKeepsHeldParts(t *testing.T) {
	dir := t.TempDir()
	cfg := parquetstore.DefaultConfig()
	cfg.Batch.MaxWait = 0
	cfg.CompactParts = 1
	reg := prometheus.NewRegistry()
	s, err := parquetstore.Open(dir, cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	insertEvent(t, s, "a")
	held := snapshot(t, dir)
	insertEvent(t, s, "b") // merges a's part away
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !exist(held.Files) || rowsOf(t, held.Files) != 1 {
		t.Fatalf("held parts removed: %v", files(t, dir, "events"))
	}
	if got := gauge(t, reg, "streamrec_analytics_replaced_parts", "events"); got != 1 {
		t.Errorf("replaced_parts{events} = %v, want 1", got)
	}
	held.Close()
	s = open(t, dir, nil)
	defer s.Close()
	if exist(held.Files) {
		t.Errorf("replaced parts left after Open: %v", files(t, dir, "events"))
	}
	cur := snapshot(t, dir)
	defer cur.Close()
	if rowsOf(t, cur.Files) != 2 || len(files(t, dir, "events")) != len(cur.Files) {
		t.Errorf("files %v, newest generation lists %v", files(t, dir, "events"), cur.Files)
	}
	gens, err := os.ReadDir(filepath.Join(dir, "manifests", "events"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 1 {
		t.Errorf("manifests %v, want the newest only", gens)
	}
}

// TestOpenFolderWithoutGenerations: a folder written before generations
// existed reads as every part file, and Open publishes them as the first
// generation.
func TestOpenFolderWithoutGenerations(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(c *parquetstore.Config) { c.CompactParts = 0 })
	insertEvent(t, s, "a")
	insertEvent(t, s, "b")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "manifests")); err != nil {
		t.Fatal(err)
	}
	legacy := snapshot(t, dir)
	if legacy.Generation != 0 || rowsOf(t, legacy.Files) != 2 {
		t.Errorf("generation %d, files %v", legacy.Generation, legacy.Files)
	}
	legacy.Close()
	s = open(t, dir, nil)
	defer s.Close()
	cur := snapshot(t, dir)
	defer cur.Close()
	if cur.Generation != 1 || !slices.Equal(cur.Files, legacy.Files) {
		t.Errorf("generation %d lists %v, want 1 and %v", cur.Generation, cur.Files, legacy.Files)
	}
}

// TestOpenRemovesUnlistedParts: a part file that the newest generation does
// not list (a merge's output or an insert's part whose generation a crash
// kept from being published; no Insert returned nil for it) is removed.
func TestOpenRemovesUnlistedParts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	insertEvent(t, s, "a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	listed := files(t, dir, "events")
	data, err := os.ReadFile(filepath.Join(dir, "events", listed[0]))
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, "events", "date=2024-05-01", "part-09000000000000000000-1.parquet")
	if err := os.WriteFile(orphan, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	defer s.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unlisted part left: %v", err)
	}
	if got := files(t, dir, "events"); !slices.Equal(got, listed) {
		t.Errorf("files %v, want %v", got, listed)
	}
}
