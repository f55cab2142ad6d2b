package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/embed"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/pipeline/onnx"
	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// model loads the real embedding model behind a batcher, or skips when the
// artifacts are missing (fails under make test).
func model(tb testing.TB) *embed.Batcher {
	tb.Helper()
	cfg := onnx.DefaultConfig()
	cfg.LibraryPath = filepath.Join("..", "..", cfg.LibraryPath)
	cfg.ModelDir = filepath.Join("..", "..", cfg.ModelDir)
	m, err := onnx.Open(cfg, nil)
	if err != nil {
		if os.Getenv("STREAMREC_REQUIRE_MODEL") == "" {
			tb.Skipf("model not available (%v); run make artifacts", err)
		}
		tb.Fatal(err)
	}
	b, err := embed.New(m, embed.DefaultPolicy(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done; m.Close() })
	return b
}

// catalogCluster starts a one-broker kfake cluster with the catalog topic
// of the given partitions and a client of it (with opts), both closed when
// tb ends; it returns the brokers' addresses and the client.
func catalogCluster(tb testing.TB, partitions int32, opts ...kgo.Opt) ([]string, *kgo.Client) {
	tb.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, schemas.TopicCatalog))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(fake.Close)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(fake.ListenAddrs()...)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return fake.ListenAddrs(), cl
}

// indexer opens an embedded store in a temporary folder and an indexer of
// the real model on it, counting into the returned tally; the store is
// closed when tb ends.
func indexer(tb testing.TB) (*Indexer, *localstore.Store, *consumers.Tally) {
	tb.Helper()
	emb := model(tb)
	store, err := localstore.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	tally := NewTally(nil)
	ix, err := NewIndexer(context.Background(), emb, store, DefaultTextConfig(), tally)
	if err != nil {
		tb.Fatal(err)
	}
	return ix, store, tally
}

// interrupting is the real store, with a hook that runs after each
// acknowledged upsert.
type interrupting struct {
	pipeline.VectorStore
	after func()
}

func (s interrupting) Upsert(ctx context.Context, coll string, pts []pipeline.Point) error {
	err := s.VectorStore.Upsert(ctx, coll, pts)
	if err == nil {
		s.after()
	}
	return err
}

