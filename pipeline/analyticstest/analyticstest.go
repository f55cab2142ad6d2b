// Package analyticstest is the conformance suite for pipeline.Analytics: one
// body of tests that every backend (the ClickHouse adapter, the embedded
// store) runs, checking only what the interface's contract promises.
//
// A backend is read back through a Reader, which each backend's tests
// implement with the deduplicated reads the contract names (ClickHouse
// FINAL, the embedded store's SQL views).
package analyticstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Reader reads back what a backend stored, deduplicated as the contract
// promises.
type Reader interface {
	// Events returns one event per event_id, ordered by event_id.
	Events(ctx context.Context) ([]schemas.ClickEvent, error)
	// Items returns the newest change per item_id (deletes included, with
	// Op = schemas.OpDelete), ordered by item_id.
	Items(ctx context.Context) ([]schemas.CatalogChange, error)
	// Recommendations returns one recommendation per request_id, ordered by
	// request_id.
	Recommendations(ctx context.Context) ([]pipeline.ServedRecommendation, error)
}

// Run runs the suite as subtests of t. open returns a fresh, empty backend
// for each subtest and registers its own cleanup with t; some subtests close
// the backend themselves, so that cleanup must tolerate a backend that is
// already closed.
//
// Times are compared at millisecond precision in UTC, and latencies to
// within a millisecond: that is what every backend's columns hold.
func Run(t *testing.T, open func(t *testing.T) (pipeline.Analytics, Reader)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a pipeline.Analytics, r Reader)
	}{
		{"RoundTripEvents", testRoundTripEvents},
		{"RoundTripItems", testRoundTripItems},
		{"RoundTripRecommendations", testRoundTripRecommendations},
		{"ReplayIsIdempotent", testReplay},
		{"NewestItemChangeWins", testNewestItemWins},
		{"Concurrent", testConcurrent},
		{"CloseFlushesInFlight", testCloseFlushes},
		{"InsertAfterClose", testInsertAfterClose},
		{"EmptyInsert", testEmptyInsert},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, r := open(t)
			tc.fn(t, a, r)
		})
	}
}

// base is the time every fixture is relative to.
var base = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

// at returns base plus d, in a zone other than UTC, so that backends must
// store the instant and not the wall clock.
func at(d time.Duration) time.Time {
	return base.Add(d).In(time.FixedZone("UTC+5:30", 5*3600+1800))
}

func event(id string, typ schemas.EventType, d time.Duration) schemas.ClickEvent {
	e := schemas.ClickEvent{
		EventID: id, Type: typ, UserID: "u-" + id, SessionID: "s-" + id, Timestamp: at(d),
		Context: schemas.EventContext{Device: "web", Locale: "de-DE", Page: "/p/" + id},
	}
	if typ == schemas.EventSearch {
		e.Query = "query " + id
	} else {
		e.ItemID = "i-" + id
	}
	return e
}

// events returns n events e<prefix>-0000 … of every type.
func events(prefix string, n int) []schemas.ClickEvent {
	out := make([]schemas.ClickEvent, n)
	for i := range out {
		typ := schemas.EventTypes[i%len(schemas.EventTypes)]
		out[i] = event(fmt.Sprintf("e%s-%04d", prefix, i), typ, time.Duration(i)*time.Second+time.Duration(i%1000)*time.Millisecond)
	}
	return out
}

func upsert(id string, d time.Duration, title string) schemas.CatalogChange {
	return schemas.CatalogChange{
		Op: schemas.OpUpsert, ItemID: id, Title: title, Description: "about " + id,
		CategoryPath: []string{"shoes", "running"}, Brand: "Acme", Price: 59.9, Currency: "EUR", InStock: true,
		Attributes: map[string]string{"size": "42", "color": "red"}, UpdatedAt: at(d),
	}
}

func remove(id string, d time.Duration) schemas.CatalogChange {
	return schemas.CatalogChange{Op: schemas.OpDelete, ItemID: id, UpdatedAt: at(d)}
}

func served(id string, d time.Duration) pipeline.ServedRecommendation {
	return pipeline.ServedRecommendation{
		RequestID: id, Kind: schemas.KindForUser, UserID: "u-" + id,
		Items: []string{"i1", "i2", "i3"}, Scores: []float32{0.9, 0.5, 0.125},
		Latency: 12*time.Millisecond + 345*time.Microsecond, ModelVersion: "m-7", ServedAt: at(d),
	}
}

