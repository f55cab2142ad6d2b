package popularity

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/consumers/clickstream"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func tracker(t *testing.T, edit func(*Config)) *Tracker {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestDecayExact: scores are exact powers of two of the half-lives between
// an event and the newest one, also across a renormalisation.
func TestDecayExact(t *testing.T) {
	const h = 6 * time.Hour
	for _, tc := range []struct {
		name   string
		events []struct {
			item string
			typ  schemas.EventType
			at   time.Duration
		}
		want []pipeline.Scored
	}{
		{
			name: "one half-life apart",
			events: []struct {
				item string
				typ  schemas.EventType
				at   time.Duration
			}{{"old", schemas.EventView, 0}, {"new", schemas.EventView, h}},
			want: []pipeline.Scored{{ItemID: "new", Score: 1}, {ItemID: "old", Score: 0.5}},
		},
		{
			name: "weights and out of order",
			events: []struct {
				item string
				typ  schemas.EventType
				at   time.Duration
			}{{"a", schemas.EventPurchase, 2 * h}, {"b", schemas.EventClick, 0}, {"a", schemas.EventView, 0}, {"b", schemas.EventSearch, 2 * h}},
			want: []pipeline.Scored{{ItemID: "a", Score: 8 + 0.25}, {ItemID: "b", Score: 0.5}},
		},
		{
			name: "across a renormalisation",
			events: []struct {
				item string
				typ  schemas.EventType
				at   time.Duration
			}{{"old", schemas.EventView, 0}, {"new", schemas.EventAddToCart, 100 * h}, {"new", schemas.EventView, 99 * h}},
			want: []pipeline.Scored{{ItemID: "new", Score: 4.5}, {ItemID: "old", Score: math.Exp2(-100)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tracker(t, func(c *Config) { c.HalfLife = h })
			for _, e := range tc.events {
				tr.Observe(e.item, nil, e.typ, base.Add(e.at))
			}
			if got := tr.Top("", 10); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Top = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTopPerCategory(t *testing.T) {
	tr := tracker(t, nil)
	obs := func(item string, cats []string, n int) {
		for range n {
			tr.Observe(item, cats, schemas.EventView, base)
		}
	}
	phones := []string{"electronics", "phones"}
	laptops := []string{"electronics", "laptops"}
	obs("p1", phones, 5)
	obs("p2", phones, 3)
	obs("l1", laptops, 4)
	obs("s1", []string{"shoes"}, 10)
	obs("x", nil, 1)
	obs("p3", phones, 3) // ties p2: by id
	names := func(s []pipeline.Scored) []string {
		var out []string
		for _, x := range s {
			out = append(out, x.ItemID)
		}
		return out
	}
	for _, tc := range []struct {
		category string
		k        int
		want     []string
	}{
		{"", 10, []string{"s1", "p1", "l1", "p2", "p3", "x"}},
		{"", 2, []string{"s1", "p1"}},
		{"electronics", 10, []string{"p1", "l1", "p2", "p3"}},
		{"phones", 2, []string{"p1", "p2"}},
		{"laptops", 10, []string{"l1"}},
		{"garden", 10, nil},
		{"phones", 0, nil},
	} {
		if got := names(tr.Top(tc.category, tc.k)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Top(%q, %d) = %v, want %v", tc.category, tc.k, got, tc.want)
		}
	}
	// An item's categories move with it.
	obs("l1", []string{"electronics", "tablets"}, 1)
	if got := names(tr.Top("laptops", 10)); got != nil {
		t.Errorf("laptops after the move = %v, want none", got)
	}
	if got := names(tr.Top("tablets", 10)); !reflect.DeepEqual(got, []string{"l1"}) {
		t.Errorf("tablets = %v, want [l1]", got)
	}
}

// TestBound: never more than MaxItems items; the least popular go first.
func TestBound(t *testing.T) {
	const maxItems = 20
	tr := tracker(t, func(c *Config) { c.MaxItems = maxItems; c.HalfLife = time.Hour })
	for i := range 200 {
		// Later items are more popular (less decayed).
		tr.Observe(fmt.Sprint("i", i), []string{"c", fmt.Sprint("c", i%3)}, schemas.EventView, base.Add(time.Duration(i)*time.Minute))
		if n := tr.Len(); n > maxItems {
			t.Fatalf("after %d items: %d tracked, want <= %d", i+1, n, maxItems)
		}
	}
	top := tr.Top("", 5)
	for j, s := range top {
		if want := fmt.Sprint("i", 199-j); s.ItemID != want {
			t.Fatalf("Top = %v, want i199, i198, ...", top)
		}
	}
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	n := 0
	for c, m := range tr.byCat {
		for id := range m {
			if tr.items[id] == nil {
				t.Errorf("category %s indexes dropped item %s", c, id)
			}
		}
		if c != "c" {
			n += len(m)
		}
	}
	if n != len(tr.items) || len(tr.byCat["c"]) != len(tr.items) {
		t.Errorf("category index has %d/%d items, want %d", n, len(tr.byCat["c"]), len(tr.items))
	}
}

func TestConcurrentObserveAndTop(t *testing.T) {
	tr := tracker(t, func(c *Config) { c.MaxItems = 50 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				tr.Observe(fmt.Sprint("i", (g*31+i)%97), []string{fmt.Sprint("c", i%4)}, schemas.EventClick, base.Add(time.Duration(i)*time.Second))
				if i%10 == 0 {
					if top := tr.Top(fmt.Sprint("c", i%4), 5); len(top) > 5 {
						t.Errorf("Top returned %d > 5", len(top))
					}
				}
			}
		})
	}
	wg.Wait()
	if n := tr.Len(); n > 50 {
		t.Errorf("%d items tracked, want <= 50", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"half life", func(c *Config) { c.HalfLife = 0 }, "popularity.half_life must be > 0"},
		{"lookback", func(c *Config) { c.Lookback = -time.Second }, "popularity.lookback must be >= 0"},
		{"max items", func(c *Config) { c.MaxItems = 0 }, "popularity.max_items must be > 0"},
		{"weights", func(c *Config) { c.Weights.Purchase = -8 }, "popularity.weights.purchase must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate("popularity")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := NewTracker(Config{}); err == nil {
		t.Error("NewTracker(zero config) succeeded")
	}
}

// followFixture is a fake cluster with the clickstream topic in partitions
// partitions, a producer to it, and a store whose items collection (behind
// the "items" alias) knows phone, laptop and boot.
type followFixture struct {
	brokers []string
	cl      *kgo.Client
	store   pipeline.VectorStore
}

func newFollowFixture(t *testing.T, partitions int32) followFixture {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, schemas.TopicClickstream))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	ctx := context.Background()
	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.EnsureCollection(ctx, "items_m1", 2); err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias(ctx, "items", "items_m1"); err != nil {
		t.Fatal(err)
	}
	if err := store.Upsert(ctx, "items_m1", []pipeline.Point{
		{ID: "phone", Vector: []float32{1, 0}, Payload: pipeline.Payload{pipeline.PayloadCategory: []string{"electronics", "phones"}}},
		{ID: "laptop", Vector: []float32{0, 1}, Payload: pipeline.Payload{pipeline.PayloadCategory: []string{"electronics", "laptops"}}},
		{ID: "boot", Vector: []float32{1, 1}, Payload: pipeline.Payload{pipeline.PayloadCategory: []string{"shoes"}}},
	}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...), kgo.DefaultProduceTopic(schemas.TopicClickstream))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return followFixture{brokers: fake.ListenAddrs(), cl: cl, store: store}
}

// record is ev as the clickstream topic holds it, keyed by its user.
func record(t *testing.T, ev schemas.ClickEvent) *kgo.Record {
	t.Helper()
	if ev.Type == schemas.EventPurchase || ev.Type == schemas.EventAddToCart {
		ev.Price, ev.Quantity = 10, 1
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Key: []byte(ev.UserID), Value: raw, Timestamp: ev.Timestamp}
}

// follow runs Follow over f with a 24h lookback until the returned func is
// called, which waits for it and fails the test unless it returned nil.
func (f followFixture) follow(t *testing.T, tr *Tracker, keep Filter, observers ...func([]schemas.ClickEvent)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, kafka.Config{Brokers: f.brokers}, schemas.TopicClickstream, 24*time.Hour, f.store, "items", tr, schemas.DefaultLimits(), keep, nil, observers...)
	}()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Follow returned %v after cancel, want nil", err)
		}
	}
}

