package pipeline

import (
	"context"
	"errors"
)

// Payload keys the stores index and the filters use. Other keys are stored
// and returned as they are.
const (
	PayloadTitle     = "title"         // string
	PayloadCategory  = "category_path" // []string, root first
	PayloadBrand     = "brand"         // string
	PayloadPrice     = "price"         // float64
	PayloadInStock   = "in_stock"      // bool
	PayloadUpdatedAt = "updated_at"    // int64, Unix milliseconds
)

// Payload is a point's data besides its vector. Values are string, []string,
// float64, int64 or bool; a store returns them with those types.
type Payload map[string]any

// Point is one vector in a collection, keyed by its entity's id (an item or
// user id). Stores derive their own point ids from ID deterministically, so
// writing the same ID twice overwrites.
type Point struct {
	ID      string
	Vector  []float32
	Payload Payload
}

// Filter restricts a search. Zero fields do not filter.
type Filter struct {
	// Category matches points whose category_path contains it at any level.
	Category string
	Brand    string
	MinPrice *float64
	MaxPrice *float64
	InStock  *bool
	// ExcludeIDs are never returned.
	ExcludeIDs []string
}

// VectorQuery is a nearest-neighbour search by cosine similarity.
type VectorQuery struct {
	Vector []float32
	K      int
	Filter Filter
}

// Hit is one search result, best first.
type Hit struct {
	ID      string
	Score   float32 // cosine similarity
	Payload Payload
}

// Errors a VectorStore returns.
var (
	// ErrNoCollection: the collection or alias does not exist.
	ErrNoCollection = errors.New("vector store: no such collection")
	// ErrDimension: a vector's length is not the collection's.
	ErrDimension = errors.New("vector store: vector dimension mismatch")
)

// VectorStore keeps vectors in named collections and finds the nearest.
//
// Contract:
//   - A collection name in Upsert, Delete, Get and Search may be an alias;
//     it resolves to the collection the alias points at when the call runs.
//   - Upsert and Delete are durable when they return nil: the points
//     survive a crash of the store's process. They are idempotent by ID.
//   - After Upsert returns nil, Get and Search see the points (read your
//     writes; an approximate index may still rank them approximately).
//   - An Upsert that fails with ErrDimension writes none of its points
//     (Qdrant itself writes part of a batch with one wrong-length vector:
//     adapters check before sending).
//   - Vectors are compared by cosine similarity; stores may normalise them.
//     A zero vector has cosine 0 with every vector.
//   - Missing IDs are skipped by Get and Delete, not errors.
//   - Safe for concurrent use.
type VectorStore interface {
	// EnsureCollection creates the collection with vectors of dim if it does
	// not exist, with the payload indexes the filters need. Creating an
	// existing collection with the same dim is not an error.
	EnsureCollection(ctx context.Context, name string, dim int) error
	Upsert(ctx context.Context, collection string, points []Point) error
	Delete(ctx context.Context, collection string, ids []string) error
	Get(ctx context.Context, collection string, ids []string) ([]Point, error)
	Search(ctx context.Context, collection string, q VectorQuery) ([]Hit, error)
	// SetAlias points alias at collection, atomically replacing where it
	// pointed before.
	SetAlias(ctx context.Context, alias, collection string) error
	// ResolveAlias returns the collection alias points at.
	ResolveAlias(ctx context.Context, alias string) (string, error)
	// Count returns the number of points in a collection.
	Count(ctx context.Context, collection string) (int, error)
	// DropCollection deletes a collection; aliases to it stop resolving.
	DropCollection(ctx context.Context, name string) error
}
