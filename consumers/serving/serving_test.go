package serving

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

func TestForUser(t *testing.T) {
	f := newFixture(t, nil)
	f.profile("u1", []pipeline.Touch{
		{ItemID: "p1", Type: schemas.EventView, At: time.Now()},
		{ItemID: "c1", Type: schemas.EventClick, At: time.Now().Add(-time.Minute)},
		{ItemID: "p1", Type: schemas.EventAddToCart, At: time.Now().Add(-2 * time.Minute)},
	}, "l1")
	reply := f.srv.Handle(context.Background(), schemas.RecoRequest{
		RequestID: "r1", Kind: schemas.KindForUser, UserID: "u1", K: len(catalogItems), Exclude: []string{"p2"},
	})
	if reply.Error != "" || reply.Fallback || reply.RequestID != "r1" || reply.ModelVersion != collName {
		t.Fatalf("reply = %+v, want a personal reply to r1 from %s", reply, collName)
	}
	got := ids(reply.Items)
	// Every item but the recent (p1, c1), purchased (l1) and listed (p2).
	if want := len(catalogItems) - 4; len(got) != want {
		t.Errorf("got %d items %v, want %d", len(got), got, want)
	}
	for _, id := range []string{"p1", "c1", "l1", "p2"} {
		if slices.Contains(got, id) {
			t.Errorf("excluded item %s served: %v", id, got)
		}
	}
	reasons := map[string]string{}
	for _, it := range reply.Items {
		reasons[it.ItemID] = it.Reason
	}
	for id, want := range map[string]string{
		"p3": "similar to Acme Phone X, which you viewed",
		"c2": "similar to Brew Coffee Grinder, which you clicked",
		"c4": "similar to Brew Coffee Grinder, which you clicked",
	} {
		if reasons[id] != want {
			t.Errorf("reason of %s = %q, want %q", id, reasons[id], want)
		}
	}
	// The most similar items to the profile lead.
	if top := got[:2]; !slices.Contains(top, "p3") {
		t.Errorf("top 2 %v should hold p3, the phone next to the one viewed", top)
	}
}

