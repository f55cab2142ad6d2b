package catalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// BenchmarkFreshness: time from a catalog upsert being produced to the item
// being returned, in its new version, by a search for its own title, under
// 1,000 item updates/s for 10 s, through the whole path: Kafka (kfake) →
// catalog consumer → micro-batched embedding (real model) → embedded store.
//
// The updates are what a shop sends: most change price or stock (the text,
// and so the vector, stays); 0, 5 or 10 % change the title (a new vector,
// so 0, 50 or 100 embeddings/s), on items chosen with Zipf popularity. One update in 25 is timed: polled every 5 ms
// with Get until the new version is stored, then confirmed by a search with
// the item's stored vector, the embedding of its title text. Run with
// -benchtime=1x.
func BenchmarkFreshness(b *testing.B) {
	emb := model(b)
	for _, pct := range []int{0, 5, 10} {
		b.Run(fmt.Sprintf("text-changes-%d%%", pct), func(b *testing.B) { freshness(b, emb, pct) })
	}
}

func freshness(b *testing.B, emb pipeline.Embedder, titlePercent int) {
	const (
		items    = 1000
		rate     = 1000
		duration = 10 * time.Second
		sample   = 25
	)

	brokers, cl := catalogCluster(b, 3, kgo.ProducerLinger(0))
	kc := kafka.Config{Brokers: brokers}
	store, err := localstore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	text := DefaultTextConfig()
	text.Fields = []string{"title", "brand", "category", "attributes"}
	ix, err := NewIndexer(ctx, emb, store, text, NewTally(nil))
	if err != nil {
		b.Fatal(err)
	}
	ccfg := consumers.DefaultConfig("bench-freshness", schemas.TopicCatalog)
	ccfg.Batch = pipeline.BatchPolicy{MaxRecords: 500, MaxBytes: 4 << 20, MaxWait: 10 * time.Millisecond}
	c, err := consumers.New(kc, ccfg, NewIndexingSink(schemas.DefaultLimits(), nil, ix))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	p, err := producers.New(cl, producers.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	scfg := synth.DefaultConfig()
	scfg.Items = items
	cat := synth.NewCatalog(scfg, time.Now().Add(-time.Hour)).Items
	titles := make([]string, len(cat))
	for i, it := range cat {
		titles[i] = it.Title
	}
	for _, it := range cat {
		if err := p.SendCatalog(ctx, it, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for n := 0; n < items; n, _ = store.Count(ctx, ItemsAlias) {
		time.Sleep(50 * time.Millisecond) // waiting for the initial catalog: benchmark setup
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		missed    int
		wg        sync.WaitGroup
	)
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, items-1)
	r := rand.New(rand.NewPCG(3, 4))
	total := int(duration.Seconds()) * rate
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		if ahead := time.Duration(i)*time.Second/rate - time.Since(start); ahead > 0 {
			time.Sleep(ahead) // pacing the input at 1,000 updates/s
		}
		idx := int(zipf.Uint64())
		it := cat[idx]
		it.UpdatedAt = time.Now().Truncate(time.Millisecond)
		if r.IntN(100) < titlePercent {
			it.Title = fmt.Sprintf("%s (edition %d)", titles[idx], i)
		} else {
			it.Price = float64(r.IntN(10000)) / 100
			it.InStock = r.IntN(5) > 0
		}
		cat[idx] = it
		sent := time.Now()
		if err := p.SendCatalog(ctx, it, nil); err != nil {
			b.Fatal(err)
		}
		if i%sample != 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := it.UpdatedAt.UnixMilli()
			deadline := sent.Add(30 * time.Second)
			for time.Now().Before(deadline) {
				pts, err := store.Get(ctx, ItemsAlias, []string{it.ItemID})
				if err == nil && len(pts) == 1 && pts[0].Payload[pipeline.PayloadUpdatedAt].(int64) >= want {
					seen := time.Since(sent)
					// The stored vector is the embedding of the item's
					// text: searching with it is searching for the title
					// (without adding embedding load to the measurement).
					hits, err := store.Search(ctx, ItemsAlias, pipeline.VectorQuery{Vector: pts[0].Vector, K: 10})
					mu.Lock()
					if err == nil && slices.ContainsFunc(hits, func(h pipeline.Hit) bool { return h.ID == it.ItemID }) {
						latencies = append(latencies, seen)
					} else {
						missed++
					}
					mu.Unlock()
					return
				}
				time.Sleep(5 * time.Millisecond) // polling the store: the measurement's resolution
			}
			mu.Lock()
			missed++
			mu.Unlock()
		}()
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	sendRate := float64(total) / time.Since(start).Seconds()
	wg.Wait()
	b.StopTimer()
	slices.Sort(latencies)
	q := func(f float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[min(len(latencies)-1, int(f*float64(len(latencies))))].Microseconds()) / 1e3
	}
	b.ReportMetric(sendRate, "updates/s")
	b.ReportMetric(q(0.5), "fresh-p50-ms")
	b.ReportMetric(q(0.99), "fresh-p99-ms")
	b.ReportMetric(float64(len(latencies)), "timed")
	b.ReportMetric(float64(missed), "missed")
	if missed > 0 {
		b.Errorf("%d timed updates were not found by their title within 30 s", missed)
	}
}
