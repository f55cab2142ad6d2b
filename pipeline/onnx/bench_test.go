package onnx

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/streamrec/streamrec/internal/benchmem"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/embed"
	"github.com/streamrec/streamrec/producers/synth"
)

// benchTexts are realistic product titles (English and Chinese) and, for
// mixed lengths, descriptions, from the synthetic catalog.
func benchTexts(n int, descriptions bool) []string {
	cfg := synth.DefaultConfig()
	cfg.Items = n
	cat := synth.NewCatalog(cfg, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC))
	out := make([]string, n)
	for i, it := range cat.Items {
		out[i] = it.Title
		if descriptions && i%3 == 0 {
			out[i] += ". " + it.Description
		}
	}
	return out
}

// BenchmarkModel is the model alone on CPU: embeddings/s at batch sizes
// 1, 8, 32 and 128 (product titles, pre-tokenized).
func BenchmarkModel(b *testing.B) {
	m := open(b)
	texts := benchTexts(128, false)
	for _, size := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("batch-%d", size), func(b *testing.B) {
			batch := make([][]int32, size)
			for i := range batch {
				batch[i] = m.Tokenize(nil, pipeline.Passage, texts[i])
			}
			benchmem.ResetPeak()
			b.ResetTimer()
			for range b.N {
				if _, err := m.Run(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "embeddings/s")
			b.ReportMetric(benchmem.PeakMiB(), "peak-rss-MiB")
		})
	}
}

// BenchmarkCallers: 64 goroutines each embedding single texts, through the
// micro-batcher and, for comparison, straight to the model; and the
// batcher's padding with and without length buckets on mixed lengths.
func BenchmarkCallers(b *testing.B) {
	m := open(b)
	const perCaller = 8
	titles := benchTexts(64*perCaller, false)
	mixed := benchTexts(64*perCaller, true)

	run := func(b *testing.B, callers int, texts []string, embedOne func(ctx context.Context, text string) error) {
		benchmem.ResetPeak()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perCaller {
						if err := embedOne(context.Background(), texts[c*perCaller+i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		}
		b.ReportMetric(float64(b.N*callers*perCaller)/time.Since(start).Seconds(), "embeddings/s")
		b.ReportMetric(benchmem.PeakMiB(), "peak-rss-MiB")
	}
	batched := func(b *testing.B, callers int, texts []string, pol embed.Policy) {
		reg := prometheus.NewRegistry()
		bt := startBatcher(b, m, pol, reg)
		run(b, callers, texts, func(ctx context.Context, text string) error {
			_, err := bt.Embed(ctx, pipeline.Passage, []string{text})
			return err
		})
		h := histograms(b, reg)
		wait := h["streamrec_embed_wait_seconds"]
		b.ReportMetric(quantile(wait, 0.5)*1e3, "added-p50-ms")
		b.ReportMetric(quantile(wait, 0.99)*1e3, "added-p99-ms")
		pad := h["streamrec_embed_padding_ratio"]
		b.ReportMetric(pad.GetSampleSum()/float64(pad.GetSampleCount()), "padding-ratio")
		size := h["streamrec_embed_batch_size"]
		b.ReportMetric(size.GetSampleSum()/float64(size.GetSampleCount()), "mean-batch")
	}

	b.Run("64-callers/unbatched", func(b *testing.B) {
		run(b, 64, titles, func(ctx context.Context, text string) error {
			_, err := m.Run(ctx, [][]int32{m.Tokenize(nil, pipeline.Passage, text)})
			return err
		})
	})
	b.Run("64-callers/batched", func(b *testing.B) { batched(b, 64, titles, embed.DefaultPolicy()) })
	// Light load: the latency the batcher adds when the model is mostly idle.
	b.Run("2-callers/batched", func(b *testing.B) { batched(b, 2, titles, embed.DefaultPolicy()) })
	b.Run("64-callers-mixed-lengths/buckets", func(b *testing.B) { batched(b, 64, mixed, embed.DefaultPolicy()) })
	b.Run("64-callers-mixed-lengths/no-buckets", func(b *testing.B) {
		pol := embed.DefaultPolicy()
		pol.MaxPadding = 1
		batched(b, 64, mixed, pol)
	})
}

// BenchmarkOverhead compares one call of 32 texts through the batcher
// (tokenizing included) with the model's run of the same 32, tokenized
// beforehand: the difference is what the tokenizer and batcher cost.
func BenchmarkOverhead(b *testing.B) {
	m := open(b)
	texts := benchTexts(32, false)
	batch := make([][]int32, len(texts))
	for i, t := range texts {
		batch[i] = m.Tokenize(nil, pipeline.Passage, t)
	}
	pol := embed.DefaultPolicy()
	pol.MaxWait = 0
	bt := startBatcher(b, m, pol, nil)
	ctx := context.Background()

	// Interleave the two so machine noise hits both alike.
	var model, through time.Duration
	for range b.N {
		t0 := time.Now()
		if _, err := m.Run(ctx, batch); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := bt.Embed(ctx, pipeline.Passage, texts); err != nil {
			b.Fatal(err)
		}
		model += t1.Sub(t0)
		through += time.Since(t1)
	}
	b.ReportMetric(float64(model.Microseconds())/float64(b.N)/1e3, "model-ms")
	b.ReportMetric(float64(through.Microseconds())/float64(b.N)/1e3, "batcher-ms")
	b.ReportMetric(100*(float64(through)-float64(model))/float64(model), "overhead-%")
}

func histograms(b *testing.B, reg *prometheus.Registry) map[string]*dto.Histogram {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if ms := mf.GetMetric(); len(ms) == 1 && ms[0].GetHistogram() != nil {
			out[mf.GetName()] = ms[0].GetHistogram()
		}
	}
	return out
}

// quantile estimates q from a histogram's cumulative buckets by linear
// interpolation within the bucket that holds it.
func quantile(h *dto.Histogram, q float64) float64 {
	if h == nil || h.GetSampleCount() == 0 {
		return math.NaN()
	}
	rank := q * float64(h.GetSampleCount())
	bs := h.GetBucket()
	sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
	prevBound, prevCount := 0.0, 0.0
	for _, bk := range bs {
		c := float64(bk.GetCumulativeCount())
		if c >= rank {
			if c == prevCount {
				return bk.GetUpperBound()
			}
			return prevBound + (bk.GetUpperBound()-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = bk.GetUpperBound(), c
	}
	return prevBound
}
