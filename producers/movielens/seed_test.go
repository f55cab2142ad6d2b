package movielens_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/internal/kafkatest"
	"github.com/streamrec/streamrec/producers/movielens"
	"github.com/streamrec/streamrec/schemas"
)

func TestSeed(t *testing.T) {
	ds := load(t)
	c, cl := kafkatest.Cluster(t)
	p, err := producers.New(cl, producers.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var bar bytes.Buffer
	start := time.Now()
	n, err := movielens.Seed(t.Context(), p, ds, &bar)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); n != len(ds.Movies) || st.Delivered != int64(n) || st.InFlight() != 0 {
		t.Fatalf("sent %d, stats %+v, want %d delivered", n, st, len(ds.Movies))
	}
	for _, want := range []string{"movielens catalog", "8/8"} {
		if !strings.Contains(bar.String(), want) {
			t.Errorf("progress %q lacks %q", bar.String(), want)
		}
	}

	recs := kafkatest.Records(t, c, schemas.TopicCatalog)
	seen := make(map[string]bool)
	for _, r := range recs {
		var ch schemas.CatalogChange
		if err := json.Unmarshal(r.Value, &ch); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != ch.ItemID {
			t.Fatalf("record keyed %q holds %s", r.Key, r.Value)
		}
		if err := ch.Validate(time.Now(), schemas.DefaultLimits()); err != nil {
			t.Fatal(err)
		}
		if ch.UpdatedAt.Before(start.Add(-time.Second)) {
			t.Fatalf("updated_at %s before the seed started", ch.UpdatedAt)
		}
		seen[ch.ItemID] = true
	}
	for _, m := range ds.Movies {
		if !seen[movielens.ItemID(m.ID)] {
			t.Errorf("movie %d not in %s", m.ID, schemas.TopicCatalog)
		}
	}
	if len(recs) != len(ds.Movies) {
		t.Fatalf("%d records, want %d", len(recs), len(ds.Movies))
	}
}

func TestSeedStops(t *testing.T) {
	_, cl := kafkatest.Cluster(t)
	p, err := producers.New(cl, producers.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := movielens.Seed(ctx, p, load(t), nil); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled seed sent %d: %v", n, err)
	}

	// A movie whose title is over limits.max_text_len is rejected, and Seed
	// stops there.
	ds := load(t)
	ds.Movies[1].Title = strings.Repeat("x", 2000)
	n, err := movielens.Seed(t.Context(), p, ds, nil)
	if n != 1 || !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("seed with a bad movie sent %d: %v", n, err)
	}
}

// TestRealDataset checks the dataset scripts/movielens.sh exports, when it
// is there (always when STREAMREC_REQUIRE_DATASET=1): its counts, that every
// movie's catalog change validates and fits max_bytes, and that every event,
// squeezed into the last Window, validates with a unique id.
func TestRealDataset(t *testing.T) {
	cache := os.Getenv("STREAMREC_CACHE") // as in scripts/movielens.sh
	if cache == "" {
		cache = filepath.Join("..", "..", ".cache")
	}
	path := filepath.Join(cache, "datasets", "movielens", "ratings.csv")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("STREAMREC_REQUIRE_DATASET") == "1" {
			t.Fatalf("%v (run scripts/movielens.sh)", err)
		}
		t.Skipf("%s missing: run scripts/movielens.sh (STREAMREC_REQUIRE_DATASET=1 makes this a failure)", path)
	}
	ds, err := movielens.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	users := make(map[int]bool)
	for _, r := range ds.Ratings {
		users[r.UserID] = true
	}
	if len(ds.Ratings) != 100004 || len(users) != 671 || len(ds.Movies) != 9066 {
		t.Fatalf("%d ratings, %d users, %d movies; want 100,004, 671, 9,066", len(ds.Ratings), len(users), len(ds.Movies))
	}
	oldest, newest := ds.Span()
	t.Logf("ratings from %s to %s", oldest.Format(time.DateOnly), newest.Format(time.DateOnly))

	now := time.Now()
	lim := schemas.DefaultLimits()
	categories := make(map[string]int)
	for _, m := range ds.Movies {
		ch := m.CatalogChange(now)
		if err := ch.Validate(now, lim); err != nil {
			t.Fatalf("movie %d: %v", m.ID, err)
		}
		if b, _ := json.Marshal(ch); len(b) > lim.MaxBytes {
			t.Fatalf("movie %d: %d bytes", m.ID, len(b))
		}
		categories[ch.CategoryPath[0]]++
	}
	t.Logf("categories: %v", categories)

	evs, err := ds.ClickEvents(ds.SqueezeInto(now, movielens.Window))
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, evs, now, lim)
	byType := make(map[schemas.EventType]int)
	for _, ev := range evs {
		byType[ev.Type]++
	}
	t.Logf("%d events: %v", len(evs), byType)
	if byType[schemas.EventView] != 100004 {
		t.Fatalf("%d views, want one per rating", byType[schemas.EventView])
	}
}
