package parquetstore_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*parquetstore.Config)
		want   string
	}{
		{"default", func(*parquetstore.Config) {}, ""},
		{"max_records", func(c *parquetstore.Config) { c.Batch.MaxRecords = 0 }, "analytics.local.batch.max_records must be > 0"},
		{"max_bytes", func(c *parquetstore.Config) { c.Batch.MaxBytes = -1 }, "analytics.local.batch.max_bytes must be > 0"},
		{"max_wait", func(c *parquetstore.Config) { c.Batch.MaxWait = -1 }, "analytics.local.batch.max_wait must be >= 0"},
		{"compact_parts", func(c *parquetstore.Config) { c.CompactParts = -1 }, "analytics.local.compact_parts must be >= 0"},
		{"compaction off", func(c *parquetstore.Config) { c.CompactParts = 0 }, ""},
		{"queue_size", func(c *parquetstore.Config) { c.QueueSize = 0 }, "analytics.local.queue_size must be > 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := parquetstore.DefaultConfig()
			c.change(&cfg)
			err := cfg.Validate("analytics.local")
			if got := errString(err); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func event(id string, ts time.Time) schemas.ClickEvent {
	return schemas.ClickEvent{EventID: id, Type: schemas.EventView, UserID: "u", ItemID: "i", Timestamp: ts}
}

var day1 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string, change func(*parquetstore.Config)) *parquetstore.Store {
	t.Helper()
	cfg := parquetstore.DefaultConfig()
	cfg.Batch.MaxWait = 0
	if change != nil {
		change(&cfg)
	}
	s, err := parquetstore.Open(dir, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// files lists the files under dir/table, relative to it.
func files(t *testing.T, dir, table string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, table)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readRows[R any](t *testing.T, dir, table string) []R {
	t.Helper()
	var all []R
	for _, f := range files(t, dir, table) {
		rows, err := parquet.ReadFile[R](filepath.Join(dir, table, f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rows...)
	}
	return all
}

func TestInsertLayoutAndRows(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	defer s.Close()
	e := schemas.ClickEvent{
		EventID: "e1", Type: schemas.EventPurchase, UserID: "u1", SessionID: "s1", ItemID: "i1", Price: 2.5, Quantity: 3,
		Timestamp: time.Date(2024, 5, 1, 23, 59, 59, 123_456_789, time.FixedZone("CEST", 2*3600)),
		Context:   schemas.EventContext{Device: "mobile", Locale: "de-DE", Page: "checkout", RecoRequestID: "r1"},
	}
	if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{e, event("e2", day1.AddDate(0, 0, 1))}); err != nil {
		t.Fatal(err)
	}
	got := files(t, dir, "events")
	if len(got) != 2 || !strings.HasPrefix(got[0], "date=2024-05-01/part-") || !strings.HasPrefix(got[1], "date=2024-05-02/part-") ||
		!strings.HasSuffix(got[0], ".parquet") {
		t.Errorf("files %v", got)
	}
	rows := readRows[parquetstore.EventRow](t, dir, "events")
	want := parquetstore.EventRow{
		EventID: "e1", EventType: "purchase", UserID: "u1", SessionID: "s1", ItemID: "i1", Price: 2.5, Quantity: 3,
		EventTime: time.Date(2024, 5, 1, 21, 59, 59, 123_000_000, time.UTC),
		Device:    "mobile", Locale: "de-DE", Page: "checkout", RecoRequestID: "r1",
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0].IngestedAt.IsZero() {
		t.Error("ingested_at not set")
	}
	rows[0].IngestedAt = time.Time{}
	rows[0].EventTime = rows[0].EventTime.UTC()
	if rows[0] != want {
		t.Errorf("got  %+v\nwant %+v", rows[0], want)
	}

	c := schemas.CatalogChange{Op: schemas.OpDelete, ItemID: "i1", UpdatedAt: day1}
	if err := s.InsertItems(t.Context(), []schemas.CatalogChange{c}); err != nil {
		t.Fatal(err)
	}
	items := readRows[parquetstore.ItemRow](t, dir, "items")
	if len(items) != 1 || items[0].Deleted != 1 || items[0].ItemID != "i1" || !items[0].UpdatedAt.Equal(day1) {
		t.Errorf("items %+v", items)
	}
	r := pipeline.ServedRecommendation{RequestID: "r1", Kind: schemas.KindSearch, Items: []string{"a"}, Scores: []float32{1}, Latency: 2 * time.Millisecond, ServedAt: day1}
	if err := s.InsertRecommendations(t.Context(), []pipeline.ServedRecommendation{r}); err != nil {
		t.Fatal(err)
	}
	recos := readRows[parquetstore.RecommendationRow](t, dir, "recommendations")
	if len(recos) != 1 || recos[0].Kind != "search" || recos[0].LatencyMs != 2 || !slices.Equal(recos[0].Items, []string{"a"}) {
		t.Errorf("recommendations %+v", recos)
	}
}

// TestGroupCommit: concurrent callers share one part; none returns before
// the batch is full.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(c *parquetstore.Config) { c.Batch.MaxRecords = 10; c.Batch.MaxWait = time.Hour })
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{event(string(rune('a'+i)), day1)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := files(t, dir, "events"); len(got) != 1 {
		t.Errorf("files %v, want one part", got)
	}
	if n := len(readRows[parquetstore.EventRow](t, dir, "events")); n != 10 {
		t.Errorf("%d rows", n)
	}
}

func TestMaxRecordsSplitsParts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(c *parquetstore.Config) { c.Batch.MaxRecords = 3; c.CompactParts = 0 })
	defer s.Close()
	var evs []schemas.ClickEvent
	for i := range 7 {
		evs = append(evs, event(string(rune('a'+i)), day1))
	}
	if err := s.InsertEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir, "events"); len(got) != 3 {
		t.Errorf("files %v, want 3 parts", got)
	}
}

func TestMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir, func(c *parquetstore.Config) { c.Batch.MaxWait = time.Second })
		defer s.Close()
		start := time.Now()
		if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{event("a", day1)}); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("insert returned after %v, want 1s", waited)
		}
	})
}

func TestCloseFlushesPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir, func(c *parquetstore.Config) { c.Batch.MaxWait = time.Hour })
		errc := make(chan error, 1)
		go func() { errc <- s.InsertEvents(context.Background(), []schemas.ClickEvent{event("a", day1)}) }()
		synctest.Wait() // the insert is queued and waits for its batch
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("pending insert: %v", err)
		}
		if n := len(readRows[parquetstore.EventRow](t, dir, "events")); n != 1 {
			t.Errorf("%d rows after Close, want 1", n)
		}
		if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{event("b", day1)}); !errors.Is(err, pipeline.ErrClosed) {
			t.Errorf("insert after Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestCanceledInsertIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir, func(c *parquetstore.Config) { c.Batch.MaxWait = time.Hour })
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- s.InsertEvents(ctx, []schemas.ClickEvent{event("a", day1)}) }()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("canceled insert: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := files(t, dir, "events"); len(got) != 0 {
			t.Errorf("rows of a canceled insert were written: %v", got)
		}
	})
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	if _, err := parquetstore.Open(dir, parquetstore.DefaultConfig(), nil, nil); !errors.Is(err, parquetstore.ErrLocked) {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	s.Close()
}

func TestOpenRemovesUnfinishedParts(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "events", "date=2024-05-01")
	if err := os.MkdirAll(day, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(day, "part-00000000000000000001-0.parquet.tmp")
	if err := os.WriteFile(tmp, []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, nil)
	defer s.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unfinished part left: %v", err)
	}
}

func TestCompactionAndMetrics(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	cfg := parquetstore.DefaultConfig()
	cfg.Batch.MaxWait = 0
	cfg.CompactParts = 4
	s, err := parquetstore.Open(dir, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{event(string(rune(0x100+i)), day1)}); err != nil {
			t.Fatal(err)
		}
	}
	// Inserts return before the merges their parts cause; Close waits for
	// them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if parts := files(t, dir, "events"); len(parts) > 4 {
		t.Errorf("%d parts, want <= 4: %v", len(parts), parts)
	}
	rows := readRows[parquetstore.EventRow](t, dir, "events")
	if len(rows) != n {
		t.Errorf("%d rows after compaction, want %d", len(rows), n)
	}
	// Merges keep write order: rows come back in insert order.
	for i, r := range rows {
		if r.EventID != string(rune(0x100+i)) {
			t.Fatalf("row %d is %q: order lost", i, r.EventID)
		}
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "streamrec_analytics_rows_total", "events", "ok")); got != n {
		t.Errorf("rows_total{events,ok} = %v", got)
	}
	if got := gauge(t, reg, "streamrec_analytics_parts", "events"); got != float64(len(files(t, dir, "events"))) {
		t.Errorf("parts{events} = %v, files %v", got, files(t, dir, "events"))
	}
	if got := gauge(t, reg, "streamrec_analytics_replaced_parts", "events"); got != 0 {
		t.Errorf("replaced_parts{events} = %v with no reader", got)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name, table, result string) prometheus.Collector {
	t.Helper()
	v := gaugeOrCounter(t, reg, name, map[string]string{"table": table, "result": result})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	c.Add(v)
	return c
}

func gauge(t *testing.T, reg *prometheus.Registry, name, table string) float64 {
	return gaugeOrCounter(t, reg, name, map[string]string{"table": table})
}

func gaugeOrCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}