// TestForUserCoOccurrence: items other users chose with the user's items
// lead for_user however far their text is (the knife, for a phone), with a
// reason naming the user's item, unless the weight is 0; filters and
// exclusions hold for them; items nobody chose with the user's still come
// from the profile vector; a user the profiles do not know yet but the
// tracker does gets co-occurrence, not popularity.
func TestForUserCoOccurrence(t *testing.T) {
	observe := func(f *fixture) {
		for _, u := range []string{"a", "b", "c"} {
			f.co.Observe(u, "p1")
			f.co.Observe(u, "k1")
		}
		f.co.Observe("d", "c1")
		f.co.Observe("d", "c3")
		f.co.Observe("u1", "p1")
		f.co.Observe("fresh", "p1")
		f.profile("u1", []pipeline.Touch{{ItemID: "p1", Type: schemas.EventClick, At: time.Now()}})
	}
	ask := func(f *fixture, req schemas.RecoRequest) schemas.RecoReply {
		t.Helper()
		req.RequestID, req.Kind = "r", schemas.KindForUser
		reply := f.srv.Handle(context.Background(), req)
		if reply.Error != "" {
			t.Fatalf("error reply %q", reply.Error)
		}
		return reply
	}

	f := newFixture(t, nil)
	observe(f)
	reply := ask(f, schemas.RecoRequest{UserID: "u1", K: len(catalogItems)})
	got := ids(reply.Items)
	if len(got) == 0 || got[0] != "k1" || reply.Fallback {
		t.Fatalf("for_user u1 = %v (fallback %v), want k1 first", got, reply.Fallback)
	}
	if want := "often chosen with Acme Phone X, which you clicked"; reply.Items[0].Reason != want {
		t.Errorf("reason of k1 = %q, want %q", reply.Items[0].Reason, want)
	}
	// p3 co-occurs with nothing: the profile vector still brings it.
	if !slices.Contains(got, "p3") || slices.Contains(got, "p1") {
		t.Errorf("for_user u1 = %v, want p3 (content) and not p1 (touched)", got)
	}
	if got := ids(ask(f, schemas.RecoRequest{UserID: "u1", K: 3, Filters: schemas.Filters{Category: "phones"}}).Items); slices.Contains(got, "k1") || len(got) == 0 {
		t.Errorf("phones only: %v", got)
	}
	if got := ids(ask(f, schemas.RecoRequest{UserID: "u1", K: 3, Exclude: []string{"k1"}}).Items); slices.Contains(got, "k1") || len(got) == 0 {
		t.Errorf("k1 excluded: %v", got)
	}
	fresh := ask(f, schemas.RecoRequest{UserID: "fresh", K: 3})
	if got := ids(fresh.Items); fresh.Fallback || !slices.Equal(got, []string{"k1"}) {
		t.Errorf("user known only to co-occurrence: %v (fallback %v), want [k1] from co-occurrence", got, fresh.Fallback)
	}
	// The filters refuse k1, and fresh has no profile vector: popularity.
	fresh = ask(f, schemas.RecoRequest{UserID: "fresh", K: 3, Filters: schemas.Filters{Category: "phones"}})
	if got := ids(fresh.Items); !fresh.Fallback || len(got) == 0 || slices.Contains(got, "p1") {
		t.Errorf("co-occurrence refused by the filters: %v (fallback %v), want popular phones but p1", got, fresh.Fallback)
	}

	// v touched p1, then c1 three times: the profile's recent touches (3
	// here) lost p1, the co-occurrence window did not. p1 is not served,
	// and k1's reason cannot say how v touched p1.
	f.co.Observe("v", "p1")
	f.co.Observe("v", "c1")
	now := time.Now()
	f.profile("v", []pipeline.Touch{
		{ItemID: "c1", Type: schemas.EventAddToCart, At: now},
		{ItemID: "c1", Type: schemas.EventClick, At: now.Add(-time.Second)},
		{ItemID: "c1", Type: schemas.EventView, At: now.Add(-2 * time.Second)},
	})
	reply = ask(f, schemas.RecoRequest{UserID: "v", K: len(catalogItems)})
	if got := ids(reply.Items); slices.Contains(got, "p1") || !slices.Contains(got, "k1") {
		t.Errorf("for_user v = %v, want k1 and not p1 (in the window)", got)
	}
	for _, it := range reply.Items {
		if it.ItemID == "k1" && it.Reason != "often chosen with Acme Phone X" {
			t.Errorf("reason of k1 = %q, want %q", it.Reason, "often chosen with Acme Phone X")
		}
	}

	f = newFixture(t, func(c *Config) { c.CollaborativeWeight = 0 })
	observe(f)
	if got := ids(ask(f, schemas.RecoRequest{UserID: "u1", K: 3}).Items); slices.Contains(got, "k1") {
		t.Errorf("weight 0: %v, want the profile vector's phones, not k1", got)
	}
}