// recos returns n recommendations r<prefix>-0000 ….
func recos(prefix string, n int) []pipeline.ServedRecommendation {
	out := make([]pipeline.ServedRecommendation, n)
	for i := range out {
		out[i] = served(fmt.Sprintf("r%s-%04d", prefix, i), time.Duration(i)*time.Millisecond)
	}
	return out
}

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// normEvents returns events as a backend stores them, ordered by event_id.
func normEvents(in []schemas.ClickEvent) []schemas.ClickEvent {
	out := make([]schemas.ClickEvent, len(in))
	for i, e := range in {
		e.Timestamp = ms(e.Timestamp)
		out[i] = e
	}
	slices.SortFunc(out, func(a, b schemas.ClickEvent) int { return strings.Compare(a.EventID, b.EventID) })
	return out
}

// normItems returns changes as compared: nil for empty slices and maps and,
// for a delete, only what a delete carries (op, item_id, updated_at).
func normItems(in []schemas.CatalogChange) []schemas.CatalogChange {
	out := make([]schemas.CatalogChange, len(in))
	for i, c := range in {
		if c.Op == schemas.OpDelete {
			c = schemas.CatalogChange{Op: c.Op, ItemID: c.ItemID, UpdatedAt: c.UpdatedAt}
		}
		c.UpdatedAt = ms(c.UpdatedAt)
		if len(c.CategoryPath) == 0 {
			c.CategoryPath = nil
		}
		if len(c.Attributes) == 0 {
			c.Attributes = nil
		}
		out[i] = c
	}
	slices.SortFunc(out, func(a, b schemas.CatalogChange) int { return strings.Compare(a.ItemID, b.ItemID) })
	return out
}

// normRecos returns recommendations as compared: nil for empty slices, no
// latency (compared apart, to within a millisecond).
func normRecos(in []pipeline.ServedRecommendation) []pipeline.ServedRecommendation {
	out := make([]pipeline.ServedRecommendation, len(in))
	for i, r := range in {
		r.ServedAt = ms(r.ServedAt)
		r.Latency = 0
		if len(r.Items) == 0 {
			r.Items = nil
		}
		if len(r.Scores) == 0 {
			r.Scores = nil
		}
		out[i] = r
	}
	slices.SortFunc(out, func(a, b pipeline.ServedRecommendation) int { return strings.Compare(a.RequestID, b.RequestID) })
	return out
}

func readEvents(t *testing.T, r Reader) []schemas.ClickEvent {
	t.Helper()
	got, err := r.Events(context.Background())
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	return got
}

func readItems(t *testing.T, r Reader) []schemas.CatalogChange {
	t.Helper()
	got, err := r.Items(context.Background())
	if err != nil {
		t.Fatalf("read items: %v", err)
	}
	return got
}

func readRecos(t *testing.T, r Reader) []pipeline.ServedRecommendation {
	t.Helper()
	got, err := r.Recommendations(context.Background())
	if err != nil {
		t.Fatalf("read recommendations: %v", err)
	}
	return got
}

func checkEvents(t *testing.T, r Reader, want []schemas.ClickEvent) {
	t.Helper()
	got := readEvents(t, r)
	if !slices.IsSortedFunc(got, func(a, b schemas.ClickEvent) int { return strings.Compare(a.EventID, b.EventID) }) {
		t.Errorf("events are not ordered by event_id")
	}
	diff(t, "events", normEvents(got), normEvents(want), func(e schemas.ClickEvent) string { return e.EventID })
}

func checkItems(t *testing.T, r Reader, want []schemas.CatalogChange) {
	t.Helper()
	got := readItems(t, r)
	if !slices.IsSortedFunc(got, func(a, b schemas.CatalogChange) int { return strings.Compare(a.ItemID, b.ItemID) }) {
		t.Errorf("items are not ordered by item_id")
	}
	diff(t, "items", normItems(got), normItems(want), func(c schemas.CatalogChange) string { return c.ItemID })
}

func checkRecos(t *testing.T, r Reader, want []pipeline.ServedRecommendation) {
	t.Helper()
	got := readRecos(t, r)
	if !slices.IsSortedFunc(got, func(a, b pipeline.ServedRecommendation) int { return strings.Compare(a.RequestID, b.RequestID) }) {
		t.Errorf("recommendations are not ordered by request_id")
	}
	if len(got) == len(want) {
		byID := make(map[string]time.Duration, len(want))
		for _, w := range want {
			byID[w.RequestID] = w.Latency
		}
		for _, g := range got {
			if w, ok := byID[g.RequestID]; ok && (g.Latency-w >= time.Millisecond || w-g.Latency >= time.Millisecond) {
				t.Errorf("recommendation %s: latency %v, want %v (to within 1ms)", g.RequestID, g.Latency, w)
			}
		}
	}
	diff(t, "recommendations", normRecos(got), normRecos(want), func(r pipeline.ServedRecommendation) string { return r.RequestID })
}

