// Package vectorstoretest is the conformance suite for pipeline.VectorStore:
// one body of tests that every backend (the embedded store, the Qdrant
// adapter) runs, checking only what the interface's contract promises.
package vectorstoretest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/streamrec/streamrec/pipeline"
)

// Run runs the suite as subtests of t. open returns a fresh, empty store for
// each subtest; it registers its own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) pipeline.VectorStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s pipeline.VectorStore)
	}{
		{"EnsureCollectionIdempotent", testEnsureCollection},
		{"UpsertGetRoundTrip", testRoundTrip},
		{"OverwriteByID", testOverwrite},
		{"Delete", testDelete},
		{"SearchMatchesExact", testSearchExact},
		{"SearchEmptyCollection", testSearchEmpty},
		{"SearchKLargerThanMatches", testKLarger},
		{"Filters", testFilters},
		{"DimensionMismatch", testDimension},
		{"ZeroVector", testZeroVector},
		{"UnknownCollection", testUnknown},
		{"Aliases", testAliases},
		{"AliasMovesWhileReading", testAliasMoves},
		{"DropCollection", testDrop},
		{"Count", testCount},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

const dim = 8

// scoreTol is how far a reported cosine may be from the exact one.
const scoreTol = 1e-4

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * 3) // not unit length on purpose
	}
	return v
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return d / math.Sqrt(na*nb)
}

func mustEnsure(t *testing.T, s pipeline.VectorStore, name string, d int) {
	t.Helper()
	if err := s.EnsureCollection(context.Background(), name, d); err != nil {
		t.Fatalf("EnsureCollection(%q, %d): %v", name, d, err)
	}
}

func mustUpsert(t *testing.T, s pipeline.VectorStore, coll string, pts []pipeline.Point) {
	t.Helper()
	if err := s.Upsert(context.Background(), coll, pts); err != nil {
		t.Fatalf("Upsert(%q, %d points): %v", coll, len(pts), err)
	}
}

func mustSearch(t *testing.T, s pipeline.VectorStore, coll string, q pipeline.VectorQuery) []pipeline.Hit {
	t.Helper()
	hits, err := s.Search(context.Background(), coll, q)
	if err != nil {
		t.Fatalf("Search(%q): %v", coll, err)
	}
	return hits
}

func mustCount(t *testing.T, s pipeline.VectorStore, coll string, want int) {
	t.Helper()
	n, err := s.Count(context.Background(), coll)
	if err != nil {
		t.Fatalf("Count(%q): %v", coll, err)
	}
	if n != want {
		t.Fatalf("Count(%q) = %d, want %d", coll, n, want)
	}
}

