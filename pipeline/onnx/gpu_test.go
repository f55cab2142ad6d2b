package onnx

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"testing"

	"github.com/streamrec/streamrec/pipeline"
)

// The tests in this file run only on a GPU machine, through
// scripts/gpu-check.sh, which sets STREAMREC_GPU_LIBRARY to an ONNX Runtime
// build with the CUDA provider beside it.

// openProvider opens the model with the GPU-capable runtime on provider.
func openProvider(tb testing.TB, provider string) *Model {
	tb.Helper()
	lib := os.Getenv("STREAMREC_GPU_LIBRARY")
	if lib == "" {
		tb.Skip("STREAMREC_GPU_LIBRARY not set (scripts/gpu-check.sh sets it on a GPU machine)")
	}
	cfg := repoConfig()
	cfg.LibraryPath = lib
	cfg.Provider = provider
	m, err := Open(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	if m.Provider() != provider {
		tb.Fatalf("asked for %s, got %s (see the logged fallback reason)", provider, m.Provider())
	}
	return m
}

// TestCUDAMatchesCPU: on the golden strings, CUDA vectors are within 1e-3
// cosine distance of CPU vectors from the same runtime.
func TestCUDAMatchesCPU(t *testing.T) {
	cpu := openProvider(t, "cpu")
	gpu := openProvider(t, "cuda")
	g := loadGolden(t)
	batch := make([][]int32, len(g.Vectors))
	for i, v := range g.Vectors {
		batch[i] = cpu.Tokenize(nil, kindOf(v.Kind), v.Text)
	}
	a, err := cpu.Run(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gpu.Run(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range a {
		d := 1 - dot(a[i], b[i])
		worst = math.Max(worst, d)
		if d > 1e-3 {
			t.Errorf("%q: CUDA vector %.2e from CPU", g.Vectors[i].Text, d)
		}
	}
	fmt.Printf("gpu-check: %d golden strings, worst CUDA-vs-CPU cosine distance %.2e\n", len(a), worst)
}

// BenchmarkProviders: embeddings/s on CPU and CUDA at batch 1, 8, 32, 128.
func BenchmarkProviders(b *testing.B) {
	texts := benchTexts(128, false)
	for _, provider := range []string{"cpu", "cuda"} {
		m := openProvider(b, provider)
		for _, size := range []int{1, 8, 32, 128} {
			b.Run(fmt.Sprintf("%s/batch-%d", provider, size), func(b *testing.B) {
				batch := make([][]int32, size)
				for i := range batch {
					batch[i] = m.Tokenize(nil, pipeline.Passage, texts[i])
				}
				b.ResetTimer()
				for range b.N {
					if _, err := m.Run(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "embeddings/s")
			})
		}
	}
}