func TestForUserReasonVerbs(t *testing.T) {
	for _, tc := range []struct {
		typ  schemas.EventType
		verb string
	}{
		{schemas.EventView, "viewed"},
		{schemas.EventClick, "clicked"},
		{schemas.EventAddToCart, "added to cart"},
		{schemas.EventPurchase, "bought"},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MMRLambda = 1 })
			f.profile("u", []pipeline.Touch{{ItemID: "c3", Type: tc.typ}})
			reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindForUser, UserID: "u", K: 1})
			if len(reply.Items) != 1 {
				t.Fatalf("reply = %+v", reply)
			}
			if want := "similar to Brew Espresso Machine, which you " + tc.verb; reply.Items[0].Reason != want {
				t.Errorf("reason = %q, want %q", reply.Items[0].Reason, want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	f := newFixture(t, nil)
	f.profile("warm", []pipeline.Touch{{ItemID: "c1", Type: schemas.EventView}}, "p4")
	f.profiles.m["novector"] = pipeline.Profile{UserID: "novector", Purchased: []string{"p4"}}
	for _, tc := range []struct {
		name    string
		filters schemas.Filters
	}{
		{"none", schemas.Filters{}},
		{"category root", schemas.Filters{Category: "kitchen"}},
		{"category leaf", schemas.Filters{Category: "coffee"}},
		{"brand", schemas.Filters{Brand: "zeta"}},
		{"price range", schemas.Filters{MinPrice: ptr(20.0), MaxPrice: ptr(700.0)}},
		{"in stock", schemas.Filters{InStock: ptr(true)}},
		{"out of stock", schemas.Filters{InStock: ptr(false)}},
		{"combined", schemas.Filters{Category: "electronics", Brand: "acme", MaxPrice: ptr(900.0), InStock: ptr(true)}},
		{"nothing matches", schemas.Filters{Brand: "nobody"}},
	} {
		for _, kind := range []struct {
			name     string
			req      schemas.RecoRequest
			excluded []string
			fallback bool
		}{
			{"for_user", schemas.RecoRequest{Kind: schemas.KindForUser, UserID: "warm"}, []string{"c1", "p4", "k1"}, false},
			{"cold", schemas.RecoRequest{Kind: schemas.KindForUser, UserID: "stranger"}, []string{"k1"}, true},
			{"no vector", schemas.RecoRequest{Kind: schemas.KindForUser, UserID: "novector"}, []string{"p4", "k1"}, true},
			{"similar_items", schemas.RecoRequest{Kind: schemas.KindSimilarItems, ItemID: "c1"}, []string{"c1", "k1"}, false},
			{"search", schemas.RecoRequest{Kind: schemas.KindSearch, Query: "coffee phone"}, []string{"k1"}, false},
		} {
			t.Run(tc.name+"/"+kind.name, func(t *testing.T) {
				req := kind.req
				req.RequestID, req.K, req.Filters, req.Exclude = "r", len(catalogItems), tc.filters, []string{"k1"}
				reply := f.srv.Handle(context.Background(), req)
				if reply.Error != "" || reply.Fallback != kind.fallback {
					t.Fatalf("reply = %+v, want fallback %v", reply, kind.fallback)
				}
				var want []string
				for _, it := range catalogItems {
					if !slices.Contains(kind.excluded, it.id) && it.matches(tc.filters) {
						want = append(want, it.id)
					}
				}
				got := ids(reply.Items)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("items %v, want %v", got, want)
				}
			})
		}
	}
}

func TestColdStart(t *testing.T) {
	f := newFixture(t, nil)
	f.profiles.m["bought"] = pipeline.Profile{UserID: "bought", Purchased: []string{"c2"}}
	for _, tc := range []struct {
		name    string
		user    string
		filters schemas.Filters
		k       int
		want    []string
		reason  string
	}{
		// "gone" is popular but not in the catalog any more.
		{"whole catalog", "stranger", schemas.Filters{}, 4, []string{"c2", "p4", "c1", "p1"}, "popular right now"},
		{"category", "stranger", schemas.Filters{Category: "coffee"}, 3, []string{"c2", "c1", "c4"}, "popular in coffee"},
		{"other filters from payloads", "stranger", schemas.Filters{Brand: "acme", InStock: ptr(true)}, 2, []string{"p1", "p2"}, "popular right now"},
		{"purchases excluded", "bought", schemas.Filters{Category: "coffee"}, 2, []string{"c1", "c4"}, "popular in coffee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(f.srv.metrics.fallback)
			reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindForUser, UserID: tc.user, K: tc.k, Filters: tc.filters})
			if reply.Error != "" || !reply.Fallback {
				t.Fatalf("reply = %+v, want a fallback", reply)
			}
			if got := ids(reply.Items); !slices.Equal(got, tc.want) {
				t.Errorf("items %v, want %v (popularity order)", got, tc.want)
			}
			for _, it := range reply.Items {
				if it.Reason != tc.reason {
					t.Errorf("reason of %s = %q, want %q", it.ItemID, it.Reason, tc.reason)
				}
			}
			if d := testutil.ToFloat64(f.srv.metrics.fallback) - before; d != 1 {
				t.Errorf("streamrec_serving_fallback_total grew by %v, want 1", d)
			}
		})
	}
}

