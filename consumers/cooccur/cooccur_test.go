package cooccur

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tracker(t testing.TB, edit func(*Config)) (*Tracker, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.RecencyDecay = 1 // the hand-computed examples weigh a window alike; TestRecencyDecay does not
	if edit != nil {
		edit(&cfg)
	}
	reg := prometheus.NewPedanticRegistry()
	tr, err := NewTracker(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return tr, reg
}

// observe feeds each user's items in order, users in the order given.
func observe(tr *Tracker, seq ...[2]string) {
	for _, s := range seq {
		tr.Observe(s[0], s[1])
	}
}

// counts is a snapshot of every co-occurrence count ("i>j") and n ("i").
func counts(tr *Tracker) map[string]uint32 {
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	out := map[string]uint32{}
	for i, it := range tr.items {
		out[tr.names[i]] = it.n
		for j, c := range it.co {
			out[tr.names[i]+">"+tr.names[j]] = c
		}
	}
	return out
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }

func sameCandidates(got, want []Candidate) bool {
	if len(got) != len(want) {
		return false
	}
	for k := range got {
		if got[k].ItemID != want[k].ItemID || got[k].Because != want[k].Because || !near(got[k].Score, want[k].Score) {
			return false
		}
	}
	return true
}

// example is hand-computed: n(a)=3, n(b)=3, n(c)=2, n(d)=1, n(e)=1;
// co(a,b)=2, co(a,c)=1, co(b,c)=2, co(b,d)=1, co(c,d)=1, co(a,e)=1.
// u2's window is [b a], u4's [e a].
var example = [][2]string{
	{"u1", "a"}, {"u1", "b"}, {"u1", "c"},
	{"u2", "a"}, {"u2", "b"},
	{"u3", "b"}, {"u3", "c"}, {"u3", "d"},
	{"u4", "a"}, {"u4", "e"},
}

func TestCountsExact(t *testing.T) {
	tr, _ := tracker(t, nil)
	observe(tr, example...)
	want := map[string]uint32{
		"a": 3, "b": 3, "c": 2, "d": 1, "e": 1,
		"a>b": 2, "b>a": 2, "a>c": 1, "c>a": 1, "b>c": 2, "c>b": 2,
		"b>d": 1, "d>b": 1, "c>d": 1, "d>c": 1, "a>e": 1, "e>a": 1,
	}
	if got := counts(tr); !reflect.DeepEqual(got, want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}

func TestRecommend(t *testing.T) {
	tr, _ := tracker(t, nil)
	observe(tr, example...)
	s3, s6 := math.Sqrt(3), math.Sqrt(6)
	for _, tc := range []struct {
		name string
		user string
		n    int
		skip func(string) bool
		want []Candidate
	}{
		{"cosine sums, ties by id", "u2", 10, nil, []Candidate{{"c", 3 / s6, "b"}, {"d", 1 / s3, "b"}, {"e", 1 / s3, "a"}}},
		{"n", "u2", 2, nil, []Candidate{{"c", 3 / s6, "b"}, {"d", 1 / s3, "b"}}},
		{"skip", "u2", 10, func(id string) bool { return id == "c" || id == "d" }, []Candidate{{"e", 1 / s3, "a"}}},
		{"skip all", "u2", 10, func(string) bool { return true }, nil},
		{"window items skipped", "u4", 10, nil, []Candidate{{"b", 2.0 / 3, "a"}, {"c", 1 / s6, "a"}}},
		{"window of three", "u1", 10, nil, []Candidate{{"d", 1/s3 + 1/math.Sqrt(2), "c"}, {"e", 1 / s3, "a"}}},
		{"unknown user", "nobody", 10, nil, nil},
		{"n zero", "u2", 0, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.Recommend(tc.user, tc.n, tc.skip); !sameCandidates(got, tc.want) {
				t.Fatalf("Recommend(%s, %d) = %v, want %v", tc.user, tc.n, got, tc.want)
			}
		})
	}
}

// TestRecencyDecay: with decay 0.5, u2's older window item (a) counts
// half; Score agrees with Recommend, and Because names the larger weighted
// contribution.
func TestRecencyDecay(t *testing.T) {
	tr, _ := tracker(t, func(c *Config) { c.RecencyDecay = 0.5 })
	observe(tr, example...)
	s3, s6 := math.Sqrt(3), math.Sqrt(6)
	want := []Candidate{{"c", 2.5 / s6, "b"}, {"d", 1 / s3, "b"}, {"e", 0.5 / s3, "a"}}
	if got := tr.Recommend("u2", 10, nil); !sameCandidates(got, want) {
		t.Fatalf("Recommend = %v, want %v", got, want)
	}
	if got := tr.Score("u2", []string{"c", "d", "e"}); !sameCandidates(got, want) {
		t.Fatalf("Score = %v, want %v", got, want)
	}
}

// TestHistory: items that left the window but not the history are never
// recommended back (u's own a co-occurred with b and c); one that
// re-enters the window from the history co-occurs again with the window.
func TestHistory(t *testing.T) {
	tr, _ := tracker(t, func(c *Config) { c.Window, c.History = 2, 4 })
	observe(tr, [2]string{"x", "a"}, [2]string{"x", "d"},
		[2]string{"y", "b"}, [2]string{"y", "e"},
		[2]string{"u", "a"}, [2]string{"u", "b"}, [2]string{"u", "c"})
	if got, want := tr.Window("u"), []string{"c", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Window = %v, want %v", got, want)
	}
	if got, want := tr.History("u"), []string{"c", "b", "a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("History = %v, want %v", got, want)
	}
	// a scores through co(b,a) and co(c,a) (u's own), e through co(b,e).
	got := tr.Recommend("u", 10, nil)
	if len(got) != 1 || got[0].ItemID != "e" {
		t.Fatalf("Recommend = %v, want only e (a is in u's history)", got)
	}
	before := counts(tr)
	observe(tr, [2]string{"u", "a"}) // from the history back into the window
	after := counts(tr)
	for _, k := range []string{"a>c", "c>a", "a>b", "b>a", "a"} {
		if after[k] != before[k]+1 {
			t.Errorf("%s: %d -> %d, want one more", k, before[k], after[k])
		}
	}
	if got, want := tr.History("u"), []string{"a", "c", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
	// The history is bounded: d, e push b out (History 4).
	observe(tr, [2]string{"u", "d"}, [2]string{"u", "e"})
	if got, want := tr.History("u"), []string{"e", "d", "a", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
}

func TestSimilar(t *testing.T) {
	tr, _ := tracker(t, nil)
	observe(tr, example...)
	for _, tc := range []struct {
		item string
		n    int
		skip func(string) bool
		want []Candidate
	}{
		{"b", 10, nil, []Candidate{{"c", 2 / math.Sqrt(6), ""}, {"a", 2.0 / 3, ""}, {"d", 1 / math.Sqrt(3), ""}}},
		{"b", 1, nil, []Candidate{{"c", 2 / math.Sqrt(6), ""}}},
		{"b", 10, func(id string) bool { return id == "a" }, []Candidate{{"c", 2 / math.Sqrt(6), ""}, {"d", 1 / math.Sqrt(3), ""}}},
		{"e", 10, nil, []Candidate{{"a", 1 / math.Sqrt(3), ""}}},
		{"unknown", 10, nil, nil},
	} {
		if got := tr.Similar(tc.item, tc.n, tc.skip); !sameCandidates(got, tc.want) {
			t.Errorf("Similar(%s, %d) = %v, want %v", tc.item, tc.n, got, tc.want)
		}
	}
}

func TestScore(t *testing.T) {
	tr, _ := tracker(t, nil)
	observe(tr, example...)
	got := tr.Score("u2", []string{"c", "zzz", "e", "a", "d"})
	want := []Candidate{{"c", 3 / math.Sqrt(6), "b"}, {"zzz", 0, ""}, {"e", 1 / math.Sqrt(3), "a"}, {"a", 2.0 / 3, "b"}, {"d", 1 / math.Sqrt(3), "b"}}
	if !sameCandidates(got, want) {
		t.Fatalf("Score = %v, want %v", got, want)
	}
	if got := tr.Score("nobody", []string{"a"}); !reflect.DeepEqual(got, []Candidate{{ItemID: "a"}}) {
		t.Errorf("Score(unknown user) = %v, want zero scores", got)
	}
	if got := tr.Score("u2", nil); len(got) != 0 {
		t.Errorf("Score(no items) = %v, want empty", got)
	}
}

// TestScoreMatchesRecommend: on a random stream Score gives exactly
// Recommend's scores and reasons, also after pruning.
func TestScoreMatchesRecommend(t *testing.T) {
	tr, _ := tracker(t, func(c *Config) { c.Window = 8; c.Neighbours = 6 })
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		tr.Observe(fmt.Sprint("u", r.IntN(50)), fmt.Sprint("i", r.IntN(80)))
	}
	for u := range 50 {
		user := fmt.Sprint("u", u)
		rec := tr.Recommend(user, 1000, nil)
		if len(rec) == 0 {
			t.Fatalf("%s: no recommendations", user)
		}
		ids := make([]string, len(rec))
		for k, c := range rec {
			ids[k] = c.ItemID
		}
		if got := tr.Score(user, ids); !reflect.DeepEqual(got, rec) {
			t.Fatalf("%s: Score = %v, Recommend = %v", user, got, rec)
		}
		for k := 1; k < len(rec); k++ {
			if a, b := rec[k-1], rec[k]; a.Score < b.Score || a.Score == b.Score && a.ItemID >= b.ItemID {
				t.Fatalf("%s: Recommend not ordered at %d: %v", user, k, rec)
			}
		}
	}
}

// TestBinary: an item already in the window only moves to the front.
func TestBinary(t *testing.T) {
	tr, _ := tracker(t, nil)
	observe(tr, example...)
	before := counts(tr)
	observe(tr, [2]string{"u1", "a"}, [2]string{"u1", "a"}, [2]string{"u1", "b"}, [2]string{"u2", "b"})
	if got := counts(tr); !reflect.DeepEqual(got, before) {
		t.Fatalf("counts changed by repeats: %v, want %v", got, before)
	}
	if got, want := tr.Window("u1"), []string{"b", "a", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Window(u1) = %v, want %v", got, want)
	}
}

// TestWindowBound: the oldest item leaves the window and pairs no more.
func TestWindowBound(t *testing.T) {
	tr, _ := tracker(t, func(c *Config) { c.Window = 2 })
	observe(tr, [2]string{"u", "a"}, [2]string{"u", "b"}, [2]string{"u", "c"})
	if got, want := tr.Window("u"), []string{"c", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Window = %v, want %v", got, want)
	}
	observe(tr, [2]string{"u", "b"}, [2]string{"u", "d"}) // b to the front, then d evicts c
	if got, want := tr.Window("u"), []string{"d", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Window = %v, want %v", got, want)
	}
	// a had left the window when d came: no pair.
	c := counts(tr)
	for pair, want := range map[string]uint32{"a>b": 1, "b>c": 1, "a>c": 1, "c>d": 1, "b>d": 1, "a>d": 0} {
		if c[pair] != want {
			t.Errorf("co %s = %d, want %d", pair, c[pair], want)
		}
	}
	// The window is copied.
	w := tr.Window("u")
	w[0] = "x"
	if got := tr.Window("u"); got[0] != "d" {
		t.Errorf("Window shares memory with the tracker: %v", got)
	}
	if got := tr.Window("nobody"); got != nil {
		t.Errorf("Window(unknown) = %v, want nil", got)
	}
}

// TestPrune: a list reaching 2×Neighbours keeps the Neighbours largest
// counts, ties by the older item.
func TestPrune(t *testing.T) {
	tr, reg := tracker(t, func(c *Config) { c.Neighbours = 2 })
	user := 0
	pair := func(a, b string, times int) {
		for range times {
			user++
			observe(tr, [2]string{fmt.Sprint("u", user), a}, [2]string{fmt.Sprint("u", user), b})
		}
	}
	pair("p1", "x", 3)
	pair("p2", "x", 2)
	pair("p3", "x", 1)
	pair("q1", "y", 1)
	pair("q2", "y", 1)
	pair("q3", "y", 1)
	if c := counts(tr); c["x>p3"] != 1 || c["y>q3"] != 1 {
		t.Fatalf("before the 4th neighbour: %v", c)
	}
	pair("p4", "x", 1) // x reaches 4 entries: keep p1, p2
	pair("q4", "y", 1) // y reaches 4 entries, all 1: keep q1, q2
	c := counts(tr)
	for _, tc := range []struct {
		pair string
		want uint32
	}{
		{"x>p1", 3}, {"x>p2", 2}, {"x>p3", 0}, {"x>p4", 0},
		{"y>q1", 1}, {"y>q2", 1}, {"y>q3", 0}, {"y>q4", 0},
		{"p3>x", 1}, {"q4>y", 1}, // the other direction is kept: pruning is per list
	} {
		if c[tc.pair] != tc.want {
			t.Errorf("co %s = %d, want %d", tc.pair, c[tc.pair], tc.want)
		}
	}
	if got := metric(t, reg, "streamrec_cooccur_pruned_entries_total"); got != 4 {
		t.Errorf("pruned = %v, want 4", got)
	}
	if got := metric(t, reg, "streamrec_cooccur_pairs"); got != 12 {
		t.Errorf("pairs = %v, want 12 (2+2 kept, 8 reverse)", got)
	}
	// A pruned pair recurs from zero.
	pair("p3", "x", 1)
	if c := counts(tr); c["x>p3"] != 1 {
		t.Errorf("co x>p3 = %d after recurring", c["x>p3"])
	}
}

// TestPruneBound: on a random stream no list reaches 2×Neighbours and the
// pairs gauge is the sum of the lists.
func TestPruneBound(t *testing.T) {
	const neighbours = 3
	tr, reg := tracker(t, func(c *Config) { c.Window = 10; c.Neighbours = neighbours })
	r := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		tr.Observe(fmt.Sprint("u", r.IntN(200)), fmt.Sprint("i", r.IntN(100)))
	}
	tr.mu.RLock()
	total := 0
	for i, it := range tr.items {
		if len(it.co) >= 2*neighbours {
			t.Errorf("%s has %d counts, want < %d", tr.names[i], len(it.co), 2*neighbours)
		}
		total += len(it.co)
	}
	tr.mu.RUnlock()
	if got := metric(t, reg, "streamrec_cooccur_pairs"); got != float64(total) {
		t.Errorf("pairs gauge = %v, lists hold %d", got, total)
	}
	if got := metric(t, reg, "streamrec_cooccur_pruned_entries_total"); got == 0 {
		t.Error("nothing pruned")
	}
}

// TestMaxUsers: two generations of MaxUsers/2; the users least recently
// observed are forgotten first; reads do not promote.
func TestMaxUsers(t *testing.T) {
	tr, reg := tracker(t, func(c *Config) { c.MaxUsers = 4 })
	// u3 fills current: u1, u2 become previous.
	observe(tr, [2]string{"u1", "a"}, [2]string{"u2", "a"}, [2]string{"u3", "a"})
	_ = tr.Window("u2")               // a read is not activity
	observe(tr, [2]string{"u1", "b"}) // u1 back to current
	observe(tr, [2]string{"u4", "a"}) // current full again: u2 is forgotten
	for _, tc := range []struct {
		user string
		want []string
	}{{"u1", []string{"b", "a"}}, {"u2", nil}, {"u3", []string{"a"}}, {"u4", []string{"a"}}} {
		if got := tr.Window(tc.user); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Window(%s) = %v, want %v", tc.user, got, tc.want)
		}
	}
	if got := tr.Recommend("u2", 10, nil); got != nil {
		t.Errorf("Recommend(forgotten) = %v, want nil", got)
	}
	if got := metric(t, reg, "streamrec_cooccur_users"); got != 3 {
		t.Errorf("users gauge = %v, want 3", got)
	}
	// A forgotten user starts again with an empty window.
	observe(tr, [2]string{"u2", "c"})
	if got := counts(tr)["a>c"]; got != 0 {
		t.Errorf("co a>c = %d, want 0 (u2's old window forgotten)", got)
	}
	for i := range 100 {
		tr.Observe(fmt.Sprint("v", i), "a")
		if got := metric(t, reg, "streamrec_cooccur_users"); got > 4 {
			t.Fatalf("%v users held, want <= 4", got)
		}
	}
}

