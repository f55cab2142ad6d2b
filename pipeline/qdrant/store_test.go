package qdrant_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/qdrant"
	"github.com/streamrec/streamrec/pipeline/qdrant/qdranttest"
	"github.com/streamrec/streamrec/pipeline/vectorstoretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is a config for srv with fast retries.
func testConfig(srv *qdranttest.Server) qdrant.Config {
	cfg := qdrant.DefaultConfig()
	cfg.Addr = srv.Addr()
	cfg.BatchSize = 10
	cfg.Timeout = 5 * time.Second
	cfg.Retry = qdrant.Retry{Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxAttempts: 4}
	return cfg
}

// open starts a fake and a store on it, both closed when t ends.
func open(t *testing.T, opts ...qdranttest.Option) (*qdrant.Store, *qdranttest.Server) {
	t.Helper()
	srv := qdranttest.Start(t, opts...)
	s, err := qdrant.New(testConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

// TestConformance runs the VectorStore suite through the real client
// against the fake server.
func TestConformance(t *testing.T) {
	vectorstoretest.Run(t, func(t *testing.T) pipeline.VectorStore {
		s, _ := open(t)
		return s
	})
}

func TestPing(t *testing.T) {
	s, srv := open(t)
	v, err := s.Ping(context.Background())
	if err != nil || v != qdranttest.Version {
		t.Fatalf("Ping = %q, %v; want %q", v, err, qdranttest.Version)
	}
	if n := srv.Calls(qdranttest.MethodHealthCheck); n != 1 {
		t.Fatalf("health checks = %d, want 1", n)
	}
}

func vec(xs ...float32) []float32 { return xs }

func TestEnsureCollectionCreatesIndexes(t *testing.T) {
	s, srv := open(t)
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, "items_v1", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureCollection(ctx, "items_v1", 3); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(qdranttest.MethodCreateCollection); n != 1 {
		t.Errorf("creates = %d, want 1", n)
	}
	if n := srv.Calls(qdranttest.MethodCreateFieldIndex); n != 8 {
		t.Errorf("field index calls = %d, want 4 per EnsureCollection", n)
	}
	err := s.EnsureCollection(ctx, "items_v1", 4)
	if !errors.Is(err, pipeline.ErrDimension) {
		t.Fatalf("EnsureCollection with another dim = %v, want ErrDimension", err)
	}
	if err := s.EnsureCollection(ctx, "x", 0); !errors.Is(err, pipeline.ErrDimension) {
		t.Fatalf("EnsureCollection dim 0 = %v, want ErrDimension", err)
	}
}

func TestUpsertBatchesAndErrorMessages(t *testing.T) {
	s, srv := open(t)
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, "items_v1", 3); err != nil {
		t.Fatal(err)
	}
	var pts []pipeline.Point
	for i := range 25 {
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("i", i), Vector: vec(1, float32(i), 0)})
	}
	if err := s.Upsert(ctx, "items_v1", pts); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(qdranttest.MethodUpsert); n != 3 {
		t.Fatalf("upsert calls for 25 points in batches of 10 = %d, want 3", n)
	}
	pts[24].Vector = vec(1, 2)
	err := s.Upsert(ctx, "items_v1", pts)
	if !errors.Is(err, pipeline.ErrDimension) {
		t.Fatalf("err = %v, want ErrDimension", err)
	}
	for _, want := range []string{"qdrant upsert 25 points into items_v1", "batch 3/3", "expected dim: 3, got 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	err = s.Upsert(ctx, "items_v1", []pipeline.Point{{ID: "a", Vector: vec(1, 0, 0), Payload: pipeline.Payload{"_id": "x"}}})
	if !errors.Is(err, qdrant.ErrPayload) {
		t.Fatalf("reserved key: err = %v, want ErrPayload", err)
	}
	err = s.Upsert(ctx, "items_v1", []pipeline.Point{{ID: "a", Vector: vec(1, 0, 0), Payload: pipeline.Payload{"m": map[string]any{}}}})
	if !errors.Is(err, qdrant.ErrPayload) {
		t.Fatalf("map value: err = %v, want ErrPayload", err)
	}
}