func TestSimilarItems(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MMRLambda = 1 })
	reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSimilarItems, ItemID: "p1", K: 3, Exclude: []string{"p3"}})
	if reply.Error != "" || reply.Fallback || reply.ModelVersion != collName {
		t.Fatalf("reply = %+v", reply)
	}
	if got, want := ids(reply.Items), []string{"p2", "l1"}; !slices.Equal(got[:2], want) {
		t.Errorf("items %v, want %v first", got, want)
	}
	for i, it := range reply.Items {
		if it.ItemID == "p1" || it.ItemID == "p3" {
			t.Errorf("item %s served: itself or excluded", it.ItemID)
		}
		if it.Reason != "similar to Acme Phone X" {
			t.Errorf("reason = %q", it.Reason)
		}
		if i > 0 && it.Score > reply.Items[i-1].Score {
			t.Errorf("scores not descending without MMR: %+v", reply.Items)
		}
	}

	unknown := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r2", Kind: schemas.KindSimilarItems, ItemID: "nope", K: 3})
	if unknown.Error != "unknown item nope" || len(unknown.Items) != 0 || unknown.RequestID != "r2" {
		t.Errorf("reply = %+v, want the error reply \"unknown item nope\"", unknown)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t, nil)
	reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSearch, Query: "coffee grinder", K: 3})
	if reply.Error != "" || reply.Fallback || reply.ModelVersion != collName {
		t.Fatalf("reply = %+v", reply)
	}
	if len(reply.Items) != 3 || reply.Items[0].ItemID != "c1" {
		t.Errorf("items %v, want c1 (Brew Coffee Grinder) first", ids(reply.Items))
	}
	for _, it := range reply.Items {
		if it.Reason != `matches "coffee grinder"` {
			t.Errorf("reason = %q", it.Reason)
		}
	}

	f.srv.deps.Embedder = nil
	if r := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSearch, Query: "x", K: 3}); r.Error != ErrNoSearch.Error() {
		t.Errorf("without an embedder: reply %+v", r)
	}
}

func TestMMRChangesOrder(t *testing.T) {
	req := schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSimilarItems, ItemID: "p1", K: 4}
	variants := []string{"p2", "p3"} // Acme Phone X Plus and Mini: near-duplicates
	plain := newFixture(t, func(c *Config) { c.MMRLambda = 1 }).srv.Handle(context.Background(), req)
	diverse := newFixture(t, func(c *Config) { c.MMRLambda = 0.3 }).srv.Handle(context.Background(), req)
	p, d := ids(plain.Items), ids(diverse.Items)
	if len(p) != 4 || len(d) != 4 {
		t.Fatalf("plain %v, diverse %v", p, d)
	}
	if !slices.Contains(variants, p[0]) || !slices.Contains(variants, p[1]) {
		t.Errorf("lambda 1: %v, want both variants first (pure relevance)", p)
	}
	if !slices.Contains(variants, d[0]) || slices.Contains(variants, d[1]) {
		t.Errorf("lambda 0.3: %v, want one variant first and then something different", d)
	}
}

