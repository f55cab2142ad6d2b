package analyticsdoc_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the server's time zone, on machines without /usr/share/zoneinfo

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// docFile is the analysts' guide whose queries the test runs.
const docFile = "../analytics.md"

// minQueries is the fewest named queries the guide may have.
const minQueries = 10

// gap is how far the data keeps from the edge of the sliding window the
// queries use (now() - INTERVAL 1 DAY), and so how long after building the
// data the queries may run before an event could cross that edge.
const gap = 10 * time.Minute

// queryRE matches a named query: the marker line, then a ```sql block, then
// optionally its DuckDB variant: a `<!-- duckdb: name -->` marker and a
// second ```sql block, with nothing but blank space between.
var queryRE = regexp.MustCompile("(?s)<!-- query: ([a-z0-9_]+) -->[ \t]*\n```sql\n(.*?)```" +
	"(?:\\s*<!-- duckdb: ([a-z0-9_]+) -->[ \t]*\n```sql\n(.*?)```)?")

// docQuery is a named query of the guide: its ClickHouse text and, for a
// query that cannot run unchanged on DuckDB (`streamrec sql`), the variant
// run there instead ("" when the ClickHouse text runs on both).
type docQuery struct{ name, sql, duckdb string }

// onDuckDB is the text `streamrec sql` runs.
func (q docQuery) onDuckDB() string { return cmp.Or(q.duckdb, q.sql) }

// docQueries returns the named queries of docFile, failing the test when a
// marker has no sql block after it, a DuckDB variant does not directly
// follow the query it names, a name repeats, there are too few queries, or
// a query and the test's expectations do not pair up.
func docQueries(t *testing.T) []docQuery {
	t.Helper()
	body, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	matches := queryRE.FindAllStringSubmatch(string(body), -1)
	if markers := strings.Count(string(body), "<!-- query:"); markers != len(matches) {
		t.Fatalf("%s: %d query markers but %d parse as `<!-- query: name -->` followed by a ```sql block",
			docFile, markers, len(matches))
	}
	variants := 0
	var out []docQuery
	seen := make(map[string]bool)
	for _, m := range matches {
		if seen[m[1]] {
			t.Fatalf("%s: query %s appears twice", docFile, m[1])
		}
		seen[m[1]] = true
		if m[3] != "" {
			variants++
			if m[3] != m[1] {
				t.Fatalf("%s: the DuckDB variant after query %s is named %s", docFile, m[1], m[3])
			}
		}
		out = append(out, docQuery{name: m[1], sql: strings.TrimSpace(m[2]), duckdb: strings.TrimSpace(m[4])})
	}
	if markers := strings.Count(string(body), "<!-- duckdb:"); markers != variants {
		t.Fatalf("%s: %d duckdb markers but %d directly follow their query's ```sql block as "+
			"`<!-- duckdb: name -->` and a ```sql block", docFile, markers, variants)
	}
	if len(out) < minQueries {
		t.Fatalf("%s has %d named queries, want at least %d", docFile, len(out), minQueries)
	}
	for _, q := range out {
		if expectations[q.name] == nil {
			t.Errorf("query %s of %s has no expectation in this test: add one", q.name, docFile)
		}
	}
	for name := range expectations {
		if !seen[name] {
			t.Errorf("expectation %s has no query in %s", name, docFile)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// backend is where the queries run: ClickHouse or DuckDB over the embedded
// store.
type backend struct {
	// loc is the time zone of the backend's today() and toStartOfHour().
	loc *time.Location
	// now is the backend's now().
	now func(t *testing.T) time.Time
	// query returns every row of sql.
	query func(sql string) ([][]cell, error)
}

// checkQueries runs each query's text (sqlOf picks ClickHouse's or
// DuckDB's) on b in a subtest per query and compares its rows with the
// expectation; it records in nonEmpty the queries whose expectation has
// rows.
func checkQueries(t *testing.T, b backend, d *dataset, queries []docQuery, sqlOf func(docQuery) string, nonEmpty map[string]bool) {
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			sql := sqlOf(q)
			got, now := runQuery(t, b, sql)
			if drift := now.Sub(d.t0); drift > gap {
				t.Fatalf("the query ran %v after the data was built, more than its %v margin", drift, gap)
			}
			want := normalizeRows(expectations[q.name](d, window{now: now, loc: b.loc}))
			if len(want) > 0 {
				nonEmpty[q.name] = true
			}
			if diff := diffRows(got, want); diff != "" {
				t.Errorf("%s\n%s\ngot:\n%s\nwant:\n%s", sql, diff, formatRows(got), formatRows(want))
			}
		})
	}
}

// checkNonEmpty fails a query whose expectation had no rows in any round:
// an empty answer checks little; only a day-over-day query may be empty
// (just after midnight, today holds few searches).
func checkNonEmpty(t *testing.T, queries []docQuery, nonEmpty map[string]bool) {
	for _, q := range queries {
		if !nonEmpty[q.name] && q.name != "trending_searches" {
			t.Errorf("query %s: the dataset gives it no rows, so its check proves little", q.name)
		}
	}
}

