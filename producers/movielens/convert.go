package movielens

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/streamrec/streamrec/schemas"
)

// Currency is the currency of the catalog prices.
const Currency = "USD"

// OtherCategory is the category of a movie without genres.
const OtherCategory = "Other"

// ItemID returns the catalog item id of the movie with MovieLens id id.
func ItemID(id int) string { return "movie-" + strconv.Itoa(id) }

// UserID returns the clickstream user id of MovieLens user id.
func UserID(id int) string { return "ml-user-" + strconv.Itoa(id) }

// trailingArticle matches a title whose article MovieLens moved to the end
// ("Good, the Bad and the Ugly, The"), keeping an alternative title in
// parentheses after it ("Golden Age, The (Âge d'Or, L')").
var trailingArticle = regexp.MustCompile(`^(.+), (The|A|An|La|Le|Les|L'|Il|El|Los|Las|Das|Der|Die)( \(.*\))?$`)

// Name returns the title as it reads: the article back in front ("The
// Golden Age"), "Movie <id>" when the title is unknown.
func (m Movie) Name() string {
	if strings.TrimSpace(m.Title) == "" {
		return "Movie " + strconv.Itoa(m.ID)
	}
	sm := trailingArticle.FindStringSubmatch(m.Title)
	if sm == nil {
		return m.Title
	}
	sep := " "
	if strings.HasSuffix(sm[2], "'") {
		sep = ""
	}
	return sm[2] + sep + sm[1] + sm[3]
}

// genreWords are the words a description uses for MovieLens genres that do
// not read well lower-cased.
var genreWords = map[string]string{
	"Animation": "animated",
	"Children":  "children's",
	"Film-Noir": "noir",
	"Sci-Fi":    "science fiction",
}

// Description returns one sentence from the genres and the year: "A comedy
// and romance film from 1995." IMAX, a format rather than a genre, gets a
// sentence of its own.
func (m Movie) Description() string {
	var words []string
	imax := false
	for _, g := range m.Genres {
		switch w, ok := genreWords[g]; {
		case g == "IMAX":
			imax = true
		case ok:
			words = append(words, w)
		default:
			words = append(words, strings.ToLower(g))
		}
	}
	var b strings.Builder
	switch n := len(words); n {
	case 0:
		b.WriteString("film")
	case 1:
		b.WriteString(words[0] + " film")
	default:
		b.WriteString(strings.Join(words[:n-1], ", ") + " and " + words[n-1] + " film")
	}
	if m.Year > 0 {
		fmt.Fprintf(&b, " from %d", m.Year)
	}
	article := "A "
	if strings.ContainsRune("aeiou", rune(b.String()[0])) {
		article = "An "
	}
	s := article + b.String() + "."
	if imax {
		s += " Also shown in IMAX."
	}
	return s
}

// Price returns the movie's price to buy, by age like a download store: 14.99
// from 2014, 12.99 from 2010, 9.99 from 2000, 7.99 from 1990, 5.99 from 1970,
// 4.99 before (and when the year is unknown), plus 0, 1 or 2 dollars by the
// movie id (id mod 3) so that one year does not have one price.
func (m Movie) Price() float64 {
	var base float64
	switch y := m.Year; {
	case y >= 2014:
		base = 14.99
	case y >= 2010:
		base = 12.99
	case y >= 2000:
		base = 9.99
	case y >= 1990:
		base = 7.99
	case y >= 1970:
		base = 5.99
	default:
		base = 4.99
	}
	return math.Round((base+float64(m.ID%3))*100) / 100
}

// Category returns the movie's category: its first genre, or OtherCategory.
func (m Movie) Category() string {
	if len(m.Genres) == 0 {
		return OtherCategory
	}
	return m.Genres[0]
}

// CatalogChange returns the movie as a catalog upsert: item_id
// "movie-<id>", the title with the year ("The Golden Age (1930)"), a
// description from the genres and year, the first genre as category, Price
// in USD, in stock, and attributes year and genres (comma separated) when
// known.
func (m Movie) CatalogChange(updatedAt time.Time) schemas.CatalogChange {
	title := m.Name()
	attrs := make(map[string]string, 2)
	if m.Year > 0 {
		title = fmt.Sprintf("%s (%d)", title, m.Year)
		attrs["year"] = strconv.Itoa(m.Year)
	}
	if len(m.Genres) > 0 {
		attrs["genres"] = strings.Join(m.Genres, ", ")
	}
	return schemas.CatalogChange{
		Op:           schemas.OpUpsert,
		ItemID:       ItemID(m.ID),
		Title:        title,
		Description:  m.Description(),
		CategoryPath: []string{m.Category()},
		Price:        m.Price(),
		Currency:     Currency,
		InStock:      true,
		Attributes:   attrs,
		UpdatedAt:    updatedAt,
	}
}