func ids(hits []pipeline.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func sameVector(a, b []float32) bool {
	return len(a) == len(b) && cosine(a, b) > 1-1e-5
}

func testEnsureCollection(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	mustUpsert(t, s, "c", []pipeline.Point{{ID: "a", Vector: randVec(rand.New(rand.NewPCG(1, 1)), dim)}})
	mustEnsure(t, s, "c", dim) // same dim: no error, data kept
	mustCount(t, s, "c", 1)
	if err := s.EnsureCollection(ctx, "c", dim+1); err == nil {
		t.Fatal("EnsureCollection with another dim: want an error")
	}
	mustCount(t, s, "c", 1)
}

func testRoundTrip(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(2, 2))
	p := pipeline.Payload{
		pipeline.PayloadTitle:     "Green tea",
		pipeline.PayloadCategory:  []string{"food", "drinks", "tea"},
		pipeline.PayloadBrand:     "Acme",
		pipeline.PayloadPrice:     12.5,
		pipeline.PayloadInStock:   true,
		pipeline.PayloadUpdatedAt: int64(1_700_000_000_123),
		"extra_count":             int64(-7),
		"extra_flag":              false,
	}
	pts := []pipeline.Point{
		{ID: "item-1", Vector: randVec(r, dim), Payload: p},
		{ID: "item-2", Vector: randVec(r, dim)},
	}
	mustUpsert(t, s, "c", pts)
	got, err := s.Get(ctx, "c", []string{"item-1", "missing", "item-2"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Get returned %d points (%v), want 2", len(got), got)
	}
	byID := map[string]pipeline.Point{}
	for _, g := range got {
		byID[g.ID] = g
	}
	for _, want := range pts {
		g, ok := byID[want.ID]
		if !ok {
			t.Fatalf("Get: %q missing", want.ID)
		}
		if !sameVector(g.Vector, want.Vector) {
			t.Errorf("%s: vector %v, want (up to scale) %v", want.ID, g.Vector, want.Vector)
		}
		for k, v := range want.Payload {
			if gv := g.Payload[k]; !reflect.DeepEqual(gv, v) {
				t.Errorf("%s: payload[%q] = %#v (%T), want %#v (%T)", want.ID, k, gv, gv, v, v)
			}
		}
	}
	// The stored payload is not the caller's map.
	p[pipeline.PayloadBrand] = "Changed"
	got, _ = s.Get(ctx, "c", []string{"item-1"})
	if len(got) != 1 || got[0].Payload[pipeline.PayloadBrand] != "Acme" {
		t.Errorf("stored payload changed with the caller's map: %v", got)
	}
}

func testOverwrite(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(3, 3))
	v1, v2 := randVec(r, dim), randVec(r, dim)
	pt := pipeline.Point{ID: "x", Vector: v1, Payload: pipeline.Payload{pipeline.PayloadBrand: "A"}}
	mustUpsert(t, s, "c", []pipeline.Point{pt})
	mustUpsert(t, s, "c", []pipeline.Point{pt}) // redelivery
	mustCount(t, s, "c", 1)
	mustUpsert(t, s, "c", []pipeline.Point{{ID: "x", Vector: v2, Payload: pipeline.Payload{pipeline.PayloadBrand: "B"}}})
	mustCount(t, s, "c", 1)
	got, err := s.Get(ctx, "c", []string{"x"})
	if err != nil || len(got) != 1 {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if !sameVector(got[0].Vector, v2) || got[0].Payload[pipeline.PayloadBrand] != "B" {
		t.Fatalf("after overwrite got %v, want vector %v brand B", got[0], v2)
	}
	hits := mustSearch(t, s, "c", pipeline.VectorQuery{Vector: v2, K: 5})
	if len(hits) != 1 || hits[0].ID != "x" || math.Abs(float64(hits[0].Score)-1) > scoreTol {
		t.Fatalf("search for the new vector = %+v, want x with score 1", hits)
	}
}

func testDelete(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(4, 4))
	var pts []pipeline.Point
	for i := range 5 {
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, dim)})
	}
	mustUpsert(t, s, "c", pts)
	if err := s.Delete(ctx, "c", []string{"p1", "p3", "never-existed"}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Delete(ctx, "c", []string{"p1"}); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if err := s.Delete(ctx, "c", nil); err != nil {
		t.Fatalf("Delete(nil): %v", err)
	}
	mustCount(t, s, "c", 3)
	got, err := s.Get(ctx, "c", []string{"p0", "p1", "p2", "p3", "p4"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var gotIDs []string
	for _, p := range got {
		gotIDs = append(gotIDs, p.ID)
	}
	sort.Strings(gotIDs)
	if want := []string{"p0", "p2", "p4"}; !reflect.DeepEqual(gotIDs, want) {
		t.Fatalf("Get after delete = %v, want %v", gotIDs, want)
	}
	hits := mustSearch(t, s, "c", pipeline.VectorQuery{Vector: pts[1].Vector, K: 10})
	for _, h := range hits {
		if h.ID == "p1" || h.ID == "p3" {
			t.Fatalf("search returned deleted %s", h.ID)
		}
	}
	if len(hits) != 3 {
		t.Fatalf("search returned %d hits, want 3", len(hits))
	}
	// Deleted then written again.
	mustUpsert(t, s, "c", pts[1:2])
	mustCount(t, s, "c", 4)
}

// exact ranks pts against q as a store should, best first.
func exact(pts []pipeline.Point, q []float32, keep func(pipeline.Point) bool) []pipeline.Hit {
	var out []pipeline.Hit
	for _, p := range pts {
		if keep == nil || keep(p) {
			out = append(out, pipeline.Hit{ID: p.ID, Score: float32(cosine(p.Vector, q))})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

// checkHits compares a store's hits with the exact ranking: same length,
// scores within tolerance, best first, and the same IDs except where scores
// tie within tolerance.
func checkHits(t *testing.T, what string, got, want []pipeline.Hit, k int) {
	t.Helper()
	if len(want) > k {
		want = want[:k]
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d hits %v, want %d %v", what, len(got), ids(got), len(want), ids(want))
	}
	for i := range got {
		if math.Abs(float64(got[i].Score-want[i].Score)) > scoreTol {
			t.Fatalf("%s: hit %d is %s score %.6f, want %s score %.6f", what, i, got[i].ID, got[i].Score, want[i].ID, want[i].Score)
		}
		if i > 0 && got[i].Score > got[i-1].Score+scoreTol/10 {
			t.Fatalf("%s: hits not best first at %d: %v", what, i, got)
		}
		if got[i].ID != want[i].ID && math.Abs(float64(got[i].Score-want[i].Score)) > 1e-6 {
			t.Fatalf("%s: hit %d is %s, want %s", what, i, got[i].ID, want[i].ID)
		}
	}
}

func testSearchExact(t *testing.T, s pipeline.VectorStore) {
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(5, 5))
	var pts []pipeline.Point
	for i := range 200 {
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, dim)})
	}
	mustUpsert(t, s, "c", pts[:100])
	mustUpsert(t, s, "c", pts[100:])
	for qi := range 20 {
		q := randVec(r, dim)
		k := 1 + qi%12
		checkHits(t, fmt.Sprintf("query %d k=%d", qi, k), mustSearch(t, s, "c", pipeline.VectorQuery{Vector: q, K: k}), exact(pts, q, nil), k)
	}
	// A stored vector finds itself first with score 1.
	hits := mustSearch(t, s, "c", pipeline.VectorQuery{Vector: pts[42].Vector, K: 1})
	if len(hits) != 1 || hits[0].ID != "p42" || math.Abs(float64(hits[0].Score)-1) > scoreTol {
		t.Fatalf("self search = %+v, want p42 with score 1", hits)
	}
}

func testSearchEmpty(t *testing.T, s pipeline.VectorStore) {
	mustEnsure(t, s, "c", dim)
	hits := mustSearch(t, s, "c", pipeline.VectorQuery{Vector: randVec(rand.New(rand.NewPCG(6, 6)), dim), K: 10})
	if len(hits) != 0 {
		t.Fatalf("search of an empty collection = %v", hits)
	}
	mustCount(t, s, "c", 0)
}

func testKLarger(t *testing.T, s pipeline.VectorStore) {
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(7, 7))
	var pts []pipeline.Point
	for i := range 6 {
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, dim),
			Payload: pipeline.Payload{pipeline.PayloadBrand: []string{"a", "b"}[i%2]}})
	}
	mustUpsert(t, s, "c", pts)
	q := randVec(r, dim)
	checkHits(t, "k=100", mustSearch(t, s, "c", pipeline.VectorQuery{Vector: q, K: 100}), exact(pts, q, nil), 100)
	f := pipeline.Filter{Brand: "a"}
	checkHits(t, "k=100 brand a", mustSearch(t, s, "c", pipeline.VectorQuery{Vector: q, K: 100, Filter: f}),
		exact(pts, q, func(p pipeline.Point) bool { return p.Payload[pipeline.PayloadBrand] == "a" }), 100)
}

