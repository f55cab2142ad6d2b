package onnx

import (
	"context"
	"fmt"
	"os"

	"github.com/segmentio/encoding/json"

	"github.com/streamrec/streamrec/pipeline"
)

// CenterFile is the name of a model's centring vector in its folder.
const CenterFile = "center.json"

// centerJSON is center.json: the mean of the model's unit vectors over a
// reference corpus.
type centerJSON struct {
	Model  string    `json:"model"`
	Corpus string    `json:"corpus"`
	Count  int       `json:"count"`
	Mean   []float32 `json:"mean"`
}

func readCenter(path string, meta Meta) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (or set embed.onnx.center: false)", ErrArtifacts, err)
	}
	var c centerJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", path, err)
	}
	if c.Model != meta.Version || len(c.Mean) != meta.Dim {
		return nil, fmt.Errorf("onnx: %s is for model %q with %d dimensions, not %q with %d (rebuild it: make artifacts)",
			path, c.Model, len(c.Mean), meta.Version, meta.Dim)
	}
	return c.Mean, nil
}

// WriteCenter embeds corpus as passages with the raw (uncentred) model and
// writes the mean vector to the model folder's center.json. describe names
// the corpus for the record.
func WriteCenter(ctx context.Context, cfg Config, corpus []string, describe string) (string, error) {
	cfg.Center = false
	m, err := Open(cfg, nil)
	if err != nil {
		return "", err
	}
	defer m.Close()
	sum := make([]float64, m.Dim())
	const batch = 32
	for i := 0; i < len(corpus); i += batch {
		seqs := make([][]int32, 0, batch)
		for _, t := range corpus[i:min(i+batch, len(corpus))] {
			seqs = append(seqs, m.Tokenize(nil, pipeline.Passage, t))
		}
		vecs, err := m.Run(ctx, seqs)
		if err != nil {
			return "", err
		}
		for _, v := range vecs {
			for k, x := range v {
				sum[k] += float64(x)
			}
		}
	}
	c := centerJSON{Model: m.meta.Version, Corpus: describe, Count: len(corpus), Mean: make([]float32, len(sum))}
	for k, x := range sum {
		c.Mean[k] = float32(x / float64(len(corpus)))
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	path := cfg.ModelDir + "/" + CenterFile
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
