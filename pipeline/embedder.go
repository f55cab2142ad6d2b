package pipeline

import "context"

// TextKind says what a text is, for models that embed search queries and
// the documents they search differently (e5 prefixes "query: " or
// "passage: ").
type TextKind uint8

// Text kinds.
const (
	// Passage is text that is searched: item titles and descriptions.
	Passage TextKind = iota
	// Query is text that searches: a shopper's search box input.
	Query
)

func (k TextKind) String() string {
	if k == Query {
		return "query"
	}
	return "passage"
}

// Embedder turns texts into vectors whose dot product is their cosine
// similarity.
//
// Contract:
//   - Embed returns one vector per text, in order, each Dim() float32s of
//     unit L2 length, or an error for the whole call.
//   - It blocks until the vectors are ready or ctx is done; a ctx deadline
//     is honoured while waiting in any queue.
//   - The same text, kind and ModelVersion always give the same vector (up
//     to floating-point noise of batching, below 1e-5 cosine distance).
//   - Safe for concurrent use.
type Embedder interface {
	Embed(ctx context.Context, kind TextKind, texts []string) ([][]float32, error)
	// Dim is the vector length.
	Dim() int
	// ModelVersion names the model; vectors of different versions are not
	// comparable, so stores keep them apart.
	ModelVersion() string
}