func ptr[T any](v T) *T { return &v }

func testFilters(t *testing.T, s pipeline.VectorStore) {
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(8, 8))
	cats := [][]string{{"food"}, {"food", "drinks"}, {"food", "drinks", "tea"}, {"home", "kitchen"}, nil}
	brands := []string{"acme", "globex", "initech", ""}
	var pts []pipeline.Point
	for i := range 120 {
		p := pipeline.Payload{}
		if c := cats[i%len(cats)]; c != nil {
			p[pipeline.PayloadCategory] = c
		}
		if b := brands[i%len(brands)]; b != "" {
			p[pipeline.PayloadBrand] = b
		}
		switch {
		case i%7 == 0: // no price
		case i%5 == 0: // a whole price, as an int64 (the range filters take it)
			p[pipeline.PayloadPrice] = int64(i % 50)
		default:
			p[pipeline.PayloadPrice] = float64(i%50) + 0.5
		}
		if i%11 != 0 {
			p[pipeline.PayloadInStock] = i%3 != 0
		}
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, dim), Payload: p})
	}
	mustUpsert(t, s, "c", pts)
	has := func(p pipeline.Point, cat string) bool {
		c, _ := p.Payload[pipeline.PayloadCategory].([]string)
		for _, x := range c {
			if x == cat {
				return true
			}
		}
		return false
	}
	price := func(p pipeline.Point) (float64, bool) {
		switch v := p.Payload[pipeline.PayloadPrice].(type) {
		case float64:
			return v, true
		case int64:
			return float64(v), true
		}
		return 0, false
	}
	excluded := map[string]bool{}
	var exclude []string
	for i := 0; i < 120; i += 3 {
		exclude = append(exclude, fmt.Sprint("p", i))
		excluded[fmt.Sprint("p", i)] = true
	}
	exclude = append(exclude, "not-a-point")
	cases := []struct {
		name string
		f    pipeline.Filter
		keep func(pipeline.Point) bool
	}{
		{"category root", pipeline.Filter{Category: "food"}, func(p pipeline.Point) bool { return has(p, "food") }},
		{"category middle", pipeline.Filter{Category: "drinks"}, func(p pipeline.Point) bool { return has(p, "drinks") }},
		{"category leaf", pipeline.Filter{Category: "tea"}, func(p pipeline.Point) bool { return has(p, "tea") }},
		{"category none", pipeline.Filter{Category: "toys"}, func(p pipeline.Point) bool { return false }},
		{"brand", pipeline.Filter{Brand: "globex"}, func(p pipeline.Point) bool { return p.Payload[pipeline.PayloadBrand] == "globex" }},
		{"min price", pipeline.Filter{MinPrice: ptr(30.0)}, func(p pipeline.Point) bool { v, ok := price(p); return ok && v >= 30 }},
		{"max price", pipeline.Filter{MaxPrice: ptr(10.5)}, func(p pipeline.Point) bool { v, ok := price(p); return ok && v <= 10.5 }},
		{"price range", pipeline.Filter{MinPrice: ptr(10.0), MaxPrice: ptr(20.5)}, func(p pipeline.Point) bool {
			v, ok := price(p)
			return ok && v >= 10 && v <= 20.5
		}},
		{"price bounds inclusive", pipeline.Filter{MinPrice: ptr(15.0), MaxPrice: ptr(15.0)}, func(p pipeline.Point) bool {
			v, ok := price(p)
			return ok && v == 15
		}},
		{"in stock", pipeline.Filter{InStock: ptr(true)}, func(p pipeline.Point) bool { return p.Payload[pipeline.PayloadInStock] == true }},
		{"out of stock", pipeline.Filter{InStock: ptr(false)}, func(p pipeline.Point) bool { return p.Payload[pipeline.PayloadInStock] == false }},
		{"exclude ids", pipeline.Filter{ExcludeIDs: exclude}, func(p pipeline.Point) bool { return !excluded[p.ID] }},
		{"combined", pipeline.Filter{Category: "food", Brand: "acme", MaxPrice: ptr(40.0), InStock: ptr(true), ExcludeIDs: exclude},
			func(p pipeline.Point) bool {
				v, ok := price(p)
				return has(p, "food") && p.Payload[pipeline.PayloadBrand] == "acme" && ok && v <= 40 &&
					p.Payload[pipeline.PayloadInStock] == true && !excluded[p.ID]
			}},
		{"category and price", pipeline.Filter{Category: "drinks", MinPrice: ptr(5.0)}, func(p pipeline.Point) bool {
			v, ok := price(p)
			return has(p, "drinks") && ok && v >= 5
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for qi := range 3 {
				q := randVec(r, dim)
				for _, k := range []int{1, 5, 200} {
					got := mustSearch(t, s, "c", pipeline.VectorQuery{Vector: q, K: k, Filter: tc.f})
					checkHits(t, fmt.Sprintf("query %d k=%d", qi, k), got, exact(pts, q, tc.keep), k)
				}
			}
		})
	}
}