// TestMaxItems: beyond MaxItems new items are not tracked; known ones are.
func TestMaxItems(t *testing.T) {
	tr, reg := tracker(t, func(c *Config) { c.MaxItems = 3 })
	observe(tr, [2]string{"u", "a"}, [2]string{"u", "b"}, [2]string{"u", "c"}, [2]string{"u", "d"}, [2]string{"v", "d"}, [2]string{"v", "a"})
	if got, want := tr.Window("u"), []string{"c", "b", "a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Window(u) = %v, want %v", got, want)
	}
	if got, want := tr.Window("v"), []string{"a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Window(v) = %v, want %v", got, want)
	}
	if got := tr.Similar("d", 10, nil); got != nil {
		t.Errorf("Similar(untracked) = %v, want nil", got)
	}
	if got := metric(t, reg, "streamrec_cooccur_dropped_items_total"); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
	if got := metric(t, reg, "streamrec_cooccur_items"); got != 3 {
		t.Errorf("items gauge = %v, want 3", got)
	}
}

func TestEmptyIDsIgnored(t *testing.T) {
	tr, _ := tracker(t, nil)
	observe(tr, [2]string{"", "a"}, [2]string{"u", ""})
	if got := counts(tr); len(got) != 0 {
		t.Errorf("counts = %v, want none", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"window", func(c *Config) { c.Window = 0 }, []string{"cooccurrence.window must be > 0"}},
		{"neighbours", func(c *Config) { c.Neighbours = -1 }, []string{"cooccurrence.neighbours must be > 0"}},
		{"max items", func(c *Config) { c.MaxItems = 0 }, []string{"cooccurrence.max_items must be > 0"}},
		{"max items int32", func(c *Config) { c.MaxItems = math.MaxInt32 + 1 }, []string{"cooccurrence.max_items must be > 0 and <= 2147483647"}},
		{"max users", func(c *Config) { c.MaxUsers = 1 }, []string{"cooccurrence.max_users must be >= 2"}},
		{"lookback", func(c *Config) { c.Lookback = -1 }, []string{"cooccurrence.lookback must be >= 0"}},
		{"history below window", func(c *Config) { c.Window, c.History = 30, 20 }, []string{"cooccurrence.history must be >= cooccurrence.window (30)"}},
		{"decay zero", func(c *Config) { c.RecencyDecay = 0 }, []string{"cooccurrence.recency_decay must be > 0 and <= 1"}},
		{"decay above one", func(c *Config) { c.RecencyDecay = 1.5 }, []string{"cooccurrence.recency_decay must be > 0 and <= 1"}},
		{"all at once", func(c *Config) { *c = Config{Lookback: -1} }, []string{
			"cooccurrence.window", "cooccurrence.neighbours", "cooccurrence.max_items", "cooccurrence.max_users", "cooccurrence.lookback",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate("cooccurrence")
			if (err == nil) != (tc.want == nil) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
	if _, err := NewTracker(Config{}, nil); err == nil {
		t.Error("NewTracker(zero config) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewTracker(DefaultConfig(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTracker(DefaultConfig(), reg); err == nil {
		t.Error("registering a second tracker's metrics on one registry succeeded")
	}
}

// TestConcurrent: one writer and several readers (run with -race).
func TestConcurrent(t *testing.T) {
	tr, reg := tracker(t, func(c *Config) { c.Window = 20; c.Neighbours = 5; c.MaxUsers = 40; c.MaxItems = 150 })
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		r := rand.New(rand.NewPCG(5, 6))
		for range 20_000 {
			tr.Observe(fmt.Sprint("u", r.IntN(60)), fmt.Sprint("i", r.IntN(200)))
		}
	})
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(7, uint64(g)))
			for {
				select {
				case <-done:
					return
				default:
				}
				user, item := fmt.Sprint("u", r.IntN(60)), fmt.Sprint("i", r.IntN(200))
				// skip runs outside the lock: it may call the tracker.
				skip := func(id string) bool { return id == item || len(tr.Window(id)) > 0 }
				if got := tr.Recommend(user, 5, skip); len(got) > 5 {
					t.Errorf("Recommend returned %d > 5", len(got))
				}
				if got := tr.Similar(item, 5, nil); len(got) > 5 {
					t.Errorf("Similar returned %d > 5", len(got))
				}
				if got := tr.Score(user, []string{item, "i1"}); len(got) != 2 {
					t.Errorf("Score returned %d, want 2", len(got))
				}
				if got := tr.Window(user); len(got) > 20 {
					t.Errorf("window of %d > 20", len(got))
				}
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// zipfStream is a synthetic clickstream: users and items Zipf-distributed
// over 100,000 each.
func zipfStream(n int) [][2]string {
	r := rand.New(rand.NewPCG(42, 43))
	users := rand.NewZipf(r, 1.1, 10, 99_999)
	items := rand.NewZipf(r, 1.1, 10, 99_999)
	out := make([][2]string, n)
	for k := range out {
		out[k] = [2]string{fmt.Sprintf("user-%06d", users.Uint64()), fmt.Sprintf("item-%06d", items.Uint64())}
	}
	return out
}

// warm returns a tracker with defaults fed 500,000 events, and the heap it
// holds.
func warm(b *testing.B, events [][2]string) (*Tracker, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr, err := NewTracker(DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range events {
		tr.Observe(e[0], e[1])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return tr, after.HeapAlloc - before.HeapAlloc
}

// BenchmarkObserve: Observe on a warm tracker (defaults, 500,000 events
// of a Zipf stream over 100,000 users and items); reports the heap per
// count held, all in (windows and ids included).
func BenchmarkObserve(b *testing.B) {
	events := zipfStream(1_000_000)
	tr, heap := warm(b, events[:500_000])
	tr.mu.RLock()
	pairs, items, users := tr.pairs, len(tr.names), len(tr.users)+len(tr.oldUsers)
	tr.mu.RUnlock()
	b.ReportAllocs()
	k := 500_000
	for b.Loop() {
		e := events[k]
		tr.Observe(e[0], e[1])
		if k++; k == len(events) {
			k = 500_000
		}
	}
	// After the loop: b.Loop resets the reported metrics when it starts.
	b.ReportMetric(float64(heap)/float64(pairs), "heap-B/count")
	b.ReportMetric(float64(pairs), "counts")
	b.ReportMetric(float64(items), "items")
	b.ReportMetric(float64(users), "users")
}

// BenchmarkRecommend: the 20 best for the warm tracker's users, most
// active first (the heaviest windows).
func BenchmarkRecommend(b *testing.B) {
	events := zipfStream(500_000)
	tr, _ := warm(b, events)
	users := make([]string, 1000)
	for k := range users {
		users[k] = fmt.Sprintf("user-%06d", k)
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		tr.Recommend(users[k], 20, nil)
		k = (k + 1) % len(users)
	}
}

// BenchmarkSimilar: the 20 most similar to the warm tracker's most popular
// items.
func BenchmarkSimilar(b *testing.B) {
	events := zipfStream(500_000)
	tr, _ := warm(b, events)
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		tr.Similar(fmt.Sprintf("item-%06d", k), 20, nil)
		k = (k + 1) % 1000
	}
}
