package serving

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/streamrec/streamrec/consumers/cooccur"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// serve answers req with the items of collection coll (collErr: it could
// not be resolved). start is when the request began: its record's
// timestamp, or when handling started; latency and the default deadline
// count from it. It counts the request in the metrics and returns the reply
// and its analytics row.
func (s *Server) serve(ctx context.Context, req schemas.RecoRequest, coll string, collErr error, start time.Time) (schemas.RecoReply, pipeline.ServedRecommendation) {
	deadline := start.Add(s.cfg.DefaultDeadline)
	if req.Deadline != nil {
		deadline = *req.Deadline
	}
	var (
		reply schemas.RecoReply
		err   error
	)
	switch {
	case !time.Now().Before(deadline):
		err = ErrDeadline
	case collErr != nil:
		err = collErr
	default:
		rctx, cancel := context.WithDeadline(ctx, deadline)
		reply, err = s.answer(rctx, req, coll)
		if errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			// Whatever came of it, the requester has stopped waiting.
			err = ErrDeadline
		}
		cancel()
		if err == nil && !time.Now().Before(deadline) {
			err = ErrDeadline
		}
	}
	if err != nil {
		reply = schemas.RecoReply{Error: clip(err.Error(), s.cfg.Limits.MaxTextLen)}
	}
	reply.RequestID = req.RequestID
	reply.ModelVersion = coll
	if reply.Items == nil {
		reply.Items = []schemas.ReplyItem{}
	}
	ready := time.Now()
	s.count(string(req.Kind), reply, ready.Sub(start))
	return reply, row(req, reply, ready.Sub(start), ready)
}

// count adds one reply of kind to the metrics.
func (s *Server) count(kind string, reply schemas.RecoReply, latency time.Duration) {
	result := resultOK
	if reply.Error != "" {
		result = resultError
	}
	s.metrics.requests.WithLabelValues(kind, result).Inc()
	s.metrics.latency.WithLabelValues(kind).Observe(latency.Seconds())
	if reply.Fallback {
		s.metrics.fallback.Inc()
	}
}

// row is the analytics row of a reply to req.
func row(req schemas.RecoRequest, reply schemas.RecoReply, latency time.Duration, servedAt time.Time) pipeline.ServedRecommendation {
	ids := make([]string, len(reply.Items))
	scores := make([]float32, len(reply.Items))
	for i, it := range reply.Items {
		ids[i], scores[i] = it.ItemID, float32(it.Score)
	}
	return pipeline.ServedRecommendation{
		RequestID:    reply.RequestID,
		Kind:         req.Kind,
		UserID:       req.UserID,
		ItemID:       req.ItemID,
		Query:        req.Query,
		Items:        ids,
		Scores:       scores,
		Latency:      latency,
		ModelVersion: reply.ModelVersion,
		Fallback:     reply.Fallback,
		Error:        reply.Error,
		ServedAt:     servedAt,
	}
}

// answer dispatches on the request's kind.
func (s *Server) answer(ctx context.Context, req schemas.RecoRequest, coll string) (schemas.RecoReply, error) {
	switch req.Kind {
	case schemas.KindForUser:
		return s.forUser(ctx, req, coll)
	case schemas.KindSimilarItems:
		return s.similarItems(ctx, req, coll)
	case schemas.KindSearch:
		return s.search(ctx, req, coll)
	}
	return schemas.RecoReply{}, fmt.Errorf("unknown kind %q", req.Kind) // the decoder lets none through
}