// diff reports the rows of got and want that differ, keyed by key; both are
// sorted by key.
func diff[T any](t *testing.T, what string, got, want []T, key func(T) string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g := make(map[string]T, len(got))
	for _, x := range got {
		g[key(x)] = x
	}
	w := make(map[string]T, len(want))
	for _, x := range want {
		w[key(x)] = x
	}
	reported := 0
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if reported == 5 {
			break
		}
		gx, ok := g[k]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, k)
		case !reflect.DeepEqual(gx, w[k]):
			t.Errorf("%s: %s\n got %+v\nwant %+v", what, k, gx, w[k])
		default:
			continue
		}
		reported++
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if _, ok := w[k]; !ok && reported < 5 {
			t.Errorf("%s: %s not inserted, or not deduplicated", what, k)
			reported++
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: read %d, want %d", what, len(got), len(want))
	} else if reported == 0 {
		t.Errorf("%s: rows differ in order or duplicates", what)
	}
}

func mustInsertEvents(t *testing.T, a pipeline.Analytics, events []schemas.ClickEvent) {
	t.Helper()
	if err := a.InsertEvents(context.Background(), events); err != nil {
		t.Fatalf("InsertEvents(%d events): %v", len(events), err)
	}
}

func mustInsertItems(t *testing.T, a pipeline.Analytics, changes []schemas.CatalogChange) {
	t.Helper()
	if err := a.InsertItems(context.Background(), changes); err != nil {
		t.Fatalf("InsertItems(%d changes): %v", len(changes), err)
	}
}

func mustInsertRecos(t *testing.T, a pipeline.Analytics, served []pipeline.ServedRecommendation) {
	t.Helper()
	if err := a.InsertRecommendations(context.Background(), served); err != nil {
		t.Fatalf("InsertRecommendations(%d): %v", len(served), err)
	}
}

func testRoundTripEvents(t *testing.T, a pipeline.Analytics, r Reader) {
	purchase := event("e-purchase", schemas.EventPurchase, 3*time.Second+999*time.Millisecond+999*time.Microsecond)
	purchase.Price, purchase.Quantity = 19.99, 3
	purchase.Context.RecoRequestID = "r-1"
	free := event("e-free", schemas.EventPurchase, 4*time.Second)
	free.Price, free.Quantity = 0, 1
	sparse := schemas.ClickEvent{EventID: "e-sparse", Type: schemas.EventView, UserID: "u", ItemID: "i", Timestamp: at(5 * time.Second)}
	unicode := event("e-unicode", schemas.EventSearch, 6*time.Second+7*time.Millisecond)
	unicode.Query = "Schuhe größe 42 👟 'quoted' \"double\" \\ back"
	in := []schemas.ClickEvent{
		event("e-view", schemas.EventView, 123*time.Millisecond+456*time.Microsecond),
		event("e-click", schemas.EventClick, time.Second),
		event("e-cart", schemas.EventAddToCart, 2*time.Second+1*time.Millisecond),
		purchase, free, sparse, unicode,
		event("e-search", schemas.EventSearch, 31*24*time.Hour), // another month
	}
	mustInsertEvents(t, a, in)
	checkEvents(t, r, in)
}

func testRoundTripItems(t *testing.T, a pipeline.Analytics, r Reader) {
	bare := schemas.CatalogChange{Op: schemas.OpUpsert, ItemID: "i-bare", Title: "Bare", UpdatedAt: at(time.Second)}
	many := upsert("i-many", 2*time.Second+5*time.Millisecond, "Many attributes")
	many.InStock = false
	many.CategoryPath = []string{"a", "b", "c", "d"}
	many.Attributes = map[string]string{"z": "last", "a": "first", "m": "", "ü": "umlaut", "k=v": "a,b"}
	in := []schemas.CatalogChange{
		upsert("i-full", 123*time.Millisecond+456*time.Microsecond, "Trail runner"),
		bare, many,
		remove("i-gone", 3*time.Second+999*time.Millisecond),
	}
	mustInsertItems(t, a, in)
	checkItems(t, r, in)
	for _, c := range readItems(t, r) {
		if c.ItemID == "i-gone" && c.Op != schemas.OpDelete {
			t.Errorf("deleted item read with op %q", c.Op)
		}
	}
}

