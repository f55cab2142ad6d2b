package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/streamrec/streamrec/schemas"
)

// Seeds of the random streams, so that the catalog and the sessions draw
// independently from one Config.Seed.
const (
	catalogStream = 0x6361_7461_6c6f_6775 // "catalogu"
	trafficStream = 0x7472_6166_6669_6373 // "traffics"
)

// Catalog is a generated shop catalog and the popularity its items are
// drawn by. It is read-only once built, so safe for concurrent use.
type Catalog struct {
	// Items are the catalog's upserts; Items[i] has id ItemID(i).
	Items []schemas.CatalogChange

	words  []itemWords // parallel to Items
	byRank []int       // item indexes, most popular first
	byCat  [][]int     // per taxonomy category, item indexes, most popular first
}

// itemWords are the words an item was made of, for search queries.
type itemWords struct {
	cat              int
	brand, adj, noun string // in the item's language
	zh               bool
	color            string // "" for a category without colors
}

// ItemID is the id of the i-th catalog item.
func ItemID(i int) string { return fmt.Sprintf("item-%06d", i) }

// UserID is the id of the i-th user.
func UserID(i int) string { return fmt.Sprintf("user-%05d", i) }

// NewCatalog generates cfg.Items items, updated at now. The same Seed, Items,
// Currency and ChineseFraction give the same catalog.
func NewCatalog(cfg Config, now time.Time) *Catalog {
	r := rand.New(rand.NewPCG(cfg.Seed, catalogStream))
	c := &Catalog{
		Items: make([]schemas.CatalogChange, cfg.Items),
		words: make([]itemWords, cfg.Items),
		byCat: make([][]int, len(taxonomy)),
	}
	for i := range c.Items {
		c.Items[i], c.words[i] = newItem(r, i, cfg, now)
	}
	c.byRank = r.Perm(cfg.Items)
	for _, i := range c.byRank {
		cat := c.words[i].cat
		c.byCat[cat] = append(c.byCat[cat], i)
	}
	return c
}

// newItem draws the i-th item.
func newItem(r *rand.Rand, i int, cfg Config, now time.Time) (schemas.CatalogChange, itemWords) {
	ci := r.IntN(len(taxonomy))
	cat := &taxonomy[ci]
	zh := r.Float64() < cfg.ChineseFraction
	a1, a2 := twoIndexes(r, len(cat.adjs))
	f1, f2 := twoIndexes(r, len(cat.features))
	use := r.IntN(len(cat.uses))
	w := itemWords{cat: ci, brand: pick(r, cat.brands), noun: pick(r, cat.nouns), zh: zh}
	variant := pick(r, cat.variants)
	material := pick(r, cat.materials)
	col := colors[r.IntN(len(colors))]
	withAdj2, withColor := r.IntN(2) == 0, cat.colored && r.IntN(3) == 0
	sentences := 1 + r.IntN(3)
	warranty := 1 + r.IntN(3)

	var title, desc []string
	attrs := map[string]string{}
	if zh {
		w.adj, w.noun = cat.zhAdjs[a1], cat.zhNoun
		adjs := cat.zhAdjs[a1]
		if withAdj2 {
			adjs += cat.zhAdjs[a2]
		}
		title = []string{w.brand, adjs + cat.zhNoun, variant}
		if withColor {
			title = append(title, col.zh)
		}
		desc = []string{fmt.Sprintf("%s出品的%s%s，具备%s和%s。", w.brand, cat.zhAdjs[a1], cat.zhNoun, cat.zhFeatures[f1], cat.zhFeatures[f2])}
		if sentences > 1 {
			desc = append(desc, fmt.Sprintf("采用%s材质，适合%s。", materialZH[material], cat.zhUses[use]))
		}
		if sentences > 2 {
			desc = append(desc, fmt.Sprintf("享受%d年质保。", warranty))
		}
		attrs["material"] = materialZH[material]
	} else {
		w.adj = cat.adjs[a1]
		title = []string{w.brand, cat.adjs[a1]}
		if withAdj2 {
			title = append(title, cat.adjs[a2])
		}
		title = append(title, w.noun, variant)
		desc = []string{fmt.Sprintf("%s %s from %s, with %s and %s.", cat.adjs[a1], strings.ToLower(w.noun), w.brand, cat.features[f1], cat.features[f2])}
		if sentences > 1 {
			desc = append(desc, fmt.Sprintf("Made from %s and a great pick for %s.", material, cat.uses[use]))
		}
		if sentences > 2 {
			desc = append(desc, fmt.Sprintf("Backed by a %d-year warranty.", warranty))
		}
		attrs["material"] = material
	}
	t := strings.Join(strings.Fields(strings.Join(title, " ")), " ")
	if withColor && !zh {
		t += ", " + col.en
	}
	if cat.colored {
		w.color = col.en
		if zh {
			w.color = col.zh
		}
		attrs["color"] = w.color
	}
	if cat.sizes != nil {
		attrs["size"] = pick(r, cat.sizes)
	}
	return schemas.CatalogChange{
		Op:           schemas.OpUpsert,
		ItemID:       ItemID(i),
		Title:        t,
		Description:  strings.Join(desc, sepFor(zh)),
		CategoryPath: cat.path,
		Brand:        w.brand,
		Price:        price(r, cat.minPrice, cat.maxPrice),
		Currency:     cfg.Currency,
		InStock:      r.Float64() < 0.92,
		Attributes:   attrs,
		UpdatedAt:    now,
	}, w
}

// sepFor is the sentence separator of a language.
func sepFor(zh bool) string {
	if zh {
		return ""
	}
	return " "
}

// price draws a log-uniform price in [lo, hi) that ends in .99 (or .49 below
// $10).
func price(r *rand.Rand, lo, hi float64) float64 {
	p := lo * math.Exp(r.Float64()*math.Log(hi/lo))
	if p < 10 && p-math.Floor(p) < 0.5 {
		return math.Floor(p) + 0.49
	}
	return math.Floor(p) + 0.99
}

// twoIndexes draws two distinct indexes below n (the same one if n is 1).
func twoIndexes(r *rand.Rand, n int) (int, int) {
	a := r.IntN(n)
	if n == 1 {
		return a, a
	}
	return a, (a + 1 + r.IntN(n-1)) % n
}

// pick draws one of vs.
func pick(r *rand.Rand, vs []string) string { return vs[r.IntN(len(vs))] }