func (s *Server) forUser(ctx context.Context, req schemas.RecoRequest, coll string) (schemas.RecoReply, error) {
	prof, known, err := s.deps.Profiles.Profile(ctx, req.UserID)
	if err != nil {
		return schemas.RecoReply{}, fmt.Errorf("profile of user %s: %w", req.UserID, err)
	}
	exclude := slices.Clone(req.Exclude)
	for _, t := range prof.Recent {
		exclude = append(exclude, t.ItemID)
	}
	exclude = append(exclude, prof.Purchased...)
	var related []cooccur.Candidate
	if s.deps.CoOccurrence != nil && s.cfg.CollaborativeWeight > 0 {
		// The tracker's history holds the user's latest distinct items
		// (Recommend skips them itself); Recent counts touches (a view, click
		// and add_to_cart of one item take three), so the history holds
		// items Recent has lost, which the profile vector's search must
		// skip too.
		exclude = append(exclude, s.deps.CoOccurrence.History(req.UserID)...)
		excluded := make(map[string]bool, len(exclude))
		for _, id := range exclude {
			excluded[id] = true
		}
		related = s.deps.CoOccurrence.Recommend(req.UserID, s.candidateCount(req.K), func(id string) bool { return excluded[id] })
	}
	if (!known || len(prof.Vector) == 0) && len(related) == 0 {
		return s.popular(ctx, req, coll, exclude)
	}

	var hits []pipeline.Hit
	if len(prof.Vector) > 0 {
		if hits, err = s.candidates(ctx, coll, prof.Vector, req, exclude); err != nil {
			return schemas.RecoReply{}, err
		}
	}
	var (
		because map[string]string
		fetched map[string]pipeline.Point
	)
	if len(related) > 0 {
		if hits, because, fetched, err = s.blend(ctx, coll, req, prof.Vector, hits, related); err != nil {
			return schemas.RecoReply{}, err
		}
		if len(hits) == 0 {
			// The filters refused every co-occurring item, or the catalog
			// lost them, and there is no profile vector to search with.
			return s.popular(ctx, req, coll, exclude)
		}
	}
	touches := recentTouches(prof.Recent, s.cfg.ReasonsFrom)
	extra := make([]string, 0, len(touches)+len(because))
	for _, t := range touches {
		extra = append(extra, t.ItemID)
	}
	for _, b := range because {
		if !slices.Contains(extra, b) {
			extra = append(extra, b)
		}
	}
	picked, points, err := s.rank(ctx, coll, hits, req.K, extra, fetched)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	items := make([]schemas.ReplyItem, len(picked))
	for i, h := range picked {
		reason := touchReason(points[h.ID].Vector, touches, points)
		if b, ok := because[h.ID]; ok {
			if p, ok := points[b]; ok { // else deleted from the catalog since
				reason = "often chosen with " + title(p)
				if t, ok := touchType(prof, b); ok {
					reason += ", which you " + verb(t)
				}
			}
		}
		items[i] = schemas.ReplyItem{ItemID: h.ID, Score: float64(h.Score), Reason: clip(reason, s.cfg.Limits.MaxTextLen)}
	}
	return schemas.RecoReply{Items: items}, nil
}

// candidateCount is how many candidates a request for k items considers:
// k, or k*Candidates for the diversity re-rank.
func (s *Server) candidateCount(k int) int {
	if s.cfg.MMRLambda < 1 {
		return k * s.cfg.Candidates
	}
	return k
}

// blend merges the profile vector's hits with the co-occurrence candidates
// related (which skip the excluded items) into one list scored
// w·cf/max(cf) + (1-w)·cos/max(cos) (Config.CollaborativeWeight), best
// first, ties in the order of hits then related, cut to the
// candidateCount(k) best. A related item the store lacks or the request's
// filters refuse is dropped; its cosine to vec (nil: 0) is computed here.
// because maps each item whose score comes more from co-occurrence than
// from the profile vector to the user's item it co-occurs with most; the
// points are those it read (related items not among hits), for rank.
func (s *Server) blend(ctx context.Context, coll string, req schemas.RecoRequest, vec []float32, hits []pipeline.Hit, related []cooccur.Candidate) ([]pipeline.Hit, map[string]string, map[string]pipeline.Point, error) {
	type cand struct {
		id      string
		cos, cf float64
		because string
	}
	cands := make([]cand, 0, len(hits)+len(related))
	at := make(map[string]int, cap(cands))
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
		at[h.ID] = len(cands)
		cands = append(cands, cand{id: h.ID, cos: float64(h.Score)})
	}
	for i, c := range s.deps.CoOccurrence.Score(req.UserID, ids) {
		cands[i].cf, cands[i].because = c.Score, c.Because
	}
	var (
		fetch []string
		byID  map[string]pipeline.Point
	)
	for _, r := range related {
		if _, ok := at[r.ItemID]; !ok {
			fetch = append(fetch, r.ItemID)
		}
	}
	if len(fetch) > 0 {
		pts, err := s.deps.Store.Get(ctx, coll, fetch)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("get %d co-occurring items: %w", len(fetch), err)
		}
		byID = make(map[string]pipeline.Point, len(pts))
		for _, p := range pts {
			byID[p.ID] = p
		}
		for _, r := range related {
			p, ok := byID[r.ItemID]
			if _, dup := at[r.ItemID]; dup || !ok || !passes(p.Payload, req.Filters) {
				continue
			}
			var cos float64
			if len(vec) > 0 {
				cos = cosine(vec, p.Vector)
			}
			at[r.ItemID] = len(cands)
			cands = append(cands, cand{id: r.ItemID, cos: cos, cf: r.Score, because: r.Because})
		}
	}
	var maxCos, maxCF float64
	for _, c := range cands {
		maxCos, maxCF = max(maxCos, c.cos), max(maxCF, c.cf)
	}
	w := s.cfg.CollaborativeWeight
	out := make([]pipeline.Hit, len(cands))
	because := make(map[string]string)
	for i, c := range cands {
		var fromCF, fromCos float64
		if maxCF > 0 {
			fromCF = w * c.cf / maxCF
		}
		if maxCos > 0 && c.cos > 0 {
			fromCos = (1 - w) * c.cos / maxCos
		}
		out[i] = pipeline.Hit{ID: c.id, Score: float32(fromCF + fromCos)}
		if c.because != "" && fromCF > fromCos {
			because[c.id] = c.because
		}
	}
	slices.SortStableFunc(out, func(a, b pipeline.Hit) int { return cmp.Compare(b.Score, a.Score) })
	// The re-rank considers as many candidates as a search would give it.
	out = out[:min(len(out), s.candidateCount(req.K))]
	kept := make(map[string]string, len(out))
	for _, h := range out {
		if b, ok := because[h.ID]; ok {
			kept[h.ID] = b
		}
	}
	return out, kept, byID, nil
}

