package schemas

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what a decoder accepts. Start from DefaultLimits and check a
// changed copy with Validate at start-up; the decoders trust their Limits.
// The JSON Schema files state the default limits.
//
// Lengths are in bytes of UTF-8; counts are numbers of entries.
type Limits struct {
	// MaxBytes is the size of the largest record.
	MaxBytes int `yaml:"max_bytes"`
	// MaxFutureSkew is how far ahead of now a clickstream timestamp or a
	// catalog updated_at may be.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// MaxAge is how far behind now a clickstream timestamp may be; 0 means
	// no limit. A catalog updated_at has no age limit: the compacted topic
	// keeps items that have not changed for years.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxDeadline is how far ahead of now a request's deadline may be; 0
	// means no limit. A deadline in the past is valid: the request gets an
	// error reply.
	MaxDeadline time.Duration `yaml:"max_deadline"`
	// MaxK is the largest k of a request and the most items of a reply.
	MaxK int `yaml:"max_k"`
	// MaxQuantity is the largest quantity of a clickstream event.
	MaxQuantity int `yaml:"max_quantity"`
	// MaxIDLen is the longest id: event, user, session, item and request
	// ids, excluded items.
	MaxIDLen int `yaml:"max_id_len"`
	// MaxNameLen is the longest short label: brand, category, device,
	// locale, model version, attribute key.
	MaxNameLen int `yaml:"max_name_len"`
	// MaxTextLen is the longest free text other than a description: query,
	// title, page, attribute value, reply reason and error.
	MaxTextLen int `yaml:"max_text_len"`
	// MaxDescriptionLen is the longest catalog description.
	MaxDescriptionLen int `yaml:"max_description_len"`
	// MaxCategoryDepth is the most entries of a catalog category_path.
	MaxCategoryDepth int `yaml:"max_category_depth"`
	// MaxAttributes is the most entries of a catalog item's attributes.
	MaxAttributes int `yaml:"max_attributes"`
	// MaxExclude is the most entries of a request's exclude list.
	MaxExclude int `yaml:"max_exclude"`
}

// DefaultLimits returns the limits the JSON Schema files state.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:          64 << 10,
		MaxFutureSkew:     5 * time.Minute,
		MaxAge:            30 * 24 * time.Hour,
		MaxDeadline:       5 * time.Minute,
		MaxK:              1000,
		MaxQuantity:       10000,
		MaxIDLen:          256,
		MaxNameLen:        256,
		MaxTextLen:        1 << 10,
		MaxDescriptionLen: 16 << 10,
		MaxCategoryDepth:  16,
		MaxAttributes:     64,
		MaxExclude:        1000,
	}
}

// Validate reports every invalid limit, each error naming its key.
func (l Limits) Validate() error {
	var errs []error
	positive := func(key string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0", key))
		}
	}
	nonNegative := func(key string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must be >= 0", key))
		}
	}
	positive("max_bytes", l.MaxBytes)
	nonNegative("max_future_skew", l.MaxFutureSkew)
	nonNegative("max_age", l.MaxAge)
	nonNegative("max_deadline", l.MaxDeadline)
	positive("max_k", l.MaxK)
	positive("max_quantity", l.MaxQuantity)
	positive("max_id_len", l.MaxIDLen)
	positive("max_name_len", l.MaxNameLen)
	positive("max_text_len", l.MaxTextLen)
	positive("max_description_len", l.MaxDescriptionLen)
	positive("max_category_depth", l.MaxCategoryDepth)
	positive("max_attributes", l.MaxAttributes)
	positive("max_exclude", l.MaxExclude)
	return errors.Join(errs...)
}
