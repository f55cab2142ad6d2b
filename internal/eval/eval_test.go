package eval

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/streamrec/streamrec/producers/movielens"
)

// realData is the full MovieLens file scripts/movielens.sh writes.
var realData = filepath.Join("..", "..", ".cache", "datasets", "movielens", "ratings.csv")

var epoch = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)

// r is a rating of movie by user at epoch + at seconds.
func r(user, movie int, rating float64, at int) movielens.Rating {
	return movielens.Rating{UserID: user, MovieID: movie, Rating: rating, At: epoch.Add(time.Duration(at) * time.Second)}
}

// dataset sorts rs as Dataset.Ratings are: by time, user, movie.
func dataset(rs ...movielens.Rating) *movielens.Dataset {
	slices.SortFunc(rs, func(a, b movielens.Rating) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if a.UserID != b.UserID {
			return a.UserID - b.UserID
		}
		return a.MovieID - b.MovieID
	})
	return &movielens.Dataset{Ratings: rs}
}

func items(ids ...int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = movielens.ItemID(id)
	}
	return out
}

// fixed returns the lists in lists regardless of k.
func fixed(lists map[string][]string) Recommender {
	return func(user string, k int) []string { return lists[user] }
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestEvaluate(t *testing.T) {
	l3 := 1 / math.Log2(3) // discount of position 2
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%02d", prefix, i)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		test  map[string][]string
		lists map[string][]string
		want  Result
	}{
		{"one hit of two at the top",
			map[string][]string{"u": {"a", "c"}}, map[string][]string{"u": {"a", "b"}},
			// DCG 1, IDCG 1 + 1/log2(3); recall 1/2 at both cutoffs.
			Result{Users: 1, Recall10: 0.5, Recall20: 0.5, NDCG10: 1 / (1 + l3), NDCG20: 1 / (1 + l3), Coverage: 2.0 / 10}},
		{"one relevant at position 3",
			map[string][]string{"u": {"x"}}, map[string][]string{"u": {"a", "b", "x"}},
			Result{Users: 1, Recall10: 1, Recall20: 1, NDCG10: 0.5, NDCG20: 0.5, Coverage: 3.0 / 10}},
		{"hit at position 15 counts at 20 only",
			map[string][]string{"u": {"x"}}, map[string][]string{"u": append(ids("n", 14), "x")},
			Result{Users: 1, Recall10: 0, Recall20: 1, NDCG10: 0, NDCG20: 1 / math.Log2(16), Coverage: 15.0 / 10}},
		{"more relevant than k: recall is hits over all relevant, NDCG ideal over k",
			map[string][]string{"u": ids("r", 25)}, map[string][]string{"u": ids("r", 25)},
			Result{Users: 1, Recall10: 10.0 / 25, Recall20: 20.0 / 25, NDCG10: 1, NDCG20: 1, Coverage: 20.0 / 10}},
		{"repeats and items past 20 ignored",
			map[string][]string{"u": {"x", "y"}}, map[string][]string{"u": append(append([]string{"a", "a"}, ids("n", 19)...), "x", "y")},
			Result{Users: 1, Coverage: 20.0 / 10}},
		{"averaged over users, coverage of the union",
			map[string][]string{"u": {"a"}, "v": {"z"}}, map[string][]string{"u": {"a", "b"}, "v": {"a", "b"}},
			Result{Users: 2, Recall10: 0.5, Recall20: 0.5, NDCG10: 0.5, NDCG20: 0.5, Coverage: 2.0 / 10}},
		{"user without a list scores zero",
			map[string][]string{"u": {"a"}, "v": {"a"}}, map[string][]string{"u": {"b", "a"}},
			Result{Users: 2, Recall10: 0.5, Recall20: 0.5, NDCG10: l3 / 2, NDCG20: l3 / 2, Coverage: 2.0 / 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate("x", Split{Test: tc.test}, 10, fixed(tc.lists))
			w := tc.want
			if got.Name != "x" || got.Users != w.Users || !near(got.Recall10, w.Recall10) || !near(got.Recall20, w.Recall20) ||
				!near(got.NDCG10, w.NDCG10) || !near(got.NDCG20, w.NDCG20) || !near(got.Coverage, w.Coverage) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestNewSplit(t *testing.T) {
	var rs []movielens.Rating
	// User 1: ten ratings at odd seconds 1..19; the last two (movies 9, 10)
	// are held out, and only movie 9 is positive.
	for i := 1; i <= 10; i++ {
		rating := 4.0
		if i == 10 {
			rating = 3
		}
		rs = append(rs, r(1, i, rating, 2*i-1))
	}
	// User 2: three ratings, one held out would leave 2 < minTrain: skipped.
	rs = append(rs, r(2, 1, 5, 2), r(2, 2, 5, 4), r(2, 3, 5, 6))
	// User 3: five ratings, the held-out one negative: skipped.
	rs = append(rs, r(3, 1, 5, 8), r(3, 2, 5, 10), r(3, 3, 5, 12), r(3, 4, 5, 14), r(3, 5, 3, 100))
	// User 4: five ratings in shuffled movie order; the last in time (movie
	// 1, 3.5 exactly) is held out.
	rs = append(rs, r(4, 5, 1, 20), r(4, 4, 1, 21), r(4, 3, 1, 22), r(4, 2, 1, 23), r(4, 1, 3.5, 24))
	ds := dataset(rs...)

	s := NewSplit(ds, 0.2, 3.5, 3)

	want := map[string][]string{movielens.UserID(1): items(9), movielens.UserID(4): items(1)}
	if len(s.Test) != len(want) {
		t.Fatalf("test %v, want %v", s.Test, want)
	}
	for u, w := range want {
		if !slices.Equal(s.Test[u], w) {
			t.Errorf("test[%s] = %v, want %v", u, s.Test[u], w)
		}
	}
	if n := len(ds.Ratings) - 3; len(s.Train) != n {
		t.Errorf("%d training ratings, want %d", len(s.Train), n)
	}
	if !slices.IsSortedFunc(s.Train, func(a, b movielens.Rating) int { return a.At.Compare(b.At) }) {
		t.Error("training ratings not in time order")
	}
	for _, x := range s.Train {
		if (x.UserID == 1 && x.MovieID >= 9) || (x.UserID == 4 && x.MovieID == 1) {
			t.Errorf("held-out rating %+v in train", x)
		}
	}
	for _, tc := range []struct {
		name     string
		holdout  float64
		minTrain int
		users    int
	}{
		{"no holdout", 0, 0, 0},
		{"minTrain above everyone", 0.2, 9, 0},
		{"minTrain 1 lets user 2 in", 0.34, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := NewSplit(ds, tc.holdout, 3.5, tc.minTrain); len(s.Test) != tc.users {
				t.Errorf("%d test users (%v), want %d", len(s.Test), s.Test, tc.users)
			}
		})
	}
}

// tiny has two taste groups: movies 1 and 2 go together (users 1, 2, 10),
// movies 3 and 4 go together and are the most popular (users 3 to 6).
// User 10 has only seen movie 1.
func tiny() []movielens.Rating {
	var rs []movielens.Rating
	at := 0
	add := func(user int, movies ...int) {
		for _, m := range movies {
			at++
			rs = append(rs, r(user, m, 5, at))
		}
	}
	add(1, 1, 2)
	add(2, 1, 2)
	for u := 3; u <= 6; u++ {
		add(u, 3, 4)
	}
	add(7, 2, 3)
	add(10, 1)
	return rs
}

func TestPopularity(t *testing.T) {
	rec := Popularity(tiny())
	for _, tc := range []struct {
		name string
		user string
		k    int
		want []string
	}{
		// Counts: 3 has 5 ratings, 4 has 4, 1 and 2 have 3 → 3, 4, 1, 2
		// with ties by id.
		{"unknown user gets the ranking", "nobody", 10, items(3, 4, 1, 2)},
		{"k cuts", "nobody", 2, items(3, 4)},
		{"own items removed", movielens.UserID(10), 10, items(3, 4, 2)},
		{"all seen", movielens.UserID(7), 1, items(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rec(tc.user, tc.k); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestItemKNN(t *testing.T) {
	rec := ItemKNN(tiny(), 10)
	// Movie 2 is the one co-rated with movie 1; 3 and 4 are never co-rated
	// with 1.
	if got := rec(movielens.UserID(10), 10); !slices.Equal(got, items(2)) {
		t.Errorf("user 10: got %v, want %v", got, items(2))
	}
	// User 7 (movies 2 and 3): 4 via 3 scores sim(3,4) = 4/√(5·4) ≈ 0.894,
	// 1 via 2 scores sim(2,1) = 2/√(3·3) ≈ 0.667, so 4 before 1.
	if got := rec(movielens.UserID(7), 10); !slices.Equal(got, items(4, 1)) {
		t.Errorf("user 7: got %v, want %v", got, items(4, 1))
	}
	if got := rec("nobody", 10); len(got) != 0 {
		t.Errorf("unknown user: got %v", got)
	}
	// One neighbour: movie 1's nearest is 2 (2/3; 3 and 4 never co-rated).
	if got := ItemKNN(tiny(), 1)(movielens.UserID(10), 10); !slices.Equal(got, items(2)) {
		t.Errorf("one neighbour: got %v", got)
	}
}

func TestRecentItemKNN(t *testing.T) {
	// User 7 rated 2, then 3. Only the newest (3): 4, and 1 is out of reach.
	if got := RecentItemKNN(tiny(), 10, 1, 1)(movielens.UserID(7), 10); !slices.Equal(got, items(4)) {
		t.Errorf("latest 1: got %v, want %v", got, items(4))
	}
	// Both, the older at 0.01: 4 (0.894) before 1 (0.01 × 0.667); at
	// weight 1 the same as ItemKNN.
	if got := RecentItemKNN(tiny(), 10, 2, 0.01)(movielens.UserID(7), 10); !slices.Equal(got, items(4, 1)) {
		t.Errorf("latest 2, decay 0.01: got %v, want %v", got, items(4, 1))
	}
	// User 1 rated 1 then 2: with only the newest (2), 1 is a training
	// item and skipped, 3 via sim(2,3) = 1/√(3·5).
	if got := RecentItemKNN(tiny(), 10, 1, 1)(movielens.UserID(1), 10); !slices.Equal(got, items(3)) {
		t.Errorf("user 1, latest 1: got %v, want %v", got, items(3))
	}
}

func TestContent(t *testing.T) {
	vectors := map[string][]float32{
		movielens.ItemID(1): {2, 0},     // liked; unit (1, 0)
		movielens.ItemID(2): {0.9, 0.1}, // close to 1
		movielens.ItemID(3): {1, 1},     // 45°
		movielens.ItemID(4): {-1, 0},    // opposite
		movielens.ItemID(5): {0, 1},     // rated low by the user
		movielens.ItemID(6): {0, 0},     // zero vector
	}
	train := []movielens.Rating{r(1, 1, 5, 1), r(1, 5, 1, 2), r(2, 5, 2, 3)}
	rec := Content(train, vectors, 3.5)
	if got, want := rec(movielens.UserID(1), 10), items(2, 3); !slices.Equal(got, want) {
		t.Errorf("user 1: got %v, want %v", got, want)
	}
	if got := rec(movielens.UserID(1), 1); !slices.Equal(got, items(2)) {
		t.Errorf("k=1: got %v", got)
	}
	if got := rec(movielens.UserID(2), 10); len(got) != 0 {
		t.Errorf("user without positives: got %v", got)
	}
	// The mean of unit vectors: (1,0) and (0,1) give the diagonal, so 3
	// (45°) comes first.
	two := Content([]movielens.Rating{r(1, 1, 5, 1), r(1, 5, 5, 2)}, vectors, 3.5)
	if got := two(movielens.UserID(1), 1); !slices.Equal(got, items(3)) {
		t.Errorf("two positives: got %v, want %v", got, items(3))
	}
}

func TestNoTrainingItems(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []movielens.Rating
	for at := range 3000 {
		rs = append(rs, r(1+rng.IntN(40), 1+rng.IntN(150), float64(1+rng.IntN(10))/2, at))
	}
	ds := dataset(rs...)
	s := NewSplit(ds, 0.2, 3.5, 5)
	vectors := make(map[string][]float32)
	for m := 1; m <= 150; m++ {
		vectors[movielens.ItemID(m)] = []float32{rng.Float32() - 0.5, rng.Float32() - 0.5, rng.Float32() - 0.5}
	}
	own := make(map[string]map[string]bool)
	for _, x := range s.Train {
		u := movielens.UserID(x.UserID)
		if own[u] == nil {
			own[u] = make(map[string]bool)
		}
		own[u][movielens.ItemID(x.MovieID)] = true
	}
	for name, rec := range map[string]Recommender{
		"popularity": Popularity(s.Train),
		"itemknn":    ItemKNN(s.Train, 20),
		"content":    Content(s.Train, vectors, 3.5),
	} {
		t.Run(name, func(t *testing.T) {
			for u := range own {
				got := rec(u, 20)
				if len(got) > 20 {
					t.Errorf("%s: %d items", u, len(got))
				}
				for _, it := range got {
					if own[u][it] {
						t.Errorf("%s: recommended training item %s", u, it)
					}
				}
				if len(got) != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
					t.Errorf("%s: repeats in %v", u, got)
				}
			}
		})
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	err := Table(&b, []Result{
		{Name: "popularity", Users: 12, Recall10: 0.1, Recall20: 0.25, NDCG10: 0.125, NDCG20: 0.5, Coverage: 1},
		{Name: "knn", Users: 7},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `| recommender | users | recall@10 | recall@20 | ndcg@10 | ndcg@20 | coverage |
| ----------- | ----: | --------: | --------: | ------: | ------: | -------: |
| popularity  |    12 |    0.1000 |    0.2500 |  0.1250 |  0.5000 |   1.0000 |
| knn         |     7 |    0.0000 |    0.0000 |  0.0000 |  0.0000 |   0.0000 |
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRealData(t *testing.T) {
	if _, err := os.Stat(realData); err != nil && os.Getenv("STREAMREC_REQUIRE_DATASET") == "" {
		t.Skipf("no MovieLens file (run scripts/movielens.sh): %v", err)
	}
	ds, err := movielens.Load(realData)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSplit(ds, 0.2, 3.5, 5)
	start := time.Now()
	pop := Evaluate("popularity", s, len(ds.Movies), Popularity(s.Train))
	knn := Evaluate("itemknn-50", s, len(ds.Movies), ItemKNN(s.Train, 50))
	var b bytes.Buffer
	if err := Table(&b, []Result{pop, knn}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ratings, %d training, %d test users, %d movies, %v\n%s",
		len(ds.Ratings), len(s.Train), len(s.Test), len(ds.Movies), time.Since(start), b.String())
	if knn.Recall20 <= pop.Recall20 {
		t.Errorf("itemknn recall@20 %.4f <= popularity %.4f", knn.Recall20, pop.Recall20)
	}
}