// testDimension: an Upsert that fails with ErrDimension writes none of its
// points, wherever the bad vector is and however the store batches (Qdrant
// writes part of a batch that holds a bad vector; a store must not let that
// through).
func testDimension(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(9, 9))
	batch := func(n, badAt, badLen int) []pipeline.Point {
		pts := make([]pipeline.Point, n)
		for i := range pts {
			pts[i] = pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, dim)}
		}
		if badAt >= 0 {
			pts[badAt] = pipeline.Point{ID: "bad", Vector: randVec(r, badLen)}
		}
		return pts
	}
	all := func(n, badLen int) []pipeline.Point {
		pts := make([]pipeline.Point, n)
		for i := range pts {
			pts[i] = pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, badLen)}
		}
		return pts
	}
	cases := []struct {
		name string
		pts  []pipeline.Point
	}{
		{"good then longer", batch(2, 1, dim+1)},
		{"shorter first", batch(2, 0, dim-1)},
		{"longer in the middle of many", batch(25, 12, dim+1)},
		{"longer last of many", batch(25, 24, dim+1)},
		{"empty vector", batch(3, 1, 0)},
		{"all longer", all(25, dim+1)},
		{"all shorter", all(3, dim-1)},
	}
	for _, tc := range cases {
		if err := s.Upsert(ctx, "c", tc.pts); !errors.Is(err, pipeline.ErrDimension) {
			t.Fatalf("%s: Upsert = %v, want ErrDimension", tc.name, err)
		}
		if n, err := s.Count(ctx, "c"); err != nil || n != 0 {
			t.Fatalf("%s: Count after a rejected Upsert = %d, %v; want 0 (nothing written)", tc.name, n, err)
		}
	}
	if _, err := s.Search(ctx, "c", pipeline.VectorQuery{Vector: randVec(r, dim-1), K: 3}); !errors.Is(err, pipeline.ErrDimension) {
		t.Fatalf("Search with a wrong-length vector = %v, want ErrDimension", err)
	}
	if got, err := s.Get(ctx, "c", []string{"bad", "p0"}); err != nil || len(got) != 0 {
		t.Fatalf("Get(bad, p0) = %v, %v; want nothing", got, err)
	}
}

