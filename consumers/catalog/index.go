package catalog

import (
	"context"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// TextConfig says which fields of an item make the text that is embedded.
type TextConfig struct {
	// Fields in order, from title, brand, category, attributes,
	// description.
	Fields []string `yaml:"fields"`
	// Attributes are the attribute keys included, in order; empty
	// includes none.
	Attributes []string `yaml:"attributes"`
	// MaxDescription caps the description's bytes in the text (the model
	// reads 512 tokens per window; long descriptions cost windows).
	MaxDescription int `yaml:"max_description"`
}

// DefaultTextConfig embeds "title. brand. a > b > c. color: red, ... .
// description".
func DefaultTextConfig() TextConfig {
	return TextConfig{
		Fields:         []string{"title", "brand", "category", "attributes", "description"},
		Attributes:     []string{"color", "material", "size", "model"},
		MaxDescription: 1000,
	}
}

// Validate reports the first invalid field, named under prefix.
func (c TextConfig) Validate(prefix string) error {
	if len(c.Fields) == 0 {
		return fmt.Errorf("%s.fields must not be empty", prefix)
	}
	for i, f := range c.Fields {
		switch f {
		case "title", "brand", "category", "attributes", "description":
		default:
			return fmt.Errorf("%s.fields[%d]: unknown field %q (want title, brand, category, attributes or description)", prefix, i, f)
		}
	}
	if c.MaxDescription < 0 {
		return fmt.Errorf("%s.max_description must be >= 0", prefix)
	}
	return nil
}

// ItemText builds the text embedded for an item: the configured fields,
// each ended by ". ", empty ones left out.
func ItemText(c schemas.CatalogChange, cfg TextConfig) string {
	var b strings.Builder
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			b.WriteString(strings.TrimRight(s, ". "))
			b.WriteString(". ")
		}
	}
	for _, f := range cfg.Fields {
		switch f {
		case "title":
			add(c.Title)
		case "brand":
			add(c.Brand)
		case "category":
			add(strings.Join(c.CategoryPath, " > "))
		case "attributes":
			var kv []string
			for _, k := range cfg.Attributes {
				if v := c.Attributes[k]; v != "" {
					kv = append(kv, k+": "+v)
				}
			}
			add(strings.Join(kv, ", "))
		case "description":
			d := c.Description
			if len(d) > cfg.MaxDescription {
				// Cut at the last character boundary within the cap.
				cut := cfg.MaxDescription
				for cut > 0 && !utf8.RuneStart(d[cut]) {
					cut--
				}
				d = d[:cut]
			}
			add(d)
		}
	}
	return strings.TrimSpace(b.String())
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// Collection is the name of the items collection for a model version:
// "items_" plus the version with every run of other characters as "_".
func Collection(modelVersion string) string {
	return "items_" + strings.Trim(unsafeName.ReplaceAllString(modelVersion, "_"), "_")
}

// ItemsAlias is the alias the serving path reads: it points at the items
// collection of the model in use.
const ItemsAlias = "items"

// Indexer keeps the items collection in step with the catalog: an upsert
// embeds the item's text and upserts its point, a delete removes it.
//
// Within a batch, repeated changes of one item collapse to the newest by
// updated_at (the later record on a tie); a change older than what the
// store holds is ignored, so replays and out-of-order delivery are
// harmless. Point ids derive from the item id in a collection named by the
// model version (Collection), so redelivery overwrites.
type Indexer struct {
	embed      pipeline.Embedder
	store      pipeline.VectorStore
	collection string
	text       TextConfig
	tally      *consumers.Tally
}

// NewIndexer prepares the model's items collection in store and, when the
// items alias does not exist yet, points it there.
func NewIndexer(ctx context.Context, emb pipeline.Embedder, store pipeline.VectorStore, text TextConfig, tally *consumers.Tally) (*Indexer, error) {
	if err := text.Validate("catalog.text"); err != nil {
		return nil, err
	}
	coll, err := EnsureItems(ctx, store, emb)
	if err != nil {
		return nil, err
	}
	return &Indexer{embed: emb, store: store, collection: coll, text: text, tally: tally}, nil
}

// EnsureItems creates the items collection of emb's model in store and,
// when the items alias does not exist yet, points it there; it returns the
// collection. Every component that reads items (profiles, serving) calls
// it at start, so it works on an empty store before the first catalog
// change. Idempotent.
func EnsureItems(ctx context.Context, store pipeline.VectorStore, emb pipeline.Embedder) (string, error) {
	coll := Collection(emb.ModelVersion())
	if err := store.EnsureCollection(ctx, coll, emb.Dim()); err != nil {
		return "", fmt.Errorf("catalog: collection %s: %w", coll, err)
	}
	if _, err := store.ResolveAlias(ctx, ItemsAlias); err != nil {
		if err := store.SetAlias(ctx, ItemsAlias, coll); err != nil {
			return "", fmt.Errorf("catalog: alias %s -> %s: %w", ItemsAlias, coll, err)
		}
	}
	return coll, nil
}

// CollectionName is the collection the indexer writes.
func (ix *Indexer) CollectionName() string { return ix.collection }

