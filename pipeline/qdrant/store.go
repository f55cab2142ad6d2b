// Package qdrant is the pipeline.VectorStore backed by Qdrant over gRPC
// (github.com/qdrant/go-client).
//
// Layout: one collection per model version (for example items_v3), each with
// one unnamed dense vector, Cosine distance, and payload indexes on
// category_path and brand (keyword), price (float) and in_stock (bool). The
// serving path reads through an alias that SetAlias moves atomically.
//
// Point ids are UUIDs derived (SHA-1, RFC 4122 version 5) from the entity id
// alone; the collection name carries the model version, so the same item in
// two model versions lives in two collections and redelivery of a record
// overwrites the same point. The entity id is kept in the payload under
// "_id" and comes back as Point.ID and Hit.ID.
//
// Calls retry transient gRPC errors (Unavailable, DeadlineExceeded of one
// attempt, ResourceExhausted, Aborted) with exponential backoff; see
// Retryable.
package qdrant

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/streamrec/streamrec/pipeline"
)

// idKey is the payload key that holds the entity id. It is reserved:
// Upsert rejects payloads that set it.
const idKey = "_id"

// Errors besides pipeline.ErrNoCollection and pipeline.ErrDimension.
var (
	// ErrPayload: a payload value has a type the store does not keep, or
	// uses the reserved key "_id".
	ErrPayload = errors.New("qdrant: unsupported payload")
)

var _ pipeline.VectorStore = (*Store)(nil)

// Store is a pipeline.VectorStore on Qdrant. It is safe for concurrent use.
type Store struct {
	cfg    Config
	log    *slog.Logger
	client *qc.Client
}

// Option configures New.
type Option func(*options)

type options struct {
	log      *slog.Logger
	dialOpts []grpc.DialOption
}

// WithLogger logs retries to l. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithDialOptions adds gRPC dial options after the store's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// New validates cfg and builds a client. It does not wait for Qdrant: call
// Ping at start to fail fast.
func New(cfg Config, opts ...Option) (*Store, error) {
	if err := cfg.Validate("qdrant"); err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	host, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	ccfg := &qc.Config{
		Host:   host,
		Port:   port,
		UseTLS: cfg.TLS,
		// Ping checks the server instead, logging through our logger.
		SkipCompatibilityCheck: true,
		GrpcOptions:            o.dialOpts,
	}
	if cfg.APIKey != "" {
		// The key goes in the api-key header (Qdrant's), added here rather
		// than through qc.Config.APIKey, which warns about plaintext on the
		// process's default logger instead of ours.
		ccfg.GrpcOptions = append([]grpc.DialOption{grpc.WithChainUnaryInterceptor(apiKey(cfg.APIKey))}, o.dialOpts...)
		if !cfg.TLS {
			o.log.Warn("qdrant.api_key is sent without TLS", "addr", cfg.Addr)
		}
	}
	if cfg.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("qdrant.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("qdrant.ca_file: no PEM certificates in %s", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		ccfg.TLSConfig = tc
	}
	client, err := qc.NewClient(ccfg)
	if err != nil {
		return nil, fmt.Errorf("qdrant client for %s: %w", cfg.Addr, err)
	}
	return &Store{cfg: cfg, log: o.log, client: client}, nil
}

// apiKey adds Qdrant's api-key header to every call.
func apiKey(key string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(metadata.AppendToOutgoingContext(ctx, "api-key", key), method, req, reply, cc, opts...)
	}
}

// Close closes the connections. The Store must not be used after Close.
func (s *Store) Close() error { return s.client.Close() }

