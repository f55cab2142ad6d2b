// Package movielens turns the MovieLens latest-small ratings (100,004
// ratings by 671 users of 9,066 movies, from Debian's r-cran-dslabs; see
// scripts/movielens.sh) into streamrec traffic: each movie becomes a catalog
// item and each rating becomes one to three clickstream events.
//
// Mapping of a rating (0.5 to 5 stars in half steps) to events, which climb
// the shop's funnel as the rating rises:
//
//	every rating      view         the user watched the movie
//	rating >= 3.5     + click      liked it (62% of the ratings)
//	rating >= 4.5     + add_to_cart loved it (23% of the ratings)
//
// Every rating yields a view because a rating of any value records that the
// user engaged with the movie, and the order of those engagements is what
// sequential recommenders learn from; the stronger events carry the
// preference, since the profile updater weights events by type. A low rating
// stays a view only: the contracts have no negative event. No rating yields a
// purchase: nobody paid, and purchases feed revenue analytics and the
// profile's purchased list. An add_to_cart carries the movie's catalog price
// and quantity 1.
//
// Ids are deterministic, so replaying the dataset is idempotent downstream:
// items are "movie-<movieId>", users "ml-user-<userId>", events
// "ml-<userId>-<movieId>-<type>" (MovieLens has one rating per user and
// movie), and sessions "ml-user-<userId>-<yyyymmdd>" (the UTC day of the
// rating).
//
// Event timestamps come from a Clock: the ratings' own times (1995 to 2016)
// are far older than limits.max_age (30 days), so a replay maps them with
// Dataset.SqueezeInto (the whole span into a recent window, order kept) or
// Dataset.ShiftTo (newest rating at now, gaps kept). Seed sends the catalog
// through a producers.Producer.
package movielens

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dataset is MovieLens as loaded by Load.
type Dataset struct {
	// Movies are the rated movies, sorted by ID.
	Movies []Movie
	// Ratings are sorted by time, then user, then movie.
	Ratings []Rating
}

// Movie is one MovieLens movie.
type Movie struct {
	ID int
	// Title is as MovieLens spells it, an article at the end ("Golden Age,
	// The"), without the year; empty when the dataset has none (NA).
	Title string
	// Year is the release year, 0 when unknown (NA).
	Year int
	// Genres are MovieLens' genres in its (alphabetical) order; none for
	// "(no genres listed)".
	Genres []string
}

// Rating is one user's rating of one movie.
type Rating struct {
	UserID, MovieID int
	// Rating is 0.5 to 5 stars in half steps.
	Rating float64
	// At is when the rating was made, in UTC (second precision).
	At time.Time
}

// Errors of Load and Parse.
var (
	// ErrFormat is wrapped by every error about the CSV's content.
	ErrFormat = errors.New("movielens: bad CSV")
)

// noGenres is MovieLens' genres value of a movie without genres.
const noGenres = "(no genres listed)"

// columns are the CSV columns Parse needs; others are ignored.
var columns = []string{"movieId", "title", "year", "genres", "userId", "rating", "timestamp"}

// Load reads the ratings CSV that scripts/movielens.sh writes (R's
// write.csv of dslabs::movielens).
func Load(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("movielens: %w", err)
	}
	defer f.Close()
	ds, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ds, nil
}

