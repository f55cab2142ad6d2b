package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/producers/reco"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// BenchmarkServing measures request → reply latency through the whole
// pipeline on this machine: the embedded broker, the embedded vector store
// and the real model, with a synthetic shop (1,000 items, 2,000 users,
// 20,000 events of history). Requests go through the client library, paced
// open-loop (each at its scheduled time, whatever the replies do), so a slow
// reply delays no later request and latency counts from the scheduled send.
// Then the throughput ceiling: as many for_user requests as 64 closed-loop
// callers get answered. Run with -benchtime=1x (make bench). STREAMREC_*
// settings in the environment apply (e.g.
// STREAMREC_SERVING_COLLABORATIVE_WEIGHT=0 for the profile vector alone).
func BenchmarkServing(b *testing.B) {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, config.EnvPrefix) && !strings.HasPrefix(kv, config.EnvPrefix+"REQUIRE_") {
			env = append(env, kv)
		}
	}
	cfg, addr, _ := start(b, true, env...)
	cfg.Produce.Items = 1000
	cfg.Produce.Users = 2000
	cfg.Produce.Events = 20_000
	cfg.Produce.Rate = 50_000
	cfg.Produce.DuplicateFraction = 0
	if _, err := Produce(context.Background(), cfg, testLog(), nil); err != nil {
		b.Fatal(err)
	}
	waitCommitted(b, addr, cfg.Catalog.Group, cfg.Topics.Catalog.Name)
	waitCommitted(b, addr, cfg.Clickstream.Group, cfg.Topics.Clickstream.Name)

	rc := reco.DefaultConfig()
	rc.RequestTopic = cfg.Topics.Requests.Name
	rc.Timeout = 10 * time.Second
	client, err := reco.New(context.Background(), cfg.Kafka, rc, testLog())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()

	queries := []string{"wireless headphones", "green tea", "running shoes", "蓝牙耳机", "coffee beans", "yoga mat", "phone case", "绿茶"}
	request := func(kind schemas.RecoKind, i int) schemas.RecoRequest {
		r := schemas.RecoRequest{Kind: kind, K: 10}
		switch kind {
		case schemas.KindForUser:
			r.UserID = synth.UserID(i % cfg.Produce.Users)
		case schemas.KindSimilarItems:
			r.ItemID = synth.ItemID(i % cfg.Produce.Items)
		case schemas.KindSearch:
			r.Query = queries[i%len(queries)]
		}
		return r
	}
	// Warm up every path once.
	for _, kind := range []schemas.RecoKind{schemas.KindForUser, schemas.KindSimilarItems, schemas.KindSearch} {
		if _, err := client.Recommend(context.Background(), request(kind, 0)); err != nil {
			b.Fatalf("warm-up %s: %v", kind, err)
		}
	}

	for _, kind := range []schemas.RecoKind{schemas.KindForUser, schemas.KindSimilarItems, schemas.KindSearch} {
		for _, rate := range []int{200, 1000} {
			b.Run(fmt.Sprintf("%s/%d-per-s", kind, rate), func(b *testing.B) {
				const seconds = 5
				n := rate * seconds
				lat := make([]time.Duration, n)
				failed := make([]bool, n)
				var wg sync.WaitGroup
				start := time.Now()
				b.ResetTimer()
				for i := range n {
					at := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
					if d := time.Until(at); d > 0 {
						time.Sleep(d) // pacing the open-loop load, not waiting for a condition
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						_, err := client.Recommend(ctx, request(kind, i))
						lat[i] = time.Since(at)
						failed[i] = err != nil
					}()
				}
				wg.Wait()
				b.StopTimer()
				var ok []time.Duration
				for i, d := range lat {
					if !failed[i] {
						ok = append(ok, d)
					}
				}
				slices.Sort(ok)
				q := func(p float64) float64 {
					if len(ok) == 0 {
						return 0
					}
					return float64(ok[min(len(ok)-1, int(p*float64(len(ok))))].Microseconds()) / 1000
				}
				b.ReportMetric(q(0.5), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
				b.ReportMetric(float64(n-len(ok)), "errors")
				b.ReportMetric(float64(len(ok))/time.Since(start).Seconds(), "replies/s")
			})
		}
	}

	b.Run("for_user/ceiling-64-callers", func(b *testing.B) {
		const d = 5 * time.Second
		var mu sync.Mutex
		done, errs := 0, 0
		var wg sync.WaitGroup
		start := time.Now()
		for c := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; time.Since(start) < d; i += 64 {
					_, err := client.Recommend(context.Background(), request(schemas.KindForUser, i))
					mu.Lock()
					if err != nil {
						errs++
					} else {
						done++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(done)/time.Since(start).Seconds(), "replies/s")
		b.ReportMetric(float64(errs), "errors")
	})
}