// TestAnalystQueries inserts a synthetic shop's events, catalog and served
// recommendations into a ClickHouse 18.16 server (chtest), runs every query
// of the guide and compares its rows with the answer computed in Go, in the
// rounds of checkRounds. TestAnalystQueriesChdb does the same on the current
// engine.
func TestAnalystQueries(t *testing.T) {
	queries := docQueries(t)
	cfg := chtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := clickhouse.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := clickhouse.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	var tz, version string
	if err := conn.QueryRow(ctx, "SELECT timezone(), version()").Scan(&tz, &version); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatalf("server time zone %q: %v", tz, err)
	}
	b := backend{
		loc: loc,
		now: func(t *testing.T) time.Time {
			t.Helper()
			var now time.Time
			if err := conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
				t.Fatal(err)
			}
			return now.In(loc)
		},
		query: func(sql string) ([][]cell, error) { return queryRows(ctx, conn, sql) },
	}
	d := newDataset(time.Now())
	t.Run("backend=clickhouse-"+majorMinor(version), func(t *testing.T) {
		t.Logf("clickhouse-server %s (native protocol), time zone %s", version, tz)
		checkRounds(t, b, d, queries, d.insert(ctx, conn), func(sql string) error { return conn.Exec(ctx, sql) })
	})
}

// checkRounds runs every query of the guide on the ClickHouse of b three
// times: after insert wrote the dataset, after it wrote everything a second
// time (a replay, as an at-least-once consumer may), and after exec merged
// all parts (OPTIMIZE ... FINAL): the answers must not move. It logs the
// rows each table holds after each round, and checks that the replay was
// stored (no insert deduplication made the second round a repeat of the
// first) and that the merge left one row per key.
func checkRounds(t *testing.T, b backend, d *dataset, queries []docQuery, insert func(t *testing.T), exec func(sql string) error) {
	tables := []struct {
		name   string
		unique int // rows once merged: one per key
	}{
		{"events", len(d.uniqueEvents())},
		{"items", len(d.itemIDs())},
		{"recommendations", len(d.uniqueRecos())},
	}
	stored := func(t *testing.T, round string) []int {
		t.Helper()
		var counts []int
		var desc []string
		for _, table := range tables {
			rows, err := b.query("SELECT count() FROM " + table.name)
			if err != nil || len(rows) != 1 || len(rows[0]) != 1 {
				t.Fatalf("count %s: %v %v", table.name, rows, err)
			}
			counts = append(counts, int(rows[0][0].num))
			desc = append(desc, fmt.Sprintf("%s %d (%d keys)", table.name, counts[len(counts)-1], table.unique))
		}
		t.Logf("rows stored after round %s: %s", round, strings.Join(desc, ", "))
		return counts
	}
	var once []int
	rounds := []struct {
		name    string
		prepare func(t *testing.T)
	}{
		{"once", insert},
		{"replayed", insert},
		{"merged", func(t *testing.T) {
			for _, table := range []string{"events", "items", "recommendations",
				"item_hourly_mv", "search_daily_mv", "reco_events_mv"} {
				if err := exec("OPTIMIZE TABLE " + table + " FINAL"); err != nil {
					t.Fatalf("optimize %s: %v", table, err)
				}
			}
		}},
	}
	nonEmpty := make(map[string]bool)
	for _, round := range rounds {
		round.prepare(t)
		counts := stored(t, round.name)
		if round.name == "once" {
			once = counts
		}
		for i, table := range tables {
			switch {
			case round.name == "replayed" && counts[i] <= once[i]:
				t.Errorf("%s holds %d rows after the replay, %d before: the replay was not stored", table.name, counts[i], once[i])
			case round.name == "merged" && counts[i] != table.unique:
				t.Errorf("%s holds %d rows after OPTIMIZE FINAL, want one per key: %d", table.name, counts[i], table.unique)
			}
		}
		t.Run(round.name, func(t *testing.T) {
			checkQueries(t, b, d, queries, func(q docQuery) string { return q.sql }, nonEmpty)
		})
	}
	checkNonEmpty(t, queries, nonEmpty)
}

// majorMinor is the release of a version string: "18.16" of "18.16.1",
// "26.9" of "26.9.2.1", "v1.4" of "v1.4.1".
func majorMinor(version string) string {
	if parts := strings.SplitN(version, ".", 3); len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return version
}

// runQuery runs sql and returns its rows with the backend's now() when it
// ran. A query that straddles the start of an hour (and so perhaps of a
// day) is run again, so that the hour and day the caller computes with are
// the ones the query saw.
func runQuery(t *testing.T, b backend, sql string) ([][]cell, time.Time) {
	t.Helper()
	for range 3 {
		before := b.now(t)
		rows, err := b.query(sql)
		if err != nil {
			t.Fatalf("%s\n%v", sql, err)
		}
		after := b.now(t)
		if startOfHour(before).Equal(startOfHour(after)) {
			return rows, before
		}
	}
	t.Fatal("an hour started during each of 3 runs of the query")
	return nil, time.Time{}
}

// cell is one value of a result: a number (every integer, float, decimal
// and time, a time as Unix seconds), a string (strings and enums) or NULL
// (which ClickHouse's non-Nullable columns never hold, and no expectation
// has).
type cell struct {
	num          float64
	str          string
	isNum, isNil bool
}

func (c cell) String() string {
	switch {
	case c.isNil:
		return "NULL"
	case c.isNum:
		return fmt.Sprint(c.num)
	}
	return fmt.Sprintf("%q", c.str)
}

