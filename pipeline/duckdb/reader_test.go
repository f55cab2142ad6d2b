package duckdb_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/analyticstest"
	"github.com/streamrec/streamrec/pipeline/duckdb"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/schemas"
)

// reader reads a parquetstore folder back through the SQL views, as the
// conformance suite (pipeline/analyticstest) reads every backend:
// deduplicated rows ordered by key.
type reader struct{ db *duckdb.DB }

func (r reader) query(ctx context.Context, q string) ([][]any, error) {
	res, err := r.db.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	return res.Rows, nil
}

func (r reader) Events(ctx context.Context) ([]schemas.ClickEvent, error) {
	rows, err := r.query(ctx, `SELECT event_id, event_type, user_id, session_id, item_id, query, price, quantity,
		event_time, device, locale, page, reco_request_id FROM events ORDER BY event_id`)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.ClickEvent, len(rows))
	for i, v := range rows {
		out[i] = schemas.ClickEvent{
			EventID: v[0].(string), Type: schemas.EventType(v[1].(string)), UserID: v[2].(string), SessionID: v[3].(string),
			ItemID: v[4].(string), Query: v[5].(string), Price: v[6].(float64), Quantity: int(v[7].(uint32)),
			Timestamp: v[8].(time.Time),
			Context:   schemas.EventContext{Device: v[9].(string), Locale: v[10].(string), Page: v[11].(string), RecoRequestID: v[12].(string)},
		}
	}
	return out, nil
}

func (r reader) Items(ctx context.Context) ([]schemas.CatalogChange, error) {
	rows, err := r.query(ctx, `SELECT item_id, title, description, category_path, brand, price, currency, in_stock,
		attribute_keys, attribute_values, deleted, updated_at FROM items ORDER BY item_id`)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.CatalogChange, len(rows))
	for i, v := range rows {
		c := schemas.CatalogChange{
			Op: schemas.OpUpsert, ItemID: v[0].(string), Title: v[1].(string), Description: v[2].(string),
			CategoryPath: strs(v[3]), Brand: v[4].(string), Price: v[5].(float64), Currency: v[6].(string),
			InStock: v[7].(uint8) == 1, UpdatedAt: v[11].(time.Time),
		}
		if keys, values := strs(v[8]), strs(v[9]); len(keys) > 0 {
			c.Attributes = map[string]string{}
			for j, k := range keys {
				c.Attributes[k] = values[j]
			}
		}
		if v[10].(uint8) == 1 {
			c.Op = schemas.OpDelete
		}
		out[i] = c
	}
	return out, nil
}

func (r reader) Recommendations(ctx context.Context) ([]pipeline.ServedRecommendation, error) {
	rows, err := r.query(ctx, `SELECT request_id, kind, user_id, item_id, query, items, scores, latency_ms,
		model_version, fallback, error, served_at FROM recommendations ORDER BY request_id`)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.ServedRecommendation, len(rows))
	for i, v := range rows {
		var scores []float32
		for _, s := range v[6].([]any) {
			scores = append(scores, s.(float32))
		}
		out[i] = pipeline.ServedRecommendation{
			RequestID: v[0].(string), Kind: schemas.RecoKind(v[1].(string)), UserID: v[2].(string), ItemID: v[3].(string),
			Query: v[4].(string), Items: strs(v[5]), Scores: scores,
			Latency:      time.Duration(v[7].(float64) * float64(time.Millisecond)),
			ModelVersion: v[8].(string), Fallback: v[9].(uint8) == 1, Error: v[10].(string), ServedAt: v[11].(time.Time),
		}
	}
	return out, nil
}

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// TestReaderRoundTrip: what goes in through the store comes back out of
// the views, once per key, however often it was inserted.
func TestReaderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 2)
	insertAll(t, s)
	insertAll(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := duckdb.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := reader{db}

	gotEvents, err := r.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantEvents := slices.Clone(events)
	for i := range wantEvents {
		wantEvents[i].Timestamp = wantEvents[i].Timestamp.UTC()
	}
	slices.SortFunc(wantEvents, func(a, b schemas.ClickEvent) int { return strings.Compare(a.EventID, b.EventID) })
	diff(t, "events", gotEvents, wantEvents)

	gotItems, err := r.Items(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newest := map[string]schemas.CatalogChange{}
	for _, c := range items {
		if old, ok := newest[c.ItemID]; !ok || c.UpdatedAt.After(old.UpdatedAt) {
			newest[c.ItemID] = c
		}
	}
	var wantItems []schemas.CatalogChange
	for _, c := range newest {
		wantItems = append(wantItems, c)
	}
	slices.SortFunc(wantItems, func(a, b schemas.CatalogChange) int { return strings.Compare(a.ItemID, b.ItemID) })
	diff(t, "items", gotItems, wantItems)

	gotRecos, err := r.Recommendations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "recommendations", gotRecos, recos)
}

func diff[T any](t *testing.T, name string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", name, len(got), len(want))
		return
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s row %d:\ngot  %s\nwant %s", name, i, fmt.Sprintf("%+v", got[i]), fmt.Sprintf("%+v", want[i]))
		}
	}
}

// TestConformance runs the pipeline.Analytics suite against parquetstore,
// reading through the views.
func TestConformance(t *testing.T) {
	analyticstest.Run(t, func(t *testing.T) (pipeline.Analytics, analyticstest.Reader) {
		dir := t.TempDir()
		cfg := parquetstore.DefaultConfig()
		cfg.Batch.MaxWait = 5 * time.Millisecond
		cfg.CompactParts = 4
		s, err := parquetstore.Open(dir, cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db, err := duckdb.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return s, reader{db}
	})
}
