package duckdb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/duckdb"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.000", s)
	if err != nil {
		panic(err)
	}
	return t
}

// fixture is one day and a bit of a small shop.
var (
	events = []schemas.ClickEvent{
		{EventID: "e01", Type: schemas.EventView, UserID: "u1", SessionID: "s1", ItemID: "A", Timestamp: at("2024-05-01 10:05:00.123"), Context: schemas.EventContext{Device: "mobile", Locale: "en-US", Page: "home"}},
		{EventID: "e02", Type: schemas.EventView, UserID: "u2", SessionID: "s2", ItemID: "A", Timestamp: at("2024-05-01 10:20:00.000")},
		{EventID: "e03", Type: schemas.EventClick, UserID: "u1", SessionID: "s1", ItemID: "A", Timestamp: at("2024-05-01 10:21:00.000"), Context: schemas.EventContext{RecoRequestID: "r1"}},
		{EventID: "e04", Type: schemas.EventAddToCart, UserID: "u1", SessionID: "s1", ItemID: "A", Price: 5, Quantity: 2, Timestamp: at("2024-05-01 10:22:00.000")},
		{EventID: "e05", Type: schemas.EventPurchase, UserID: "u1", SessionID: "s1", ItemID: "A", Price: 5, Quantity: 2, Timestamp: at("2024-05-01 10:30:00.000")},
		{EventID: "e06", Type: schemas.EventPurchase, UserID: "u2", SessionID: "s2", ItemID: "A", Price: 7.5, Quantity: 1, Timestamp: at("2024-05-01 11:00:00.000")},
		{EventID: "e07", Type: schemas.EventView, UserID: "u3", SessionID: "s3", ItemID: "B", Timestamp: at("2024-05-01 11:10:00.000")},
		{EventID: "e08", Type: schemas.EventSearch, UserID: "u1", SessionID: "s1", Query: "  Red Shoes\t", Timestamp: at("2024-05-01 09:00:00.000")},
		{EventID: "e09", Type: schemas.EventSearch, UserID: "u2", SessionID: "s2", Query: "red shoes", Timestamp: at("2024-05-01 09:30:00.000")},
		{EventID: "e10", Type: schemas.EventSearch, UserID: "u2", Query: "RED SHOES", Timestamp: at("2024-05-02 00:10:00.000")},
		{EventID: "e11", Type: schemas.EventSearch, UserID: "u3", Query: "   ", Timestamp: at("2024-05-02 00:11:00.000")},
		{EventID: "e12", Type: schemas.EventClick, UserID: "u3", SessionID: "s3", ItemID: "B", Timestamp: at("2024-05-01 11:11:00.000"), Context: schemas.EventContext{RecoRequestID: "r2"}},
		{EventID: "e13", Type: schemas.EventView, UserID: "u3", SessionID: "s3", ItemID: "B", Timestamp: at("2024-05-01 11:12:00.000"), Context: schemas.EventContext{RecoRequestID: "r3"}},
	}
	items = []schemas.CatalogChange{
		{Op: schemas.OpUpsert, ItemID: "A", Title: "Shoe", Price: 10, Currency: "EUR", InStock: true, CategoryPath: []string{"shoes", "red"}, Attributes: map[string]string{"size": "42", "color": "red"}, UpdatedAt: at("2024-05-01 08:00:00.000")},
		{Op: schemas.OpUpsert, ItemID: "A", Title: "Red shoe", Price: 12, Currency: "EUR", InStock: true, UpdatedAt: at("2024-05-01 09:00:00.500")},
		{Op: schemas.OpUpsert, ItemID: "B", Title: "Sock", Price: 2, Currency: "EUR", UpdatedAt: at("2024-04-30 08:00:00.000")},
		{Op: schemas.OpDelete, ItemID: "B", UpdatedAt: at("2024-05-01 12:00:00.000")},
		{Op: schemas.OpUpsert, ItemID: "C", Title: "Hat", Price: 20, Currency: "EUR", InStock: true, UpdatedAt: at("2024-04-29 08:00:00.000")},
	}
	recos = []pipeline.ServedRecommendation{
		{RequestID: "r1", Kind: schemas.KindForUser, UserID: "u1", Items: []string{"A", "B"}, Scores: []float32{0.9, 0.5}, Latency: 1500 * time.Microsecond, ModelVersion: "m1", ServedAt: at("2024-05-01 10:00:00.000")},
		{RequestID: "r2", Kind: schemas.KindSimilarItems, ItemID: "A", Items: []string{"B"}, Scores: []float32{0.7}, ModelVersion: "m1", ServedAt: at("2024-05-01 10:00:01.000")},
		{RequestID: "r3", Kind: schemas.KindForUser, UserID: "u3", Items: []string{"B"}, Scores: []float32{0.4}, ModelVersion: "m1", ServedAt: at("2024-05-01 10:00:02.000")},
		{RequestID: "r4", Kind: schemas.KindSearch, Query: "hat", ModelVersion: "m0", Fallback: true, Error: "", ServedAt: at("2024-05-02 07:00:00.000")},
	}
)