func TestMMR(t *testing.T) {
	// a and a2 are near-duplicates; b is less relevant but different.
	points := map[string]pipeline.Point{
		"a":  {ID: "a", Vector: normalise([]float32{1, 0.1, 0})},
		"a2": {ID: "a2", Vector: normalise([]float32{1, 0.12, 0})},
		"b":  {ID: "b", Vector: normalise([]float32{0.6, 0, 0.8})},
	}
	hits := []pipeline.Hit{{ID: "a", Score: 0.99}, {ID: "a2", Score: 0.98}, {ID: "b", Score: 0.6}, {ID: "deleted", Score: 0.5}}
	for _, tc := range []struct {
		lambda float64
		k      int
		want   []string
	}{
		{1, 3, []string{"a", "a2", "b"}},
		{0.5, 3, []string{"a", "b", "a2"}},
		{0.5, 1, []string{"a"}},
		{0, 2, []string{"a", "b"}}, // ties on relevance-free scores go to the better-ranked hit first
	} {
		var got []string
		for _, h := range mmr(hits, points, tc.k, tc.lambda) {
			got = append(got, h.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("lambda %v k %d: %v, want %v", tc.lambda, tc.k, got, tc.want)
		}
	}
}

func TestDeadline(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("passed", func(t *testing.T) {
		reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSearch, Query: "coffee", K: 3,
			Deadline: ptr(time.Now().Add(-time.Second))})
		if reply.Error != "deadline exceeded" || len(reply.Items) != 0 {
			t.Errorf("reply = %+v", reply)
		}
	})
	t.Run("passes while handling", func(t *testing.T) {
		f.profiles.fn = func(ctx context.Context, _ string) (pipeline.Profile, bool, error) {
			<-ctx.Done() // a profile store slower than the deadline
			return pipeline.Profile{}, false, ctx.Err()
		}
		defer func() { f.profiles.fn = nil }()
		reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindForUser, UserID: "u", K: 3,
			Deadline: ptr(time.Now().Add(20 * time.Millisecond))})
		if reply.Error != "deadline exceeded" || len(reply.Items) != 0 {
			t.Errorf("reply = %+v", reply)
		}
	})
	t.Run("default", func(t *testing.T) {
		g := newFixture(t, func(c *Config) { c.DefaultDeadline = time.Nanosecond })
		reply, _ := g.srv.serve(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSearch, Query: "coffee", K: 3}, collName, nil, time.Now().Add(-time.Second))
		if reply.Error != "deadline exceeded" {
			t.Errorf("a request older than the default deadline: reply %+v", reply)
		}
	})
}

func TestStoreErrorsAreErrorReplies(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.deps.ItemsAlias = "missing"
	reply := f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSearch, Query: "coffee", K: 3})
	if !strings.Contains(reply.Error, "items collection missing") || reply.RequestID != "r" {
		t.Errorf("reply = %+v", reply)
	}
	f.srv.deps.ItemsAlias = "items"
	f.profiles.fn = func(context.Context, string) (pipeline.Profile, bool, error) {
		return pipeline.Profile{}, false, errors.New("profiles down")
	}
	reply = f.srv.Handle(context.Background(), schemas.RecoRequest{RequestID: "r", Kind: schemas.KindForUser, UserID: "u", K: 3})
	if reply.Error != "profile of user u: profiles down" {
		t.Errorf("reply = %+v", reply)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"default", func(*Config) {}, ""},
		{"candidates", func(c *Config) { c.Candidates = 0 }, "serving.candidates must be >= 1"},
		{"lambda low", func(c *Config) { c.MMRLambda = -0.1 }, "serving.mmr_lambda must be within 0..1"},
		{"lambda high", func(c *Config) { c.MMRLambda = 1.1 }, "serving.mmr_lambda must be within 0..1"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "serving.concurrency must be >= 1"},
		{"deadline", func(c *Config) { c.DefaultDeadline = 0 }, "serving.default_deadline must be > 0"},
		{"reasons", func(c *Config) { c.ReasonsFrom = -1 }, "serving.reasons_from must be >= 0"},
		{"weight low", func(c *Config) { c.CollaborativeWeight = -0.1 }, "serving.collaborative_weight must be within 0..1"},
		{"weight high", func(c *Config) { c.CollaborativeWeight = 1.5 }, "serving.collaborative_weight must be within 0..1"},
		{"limits", func(c *Config) { c.Limits = schemas.Limits{} }, "limits.max_k must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate("serving")
			if got := ""; err != nil {
				got = err.Error()
				if got != tc.want {
					t.Errorf("error %q, want %q", got, tc.want)
				}
			} else if tc.want != "" {
				t.Errorf("no error, want %q", tc.want)
			}
		})
	}
}
