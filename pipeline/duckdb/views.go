package duckdb

import (
	"fmt"
	"strings"

	"github.com/streamrec/streamrec/pipeline/parquetstore"
)

// column is one column of a raw view: its name, its DuckDB type, and how it
// is computed from the Parquet columns (expr; "" reads the column itself).
type column struct{ name, typ, expr string }

// table is a parquetstore table and its raw view's columns. Every raw view
// ends with _part (the part file's name, which sorts by write order) and
// _row (the row's number in it), which break ties in deduplication.
type table struct {
	name string
	cols []column
}

// utc reads a Parquet UTC timestamp as a TIMESTAMP in UTC whatever the
// session's time zone.
func utc(col string) string { return "timezone('UTC', " + col + ")" }

// msOf is the milliseconds (0-999) of a timestamp column, as ClickHouse's
// *_ms columns hold them.
func msOf(col string) string { return "CAST(millisecond(" + utc(col) + ") % 1000 AS USMALLINT)" }

var tables = []table{
	{parquetstore.TableEvents, []column{
		{"event_id", "VARCHAR", ""},
		{"event_type", "VARCHAR", ""},
		{"user_id", "VARCHAR", ""},
		{"session_id", "VARCHAR", ""},
		{"item_id", "VARCHAR", ""},
		{"query", "VARCHAR", ""},
		{"price", "DOUBLE", ""},
		{"quantity", "UINTEGER", ""},
		{"event_time", "TIMESTAMP", utc("event_time")},
		{"event_ms", "USMALLINT", msOf("event_time")},
		{"device", "VARCHAR", ""},
		{"locale", "VARCHAR", ""},
		{"page", "VARCHAR", ""},
		{"reco_request_id", "VARCHAR", ""},
		{"ingested_at", "TIMESTAMP", utc("ingested_at")},
	}},
	{parquetstore.TableItems, []column{
		{"item_id", "VARCHAR", ""},
		{"title", "VARCHAR", ""},
		{"description", "VARCHAR", ""},
		{"category_path", "VARCHAR[]", ""},
		{"brand", "VARCHAR", ""},
		{"price", "DOUBLE", ""},
		{"currency", "VARCHAR", ""},
		{"in_stock", "UTINYINT", ""},
		{"attribute_keys", "VARCHAR[]", ""},
		{"attribute_values", "VARCHAR[]", ""},
		{"deleted", "UTINYINT", ""},
		{"updated_at", "TIMESTAMP", utc("updated_at")},
		{"updated_ms", "USMALLINT", msOf("updated_at")},
	}},
	{parquetstore.TableRecommendations, []column{
		{"request_id", "VARCHAR", ""},
		{"kind", "VARCHAR", ""},
		{"user_id", "VARCHAR", ""},
		{"item_id", "VARCHAR", ""},
		{"query", "VARCHAR", ""},
		{"items", "VARCHAR[]", ""},
		{"scores", "FLOAT[]", ""},
		{"latency_ms", "DOUBLE", ""},
		{"model_version", "VARCHAR", ""},
		{"fallback", "UTINYINT", ""},
		{"error", "VARCHAR", ""},
		{"served_at", "TIMESTAMP", utc("served_at")},
		{"served_ms", "USMALLINT", msOf("served_at")},
	}},
}

// read is the raw view's query over the table's files (at least one).
// union_by_name reads files written before a column was added (the column
// is NULL there).
func (t table) read(files []string) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for _, c := range t.cols {
		expr := c.expr
		if expr == "" {
			expr = c.name
		}
		fmt.Fprintf(&b, "CAST(%s AS %s) AS %s, ", expr, c.typ, c.name)
	}
	b.WriteString("parse_filename(filename) AS _part, file_row_number AS _row FROM read_parquet([")
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(f))
	}
	b.WriteString("], filename = true, file_row_number = true, hive_partitioning = false, union_by_name = true)")
	return b.String()
}

// empty is the raw view while the table has no files: no rows, same
// columns and types.
func (t table) empty() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for _, c := range t.cols {
		fmt.Fprintf(&b, "CAST(NULL AS %s) AS %s, ", c.typ, c.name)
	}
	b.WriteString("CAST(NULL AS VARCHAR) AS _part, CAST(NULL AS BIGINT) AS _row WHERE false")
	return b.String()
}

func (t table) columnList() string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// view is one analyst view.
type view struct{ name, sql string }

