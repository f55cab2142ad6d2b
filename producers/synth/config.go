package synth

import (
	"errors"
	"strings"
	"time"
)

// Config configures a synthetic run. It is the "produce" section of the
// configuration file.
type Config struct {
	// Seed makes the catalog and the sessions' content reproducible. Event
	// and session ids are always fresh, so repeated runs do not collide.
	Seed uint64 `yaml:"seed"`
	// Items is the catalog size; ids run from item-000000.
	Items int `yaml:"items"`
	// Users is the number of shoppers; ids run from user-00000.
	Users int `yaml:"users"`
	// SendCatalog makes Run produce the catalog before the clickstream.
	SendCatalog bool `yaml:"send_catalog"`
	// Currency of every item's price.
	Currency string `yaml:"currency"`
	// ChineseFraction of the items have Chinese titles and descriptions.
	ChineseFraction float64 `yaml:"chinese_fraction"`

	// Rate is the clickstream rate in events per second.
	Rate float64 `yaml:"rate"`
	// Duration bounds the clickstream; 0 means until Events are sent.
	Duration time.Duration `yaml:"duration"`
	// Events bounds the clickstream; 0 means until Duration has passed.
	Events int `yaml:"events"`
	// DrainTimeout bounds the wait for deliveries once generation stops;
	// records still undelivered then fail.
	DrainTimeout time.Duration `yaml:"drain_timeout"`

	// ZipfS is the exponent of item popularity (> 1; larger is more skewed).
	ZipfS float64 `yaml:"zipf_s"`
	// Sessions is the number of sessions interleaved at any time.
	Sessions int `yaml:"sessions"`
	// SearchFraction of sessions start with a search.
	SearchFraction float64 `yaml:"search_fraction"`
	// MeanViews is the mean number of item views in a session.
	MeanViews float64 `yaml:"mean_views"`
	// Funnel holds the step probabilities of a session.
	Funnel Funnel `yaml:"funnel"`
	// TypoFraction of search queries carry a typo.
	TypoFraction float64 `yaml:"typo_fraction"`
	// DuplicateFraction of events are sent twice with the same event_id.
	DuplicateFraction float64 `yaml:"duplicate_fraction"`
}

// Funnel holds the probability of each step given the one before it.
type Funnel struct {
	ViewToClick    float64 `yaml:"view_to_click"`
	ClickToCart    float64 `yaml:"click_to_cart"`
	CartToPurchase float64 `yaml:"cart_to_purchase"`
}

// DefaultConfig returns 2000 events/s for 10 s over 1000 items and 1000
// users, with the catalog sent first.
func DefaultConfig() Config {
	return Config{
		Seed:              1,
		Items:             1000,
		Users:             1000,
		SendCatalog:       true,
		Currency:          "USD",
		ChineseFraction:   0.1,
		Rate:              2000,
		Duration:          10 * time.Second,
		DrainTimeout:      30 * time.Second,
		ZipfS:             1.1,
		Sessions:          64,
		SearchFraction:    0.4,
		MeanViews:         5,
		Funnel:            Funnel{ViewToClick: 0.3, ClickToCart: 0.25, CartToPurchase: 0.4},
		TypoFraction:      0.1,
		DuplicateFraction: 0,
	}
}

// Validate reports the first bad key of c.
func (c Config) Validate() error {
	fractions := []struct {
		key string
		v   float64
	}{
		{"produce.chinese_fraction", c.ChineseFraction},
		{"produce.search_fraction", c.SearchFraction},
		{"produce.funnel.view_to_click", c.Funnel.ViewToClick},
		{"produce.funnel.click_to_cart", c.Funnel.ClickToCart},
		{"produce.funnel.cart_to_purchase", c.Funnel.CartToPurchase},
		{"produce.typo_fraction", c.TypoFraction},
		{"produce.duplicate_fraction", c.DuplicateFraction},
	}
	switch {
	case c.Items <= 0:
		return errors.New("produce.items must be > 0")
	case c.Users <= 0:
		return errors.New("produce.users must be > 0")
	case len(c.Currency) != 3 || strings.TrimLeft(c.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "":
		return errors.New("produce.currency must be three upper-case letters (ISO 4217)")
	case !(c.Rate > 0):
		return errors.New("produce.rate must be > 0")
	case c.Duration < 0:
		return errors.New("produce.duration must be >= 0")
	case c.Events < 0:
		return errors.New("produce.events must be >= 0")
	case c.Duration == 0 && c.Events == 0:
		return errors.New("produce.duration or produce.events must be > 0")
	case c.DrainTimeout <= 0:
		return errors.New("produce.drain_timeout must be > 0")
	case !(c.ZipfS > 1):
		return errors.New("produce.zipf_s must be > 1")
	case c.Sessions <= 0:
		return errors.New("produce.sessions must be > 0")
	case !(c.MeanViews >= 1):
		return errors.New("produce.mean_views must be >= 1")
	}
	for _, f := range fractions {
		if !(f.v >= 0 && f.v <= 1) {
			return errors.New(f.key + " must be in [0, 1]")
		}
	}
	return nil
}