// TestFollow: over a fake cluster, Follow counts the valid events newer
// than the lookback by their items' categories from the store, skips
// invalid records, and returns nil when its context ends.
func TestFollow(t *testing.T) {
	f := newFollowFixture(t, 2)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := 0
	rec := func(user string, typ schemas.EventType, item string, at time.Time) *kgo.Record {
		n++
		return record(t, schemas.ClickEvent{EventID: fmt.Sprint("e", n), Type: typ, UserID: user, ItemID: item, Timestamp: at})
	}
	// Before the lookback: not read.
	if err := f.cl.ProduceSync(ctx, rec("u1", schemas.EventPurchase, "laptop", now.Add(-48*time.Hour)),
		rec("u2", schemas.EventPurchase, "laptop", now.Add(-48*time.Hour))).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recent := []*kgo.Record{
		rec("u1", schemas.EventView, "phone", now.Add(-time.Minute)),
		rec("u2", schemas.EventClick, "phone", now.Add(-time.Minute)),
		rec("u1", schemas.EventView, "laptop", now.Add(-time.Minute)),
		rec("u3", schemas.EventAddToCart, "boot", now.Add(-time.Minute)),
		rec("u3", schemas.EventView, "unknown", now.Add(-time.Minute)),
		rec("u3", schemas.EventSearch, "", now.Add(-time.Minute)),
		{Key: []byte("u4"), Value: []byte(`{"type":"view"}`), Timestamp: now},
		{Key: []byte("u4"), Value: []byte(`not json`), Timestamp: now},
	}
	if err := f.cl.ProduceSync(ctx, recent...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	tr := tracker(t, nil)
	stop := f.follow(t, tr, nil)
	want := []pipeline.Scored{{ItemID: "boot", Score: 4}, {ItemID: "phone", Score: 3}, {ItemID: "laptop", Score: 1}, {ItemID: "unknown", Score: 1}}
	eventually(t, func() bool { return reflect.DeepEqual(tr.Top("", 10), want) }, func() string { return fmt.Sprintf("Top = %v, want %v", tr.Top("", 10), want) })
	for cat, want := range map[string][]pipeline.Scored{
		"electronics": {{ItemID: "phone", Score: 3}, {ItemID: "laptop", Score: 1}},
		"laptops":     {{ItemID: "laptop", Score: 1}},
		"shoes":       {{ItemID: "boot", Score: 4}},
	} {
		if got := tr.Top(cat, 10); !reflect.DeepEqual(got, want) {
			t.Errorf("Top(%s) = %v, want %v", cat, got, want)
		}
	}

	// Events keep flowing in while it runs.
	if err := f.cl.ProduceSync(ctx, rec("u5", schemas.EventPurchase, "laptop", now)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(tr.Top("laptops", 1)) == 1 && tr.Top("laptops", 1)[0].Score > 8 },
		func() string {
			return fmt.Sprintf("Top(laptops) = %v, want the purchase counted", tr.Top("laptops", 1))
		})
	stop()
}

