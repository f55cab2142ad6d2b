package qdranttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/streamrec/streamrec/pipeline"
	sqdrant "github.com/streamrec/streamrec/pipeline/qdrant"
)

// The kinds of Backend, as Each names its subtests (qdrant=fake,
// qdrant=real).
const (
	KindFake = "fake"
	KindReal = "real"
)

// Backend is one Qdrant that a test runs against: a fresh fake, or the test
// binary's real server with a namespace of the test's own.
type Backend struct {
	// Kind is KindFake or KindReal.
	Kind string
	// Addr (gRPC host:port) and APIKey reach it.
	Addr   string
	APIKey string
	// Fake is the fake, for fault injection and call counts; nil on the
	// real server.
	Fake *Server
	// Real is the real server; nil on the fake.
	Real *Real
	// Prefix starts the names of the test's collections and aliases: a
	// Namespace on the real server, empty on the fake (which is the test's
	// own).
	Prefix string
}

// Each runs fn as two subtests of t, "qdrant=fake" and "qdrant=real", so
// the output names the backend. The real one skips without a server (fails
// under STREAMREC_REQUIRE_QDRANT=1).
func Each(t *testing.T, fn func(t *testing.T, kind string)) {
	t.Helper()
	for _, kind := range []string{KindFake, KindReal} {
		t.Run("qdrant="+kind, func(t *testing.T) { fn(t, kind) })
	}
}

// Open returns a Backend of kind for tb: a fresh fake started with opts and
// stopped when tb ends, or RealServer with a fresh Namespace (opts do not
// apply to it). On the real server it skips like RealServer.
func Open(tb testing.TB, kind string, opts ...Option) *Backend {
	tb.Helper()
	switch kind {
	case KindFake:
		srv := Start(tb, opts...)
		return &Backend{Kind: kind, Addr: srv.Addr(), APIKey: srv.apiKey, Fake: srv}
	case KindReal:
		r := RealServer(tb)
		b := &Backend{Kind: kind, Addr: r.Addr, APIKey: r.APIKey, Real: &r, Prefix: r.Namespace(tb)}
		tb.Logf("qdrant=real: Qdrant %s at %s, namespace %s", r.Version, r.Addr, b.Prefix)
		return b
	default:
		tb.Fatalf("qdranttest: unknown backend kind %q", kind)
		return nil
	}
}

// Name returns name in the test's namespace.
func (b *Backend) Name(name string) string { return b.Prefix + name }

// Config is the adapter's default config for the backend (address, API
// key, and TLS with the CA of a StartReal server).
func (b *Backend) Config() sqdrant.Config {
	cfg := sqdrant.DefaultConfig()
	cfg.Addr, cfg.APIKey = b.Addr, b.APIKey
	if b.Real != nil && b.Real.CAFile != "" {
		cfg.TLS, cfg.CAFile = true, b.Real.CAFile
	}
	return cfg
}

// Prefixed returns s with every collection and alias name put under prefix,
// and prefix taken off the collection names ResolveAlias returns, so that a
// test (the vectorstoretest suite) that names its collections freely keeps
// to its own namespace on a shared server. An empty prefix returns s.
func Prefixed(s pipeline.VectorStore, prefix string) pipeline.VectorStore {
	if prefix == "" {
		return s
	}
	return prefixed{s, prefix}
}

type prefixed struct {
	s      pipeline.VectorStore
	prefix string
}

func (p prefixed) EnsureCollection(ctx context.Context, name string, dim int) error {
	return p.s.EnsureCollection(ctx, p.prefix+name, dim)
}

func (p prefixed) Upsert(ctx context.Context, collection string, points []pipeline.Point) error {
	return p.s.Upsert(ctx, p.prefix+collection, points)
}

func (p prefixed) Delete(ctx context.Context, collection string, ids []string) error {
	return p.s.Delete(ctx, p.prefix+collection, ids)
}

func (p prefixed) Get(ctx context.Context, collection string, ids []string) ([]pipeline.Point, error) {
	return p.s.Get(ctx, p.prefix+collection, ids)
}

func (p prefixed) Search(ctx context.Context, collection string, q pipeline.VectorQuery) ([]pipeline.Hit, error) {
	return p.s.Search(ctx, p.prefix+collection, q)
}

func (p prefixed) SetAlias(ctx context.Context, alias, collection string) error {
	return p.s.SetAlias(ctx, p.prefix+alias, p.prefix+collection)
}

func (p prefixed) ResolveAlias(ctx context.Context, alias string) (string, error) {
	name, err := p.s.ResolveAlias(ctx, p.prefix+alias)
	return strings.TrimPrefix(name, p.prefix), err
}

func (p prefixed) Count(ctx context.Context, collection string) (int, error) {
	return p.s.Count(ctx, p.prefix+collection)
}

func (p prefixed) DropCollection(ctx context.Context, name string) error {
	return p.s.DropCollection(ctx, p.prefix+name)
}

func splitAddr(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("qdrant address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("qdrant address %q: port: %w", addr, err)
	}
	return host, port, nil
}

// tlsConfig trusts the CA in caFile.
func tlsConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificates in %s", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
