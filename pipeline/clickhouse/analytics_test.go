package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/analyticstest"
	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
	"github.com/streamrec/streamrec/schemas"
)

// reader reads the analytics tables back as analysts do: with FINAL, which
// collapses rows of one key (the newest version of an item).
type reader struct{ conn driver.Conn }

var _ analyticstest.Reader = reader{}

// fromDateTime joins a DateTime and its millisecond column.
func fromDateTime(t time.Time, ms uint16) time.Time {
	return time.Unix(t.Unix(), int64(ms)*int64(time.Millisecond)).UTC()
}

func (r reader) Events(ctx context.Context) ([]schemas.ClickEvent, error) {
	rows, err := r.conn.Query(ctx, `SELECT event_id, event_type, user_id, session_id, item_id, query, price, quantity,
    event_time, event_ms, device, locale, page, reco_request_id FROM events FINAL ORDER BY event_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schemas.ClickEvent
	for rows.Next() {
		var (
			e   schemas.ClickEvent
			typ string
			qty uint32
			ts  time.Time
			ms  uint16
		)
		if err := rows.Scan(&e.EventID, &typ, &e.UserID, &e.SessionID, &e.ItemID, &e.Query, &e.Price, &qty,
			&ts, &ms, &e.Context.Device, &e.Context.Locale, &e.Context.Page, &e.Context.RecoRequestID); err != nil {
			return nil, err
		}
		e.Type, e.Quantity, e.Timestamp = schemas.EventType(typ), int(qty), fromDateTime(ts, ms)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (r reader) Items(ctx context.Context) ([]schemas.CatalogChange, error) {
	rows, err := r.conn.Query(ctx, `SELECT item_id, title, description, category_path, brand, price, currency,
    in_stock, attribute_keys, attribute_values, deleted, updated_at, updated_ms FROM items FINAL ORDER BY item_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schemas.CatalogChange
	for rows.Next() {
		var (
			c                schemas.CatalogChange
			inStock, deleted uint8
			keys, vals       []string
			ts               time.Time
			ms               uint16
		)
		if err := rows.Scan(&c.ItemID, &c.Title, &c.Description, &c.CategoryPath, &c.Brand, &c.Price, &c.Currency,
			&inStock, &keys, &vals, &deleted, &ts, &ms); err != nil {
			return nil, err
		}
		if len(keys) != len(vals) {
			return nil, fmt.Errorf("item %s: %d attribute keys, %d values", c.ItemID, len(keys), len(vals))
		}
		if len(keys) > 0 {
			c.Attributes = make(map[string]string, len(keys))
			for i, k := range keys {
				c.Attributes[k] = vals[i]
			}
		}
		c.Op = schemas.OpUpsert
		if deleted == 1 {
			c.Op = schemas.OpDelete
		}
		c.InStock, c.UpdatedAt = inStock == 1, fromDateTime(ts, ms)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (r reader) Recommendations(ctx context.Context) ([]pipeline.ServedRecommendation, error) {
	rows, err := r.conn.Query(ctx, `SELECT request_id, kind, user_id, item_id, query, items, scores, latency_ms,
    model_version, fallback, error, served_at, served_ms FROM recommendations FINAL ORDER BY request_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pipeline.ServedRecommendation
	for rows.Next() {
		var (
			s         pipeline.ServedRecommendation
			kind      string
			latencyMS float64
			fallback  uint8
			ts        time.Time
			ms        uint16
		)
		if err := rows.Scan(&s.RequestID, &kind, &s.UserID, &s.ItemID, &s.Query, &s.Items, &s.Scores, &latencyMS,
			&s.ModelVersion, &fallback, &s.Error, &ts, &ms); err != nil {
			return nil, err
		}
		s.Kind, s.Fallback, s.ServedAt = schemas.RecoKind(kind), fallback == 1, fromDateTime(ts, ms)
		s.Latency = time.Duration(math.Round(latencyMS * float64(time.Millisecond)))
		out = append(out, s)
	}
	return out, rows.Err()
}

// migrated connects to a fresh database with the analytics schema.
func migrated(t testing.TB) (context.Context, driver.Conn) {
	t.Helper()
	cfg := chtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	conn, err := clickhouse.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := clickhouse.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	return ctx, conn
}

// newAnalytics starts an Analytics on conn, closed when the test ends
// (before conn is: cleanups run last first).
func newAnalytics(t testing.TB, conn driver.Conn, cfg clickhouse.AnalyticsConfig, reg prometheus.Registerer) *clickhouse.Analytics {
	t.Helper()
	a, err := clickhouse.NewAnalytics(conn, cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

func TestAnalyticsConformance(t *testing.T) {
	configs := map[string]func(*clickhouse.AnalyticsConfig){
		"Default": func(c *clickhouse.AnalyticsConfig) { c.Batch.MaxWait = 10 * time.Millisecond },
		// Calls split across batches by rows and by bytes.
		"SmallBatches": func(c *clickhouse.AnalyticsConfig) {
			c.Batch = pipeline.BatchPolicy{MaxRecords: 50, MaxBytes: 3000, MaxWait: time.Millisecond}
			c.QueueSize = 2
		},
	}
	for name, modify := range configs {
		t.Run(name, func(t *testing.T) {
			analyticstest.Run(t, func(t *testing.T) (pipeline.Analytics, analyticstest.Reader) {
				_, conn := migrated(t)
				cfg := clickhouse.DefaultAnalyticsConfig()
				modify(&cfg)
				return newAnalytics(t, conn, cfg, prometheus.NewRegistry()), reader{conn}
			})
		})
	}
}

func TestAnalyticsConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*clickhouse.AnalyticsConfig)
		want   []string
	}{
		{"default", func(*clickhouse.AnalyticsConfig) {}, nil},
		{"batch", func(c *clickhouse.AnalyticsConfig) { c.Batch.MaxRecords = 0 }, []string{"a.batch.max_records must be > 0"}},
		{"queue", func(c *clickhouse.AnalyticsConfig) { c.QueueSize = 0 }, []string{"a.queue_size must be > 0"}},
		{"send timeout", func(c *clickhouse.AnalyticsConfig) { c.SendTimeout = 0 }, []string{"a.send_timeout must be > 0"}},
		{"attempts", func(c *clickhouse.AnalyticsConfig) { c.Retry.MaxAttempts = 0 }, []string{"a.retry.max_attempts must be > 0"}},
		{"backoffs", func(c *clickhouse.AnalyticsConfig) {
			c.Retry.InitialBackoff, c.Retry.MaxBackoff = -1, -2
		}, []string{"a.retry.initial_backoff must be >= 0", "a.retry.max_backoff must be >= a.retry.initial_backoff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clickhouse.DefaultAnalyticsConfig()
			tt.modify(&cfg)
			err := cfg.Validate("a")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q does not contain %q", err, w)
				}
			}
		})
	}
}

func event(id string, at time.Time) schemas.ClickEvent {
	return schemas.ClickEvent{EventID: id, Type: schemas.EventView, UserID: "u", ItemID: "i", Timestamp: at}
}

func events(prefix string, n int) []schemas.ClickEvent {
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	out := make([]schemas.ClickEvent, n)
	for i := range out {
		out[i] = event(fmt.Sprintf("%s-%06d", prefix, i), at.Add(time.Duration(i)*time.Millisecond))
	}
	return out
}

// TestAnalyticsRejectsRows checks that rows the tables cannot hold fail
// their own call, permanently, without reaching the server.
func TestAnalyticsRejectsRows(t *testing.T) {
	_, conn := migrated(t)
	a := newAnalytics(t, conn, clickhouse.DefaultAnalyticsConfig(), nil)
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	badType, negative := event("e1", at), event("e2", at)
	badType.Type, negative.Quantity = "hover", -1
	tests := map[string]error{
		"unknown event type":  a.InsertEvents(ctx, []schemas.ClickEvent{event("ok", at), badType}),
		"negative quantity":   a.InsertEvents(ctx, []schemas.ClickEvent{negative}),
		"before 1970":         a.InsertEvents(ctx, []schemas.ClickEvent{event("e3", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC))}),
		"zero time":           a.InsertItems(ctx, []schemas.CatalogChange{{Op: schemas.OpUpsert, ItemID: "i"}}),
		"unknown op":          a.InsertItems(ctx, []schemas.CatalogChange{{Op: "merge", ItemID: "i", UpdatedAt: at}}),
		"unknown reco kind":   a.InsertRecommendations(ctx, []pipeline.ServedRecommendation{{RequestID: "r", Kind: "trending", ServedAt: at}}),
		"after 2106 (UInt32)": a.InsertRecommendations(ctx, []pipeline.ServedRecommendation{{RequestID: "r", Kind: schemas.KindSearch, ServedAt: time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)}}),
	}
	for name, err := range tests {
		if err == nil || !pipeline.IsPermanent(err) {
			t.Errorf("%s: %v, want a Permanent error", name, err)
		}
	}
	if got, err := (reader{conn}).Events(ctx); err != nil || len(got) != 0 {
		t.Errorf("events stored: %v, %v; want none", got, err)
	}
}

// TestAnalyticsPermanentServerErrors checks that a table that does not
// match the schema fails the insert at once, marked Permanent, unretried.
func TestAnalyticsPermanentServerErrors(t *testing.T) {
	tests := []struct {
		name string
		ddl  string
	}{
		// The server refuses the column list (NO_SUCH_COLUMN_IN_TABLE).
		{"missing column", "CREATE TABLE events (event_id String) ENGINE = Memory"},
		// The server's block says String where the adapter sends a time.
		{"wrong type", `CREATE TABLE events (event_id String, event_type String, user_id String, session_id String,
    item_id String, query String, price Float64, quantity UInt32, event_time String, event_ms UInt16,
    device String, locale String, page String, reco_request_id String) ENGINE = Memory`},
		{"no table", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, conn := open(t)
			if tt.ddl != "" {
				if err := conn.Exec(ctx, tt.ddl); err != nil {
					t.Fatal(err)
				}
			}
			reg := prometheus.NewRegistry()
			cfg := clickhouse.DefaultAnalyticsConfig()
			cfg.Batch.MaxWait = 0
			cfg.Retry.InitialBackoff, cfg.Retry.MaxBackoff = time.Hour, time.Hour // a retry would time the test out
			a := newAnalytics(t, conn, cfg, reg)
			err := a.InsertEvents(ctx, events("e", 3))
			if err == nil || !pipeline.IsPermanent(err) {
				t.Fatalf("InsertEvents: %v, want a Permanent error", err)
			}
			t.Logf("InsertEvents: %v", err)
			if n := metric(t, reg, "streamrec_analytics_retries_total", "events"); n != 0 {
				t.Errorf("retries = %v, want 0", n)
			}
			if n := metric(t, reg, "streamrec_analytics_rows_total", "events", "error"); n != 3 {
				t.Errorf("rows_total{result=error} = %v, want 3", n)
			}
		})
	}
}

// TestAnalyticsRetriesTransientErrors points the adapter at a port nobody
// listens on: every attempt fails to connect, is retried, and the callers
// get the last error, not marked Permanent.
func TestAnalyticsRetriesTransientErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	reg := prometheus.NewRegistry()
	cfg := clickhouse.DefaultAnalyticsConfig()
	cfg.Batch.MaxWait = time.Millisecond
	cfg.Retry = clickhouse.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	a := newAnalytics(t, conn, cfg, reg)

	// Two callers share the failing batch; both get its error.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = a.InsertEvents(context.Background(), events(fmt.Sprint(i), 5)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || pipeline.IsPermanent(err) {
			t.Errorf("caller %d: %v, want a transient error", i, err)
		}
	}
	t.Logf("InsertEvents: %v", errs[0])
	if n := metric(t, reg, "streamrec_analytics_rows_total", "events", "error"); n != 10 {
		t.Errorf("rows_total{result=error} = %v, want 10", n)
	}
	// Each failed batch was retried twice (3 attempts); the callers may
	// have shared one batch or not.
	if n := metric(t, reg, "streamrec_analytics_retries_total", "events"); n != 2 && n != 4 {
		t.Errorf("retries = %v, want 2 or 4", n)
	}
}

// TestAnalyticsCloseSendsPending checks that rows waiting for MaxWait are
// sent by Close, and that a caller whose context ends stops waiting.
func TestAnalyticsCloseSendsPending(t *testing.T) {
	ctx, conn := migrated(t)
	reg := prometheus.NewRegistry()
	cfg := clickhouse.DefaultAnalyticsConfig()
	cfg.Batch.MaxWait = time.Hour
	a := newAnalytics(t, conn, cfg, reg)

	gone, cancel := context.WithCancel(ctx)
	abandoned := make(chan error, 1)
	go func() { abandoned <- a.InsertEvents(gone, events("gone", 2)) }()
	kept := make(chan error, 1)
	go func() { kept <- a.InsertEvents(ctx, events("kept", 3)) }()

	queued := func() float64 { return metric(t, reg, "streamrec_analytics_queue_rows", "events") }
	eventually(t, func() bool { return queued() == 5 })
	cancel()
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Errorf("insert whose context ended: %v, want context.Canceled", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-kept; err != nil {
		t.Errorf("insert pending at Close: %v", err)
	}
	got, err := (reader{conn}).Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("stored %d events, want the 3 kept (the abandoned are dropped)", len(got))
	}
	if q := queued(); q != 0 {
		t.Errorf("queue_rows after Close = %v, want 0", q)
	}
}

// metric returns the value of the counter or gauge name of table (and
// result, for a metric with that label too).
func metric(t *testing.T, reg *prometheus.Registry, name, table string, result ...string) float64 {
	t.Helper()
	want := map[string]string{"table": table}
	if len(result) > 0 {
		want["result"] = result[0]
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if !maps.Equal(got, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("condition not met within 10s")
		}
	}
}

// BenchmarkInsertEvents inserts 200,000 events per iteration in 200
// concurrent calls of 1,000, with the default config, and reports rows/s.
func BenchmarkInsertEvents(b *testing.B) {
	const (
		calls   = 200
		perCall = 1000
	)
	_, conn := migrated(b)
	a := newAnalytics(b, conn, clickhouse.DefaultAnalyticsConfig(), nil)
	batches := make([][]schemas.ClickEvent, calls)
	for i := range batches {
		batches[i] = events(fmt.Sprintf("c%03d", i), perCall)
		for j := range batches[i] {
			e := &batches[i][j]
			e.SessionID, e.Context.Device, e.Context.Page = "session-"+e.EventID, "web", "/products/"+e.ItemID
		}
	}
	ctx := context.Background()
	start := time.Now()
	n := 0
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make([]error, calls)
		for i, batch := range batches {
			wg.Go(func() { errs[i] = a.InsertEvents(ctx, batch) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*calls*perCall)/time.Since(start).Seconds(), "rows/s")
}
