-- 0001_init: streamrec's analytics schema.
--
-- One DDL for ClickHouse 18.16 (Debian bookworm, used in CI) and current
-- releases: DateTime plus a millisecond UInt16 column instead of DateTime64,
-- UInt8 for booleans, parallel arrays instead of Map, no LowCardinality, no
-- JSON. Names are unqualified so the migration runs in the connection's
-- database. Every statement is IF NOT EXISTS, so re-running a migration that
-- stopped half way (ClickHouse DDL is not transactional) is safe.
--
-- Idempotency: delivery is at-least-once, so the same event may be inserted
-- more than once. Tables dedup by key (ReplacingMergeTree) when parts merge;
-- materialized views fire on every insert and would double-count a replay if
-- they summed. So every count in the materialized views is an exact distinct
-- count of event ids (uniqExactState(event_id)) and revenue is kept as the
-- distinct set of (event_id, amount) pairs (groupUniqArrayState): inserting
-- an event again adds nothing new to either state. Analysts read the plain
-- *_stats views, which merge the states. The cost is that the states hold
-- the event ids of each group (item x hour x type, query x day,
-- request x type), bounded by that group's own events.

-- events: every clickstream field. Partitioned by month; ordered for
-- per-item queries first, then per-user within an item. Rows of one event_id
-- are equal in every key column, so replays collapse when parts merge
-- (SELECT ... FINAL sees them collapsed at once).
CREATE TABLE IF NOT EXISTS events
(
    event_id        String,
    event_type      Enum8('view' = 1, 'click' = 2, 'add_to_cart' = 3, 'purchase' = 4, 'search' = 5),
    user_id         String,
    session_id      String,
    item_id         String,
    query           String,
    price           Float64,
    quantity        UInt32,
    event_time      DateTime,
    event_ms        UInt16,
    device          String,
    locale          String,
    page            String,
    reco_request_id String,
    ingested_at     DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (item_id, user_id, event_time, event_id);

-- items: the catalog snapshot. A row per change; the newest updated_at (to
-- the millisecond, through version) wins when parts merge. Deletes are rows
-- with deleted = 1.
CREATE TABLE IF NOT EXISTS items
(
    item_id          String,
    title            String,
    description      String,
    category_path    Array(String),
    brand            String,
    price            Float64,
    currency         String,
    in_stock         UInt8,
    attribute_keys   Array(String),
    attribute_values Array(String),
    deleted          UInt8,
    updated_at       DateTime,
    updated_ms       UInt16,
    version          UInt64 MATERIALIZED toUInt64(updated_at) * 1000 + updated_ms
)
ENGINE = ReplacingMergeTree(version)
ORDER BY item_id;

-- recommendations: every reply served, deduplicated by request_id.
CREATE TABLE IF NOT EXISTS recommendations
(
    request_id    String,
    kind          Enum8('for_user' = 1, 'similar_items' = 2, 'search' = 3),
    user_id       String,
    item_id       String,
    query         String,
    items         Array(String),
    scores        Array(Float32),
    latency_ms    Float64,
    model_version String,
    fallback      UInt8,
    error         String,
    served_at     DateTime,
    served_ms     UInt16
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(served_at)
ORDER BY request_id;

-- Per item, hour and event type: distinct events and distinct
-- (event_id, amount) pairs of purchases.
CREATE MATERIALIZED VIEW IF NOT EXISTS item_hourly_mv
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (item_id, hour, event_type)
AS SELECT
    item_id,
    toStartOfHour(event_time) AS hour,
    event_type,
    uniqExactState(event_id) AS events,
    groupUniqArrayState((event_id, price * quantity)) AS amounts
FROM events
WHERE item_id != ''
GROUP BY item_id, hour, event_type;

CREATE VIEW IF NOT EXISTS item_hourly_stats AS
SELECT
    item_id,
    hour,
    sum(event_type = 'view' ? n : 0) AS views,
    sum(event_type = 'click' ? n : 0) AS clicks,
    sum(event_type = 'add_to_cart' ? n : 0) AS carts,
    sum(event_type = 'purchase' ? n : 0) AS purchases,
    sum(event_type = 'purchase' ? amount : 0) AS revenue
FROM
(
    SELECT
        item_id,
        hour,
        event_type,
        uniqExactMerge(events) AS n,
        arraySum(p -> tupleElement(p, 2), groupUniqArrayMerge(amounts)) AS amount
    FROM item_hourly_mv
    GROUP BY item_id, hour, event_type
)
GROUP BY item_id, hour;

-- Per search query (lower case, trimmed) and day. No alias reuses a
-- column's name: current releases' analyzer resolves such names differently.
-- An empty session_id counts as one session.
CREATE MATERIALIZED VIEW IF NOT EXISTS search_daily_mv
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (search_query, day)
AS SELECT
    lowerUTF8(replaceRegexpAll(query, '^\\s+|\\s+$', '')) AS search_query,
    toDate(event_time) AS day,
    uniqExactState(event_id) AS searches,
    uniqExactState(user_id) AS users,
    uniqExactState(session_id) AS sessions
FROM events
WHERE event_type = 'search' AND search_query != ''
GROUP BY search_query, day;

CREATE VIEW IF NOT EXISTS search_stats AS
SELECT
    search_query AS query,
    day,
    uniqExactMerge(searches) AS search_count,
    uniqExactMerge(users) AS user_count,
    uniqExactMerge(sessions) AS session_count
FROM search_daily_mv
GROUP BY search_query, day;

-- Events attributed to a recommendation reply (context.reco_request_id), per
-- request and event type.
CREATE MATERIALIZED VIEW IF NOT EXISTS reco_events_mv
ENGINE = AggregatingMergeTree()
ORDER BY (reco_request_id, event_type)
AS SELECT
    reco_request_id,
    event_type,
    uniqExactState(event_id) AS events
FROM events
WHERE reco_request_id != ''
GROUP BY reco_request_id, event_type;

-- Both subqueries carry aliases: current releases refuse a JOIN of
-- unaliased subqueries (code 206), 18.16 accepts either form.
-- Click-through per day, kind, model version and fallback: requests served
-- (once per request_id: FINAL collapses replayed replies), requests with at
-- least one attributed click, and their ratio.
CREATE VIEW IF NOT EXISTS reco_ctr_stats AS
SELECT
    day,
    kind,
    model_version,
    fallback,
    count() AS served,
    sum(has_click) AS clicked,
    clicked / served AS ctr
FROM
(
    SELECT request_id, toDate(served_at) AS day, kind, model_version, fallback
    FROM recommendations FINAL
) AS served_replies
ANY LEFT JOIN
(
    SELECT reco_request_id AS request_id, toUInt8(uniqExactMerge(events) > 0) AS has_click
    FROM reco_events_mv
    WHERE event_type = 'click'
    GROUP BY reco_request_id
) AS clicks USING request_id
GROUP BY day, kind, model_version, fallback;