// checks are queries and their exact answers (TSV) over the fixture,
// stored once or any number of times.
var checks = []struct{ name, query, want string }{
	{"events", "SELECT event_id, event_type, item_id, event_time, event_ms, device, reco_request_id FROM events WHERE event_id IN ('e01', 'e03') ORDER BY event_id",
		"event_id\tevent_type\titem_id\tevent_time\tevent_ms\tdevice\treco_request_id\n" +
			"e01\tview\tA\t2024-05-01 10:05:00.123\t123\tmobile\t\n" +
			"e03\tclick\tA\t2024-05-01 10:21:00\t0\t\tr1\n"},
	{"events count", "SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL", "n\tids\n13\t13\n"},
	{"items", "SELECT item_id, title, price, in_stock, deleted, category_path, attribute_keys, attribute_values, updated_at, updated_ms FROM items ORDER BY item_id",
		"item_id\ttitle\tprice\tin_stock\tdeleted\tcategory_path\tattribute_keys\tattribute_values\tupdated_at\tupdated_ms\n" +
			"A\tRed shoe\t12\t1\t0\t[]\t[]\t[]\t2024-05-01 09:00:00.5\t500\n" +
			"B\t\t0\t0\t1\t[]\t[]\t[]\t2024-05-01 12:00:00\t0\n" +
			"C\tHat\t20\t1\t0\t[]\t[]\t[]\t2024-04-29 08:00:00\t0\n"},
	{"item history", "SELECT item_id, category_path, attribute_keys, attribute_values FROM raw.items WHERE item_id = 'A' AND price = 10 LIMIT 1",
		"item_id\tcategory_path\tattribute_keys\tattribute_values\nA\t['shoes','red']\t['color','size']\t['red','42']\n"},
	{"recommendations", "SELECT request_id, kind, items, scores, latency_ms, model_version, fallback, served_at, served_ms FROM recommendations ORDER BY request_id",
		"request_id\tkind\titems\tscores\tlatency_ms\tmodel_version\tfallback\tserved_at\tserved_ms\n" +
			"r1\tfor_user\t['A','B']\t[0.9,0.5]\t1.5\tm1\t0\t2024-05-01 10:00:00\t0\n" +
			"r2\tsimilar_items\t['B']\t[0.7]\t0\tm1\t0\t2024-05-01 10:00:01\t0\n" +
			"r3\tfor_user\t['B']\t[0.4]\t0\tm1\t0\t2024-05-01 10:00:02\t0\n" +
			"r4\tsearch\t[]\t[]\t0\tm0\t1\t2024-05-02 07:00:00\t0\n"},
	{"item_hourly_stats", "SELECT * FROM item_hourly_stats ORDER BY item_id, hour",
		"item_id\thour\tviews\tclicks\tcarts\tpurchases\trevenue\n" +
			"A\t2024-05-01 10:00:00\t2\t1\t1\t1\t10\n" +
			"A\t2024-05-01 11:00:00\t0\t0\t0\t1\t7.5\n" +
			"B\t2024-05-01 11:00:00\t2\t1\t0\t0\t0\n"},
	{"search_stats", "SELECT * FROM search_stats ORDER BY query, day",
		"query\tday\tsearch_count\tuser_count\tsession_count\n" +
			"red shoes\t2024-05-01\t2\t2\t2\n" +
			"red shoes\t2024-05-02\t1\t1\t1\n"},
	{"reco_ctr_stats", "SELECT * FROM reco_ctr_stats ORDER BY day, kind",
		"day\tkind\tmodel_version\tfallback\tserved\tclicked\tctr\n" +
			"2024-05-01\tfor_user\tm1\t0\t2\t1\t0.5\n" +
			"2024-05-01\tsimilar_items\tm1\t0\t1\t1\t1\n" +
			"2024-05-02\tsearch\tm0\t1\t1\t0\t0\n"},
	{"clickhouse functions", `SELECT toStartOfHour(event_time) AS h, toDate(event_time) AS d, toStartOfDay(event_time) AS sod,
    countIf(event_type = 'view') AS views, sumIf(price * quantity, event_type = 'purchase') AS revenue,
    uniqExact(user_id) AS users, uniqExactIf(user_id, event_type = 'view') AS viewers, lowerUTF8('ÄB') AS l, toYYYYMM(min(event_time)) AS ym
FROM events FINAL WHERE item_id = 'A' GROUP BY h, d, sod ORDER BY h`,
		"h\td\tsod\tviews\trevenue\tusers\tviewers\tl\tym\n" +
			"2024-05-01 10:00:00\t2024-05-01\t2024-05-01 00:00:00\t2\t10\t2\t2\täb\t202405\n" +
			"2024-05-01 11:00:00\t2024-05-01\t2024-05-01 00:00:00\t0\t7.5\t1\t0\täb\t202405\n"},
	{"yesterday and sumIf of nothing", `SELECT CAST(yesterday() = today() - INTERVAL 1 DAY AS INTEGER) AS y, typeof(yesterday()) AS t,
    sumIf(price, event_type = 'none') AS no_revenue, sumIf(quantity, event_type = 'none') AS no_units FROM events`,
		"y\tt\tno_revenue\tno_units\n1\tDATE\t0\t0\n"},
	{"argMax and dateDiff", "SELECT argMax(title, updated_at) AS t, dateDiff('hour', min(updated_at), max(updated_at)) AS hours FROM raw.items WHERE item_id = 'A'",
		"t\thours\nRed shoe\t1\n"},
}