// views are created in this order (later ones read earlier ones). The
// deduplicating views keep, per key, the row with the highest version and
// then the one written last (ClickHouse's ReplacingMergeTree keeps the last
// inserted among equal versions).
var views = []view{
	{"events", "SELECT " + tables[0].columnList() + ` FROM raw.events
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingested_at DESC, _part DESC, _row DESC) = 1`},

	{"items", "SELECT " + tables[1].columnList() + ` FROM raw.items
QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY updated_at DESC, _part DESC, _row DESC) = 1`},

	{"recommendations", "SELECT " + tables[2].columnList() + ` FROM raw.recommendations
QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY _part DESC, _row DESC) = 1`},

	// As item_hourly_mv + item_hourly_stats: distinct event ids per item,
	// hour and type, and revenue as the sum of the distinct
	// (event_id, price * quantity) pairs of purchases.
	{"item_hourly_stats", `SELECT
    item_id,
    hour,
    count(DISTINCT event_id) FILTER (WHERE event_type = 'view') AS views,
    count(DISTINCT event_id) FILTER (WHERE event_type = 'click') AS clicks,
    count(DISTINCT event_id) FILTER (WHERE event_type = 'add_to_cart') AS carts,
    count(DISTINCT event_id) FILTER (WHERE event_type = 'purchase') AS purchases,
    coalesce(sum(amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
FROM (
    SELECT DISTINCT item_id, date_trunc('hour', event_time) AS hour, event_type, event_id,
        price * CAST(quantity AS DOUBLE) AS amount
    FROM raw.events
    WHERE item_id != ''
)
GROUP BY item_id, hour`},

	// As search_daily_mv + search_stats: the query lower-cased with
	// leading and trailing whitespace removed, per day; an empty
	// session_id counts as one session.
	{"search_stats", `SELECT
    search_query AS query,
    day,
    count(DISTINCT event_id) AS search_count,
    count(DISTINCT user_id) AS user_count,
    count(DISTINCT session_id) AS session_count
FROM (
    SELECT lower(regexp_replace(query, '^\s+|\s+$', '', 'g')) AS search_query,
        CAST(event_time AS DATE) AS day, event_id, user_id, session_id
    FROM raw.events
    WHERE event_type = 'search'
)
WHERE search_query != ''
GROUP BY search_query, day`},

	// As reco_ctr_stats: requests served (once per request_id) per day,
	// kind, model version and fallback; those with at least one attributed
	// click; their ratio.
	{"reco_ctr_stats", `SELECT
    CAST(r.served_at AS DATE) AS day,
    r.kind AS kind,
    r.model_version AS model_version,
    r.fallback AS fallback,
    count(*) AS served,
    count(c.request_id) AS clicked,
    count(c.request_id) / count(*) AS ctr
FROM recommendations AS r
LEFT JOIN (
    SELECT DISTINCT reco_request_id AS request_id
    FROM raw.events
    WHERE reco_request_id != '' AND event_type = 'click'
) AS c ON c.request_id = r.request_id
GROUP BY 1, 2, 3, 4`},
}

// Macros are the ClickHouse functions defined as DuckDB macros, so that
// queries written for ClickHouse run unchanged. Aggregates come back as
// BIGINT where ClickHouse has UInt64; sumIf over no matching row is 0, as
// in ClickHouse (DuckDB's sum of nothing is NULL). Functions DuckDB already has under
// the same name (argMax, argMin, dateDiff, if, today, now, round) need
// none. Not covered: parametric aggregates such as quantileExact(0.95)(x)
// (use quantile_disc(x, 0.95)), ANY JOIN, arrayJoin, lambdas (x -> ...).
var Macros = []string{
	"toStartOfMinute(t) AS date_trunc('minute', CAST(t AS TIMESTAMP))",
	"toStartOfHour(t) AS date_trunc('hour', CAST(t AS TIMESTAMP))",
	"toStartOfDay(t) AS CAST(date_trunc('day', CAST(t AS TIMESTAMP)) AS TIMESTAMP)",
	"toMonday(t) AS CAST(date_trunc('week', CAST(t AS TIMESTAMP)) AS DATE)",
	"toStartOfMonth(t) AS CAST(date_trunc('month', CAST(t AS TIMESTAMP)) AS DATE)",
	"toDate(t) AS CAST(t AS DATE)",
	"yesterday() AS today() - 1",
	"toDateTime(t) AS CAST(t AS TIMESTAMP)",
	"toYYYYMM(t) AS CAST(year(t) * 100 + month(t) AS UINTEGER)",
	"toYYYYMMDD(t) AS CAST(year(t) * 10000 + month(t) * 100 + day(t) AS UINTEGER)",
	"toHour(t) AS CAST(hour(t) AS UTINYINT)",
	"toString(x) AS CAST(x AS VARCHAR)",
	"toFloat64(x) AS CAST(x AS DOUBLE)",
	"toInt64(x) AS CAST(x AS BIGINT)",
	"toUInt64(x) AS CAST(x AS UBIGINT)",
	"countIf(c) AS count(*) FILTER (WHERE c)",
	"sumIf(x, c) AS coalesce(sum(x) FILTER (WHERE c), 0)",
	"avgIf(x, c) AS avg(x) FILTER (WHERE c)",
	"uniqExact(x) AS count(DISTINCT x)",
	"uniqExactIf(x, c) AS count(DISTINCT x) FILTER (WHERE c)",
	"uniq(x) AS count(DISTINCT x)",
	"lowerUTF8(s) AS lower(s)",
	"upperUTF8(s) AS upper(s)",
	"lengthUTF8(s) AS length(s)",
	"replaceRegexpAll(s, pattern, replacement) AS regexp_replace(s, pattern, replacement, 'g')",
	"arraySum(a) AS list_sum(a)",
	"has(a, x) AS list_contains(a, x)",
}
