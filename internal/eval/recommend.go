package eval

import (
	"cmp"
	"math"
	"slices"

	"github.com/streamrec/streamrec/producers/movielens"
)

// Recommender returns up to k item ids for user, best first, none of them
// among the user's training items. A user it knows nothing about may get
// fewer than k items or none. The recommenders of this package are
// read-only once built and safe for concurrent use.
type Recommender func(user string, k int) []string

// interactions indexes training ratings: items and users get dense
// indexes, items in ascending id order so that ties break the same way on
// every run.
type interactions struct {
	items     []string         // index -> item id, sorted
	itemIndex map[string]int32 // item id -> index
	users     map[string][]int32
	// positive holds, per user, the items rated at least the threshold
	// given to newInteractions (nil when no threshold).
	positive map[string][]int32
}

func newInteractions(train []movielens.Rating, positive float64) *interactions {
	ids := make(map[string]struct{})
	for _, r := range train {
		ids[movielens.ItemID(r.MovieID)] = struct{}{}
	}
	x := &interactions{
		itemIndex: make(map[string]int32, len(ids)),
		users:     make(map[string][]int32),
		positive:  make(map[string][]int32),
	}
	for id := range ids {
		x.items = append(x.items, id)
	}
	slices.Sort(x.items)
	for i, id := range x.items {
		x.itemIndex[id] = int32(i)
	}
	for _, r := range train {
		u, it := movielens.UserID(r.UserID), x.itemIndex[movielens.ItemID(r.MovieID)]
		x.users[u] = append(x.users[u], it)
		if r.Rating >= positive {
			x.positive[u] = append(x.positive[u], it)
		}
	}
	for u, its := range x.users {
		slices.Sort(its)
		x.users[u] = slices.Compact(its)
	}
	return x
}

// seen returns the set of user's training items as a bitmap over item
// indexes.
func (x *interactions) seen(user string) []bool {
	s := make([]bool, len(x.items))
	for _, it := range x.users[user] {
		s[it] = true
	}
	return s
}