// touchType is the type of the user's newest touch of item that the
// profile remembers (a purchase when only Purchased holds it); false when
// it remembers none.
func touchType(prof pipeline.Profile, item string) (schemas.EventType, bool) {
	for _, t := range prof.Recent {
		if t.ItemID == item {
			return t.Type, true
		}
	}
	if slices.Contains(prof.Purchased, item) {
		return schemas.EventPurchase, true
	}
	return "", false
}

// recentTouches returns the first n touches with an item, each item once
// (its newest touch).
func recentTouches(recent []pipeline.Touch, n int) []pipeline.Touch {
	out := make([]pipeline.Touch, 0, min(n, len(recent)))
	seen := make(map[string]bool, cap(out))
	for _, t := range recent[:min(n, len(recent))] {
		if t.ItemID != "" && !seen[t.ItemID] {
			seen[t.ItemID] = true
			out = append(out, t)
		}
	}
	return out
}

// touchReason explains an item by the touch whose item vector is most
// similar to its vector v.
func touchReason(v []float32, touches []pipeline.Touch, points map[string]pipeline.Point) string {
	best, bestSim := -1, math.Inf(-1)
	for i, t := range touches {
		p, ok := points[t.ItemID]
		if !ok || len(v) == 0 || len(p.Vector) == 0 {
			continue
		}
		if sim := cosine(v, p.Vector); sim > bestSim {
			best, bestSim = i, sim
		}
	}
	if best < 0 {
		return "recommended for you"
	}
	t := touches[best]
	return "similar to " + title(points[t.ItemID]) + ", which you " + verb(t.Type)
}

func verb(t schemas.EventType) string {
	switch t {
	case schemas.EventClick:
		return "clicked"
	case schemas.EventAddToCart:
		return "added to cart"
	case schemas.EventPurchase:
		return "bought"
	}
	return "viewed"
}

// title is an item's title, or its id when it has none.
func title(p pipeline.Point) string {
	if t, _ := p.Payload[pipeline.PayloadTitle].(string); t != "" {
		return t
	}
	return p.ID
}

func (s *Server) similarItems(ctx context.Context, req schemas.RecoRequest, coll string) (schemas.RecoReply, error) {
	src, err := s.deps.Store.Get(ctx, coll, []string{req.ItemID})
	if err != nil {
		return schemas.RecoReply{}, fmt.Errorf("get item %s: %w", req.ItemID, err)
	}
	if len(src) == 0 {
		return schemas.RecoReply{}, fmt.Errorf("%w %s", ErrUnknownItem, req.ItemID)
	}
	exclude := append(slices.Clone(req.Exclude), req.ItemID)
	hits, err := s.candidates(ctx, coll, src[0].Vector, req, exclude)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	picked, _, err := s.rank(ctx, coll, hits, req.K, nil, nil)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	return schemas.RecoReply{Items: replyItems(picked, clip("similar to "+title(src[0]), s.cfg.Limits.MaxTextLen))}, nil
}