// TestReembedResumes: an interrupted re-embedding continues where it
// stopped, indexes the whole catalog, and only then moves the alias.
func TestReembedResumes(t *testing.T) {
	emb := model(t)
	_, cl := catalogCluster(t, 3)
	ctx := context.Background()

	const items = 60
	p, err := producers.New(cl, producers.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	scfg := synth.DefaultConfig()
	scfg.Items = items
	for _, it := range synth.NewCatalog(scfg, time.Now().Add(-time.Hour)).Items {
		if err := p.SendCatalog(ctx, it, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// The alias points at an older collection, which must stay in place
	// until the re-embedding completes.
	if err := store.EnsureCollection(ctx, "items_old", emb.Dim()); err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias(ctx, ItemsAlias, "items_old"); err != nil {
		t.Fatal(err)
	}

	// First run: interrupted during its second batch (the first is
	// committed as progress).
	runCtx, cancel := context.WithCancel(ctx)
	var upserts atomic.Int32
	ix, err := NewIndexer(ctx, emb, interrupting{store, func() {
		if upserts.Add(1) == 2 {
			cancel()
		}
	}}, DefaultTextConfig(), consumers.NewTally("t", nil, "t_total", "t", "op"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Reembed(runCtx, cl, schemas.TopicCatalog, schemas.DefaultLimits(), ix, 8, nil)
	if !errors.Is(err, context.Canceled) || rep.AliasMoved {
		t.Fatalf("interrupted run: %v, %+v", err, rep)
	}
	if got, _ := store.ResolveAlias(ctx, ItemsAlias); got != "items_old" {
		t.Fatalf("alias moved to %s by an unfinished run", got)
	}

	// Second run: resumes, finishes, moves the alias.
	rep, err = Reembed(ctx, cl, schemas.TopicCatalog, schemas.DefaultLimits(), ix, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resumed == 0 || rep.Resumed+rep.Records != items || !rep.AliasMoved {
		t.Fatalf("second run: %+v; want resumed > 0 and resumed + records = %d", rep, items)
	}
	if got, _ := store.ResolveAlias(ctx, ItemsAlias); got != ix.CollectionName() {
		t.Fatalf("alias -> %s, want %s", got, ix.CollectionName())
	}
	if n, _ := store.Count(ctx, ItemsAlias); n != items {
		t.Fatalf("%d items behind the alias, want %d", n, items)
	}
}

// TestIndexerNewestWins: a batch collapses to each item's newest change; a
// change older than the stored one is ignored; a delete removes; redelivery
// changes nothing; and an item is found by a search for its own title.
func TestIndexerNewestWins(t *testing.T) {
	ix, store, tally := indexer(t)
	emb := ix.embed
	ctx := context.Background()
	at := func(min int) time.Time { return time.Date(2026, 11, 28, 10, min, 0, 0, time.UTC) }
	change := func(id, title string, min int, op schemas.CatalogOp) consumers.Event[schemas.CatalogChange] {
		return consumers.Event[schemas.CatalogChange]{Value: schemas.CatalogChange{Op: op, ItemID: id, Title: title, InStock: true, UpdatedAt: at(min)}}
	}
	apply := func(evs ...consumers.Event[schemas.CatalogChange]) {
		t.Helper()
		if err := ix.Handle(ctx, evs, &pipeline.Result{}); err != nil {
			t.Fatal(err)
		}
	}
	title := func(id string) string {
		t.Helper()
		pts, err := store.Get(ctx, ItemsAlias, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) == 0 {
			return "<absent>"
		}
		return pts[0].Payload[pipeline.PayloadTitle].(string)
	}

	apply(change("a", "wireless headphones v1", 1, schemas.OpUpsert),
		change("a", "wireless headphones v3", 3, schemas.OpUpsert),
		change("a", "wireless headphones v2", 2, schemas.OpUpsert),
		change("b", "organic green tea 500g", 1, schemas.OpUpsert))
	if got := title("a"); got != "wireless headphones v3" {
		t.Fatalf("a = %q after a batch of three versions, want the newest", got)
	}
	apply(change("a", "wireless headphones v0", 0, schemas.OpUpsert)) // late and stale
	if got := title("a"); got != "wireless headphones v3" {
		t.Fatalf("a = %q after a stale update", got)
	}
	if tally.Snapshot()["stale"] != 1 || tally.Snapshot()["collapsed"] != 2 {
		t.Fatalf("tally %v, want stale 1 and collapsed 2", tally.Snapshot())
	}
	// A price change keeps the text: the stored vector is reused.
	priced := change("b", "organic green tea 500g", 4, schemas.OpUpsert)
	priced.Value.Price = 9.5
	apply(priced)
	if got := tally.Snapshot()["embedded"]; got != 2 {
		t.Fatalf("embedded %d texts, want 2 (the price update must not re-embed)", got)
	}
	if pts, _ := store.Get(ctx, ItemsAlias, []string{"b"}); len(pts) != 1 || pts[0].Payload[pipeline.PayloadPrice] != 9.5 {
		t.Fatalf("b after the price update: %+v", pts)
	}
	hits, err := store.Search(ctx, ItemsAlias, pipeline.VectorQuery{Vector: mustEmbed(t, emb, "organic green tea 500g"), K: 1})
	if err != nil || len(hits) != 1 || hits[0].ID != "b" {
		t.Fatalf("search for b's title: %v %v", hits, err)
	}
	apply(change("b", "", 6, schemas.OpDelete))
	apply(change("b", "", 6, schemas.OpDelete)) // redelivered
	if got := title("b"); got != "<absent>" {
		t.Fatalf("b = %q after delete", got)
	}
	if n, _ := store.Count(ctx, ItemsAlias); n != 1 {
		t.Fatalf("%d items, want 1", n)
	}
}

func mustEmbed(t *testing.T, emb pipeline.Embedder, text string) []float32 {
	t.Helper()
	v, err := emb.Embed(context.Background(), pipeline.Passage, []string{text})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}