// Ping checks that Qdrant answers (with retries) and accepts the API key,
// and returns its version. Qdrant answers health checks without a key, so
// Ping also lists the aliases, which needs one (a read-only key will do).
func (s *Store) Ping(ctx context.Context) (string, error) {
	var version string
	err := s.do(ctx, "health check", func(ctx context.Context) error {
		r, err := s.client.HealthCheck(ctx)
		version = r.GetVersion()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("qdrant health check %s: %w", s.cfg.Addr, err)
	}
	err = s.do(ctx, "list aliases", func(ctx context.Context) error {
		_, err := s.client.ListAliases(ctx)
		return err
	})
	if c := status.Code(unwrapStatus(err)); c == codes.Unauthenticated || c == codes.PermissionDenied {
		return "", fmt.Errorf("qdrant %s at %s refuses qdrant.api_key: %w", version, s.cfg.Addr, err)
	}
	if err != nil {
		return "", fmt.Errorf("qdrant list aliases %s: %w", s.cfg.Addr, err)
	}
	return version, nil
}

// PointID is the Qdrant point id (a version 5 UUID) for an entity id.
func PointID(entityID string) string {
	// Namespace: a fixed random UUID; changing it orphans every stored point.
	ns := [16]byte{0x6b, 0x3f, 0x1e, 0x2a, 0x9c, 0x44, 0x4d, 0x5e, 0x8f, 0x10, 0x3a, 0x7b, 0xc2, 0x65, 0xd9, 0x01}
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(entityID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	b := hex.EncodeToString(u[:])
	return b[0:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:32]
}

func pointIDs(ids []string) []*qc.PointId {
	out := make([]*qc.PointId, len(ids))
	for i, id := range ids {
		out[i] = qc.NewIDUUID(PointID(id))
	}
	return out
}

// payloadIndexes are the indexes EnsureCollection creates.
var payloadIndexes = []struct {
	field string
	typ   qc.FieldType
}{
	{pipeline.PayloadCategory, qc.FieldType_FieldTypeKeyword},
	{pipeline.PayloadBrand, qc.FieldType_FieldTypeKeyword},
	{pipeline.PayloadPrice, qc.FieldType_FieldTypeFloat},
	{pipeline.PayloadInStock, qc.FieldType_FieldTypeBool},
}

// EnsureCollection creates the collection (Cosine, size dim) if it does not
// exist and then the payload indexes (creating an existing index is a no-op
// in Qdrant, so a crash between the two heals on the next call). An existing
// collection of another size is ErrDimension.
func (s *Store) EnsureCollection(ctx context.Context, name string, dim int) error {
	if dim <= 0 {
		return fmt.Errorf("qdrant ensure collection %s: dim %d must be > 0: %w", name, dim, pipeline.ErrDimension)
	}
	err := s.do(ctx, "create collection", func(ctx context.Context) error {
		info, err := s.client.GetCollectionInfo(ctx, name)
		if err == nil {
			if got := info.GetConfig().GetParams().GetVectorsConfig().GetParams().GetSize(); got != uint64(dim) {
				return fmt.Errorf("%w: collection has dim %d, want %d", pipeline.ErrDimension, got, dim)
			}
			return nil
		}
		if status.Code(err) != codes.NotFound {
			return err
		}
		err = s.client.CreateCollection(ctx, &qc.CreateCollection{
			CollectionName: name,
			VectorsConfig:  qc.NewVectorsConfig(&qc.VectorParams{Size: uint64(dim), Distance: qc.Distance_Cosine}),
		})
		if status.Code(err) == codes.AlreadyExists {
			// Created concurrently; the next attempt checks its size.
			return status.Error(codes.Aborted, err.Error())
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("qdrant ensure collection %s (dim %d): %w", name, dim, classify(err))
	}
	wait := true
	for _, ix := range payloadIndexes {
		err := s.do(ctx, "create field index", func(ctx context.Context) error {
			_, err := s.client.CreateFieldIndex(ctx, &qc.CreateFieldIndexCollection{
				CollectionName: name,
				Wait:           &wait,
				FieldName:      ix.field,
				FieldType:      ix.typ.Enum(),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("qdrant create %s index on %s.%s: %w", ix.typ, name, ix.field, classify(err))
		}
	}
	return nil
}

// Upsert writes points in batches of Config.BatchSize, each with wait=true,
// so a nil return means Qdrant has applied (and logged in its WAL) them all.
// On error, earlier batches stay written; retrying the call is harmless.
//
// Vectors of different lengths in one call are ErrDimension before anything
// is sent: Qdrant 1.17 applies an arbitrary subset of the other points of a
// batch in which one vector has the wrong dimension, and then fails it. With
// one length for all, either the length is the collection's or Qdrant
// rejects every point, so a call that fails with ErrDimension writes
// nothing.
func (s *Store) Upsert(ctx context.Context, collection string, points []pipeline.Point) error {
	if len(points) == 0 {
		return nil
	}
	for _, p := range points {
		switch {
		case len(p.Vector) == 0:
			return fmt.Errorf("qdrant upsert %d points into %s: point %q has no vector: %w",
				len(points), collection, p.ID, pipeline.ErrDimension)
		case len(p.Vector) != len(points[0].Vector):
			return fmt.Errorf("qdrant upsert %d points into %s: point %q has %d dimensions, point %q has %d: %w",
				len(points), collection, p.ID, len(p.Vector), points[0].ID, len(points[0].Vector), pipeline.ErrDimension)
		}
	}
	structs := make([]*qc.PointStruct, len(points))
	for i, p := range points {
		payload, err := toValues(p.Payload)
		if err != nil {
			return fmt.Errorf("qdrant upsert %d points into %s: point %q: %w", len(points), collection, p.ID, err)
		}
		payload[idKey] = qc.NewValueString(p.ID)
		structs[i] = &qc.PointStruct{
			Id:      qc.NewIDUUID(PointID(p.ID)),
			Vectors: qc.NewVectorsDense(p.Vector),
			Payload: payload,
		}
	}
	wait := true
	batches := (len(structs) + s.cfg.BatchSize - 1) / s.cfg.BatchSize
	for b := range batches {
		batch := structs[b*s.cfg.BatchSize : min((b+1)*s.cfg.BatchSize, len(structs))]
		err := s.do(ctx, "upsert", func(ctx context.Context) error {
			_, err := s.client.Upsert(ctx, &qc.UpsertPoints{CollectionName: collection, Wait: &wait, Points: batch})
			return err
		})
		if err != nil {
			return fmt.Errorf("qdrant upsert %d points into %s (batch %d/%d of %d points): %w",
				len(points), collection, b+1, batches, len(batch), classify(err))
		}
	}
	return nil
}

// Delete removes points by entity id, in batches of Config.BatchSize, with
// wait=true. Missing ids are skipped.
func (s *Store) Delete(ctx context.Context, collection string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	wait := true
	batches := (len(ids) + s.cfg.BatchSize - 1) / s.cfg.BatchSize
	for b := range batches {
		batch := pointIDs(ids[b*s.cfg.BatchSize : min((b+1)*s.cfg.BatchSize, len(ids))])
		err := s.do(ctx, "delete", func(ctx context.Context) error {
			_, err := s.client.Delete(ctx, &qc.DeletePoints{
				CollectionName: collection, Wait: &wait, Points: qc.NewPointsSelectorIDs(batch),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("qdrant delete %d points from %s (batch %d/%d): %w", len(ids), collection, b+1, batches, classify(err))
		}
	}
	return nil
}

// Get returns the stored points among ids, in the order of ids, each once.
// Vectors come back as stored: Qdrant normalises them for Cosine.
func (s *Store) Get(ctx context.Context, collection string, ids []string) ([]pipeline.Point, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var got []*qc.RetrievedPoint
	err := s.do(ctx, "get", func(ctx context.Context) error {
		var err error
		got, err = s.client.Get(ctx, &qc.GetPoints{
			CollectionName: collection,
			Ids:            pointIDs(ids),
			WithPayload:    qc.NewWithPayload(true),
			WithVectors:    qc.NewWithVectors(true),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("qdrant get %d points from %s: %w", len(ids), collection, classify(err))
	}
	byID := make(map[string]pipeline.Point, len(got))
	for _, rp := range got {
		id, payload, err := fromValues(rp.GetPayload(), rp.GetId())
		if err != nil {
			return nil, fmt.Errorf("qdrant get %d points from %s: %w", len(ids), collection, err)
		}
		byID[id] = pipeline.Point{ID: id, Vector: denseOf(rp.GetVectors()), Payload: payload}
	}
	out := make([]pipeline.Point, 0, len(byID))
	for _, id := range ids {
		if p, ok := byID[id]; ok {
			out = append(out, p)
			delete(byID, id)
		}
	}
	return out, nil
}

// Search returns the q.K nearest points that pass q.Filter, best first, with
// payloads. K of 0 returns nothing.
func (s *Store) Search(ctx context.Context, collection string, q pipeline.VectorQuery) ([]pipeline.Hit, error) {
	if q.K < 0 {
		return nil, fmt.Errorf("qdrant search %s: k %d must be >= 0", collection, q.K)
	}
	if q.K == 0 {
		return nil, nil
	}
	limit := uint64(q.K)
	req := &qc.QueryPoints{
		CollectionName: collection,
		Query:          qc.NewQueryDense(q.Vector),
		Filter:         toFilter(q.Filter),
		Limit:          &limit,
		WithPayload:    qc.NewWithPayload(true),
	}
	var res []*qc.ScoredPoint
	err := s.do(ctx, "query", func(ctx context.Context) error {
		var err error
		res, err = s.client.Query(ctx, req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("qdrant search %s (k %d): %w", collection, q.K, classify(err))
	}
	hits := make([]pipeline.Hit, 0, len(res))
	for _, sp := range res {
		id, payload, err := fromValues(sp.GetPayload(), sp.GetId())
		if err != nil {
			return nil, fmt.Errorf("qdrant search %s (k %d): %w", collection, q.K, err)
		}
		hits = append(hits, pipeline.Hit{ID: id, Score: sp.GetScore(), Payload: payload})
	}
	return hits, nil
}

// toFilter maps a pipeline.Filter to a Qdrant filter; nil when it filters
// nothing.
func toFilter(f pipeline.Filter) *qc.Filter {
	var must, mustNot []*qc.Condition
	if f.Category != "" {
		must = append(must, qc.NewMatchKeyword(pipeline.PayloadCategory, f.Category))
	}
	if f.Brand != "" {
		must = append(must, qc.NewMatchKeyword(pipeline.PayloadBrand, f.Brand))
	}
	if f.MinPrice != nil || f.MaxPrice != nil {
		must = append(must, qc.NewRange(pipeline.PayloadPrice, &qc.Range{Gte: f.MinPrice, Lte: f.MaxPrice}))
	}
	if f.InStock != nil {
		must = append(must, qc.NewMatchBool(pipeline.PayloadInStock, *f.InStock))
	}
	if len(f.ExcludeIDs) > 0 {
		mustNot = append(mustNot, qc.NewHasID(pointIDs(f.ExcludeIDs)...))
	}
	if must == nil && mustNot == nil {
		return nil
	}
	return &qc.Filter{Must: must, MustNot: mustNot}
}

// SetAlias points alias at collection: one UpdateAliases request that
// deletes the alias (a no-op when absent) and creates it, which Qdrant
// applies under one lock, so readers see the old or the new target.
func (s *Store) SetAlias(ctx context.Context, alias, collection string) error {
	err := s.do(ctx, "update aliases", func(ctx context.Context) error {
		return s.client.UpdateAliases(ctx, []*qc.AliasOperations{
			qc.NewAliasDelete(alias),
			qc.NewAliasCreate(alias, collection),
		})
	})
	if err != nil {
		return fmt.Errorf("qdrant set alias %s -> %s: %w", alias, collection, classify(err))
	}
	return nil
}

// ResolveAlias returns the collection alias points at, or ErrNoCollection.
func (s *Store) ResolveAlias(ctx context.Context, alias string) (string, error) {
	var all []*qc.AliasDescription
	err := s.do(ctx, "list aliases", func(ctx context.Context) error {
		var err error
		all, err = s.client.ListAliases(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("qdrant resolve alias %s: %w", alias, classify(err))
	}
	for _, a := range all {
		if a.GetAliasName() == alias {
			return a.GetCollectionName(), nil
		}
	}
	return "", fmt.Errorf("qdrant resolve alias %s: %w", alias, pipeline.ErrNoCollection)
}

// Count returns the exact number of points in a collection (or alias).
func (s *Store) Count(ctx context.Context, collection string) (int, error) {
	var n uint64
	exact := true
	err := s.do(ctx, "count", func(ctx context.Context) error {
		var err error
		n, err = s.client.Count(ctx, &qc.CountPoints{CollectionName: collection, Exact: &exact})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("qdrant count %s: %w", collection, classify(err))
	}
	return int(n), nil
}

// DropCollection deletes a collection; Qdrant drops its aliases with it. A
// missing collection is ErrNoCollection (errors.Is it to make drops
// idempotent).
func (s *Store) DropCollection(ctx context.Context, name string) error {
	var dropped bool
	err := s.do(ctx, "delete collection", func(ctx context.Context) error {
		// The low-level call: the client turns result=false into an
		// untyped error.
		r, err := s.client.GetCollectionsClient().Delete(ctx, &qc.DeleteCollection{CollectionName: name})
		dropped = r.GetResult()
		return err
	})
	if err != nil {
		return fmt.Errorf("qdrant drop collection %s: %w", name, classify(err))
	}
	if !dropped {
		return fmt.Errorf("qdrant drop collection %s: %w", name, pipeline.ErrNoCollection)
	}
	return nil
}

// do runs op with a per-attempt timeout, retrying while Retryable says so,
// with exponential backoff and jitter (or the server's retry-after).
func (s *Store) do(ctx context.Context, what string, op func(ctx context.Context) error) error {
	delay := s.cfg.Retry.Initial
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := op(actx)
		cancel()
		if err == nil {
			return nil
		}
		if attempt >= s.cfg.Retry.MaxAttempts || ctx.Err() != nil || !Retryable(err) {
			if attempt > 1 {
				return fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		var re *qc.QdrantResourceExhaustedError
		if errors.As(err, &re) && re.RetryAfterS > 0 {
			wait = time.Duration(re.RetryAfterS) * time.Second
		}
		s.log.WarnContext(ctx, "qdrant call failed, retrying",
			"op", what, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, s.cfg.Retry.Max)
	}
}

// Retryable reports whether err is transient: gRPC Unavailable,
// DeadlineExceeded (of one attempt; the caller's own deadline stops retries
// in do), ResourceExhausted (also the client's rate-limit error) and Aborted.
// This is the only place that decides.
func Retryable(err error) bool {
	var re *qc.QdrantResourceExhaustedError
	if errors.As(err, &re) {
		return true
	}
	switch status.Code(unwrapStatus(err)) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// unwrapStatus finds the gRPC status error inside err's chain (status.Code
// only looks at err itself and its Unwrap chain via errors.As).
func unwrapStatus(err error) error {
	type grpcStatus interface{ GRPCStatus() *status.Status }
	var gs grpcStatus
	if errors.As(err, &gs) {
		return gs.GRPCStatus().Err()
	}
	return err
}

// classify adds the pipeline sentinel a Qdrant error stands for: NotFound is
// a missing collection or alias, and InvalidArgument about the vector
// dimension is ErrDimension.
func classify(err error) error {
	if errors.Is(err, pipeline.ErrDimension) || errors.Is(err, pipeline.ErrNoCollection) {
		return err
	}
	st, ok := status.FromError(unwrapStatus(err))
	if !ok {
		return err
	}
	switch {
	case st.Code() == codes.NotFound:
		return fmt.Errorf("%w: %w", pipeline.ErrNoCollection, err)
	case st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "Vector dimension error"):
		return fmt.Errorf("%w: %w", pipeline.ErrDimension, err)
	}
	return err
}