// testZeroVector: a zero vector is stored, comes back as zeros, and has
// cosine 0 with every vector; a zero query scores every point 0.
func testZeroVector(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(14, 14))
	a, b := randVec(r, dim), randVec(r, dim)
	mustUpsert(t, s, "c", []pipeline.Point{{ID: "zero", Vector: make([]float32, dim)}, {ID: "a", Vector: a}, {ID: "b", Vector: b}})
	mustCount(t, s, "c", 3)
	got, err := s.Get(ctx, "c", []string{"zero"})
	if err != nil || len(got) != 1 || len(got[0].Vector) != dim {
		t.Fatalf("Get(zero) = %v, %v; want one point of %d zeros", got, err, dim)
	}
	for _, x := range got[0].Vector {
		if math.Abs(float64(x)) > 1e-6 {
			t.Fatalf("Get(zero) vector = %v, want zeros", got[0].Vector)
		}
	}
	pts := []pipeline.Point{{ID: "zero", Vector: make([]float32, dim)}, {ID: "a", Vector: a}, {ID: "b", Vector: b}}
	checkHits(t, "query a", mustSearch(t, s, "c", pipeline.VectorQuery{Vector: a, K: 3}), exact(pts, a, nil), 3)
	hits := mustSearch(t, s, "c", pipeline.VectorQuery{Vector: make([]float32, dim), K: 3})
	if len(hits) != 3 {
		t.Fatalf("zero query = %v, want all 3 points", hits)
	}
	for _, h := range hits {
		if math.Abs(float64(h.Score)) > scoreTol {
			t.Fatalf("zero query = %+v, want every score 0", hits)
		}
	}
}