// topK returns the ids of the k highest-scoring items with score > 0 that
// the user has not seen, ties broken by item id.
func (x *interactions) topK(score []float64, seen []bool, k int) []string {
	var cand []int32
	for i, s := range score {
		if s > 0 && !seen[i] {
			cand = append(cand, int32(i))
		}
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if c := cmp.Compare(score[b], score[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	out := make([]string, 0, min(k, len(cand)))
	for _, i := range cand[:min(k, len(cand))] {
		out = append(out, x.items[i])
	}
	return out
}

// Popularity recommends the items with the most training ratings (of any
// value), ties by item id, skipping the user's own training items. Every
// user, known or not, gets the same list minus their items.
func Popularity(train []movielens.Rating) Recommender {
	x := newInteractions(train, math.Inf(1))
	count := make([]int, len(x.items))
	for _, its := range x.users {
		for _, it := range its {
			count[it]++
		}
	}
	ranked := make([]int32, len(x.items))
	for i := range ranked {
		ranked[i] = int32(i)
	}
	slices.SortStableFunc(ranked, func(a, b int32) int { return cmp.Compare(count[b], count[a]) })
	return func(user string, k int) []string {
		seen := x.seen(user)
		out := make([]string, 0, k)
		for _, it := range ranked {
			if len(out) == k {
				break
			}
			if !seen[it] {
				out = append(out, x.items[it])
			}
		}
		return out
	}
}

// neighbour is one entry of an item's similarity list.
type neighbour struct {
	item int32
	sim  float64
}

// ItemKNN recommends by item-item collaborative filtering on the binary
// user-item matrix of the training ratings (a rating of any value is an
// interaction): sim(i, j) = |users(i) ∩ users(j)| / sqrt(|users(i)| ·
// |users(j)|), each item keeping its neighbours most similar items (ties by
// item id). A user's score for item j is the sum of sim(i, j) over their
// training items i that have j as a neighbour. Building costs
// Σ_users |items(u)|² additions, about 10⁸ on MovieLens latest-small.
func ItemKNN(train []movielens.Rating, neighbours int) Recommender {
	return RecentItemKNN(train, neighbours, 0, 1)
}

// RecentItemKNN is ItemKNN scoring from the user's latest recent distinct
// training items only (0: all), the p-th newest weighted decay^p: the
// offline, exact counterpart of the pipeline's co-occurrence signal
// (cooccurrence.window and recency_decay), to tell what recency brings
// from what streaming costs. Training items are still all skipped.
func RecentItemKNN(train []movielens.Rating, neighbours, recent int, decay float64) Recommender {
	x := newInteractions(train, math.Inf(1))
	// Each user's distinct items, newest first (train is in time order).
	latest := make(map[string][]int32, len(x.users))
	if recent > 0 {
		for i := len(train) - 1; i >= 0; i-- {
			u, it := movielens.UserID(train[i].UserID), x.itemIndex[movielens.ItemID(train[i].MovieID)]
			if l := latest[u]; len(l) < recent && !slices.Contains(l, it) {
				latest[u] = append(l, it)
			}
		}
	}
	n := len(x.items)
	itemUsers := make([][]int32, n)
	userItems := make([][]int32, 0, len(x.users))
	for _, its := range x.users {
		u := int32(len(userItems))
		userItems = append(userItems, its)
		for _, it := range its {
			itemUsers[it] = append(itemUsers[it], u)
		}
	}
	nbrs := make([][]neighbour, n)
	co := make([]int32, n)
	var touched []int32
	for i := range n {
		touched = touched[:0]
		for _, u := range itemUsers[i] {
			for _, j := range userItems[u] {
				if co[j] == 0 {
					touched = append(touched, j)
				}
				co[j]++
			}
		}
		cand := make([]neighbour, 0, len(touched))
		for _, j := range touched {
			if int(j) != i {
				sim := float64(co[j]) / math.Sqrt(float64(len(itemUsers[i]))*float64(len(itemUsers[j])))
				cand = append(cand, neighbour{j, sim})
			}
			co[j] = 0
		}
		slices.SortFunc(cand, func(a, b neighbour) int {
			if c := cmp.Compare(b.sim, a.sim); c != 0 {
				return c
			}
			return cmp.Compare(a.item, b.item)
		})
		nbrs[i] = slices.Clip(cand[:min(neighbours, len(cand))])
	}
	return func(user string, k int) []string {
		score := make([]float64, n)
		if recent > 0 {
			w := 1.0
			for _, i := range latest[user] {
				for _, nb := range nbrs[i] {
					score[nb.item] += w * nb.sim
				}
				w *= decay
			}
		} else {
			for _, i := range x.users[user] {
				for _, nb := range nbrs[i] {
					score[nb.item] += nb.sim
				}
			}
		}
		return x.topK(score, x.seen(user), k)
	}
}

// Content recommends by embedding similarity: a user's vector is the mean
// of the unit vectors of their training items rated at least positive, and
// every item of vectors (the catalog) the user has not rated in training is
// scored by its cosine to that vector. Items without a vector, and zero
// vectors, are ignored; a user with no positive item that has a vector gets
// no recommendations. Items scoring <= 0 are not recommended.
func Content(train []movielens.Rating, vectors map[string][]float32, positive float64) Recommender {
	x := newInteractions(train, positive)
	// Catalog order: sorted ids, so ties break by id.
	ids := make([]string, 0, len(vectors))
	for id := range vectors {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cat := &interactions{items: ids, itemIndex: make(map[string]int32, len(ids))}
	unit := make([][]float64, len(ids))
	for i, id := range ids {
		cat.itemIndex[id] = int32(i)
		unit[i] = normalize(vectors[id])
	}
	return func(user string, k int) []string {
		var mean []float64
		count := 0
		for _, it := range x.positive[user] {
			ci, ok := cat.itemIndex[x.items[it]]
			if !ok || unit[ci] == nil {
				continue
			}
			if mean == nil {
				mean = make([]float64, len(unit[ci]))
			}
			if len(unit[ci]) != len(mean) {
				continue
			}
			for d, v := range unit[ci] {
				mean[d] += v
			}
			count++
		}
		if count == 0 {
			return nil
		}
		// Cosine to the mean is the dot product with its unit vector; the
		// 1/count factor does not change the direction.
		mu := normalize64(mean)
		if mu == nil {
			return nil
		}
		seen := make([]bool, len(ids))
		for _, it := range x.users[user] {
			if ci, ok := cat.itemIndex[x.items[it]]; ok {
				seen[ci] = true
			}
		}
		score := make([]float64, len(ids))
		for i, v := range unit {
			if len(v) != len(mu) {
				continue
			}
			var dot float64
			for d := range v {
				dot += v[d] * mu[d]
			}
			score[i] = dot
		}
		return cat.topK(score, seen, k)
	}
}

// normalize returns v scaled to unit length in float64, nil for a zero or
// empty vector.
func normalize(v []float32) []float64 {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return normalize64(f)
}

func normalize64(v []float64) []float64 {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	if ss == 0 {
		return nil
	}
	norm := math.Sqrt(ss)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x / norm
	}
	return out
}