// TestFollowFilter: with the clickstream consumer's guards
// (*clickstream.Quality) as its filter, Follow counts an event id once
// however often the topic holds it (a producer's retries appended again
// after a kill -9 of the broker) and does not count a user's events beyond
// the rate limit, in the tracker and for the observers alike; without a
// filter it counts every copy.
func TestFollowFilter(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
	view := func(id, user, item string) schemas.ClickEvent {
		return schemas.ClickEvent{EventID: id, Type: schemas.EventView, UserID: user, ItemID: item, Timestamp: at}
	}
	// The topic, in one partition: offset order is the order here.
	events := []schemas.ClickEvent{
		view("h1", "human", "phone"),
		view("h2", "human", "laptop"),
		view("h1", "human", "phone"), // retried: appended again
		view("h2", "human", "laptop"),
		// A bot with a burst of 3: its search spends a token too, so two
		// of its five views count.
		{EventID: "b0", Type: schemas.EventSearch, UserID: "bot", Query: "boots", Timestamp: at},
		view("b1", "bot", "boot"),
		view("b2", "bot", "boot"),
		view("b3", "bot", "boot"),
		view("b4", "bot", "boot"),
		view("b5", "bot", "boot"),
		view("h3", "human", "boot"),
		view("end", "other", "end"), // counted last in every case
	}
	quality := clickstream.QualityConfig{DedupWindow: 100, RateLimit: clickstream.RateLimitConfig{EventsPerSecond: 1, Burst: 3, MaxUsers: 10}}
	for _, tc := range []struct {
		name     string
		filter   bool
		want     []pipeline.Scored
		observed []string
	}{
		{
			name:     "clickstream quality",
			filter:   true,
			want:     []pipeline.Scored{{ItemID: "boot", Score: 3}, {ItemID: "end", Score: 1}, {ItemID: "laptop", Score: 1}, {ItemID: "phone", Score: 1}},
			observed: []string{"h1", "h2", "b1", "b2", "h3", "end"},
		},
		{
			name:     "no filter",
			want:     []pipeline.Scored{{ItemID: "boot", Score: 6}, {ItemID: "laptop", Score: 2}, {ItemID: "phone", Score: 2}, {ItemID: "end", Score: 1}},
			observed: []string{"h1", "h2", "h1", "h2", "b1", "b2", "b3", "b4", "b5", "h3", "end"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFollowFixture(t, 1)
			var recs []*kgo.Record
			for _, ev := range events {
				recs = append(recs, record(t, ev))
			}
			if err := f.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			var keep Filter
			if tc.filter {
				q, err := clickstream.NewQuality(quality, nil)
				if err != nil {
					t.Fatal(err)
				}
				keep = q.Filter
			}
			var mu sync.Mutex
			var observed []string
			tr := tracker(t, nil)
			stop := f.follow(t, tr, keep, func(evs []schemas.ClickEvent) {
				mu.Lock()
				defer mu.Unlock()
				for _, ev := range evs {
					observed = append(observed, ev.EventID)
				}
			})
			defer stop()
			ids := func() []string {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(observed)
			}
			eventually(t, func() bool { return slices.Contains(ids(), "end") }, func() string {
				return fmt.Sprintf("observed %v, want the last event", ids())
			})
			if got := ids(); !slices.Equal(got, tc.observed) {
				t.Errorf("observers got %v, want %v", got, tc.observed)
			}
			if got := tr.Top("", 10); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Top = %v, want %v", got, tc.want)
			}
		})
	}
}

// eventually polls cond until it holds, failing with what() after 10s.
func eventually(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		<-tick.C
	}
}
