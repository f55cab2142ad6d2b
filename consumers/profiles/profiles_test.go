package profiles

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const dim = 8

// base is a whole-millisecond event time.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a real embedded store with an items collection behind the
// items alias.
type fixture struct {
	store *localstore.Store
	items map[string][]float32 // unit vectors
}

func newFixture(t *testing.T, nItems int) *fixture {
	t.Helper()
	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.EnsureCollection(ctx, "items_m1", dim); err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias(ctx, "items", "items_m1"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, items: map[string][]float32{}}
	r := rand.New(rand.NewPCG(7, 7))
	pts := make([]pipeline.Point, nItems)
	for i := range pts {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		pts[i] = pipeline.Point{ID: fmt.Sprint("i", i), Vector: v}
	}
	if err := store.Upsert(ctx, "items_m1", pts); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, "items_m1", ids(pts))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		f.items[p.ID] = p.Vector
	}
	return f
}

func ids(pts []pipeline.Point) []string {
	out := make([]string, len(pts))
	for i, p := range pts {
		out[i] = p.ID
	}
	return out
}

func (f *fixture) updater(t *testing.T, cfg Config) *Updater {
	t.Helper()
	u, err := NewUpdater(context.Background(), f.store, "items", dim, cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) point(t *testing.T, user string) pipeline.Point {
	t.Helper()
	pts, err := f.store.Get(context.Background(), UsersAlias, []string{user})
	if err != nil || len(pts) != 1 {
		t.Fatalf("get user %s: %v, %d points", user, err, len(pts))
	}
	return pts[0]
}

// event is a kept clickstream event of user at base+min minutes (to the
// millisecond, the profile's time resolution), from partition part at
// offset off.
func event(user string, typ schemas.EventType, item string, min float64, part int32, off int64) consumers.Event[schemas.ClickEvent] {
	return consumers.Event[schemas.ClickEvent]{
		Value: schemas.ClickEvent{
			EventID: fmt.Sprint(user, "-", part, "-", off), Type: typ, UserID: user, ItemID: item,
			Timestamp: base.Add(time.Duration(min * float64(time.Minute))).Truncate(time.Millisecond),
		},
		Record: pipeline.Record{Topic: schemas.TopicClickstream, Partition: part, Offset: off},
	}
}

// expected computes a profile's weighted sum from scratch: every event
// with an item vector and weight, decayed to the newest event time.
func expected(f *fixture, cfg Config, evs []consumers.Event[schemas.ClickEvent]) (unitVec []float64, mass, norm float64) {
	var ref time.Time
	for _, ev := range evs {
		if ev.Value.Timestamp.After(ref) {
			ref = ev.Value.Timestamp
		}
	}
	sum := make([]float64, dim)
	for _, ev := range evs {
		v, ok := f.items[ev.Value.ItemID]
		w := cfg.Weights.Of(ev.Value.Type)
		if !ok || w == 0 {
			continue
		}
		d := w * math.Pow(0.5, ref.Sub(ev.Value.Timestamp).Hours()/cfg.HalfLife.Hours())
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		for i, x := range v {
			sum[i] += d * float64(x) / math.Sqrt(n)
		}
		mass += d
	}
	for _, x := range sum {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		return nil, mass, 0
	}
	unitVec = make([]float64, dim)
	for i, x := range sum {
		unitVec[i] = x / norm
	}
	return unitVec, mass, norm
}

func checkVector(t *testing.T, f *fixture, cfg Config, user string, evs []consumers.Event[schemas.ClickEvent]) {
	t.Helper()
	want, wantMass, wantNorm := expected(f, cfg, evs)
	p := f.point(t, user)
	prof, ok, err := NewReader(f.store).Profile(context.Background(), user)
	if err != nil || !ok {
		t.Fatalf("Profile(%s) = %v, %v", user, ok, err)
	}
	if want == nil {
		if prof.Vector != nil {
			t.Fatalf("%s: vector %v, want nil", user, prof.Vector)
		}
		return
	}
	if len(prof.Vector) != dim {
		t.Fatalf("%s: vector has %d dimensions, want %d", user, len(prof.Vector), dim)
	}
	for i := range want {
		if math.Abs(float64(prof.Vector[i])-want[i]) > 1e-5 {
			t.Fatalf("%s: vector %v, want %v", user, prof.Vector, want)
		}
	}
	if m := p.Payload[PayloadMass].(float64); math.Abs(m-wantMass) > 1e-9*wantMass {
		t.Errorf("%s: mass %v, want %v", user, m, wantMass)
	}
	if n := p.Payload[PayloadNorm].(float64); math.Abs(n-wantNorm) > 1e-5*wantNorm {
		t.Errorf("%s: norm %v, want %v", user, n, wantNorm)
	}
}

// TestVectorIsExactWeightedMean: however events are batched and ordered in
// time, the stored vector is the direction of the decayed weighted sum
// computed from scratch, and mass and norm are that sum's weight and length.
func TestVectorIsExactWeightedMean(t *testing.T) {
	evs := []consumers.Event[schemas.ClickEvent]{
		event("u", schemas.EventView, "i0", 0, 0, 10),
		event("u", schemas.EventClick, "i1", 30, 0, 11),
		event("u", schemas.EventSearch, "", 45, 0, 12),
		event("u", schemas.EventAddToCart, "i2", 24*60, 0, 13), // one half-life later
		event("u", schemas.EventView, "i0", 20, 0, 14),         // late event: older than the reference
		event("u", schemas.EventPurchase, "i3", 3*24*60, 0, 15),
		event("u", schemas.EventView, "nope", 3*24*60+1, 0, 16), // no vector: not in the sum
		event("u", schemas.EventView, "i4", 3*24*60+2, 0, 17),
	}
	for _, tc := range []struct {
		name    string
		batches [][]int // indexes into evs
	}{
		{"one batch", [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}},
		{"one event per batch", [][]int{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}},
		{"uneven batches", [][]int{{0, 1, 2}, {3}, {4, 5, 6, 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 10)
			cfg := DefaultConfig()
			u := f.updater(t, cfg)
			for k, b := range tc.batches {
				var batch []consumers.Event[schemas.ClickEvent]
				for _, i := range b {
					batch = append(batch, evs[i])
				}
				if err := u.Handle(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				var upTo []consumers.Event[schemas.ClickEvent]
				for _, b := range tc.batches[:k+1] {
					for _, i := range b {
						upTo = append(upTo, evs[i])
					}
				}
				checkVector(t, f, cfg, "u", upTo)
			}
			p := f.point(t, "u")
			if got, want := p.Payload[PayloadUpdatedAt], base.Add(3*24*time.Hour+2*time.Minute).UnixMilli(); got != want {
				t.Errorf("updated_at = %v, want %d", got, want)
			}
			if got := p.Payload[PayloadSrcOffset]; got != int64(17) {
				t.Errorf("src_offset = %v, want 17", got)
			}
			if got := testutil.ToFloat64(u.metrics.updates); got != float64(len(evs)) {
				t.Errorf("updates = %v, want %d", got, len(evs))
			}
		})
	}
}

// TestHalfLife: two views one half-life apart; the older counts half.
func TestHalfLife(t *testing.T) {
	f := newFixture(t, 2)
	u := f.updater(t, DefaultConfig())
	if err := u.Handle(context.Background(), []consumers.Event[schemas.ClickEvent]{
		event("u", schemas.EventView, "i0", 0, 0, 0),
		event("u", schemas.EventView, "i1", 24*60, 0, 1),
	}); err != nil {
		t.Fatal(err)
	}
	if m := f.point(t, "u").Payload[PayloadMass]; m != 1.5 {
		t.Fatalf("mass = %v, want 1.5", m)
	}
}

func TestRecentAndPurchased(t *testing.T) {
	f := newFixture(t, 10)
	cfg := DefaultConfig()
	cfg.MaxRecent, cfg.MaxPurchased = 3, 2
	u := f.updater(t, cfg)
	ctx := context.Background()
	batches := [][]consumers.Event[schemas.ClickEvent]{
		{
			event("u", schemas.EventView, "i0", 1, 0, 0),
			event("u", schemas.EventPurchase, "i0", 2, 0, 1),
			event("u", schemas.EventSearch, "", 3, 0, 2), // no item: not a touch
		},
		{
			event("u", schemas.EventPurchase, "i1", 4, 0, 3),
			event("u", schemas.EventView, "i2", 0, 0, 4), // older than all: falls off the bounded list
			event("u", schemas.EventPurchase, "i0", 5, 0, 5),
			event("u", schemas.EventPurchase, "i3", 5, 0, 6), // same time: the later offset first
		},
	}
	for _, b := range batches {
		if err := u.Handle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	prof, ok, err := NewReader(f.store).Profile(ctx, "u")
	if err != nil || !ok {
		t.Fatalf("Profile = %v, %v", ok, err)
	}
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	wantRecent := []pipeline.Touch{
		{ItemID: "i3", Type: schemas.EventPurchase, At: at(5)},
		{ItemID: "i0", Type: schemas.EventPurchase, At: at(5)},
		{ItemID: "i1", Type: schemas.EventPurchase, At: at(4)},
	}
	if !reflect.DeepEqual(prof.Recent, wantRecent) {
		t.Errorf("recent = %+v, want %+v", prof.Recent, wantRecent)
	}
	if want := []string{"i3", "i0"}; !reflect.DeepEqual(prof.Purchased, want) {
		t.Errorf("purchased = %v, want %v", prof.Purchased, want)
	}
	if !prof.UpdatedAt.Equal(at(5)) {
		t.Errorf("updated_at = %v, want %v", prof.UpdatedAt, at(5))
	}
	if got := f.point(t, "u").Payload[PayloadRecent]; !reflect.DeepEqual(got, []string{
		fmt.Sprint("purchase|i3|", at(5).UnixMilli()),
		fmt.Sprint("purchase|i0|", at(5).UnixMilli()),
		fmt.Sprint("purchase|i1|", at(4).UnixMilli()),
	}) {
		t.Errorf("stored recent = %v", got)
	}
}

func TestParseTouch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want touch
		ok   bool
	}{
		{"view|i1|1000", touch{schemas.EventView, "i1", 1000}, true},
		{"click|a|b|-5", touch{schemas.EventClick, "a|b", -5}, true},
		{"view|i1", touch{}, false},
		{"view|i1|x", touch{}, false},
		{"", touch{}, false},
	} {
		got, ok := parseTouch(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseTouch(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

// TestReplayChangesNothing: a retried batch, a part of it and a
// redelivered older batch leave every profile as it was.
func TestReplayChangesNothing(t *testing.T) {
	f := newFixture(t, 10)
	u := f.updater(t, DefaultConfig())
	ctx := context.Background()
	first := []consumers.Event[schemas.ClickEvent]{
		event("a", schemas.EventView, "i0", 0, 2, 100),
		event("b", schemas.EventClick, "i1", 1, 2, 101),
		event("a", schemas.EventPurchase, "i2", 2, 2, 102),
	}
	second := []consumers.Event[schemas.ClickEvent]{
		event("a", schemas.EventView, "i3", 3, 2, 103),
		event("b", schemas.EventAddToCart, "i4", 4, 2, 104),
	}
	for _, b := range [][]consumers.Event[schemas.ClickEvent]{first, second} {
		if err := u.Handle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]pipeline.Point{"a": f.point(t, "a"), "b": f.point(t, "b")}
	for _, b := range [][]consumers.Event[schemas.ClickEvent]{second, first, first[1:], append(first, second...)} {
		if err := u.Handle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for id, p := range before {
		if got := f.point(t, id); !reflect.DeepEqual(got, p) {
			t.Errorf("user %s changed by a replay:\n got %+v\nwant %+v", id, got, p)
		}
	}
	if got := testutil.ToFloat64(u.metrics.skipped); got != 2+3+2+5 {
		t.Errorf("skipped = %v, want 12", got)
	}
	if got := testutil.ToFloat64(u.metrics.updates); got != 5 {
		t.Errorf("updates = %v, want 5", got)
	}
	// A batch mixing a replayed and a new event applies only the new one.
	if err := u.Handle(ctx, []consumers.Event[schemas.ClickEvent]{second[0], event("a", schemas.EventView, "i5", 5, 2, 105)}); err != nil {
		t.Fatal(err)
	}
	checkVector(t, f, DefaultConfig(), "a", []consumers.Event[schemas.ClickEvent]{first[0], first[2], second[0], event("a", schemas.EventView, "i5", 5, 2, 105)})
}

// TestMissingItems: an item without a vector is a touch (and a purchase)
// but not part of the vector; a user with only such items has no vector.
func TestMissingItems(t *testing.T) {
	f := newFixture(t, 3)
	u := f.updater(t, DefaultConfig())
	ctx := context.Background()
	if err := u.Handle(ctx, []consumers.Event[schemas.ClickEvent]{
		event("cold", schemas.EventPurchase, "ghost", 0, 0, 0),
		event("warm", schemas.EventView, "ghost", 0, 0, 1),
		event("warm", schemas.EventView, "i1", 1, 0, 2),
	}); err != nil {
		t.Fatal(err)
	}
	r := NewReader(f.store)
	cold, ok, err := r.Profile(ctx, "cold")
	if err != nil || !ok {
		t.Fatalf("Profile(cold) = %v, %v", ok, err)
	}
	if cold.Vector != nil || len(cold.Recent) != 1 || cold.Recent[0].ItemID != "ghost" || !reflect.DeepEqual(cold.Purchased, []string{"ghost"}) {
		t.Errorf("cold profile = %+v", cold)
	}
	checkVector(t, f, DefaultConfig(), "warm", []consumers.Event[schemas.ClickEvent]{event("warm", schemas.EventView, "i1", 1, 0, 2)})
	if got := testutil.ToFloat64(u.metrics.missing); got != 2 {
		t.Errorf("items_missing = %v, want 2", got)
	}
}

// TestConcurrentUsers: one goroutine per partition, each with its own users
// (as the clickstream's keying guarantees), in many batches.
func TestConcurrentUsers(t *testing.T) {
	const parts, usersPer, batches, perBatch = 8, 5, 6, 10
	f := newFixture(t, 50)
	cfg := DefaultConfig()
	cfg.HalfLife = time.Hour
	u := f.updater(t, cfg)
	types := []schemas.EventType{schemas.EventView, schemas.EventClick, schemas.EventAddToCart, schemas.EventPurchase, schemas.EventSearch}
	all := make([][]consumers.Event[schemas.ClickEvent], parts)
	for p := range parts {
		r := rand.New(rand.NewPCG(uint64(p), 1))
		for off := range batches * perBatch {
			typ := types[r.IntN(len(types))]
			item := ""
			if typ != schemas.EventSearch {
				item = fmt.Sprint("i", r.IntN(50))
			}
			user := fmt.Sprintf("p%d-u%d", p, r.IntN(usersPer))
			all[p] = append(all[p], event(user, typ, item, float64(off)+r.Float64()*30, int32(p), int64(off)))
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := range parts {
		wg.Go(func() {
			for b := range batches {
				if err := u.Handle(context.Background(), all[p][b*perBatch:(b+1)*perBatch]); err != nil {
					errs[p] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for p := range parts {
		byUser := map[string][]consumers.Event[schemas.ClickEvent]{}
		for _, ev := range all[p] {
			byUser[ev.Value.UserID] = append(byUser[ev.Value.UserID], ev)
		}
		for user, evs := range byUser {
			checkVector(t, f, cfg, user, evs)
		}
	}
	if n, _ := f.store.Count(context.Background(), UsersAlias); n != parts*usersPer {
		t.Errorf("users = %d, want %d", n, parts*usersPer)
	}
}

func TestReaderColdAndWarm(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	r := NewReader(f.store)
	if _, ok, err := r.Profile(ctx, "u"); ok || err != nil {
		t.Fatalf("before any profile (no alias): %v, %v; want cold, nil", ok, err)
	}
	u := f.updater(t, DefaultConfig())
	if _, ok, err := r.Profile(ctx, "u"); ok || err != nil {
		t.Fatalf("unknown user: %v, %v; want cold, nil", ok, err)
	}
	if err := u.Handle(ctx, []consumers.Event[schemas.ClickEvent]{event("u", schemas.EventView, "i0", 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	prof, ok, err := r.Profile(ctx, "u")
	if !ok || err != nil || prof.UserID != "u" || len(prof.Vector) != dim || len(prof.Recent) != 1 {
		t.Fatalf("known user: %+v, %v, %v", prof, ok, err)
	}
	if _, ok, err := r.Profile(ctx, "other"); ok || err != nil {
		t.Fatalf("other user: %v, %v; want cold, nil", ok, err)
	}
}

func TestNewUpdater(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 1)
	u := f.updater(t, DefaultConfig())
	if u.Collection() != "users_m1" || u.ItemsCollection() != "items_m1" {
		t.Fatalf("collections %s, %s", u.Collection(), u.ItemsCollection())
	}
	if got, _ := f.store.ResolveAlias(ctx, UsersAlias); got != "users_m1" {
		t.Fatalf("users alias -> %s", got)
	}
	if _, err := NewUpdater(ctx, f.store, "items", dim+1, DefaultConfig(), nil, nil); !errors.Is(err, pipeline.ErrDimension) {
		t.Errorf("wrong dim: %v, want ErrDimension", err)
	}
	if _, err := NewUpdater(ctx, f.store, "nope", dim, DefaultConfig(), nil, nil); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Errorf("missing alias: %v, want ErrNoCollection", err)
	}
	// A new model version moves the users alias to its own collection.
	if err := f.store.EnsureCollection(ctx, "items_m2", dim); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetAlias(ctx, "items", "items_m2"); err != nil {
		t.Fatal(err)
	}
	u2, err := NewUpdater(ctx, f.store, "items", dim, DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.ResolveAlias(ctx, UsersAlias); got != "users_m2" || u2.Collection() != "users_m2" {
		t.Fatalf("users alias -> %s, collection %s; want users_m2", got, u2.Collection())
	}
}

func TestUsersCollection(t *testing.T) {
	for in, want := range map[string]string{"m1": "users_m1", "intfloat/e5-small@v2": "users_intfloat_e5-small_v2"} {
		if got := UsersCollection(in); got != want {
			t.Errorf("UsersCollection(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"half life", func(c *Config) { c.HalfLife = 0 }, "profiles.half_life must be > 0"},
		{"negative weight", func(c *Config) { c.Weights.Click = -1 }, "profiles.weights.click must be"},
		{"nan weight", func(c *Config) { c.Weights.View = math.NaN() }, "profiles.weights.view must be"},
		{"all zero", func(c *Config) { c.Weights = Weights{} }, "profiles.weights: at least one"},
		{"max recent", func(c *Config) { c.MaxRecent = -1 }, "profiles.max_recent must be >= 0"},
		{"max purchased", func(c *Config) { c.MaxPurchased = -1 }, "profiles.max_purchased must be >= 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate("profiles")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
