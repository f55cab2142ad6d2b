package eval

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// cutoffs are the list lengths Evaluate reports; the largest is requested.
const (
	shortK = 10
	longK  = 20
)

// Result holds a recommender's metrics, averaged over the test users.
type Result struct {
	Name  string
	Users int
	// Recall10 and Recall20 are hits in the top k / |relevant|.
	Recall10, Recall20 float64
	// NDCG10 and NDCG20 use binary gains, the ideal DCG over min(k,
	// |relevant|) hits.
	NDCG10, NDCG20 float64
	// Coverage is the number of distinct items in all top-20 lists over
	// catalogSize.
	Coverage float64
}

// Evaluate asks rec for 20 items for each user of s.Test, in user order, and
// scores the lists against the held-out items (see the package
// documentation for the metrics). Items past the 20th and repeats of an
// item already in the list are ignored. catalogSize (the number of items
// that could be recommended) scales Coverage; 0 leaves Coverage 0.
func Evaluate(name string, s Split, catalogSize int, rec Recommender) Result {
	res := Result{Name: name}
	users := make([]string, 0, len(s.Test))
	for u := range s.Test {
		users = append(users, u)
	}
	slices.Sort(users)
	covered := make(map[string]struct{})
	for _, u := range users {
		rel := make(map[string]struct{}, len(s.Test[u]))
		for _, it := range s.Test[u] {
			rel[it] = struct{}{}
		}
		if len(rel) == 0 {
			continue
		}
		list := dedupe(rec(u, longK), longK)
		for _, it := range list {
			covered[it] = struct{}{}
		}
		r10, n10 := score(list, rel, shortK)
		r20, n20 := score(list, rel, longK)
		res.Recall10 += r10
		res.Recall20 += r20
		res.NDCG10 += n10
		res.NDCG20 += n20
		res.Users++
	}
	if res.Users > 0 {
		n := float64(res.Users)
		res.Recall10 /= n
		res.Recall20 /= n
		res.NDCG10 /= n
		res.NDCG20 /= n
	}
	if catalogSize > 0 {
		res.Coverage = float64(len(covered)) / float64(catalogSize)
	}
	return res
}

// dedupe returns the first k distinct items of list.
func dedupe(list []string, k int) []string {
	seen := make(map[string]struct{}, len(list))
	out := make([]string, 0, min(k, len(list)))
	for _, it := range list {
		if len(out) == k {
			break
		}
		if _, dup := seen[it]; !dup {
			seen[it] = struct{}{}
			out = append(out, it)
		}
	}
	return out
}

// score returns Recall@k and NDCG@k of list (distinct items) against the
// non-empty relevant set rel.
func score(list []string, rel map[string]struct{}, k int) (recall, ndcg float64) {
	var hits int
	var dcg, idcg float64
	for p, it := range list[:min(k, len(list))] {
		if _, ok := rel[it]; ok {
			hits++
			dcg += 1 / math.Log2(float64(p+2))
		}
	}
	for p := range min(k, len(rel)) {
		idcg += 1 / math.Log2(float64(p+2))
	}
	return float64(hits) / float64(len(rel)), dcg / idcg
}

// Table writes rs as a markdown table with aligned columns, metrics to four
// decimals.
func Table(w io.Writer, rs []Result) error {
	rows := [][]string{{"recommender", "users", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "coverage"}}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	for _, r := range rs {
		rows = append(rows, []string{r.Name, strconv.Itoa(r.Users), f(r.Recall10), f(r.Recall20), f(r.NDCG10), f(r.NDCG20), f(r.Coverage)})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for c, cell := range row {
			width[c] = max(width[c], len([]rune(cell)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for c, cell := range cells {
			pad := strings.Repeat(" ", width[c]-len([]rune(cell)))
			if c == 0 {
				b.WriteString(" " + cell + pad + " |") // text left
			} else {
				b.WriteString(" " + pad + cell + " |") // numbers right
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	sep := make([]string, len(width))
	for c, wd := range width {
		if c == 0 {
			sep[c] = strings.Repeat("-", wd)
		} else {
			sep[c] = strings.Repeat("-", wd-1) + ":"
		}
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("eval: write table: %w", err)
	}
	return nil
}
