package movielens_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/streamrec/streamrec/producers/movielens"
	"github.com/streamrec/streamrec/schemas"
)

var updated = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestCatalogChange(t *testing.T) {
	ds := load(t)
	for _, tc := range []struct {
		name  string
		id    int
		title string
		desc  string
		cat   string
		price float64
		attrs map[string]string
	}{
		{"many genres", 1, "Toy Story (1995)",
			"An adventure, animated, children's, comedy and fantasy film from 1995.", "Adventure", 8.99,
			map[string]string{"year": "1995", "genres": "Adventure, Animation, Children, Comedy, Fantasy"}},
		{"one genre", 31, "Dangerous Minds (1995)", "A drama film from 1995.", "Drama", 8.99,
			map[string]string{"year": "1995", "genres": "Drama"}},
		{"quotes", 51372, `"Great Performances" Cats (1998)`, "A musical film from 1998.", "Musical", 7.99,
			map[string]string{"year": "1998", "genres": "Musical"}},
		{"article moved back", 25774, "The Golden Age (Âge d'Or, L') (1930)",
			"A comedy, drama and romance film from 1930.", "Comedy", 5.99,
			map[string]string{"year": "1930", "genres": "Comedy, Drama, Romance"}},
		{"IMAX", 79132, "Inception (2010)",
			"An action, crime, drama, mystery, science fiction and thriller film from 2010. Also shown in IMAX.", "Action", 13.99,
			map[string]string{"year": "2010", "genres": "Action, Crime, Drama, Mystery, Sci-Fi, Thriller, IMAX"}},
		{"no genres", 128620, "Victoria (2015)", "A film from 2015.", "Other", 15.99,
			map[string]string{"year": "2015"}},
		{"NA title and year", 108583, "Movie 108583", "A comedy film.", "Comedy", 5.99,
			map[string]string{"genres": "Comedy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := movie(t, ds, tc.id).CatalogChange(updated)
			if err := ch.Validate(updated, schemas.DefaultLimits()); err != nil {
				t.Fatal(err)
			}
			if ch.Op != schemas.OpUpsert || ch.ItemID != movielens.ItemID(tc.id) || ch.Brand != "" ||
				ch.Currency != "USD" || !ch.InStock || !ch.UpdatedAt.Equal(updated) {
				t.Errorf("change %+v", ch)
			}
			if ch.Title != tc.title {
				t.Errorf("title %q, want %q", ch.Title, tc.title)
			}
			if ch.Description != tc.desc {
				t.Errorf("description %q, want %q", ch.Description, tc.desc)
			}
			if !slices.Equal(ch.CategoryPath, []string{tc.cat}) {
				t.Errorf("category_path %q, want [%q]", ch.CategoryPath, tc.cat)
			}
			if ch.Price != tc.price {
				t.Errorf("price %v, want %v", ch.Price, tc.price)
			}
			if !maps.Equal(ch.Attributes, tc.attrs) {
				t.Errorf("attributes %v, want %v", ch.Attributes, tc.attrs)
			}
		})
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct{ title, want string }{
		{"Toy Story", "Toy Story"},
		{"Good, the Bad and the Ugly, The", "The Good, the Bad and the Ugly"},
		{"Boot, Das (Boat, The)", "Das Boot (Boat, The)"},
		{"Atalante, L'", "L'Atalante"},
		{"Man for All Seasons, A", "A Man for All Seasons"},
		{"Crouching Tiger, Hidden Dragon (Wo hu cang long)", "Crouching Tiger, Hidden Dragon (Wo hu cang long)"},
		{"Sex, Lies, and Videotape", "Sex, Lies, and Videotape"},
		{"", "Movie 7"},
	} {
		if got := (movielens.Movie{ID: 7, Title: tc.title}).Name(); got != tc.want {
			t.Errorf("Name of %q = %q, want %q", tc.title, got, tc.want)
		}
	}
}

// types returns the types of evs.
func types(evs []schemas.ClickEvent) []schemas.EventType {
	out := make([]schemas.EventType, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func TestClickEventsMapping(t *testing.T) {
	const (
		view  = schemas.EventView
		click = schemas.EventClick
		cart  = schemas.EventAddToCart
	)
	m := movielens.Movie{ID: 1, Title: "Toy Story", Year: 1995}
	rated := time.Date(2001, 9, 8, 23, 59, 59, 0, time.UTC)
	for _, tc := range []struct {
		rating float64
		want   []schemas.EventType
	}{
		{0.5, []schemas.EventType{view}},
		{2.5, []schemas.EventType{view}},
		{3, []schemas.EventType{view}},
		{3.5, []schemas.EventType{view, click}},
		{4, []schemas.EventType{view, click}},
		{4.5, []schemas.EventType{view, click, cart}},
		{5, []schemas.EventType{view, click, cart}},
	} {
		r := movielens.Rating{UserID: 42, MovieID: 1, Rating: tc.rating, At: rated}
		evs := r.ClickEvents(m, nil)
		if !slices.Equal(types(evs), tc.want) {
			t.Errorf("rating %v: events %v, want %v", tc.rating, types(evs), tc.want)
			continue
		}
		for i, ev := range evs {
			if err := ev.Validate(rated, schemas.DefaultLimits()); err != nil {
				t.Errorf("rating %v: %v", tc.rating, err)
			}
			want := schemas.ClickEvent{
				EventID:   "ml-42-1-" + string(ev.Type),
				Type:      ev.Type,
				UserID:    "ml-user-42",
				SessionID: "ml-user-42-20010908",
				ItemID:    "movie-1",
				Timestamp: rated.Add(time.Duration(i) * time.Millisecond),
			}
			if ev.Type == cart {
				want.Price, want.Quantity = 8.99, 1
			}
			if ev != want {
				t.Errorf("rating %v: event\n%+v\nwant\n%+v", tc.rating, ev, want)
			}
		}
	}
}

func TestClocks(t *testing.T) {
	ds := load(t)
	oldest, newest := ds.Span()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	lim := schemas.DefaultLimits()

	shift := ds.ShiftTo(now)
	if got := shift(newest); !got.Equal(now) {
		t.Fatalf("ShiftTo: newest at %s, want %s", got, now)
	}
	if got := shift(oldest); !got.Equal(now.Add(-newest.Sub(oldest))) {
		t.Fatalf("ShiftTo: oldest at %s", got)
	}

	squeeze := ds.SqueezeInto(now, movielens.Window)
	if got := squeeze(oldest); !got.Equal(now.Add(-movielens.Window)) {
		t.Fatalf("SqueezeInto: oldest at %s", got)
	}
	if got := squeeze(newest); !got.Equal(now) {
		t.Fatalf("SqueezeInto: newest at %s", got)
	}
	if got := (&movielens.Dataset{}).SqueezeInto(now, time.Hour)(oldest); !got.Equal(now) {
		t.Fatalf("SqueezeInto of an empty dataset: %s", got)
	}

	// The original times are 25 years old: the validator rejects them, and
	// accepts every squeezed event.
	orig, err := ds.ClickEvents(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := orig[0].Validate(now, lim); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("an event of 2001 validated at %s: %v", now, err)
	}
	evs, err := ds.ClickEvents(squeeze)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, evs, now, lim)
	if len(evs) != 17 { // 9 views, 5 clicks, 3 add_to_cart
		t.Fatalf("%d events, want 17", len(evs))
	}

	// A rating of a movie the dataset lacks is an error.
	ds.Ratings = append(ds.Ratings, movielens.Rating{UserID: 1, MovieID: 2, Rating: 4, At: newest})
	if _, err := ds.ClickEvents(nil); err == nil {
		t.Fatal("no error for a rating of an unknown movie")
	}
}

// checkEvents validates every event at now and checks that event ids are
// unique and timestamps never go back.
func checkEvents(t *testing.T, evs []schemas.ClickEvent, now time.Time, lim schemas.Limits) {
	t.Helper()
	ids := make(map[string]bool, len(evs))
	for i, ev := range evs {
		if err := ev.Validate(now, lim); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ids[ev.EventID] {
			t.Fatalf("event id %s twice", ev.EventID)
		}
		ids[ev.EventID] = true
		if i > 0 && ev.Timestamp.Before(evs[i-1].Timestamp.Add(-2*time.Millisecond)) {
			t.Fatalf("event %d at %s goes back from %s", i, ev.Timestamp, evs[i-1].Timestamp)
		}
	}
}
