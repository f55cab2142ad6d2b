package pipeline

import (
	"context"
	"time"

	"github.com/streamrec/streamrec/schemas"
)

// Profile is a user's real-time state, kept by the profile updater on the
// clickstream (one writer per user: the clickstream is keyed by user_id)
// and read by the serving consumer.
type Profile struct {
	UserID string
	// Vector is the unit-length, recency- and event-type-weighted mean of
	// the vectors of the items the user touched; nil while none of those
	// items had a vector.
	Vector []float32
	// Recent are the latest touches, newest first, at most a configured
	// number (for exclusion and explanations).
	Recent []Touch
	// Purchased are the items bought, newest first, bounded likewise.
	Purchased []string
	UpdatedAt time.Time
}

// Touch is one interaction of a user with an item.
type Touch struct {
	ItemID string
	Type   schemas.EventType
	At     time.Time
}

// Profiles reads user profiles. Safe for concurrent use.
type Profiles interface {
	// Profile returns the user's profile, and false (with a nil error) for a
	// user the store has never seen: a cold user, not an error.
	Profile(ctx context.Context, userID string) (Profile, bool, error)
}

// Scored is an item id with a score.
type Scored struct {
	ItemID string
	Score  float64
}

// Popularity answers cold-start requests: items by time-decayed
// interaction counts. Safe for concurrent use.
type Popularity interface {
	// Top returns up to k items, most popular first; category "" is the
	// whole catalog, otherwise items whose category path contains it.
	Top(category string, k int) []Scored
}