func TestGetOrderAndNormalisedVectors(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, "c", 2); err != nil {
		t.Fatal(err)
	}
	err := s.Upsert(ctx, "c", []pipeline.Point{
		{ID: "a", Vector: vec(3, 4), Payload: pipeline.Payload{"n": 1, "f": float32(0.5)}},
		{ID: "b", Vector: vec(0, 2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "c", []string{"b", "zz", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "b" || got[1].ID != "a" {
		t.Fatalf("Get = %+v, want b then a", got)
	}
	// Qdrant normalises for Cosine at upsert.
	if v := got[1].Vector; len(v) != 2 || abs(v[0]-0.6) > 1e-6 || abs(v[1]-0.8) > 1e-6 {
		t.Errorf("vector = %v, want [0.6 0.8]", v)
	}
	if p := got[1].Payload; p["n"] != int64(1) || p["f"] != 0.5 {
		t.Errorf("payload = %#v, want widened int64 and float64", p)
	}
	if _, ok := got[1].Payload["_id"]; ok {
		t.Errorf("payload leaks the reserved _id key: %v", got[1].Payload)
	}
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func TestDropMissing(t *testing.T) {
	s, _ := open(t)
	if err := s.DropCollection(context.Background(), "nope"); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Fatalf("DropCollection(nope) = %v, want ErrNoCollection", err)
	}
}

func TestRetryTransient(t *testing.T) {
	for _, code := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted} {
		t.Run(code.String(), func(t *testing.T) {
			s, srv := open(t)
			ctx := context.Background()
			if err := s.EnsureCollection(ctx, "c", 2); err != nil {
				t.Fatal(err)
			}
			srv.FailNext(qdranttest.MethodUpsert, code, 2)
			if err := s.Upsert(ctx, "c", []pipeline.Point{{ID: "a", Vector: vec(1, 0)}}); err != nil {
				t.Fatalf("Upsert after two %v: %v", code, err)
			}
			if n := srv.Calls(qdranttest.MethodUpsert); n != 3 {
				t.Fatalf("upsert attempts = %d, want 3", n)
			}
			srv.FailNext(qdranttest.MethodQuery, code, 1)
			if hits, err := s.Search(ctx, "c", pipeline.VectorQuery{Vector: vec(1, 0), K: 1}); err != nil || len(hits) != 1 {
				t.Fatalf("Search after one %v = %v, %v", code, hits, err)
			}
		})
	}
}

func TestRetryGivesUp(t *testing.T) {
	s, srv := open(t)
	ctx := context.Background()
	srv.FailNext(qdranttest.MethodCount, codes.Unavailable, 10)
	_, err := s.Count(ctx, "c")
	if err == nil || !qdrant.Retryable(err) {
		t.Fatalf("err = %v, want the last Unavailable", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("error %q does not say how many attempts", err)
	}
	if n := srv.Calls(qdranttest.MethodCount); n != 4 {
		t.Fatalf("count attempts = %d, want MaxAttempts 4", n)
	}
}

func TestNoRetryPermanent(t *testing.T) {
	s, srv := open(t)
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, "c", 2); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(qdranttest.MethodUpsert, codes.InvalidArgument, 1)
	err := s.Upsert(ctx, "c", []pipeline.Point{{ID: "a", Vector: vec(1, 0)}})
	if err == nil || qdrant.Retryable(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if n := srv.Calls(qdranttest.MethodUpsert); n != 1 {
		t.Fatalf("upsert attempts = %d, want 1", n)
	}
	// NotFound is permanent too, and maps to ErrNoCollection.
	if err := s.Upsert(ctx, "nope", []pipeline.Point{{ID: "a", Vector: vec(1, 0)}}); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Fatalf("err = %v, want ErrNoCollection", err)
	}
	if n := srv.Calls(qdranttest.MethodUpsert); n != 2 {
		t.Fatalf("upsert attempts = %d, want 2", n)
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	s, srv := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.FailNext(qdranttest.MethodCount, codes.Unavailable, 10)
	if _, err := s.Count(ctx, "c"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
	if n := srv.Calls(qdranttest.MethodCount); n > 1 {
		t.Fatalf("count attempts with a cancelled context = %d, want at most 1", n)
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"unavailable", status.Error(codes.Unavailable, "x"), true},
		{"wrapped deadline", fmt.Errorf("op: %w", status.Error(codes.DeadlineExceeded, "x")), true},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "x"), true},
		{"aborted", status.Error(codes.Aborted, "x"), true},
		{"invalid argument", status.Error(codes.InvalidArgument, "x"), false},
		{"not found", status.Error(codes.NotFound, "x"), false},
		{"permission denied", status.Error(codes.PermissionDenied, "x"), false},
		{"plain", errors.New("x"), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := qdrant.Retryable(c.err); got != c.want {
				t.Fatalf("Retryable(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestPointID(t *testing.T) {
	a, b := qdrant.PointID("item-1"), qdrant.PointID("item-2")
	if a != qdrant.PointID("item-1") || a == b {
		t.Fatalf("PointID not deterministic or not distinct: %s %s", a, b)
	}
	if len(a) != 36 || a[14] != '5' || !strings.ContainsAny(a[19:20], "89ab") {
		t.Fatalf("PointID %s is not a version 5 RFC 4122 UUID", a)
	}
}

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// returns the server's TLS config and the PEM file path.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "qdranttest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, path
}

func TestTLSAndAPIKey(t *testing.T) {
	tlsCfg, caFile := selfSigned(t)
	srv := qdranttest.Start(t, qdranttest.WithTLS(tlsCfg), qdranttest.WithAPIKey("secret"))
	ctx := context.Background()
	connect := func(key string) *qdrant.Store {
		cfg := testConfig(srv)
		cfg.TLS, cfg.CAFile, cfg.APIKey = true, caFile, key
		s, err := qdrant.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if err := connect("secret").EnsureCollection(ctx, "c", 2); err != nil {
		t.Fatalf("with TLS and the right key: %v", err)
	}
	err := connect("wrong").EnsureCollection(ctx, "c", 2)
	if err == nil || qdrant.Retryable(err) || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("wrong key: err = %v, want a permanent PermissionDenied", err)
	}
	t.Log(err)
	// Without the CA the handshake fails (Unavailable, retried, then given up).
	cfg := testConfig(srv)
	cfg.TLS, cfg.APIKey = true, "secret"
	cfg.Retry.MaxAttempts = 1
	s, err := qdrant.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Count(ctx, "c"); err == nil {
		t.Fatal("Count without trusting the server's certificate: want an error")
	}
}

func TestNewBadCAFile(t *testing.T) {
	cfg := qdrant.DefaultConfig()
	cfg.TLS, cfg.CAFile = true, filepath.Join(t.TempDir(), "missing.pem")
	if _, err := qdrant.New(cfg); err == nil || !strings.Contains(err.Error(), "qdrant.ca_file") {
		t.Fatalf("New with a missing CA file = %v, want a qdrant.ca_file error", err)
	}
}
