// Package profiles keeps users' real-time profiles from the clickstream:
// the Updater folds each kept event into its user's point in the vector
// store, and the Reader serves them as pipeline.Profiles.
//
// A user's point lives in the collection UsersCollection(version), beside
// the items collection of the same model version (a profile vector is a
// mean of item vectors, so it is only comparable with items of its model),
// behind the alias UsersAlias. Its vector is the unit-length direction of
// the recency- and type-weighted sum of the vectors of the items the user
// touched; its payload (the Payload* keys) holds what makes the next
// update exact and the replay check possible.
package profiles

import (
	"fmt"
	"math"
	"time"

	"github.com/streamrec/streamrec/schemas"
)

// Weights are what one event of each type counts for. A weight of 0 leaves
// the type out of the vector (the event is still a touch in the recent
// list when it names an item).
type Weights struct {
	View      float64 `yaml:"view"`
	Click     float64 `yaml:"click"`
	AddToCart float64 `yaml:"add_to_cart"`
	Purchase  float64 `yaml:"purchase"`
	Search    float64 `yaml:"search"`
}

// DefaultWeights: view 1, click 2, add_to_cart 4, purchase 8, search 0 (a
// search names no item).
func DefaultWeights() Weights {
	return Weights{View: 1, Click: 2, AddToCart: 4, Purchase: 8, Search: 0}
}

// Of returns the weight of an event type (0 for an unknown type).
func (w Weights) Of(t schemas.EventType) float64 {
	switch t {
	case schemas.EventView:
		return w.View
	case schemas.EventClick:
		return w.Click
	case schemas.EventAddToCart:
		return w.AddToCart
	case schemas.EventPurchase:
		return w.Purchase
	case schemas.EventSearch:
		return w.Search
	}
	return 0
}

// Validate reports the first invalid weight, named under prefix
// ("profiles.weights"): each must be finite and >= 0, and one > 0.
func (w Weights) Validate(prefix string) error {
	var anyPositive bool
	for _, f := range []struct {
		key string
		v   float64
	}{{"view", w.View}, {"click", w.Click}, {"add_to_cart", w.AddToCart}, {"purchase", w.Purchase}, {"search", w.Search}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("%s.%s must be a finite number >= 0", prefix, f.key)
		}
		anyPositive = anyPositive || f.v > 0
	}
	if !anyPositive {
		return fmt.Errorf("%s: at least one weight must be > 0", prefix)
	}
	return nil
}

// Config configures the profile updater.
type Config struct {
	Weights Weights `yaml:"weights"`
	// HalfLife is the recency weighting: an event counts half as much as
	// one of the same type HalfLife later, by event time.
	HalfLife time.Duration `yaml:"half_life"`
	// MaxRecent bounds a profile's recent touches.
	MaxRecent int `yaml:"max_recent"`
	// MaxPurchased bounds a profile's purchased items.
	MaxPurchased int `yaml:"max_purchased"`
}

// DefaultConfig: default weights, a 24h half-life, 20 recent touches, 50
// purchased items.
func DefaultConfig() Config {
	return Config{Weights: DefaultWeights(), HalfLife: 24 * time.Hour, MaxRecent: 20, MaxPurchased: 50}
}

// Validate reports the first invalid field, named under prefix
// ("profiles").
func (c Config) Validate(prefix string) error {
	if err := c.Weights.Validate(prefix + ".weights"); err != nil {
		return err
	}
	if c.HalfLife < time.Millisecond {
		return fmt.Errorf("%s.half_life must be > 0 (at least 1ms)", prefix)
	}
	if c.MaxRecent < 0 {
		return fmt.Errorf("%s.max_recent must be >= 0", prefix)
	}
	if c.MaxPurchased < 0 {
		return fmt.Errorf("%s.max_purchased must be >= 0", prefix)
	}
	return nil
}
