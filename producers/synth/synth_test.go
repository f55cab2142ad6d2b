package synth_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sentenceEnd ends an English or Chinese sentence.
var sentenceEnd = regexp.MustCompile(`[.。](\s|$)|。`)

var start = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// events draws n events from a fresh Traffic, 500 µs apart, and checks that
// each one is valid at the time it was drawn.
func events(t *testing.T, cfg synth.Config, n int) []schemas.ClickEvent {
	t.Helper()
	tr := synth.NewTraffic(synth.NewCatalog(cfg, start), cfg)
	lim := schemas.DefaultLimits()
	evs := make([]schemas.ClickEvent, n)
	for i := range evs {
		now := start.Add(time.Duration(i) * 500 * time.Microsecond)
		evs[i], _ = tr.Next(now)
		if err := evs[i].Validate(now, lim); err != nil {
			t.Fatalf("event %d %+v: %v", i, evs[i], err)
		}
	}
	return evs
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*synth.Config)
		want   string // "" for valid
	}{
		{"default", func(*synth.Config) {}, ""},
		{"events only", func(c *synth.Config) { c.Duration, c.Events = 0, 10 }, ""},
		{"no items", func(c *synth.Config) { c.Items = 0 }, "produce.items must be > 0"},
		{"no users", func(c *synth.Config) { c.Users = 0 }, "produce.users must be > 0"},
		{"bad currency", func(c *synth.Config) { c.Currency = "usd" }, "produce.currency must be three upper-case letters (ISO 4217)"},
		{"zero rate", func(c *synth.Config) { c.Rate = 0 }, "produce.rate must be > 0"},
		{"negative duration", func(c *synth.Config) { c.Duration = -time.Second }, "produce.duration must be >= 0"},
		{"negative events", func(c *synth.Config) { c.Events = -1 }, "produce.events must be >= 0"},
		{"endless", func(c *synth.Config) { c.Duration, c.Events = 0, 0 }, "produce.duration or produce.events must be > 0"},
		{"no drain", func(c *synth.Config) { c.DrainTimeout = 0 }, "produce.drain_timeout must be > 0"},
		{"flat zipf", func(c *synth.Config) { c.ZipfS = 1 }, "produce.zipf_s must be > 1"},
		{"no sessions", func(c *synth.Config) { c.Sessions = 0 }, "produce.sessions must be > 0"},
		{"no views", func(c *synth.Config) { c.MeanViews = 0.5 }, "produce.mean_views must be >= 1"},
		{"funnel over 1", func(c *synth.Config) { c.Funnel.ClickToCart = 1.5 }, "produce.funnel.click_to_cart must be in [0, 1]"},
		{"negative duplicates", func(c *synth.Config) { c.DuplicateFraction = -0.1 }, "produce.duplicate_fraction must be in [0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := synth.DefaultConfig()
			tc.change(&cfg)
			got := ""
			if err := cfg.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCatalogDeterministic(t *testing.T) {
	cfg := synth.DefaultConfig()
	a, b := synth.NewCatalog(cfg, start), synth.NewCatalog(cfg, start)
	if !reflect.DeepEqual(a.Items, b.Items) {
		t.Fatal("two catalogs from one seed differ")
	}
	cfg.Seed++
	if c := synth.NewCatalog(cfg, start); reflect.DeepEqual(a.Items, c.Items) {
		t.Fatal("catalogs from different seeds are equal")
	}
}

func TestCatalogItems(t *testing.T) {
	cfg := synth.DefaultConfig()
	cfg.Items = 5000
	items := synth.NewCatalog(cfg, start).Items
	lim := schemas.DefaultLimits()
	id := regexp.MustCompile(`^item-\d{6}$`)
	var chinese, inStock int
	titles := map[string]bool{}
	for i, it := range items {
		if err := it.Validate(start, lim); err != nil {
			t.Fatalf("item %d %+v: %v", i, it, err)
		}
		if !id.MatchString(it.ItemID) || it.ItemID != synth.ItemID(i) {
			t.Errorf("item %d has id %q", i, it.ItemID)
		}
		if len(it.CategoryPath) != 3 || it.Brand == "" || it.Currency != "USD" || !(it.Price > 0) || len(it.Attributes) == 0 {
			t.Errorf("item %d is incomplete: %+v", i, it)
		}
		if n := len(sentenceEnd.FindAllString(it.Description, -1)); n < 1 || n > 3 {
			t.Errorf("item %d has %d sentences: %q", i, n, it.Description)
		}
		if strings.ContainsFunc(it.Title, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			chinese++
		}
		if it.InStock {
			inStock++
		}
		titles[it.Title] = true
	}
	if f := float64(chinese) / float64(len(items)); f < 0.07 || f > 0.13 {
		t.Errorf("%.3f of the items are Chinese, want about %.2f", f, cfg.ChineseFraction)
	}
	if f := float64(inStock) / float64(len(items)); f < 0.85 || f > 0.97 {
		t.Errorf("%.3f of the items are in stock, want most", f)
	}
	if len(titles) < len(items)/2 {
		t.Errorf("only %d distinct titles in %d items", len(titles), len(items))
	}
}

func TestEvents(t *testing.T) {
	cfg := synth.DefaultConfig()
	evs := events(t, cfg, 20000)
	ids := map[string]bool{}
	last := map[string]time.Time{}
	for _, ev := range evs {
		if ids[ev.EventID] {
			t.Fatalf("event_id %s repeats with duplicate_fraction 0", ev.EventID)
		}
		ids[ev.EventID] = true
		if !ev.Timestamp.After(last[ev.SessionID]) {
			t.Fatalf("session %s goes back in time at %v", ev.SessionID, ev.Timestamp)
		}
		last[ev.SessionID] = ev.Timestamp
		if commerce := ev.Type == schemas.EventAddToCart || ev.Type == schemas.EventPurchase; commerce != (ev.Quantity > 0) {
			t.Fatalf("%s event has quantity %d", ev.Type, ev.Quantity)
		}
		if ev.Context.Device == "" || ev.Context.Locale == "" || ev.Context.Page == "" {
			t.Fatalf("event without context: %+v", ev)
		}
	}
	if len(last) < 500 {
		t.Errorf("%d sessions in %d events, want many", len(last), len(evs))
	}
}

func TestZipfSkew(t *testing.T) {
	cfg := synth.DefaultConfig()
	views := map[string]int{}
	total := 0
	for _, ev := range events(t, cfg, 50000) {
		if ev.Type == schemas.EventView {
			views[ev.ItemID]++
			total++
		}
	}
	counts := slices.Sorted(func(yield func(int) bool) {
		for _, n := range views {
			if !yield(n) {
				return
			}
		}
	})
	slices.Reverse(counts)
	top := 0
	for _, n := range counts[:cfg.Items/100] {
		top += n
	}
	share := float64(top) / float64(total)
	t.Logf("top 1%% of items: %.3f of %d views; %d items viewed", share, total, len(views))
	if share < 0.25 {
		t.Errorf("the top 1%% of items get %.3f of %d views, want a large share", share, total)
	}
	if len(views) < cfg.Items/2 {
		t.Errorf("only %d of %d items viewed: the tail is missing", len(views), cfg.Items)
	}
}

func TestFunnel(t *testing.T) {
	cfg := synth.DefaultConfig()
	n := map[schemas.EventType]int{}
	// reached[session/item] is the furthest funnel step of an item in a
	// session; each step needs the one before it.
	reached := map[string]int{}
	step := map[schemas.EventType]int{schemas.EventView: 1, schemas.EventClick: 2, schemas.EventAddToCart: 3, schemas.EventPurchase: 4}
	for _, ev := range events(t, cfg, 50000) {
		n[ev.Type]++
		if ev.Type == schemas.EventSearch {
			if strings.TrimSpace(ev.Query) == "" {
				t.Fatalf("search without a query: %+v", ev)
			}
			continue
		}
		k := ev.SessionID + "/" + ev.ItemID
		if reached[k] < step[ev.Type]-1 {
			t.Fatalf("%s of %s reached only step %d", ev.Type, k, reached[k])
		}
		reached[k] = max(reached[k], step[ev.Type])
	}
	views, clicks, carts, purchases := n[schemas.EventView], n[schemas.EventClick], n[schemas.EventAddToCart], n[schemas.EventPurchase]
	t.Logf("events by type: %v", n)
	if !(views >= clicks && clicks >= carts && carts >= purchases && purchases > 0 && n[schemas.EventSearch] > 0) {
		t.Fatalf("funnel %v is not monotone", n)
	}
	for _, r := range []struct {
		step string
		got  float64
		want float64
	}{
		{"view_to_click", float64(clicks) / float64(views), cfg.Funnel.ViewToClick},
		{"click_to_cart", float64(carts) / float64(clicks), cfg.Funnel.ClickToCart * 0.92}, // only items in stock
		{"cart_to_purchase", float64(purchases) / float64(carts), cfg.Funnel.CartToPurchase},
	} {
		if r.got < r.want*0.8 || r.got > r.want*1.2 {
			t.Errorf("%s rate %.3f, want about %.3f", r.step, r.got, r.want)
		}
	}
}

func TestDuplicates(t *testing.T) {
	cfg := synth.DefaultConfig()
	cfg.DuplicateFraction = 0.1
	tr := synth.NewTraffic(synth.NewCatalog(cfg, start), cfg)
	var prev schemas.ClickEvent
	dups := 0
	for i := range 10000 {
		ev, dup := tr.Next(start.Add(time.Duration(i) * time.Millisecond))
		if dup {
			dups++
			if !reflect.DeepEqual(ev, prev) {
				t.Fatalf("duplicate %+v differs from the event before it %+v", ev, prev)
			}
		} else if ev.EventID == prev.EventID {
			t.Fatalf("event %s repeated without being reported a duplicate", ev.EventID)
		}
		prev = ev
	}
	if dups < 700 || dups > 1300 {
		t.Errorf("%d duplicates in 10000 events, want about 1000", dups)
	}
}
