// Package schemas defines streamrec's versioned event contracts: the Go types,
// the JSON Schema files beside them for producers in other languages, and the
// decoders that validate records on the way in.
//
// Every contract is JSON. A topic name carries the major version
// (shop.clickstream.v1); within a major version fields are only ever added, so
// decoders ignore fields they do not know.
package schemas

import "time"

// Topic names of the v1 contracts.
const (
	TopicClickstream  = "shop.clickstream.v1"
	TopicCatalog      = "shop.catalog.v1"
	TopicRecoRequests = "reco.requests.v1"
	// ReplyTopicPrefix starts the name of every reply topic a reco client
	// names itself (reco.replies.<host>.<random>); serving allows reply
	// topics under it by default.
	ReplyTopicPrefix = "reco.replies."
	// DLQSuffix is appended to a topic's name to name its dead-letter topic.
	DLQSuffix = ".dlq"
)

// Record headers used by the request/reply protocol and the dead-letter topics.
const (
	HeaderReplyTo       = "reply-to"
	HeaderCorrelationID = "correlation-id"

	HeaderError           = "error"
	HeaderSourceTopic     = "source-topic"
	HeaderSourcePartition = "source-partition"
	HeaderSourceOffset    = "source-offset"
	// HeaderOriginalSize and HeaderOriginalSHA256 mark a dead letter
	// written truncated (the whole record exceeded the dead-letter topic's
	// max.message.bytes): the value is a prefix, these describe the whole.
	HeaderOriginalSize   = "original-size"
	HeaderOriginalSHA256 = "original-sha256"
)

// EventType is the kind of a clickstream event.
type EventType string

// Clickstream event types.
const (
	EventView      EventType = "view"
	EventClick     EventType = "click"
	EventAddToCart EventType = "add_to_cart"
	EventPurchase  EventType = "purchase"
	EventSearch    EventType = "search"
)

// EventTypes lists every valid EventType.
var EventTypes = []EventType{EventView, EventClick, EventAddToCart, EventPurchase, EventSearch}

// EventContext is where a clickstream event happened.
type EventContext struct {
	Device string `json:"device,omitempty"`
	Locale string `json:"locale,omitempty"`
	Page   string `json:"page,omitempty"`
	// RecoRequestID is the request_id of the recommendation reply that led to
	// this event, for click-through attribution.
	RecoRequestID string `json:"reco_request_id,omitempty"`
}

// ClickEvent is one record of shop.clickstream.v1, keyed by user_id.
//
// item_id is required for view, click, add_to_cart and purchase; query is
// required for search. price and quantity are required for add_to_cart and
// purchase. price is always encoded, so that a purchase at price 0 keeps its
// price.
type ClickEvent struct {
	EventID   string       `json:"event_id"`
	Type      EventType    `json:"type"`
	UserID    string       `json:"user_id"`
	SessionID string       `json:"session_id,omitempty"`
	ItemID    string       `json:"item_id,omitempty"`
	Query     string       `json:"query,omitempty"`
	Price     float64      `json:"price"`
	Quantity  int          `json:"quantity,omitempty"`
	Timestamp time.Time    `json:"timestamp"`
	Context   EventContext `json:"context"`
}

// CatalogOp is the operation of a catalog change.
type CatalogOp string

// Catalog operations.
const (
	OpUpsert CatalogOp = "upsert"
	OpDelete CatalogOp = "delete"
)

// CatalogChange is one record of shop.catalog.v1, keyed by item_id. The topic
// is compacted: the newest change of an item is its state.
//
// A delete needs only op, item_id and updated_at. A tombstone (a record
// keyed by the item id, without a value) deletes the item too, at the
// record's timestamp; DecodeCatalogRecord reads both kinds.
type CatalogChange struct {
	Op           CatalogOp         `json:"op"`
	ItemID       string            `json:"item_id"`
	Title        string            `json:"title,omitempty"`
	Description  string            `json:"description,omitempty"`
	CategoryPath []string          `json:"category_path,omitempty"`
	Brand        string            `json:"brand,omitempty"`
	Price        float64           `json:"price,omitempty"`
	Currency     string            `json:"currency,omitempty"`
	InStock      bool              `json:"in_stock"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// RecoKind is what a recommendation request asks for.
type RecoKind string

// Recommendation request kinds.
const (
	KindForUser      RecoKind = "for_user"
	KindSimilarItems RecoKind = "similar_items"
	KindSearch       RecoKind = "search"
)

// Filters restrict the items a recommendation may return. Zero values do not
// filter.
type Filters struct {
	Category string   `json:"category,omitempty"`
	Brand    string   `json:"brand,omitempty"`
	MinPrice *float64 `json:"min_price,omitempty"`
	MaxPrice *float64 `json:"max_price,omitempty"`
	InStock  *bool    `json:"in_stock,omitempty"`
}

// RecoRequest is one record of reco.requests.v1. The reply topic and the
// correlation id travel in the reply-to and correlation-id headers.
//
// user_id is required for for_user, item_id for similar_items and query for
// search.
type RecoRequest struct {
	RequestID string   `json:"request_id"`
	Kind      RecoKind `json:"kind"`
	UserID    string   `json:"user_id,omitempty"`
	ItemID    string   `json:"item_id,omitempty"`
	Query     string   `json:"query,omitempty"`
	K         int      `json:"k"`
	Filters   Filters  `json:"filters"`
	Exclude   []string `json:"exclude,omitempty"`
	// Deadline, when set, is when the requester stops waiting: a reply
	// that cannot be made before it is an error reply.
	Deadline *time.Time `json:"deadline,omitempty"`
}

// ReplyItem is one recommended item.
type ReplyItem struct {
	ItemID string  `json:"item_id"`
	Score  float64 `json:"score"`
	Reason string  `json:"reason,omitempty"`
}

// RecoReply answers a RecoRequest on the topic its reply-to header named,
// with the request's correlation-id header.
type RecoReply struct {
	RequestID    string      `json:"request_id"`
	Items        []ReplyItem `json:"items"`
	ModelVersion string      `json:"model_version,omitempty"`
	// Fallback is true when the answer is not personalised (for example a
	// cold-start user answered from popularity).
	Fallback bool   `json:"fallback"`
	Error    string `json:"error,omitempty"`
}
