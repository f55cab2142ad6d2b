package movielens_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/producers/movielens"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fixture = "testdata/ratings.csv"

func load(t *testing.T) *movielens.Dataset {
	t.Helper()
	ds, err := movielens.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func movie(t *testing.T, ds *movielens.Dataset, id int) movielens.Movie {
	t.Helper()
	m, ok := ds.Movie(id)
	if !ok {
		t.Fatalf("movie %d missing", id)
	}
	return m
}

func at(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func TestLoadFixture(t *testing.T) {
	ds := load(t)
	ids := make([]int, len(ds.Movies))
	for i, m := range ds.Movies {
		ids[i] = m.ID
	}
	if want := []int{1, 31, 7789, 25774, 51372, 79132, 108583, 128620}; !slices.Equal(ids, want) {
		t.Fatalf("movie ids %v, want %v", ids, want)
	}
	// Sorted by time, then user, then movie (user 1 rated 31 and 7789 in
	// the same second).
	wantRatings := []movielens.Rating{
		{UserID: 3, MovieID: 1, Rating: 1, At: at(1000000000)},
		{UserID: 3, MovieID: 128620, Rating: 3, At: at(1000000050)},
		{UserID: 1, MovieID: 31, Rating: 2.5, At: at(1000000100)},
		{UserID: 1, MovieID: 7789, Rating: 4.5, At: at(1000000100)},
		{UserID: 2, MovieID: 51372, Rating: 0.5, At: at(1000000200)},
		{UserID: 1, MovieID: 1, Rating: 5, At: at(1000000300)},
		{UserID: 2, MovieID: 25774, Rating: 4, At: at(1000000400)},
		{UserID: 3, MovieID: 108583, Rating: 4.5, At: at(1000000500)},
		{UserID: 2, MovieID: 79132, Rating: 3.5, At: at(1000000600)},
	}
	if !slices.Equal(ds.Ratings, wantRatings) {
		t.Fatalf("ratings\n%v\nwant\n%v", ds.Ratings, wantRatings)
	}
	oldest, newest := ds.Span()
	if !oldest.Equal(at(1000000000)) || !newest.Equal(at(1000000600)) {
		t.Fatalf("span %s..%s", oldest, newest)
	}

	for _, tc := range []struct {
		name string
		want movielens.Movie
	}{
		{"genres", movielens.Movie{ID: 1, Title: "Toy Story", Year: 1995, Genres: []string{"Adventure", "Animation", "Children", "Comedy", "Fantasy"}}},
		{"quotes", movielens.Movie{ID: 51372, Title: `"Great Performances" Cats`, Year: 1998, Genres: []string{"Musical"}}},
		{"quote and apostrophe", movielens.Movie{ID: 7789, Title: `11'09"01 - September 11`, Year: 2002, Genres: []string{"Drama"}}},
		{"comma and non-ASCII", movielens.Movie{ID: 25774, Title: "Golden Age, The (Âge d'Or, L')", Year: 1930, Genres: []string{"Comedy", "Drama", "Romance"}}},
		{"no genres", movielens.Movie{ID: 128620, Title: "Victoria", Year: 2015}},
		{"NA title and year", movielens.Movie{ID: 108583, Genres: []string{"Comedy"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := movie(t, ds, tc.want.ID)
			if got.ID != tc.want.ID || got.Title != tc.want.Title || got.Year != tc.want.Year || !slices.Equal(got.Genres, tc.want.Genres) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, ok := ds.Movie(2); ok {
		t.Fatal("movie 2 found")
	}
}

func TestParseErrors(t *testing.T) {
	const header = "movieId,title,year,genres,userId,rating,timestamp\n"
	for _, tc := range []struct{ name, csv, want string }{
		{"empty", "", "header"},
		{"missing column", "movieId,title,year,genres,userId,rating\n", `lacks column "timestamp"`},
		{"bad movie id", header + "x,T,1995,Drama,1,4,1000\n", "movieId"},
		{"bad user id", header + "1,T,1995,Drama,0,4,1000\n", "userId"},
		{"rating too high", header + "1,T,1995,Drama,1,5.5,1000\n", "rating"},
		{"rating NaN", header + "1,T,1995,Drama,1,NaN,1000\n", "rating"},
		{"bad timestamp", header + "1,T,1995,Drama,1,4,1.2e9\n", "timestamp"},
		{"bad year", header + "1,T,95,Drama,1,4,1000\n", "year"},
		{"empty genre", header + "1,T,1995,Drama||War,1,4,1000\n", "genres"},
		{"movie rows disagree", header + "1,T,1995,Drama,1,4,1000\n1,T,1996,Drama,2,4,1000\n", "line 3: movie 1 differs"},
		{"bad quoting", header + "1,\"T,1995,Drama,1,4,1000\n", "line"},
		{"short row", header + "1,T,1995\n", "wrong number of fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := movielens.Parse(strings.NewReader(tc.csv))
			if !errors.Is(err, movielens.ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrFormat mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := movielens.Load(filepath.Join(t.TempDir(), "none.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func TestParseColumnOrder(t *testing.T) {
	ds, err := movielens.Parse(strings.NewReader("timestamp,rating,userId,genres,year,title,movieId,extra\n1000,4,7,Drama|War,1957,\"Paths of Glory\",1178,x\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := movielens.Movie{ID: 1178, Title: "Paths of Glory", Year: 1957, Genres: []string{"Drama", "War"}}
	if m := ds.Movies[0]; len(ds.Movies) != 1 || m.ID != want.ID || m.Title != want.Title || m.Year != want.Year || !slices.Equal(m.Genres, want.Genres) {
		t.Fatalf("movies %+v", ds.Movies)
	}
	if r := ds.Ratings[0]; len(ds.Ratings) != 1 || r != (movielens.Rating{UserID: 7, MovieID: 1178, Rating: 4, At: at(1000)}) {
		t.Fatalf("ratings %+v", ds.Ratings)
	}
}