func testUnknown(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(10, 10))
	v := randVec(r, dim)
	checks := []struct {
		name string
		err  error
	}{
		{"Upsert", s.Upsert(ctx, "nope", []pipeline.Point{{ID: "a", Vector: v}})},
		{"Delete", s.Delete(ctx, "nope", []string{"a"})},
		{"Get", second(s.Get(ctx, "nope", []string{"a"}))},
		{"Search", second(s.Search(ctx, "nope", pipeline.VectorQuery{Vector: v, K: 1}))},
		{"Count", second(s.Count(ctx, "nope"))},
		{"ResolveAlias", second(s.ResolveAlias(ctx, "nope"))},
		{"SetAlias", s.SetAlias(ctx, "alias", "nope")},
	}
	for _, c := range checks {
		if !errors.Is(c.err, pipeline.ErrNoCollection) {
			t.Errorf("%s on an unknown collection = %v, want ErrNoCollection", c.name, c.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func testAliases(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "items_v1", dim)
	mustEnsure(t, s, "items_v2", dim)
	r := rand.New(rand.NewPCG(11, 11))
	v1, v2 := randVec(r, dim), randVec(r, dim)
	mustUpsert(t, s, "items_v1", []pipeline.Point{{ID: "old", Vector: v1}})
	if err := s.SetAlias(ctx, "items", "items_v1"); err != nil {
		t.Fatalf("SetAlias: %v", err)
	}
	if got, err := s.ResolveAlias(ctx, "items"); err != nil || got != "items_v1" {
		t.Fatalf("ResolveAlias = %q, %v; want items_v1", got, err)
	}
	// Writes and reads go through the alias.
	mustUpsert(t, s, "items", []pipeline.Point{{ID: "via-alias", Vector: v2}})
	mustCount(t, s, "items_v1", 2)
	mustCount(t, s, "items", 2)
	if got, err := s.Get(ctx, "items", []string{"via-alias"}); err != nil || len(got) != 1 {
		t.Fatalf("Get through alias = %v, %v", got, err)
	}
	if hits := mustSearch(t, s, "items", pipeline.VectorQuery{Vector: v2, K: 1}); len(hits) != 1 || hits[0].ID != "via-alias" {
		t.Fatalf("Search through alias = %v", hits)
	}
	// Re-point the alias.
	mustUpsert(t, s, "items_v2", []pipeline.Point{{ID: "new", Vector: v1}})
	if err := s.SetAlias(ctx, "items", "items_v2"); err != nil {
		t.Fatalf("SetAlias again: %v", err)
	}
	if got, err := s.ResolveAlias(ctx, "items"); err != nil || got != "items_v2" {
		t.Fatalf("ResolveAlias after re-point = %q, %v; want items_v2", got, err)
	}
	mustCount(t, s, "items", 1)
	if hits := mustSearch(t, s, "items", pipeline.VectorQuery{Vector: v1, K: 5}); len(hits) != 1 || hits[0].ID != "new" {
		t.Fatalf("Search after re-point = %v, want [new]", hits)
	}
	if err := s.Delete(ctx, "items", []string{"new"}); err != nil {
		t.Fatalf("Delete through alias: %v", err)
	}
	mustCount(t, s, "items_v2", 0)
	mustCount(t, s, "items_v1", 2)
}

// testAliasMoves: readers going through an alias while it is created,
// moved back and forth and dropped with its collection see the whole of one
// collection or the other (Search, Get and Count alike), or no collection
// before the alias exists and once the drop has begun, never a mix or any
// other error.
func testAliasMoves(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "v1", dim)
	mustEnsure(t, s, "v2", dim)
	r := rand.New(rand.NewPCG(15, 15))
	q := randVec(r, dim)
	mustUpsert(t, s, "v1", []pipeline.Point{{ID: "a1", Vector: randVec(r, dim)}, {ID: "a2", Vector: randVec(r, dim)}})
	mustUpsert(t, s, "v2", []pipeline.Point{{ID: "b1", Vector: randVec(r, dim)}})

	const (
		absent  = iota // the alias does not exist yet
		present        // it points at v1 or v2
		gone           // its collection is being dropped
	)
	var phase atomic.Int32
	// check validates one read's outcome: ids are what it saw (sorted), or
	// err; during phase present only a whole collection is valid.
	check := func(what string, from int32, ids []string, err error) error {
		to := phase.Load()
		if errors.Is(err, pipeline.ErrNoCollection) && (from == absent || to == gone) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s through the alias (phase %d..%d): %w", what, from, to, err)
		}
		if !reflect.DeepEqual(ids, []string{"a1", "a2"}) && !reflect.DeepEqual(ids, []string{"b1"}) {
			return fmt.Errorf("%s through the alias saw %v, want [a1 a2] or [b1]", what, ids)
		}
		return nil
	}
	var reads [3]atomic.Int64 // reads done in phase present, per reader
	readers := []func() error{
		func() error {
			from := phase.Load()
			hits, err := s.Search(ctx, "al", pipeline.VectorQuery{Vector: q, K: 5})
			got := ids(hits)
			sort.Strings(got)
			return check("Search", from, got, err)
		},
		func() error {
			from := phase.Load()
			pts, err := s.Get(ctx, "al", []string{"a1", "a2", "b1"})
			var got []string
			for _, p := range pts {
				got = append(got, p.ID)
			}
			sort.Strings(got)
			return check("Get", from, got, err)
		},
		func() error {
			from := phase.Load()
			n, err := s.Count(ctx, "al")
			got := map[int][]string{2: {"a1", "a2"}, 1: {"b1"}}[n]
			if got == nil {
				got = []string{fmt.Sprint(n, " points")}
			}
			return check("Count", from, got, err)
		},
	}
	stop := make(chan struct{})
	errs := make(chan error, len(readers))
	var wg sync.WaitGroup
	for i, read := range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				if err := read(); err != nil {
					errs <- err
					return
				}
				if p == present {
					reads[i].Add(1)
				}
			}
		})
	}
	fail := func(format string, args ...any) {
		close(stop)
		wg.Wait()
		t.Fatalf(format, args...)
	}
	if err := s.SetAlias(ctx, "al", "v1"); err != nil {
		fail("SetAlias (create): %v", err)
	}
	phase.Store(present)
	// Move the alias at least 20 times, and until every reader has read
	// through it a few times meanwhile.
	enough := func() bool {
		for i := range readers {
			if reads[i].Load() < 5 {
				return false
			}
		}
		return true
	}
	moves := 0
	for ; moves < 20 || !enough(); moves++ {
		if moves == 5000 {
			fail("readers made no progress in %d alias moves", moves)
		}
		if len(errs) > 0 {
			break
		}
		if err := s.SetAlias(ctx, "al", []string{"v2", "v1"}[moves%2]); err != nil {
			fail("SetAlias (move %d): %v", moves, err)
		}
	}
	target, err := s.ResolveAlias(ctx, "al")
	if err != nil {
		fail("ResolveAlias: %v", err)
	}
	phase.Store(gone)
	if err := s.DropCollection(ctx, target); err != nil {
		fail("DropCollection(%s): %v", target, err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := s.Count(ctx, "al"); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Fatalf("Count through the alias of a dropped collection = %v, want ErrNoCollection", err)
	}
	t.Logf("%d alias moves; reads while present: Search %d, Get %d, Count %d", moves, reads[0].Load(), reads[1].Load(), reads[2].Load())
}

