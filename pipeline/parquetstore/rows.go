package parquetstore

import (
	"slices"
	"time"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Table names: the folders under the store's directory, and the ClickHouse
// tables of schemas/clickhouse/0001_init.sql they mirror.
const (
	TableEvents          = "events"
	TableItems           = "items"
	TableRecommendations = "recommendations"
)

// Tables lists every table, in the order of the ClickHouse schema.
var Tables = []string{TableEvents, TableItems, TableRecommendations}

// EventRow is one row of table events: the ClickHouse columns, except that
// event_time is a millisecond UTC timestamp instead of event_time (seconds)
// plus event_ms, and ingested_at is one too.
type EventRow struct {
	EventID       string    `parquet:"event_id"`
	EventType     string    `parquet:"event_type,dict"`
	UserID        string    `parquet:"user_id"`
	SessionID     string    `parquet:"session_id"`
	ItemID        string    `parquet:"item_id"`
	Query         string    `parquet:"query"`
	Price         float64   `parquet:"price"`
	Quantity      uint32    `parquet:"quantity"`
	EventTime     time.Time `parquet:"event_time,timestamp(millisecond)"`
	Device        string    `parquet:"device,dict"`
	Locale        string    `parquet:"locale,dict"`
	Page          string    `parquet:"page,dict"`
	RecoRequestID string    `parquet:"reco_request_id"`
	IngestedAt    time.Time `parquet:"ingested_at,timestamp(millisecond)"`
}

// ItemRow is one row of table items: a catalog change. updated_at is a
// millisecond UTC timestamp instead of updated_at plus updated_ms; deletes
// have Deleted 1.
type ItemRow struct {
	ItemID          string    `parquet:"item_id"`
	Title           string    `parquet:"title"`
	Description     string    `parquet:"description"`
	CategoryPath    []string  `parquet:"category_path,list"`
	Brand           string    `parquet:"brand,dict"`
	Price           float64   `parquet:"price"`
	Currency        string    `parquet:"currency,dict"`
	InStock         uint8     `parquet:"in_stock"`
	AttributeKeys   []string  `parquet:"attribute_keys,list"`
	AttributeValues []string  `parquet:"attribute_values,list"`
	Deleted         uint8     `parquet:"deleted"`
	UpdatedAt       time.Time `parquet:"updated_at,timestamp(millisecond)"`
}

// RecommendationRow is one row of table recommendations: a reply served.
// served_at is a millisecond UTC timestamp instead of served_at plus
// served_ms.
type RecommendationRow struct {
	RequestID    string    `parquet:"request_id"`
	Kind         string    `parquet:"kind,dict"`
	UserID       string    `parquet:"user_id"`
	ItemID       string    `parquet:"item_id"`
	Query        string    `parquet:"query"`
	Items        []string  `parquet:"items,list"`
	Scores       []float32 `parquet:"scores,list"`
	LatencyMs    float64   `parquet:"latency_ms"`
	ModelVersion string    `parquet:"model_version,dict"`
	Fallback     uint8     `parquet:"fallback"`
	Error        string    `parquet:"error"`
	ServedAt     time.Time `parquet:"served_at,timestamp(millisecond)"`
}

// ms truncates t to the millisecond in UTC, as stored.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// EventRowOf is the row that stores e, ingested at ingested.
func EventRowOf(e schemas.ClickEvent, ingested time.Time) EventRow {
	return EventRow{
		EventID:       e.EventID,
		EventType:     string(e.Type),
		UserID:        e.UserID,
		SessionID:     e.SessionID,
		ItemID:        e.ItemID,
		Query:         e.Query,
		Price:         e.Price,
		Quantity:      uint32(max(e.Quantity, 0)),
		EventTime:     ms(e.Timestamp),
		Device:        e.Context.Device,
		Locale:        e.Context.Locale,
		Page:          e.Context.Page,
		RecoRequestID: e.Context.RecoRequestID,
		IngestedAt:    ms(ingested),
	}
}

// ItemRowOf is the row that stores c. Attributes are stored as parallel
// arrays sorted by key.
func ItemRowOf(c schemas.CatalogChange) ItemRow {
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = c.Attributes[k]
	}
	return ItemRow{
		ItemID:          c.ItemID,
		Title:           c.Title,
		Description:     c.Description,
		CategoryPath:    nonNil(c.CategoryPath),
		Brand:           c.Brand,
		Price:           c.Price,
		Currency:        c.Currency,
		InStock:         boolByte(c.InStock),
		AttributeKeys:   keys,
		AttributeValues: values,
		Deleted:         boolByte(c.Op == schemas.OpDelete),
		UpdatedAt:       ms(c.UpdatedAt),
	}
}

// RecommendationRowOf is the row that stores r.
func RecommendationRowOf(r pipeline.ServedRecommendation) RecommendationRow {
	return RecommendationRow{
		RequestID:    r.RequestID,
		Kind:         string(r.Kind),
		UserID:       r.UserID,
		ItemID:       r.ItemID,
		Query:        r.Query,
		Items:        nonNil(r.Items),
		Scores:       nonNil(r.Scores),
		LatencyMs:    float64(r.Latency) / float64(time.Millisecond),
		ModelVersion: r.ModelVersion,
		Fallback:     boolByte(r.Fallback),
		Error:        r.Error,
		ServedAt:     ms(r.ServedAt),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Row sizes, estimated from their variable-length fields plus a fixed part,
// for the batch policy's MaxBytes.
func (r *EventRow) size() int {
	return 64 + len(r.EventID) + len(r.EventType) + len(r.UserID) + len(r.SessionID) + len(r.ItemID) +
		len(r.Query) + len(r.Device) + len(r.Locale) + len(r.Page) + len(r.RecoRequestID)
}

func (r *ItemRow) size() int {
	n := 64 + len(r.ItemID) + len(r.Title) + len(r.Description) + len(r.Brand) + len(r.Currency)
	for _, s := range [][]string{r.CategoryPath, r.AttributeKeys, r.AttributeValues} {
		for _, v := range s {
			n += 4 + len(v)
		}
	}
	return n
}

func (r *RecommendationRow) size() int {
	n := 64 + len(r.RequestID) + len(r.Kind) + len(r.UserID) + len(r.ItemID) + len(r.Query) +
		len(r.ModelVersion) + len(r.Error) + 4*len(r.Scores)
	for _, v := range r.Items {
		n += 4 + len(v)
	}
	return n
}