func (s *Server) search(ctx context.Context, req schemas.RecoRequest, coll string) (schemas.RecoReply, error) {
	if s.deps.Embedder == nil {
		return schemas.RecoReply{}, ErrNoSearch
	}
	vecs, err := s.deps.Embedder.Embed(ctx, pipeline.Query, []string{req.Query})
	if err != nil {
		return schemas.RecoReply{}, fmt.Errorf("embed query: %w", err)
	}
	hits, err := s.candidates(ctx, coll, vecs[0], req, req.Exclude)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	picked, _, err := s.rank(ctx, coll, hits, req.K, nil, nil)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	return schemas.RecoReply{Items: replyItems(picked, clip(`matches "`+req.Query+`"`, s.cfg.Limits.MaxTextLen))}, nil
}

func replyItems(hits []pipeline.Hit, reason string) []schemas.ReplyItem {
	items := make([]schemas.ReplyItem, len(hits))
	for i, h := range hits {
		items[i] = schemas.ReplyItem{ItemID: h.ID, Score: float64(h.Score), Reason: reason}
	}
	return items
}

// candidates searches the items nearest vec that pass the request's filters
// and are not excluded: k of them, or k*Candidates for the re-rank.
func (s *Server) candidates(ctx context.Context, coll string, vec []float32, req schemas.RecoRequest, exclude []string) ([]pipeline.Hit, error) {
	n := s.candidateCount(req.K)
	f := req.Filters
	hits, err := s.deps.Store.Search(ctx, coll, pipeline.VectorQuery{Vector: vec, K: n, Filter: pipeline.Filter{
		Category: f.Category, Brand: f.Brand, MinPrice: f.MinPrice, MaxPrice: f.MaxPrice, InStock: f.InStock,
		ExcludeIDs: exclude,
	}})
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", coll, err)
	}
	return hits, nil
}

// rank picks k of hits, re-ranked by MMR when the config asks for it, and
// returns them with the points (vectors and payloads) of the picked items
// and of extra, fetched in one Get when the re-rank or the caller needs
// them; the points of have (may be nil) are not fetched again.
func (s *Server) rank(ctx context.Context, coll string, hits []pipeline.Hit, k int, extra []string, have map[string]pipeline.Point) ([]pipeline.Hit, map[string]pipeline.Point, error) {
	if len(hits) == 0 {
		return nil, nil, nil
	}
	diversify := s.cfg.MMRLambda < 1 && len(hits) > 1
	var ids []string
	switch {
	case diversify:
		ids = make([]string, 0, len(hits)+len(extra))
		for _, h := range hits {
			ids = append(ids, h.ID)
		}
	case len(extra) > 0:
		for _, h := range hits[:min(k, len(hits))] {
			ids = append(ids, h.ID)
		}
	}
	if len(ids) == 0 {
		return hits[:min(k, len(hits))], nil, nil
	}
	ids = append(ids, extra...)
	points := make(map[string]pipeline.Point, len(ids))
	fetch := ids[:0]
	for _, id := range ids {
		if p, ok := have[id]; ok {
			points[id] = p
		} else {
			fetch = append(fetch, id)
		}
	}
	if len(fetch) > 0 {
		pts, err := s.deps.Store.Get(ctx, coll, fetch)
		if err != nil {
			return nil, nil, fmt.Errorf("get %d item vectors: %w", len(fetch), err)
		}
		for _, p := range pts {
			points[p.ID] = p
		}
	}
	if !diversify {
		return hits[:min(k, len(hits))], points, nil
	}
	return mmr(hits, points, k, s.cfg.MMRLambda), points, nil
}

// mmr picks up to k hits by maximal marginal relevance: each next pick
// maximises lambda*score - (1-lambda)*(its highest cosine similarity to an
// item already picked). Hits without a point in points (deleted since the
// search) are dropped; ties go to the better-ranked hit.
func mmr(hits []pipeline.Hit, points map[string]pipeline.Point, k int, lambda float64) []pipeline.Hit {
	type cand struct {
		hit    pipeline.Hit
		vec    []float32
		maxSim float64
	}
	cands := make([]cand, 0, len(hits))
	for _, h := range hits {
		if p, ok := points[h.ID]; ok && len(p.Vector) > 0 {
			// -1 is the least cosine similarity: with nothing picked every
			// candidate gets the same diversity term.
			cands = append(cands, cand{hit: h, vec: unit(p.Vector), maxSim: -1})
		}
	}
	picked := make([]pipeline.Hit, 0, min(k, len(cands)))
	for len(picked) < k && len(cands) > 0 {
		best, bestScore := 0, math.Inf(-1)
		for i, c := range cands {
			if score := lambda*float64(c.hit.Score) - (1-lambda)*c.maxSim; score > bestScore {
				best, bestScore = i, score
			}
		}
		p := cands[best]
		picked = append(picked, p.hit)
		cands = slices.Delete(cands, best, best+1)
		for i := range cands {
			cands[i].maxSim = max(cands[i].maxSim, dot(p.vec, cands[i].vec))
		}
	}
	return picked
}