func testDrop(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "gone", dim)
	mustEnsure(t, s, "kept", dim)
	r := rand.New(rand.NewPCG(12, 12))
	mustUpsert(t, s, "gone", []pipeline.Point{{ID: "a", Vector: randVec(r, dim)}})
	mustUpsert(t, s, "kept", []pipeline.Point{{ID: "b", Vector: randVec(r, dim)}})
	if err := s.SetAlias(ctx, "al", "gone"); err != nil {
		t.Fatalf("SetAlias: %v", err)
	}
	if err := s.DropCollection(ctx, "gone"); err != nil {
		t.Fatalf("DropCollection: %v", err)
	}
	if _, err := s.Count(ctx, "gone"); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Fatalf("Count after drop = %v, want ErrNoCollection", err)
	}
	if _, err := s.Search(ctx, "al", pipeline.VectorQuery{Vector: randVec(r, dim), K: 1}); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Fatalf("Search through the alias of a dropped collection = %v, want ErrNoCollection", err)
	}
	if _, err := s.ResolveAlias(ctx, "al"); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Fatalf("ResolveAlias of a dropped collection's alias = %v, want ErrNoCollection", err)
	}
	mustCount(t, s, "kept", 1)
	// The name can be created again, empty.
	mustEnsure(t, s, "gone", dim+2)
	mustCount(t, s, "gone", 0)
}

