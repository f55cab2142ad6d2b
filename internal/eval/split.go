// Package eval evaluates recommenders offline on MovieLens, without Kafka: a
// per-user temporal hold-out split (NewSplit), baseline recommenders
// (Popularity, ItemKNN, Content), ranking metrics (Evaluate) and a markdown
// report (Table).
//
// Protocol. Each user's ratings are ordered by time; the last fraction of
// them is held out, and the held-out movies rated at least a threshold are
// the user's relevant items. A recommender sees only the training ratings
// and must not recommend a user's training items. Evaluate asks every test
// user for a top-20 list and reports, averaged over test users:
//
//	Recall@k   hits in the top k / |relevant|   (standard recall; it cannot
//	           reach 1 when |relevant| > k)
//	NDCG@k     DCG@k / IDCG@k with binary gains, DCG@k = Σ hit_p / log2(p+1)
//	           over positions p = 1..k, IDCG@k the same for min(k, |relevant|)
//	           hits in the first positions
//	Coverage   distinct items in all top-20 lists / catalog size
//
// The split is per user, not global in time: a user's training ratings may
// be newer than another user's held-out ones, as in the usual
// leave-last-out protocol.
package eval

import (
	"math"

	"github.com/streamrec/streamrec/producers/movielens"
)

// Split is a per-user temporal hold-out of a dataset.
type Split struct {
	// Train are the training ratings in time order (the dataset's order).
	Train []movielens.Rating
	// Test maps a user id (movielens.UserID) to the held-out item ids
	// (movielens.ItemID) the user rated at least the positive threshold, in
	// time order. Only evaluated users appear, each with at least one item.
	Test map[string][]string
}

// NewSplit holds out the last round(holdout × n) of each user's n ratings
// in time (holdout in [0, 1], e.g. 0.2) and keeps the held-out ratings at or
// above positive (e.g. 3.5) as the user's relevant items. A user left with
// fewer than minTrain training ratings, or with no relevant held-out item,
// is not evaluated: their ratings all go to Train (they leak nothing, since
// nobody is scored on them, and they help item-item statistics). The held-out
// ratings of evaluated users are not in Train.
func NewSplit(ds *movielens.Dataset, holdout, positive float64, minTrain int) Split {
	holdout = min(max(holdout, 0), 1)
	byUser := make(map[int][]int) // user -> indexes into ds.Ratings, time order
	for i, r := range ds.Ratings {
		byUser[r.UserID] = append(byUser[r.UserID], i)
	}
	heldOut := make([]bool, len(ds.Ratings))
	test := make(map[string][]string)
	for user, idx := range byUser {
		n := len(idx)
		nTest := int(math.Round(holdout * float64(n)))
		if n-nTest < minTrain || nTest == 0 {
			continue
		}
		var rel []string
		for _, i := range idx[n-nTest:] {
			if r := ds.Ratings[i]; r.Rating >= positive {
				rel = append(rel, movielens.ItemID(r.MovieID))
			}
		}
		if len(rel) == 0 {
			continue
		}
		for _, i := range idx[n-nTest:] {
			heldOut[i] = true
		}
		test[movielens.UserID(user)] = rel
	}
	train := make([]movielens.Rating, 0, len(ds.Ratings))
	for i, r := range ds.Ratings {
		if !heldOut[i] {
			train = append(train, r)
		}
	}
	return Split{Train: train, Test: test}
}