// popular answers a cold user from popularity: the most popular items of
// the category filter that exist in the collection, pass the other filters
// (read from their payloads) and are not excluded. It asks Popularity for
// more items, up to a few times, while too few pass.
func (s *Server) popular(ctx context.Context, req schemas.RecoRequest, coll string, exclude []string) (schemas.RecoReply, error) {
	const rounds, growth, maxAsk = 4, 4, 1 << 16
	excluded := make(map[string]bool, len(exclude))
	for _, id := range exclude {
		excluded[id] = true
	}
	reason := "popular right now"
	if req.Filters.Category != "" {
		reason = "popular in " + req.Filters.Category
	}
	reason = clip(reason, s.cfg.Limits.MaxTextLen)

	items := make([]schemas.ReplyItem, 0, req.K)
	ask, checked := min((req.K+len(exclude))*s.cfg.Candidates, maxAsk), 0
	for round := 1; ; round++ {
		top := s.deps.Popularity.Top(req.Filters.Category, ask)
		var fresh []pipeline.Scored
		if len(top) > checked {
			fresh = top[checked:]
		}
		ids := make([]string, 0, len(fresh))
		for _, sc := range fresh {
			if !excluded[sc.ItemID] {
				ids = append(ids, sc.ItemID)
			}
		}
		if len(ids) > 0 {
			pts, err := s.deps.Store.Get(ctx, coll, ids)
			if err != nil {
				return schemas.RecoReply{}, fmt.Errorf("get %d popular items: %w", len(ids), err)
			}
			byID := make(map[string]pipeline.Payload, len(pts))
			for _, p := range pts {
				byID[p.ID] = p.Payload
			}
			for _, sc := range fresh {
				if p, ok := byID[sc.ItemID]; ok && !excluded[sc.ItemID] && passes(p, req.Filters) && len(items) < req.K {
					items = append(items, schemas.ReplyItem{ItemID: sc.ItemID, Score: sc.Score, Reason: reason})
					excluded[sc.ItemID] = true // Top should not repeat an item; be sure
				}
			}
		}
		checked = max(checked, len(top))
		if len(items) >= req.K || len(top) < ask || round == rounds || ask == maxAsk {
			break
		}
		ask = min(ask*growth, maxAsk)
	}
	return schemas.RecoReply{Items: items, Fallback: true}, nil
}

// passes reports whether an item's payload passes f, as a vector store's
// Filter would (pipeline.Filter's contract).
func passes(p pipeline.Payload, f schemas.Filters) bool {
	if f.Category != "" {
		cats, _ := p[pipeline.PayloadCategory].([]string)
		if !slices.Contains(cats, f.Category) {
			return false
		}
	}
	if f.Brand != "" {
		if b, _ := p[pipeline.PayloadBrand].(string); b != f.Brand {
			return false
		}
	}
	if f.MinPrice != nil || f.MaxPrice != nil {
		var price float64
		switch v := p[pipeline.PayloadPrice].(type) {
		case float64:
			price = v
		case int64:
			price = float64(v)
		default:
			return false
		}
		if f.MinPrice != nil && price < *f.MinPrice || f.MaxPrice != nil && price > *f.MaxPrice {
			return false
		}
	}
	if f.InStock != nil {
		if in, ok := p[pipeline.PayloadInStock].(bool); !ok || in != *f.InStock {
			return false
		}
	}
	return true
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range min(len(a), len(b)) {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// unit returns v scaled to unit length (v itself when it is, or is zero).
func unit(v []float32) []float32 {
	n := math.Sqrt(dot(v, v))
	if n == 0 || math.Abs(n-1) < 1e-6 {
		return v
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

func cosine(a, b []float32) float64 {
	na, nb := math.Sqrt(dot(a, a)), math.Sqrt(dot(b, b))
	if na == 0 || nb == 0 {
		return 0
	}
	return dot(a, b) / (na * nb)
}

// clip cuts s to at most n bytes at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
