package localstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/streamrec/streamrec/internal/benchmem"
	"github.com/streamrec/streamrec/pipeline"
)

// benchN is the collection size of BenchmarkRecall (LOCALSTORE_BENCH_N
// overrides 100,000 for quick runs).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("LOCALSTORE_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// benchConfig is DefaultConfig with LOCALSTORE_BENCH_THRESHOLD as the exact
// search threshold when set (0 forces the HNSW index).
func benchConfig() Config {
	cfg := DefaultConfig()
	if n, err := strconv.Atoi(os.Getenv("LOCALSTORE_BENCH_THRESHOLD")); err == nil && n >= 0 {
		cfg.ExactThreshold = n
	}
	return cfg
}

func randUnitless(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkRecall loads random 384-d vectors through Upsert (fsynced
// batches of 1000), then compares Search's top 10 (the HNSW index above the
// exact-search threshold, else the exact scan) with an exact scan for 200
// random queries. It reports recall@10, p50/p99 latency of
// both, the load rate and the peak resident memory over the raw vector
// bytes.
func BenchmarkRecall(b *testing.B) {
	const dim, batch, queries, k = 384, 1000, 200, 10
	n := benchN()
	for range b.N {
		dir := b.TempDir()
		benchmem.ResetPeak()
		s, err := Open(dir, WithConfig(benchConfig()))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := s.EnsureCollection(ctx, "bench", dim); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(42, 42))
		start := time.Now()
		pts := make([]pipeline.Point, batch)
		for i := 0; i < n; i += batch {
			m := min(batch, n-i)
			for j := range m {
				pts[j] = pipeline.Point{ID: fmt.Sprint("item-", i+j), Vector: randUnitless(r, dim)}
			}
			if err := s.Upsert(ctx, "bench", pts[:m]); err != nil {
				b.Fatal(err)
			}
		}
		load := time.Since(start)
		peak := benchmem.PeakMiB()
		raw := float64(n*dim*4) / (1 << 20)

		c, err := s.resolve("bench")
		if err != nil {
			b.Fatal(err)
		}
		if c.g == nil {
			b.Logf("%d points are below the exact-search threshold %d: Search scans exactly", n, s.cfg.ExactThreshold)
		}
		var exactLat, annLat []time.Duration
		hit := 0
		accept := func(i uint32) bool { return !c.deleted[i] }
		for range queries {
			q := normalized(randUnitless(r, dim))
			t0 := time.Now()
			want := c.scan(q, k, accept)
			exactLat = append(exactLat, time.Since(t0))
			t0 = time.Now()
			got, err := s.Search(ctx, "bench", pipeline.VectorQuery{Vector: q, K: k})
			annLat = append(annLat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			truth := map[string]bool{}
			for _, w := range want {
				truth[c.ids[w.id]] = true
			}
			for _, g := range got {
				if truth[g.ID] {
					hit++
				}
			}
		}
		recall := float64(hit) / float64(queries*k)
		b.ReportMetric(recall, "recall@10")
		b.ReportMetric(float64(percentile(annLat, 0.5).Microseconds()), "search_p50_us")
		b.ReportMetric(float64(percentile(annLat, 0.99).Microseconds()), "search_p99_us")
		b.ReportMetric(float64(percentile(exactLat, 0.5).Microseconds()), "exact_p50_us")
		b.ReportMetric(float64(percentile(exactLat, 0.99).Microseconds()), "exact_p99_us")
		b.ReportMetric(load.Seconds(), "load_s")
		b.ReportMetric(float64(n)/load.Seconds(), "load_points/s")
		b.ReportMetric(peak, "peak_MiB")
		b.ReportMetric(peak/raw, "rss/raw")

		start = time.Now()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		s, err = Open(dir, WithConfig(benchConfig()))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "reopen_s")
		if got, _ := s.Count(ctx, "bench"); got != n {
			b.Fatalf("Count after reopen = %d, want %d", got, n)
		}
		s.Close()
		if recall < 0.95 {
			b.Errorf("recall@10 = %.3f, want >= 0.95", recall)
		}
		if peak/raw > 2.5 {
			b.Errorf("peak RSS %.0f MiB is %.2f× the raw vectors (%.0f MiB), want <= 2.5×", peak, peak/raw, raw)
		}
	}
}

// BenchmarkUpsert measures fsynced upsert throughput of 384-d points in
// batches of 100 and 1000 (below the index threshold, so it is the log's
// cost plus applying).
func BenchmarkUpsert(b *testing.B) {
	const dim, total = 384, 20_000
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprint("batch=", batch), func(b *testing.B) {
			for range b.N {
				s, err := Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if err := s.EnsureCollection(ctx, "u", dim); err != nil {
					b.Fatal(err)
				}
				r := rand.New(rand.NewPCG(1, 1))
				batches := make([][]pipeline.Point, total/batch)
				for i := range batches {
					batches[i] = make([]pipeline.Point, batch)
					for j := range batches[i] {
						batches[i][j] = pipeline.Point{ID: fmt.Sprint("p", i*batch+j), Vector: randUnitless(r, dim),
							Payload: pipeline.Payload{pipeline.PayloadBrand: "acme", pipeline.PayloadPrice: 9.5}}
					}
				}
				start := time.Now()
				for _, pts := range batches {
					if err := s.Upsert(ctx, "u", pts); err != nil {
						b.Fatal(err)
					}
				}
				el := time.Since(start)
				b.ReportMetric(float64(total)/el.Seconds(), "points/s")
				b.ReportMetric(float64(len(batches))/el.Seconds(), "batches/s")
				s.Close()
			}
		})
	}
}
