package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// AnalyticsConfig configures the ClickHouse analytics writer. The zero value
// is not valid; start from DefaultAnalyticsConfig.
type AnalyticsConfig struct {
	// Batch says when a table's pending rows are sent as one INSERT: at
	// MaxRecords rows, MaxBytes (estimated) bytes, or MaxWait after the
	// batch's first row. ClickHouse wants few large inserts (each makes a
	// part), so batches wait for company rather than go out at once.
	Batch pipeline.BatchPolicy `yaml:"batch"`
	// QueueSize bounds the Insert calls waiting for a table's writer; a
	// full queue blocks callers.
	QueueSize int `yaml:"queue_size"`
	// SendTimeout bounds one attempt at an INSERT (prepare, append, send).
	SendTimeout time.Duration `yaml:"send_timeout"`
	// Retry is how a batch that failed for a transient reason is retried.
	Retry RetryPolicy `yaml:"retry"`
}

// RetryPolicy retries with exponential backoff: InitialBackoff after the
// first failure, doubling up to MaxBackoff, MaxAttempts attempts in all.
type RetryPolicy struct {
	MaxAttempts    int           `yaml:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// DefaultAnalyticsConfig sends a batch per 50,000 rows, 16 MiB or 200ms,
// queues up to 1,024 Insert calls per table, and tries a batch up to 5
// times over about 1.5s of backoff.
func DefaultAnalyticsConfig() AnalyticsConfig {
	return AnalyticsConfig{
		Batch:       pipeline.BatchPolicy{MaxRecords: 50_000, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond},
		QueueSize:   1024,
		SendTimeout: 30 * time.Second,
		Retry:       RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second},
	}
}

// Validate reports every invalid field, naming its key under prefix (for
// example "analytics.clickhouse").
func (c AnalyticsConfig) Validate(prefix string) error {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	var errs []error
	if err := c.Batch.Validate(key("batch")); err != nil {
		errs = append(errs, err)
	}
	if c.QueueSize <= 0 {
		errs = append(errs, fmt.Errorf("%s must be > 0", key("queue_size")))
	}
	if c.SendTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s must be > 0", key("send_timeout")))
	}
	if c.Retry.MaxAttempts <= 0 {
		errs = append(errs, fmt.Errorf("%s must be > 0", key("retry.max_attempts")))
	}
	if c.Retry.InitialBackoff < 0 {
		errs = append(errs, fmt.Errorf("%s must be >= 0", key("retry.initial_backoff")))
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		errs = append(errs, fmt.Errorf("%s must be >= %s", key("retry.max_backoff"), key("retry.initial_backoff")))
	}
	return errors.Join(errs...)
}

// Analytics is the ClickHouse pipeline.Analytics backend: it writes the
// tables events, items and recommendations of schemas/clickhouse.
//
// Writes are group commits. Each table has one goroutine that owns its
// pending batch; Insert calls queue their rows (a bounded queue, converted
// and checked in the caller's goroutine) and wait until the INSERT holding
// them has been acknowledged by the server. A batch is sent at
// AnalyticsConfig.Batch's limits; a call with more rows than MaxRecords is
// split across batches and returns once all of them are stored. Transient
// failures are retried inside the writer; every caller of a failed batch
// gets its error, marked pipeline.Permanent when retrying cannot fix it.
//
// A caller whose context ends stops waiting and gets its error at once, but
// rows already queued may still be written: inserts are idempotent, so the
// caller's retry is harmless. Safe for concurrent use.
type Analytics struct {
	events *table[eventRow]
	items  *table[itemRow]
	recos  *table[recoRow]

	// mu guards closed. Inserts hold it shared while they enqueue, so that
	// once Close has set closed no request can reach a stopped writer.
	mu     sync.RWMutex
	closed bool
}

var _ pipeline.Analytics = (*Analytics)(nil)

// Table names of the analytics schema.
const (
	tableEvents          = "events"
	tableItems           = "items"
	tableRecommendations = "recommendations"
)

// NewAnalytics validates cfg and starts one writer goroutine per table over
// conn; Close stops them. conn stays the caller's to close, after Close. log
// may be nil; reg may be nil.
func NewAnalytics(conn driver.Conn, cfg AnalyticsConfig, log *slog.Logger, reg prometheus.Registerer) (*Analytics, error) {
	if err := cfg.Validate("analytics.clickhouse"); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("clickhouse analytics: nil connection")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "clickhouse.analytics")
	m := newAnalyticsMetrics()
	if reg != nil {
		if err := m.register(reg); err != nil {
			return nil, fmt.Errorf("clickhouse analytics metrics: %w", err)
		}
	}
	a := &Analytics{
		events: newTable(conn, cfg, log, m, tableEvents, eventColumns, eventColumnValues),
		items:  newTable(conn, cfg, log, m, tableItems, itemColumns, itemColumnValues),
		recos:  newTable(conn, cfg, log, m, tableRecommendations, recoColumns, recoColumnValues),
	}
	go a.events.run()
	go a.items.run()
	go a.recos.run()
	return a, nil
}

// InsertEvents stores events; see pipeline.Analytics. An event that the
// events table cannot hold (an unknown type, a negative quantity, a time
// outside DateTime's range) fails the call with a Permanent error before
// anything is queued.
func (a *Analytics) InsertEvents(ctx context.Context, events []schemas.ClickEvent) error {
	rows := make([]eventRow, len(events))
	for i := range events {
		r, err := eventRowOf(&events[i])
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("clickhouse insert %d events: event %q: %w", len(events), events[i].EventID, err))
		}
		rows[i] = r
	}
	return insert(ctx, a, a.events, rows)
}

// InsertItems stores catalog changes; see pipeline.Analytics. A delete is a
// row with deleted = 1.
func (a *Analytics) InsertItems(ctx context.Context, changes []schemas.CatalogChange) error {
	rows := make([]itemRow, len(changes))
	for i := range changes {
		r, err := itemRowOf(&changes[i])
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("clickhouse insert %d items: item %q: %w", len(changes), changes[i].ItemID, err))
		}
		rows[i] = r
	}
	return insert(ctx, a, a.items, rows)
}

// InsertRecommendations stores served replies; see pipeline.Analytics.
func (a *Analytics) InsertRecommendations(ctx context.Context, served []pipeline.ServedRecommendation) error {
	rows := make([]recoRow, len(served))
	for i := range served {
		r, err := recoRowOf(&served[i])
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("clickhouse insert %d recommendations: request %q: %w", len(served), served[i].RequestID, err))
		}
		rows[i] = r
	}
	return insert(ctx, a, a.recos, rows)
}

// Close sends the rows queued and pending, then stops the writers. Inserts
// after Close fail with pipeline.ErrClosed. Close does not close the
// connection, and a second Close does nothing.
func (a *Analytics) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	// Stop all three first, so that they send their last batches at once.
	close(a.events.stop)
	close(a.items.stop)
	close(a.recos.stop)
	<-a.events.done
	<-a.items.done
	<-a.recos.done
	return nil
}

// insert hands rows to t's writer and waits until they are stored.
func insert[R row](ctx context.Context, a *Analytics, t *table[R], rows []R) error {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return fmt.Errorf("clickhouse insert %d %s rows: %w", len(rows), t.name, pipeline.ErrClosed)
	}
	if len(rows) == 0 {
		a.mu.RUnlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		a.mu.RUnlock()
		return fmt.Errorf("clickhouse insert %d %s rows: %w", len(rows), t.name, err)
	}
	req := &request[R]{ctx: ctx, rows: rows, done: make(chan error, 1)}
	t.queued.Add(float64(len(rows)))
	select {
	case t.queue <- req:
		a.mu.RUnlock()
	case <-ctx.Done():
		a.mu.RUnlock()
		t.queued.Sub(float64(len(rows)))
		return fmt.Errorf("clickhouse insert %d %s rows: waiting for the queue: %w", len(rows), t.name, ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("clickhouse insert %d %s rows: %w", len(rows), t.name, ctx.Err())
	}
}

// row is a table's row, converted from its domain type.
type row interface {
	// size estimates the row's bytes on the wire.
	size() int
}

// request is one Insert call waiting for its rows to be stored.
type request[R row] struct {
	ctx  context.Context
	rows []R
	done chan error // buffered: the writer never blocks on it

	// Owned by the table's writer goroutine.
	parts int   // segments not yet completed, plus one while being cut
	err   error // first error of a segment
}

// segment is a run of one request's rows in a batch.
type segment[R row] struct {
	req  *request[R]
	rows []R
}

// table is the writer of one table: its goroutine owns the pending batch.
type table[R row] struct {
	name    string
	query   string
	columns func(rows [][]R, n int) []any // one slice per column of query, of n rows in all
	conn    driver.Conn
	cfg     AnalyticsConfig
	log     *slog.Logger
	m       *analyticsMetrics
	queued  prometheus.Gauge

	queue chan *request[R]
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed when run returns

	// Owned by run.
	pending []segment[R]
	rows    int
	bytes   int
	timer   *time.Timer
	due     <-chan time.Time // non-nil while a batch waits for MaxWait
}

func newTable[R row](conn driver.Conn, cfg AnalyticsConfig, log *slog.Logger, m *analyticsMetrics,
	name string, columns []string, values func([][]R, int) []any) *table[R] {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	return &table[R]{
		name:    name,
		query:   "INSERT INTO " + name + " (" + strings.Join(columns, ", ") + ")",
		columns: values,
		conn:    conn,
		cfg:     cfg,
		log:     log.With("table", name),
		m:       m,
		queued:  m.queueRows.WithLabelValues(name),
		queue:   make(chan *request[R], cfg.QueueSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		timer:   timer,
	}
}

// run collects requests into batches and sends them until stop is closed,
// then sends what is queued and pending.
func (t *table[R]) run() {
	defer close(t.done)
	defer t.timer.Stop()
	for {
		select {
		case req := <-t.queue:
			t.add(req)
		case <-t.due:
			t.due = nil
			t.flush()
		case <-t.stop:
			// Close has set closed, so no Insert is enqueueing any more:
			// what is queued now is all there will be.
			for len(t.queue) > 0 {
				t.add(<-t.queue)
			}
			t.flush()
			return
		}
	}
}

// add cuts req's rows into the pending batch, sending the batch each time it
// fills up.
func (t *table[R]) add(req *request[R]) {
	pol := t.cfg.Batch
	req.parts = 1
	rows := req.rows
	for len(rows) > 0 {
		n := 0
		for n < len(rows) && t.rows+n < pol.MaxRecords {
			s := rows[n].size()
			if t.rows+n > 0 && t.bytes+s > pol.MaxBytes {
				break
			}
			t.bytes += s
			n++
		}
		if n > 0 {
			if t.rows == 0 {
				t.timer.Reset(pol.MaxWait)
				t.due = t.timer.C
			}
			t.pending = append(t.pending, segment[R]{req: req, rows: rows[:n]})
			req.parts++
			t.rows += n
			rows = rows[n:]
		}
		if len(rows) > 0 || t.rows >= pol.MaxRecords || t.bytes >= pol.MaxBytes {
			t.flush()
		}
	}
	t.complete(req, nil)
}

// complete ends one part of req, with err if it failed, and answers req
// once all of its parts have ended.
func (t *table[R]) complete(req *request[R], err error) {
	if err != nil && req.err == nil {
		req.err = err
	}
	req.parts--
	if req.parts == 0 {
		req.done <- req.err
	}
}

// flush sends the pending batch, retrying transient failures, and answers
// its requests.
func (t *table[R]) flush() {
	segs := t.pending
	t.pending, t.rows, t.bytes, t.due = nil, 0, 0, nil
	t.timer.Stop()
	if len(segs) == 0 {
		return
	}
	total := 0
	for _, s := range segs {
		total += len(s.rows)
	}
	defer t.queued.Sub(float64(total))

	start := time.Now()
	backoff := t.cfg.Retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		// Rows of callers that stopped waiting are not sent: they have
		// their error already, and will insert again.
		segs = slices.DeleteFunc(segs, func(s segment[R]) bool {
			if err := s.req.ctx.Err(); err != nil {
				t.complete(s.req, err)
				return true
			}
			return false
		})
		if len(segs) == 0 {
			return
		}
		rows, n := make([][]R, len(segs)), 0
		for i, s := range segs {
			rows[i] = s.rows
			n += len(s.rows)
		}
		err := t.send(rows, n)
		if err == nil {
			t.m.batchRows.WithLabelValues(t.name).Observe(float64(n))
			t.m.flush.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
			t.m.rows.WithLabelValues(t.name, "ok").Add(float64(n))
			for _, s := range segs {
				t.complete(s.req, nil)
			}
			return
		}
		retry := retryable(err)
		if !retry || attempt >= t.cfg.Retry.MaxAttempts {
			err = fmt.Errorf("clickhouse insert %d %s rows (attempt %d): %w", n, t.name, attempt, err)
			if !retry {
				err = pipeline.Permanent(err)
			}
			t.log.Error("insert failed", "rows", n, "attempts", attempt, "permanent", !retry, "err", err)
			t.m.flush.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
			t.m.rows.WithLabelValues(t.name, "error").Add(float64(n))
			for _, s := range segs {
				t.complete(s.req, err)
			}
			return
		}
		t.m.retries.WithLabelValues(t.name).Inc()
		t.log.Warn("insert failed, retrying", "rows", n, "attempt", attempt, "backoff", backoff, "err", err)
		wait := time.NewTimer(backoff)
		<-wait.C
		backoff = min(2*backoff, t.cfg.Retry.MaxBackoff)
	}
}

// send makes one attempt at inserting rows, n in all. The batch names its columns:
// ClickHouse 18.16 refuses a PrepareBatch without a column list, and an
// INSERT ... VALUES with arguments hangs there.
func (t *table[R]) send(rows [][]R, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.SendTimeout)
	defer cancel()
	batch, err := t.conn.PrepareBatch(ctx, t.query)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer batch.Close()
	for i, col := range t.columns(rows, n) {
		if err := batch.Column(i).Append(col); err != nil {
			// The rows were checked when queued: a value the column
			// refuses now is a bug that no retry fixes.
			return pipeline.Permanent(fmt.Errorf("append column %d: %w", i, err))
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// permanentCodes are the server's exception codes that retrying an INSERT
// cannot fix: the table, its columns or the data do not fit, or the user
// may not write.
var permanentCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	8:   true, // THERE_IS_NO_COLUMN
	10:  true, // NOT_FOUND_COLUMN_IN_BLOCK
	16:  true, // NO_SUCH_COLUMN_IN_TABLE
	20:  true, // NUMBER_OF_COLUMNS_DOESNT_MATCH
	26:  true, // CANNOT_PARSE_QUOTED_STRING
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	36:  true, // BAD_ARGUMENTS
	41:  true, // CANNOT_PARSE_DATETIME
	43:  true, // ILLEGAL_TYPE_OF_ARGUMENT
	44:  true, // ILLEGAL_COLUMN
	47:  true, // UNKNOWN_IDENTIFIER
	48:  true, // NOT_IMPLEMENTED
	53:  true, // TYPE_MISMATCH
	60:  true, // UNKNOWN_TABLE
	62:  true, // SYNTAX_ERROR
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	81:  true, // UNKNOWN_DATABASE
	117: true, // INCORRECT_DATA
	164: true, // READONLY
	192: true, // UNKNOWN_USER
	193: true, // WRONG_PASSWORD
	194: true, // REQUIRED_PASSWORD
	291: true, // DATABASE_ACCESS_DENIED
	497: true, // ACCESS_DENIED
	516: true, // AUTHENTICATION_FAILED
}

// retryable reports whether an attempt that failed with err may succeed if
// tried again: anything but a Permanent error or a server exception in
// permanentCodes (connection errors, timeouts, TOO_MANY_PARTS, memory
// limits, …). This is the one place that decides.
func retryable(err error) bool {
	if pipeline.IsPermanent(err) {
		return false
	}
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return !permanentCodes[ex.Code]
	}
	return true
}

// DateTime is seconds since 1970 in a UInt32.
const maxDateTime = math.MaxUint32

// splitTime returns t as a DateTime (whole seconds, UTC) and its
// milliseconds, or an error if the DateTime cannot hold it.
func splitTime(field string, t time.Time) (time.Time, uint16, error) {
	sec := t.Unix()
	if sec < 0 || sec > maxDateTime {
		return time.Time{}, 0, fmt.Errorf("%s %s is outside ClickHouse DateTime's range", field, t.Format(time.RFC3339Nano))
	}
	return time.Unix(sec, 0).UTC(), uint16(t.Nanosecond() / int(time.Millisecond)), nil
}

// fixedRowBytes estimates a row's numbers and per-value overhead.
const fixedRowBytes = 64

// eventColumns are the events columns an insert fills; ingested_at takes
// its DEFAULT.
var eventColumns = []string{"event_id", "event_type", "user_id", "session_id", "item_id", "query", "price",
	"quantity", "event_time", "event_ms", "device", "locale", "page", "reco_request_id"}

type eventRow struct {
	// A copy: a caller whose context ends may reuse its slice while the
	// row is still being sent.
	e     schemas.ClickEvent
	time  time.Time
	ms    uint16
	bytes int
}

func eventRowOf(e *schemas.ClickEvent) (eventRow, error) {
	if !slices.Contains(schemas.EventTypes, e.Type) {
		return eventRow{}, fmt.Errorf("unknown type %q", e.Type)
	}
	if e.Quantity < 0 || uint64(e.Quantity) > math.MaxUint32 {
		return eventRow{}, fmt.Errorf("quantity %d is outside UInt32", e.Quantity)
	}
	ts, ms, err := splitTime("timestamp", e.Timestamp)
	if err != nil {
		return eventRow{}, err
	}
	return eventRow{e: *e, time: ts, ms: ms, bytes: eventBytes(e)}, nil
}

func (r eventRow) size() int { return r.bytes }

func eventBytes(e *schemas.ClickEvent) int {
	return fixedRowBytes + len(e.EventID) + len(e.Type) + len(e.UserID) + len(e.SessionID) + len(e.ItemID) +
		len(e.Query) + len(e.Context.Device) + len(e.Context.Locale) + len(e.Context.Page) + len(e.Context.RecoRequestID)
}

// eventColumnValues returns the columns of eventColumns.
func eventColumnValues(rows [][]eventRow, n int) []any {
	var (
		ids, types, users, sessions, items, queries = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n)
		prices                       = make([]float64, n)
		quantities                   = make([]uint32, n)
		times                        = make([]time.Time, n)
		millis                       = make([]uint16, n)
		devices, locales, pages, rec = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	)
	for i, r := range all(rows) {
		e := &r.e
		ids[i], types[i], users[i], sessions[i], items[i], queries[i] =
			e.EventID, string(e.Type), e.UserID, e.SessionID, e.ItemID, e.Query
		prices[i], quantities[i], times[i], millis[i] = e.Price, uint32(e.Quantity), r.time, r.ms
		devices[i], locales[i], pages[i], rec[i] = e.Context.Device, e.Context.Locale, e.Context.Page, e.Context.RecoRequestID
	}
	return []any{ids, types, users, sessions, items, queries, prices, quantities, times, millis, devices, locales, pages, rec}
}

// itemColumns are the items columns an insert fills; version is
// MATERIALIZED from updated_at and updated_ms.
var itemColumns = []string{"item_id", "title", "description", "category_path", "brand", "price", "currency",
	"in_stock", "attribute_keys", "attribute_values", "deleted", "updated_at", "updated_ms"}

type itemRow struct {
	// A copy, with its own category path (see eventRow.e).
	c          schemas.CatalogChange
	keys, vals []string // attributes sorted by key
	time       time.Time
	ms         uint16
	bytes      int
}

func itemRowOf(c *schemas.CatalogChange) (itemRow, error) {
	if c.Op != schemas.OpUpsert && c.Op != schemas.OpDelete {
		return itemRow{}, fmt.Errorf("unknown op %q", c.Op)
	}
	ts, ms, err := splitTime("updated_at", c.UpdatedAt)
	if err != nil {
		return itemRow{}, err
	}
	r := itemRow{c: *c, time: ts, ms: ms}
	r.c.CategoryPath = slices.Clone(c.CategoryPath)
	r.c.Attributes = nil
	r.bytes = fixedRowBytes + len(c.ItemID) + len(c.Title) + len(c.Description) + len(c.Brand) + len(c.Currency)
	for _, p := range c.CategoryPath {
		r.bytes += len(p) + 8
	}
	if len(c.Attributes) > 0 {
		type kv struct{ k, v string }
		attrs := make([]kv, 0, len(c.Attributes))
		for k, v := range c.Attributes {
			attrs = append(attrs, kv{k, v})
			r.bytes += len(k) + len(v) + 16
		}
		slices.SortFunc(attrs, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
		r.keys, r.vals = make([]string, len(attrs)), make([]string, len(attrs))
		for i, a := range attrs {
			r.keys[i], r.vals[i] = a.k, a.v
		}
	}
	return r, nil
}

func (r itemRow) size() int { return r.bytes }

// itemColumnValues returns the columns of itemColumns.
func itemColumnValues(rows [][]itemRow, n int) []any {
	var (
		ids, titles, descs, brands, currencies = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n)
		paths, keys, vals = make([][]string, n), make([][]string, n), make([][]string, n)
		prices            = make([]float64, n)
		inStock, deleted  = make([]uint8, n), make([]uint8, n)
		times             = make([]time.Time, n)
		millis            = make([]uint16, n)
	)
	for i, r := range all(rows) {
		c := &r.c
		ids[i], titles[i], descs[i], brands[i], currencies[i] = c.ItemID, c.Title, c.Description, c.Brand, c.Currency
		paths[i], keys[i], vals[i] = nonNil(c.CategoryPath), nonNil(r.keys), nonNil(r.vals)
		prices[i], inStock[i], deleted[i] = c.Price, boolUInt8(c.InStock), boolUInt8(c.Op == schemas.OpDelete)
		times[i], millis[i] = r.time, r.ms
	}
	return []any{ids, titles, descs, paths, brands, prices, currencies, inStock, keys, vals, deleted, times, millis}
}

// recoColumns are the recommendations columns an insert fills.
var recoColumns = []string{"request_id", "kind", "user_id", "item_id", "query", "items", "scores", "latency_ms",
	"model_version", "fallback", "error", "served_at", "served_ms"}

type recoRow struct {
	// A copy, with its own items and scores (see eventRow.e).
	r     pipeline.ServedRecommendation
	time  time.Time
	ms    uint16
	bytes int
}

func recoRowOf(s *pipeline.ServedRecommendation) (recoRow, error) {
	switch s.Kind {
	case schemas.KindForUser, schemas.KindSimilarItems, schemas.KindSearch:
	default:
		return recoRow{}, fmt.Errorf("unknown kind %q", s.Kind)
	}
	ts, ms, err := splitTime("served_at", s.ServedAt)
	if err != nil {
		return recoRow{}, err
	}
	r := recoRow{r: *s, time: ts, ms: ms, bytes: recoBytes(s)}
	r.r.Items, r.r.Scores = slices.Clone(s.Items), slices.Clone(s.Scores)
	return r, nil
}

func (r recoRow) size() int { return r.bytes }

func recoBytes(s *pipeline.ServedRecommendation) int {
	n := fixedRowBytes + len(s.RequestID) + len(s.Kind) + len(s.UserID) + len(s.ItemID) + len(s.Query) +
		len(s.ModelVersion) + len(s.Error) + 4*len(s.Scores)
	for _, it := range s.Items {
		n += len(it) + 8
	}
	return n
}

// recoColumnValues returns the columns of recoColumns.
func recoColumnValues(rows [][]recoRow, n int) []any {
	var (
		ids, kinds, users, items, queries = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n)
		lists        = make([][]string, n)
		scores       = make([][]float32, n)
		latencies    = make([]float64, n)
		models, errs = make([]string, n), make([]string, n)
		fallbacks    = make([]uint8, n)
		times        = make([]time.Time, n)
		millis       = make([]uint16, n)
	)
	for i, r := range all(rows) {
		s := &r.r
		ids[i], kinds[i], users[i], items[i], queries[i] = s.RequestID, string(s.Kind), s.UserID, s.ItemID, s.Query
		lists[i], scores[i] = nonNil(s.Items), nonNil(s.Scores)
		latencies[i] = float64(s.Latency) / float64(time.Millisecond)
		models[i], fallbacks[i], errs[i] = s.ModelVersion, boolUInt8(s.Fallback), s.Error
		times[i], millis[i] = r.time, r.ms
	}
	return []any{ids, kinds, users, items, queries, lists, scores, latencies, models, fallbacks, errs, times, millis}
}

// all yields the rows of a batch's segments, numbered from 0.
func all[R any](segs [][]R) iter.Seq2[int, *R] {
	return func(yield func(int, *R) bool) {
		i := 0
		for _, seg := range segs {
			for j := range seg {
				if !yield(i, &seg[j]) {
					return
				}
				i++
			}
		}
	}
}

func boolUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// nonNil returns s, or an empty slice for nil: an Array column appends
// either as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type analyticsMetrics struct {
	rows      *prometheus.CounterVec
	batchRows *prometheus.HistogramVec
	flush     *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	queueRows *prometheus.GaugeVec
}

func newAnalyticsMetrics() *analyticsMetrics {
	return &analyticsMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_analytics_rows_total", Help: "Rows written to ClickHouse analytics tables, by table and result.",
		}, []string{"table", "result"}),
		batchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "streamrec_analytics_batch_rows", Help: "Rows per INSERT sent to ClickHouse.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"table"}),
		flush: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "streamrec_analytics_flush_seconds", Help: "Time to store one batch in ClickHouse, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"table"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_analytics_retries_total", Help: "INSERT attempts that failed transiently and were retried.",
		}, []string{"table"}),
		queueRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_analytics_queue_rows", Help: "Rows waiting for their INSERT: queued, pending or being sent.",
		}, []string{"table"}),
	}
}

func (m *analyticsMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.rows, m.batchRows, m.flush, m.retries, m.queueRows} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