func toCell(v any) cell {
	switch x := v.(type) {
	case nil:
		return cell{isNil: true}
	case string:
		return cell{str: x}
	case time.Time:
		return cell{num: float64(x.Unix()), isNum: true}
	case interface{ Float64() float64 }: // DuckDB's DECIMAL
		return cell{num: x.Float64(), isNum: true}
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return cell{num: float64(rv.Int()), isNum: true}
	case rv.CanUint():
		return cell{num: float64(rv.Uint()), isNum: true}
	case rv.CanFloat():
		return cell{num: rv.Float(), isNum: true}
	}
	panic(fmt.Sprintf("analyticsdoc: no cell for %T", v))
}

func normalizeRows(rows [][]any) [][]cell {
	out := make([][]cell, len(rows))
	for i, row := range rows {
		for _, v := range row {
			out[i] = append(out[i], toCell(v))
		}
	}
	return out
}

// queryRows returns every row of sql from ClickHouse.
func queryRows(ctx context.Context, conn driver.Conn, sql string) ([][]cell, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]cell
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		row := make([]cell, len(vals))
		for i, v := range vals {
			row[i] = toCell(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// diffRows describes the first difference between got and want; numbers
// match within a relative 1e-9, since sums of floats depend on their order.
func diffRows(got, want [][]cell) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return fmt.Sprintf("row %d has %d columns, want %d", i, len(got[i]), len(want[i]))
		}
		for j, g := range got[i] {
			w := want[i][j]
			same := g.isNum == w.isNum && g.isNil == w.isNil && g.str == w.str &&
				math.Abs(g.num-w.num) <= 1e-9*max(1, math.Abs(g.num), math.Abs(w.num))
			if !same {
				return fmt.Sprintf("row %d column %d is %v, want %v", i, j, g, w)
			}
		}
	}
	return ""
}