func testCount(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	r := rand.New(rand.NewPCG(13, 13))
	mustCount(t, s, "c", 0)
	var pts []pipeline.Point
	for i := range 50 {
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("p", i), Vector: randVec(r, dim)})
	}
	mustUpsert(t, s, "c", pts)
	mustUpsert(t, s, "c", pts[:10])
	mustCount(t, s, "c", 50)
	if err := s.Delete(ctx, "c", []string{"p0", "p1", "zzz"}); err != nil {
		t.Fatal(err)
	}
	mustCount(t, s, "c", 48)
}

func testConcurrent(t *testing.T, s pipeline.VectorStore) {
	ctx := context.Background()
	mustEnsure(t, s, "c", dim)
	const writers, batches, batch = 8, 10, 10
	var wg sync.WaitGroup
	errs := make(chan error, 4*writers)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for b := range batches {
				pts := make([]pipeline.Point, batch)
				for i := range pts {
					pts[i] = pipeline.Point{ID: fmt.Sprintf("w%d-%d", w, b*batch+i), Vector: randVec(r, dim),
						Payload: pipeline.Payload{pipeline.PayloadBrand: fmt.Sprint("b", w)}}
				}
				if err := s.Upsert(ctx, "c", pts); err != nil {
					errs <- err
					return
				}
				// Read your writes.
				got, err := s.Get(ctx, "c", []string{pts[0].ID})
				if err != nil || len(got) != 1 {
					errs <- fmt.Errorf("Get after Upsert = %v, %v", got, err)
					return
				}
			}
		})
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range batches * 2 {
				f := pipeline.Filter{}
				if r.IntN(2) == 0 {
					f.Brand = fmt.Sprint("b", r.IntN(writers))
				}
				hits, err := s.Search(ctx, "c", pipeline.VectorQuery{Vector: randVec(r, dim), K: 5, Filter: f})
				if err != nil {
					errs <- err
					return
				}
				for i := 1; i < len(hits); i++ {
					if hits[i].Score > hits[i-1].Score+scoreTol/10 {
						errs <- fmt.Errorf("hits not best first: %v", hits)
						return
					}
				}
				if _, err := s.Count(ctx, "c"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mustCount(t, s, "c", writers*batches*batch)
}
