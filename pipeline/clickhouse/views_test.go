package clickhouse_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/schemas"
)

// eventColumns is the explicit column list that PrepareBatch needs on 18.16;
// ingested_at takes its DEFAULT.
const eventColumns = "event_id, event_type, user_id, session_id, item_id, query, price, quantity, " +
	"event_time, event_ms, device, locale, page, reco_request_id"

func insertEvents(ctx context.Context, t *testing.T, conn driver.Conn, events []schemas.ClickEvent) {
	t.Helper()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO events ("+eventColumns+")")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		ts := e.Timestamp.UTC()
		if err := batch.Append(e.EventID, string(e.Type), e.UserID, e.SessionID, e.ItemID, e.Query,
			e.Price, uint32(e.Quantity), ts.Truncate(time.Second), uint16(ts.Nanosecond()/int(time.Millisecond)),
			e.Context.Device, e.Context.Locale, e.Context.Page, e.Context.RecoRequestID); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

func insertReplies(ctx context.Context, t *testing.T, conn driver.Conn, kind schemas.RecoKind, servedAt time.Time, replies []schemas.RecoReply) {
	t.Helper()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO recommendations (request_id, kind, user_id, item_id, query, "+
		"items, scores, latency_ms, model_version, fallback, error, served_at, served_ms)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range replies {
		var items []string
		var scores []float32
		for _, it := range r.Items {
			items = append(items, it.ItemID)
			scores = append(scores, float32(it.Score))
		}
		var fallback uint8
		if r.Fallback {
			fallback = 1
		}
		if err := batch.Append(r.RequestID, string(kind), "u1", "", "", items, scores, 3.5, r.ModelVersion,
			fallback, r.Error, servedAt.Truncate(time.Second), uint16(servedAt.Nanosecond()/int(time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// queryStrings returns every row of query, each column formatted with %v.
func queryStrings(ctx context.Context, t *testing.T, conn driver.Conn, query string) [][]string {
	t.Helper()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out [][]string
	types := rows.ColumnTypes()
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// TestReplayLeavesAnalystViewsUnchanged inserts the same events (and served
// replies) twice, as an at-least-once consumer may, and checks that every
// view analysts read counts them once.
func TestReplayLeavesAnalystViewsUnchanged(t *testing.T) {
	ctx, conn := open(t)
	if _, err := clickhouse.Migrate(ctx, conn, schemaDir); err != nil {
		t.Fatal(err)
	}

	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	ev := func(id string, typ schemas.EventType, user, item string, price float64, qty int, min int, reco string) schemas.ClickEvent {
		return schemas.ClickEvent{EventID: id, Type: typ, UserID: user, SessionID: "s-" + user, ItemID: item,
			Price: price, Quantity: qty, Timestamp: at.Add(time.Duration(min)*time.Minute + 123*time.Millisecond),
			Context: schemas.EventContext{Device: "web", Locale: "en-US", Page: "home", RecoRequestID: reco}}
	}
	search := func(id, user, query string) schemas.ClickEvent {
		e := ev(id, schemas.EventSearch, user, "", 0, 0, 5, "")
		e.Query = query
		return e
	}
	events := []schemas.ClickEvent{
		ev("e1", schemas.EventView, "u1", "i1", 0, 0, 1, "r1"),
		ev("e2", schemas.EventView, "u2", "i1", 0, 0, 2, ""),
		ev("e3", schemas.EventClick, "u1", "i1", 0, 0, 3, "r1"),
		ev("e4", schemas.EventAddToCart, "u1", "i1", 9.5, 2, 4, "r1"),
		ev("e5", schemas.EventPurchase, "u1", "i1", 9.5, 2, 5, "r1"),
		// Same item, user and amount as e5: a second purchase, not a replay.
		ev("e6", schemas.EventPurchase, "u1", "i1", 9.5, 2, 5, ""),
		ev("e7", schemas.EventView, "u1", "i2", 0, 0, 61, "r2"),
		search("e8", "u1", "Red Shoes"),
		search("e9", "u2", "  red shoes "),
		search("e10", "u2", "boots"),
	}
	replies := []schemas.RecoReply{
		{RequestID: "r1", ModelVersion: "m1", Items: []schemas.ReplyItem{{ItemID: "i1", Score: 0.9}, {ItemID: "i2", Score: 0.5}}},
		{RequestID: "r2", ModelVersion: "m1", Items: []schemas.ReplyItem{{ItemID: "i2", Score: 0.7}}},
		{RequestID: "r3", ModelVersion: "m1", Fallback: true, Items: []schemas.ReplyItem{{ItemID: "i3", Score: 1}}},
	}

	queries := map[string]struct {
		query string
		want  [][]string
	}{
		"item_hourly_stats": {
			"SELECT item_id, toString(hour), views, clicks, carts, purchases, revenue FROM item_hourly_stats ORDER BY item_id, hour",
			[][]string{
				{"i1", "2026-03-14 10:00:00", "2", "1", "1", "2", "38"},
				{"i2", "2026-03-14 11:00:00", "1", "0", "0", "0", "0"},
			},
		},
		"search_stats": {
			"SELECT query, toString(day), search_count, user_count, session_count FROM search_stats ORDER BY query",
			[][]string{
				{"boots", "2026-03-14", "1", "1", "1"},
				{"red shoes", "2026-03-14", "2", "2", "2"},
			},
		},
		"reco_ctr_stats": {
			"SELECT toString(day), toString(kind), model_version, fallback, served, clicked, ctr FROM reco_ctr_stats ORDER BY fallback",
			[][]string{
				{"2026-03-14", "for_user", "m1", "0", "2", "1", "0.5"},
				{"2026-03-14", "for_user", "m1", "1", "1", "0", "0"},
			},
		},
		"events FINAL": {
			"SELECT count(), uniqExact(event_id) FROM events FINAL",
			[][]string{{"10", "10"}},
		},
	}

	for round := 1; round <= 2; round++ {
		insertEvents(ctx, t, conn, events)
		insertReplies(ctx, t, conn, schemas.KindForUser, at, replies)
		for name, q := range queries {
			if got := queryStrings(ctx, t, conn, q.query); !reflect.DeepEqual(got, q.want) {
				t.Errorf("after insert %d, %s = %q, want %q", round, name, got, q.want)
			}
		}
	}

	// Parts merged, the same counts still hold.
	for _, table := range []string{"events", "recommendations", "item_hourly_mv", "search_daily_mv", "reco_events_mv"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatalf("optimize %s: %v", table, err)
		}
	}
	for name, q := range queries {
		if got := queryStrings(ctx, t, conn, q.query); !reflect.DeepEqual(got, q.want) {
			t.Errorf("after merging, %s = %q, want %q", name, got, q.want)
		}
	}
	if got := queryStrings(ctx, t, conn, "SELECT count() FROM events"); got[0][0] != "10" {
		t.Errorf("after merging, events holds %s rows, want 10", got[0][0])
	}
}

// TestItemsKeepNewestVersion checks that the catalog snapshot keeps the newest
// change of an item, ordered to the millisecond.
func TestItemsKeepNewestVersion(t *testing.T) {
	ctx, conn := open(t)
	if _, err := clickhouse.Migrate(ctx, conn, schemaDir); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	insert := func(title string, deleted uint8, ms uint16) {
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO items (item_id, title, description, category_path, brand, "+
			"price, currency, in_stock, attribute_keys, attribute_values, deleted, updated_at, updated_ms)")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append("i1", title, "", []string{"shoes", "running"}, "acme", 10.0, "EUR", uint8(1),
			[]string{"color"}, []string{"red"}, deleted, at, ms); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	// Inserted out of order: the change at .900 is newest.
	insert("newest", 0, 900)
	insert("older", 0, 100)
	insert("older again", 0, 100)

	want := [][]string{{"i1", "newest", "0"}}
	if got := queryStrings(ctx, t, conn, "SELECT item_id, title, deleted FROM items FINAL"); !reflect.DeepEqual(got, want) {
		t.Errorf("items FINAL = %q, want %q", got, want)
	}
}