func formatRows(rows [][]cell) string {
	var b strings.Builder
	for _, row := range rows {
		for j, c := range row {
			if j > 0 {
				b.WriteString("\t")
			}
			b.WriteString(c.String())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// dataset is a synthetic shop's rows, built relative to t0, the time the
// test started: a catalog, two days of sessions, and recommendation replies
// some events attribute to. It holds repeats of its own (a producer's
// duplicate events, a reply served twice, a catalog change delivered twice),
// as a real stream does.
type dataset struct {
	t0     time.Time
	items  []schemas.CatalogChange
	events []schemas.ClickEvent
	recos  []pipeline.ServedRecommendation
}

// inGap reports whether at is within gap of the edge of the sliding
// one-day window, as seen from t0.
func inGap(t0, at time.Time) bool {
	edge := t0.Add(-24 * time.Hour)
	return at.After(edge.Add(-gap)) && at.Before(edge.Add(gap))
}

func newDataset(t0 time.Time) *dataset {
	d := &dataset{t0: t0}
	cfg := synth.DefaultConfig()
	cfg.Seed = 20260314
	cfg.Items = 150
	cfg.Users = 400
	cfg.Sessions = 48
	cfg.DuplicateFraction = 0.03
	r := rand.New(rand.NewPCG(cfg.Seed, 0xda7a))

	// The catalog, three days old, then later changes: ten items change
	// brand and price (their newer row comes first, so that the version, not
	// the insert order, decides), one is deleted, one change arrives twice,
	// and one stale change arrives late and must not win.
	cat := synth.NewCatalog(cfg, t0.Add(-72*time.Hour))
	for i := range 10 {
		c := cat.Items[i]
		c.Brand = fmt.Sprintf("Newbrand %d", i%3)
		c.Price = math.Round(c.Price*90) / 100
		c.UpdatedAt = t0.Add(-10*time.Hour + time.Duration(i*7)*time.Millisecond)
		d.items = append(d.items, c)
	}
	d.items = append(d.items, cat.Items...)
	d.items = append(d.items, schemas.CatalogChange{Op: schemas.OpDelete, ItemID: synth.ItemID(10), UpdatedAt: t0.Add(-5 * time.Hour)})
	d.items = append(d.items, cat.Items[11])
	stale := cat.Items[12]
	stale.Brand = "Stale Brand"
	stale.UpdatedAt = stale.UpdatedAt.Add(-time.Hour)
	d.items = append(d.items, stale)

	// Replies, every 200 s or so over the last 50 hours.
	kinds := []schemas.RecoKind{schemas.KindForUser, schemas.KindForUser, schemas.KindSimilarItems, schemas.KindSearch}
	from, to := t0.Add(-50*time.Hour), t0.Add(-30*time.Second)
	const replies = 900
	var served []pipeline.ServedRecommendation // unique, by time
	for i := range replies {
		at := from.Add(time.Duration((float64(i) + r.Float64()) / replies * float64(to.Sub(from)))).Truncate(time.Millisecond)
		if inGap(t0, at) {
			continue
		}
		rec := pipeline.ServedRecommendation{
			RequestID:    fmt.Sprintf("req-%05d", i),
			Kind:         kinds[r.IntN(len(kinds))],
			ModelVersion: "e5-small-v1",
			Latency:      time.Duration(math.Exp(3+0.6*r.NormFloat64())*1000) * time.Microsecond,
			ServedAt:     at,
		}
		if at.After(t0.Add(-30*time.Hour)) && r.IntN(2) == 0 {
			rec.ModelVersion = "e5-small-v2"
		}
		switch rec.Kind {
		case schemas.KindForUser:
			rec.UserID = synth.UserID(r.IntN(cfg.Users))
			rec.Fallback = r.Float64() < 0.3
		case schemas.KindSimilarItems:
			rec.ItemID = synth.ItemID(r.IntN(cfg.Items))
			rec.Fallback = r.Float64() < 0.1
		case schemas.KindSearch:
			rec.Query = cat.Items[r.IntN(cfg.Items)].Title
		}
		if r.Float64() < 0.04 {
			rec.Error = "deadline exceeded"
		} else {
			for k := range 5 {
				rec.Items = append(rec.Items, synth.ItemID(r.IntN(cfg.Items)))
				rec.Scores = append(rec.Scores, float32(0.9-0.1*float64(k)))
			}
		}
		served = append(served, rec)
		d.recos = append(d.recos, rec)
		if r.Float64() < 0.05 {
			d.recos = append(d.recos, rec) // served twice
		}
	}
	slices.SortFunc(served, func(a, b pipeline.ServedRecommendation) int { return a.ServedAt.Compare(b.ServedAt) })

	// attribute returns a reply served in the 15 minutes before at, or "".
	attribute := func(at time.Time) string {
		i, _ := slices.BinarySearchFunc(served, at, func(s pipeline.ServedRecommendation, at time.Time) int {
			return s.ServedAt.Compare(at)
		})
		if i == 0 || served[i-1].ServedAt.Before(at.Add(-15*time.Minute)) {
			return ""
		}
		return served[i-1].RequestID
	}

	// Sessions: 9,000 events over the 48 hours before the last two, 6,000 in
	// the last two. Ids are renamed in order, so that the dataset depends on
	// t0 alone (synth draws fresh random ids).
	tr := synth.NewTraffic(cat, cfg)
	ids, sessions := make(map[string]string), make(map[string]string)
	var last schemas.ClickEvent
	emit := func(n int, from, to time.Time) {
		step := to.Sub(from) / time.Duration(n)
		for i := range n {
			at := from.Add(step * time.Duration(i)).Truncate(time.Millisecond)
			if inGap(t0, at) {
				continue
			}
			ev, dup := tr.Next(at)
			if dup {
				d.events = append(d.events, last)
				continue
			}
			ids[ev.EventID] = fmt.Sprintf("ev-%06d", len(ids))
			ev.EventID = ids[ev.EventID]
			if _, ok := sessions[ev.SessionID]; !ok {
				sessions[ev.SessionID] = fmt.Sprintf("sess-%05d", len(sessions))
			}
			ev.SessionID = sessions[ev.SessionID]
			if ev.Type != schemas.EventSearch {
				switch p := r.Float64(); {
				case p < 0.35:
					ev.Context.RecoRequestID = attribute(ev.Timestamp)
				case p < 0.36:
					ev.Context.RecoRequestID = fmt.Sprintf("req-lost-%d", i) // a reply analytics never got
				}
			}
			last = ev
			d.events = append(d.events, ev)
		}
	}
	emit(9000, t0.Add(-50*time.Hour), t0.Add(-2*time.Hour))
	emit(6000, t0.Add(-2*time.Hour), t0.Add(-30*time.Second))

	// Hand-made corners: an item not in the catalog, events without a
	// session, and one search typed two ways.
	hand := func(id string, typ schemas.EventType, user, session, item, query string, price float64, qty int, ago time.Duration, device string) {
		d.events = append(d.events, schemas.ClickEvent{EventID: id, Type: typ, UserID: user, SessionID: session,
			ItemID: item, Query: query, Price: price, Quantity: qty, Timestamp: t0.Add(-ago).Truncate(time.Millisecond),
			Context: schemas.EventContext{Device: device, Locale: "en-US", Page: "home"}})
	}
	hand("hand-1", schemas.EventView, "user-hand-1", "sess-hand-1", "item-999999", "", 0, 0, 20*time.Minute, "mobile")
	hand("hand-2", schemas.EventClick, "user-hand-1", "sess-hand-1", "item-999999", "", 0, 0, 19*time.Minute, "mobile")
	hand("hand-3", schemas.EventAddToCart, "user-hand-1", "sess-hand-1", "item-999999", "", 12.5, 3, 18*time.Minute, "mobile")
	hand("hand-4", schemas.EventPurchase, "user-hand-1", "sess-hand-1", "item-999999", "", 12.5, 3, 17*time.Minute, "mobile")
	hand("hand-5", schemas.EventView, "user-hand-2", "", synth.ItemID(1), "", 0, 0, 31*time.Minute, "desktop")
	hand("hand-6", schemas.EventPurchase, "user-hand-2", "", synth.ItemID(1), "", 19.99, 1, 30*time.Minute, "desktop")
	hand("hand-7", schemas.EventSearch, "user-hand-3", "sess-hand-3", "", "  Red Shoes ", 0, 0, 40*time.Minute, "tablet")
	hand("hand-8", schemas.EventSearch, "user-hand-3", "sess-hand-3", "", "red shoes", 0, 0, 39*time.Minute, "tablet")
	return d
}

// tableRows is one table's share of the dataset as the pipeline inserts
// it: the table, an explicit column list (18.16 needs one) and, per row, a
// value per column, of the Go type the native protocol takes for the
// column's type.
type tableRows struct {
	table   string
	columns []string
	n       int
	row     func(i int) []any
}

// tables is the whole dataset, table by table, as every backend inserts it.
func (d *dataset) tables() []tableRows {
	return []tableRows{
		{"items", []string{"item_id", "title", "description", "category_path", "brand", "price", "currency",
			"in_stock", "attribute_keys", "attribute_values", "deleted", "updated_at", "updated_ms"},
			len(d.items), func(i int) []any {
				c := d.items[i]
				keys := nonNil(slices.Sorted(maps.Keys(c.Attributes)))
				values := make([]string, len(keys))
				for j, k := range keys {
					values[j] = c.Attributes[k]
				}
				sec, ms := split(c.UpdatedAt)
				return []any{c.ItemID, c.Title, c.Description, nonNil(c.CategoryPath), c.Brand, c.Price, c.Currency,
					boolByte(c.InStock), keys, values, boolByte(c.Op == schemas.OpDelete), sec, ms}
			}},
		{"events", []string{"event_id", "event_type", "user_id", "session_id", "item_id", "query", "price",
			"quantity", "event_time", "event_ms", "device", "locale", "page", "reco_request_id"},
			len(d.events), func(i int) []any {
				e := d.events[i]
				sec, ms := split(e.Timestamp)
				return []any{e.EventID, string(e.Type), e.UserID, e.SessionID, e.ItemID, e.Query, e.Price,
					uint32(e.Quantity), sec, ms, e.Context.Device, e.Context.Locale, e.Context.Page, e.Context.RecoRequestID}
			}},
		{"recommendations", []string{"request_id", "kind", "user_id", "item_id", "query", "items", "scores",
			"latency_ms", "model_version", "fallback", "error", "served_at", "served_ms"},
			len(d.recos), func(i int) []any {
				r := d.recos[i]
				sec, ms := split(r.ServedAt)
				return []any{r.RequestID, string(r.Kind), r.UserID, r.ItemID, r.Query, nonNil(r.Items),
					nonNil(r.Scores), latencyMs(r), r.ModelVersion, boolByte(r.Fallback), r.Error, sec, ms}
			}},
	}
}

// insert returns a step that writes the whole dataset over the native
// protocol, each table through one batch with an explicit column list.
func (d *dataset) insert(ctx context.Context, conn driver.Conn) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		for _, tr := range d.tables() {
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+tr.table+" ("+strings.Join(tr.columns, ", ")+")")
			if err != nil {
				t.Fatal(err)
			}
			for i := range tr.n {
				if err := batch.Append(tr.row(i)...); err != nil {
					batch.Abort()
					t.Fatal(err)
				}
			}
			if err := batch.Send(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// split gives a time's DateTime (whole seconds, UTC) and millisecond
// columns.
func split(at time.Time) (time.Time, uint16) {
	at = at.UTC()
	return at.Truncate(time.Second), uint16(at.Nanosecond() / int(time.Millisecond))
}

// millis is a time to the millisecond, as (DateTime, ms) columns hold it.
func millis(at time.Time) int64 { return at.UnixMilli() }

func latencyMs(r pipeline.ServedRecommendation) float64 {
	return float64(r.Latency) / float64(time.Millisecond)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// window is when a query ran, in the server's time zone, for the
// expectations' today(), toStartOfHour(now()) and now() - INTERVAL 1 DAY.
type window struct {
	now time.Time
	loc *time.Location
}

func startOfHour(at time.Time) time.Time {
	y, m, d := at.Date()
	return time.Date(y, m, d, at.Hour(), 0, 0, 0, at.Location())
}

func startOfDay(at time.Time) time.Time {
	y, m, d := at.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, at.Location())
}

// hour is toStartOfHour(event time) in the server's zone.
func (w window) hour(at time.Time) time.Time { return startOfHour(at.In(w.loc)) }

// day is toDate(event time) in the server's zone.
func (w window) day(at time.Time) time.Time { return startOfDay(at.In(w.loc)) }

// lastHours is toStartOfHour(now()) - INTERVAL (n-1) HOUR: the current hour
// and the n-1 before it.
func (w window) lastHours(n int) time.Time {
	return startOfHour(w.now).Add(-time.Duration(n-1) * time.Hour)
}

// lastDay is now() - INTERVAL 1 DAY.
func (w window) lastDay() time.Time { return w.now.Add(-24 * time.Hour) }

func (w window) today() time.Time { return startOfDay(w.now) }

// since reports whether an event at at falls in [from, ...): the DateTime
// column holds whole seconds and from is a whole second, so truncating
// changes nothing.
func since(at, from time.Time) bool { return !at.Truncate(time.Second).Before(from) }

// uniqueEvents is every event once (a duplicate repeats its event entirely).
func (d *dataset) uniqueEvents() []schemas.ClickEvent {
	seen := make(map[string]bool)
	var out []schemas.ClickEvent
	for _, e := range d.events {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			out = append(out, e)
		}
	}
	return out
}

// uniqueRecos is every reply once.
func (d *dataset) uniqueRecos() []pipeline.ServedRecommendation {
	seen := make(map[string]bool)
	var out []pipeline.ServedRecommendation
	for _, r := range d.recos {
		if !seen[r.RequestID] {
			seen[r.RequestID] = true
			out = append(out, r)
		}
	}
	return out
}

// itemIDs is every item id with a change, deleted ones included: the keys
// of items.
func (d *dataset) itemIDs() map[string]bool {
	out := make(map[string]bool)
	for _, c := range d.items {
		out[c.ItemID] = true
	}
	return out
}

// catalog is each item's newest change (by updated_at to the millisecond),
// without deleted items: items FINAL WHERE deleted = 0.
func (d *dataset) catalog() map[string]schemas.CatalogChange {
	newest := make(map[string]schemas.CatalogChange)
	for _, c := range d.items {
		if prev, ok := newest[c.ItemID]; !ok || millis(c.UpdatedAt) > millis(prev.UpdatedAt) {
			newest[c.ItemID] = c
		}
	}
	for id, c := range newest {
		if c.Op == schemas.OpDelete {
			delete(newest, id)
		}
	}
	return newest
}

// clickedRequests are the request ids with an attributed click.
func (d *dataset) clickedRequests() map[string]bool {
	out := make(map[string]bool)
	for _, e := range d.events {
		if e.Type == schemas.EventClick && e.Context.RecoRequestID != "" {
			out[e.Context.RecoRequestID] = true
		}
	}
	return out
}

// kindOrder is the Enum8 value of a kind, which ORDER BY kind sorts by.
var kindOrder = map[schemas.RecoKind]int{schemas.KindForUser: 1, schemas.KindSimilarItems: 2, schemas.KindSearch: 3}

// funnel counts an item group's distinct events by type, and its revenue.
type funnel struct {
	views, clicks, carts, purchases uint64
	revenue                         float64
}

func (f *funnel) add(e schemas.ClickEvent) {
	switch e.Type {
	case schemas.EventView:
		f.views++
	case schemas.EventClick:
		f.clicks++
	case schemas.EventAddToCart:
		f.carts++
	case schemas.EventPurchase:
		f.purchases++
		f.revenue += e.Price * float64(e.Quantity)
	}
}

// itemStats groups the distinct item events (those item_hourly_stats holds)
// whose hour starts at or after from, by key.
func (d *dataset) itemStats(w window, from time.Time, key func(schemas.ClickEvent) string) map[string]*funnel {
	out := make(map[string]*funnel)
	for _, e := range d.uniqueEvents() {
		if e.ItemID == "" || w.hour(e.Timestamp).Before(from) {
			continue
		}
		k := key(e)
		if out[k] == nil {
			out[k] = &funnel{}
		}
		out[k].add(e)
	}
	return out
}

func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// normQuery is search_stats' normalisation of a search: lower case, with
// the leading and trailing whitespace that the regexp \s matches removed.
func normQuery(q string) string { return strings.ToLower(strings.Trim(q, " \t\n\f\r")) }

// expectations computes, for each query of the guide, the rows it must
// return, from the dataset alone.
var expectations = map[string]func(d *dataset, w window) [][]any{
	"top_items_ctr_last_hour": func(d *dataset, w window) [][]any {
		stats := d.itemStats(w, startOfHour(w.now.Add(-time.Hour)), func(e schemas.ClickEvent) string { return e.ItemID })
		type row struct {
			item          string
			views, clicks uint64
			ctr           float64
		}
		var rows []row
		for item, f := range stats {
			if f.views >= 5 {
				rows = append(rows, row{item, f.views, f.clicks, float64(f.clicks) / float64(f.views)})
			}
		}
		slices.SortFunc(rows, func(a, b row) int {
			return cmp.Or(cmp.Compare(b.ctr, a.ctr), cmp.Compare(b.views, a.views), cmp.Compare(a.item, b.item))
		})
		var out [][]any
		for _, r := range rows[:min(10, len(rows))] {
			out = append(out, []any{r.item, r.views, r.clicks, r.ctr})
		}
		return out
	},

	"funnel_by_category": func(d *dataset, w window) [][]any {
		cat := d.catalog()
		stats := d.itemStats(w, w.lastHours(24), func(e schemas.ClickEvent) string {
			if path := cat[e.ItemID].CategoryPath; len(path) > 0 {
				return path[0]
			}
			return ""
		})
		names := slices.SortedFunc(maps.Keys(stats), func(a, b string) int { return cmp.Or(cmp.Compare(stats[b].views, stats[a].views), cmp.Compare(a, b)) })
		var out [][]any
		for _, name := range names {
			f := stats[name]
			out = append(out, []any{name, f.views, f.clicks, f.carts, f.purchases,
				ratio(f.clicks, f.views), ratio(f.carts, f.clicks), ratio(f.purchases, f.carts), ratio(f.purchases, f.views)})
		}
		return out
	},

	"top_brands_by_revenue": func(d *dataset, w window) [][]any {
		cat := d.catalog()
		stats := d.itemStats(w, w.today().AddDate(0, 0, -6), func(e schemas.ClickEvent) string { return cat[e.ItemID].Brand })
		var brands []string
		for b, f := range stats {
			if f.purchases > 0 {
				brands = append(brands, b)
			}
		}
		slices.SortFunc(brands, func(a, b string) int {
			return cmp.Or(cmp.Compare(stats[b].revenue, stats[a].revenue), cmp.Compare(a, b))
		})
		var out [][]any
		for _, b := range brands[:min(10, len(brands))] {
			out = append(out, []any{b, stats[b].purchases, stats[b].revenue})
		}
		return out
	},

	"revenue_by_hour": func(d *dataset, w window) [][]any {
		stats := d.itemStats(w, w.lastHours(24), func(e schemas.ClickEvent) string {
			return w.hour(e.Timestamp).Format(time.RFC3339) // sorts by time: one zone, fixed width
		})
		var out [][]any
		for _, h := range slices.Sorted(maps.Keys(stats)) {
			f := stats[h]
			at, _ := time.Parse(time.RFC3339, h)
			aov := 0.0
			if f.purchases > 0 {
				aov = f.revenue / float64(f.purchases)
			}
			out = append(out, []any{at, f.purchases, f.revenue, aov})
		}
		return out
	},

	"conversion_by_device": func(d *dataset, w window) [][]any {
		sessions := make(map[string]map[string]bool)
		buying := make(map[string]map[string]bool)
		for _, e := range d.uniqueEvents() {
			if !since(e.Timestamp, w.lastDay()) {
				continue
			}
			dev := e.Context.Device
			if sessions[dev] == nil {
				sessions[dev], buying[dev] = make(map[string]bool), make(map[string]bool)
			}
			sessions[dev][e.SessionID] = true
			if e.Type == schemas.EventPurchase {
				buying[dev][e.SessionID] = true
			}
		}
		var out [][]any
		for _, dev := range slices.Sorted(maps.Keys(sessions)) {
			n, b := uint64(len(sessions[dev])), uint64(len(buying[dev]))
			out = append(out, []any{dev, n, b, float64(b) / float64(n)})
		}
		return out
	},

	"cart_abandonment": func(d *dataset, w window) [][]any {
		carts, purchases := make(map[string]bool), make(map[string]bool)
		for _, e := range d.uniqueEvents() {
			if e.SessionID == "" || !since(e.Timestamp, w.lastDay()) {
				continue
			}
			switch e.Type {
			case schemas.EventAddToCart:
				carts[e.SessionID] = true
			case schemas.EventPurchase:
				purchases[e.SessionID] = true
			}
		}
		var abandoned uint64
		for s := range carts {
			if !purchases[s] {
				abandoned++
			}
		}
		n := uint64(len(carts))
		return [][]any{{n, abandoned, float64(abandoned) / float64(n)}}
	},

	"active_users_per_hour": func(d *dataset, w window) [][]any {
		type hourSets struct{ users, sessions, events map[string]bool }
		hours := make(map[int64]*hourSets)
		for _, e := range d.uniqueEvents() {
			h := w.hour(e.Timestamp)
			if h.Before(w.lastHours(24)) {
				continue
			}
			s := hours[h.Unix()]
			if s == nil {
				s = &hourSets{make(map[string]bool), make(map[string]bool), make(map[string]bool)}
				hours[h.Unix()] = s
			}
			s.users[e.UserID], s.sessions[e.SessionID], s.events[e.EventID] = true, true, true
		}
		var out [][]any
		for _, h := range slices.Sorted(maps.Keys(hours)) {
			s := hours[h]
			out = append(out, []any{h, uint64(len(s.users)), uint64(len(s.sessions)), uint64(len(s.events))})
		}
		return out
	},

	"new_vs_returning_users": func(d *dataset, w window) [][]any {
		first, last := make(map[string]time.Time), make(map[string]time.Time)
		for _, e := range d.events {
			if f, ok := first[e.UserID]; !ok || e.Timestamp.Before(f) {
				first[e.UserID] = e.Timestamp
			}
			if l, ok := last[e.UserID]; !ok || e.Timestamp.After(l) {
				last[e.UserID] = e.Timestamp
			}
		}
		var newUsers, returning uint64
		for u, l := range last {
			if !w.day(l).Equal(w.today()) {
				continue
			}
			if w.day(first[u]).Equal(w.today()) {
				newUsers++
			} else {
				returning++
			}
		}
		return [][]any{{newUsers, returning, newUsers + returning}}
	},

	"trending_searches": func(d *dataset, w window) [][]any {
		today, yesterday := make(map[string]uint64), make(map[string]uint64)
		for _, e := range d.uniqueEvents() {
			q := normQuery(e.Query)
			if e.Type != schemas.EventSearch || q == "" {
				continue
			}
			switch w.day(e.Timestamp) {
			case w.today():
				today[q]++
			case w.today().AddDate(0, 0, -1):
				yesterday[q]++
			}
		}
		type row struct {
			query    string
			now, was uint64
			growth   float64
		}
		var rows []row
		for q, n := range today {
			if n >= 2 {
				rows = append(rows, row{q, n, yesterday[q], float64(n+1) / float64(yesterday[q]+1)})
			}
		}
		slices.SortFunc(rows, func(a, b row) int {
			return cmp.Or(cmp.Compare(b.growth, a.growth), cmp.Compare(b.now, a.now), cmp.Compare(a.query, b.query))
		})
		var out [][]any
		for _, r := range rows[:min(20, len(rows))] {
			out = append(out, []any{r.query, r.now, r.was, r.growth})
		}
		return out
	},

	"searches_without_click": func(d *dataset, w window) [][]any {
		lastClick := make(map[string]int64)
		for _, e := range d.events {
			if e.Type == schemas.EventClick && e.SessionID != "" {
				lastClick[e.SessionID] = max(lastClick[e.SessionID], millis(e.Timestamp))
			}
		}
		searches, unclicked := make(map[string]uint64), make(map[string]uint64)
		for _, e := range d.uniqueEvents() {
			q := normQuery(e.Query)
			if e.Type != schemas.EventSearch || e.SessionID == "" || q == "" || !since(e.Timestamp, w.lastDay()) {
				continue
			}
			searches[q]++
			if lastClick[e.SessionID] <= millis(e.Timestamp) {
				unclicked[q]++
			}
		}
		var qs []string
		for q, n := range unclicked {
			if n > 0 {
				qs = append(qs, q)
			}
		}
		slices.SortFunc(qs, func(a, b string) int {
			return cmp.Or(cmp.Compare(unclicked[b], unclicked[a]), cmp.Compare(searches[b], searches[a]), cmp.Compare(a, b))
		})
		var out [][]any
		for _, q := range qs[:min(20, len(qs))] {
			out = append(out, []any{q, searches[q], unclicked[q], float64(unclicked[q]) / float64(searches[q])})
		}
		return out
	},

	"reco_ctr_by_kind_model": func(d *dataset, w window) [][]any {
		type key struct {
			kind  schemas.RecoKind
			model string
		}
		clicked := d.clickedRequests()
		served, hits := make(map[key]uint64), make(map[key]uint64)
		for _, r := range d.uniqueRecos() {
			if w.day(r.ServedAt).Before(w.today().AddDate(0, 0, -6)) {
				continue
			}
			k := key{r.Kind, r.ModelVersion}
			served[k]++
			if clicked[r.RequestID] {
				hits[k]++
			}
		}
		keys := slices.SortedFunc(maps.Keys(served), func(a, b key) int {
			return cmp.Or(cmp.Compare(kindOrder[a.kind], kindOrder[b.kind]), cmp.Compare(a.model, b.model))
		})
		var out [][]any
		for _, k := range keys {
			out = append(out, []any{string(k.kind), k.model, served[k], hits[k], float64(hits[k]) / float64(served[k])})
		}
		return out
	},

	"reco_fallback_share": func(d *dataset, w window) [][]any {
		type counts struct{ replies, fallbacks, errors uint64 }
		byKind := make(map[schemas.RecoKind]*counts)
		for _, r := range d.uniqueRecos() {
			if !since(r.ServedAt, w.lastDay()) {
				continue
			}
			c := byKind[r.Kind]
			if c == nil {
				c = &counts{}
				byKind[r.Kind] = c
			}
			c.replies++
			if r.Fallback {
				c.fallbacks++
			}
			if r.Error != "" {
				c.errors++
			}
		}
		var out [][]any
		for _, k := range slices.SortedFunc(maps.Keys(byKind), byKindOrder) {
			c := byKind[k]
			out = append(out, []any{string(k), c.replies, c.fallbacks, c.errors, float64(c.fallbacks) / float64(c.replies)})
		}
		return out
	},

	"reco_latency_by_kind": func(d *dataset, w window) [][]any {
		byKind := make(map[schemas.RecoKind][]float64)
		for _, r := range d.uniqueRecos() {
			if since(r.ServedAt, w.lastDay()) {
				byKind[r.Kind] = append(byKind[r.Kind], latencyMs(r))
			}
		}
		// quantileExact(level) is the value at position floor(level * n)
		// of the sorted values.
		exact := func(sorted []float64, level float64) float64 { return sorted[int(level*float64(len(sorted)))] }
		var out [][]any
		for _, k := range slices.SortedFunc(maps.Keys(byKind), byKindOrder) {
			l := slices.Sorted(slices.Values(byKind[k]))
			out = append(out, []any{string(k), uint64(len(l)), exact(l, 0.5), exact(l, 0.95), l[len(l)-1]})
		}
		return out
	},

	"reco_attributed_revenue": func(d *dataset, w window) [][]any {
		kinds := make(map[string]schemas.RecoKind)
		for _, r := range d.uniqueRecos() {
			kinds[r.RequestID] = r.Kind
		}
		type sums struct {
			purchases uint64
			revenue   float64
		}
		byKind := make(map[schemas.RecoKind]*sums)
		for _, e := range d.uniqueEvents() {
			kind, ok := kinds[e.Context.RecoRequestID]
			if e.Type != schemas.EventPurchase || !ok || !since(e.Timestamp, w.lastDay()) {
				continue
			}
			if byKind[kind] == nil {
				byKind[kind] = &sums{}
			}
			byKind[kind].purchases++
			byKind[kind].revenue += e.Price * float64(e.Quantity)
		}
		var out [][]any
		for _, k := range slices.SortedFunc(maps.Keys(byKind), byKindOrder) {
			out = append(out, []any{string(k), byKind[k].purchases, byKind[k].revenue})
		}
		return out
	},
}

func byKindOrder(a, b schemas.RecoKind) int { return cmp.Compare(kindOrder[a], kindOrder[b]) }