// NewIndexingSink returns the catalog sink that validates changes
// (tombstones are deletes, see the package doc) and indexes them with ix.
// now is the clock that updated_at is checked against (nil: time.Now).
func NewIndexingSink(lim schemas.Limits, now func() time.Time, ix *Indexer) consumers.Typed[schemas.CatalogChange] {
	return consumers.Typed[schemas.CatalogChange]{
		DecodeRecord: decoder(lim, now),
		Handle:       ix.Handle,
	}
}

// Handle applies a batch of valid changes. An error means nothing may be
// assumed applied (the runtime retries the batch; applying is idempotent).
func (ix *Indexer) Handle(ctx context.Context, evs []consumers.Event[schemas.CatalogChange], _ *pipeline.Result) error {
	latest := Newest(evs)
	ids := make([]string, len(latest))
	for i, c := range latest {
		ids[i] = c.ItemID
	}
	stored, err := ix.store.Get(ctx, ix.collection, ids)
	if err != nil {
		return fmt.Errorf("catalog: read %d stored items: %w", len(ids), err)
	}
	storedAt := make(map[string]int64, len(stored))
	byID := make(map[string]pipeline.Point, len(stored))
	for _, p := range stored {
		byID[p.ID] = p
		if ms, ok := p.Payload[pipeline.PayloadUpdatedAt].(int64); ok {
			storedAt[p.ID] = ms
		}
	}
	var upserts []schemas.CatalogChange
	var deletes []string
	for _, c := range latest {
		if at, ok := storedAt[c.ItemID]; ok && c.UpdatedAt.UnixMilli() < at {
			ix.tally.Add("stale", 1)
			continue
		}
		if c.Op == schemas.OpDelete {
			deletes = append(deletes, c.ItemID)
		} else {
			upserts = append(upserts, c)
		}
	}
	if len(upserts) > 0 {
		// Only changed texts are embedded: a price or stock update keeps
		// the stored vector (its text hash in the payload says so).
		points := make([]pipeline.Point, len(upserts))
		var texts []string
		var slots []int
		for i, c := range upserts {
			text := ItemText(c, ix.text)
			hash := textHash(text)
			points[i] = pipeline.Point{ID: c.ItemID, Payload: ItemPayload(c)}
			points[i].Payload[payloadTextHash] = hash
			if old, ok := byID[c.ItemID]; ok && old.Payload[payloadTextHash] == hash && len(old.Vector) == ix.embed.Dim() {
				points[i].Vector = old.Vector
				continue
			}
			texts = append(texts, text)
			slots = append(slots, i)
		}
		if len(texts) > 0 {
			vecs, err := ix.embed.Embed(ctx, pipeline.Passage, texts)
			if err != nil {
				return fmt.Errorf("catalog: embed %d items: %w", len(texts), err)
			}
			for j, i := range slots {
				points[i].Vector = vecs[j]
			}
		}
		ix.tally.Add("embedded", int64(len(texts)))
		if err := ix.store.Upsert(ctx, ix.collection, points); err != nil {
			return fmt.Errorf("catalog: upsert %d items into %s: %w", len(points), ix.collection, err)
		}
	}
	if len(deletes) > 0 {
		if err := ix.store.Delete(ctx, ix.collection, deletes); err != nil {
			return fmt.Errorf("catalog: delete %d items from %s: %w", len(deletes), ix.collection, err)
		}
	}
	ix.tally.Add(string(schemas.OpUpsert), int64(len(upserts)))
	ix.tally.Add(string(schemas.OpDelete), int64(len(deletes)))
	ix.tally.Add("collapsed", int64(len(evs)-len(latest)))
	return nil
}

// Newest collapses a batch to the newest change of each item, by
// updated_at, the later record winning a tie, in first-seen order.
func Newest(evs []consumers.Event[schemas.CatalogChange]) []schemas.CatalogChange {
	idx := make(map[string]int, len(evs))
	var out []schemas.CatalogChange
	for _, e := range evs {
		c := e.Value
		i, seen := idx[c.ItemID]
		if !seen {
			idx[c.ItemID] = len(out)
			out = append(out, c)
			continue
		}
		if !c.UpdatedAt.Before(out[i].UpdatedAt) {
			out[i] = c
		}
	}
	return out
}

// payloadTextHash keeps the hash of the text an item's vector was made
// from, so an update that leaves the text alone reuses the vector.
const payloadTextHash = "text_hash"

// textHash is FNV-1a of the text, as int64 (a payload type every store
// keeps).
func textHash(text string) int64 {
	h := fnv.New64a()
	h.Write([]byte(text))
	return int64(h.Sum64())
}

// ItemPayload is the stored payload of an item: what filters, explanations
// and the newest-wins check need.
func ItemPayload(c schemas.CatalogChange) pipeline.Payload {
	p := pipeline.Payload{
		pipeline.PayloadTitle:     c.Title,
		pipeline.PayloadCategory:  slices.Clone(c.CategoryPath),
		pipeline.PayloadBrand:     c.Brand,
		pipeline.PayloadPrice:     c.Price,
		pipeline.PayloadInStock:   c.InStock,
		pipeline.PayloadUpdatedAt: c.UpdatedAt.UnixMilli(),
	}
	if c.Currency != "" {
		p["currency"] = c.Currency
	}
	return p
}