func testRoundTripRecommendations(t *testing.T, a pipeline.Analytics, r Reader) {
	similar := served("r-similar", time.Second+999*time.Millisecond)
	similar.Kind, similar.UserID, similar.ItemID = schemas.KindSimilarItems, "", "i-9"
	search := served("r-search", 2*time.Second)
	search.Kind, search.UserID, search.Query = schemas.KindSearch, "", "red shoes"
	search.Latency = 250 * time.Microsecond
	fallback := served("r-fallback", 3*time.Second)
	fallback.Fallback, fallback.ModelVersion = true, "popularity"
	failed := pipeline.ServedRecommendation{RequestID: "r-error", Kind: schemas.KindForUser, UserID: "u",
		Latency: 1500 * time.Millisecond, Error: "deadline exceeded", ServedAt: at(4 * time.Second)}
	in := []pipeline.ServedRecommendation{served("r-user", 123*time.Millisecond+456*time.Microsecond), similar, search, fallback, failed}
	mustInsertRecos(t, a, in)
	checkRecos(t, r, in)
}

func testReplay(t *testing.T, a pipeline.Analytics, r Reader) {
	ev := events("", 50)
	items := []schemas.CatalogChange{upsert("i1", 0, "one"), upsert("i2", time.Second, "two"), remove("i3", 2*time.Second)}
	rs := recos("", 20)
	mustInsertEvents(t, a, ev)
	mustInsertItems(t, a, items)
	mustInsertRecos(t, a, rs)
	checkEvents(t, r, ev)
	checkItems(t, r, items)
	checkRecos(t, r, rs)

	// Replayed as a consumer does after a crash: the same rows again, in
	// other chunks and another order.
	mustInsertEvents(t, a, ev)
	mustInsertEvents(t, a, ev[10:30])
	mustInsertEvents(t, a, slices.Concat(ev[40:], ev[:5]))
	mustInsertItems(t, a, items)
	mustInsertItems(t, a, []schemas.CatalogChange{items[2], items[0]})
	mustInsertRecos(t, a, rs)
	mustInsertRecos(t, a, rs[7:9])
	checkEvents(t, r, ev)
	checkItems(t, r, items)
	checkRecos(t, r, rs)
}

func testNewestItemWins(t *testing.T, a pipeline.Analytics, r Reader) {
	// The changes of each item, newest last; they are inserted in another
	// order.
	changes := map[string][]schemas.CatalogChange{
		// Within one second: the milliseconds decide.
		"i-ms": {upsert("i-ms", 100*time.Millisecond, "old"), upsert("i-ms", 500*time.Millisecond, "mid"),
			upsert("i-ms", 900*time.Millisecond, "new")},
		"i-deleted":   {upsert("i-deleted", time.Second, "was here"), remove("i-deleted", 2*time.Second)},
		"i-restored":  {remove("i-restored", time.Second), upsert("i-restored", time.Hour, "back")},
		"i-days":      {upsert("i-days", 0, "day 0"), upsert("i-days", 48*time.Hour, "day 2")},
		"i-same-call": {upsert("i-same-call", time.Second, "a"), upsert("i-same-call", 3*time.Second, "c")},
	}
	mustInsertItems(t, a, []schemas.CatalogChange{changes["i-ms"][2]})
	mustInsertItems(t, a, []schemas.CatalogChange{changes["i-ms"][0]})
	mustInsertItems(t, a, []schemas.CatalogChange{changes["i-ms"][1]})
	mustInsertItems(t, a, []schemas.CatalogChange{changes["i-deleted"][1], changes["i-restored"][1], changes["i-days"][1]})
	mustInsertItems(t, a, []schemas.CatalogChange{changes["i-deleted"][0], changes["i-restored"][0], changes["i-days"][0]})
	mustInsertItems(t, a, []schemas.CatalogChange{changes["i-same-call"][1], changes["i-same-call"][0]})

	var want []schemas.CatalogChange
	for _, cs := range changes {
		want = append(want, cs[len(cs)-1])
	}
	checkItems(t, r, want)
}