// Parse reads ratings in CSV with a header that names at least the columns
// movieId, title, year, genres, userId, rating and timestamp (Unix seconds),
// in any order. "NA" (R's missing value) in title or year means unknown. The
// rows of one movie must agree on its title, year and genres.
func Parse(r io.Reader) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrFormat, err)
	}
	col := make(map[string]int, len(columns))
	for i, name := range header {
		col[name] = i
	}
	for _, name := range columns {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("%w: header %q lacks column %q", ErrFormat, strings.Join(header, ","), name)
		}
	}
	cMovie, cTitle, cYear, cGenres := col["movieId"], col["title"], col["year"], col["genres"]
	cUser, cRating, cTime := col["userId"], col["rating"], col["timestamp"]

	ds := &Dataset{}
	movies := make(map[int]int) // movie id -> index in ds.Movies
	genres := make(map[string]string)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		bad := func(field, why string) error {
			return fmt.Errorf("%w: line %d: %s %q: %s", ErrFormat, line, field, clip(rec[col[field]]), why)
		}
		var rt Rating
		if rt.MovieID, err = strconv.Atoi(rec[cMovie]); err != nil || rt.MovieID <= 0 {
			return nil, bad("movieId", "not a positive integer")
		}
		if rt.UserID, err = strconv.Atoi(rec[cUser]); err != nil || rt.UserID <= 0 {
			return nil, bad("userId", "not a positive integer")
		}
		if rt.Rating, err = strconv.ParseFloat(rec[cRating], 64); err != nil || !(rt.Rating >= 0.5 && rt.Rating <= 5) {
			return nil, bad("rating", "not a number from 0.5 to 5")
		}
		sec, err := strconv.ParseInt(rec[cTime], 10, 64)
		if err != nil || sec < 0 || sec > 1<<34 {
			return nil, bad("timestamp", "not Unix seconds")
		}
		rt.At = time.Unix(sec, 0).UTC()
		ds.Ratings = append(ds.Ratings, rt)

		m := Movie{ID: rt.MovieID, Title: rec[cTitle]}
		if m.Title == "NA" {
			m.Title = ""
		}
		if y := rec[cYear]; y != "NA" {
			if m.Year, err = strconv.Atoi(y); err != nil || m.Year < 1800 || m.Year > 9999 {
				return nil, bad("year", "not a year or NA")
			}
		}
		if m.Genres, err = parseGenres(rec[cGenres], genres); err != nil {
			return nil, bad("genres", err.Error())
		}
		if i, ok := movies[m.ID]; ok {
			if old := ds.Movies[i]; old.Title != m.Title || old.Year != m.Year || !slices.Equal(old.Genres, m.Genres) {
				return nil, fmt.Errorf("%w: line %d: movie %d differs from its earlier rows", ErrFormat, line, m.ID)
			}
			continue
		}
		movies[m.ID] = len(ds.Movies)
		ds.Movies = append(ds.Movies, m)
	}
	slices.SortFunc(ds.Movies, func(a, b Movie) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(ds.Ratings, func(a, b Rating) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.MovieID, b.MovieID))
	})
	return ds, nil
}

// Movie returns the movie with id, and false if ds has none. ds.Movies must
// be sorted by ID, as Load leaves them.
func (ds *Dataset) Movie(id int) (Movie, bool) {
	i, ok := slices.BinarySearchFunc(ds.Movies, id, func(m Movie, id int) int { return cmp.Compare(m.ID, id) })
	if !ok {
		return Movie{}, false
	}
	return ds.Movies[i], true
}

// Span returns the times of the oldest and the newest rating (zero times
// when there is none).
func (ds *Dataset) Span() (oldest, newest time.Time) {
	if len(ds.Ratings) == 0 {
		return time.Time{}, time.Time{}
	}
	return ds.Ratings[0].At, ds.Ratings[len(ds.Ratings)-1].At
}

// parseGenres splits MovieLens' genres ("Comedy|Romance"); "(no genres
// listed)", "" and NA are none. seen interns the names.
func parseGenres(g string, seen map[string]string) ([]string, error) {
	if g == noGenres || g == "" || g == "NA" {
		return nil, nil
	}
	var out []string
	for name := range strings.SplitSeq(g, "|") {
		if name == "" {
			return nil, errors.New("has an empty genre")
		}
		if s, ok := seen[name]; ok {
			name = s
		} else {
			seen[name] = name
		}
		out = append(out, name)
	}
	return out, nil
}

// clip shortens a field for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