func runChecks(t *testing.T, db *duckdb.DB) {
	t.Helper()
	for _, c := range checks {
		res, err := db.Query(t.Context(), c.query)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var b strings.Builder
		if err := res.Write(&b, duckdb.FormatTSV); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", c.name, b.String(), c.want)
		}
	}
}

// count is the single integer a query returns.
func count(t *testing.T, db *duckdb.DB, query string) int64 {
	t.Helper()
	res, err := db.Query(t.Context(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		t.Fatalf("%s: %v", query, res.Rows)
	}
	n, ok := res.Rows[0][0].(int64)
	if !ok {
		t.Fatalf("%s: %T %v", query, res.Rows[0][0], res.Rows[0][0])
	}
	return n
}

func openStore(t *testing.T, dir string, compact int) *parquetstore.Store {
	t.Helper()
	cfg := parquetstore.DefaultConfig()
	cfg.Batch.MaxWait = 0
	cfg.CompactParts = compact
	s, err := parquetstore.Open(dir, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func insertAll(t *testing.T, s *parquetstore.Store) {
	t.Helper()
	ctx := t.Context()
	if err := s.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRecommendations(ctx, recos); err != nil {
		t.Fatal(err)
	}
}

func TestViews(t *testing.T) {
	dir := t.TempDir()
	db, err := duckdb.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Before any file: every view answers, empty.
	for _, v := range []string{"events", "items", "recommendations", "item_hourly_stats", "search_stats", "reco_ctr_stats", "raw.events"} {
		if n := count(t, db, "SELECT count(*) FROM "+v); n != 0 {
			t.Errorf("%s: %d rows before any insert", v, n)
		}
	}
	emptyTypes := describe(t, db)

	s := openStore(t, dir, 0)
	defer s.Close()
	insertAll(t, s)
	if got := describe(t, db); got != emptyTypes {
		t.Errorf("columns over files differ from the empty views'\nfiles:\n%s\nempty:\n%s", got, emptyTypes)
	}
	runChecks(t, db)

	// A replay of everything, one row at a time and in reverse, changes
	// no answer.
	for i := len(events) - 1; i >= 0; i-- {
		if err := s.InsertEvents(t.Context(), events[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	insertAll(t, s)
	if n := count(t, db, "SELECT count(*) FROM raw.events"); n != 3*int64(len(events)) {
		t.Errorf("raw.events has %d rows, want %d", n, 3*len(events))
	}
	runChecks(t, db)
}

// describe lists the columns and types of every view.
func describe(t *testing.T, db *duckdb.DB) string {
	t.Helper()
	res, err := db.Query(t.Context(), `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema IN ('main', 'raw') ORDER BY table_schema, table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := res.Write(&b, duckdb.FormatTSV); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 2)
	// One insert per event, each its own part: the events of 2024-05-01
	// are merged down to at most 2 parts as they come.
	for _, e := range events {
		if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range events[:5] { // replays
		if err := s.InsertEvents(t.Context(), []schemas.ClickEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertItems(t.Context(), items); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRecommendations(t.Context(), recos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	parts, err := filepath.Glob(filepath.Join(dir, "events", "date=2024-05-01", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) > 2 {
		t.Errorf("date=2024-05-01 has %d files after compaction, want <= 2: %v", len(parts), parts)
	}
	db, err := duckdb.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(t, db, "SELECT count(*) FROM raw.events"); n != int64(len(events)+5) {
		t.Errorf("raw.events has %d rows, want %d", n, len(events)+5)
	}
	runChecks(t, db)
}

func TestQueryErrors(t *testing.T) {
	db, err := duckdb.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Query(t.Context(), "SELECT nope FROM events"); err == nil {
		t.Error("unknown column: no error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := db.Query(ctx, "SELECT 1"); err == nil {
		t.Error("canceled context: no error")
	}
	// Several statements: the last one's rows.
	res, err := db.Query(t.Context(), "CREATE TEMP TABLE x AS SELECT 41 AS n; SELECT n + 1 AS n FROM x")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || res.Rows[0][0] != int32(42) {
		t.Errorf("got %v", res.Rows)
	}
}