func testConcurrent(t *testing.T, a pipeline.Analytics, r Reader) {
	const (
		goroutines = 16
		calls      = 4
		perCall    = 20
	)
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		errs       []error
		wantEvents []schemas.ClickEvent
		wantItems  []schemas.CatalogChange
		wantRecos  []pipeline.ServedRecommendation
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	ctx := context.Background()
	for g := range goroutines {
		for c := range calls {
			prefix := fmt.Sprintf("%02d-%02d", g, c)
			ev, rs := events(prefix, perCall), recos(prefix, perCall/5)
			items := []schemas.CatalogChange{upsert("i"+prefix, time.Duration(c)*time.Second, prefix)}
			wantEvents = append(wantEvents, ev...)
			wantItems = append(wantItems, items...)
			wantRecos = append(wantRecos, rs...)
			wg.Go(func() {
				if err := a.InsertEvents(ctx, ev); err != nil {
					fail(fmt.Errorf("InsertEvents %s: %w", prefix, err))
				}
			})
			wg.Go(func() {
				if err := a.InsertItems(ctx, items); err != nil {
					fail(fmt.Errorf("InsertItems %s: %w", prefix, err))
				}
			})
			wg.Go(func() {
				if err := a.InsertRecommendations(ctx, rs); err != nil {
					fail(fmt.Errorf("InsertRecommendations %s: %w", prefix, err))
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r, wantEvents)
	checkItems(t, r, wantItems)
	checkRecos(t, r, wantRecos)
}

// testCloseFlushes closes the backend while inserts are in flight: each
// insert either succeeds, and its rows are stored, or fails with ErrClosed.
func testCloseFlushes(t *testing.T, a pipeline.Analytics, r Reader) {
	const callers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		stored  []schemas.ClickEvent
		errs    []error
		started = make(chan struct{}, callers)
	)
	for i := range callers {
		ev := events(fmt.Sprintf("%02d", i), 20)
		wg.Go(func() {
			started <- struct{}{}
			err := a.InsertEvents(context.Background(), ev)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				stored = append(stored, ev...)
			case !errors.Is(err, pipeline.ErrClosed):
				errs = append(errs, err)
			}
		})
	}
	for range callers / 2 {
		<-started
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("insert racing Close: %v, want nil or ErrClosed", err)
	}
	checkEvents(t, r, stored)
}

func testInsertAfterClose(t *testing.T, a pipeline.Analytics, r Reader) {
	mustInsertEvents(t, a, events("", 3))
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"InsertEvents":          a.InsertEvents(ctx, events("late", 1)),
		"InsertItems":           a.InsertItems(ctx, []schemas.CatalogChange{upsert("i-late", 0, "late")}),
		"InsertRecommendations": a.InsertRecommendations(ctx, recos("late", 1)),
	} {
		if !errors.Is(err, pipeline.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	checkEvents(t, r, events("", 3))
	checkItems(t, r, nil)
	checkRecos(t, r, nil)
}

func testEmptyInsert(t *testing.T, a pipeline.Analytics, r Reader) {
	ctx := context.Background()
	for name, err := range map[string]error{
		"InsertEvents(nil)":           a.InsertEvents(ctx, nil),
		"InsertEvents([])":            a.InsertEvents(ctx, []schemas.ClickEvent{}),
		"InsertItems(nil)":            a.InsertItems(ctx, nil),
		"InsertItems([])":             a.InsertItems(ctx, []schemas.CatalogChange{}),
		"InsertRecommendations(nil)":  a.InsertRecommendations(ctx, nil),
		"InsertRecommendations([])":   a.InsertRecommendations(ctx, []pipeline.ServedRecommendation{}),
		"InsertEvents after the rest": a.InsertEvents(ctx, nil),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	checkEvents(t, r, nil)
	checkItems(t, r, nil)
	checkRecos(t, r, nil)
}

// testCancelled checks that an insert whose context is already done fails
// (its rows may or may not be stored) and leaves the backend usable.
func testCancelled(t *testing.T, a pipeline.Analytics, r Reader) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range map[string]error{
		"InsertEvents":          a.InsertEvents(ctx, events("cancelled", 2)),
		"InsertItems":           a.InsertItems(ctx, []schemas.CatalogChange{upsert("i-cancelled", 0, "x")}),
		"InsertRecommendations": a.InsertRecommendations(ctx, recos("cancelled", 2)),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	mustInsertEvents(t, a, events("after", 2))
	got := readEvents(t, r)
	for _, e := range events("after", 2) {
		if !slices.ContainsFunc(got, func(g schemas.ClickEvent) bool { return g.EventID == e.EventID }) {
			t.Errorf("event %s inserted after a cancelled insert is missing", e.EventID)
		}
	}
}