// Clock maps the time of a rating to the timestamp of its events. A nil
// Clock keeps the rating's time.
type Clock func(time.Time) time.Time

// Window is a replay window inside the default limits.max_age (30 days),
// with two days to spare for a slow replay. See SqueezeInto.
const Window = 28 * 24 * time.Hour

// ShiftTo returns a Clock that moves every rating by one offset so that ds's
// newest rating lands at now, keeping the gaps between ratings. The dataset
// spans 21 years, so only its last limits.max_age (327 ratings for 30 days)
// then pass validation; SqueezeInto keeps them all.
func (ds *Dataset) ShiftTo(now time.Time) Clock {
	_, newest := ds.Span()
	off := now.Sub(newest)
	return func(t time.Time) time.Time { return t.Add(off) }
}

// SqueezeInto returns a Clock that maps ds's span linearly onto
// [now-window, now] at millisecond precision: the oldest rating lands at
// now-window, the newest at now, and the order of ratings is kept (ratings
// seconds apart may share a millisecond).
func (ds *Dataset) SqueezeInto(now time.Time, window time.Duration) Clock {
	oldest, newest := ds.Span()
	span := newest.Sub(oldest)
	start := now.Add(-window)
	return func(t time.Time) time.Time {
		if span <= 0 {
			return now.Truncate(time.Millisecond)
		}
		frac := float64(t.Sub(oldest)) / float64(span)
		return start.Add(time.Duration(frac * float64(window))).Truncate(time.Millisecond)
	}
}

// Funnel thresholds: a rating of at least ClickAt adds a click to its view,
// and one of at least CartAt an add_to_cart as well.
const (
	ClickAt = 3.5
	CartAt  = 4.5
)

// ClickEvents returns the events of rating r of movie m (m.ID is r.MovieID;
// it gives the add_to_cart its price): a view, a click when r.Rating >=
// ClickAt and an add_to_cart when r.Rating >= CartAt, a millisecond apart in
// that order from clock(r.At). Ids are deterministic (see the package
// documentation); the session is the user's UTC day of the rating.
func (r Rating) ClickEvents(m Movie, clock Clock) []schemas.ClickEvent {
	at := r.At
	if clock != nil {
		at = clock(at)
	}
	user := UserID(r.UserID)
	session := user + "-" + r.At.UTC().Format("20060102")
	item := ItemID(r.MovieID)
	prefix := "ml-" + strconv.Itoa(r.UserID) + "-" + strconv.Itoa(r.MovieID) + "-"
	ev := func(typ schemas.EventType, step int) schemas.ClickEvent {
		return schemas.ClickEvent{
			EventID:   prefix + string(typ),
			Type:      typ,
			UserID:    user,
			SessionID: session,
			ItemID:    item,
			Timestamp: at.Add(time.Duration(step) * time.Millisecond),
		}
	}
	out := make([]schemas.ClickEvent, 1, 3)
	out[0] = ev(schemas.EventView, 0)
	if r.Rating >= ClickAt {
		out = append(out, ev(schemas.EventClick, 1))
	}
	if r.Rating >= CartAt {
		cart := ev(schemas.EventAddToCart, 2)
		cart.Price, cart.Quantity = m.Price(), 1
		out = append(out, cart)
	}
	return out
}

// ClickEvents returns the events of every rating, in the ratings' order
// (see Rating.ClickEvents). A rating of a movie ds lacks is an error.
func (ds *Dataset) ClickEvents(clock Clock) ([]schemas.ClickEvent, error) {
	out := make([]schemas.ClickEvent, 0, len(ds.Ratings)*2)
	for _, r := range ds.Ratings {
		m, ok := ds.Movie(r.MovieID)
		if !ok {
			return nil, fmt.Errorf("movielens: user %d rated movie %d, which the dataset lacks", r.UserID, r.MovieID)
		}
		out = append(out, r.ClickEvents(m, clock)...)
	}
	return out, nil
}
