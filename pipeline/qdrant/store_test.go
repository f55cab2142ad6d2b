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
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	qc "github.com/qdrant/go-client/qdrant"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/qdrant"
	"github.com/streamrec/streamrec/pipeline/qdrant/qdranttest"
	"github.com/streamrec/streamrec/pipeline/vectorstoretest"
)

// TestMain stops the real Qdrant that qdranttest starts, then checks that no
// goroutine (the clients' connections among them) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(qdranttest.Wrap(m)) }

// testConfig is a config for srv with fast retries.
func testConfig(srv *qdranttest.Server) qdrant.Config {
	cfg := qdrant.DefaultConfig()
	cfg.Addr = srv.Addr()
	return fast(cfg)
}

// open starts a fake and a store on it, both closed when t ends; for the
// tests that inject faults or count calls, which only the fake can.
func open(t *testing.T, opts ...qdranttest.Option) (*qdrant.Store, *qdranttest.Server) {
	t.Helper()
	srv := qdranttest.Start(t, opts...)
	t.Log("qdrant=fake (fault injection)")
	s, err := qdrant.New(testConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

// openBackend returns a store on a backend of kind, closed when t ends.
func openBackend(t *testing.T, kind string, opts ...qdranttest.Option) (*qdrant.Store, *qdranttest.Backend) {
	t.Helper()
	b := qdranttest.Open(t, kind, opts...)
	s, err := qdrant.New(fast(b.Config()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, b
}

// TestConformance runs the VectorStore suite through the real client
// against the fake and the real server.
func TestConformance(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		vectorstoretest.Run(t, func(t *testing.T) pipeline.VectorStore {
			b := qdranttest.Open(t, kind)
			s, err := qdrant.New(fast(b.Config()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return qdranttest.Prefixed(s, b.Prefix)
		})
	})
}

// fast shortens cfg's retries and batches for tests.
func fast(cfg qdrant.Config) qdrant.Config {
	cfg.BatchSize = 10
	cfg.Timeout = 5 * time.Second
	cfg.Retry = qdrant.Retry{Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxAttempts: 4}
	return cfg
}

func TestPing(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		s, b := openBackend(t, kind)
		v, err := s.Ping(context.Background())
		if err != nil || v != qdranttest.Version {
			t.Fatalf("Ping = %q, %v; want %q", v, err, qdranttest.Version)
		}
		if b.Fake != nil {
			if n := b.Fake.Calls(qdranttest.MethodHealthCheck); n != 1 {
				t.Fatalf("health checks = %d, want 1", n)
			}
		}
	})
}

// TestPingChecksAPIKey: Qdrant answers health checks without a key, so Ping
// must make a call that needs one to fail fast on a wrong key.
func TestPingChecksAPIKey(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		_, b := openBackend(t, kind, qdranttest.WithAPIKey("secret"))
		if b.APIKey == "" {
			t.Skipf("the server at %s needs no API key", b.Addr)
		}
		for _, key := range []string{"", "wrong"} {
			cfg := fast(b.Config())
			cfg.APIKey = key
			s, err := qdrant.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Ping(context.Background())
			s.Close()
			if !strings.Contains(fmt.Sprint(err), "Unauthenticated") {
				t.Fatalf("Ping with key %q = %v, want Unauthenticated", key, err)
			}
			if qdrant.Retryable(err) || !strings.Contains(err.Error(), "qdrant.api_key") {
				t.Fatalf("Ping with key %q = %v, want a permanent error that names qdrant.api_key", key, err)
			}
			t.Log(err)
		}
	})
}

func vec(xs ...float32) []float32 { return xs }

func TestEnsureCollectionCreatesIndexes(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		s, b := openBackend(t, kind)
		ctx := context.Background()
		name := b.Name("items_v1")
		if err := s.EnsureCollection(ctx, name, 3); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureCollection(ctx, name, 3); err != nil {
			t.Fatal(err)
		}
		if b.Fake != nil {
			if n := b.Fake.Calls(qdranttest.MethodCreateCollection); n != 1 {
				t.Errorf("creates = %d, want 1", n)
			}
			if n := b.Fake.Calls(qdranttest.MethodCreateFieldIndex); n != 8 {
				t.Errorf("field index calls = %d, want 4 per EnsureCollection", n)
			}
		}
		// The index types the filters need, as the server reports them.
		c, err := qdranttest.Real{Addr: b.Addr, APIKey: b.APIKey}.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		info, err := c.GetCollectionInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for k, v := range info.GetPayloadSchema() {
			got[k] = v.GetDataType().String()
		}
		want := map[string]string{
			pipeline.PayloadCategory: "Keyword", pipeline.PayloadBrand: "Keyword",
			pipeline.PayloadPrice: "Float", pipeline.PayloadInStock: "Bool",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("payload indexes = %v, want %v", got, want)
		}
		if d := info.GetConfig().GetParams().GetVectorsConfig().GetParams().GetDistance(); d != qc.Distance_Cosine {
			t.Errorf("distance = %v, want Cosine", d)
		}
		err = s.EnsureCollection(ctx, name, 4)
		if !errors.Is(err, pipeline.ErrDimension) {
			t.Fatalf("EnsureCollection with another dim = %v, want ErrDimension", err)
		}
		if err := s.EnsureCollection(ctx, b.Name("x"), 0); !errors.Is(err, pipeline.ErrDimension) {
			t.Fatalf("EnsureCollection dim 0 = %v, want ErrDimension", err)
		}
	})
}

// TestEnsureCollectionConcurrent: creators racing on one name all succeed
// (the losers see AlreadyExists and check the winner's size).
func TestEnsureCollectionConcurrent(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		s, b := openBackend(t, kind)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() { errs <- s.EnsureCollection(context.Background(), b.Name("race"), 3) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func TestUpsertBatchesAndErrorMessages(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		s, b := openBackend(t, kind)
		ctx := context.Background()
		name := b.Name("items_v1")
		if err := s.EnsureCollection(ctx, name, 3); err != nil {
			t.Fatal(err)
		}
		var pts []pipeline.Point
		for i := range 25 {
			pts = append(pts, pipeline.Point{ID: fmt.Sprint("i", i), Vector: vec(1, float32(i), 0)})
		}
		if err := s.Upsert(ctx, name, pts); err != nil {
			t.Fatal(err)
		}
		calls := func() int {
			if b.Fake == nil {
				return -1
			}
			return b.Fake.Calls(qdranttest.MethodUpsert)
		}
		if n := calls(); b.Fake != nil && n != 3 {
			t.Fatalf("upsert calls for 25 points in batches of 10 = %d, want 3", n)
		}
		// Vectors of two lengths: refused before anything is sent.
		before := calls()
		mixed := slices.Clone(pts)
		mixed[24].Vector = vec(1, 2)
		err := s.Upsert(ctx, name, mixed)
		if !errors.Is(err, pipeline.ErrDimension) {
			t.Fatalf("err = %v, want ErrDimension", err)
		}
		for _, want := range []string{"qdrant upsert 25 points into " + name, `point "i24" has 2 dimensions, point "i0" has 3`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if n := calls(); n != before {
			t.Errorf("upsert calls for vectors of two lengths = %d, want none", n-before)
		}
		// One length, not the collection's: Qdrant refuses the first batch.
		short := make([]pipeline.Point, len(pts))
		for i, p := range pts {
			short[i] = pipeline.Point{ID: p.ID, Vector: p.Vector[:2]}
		}
		err = s.Upsert(ctx, name, short)
		if !errors.Is(err, pipeline.ErrDimension) {
			t.Fatalf("err = %v, want ErrDimension", err)
		}
		for _, want := range []string{"qdrant upsert 25 points into " + name, "batch 1/3", "expected dim: 3, got 2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		err = s.Upsert(ctx, name, []pipeline.Point{{ID: "a", Vector: vec(1, 0, 0), Payload: pipeline.Payload{"_id": "x"}}})
		if !errors.Is(err, qdrant.ErrPayload) {
			t.Fatalf("reserved key: err = %v, want ErrPayload", err)
		}
		err = s.Upsert(ctx, name, []pipeline.Point{{ID: "a", Vector: vec(1, 0, 0), Payload: pipeline.Payload{"m": map[string]any{}}}})
		if !errors.Is(err, qdrant.ErrPayload) {
			t.Fatalf("map value: err = %v, want ErrPayload", err)
		}
	})
}

func TestGetOrderAndNormalisedVectors(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		s, b := openBackend(t, kind)
		ctx := context.Background()
		name := b.Name("c")
		if err := s.EnsureCollection(ctx, name, 2); err != nil {
			t.Fatal(err)
		}
		err := s.Upsert(ctx, name, []pipeline.Point{
			{ID: "a", Vector: vec(3, 4), Payload: pipeline.Payload{"n": 1, "f": float32(0.5), pipeline.PayloadPrice: 7, pipeline.PayloadCategory: []any{"x", "y"}}},
			{ID: "b", Vector: vec(0, 2)},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, name, []string{"b", "zz", "a", "b"})
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
		want := pipeline.Payload{"n": int64(1), "f": 0.5, pipeline.PayloadPrice: 7.0, pipeline.PayloadCategory: []string{"x", "y"}}
		if p := got[1].Payload; !reflect.DeepEqual(p, want) {
			t.Errorf("payload = %#v, want %#v (widened, documented keys with their documented types)", p, want)
		}
		if _, ok := got[1].Payload["_id"]; ok {
			t.Errorf("payload leaks the reserved _id key: %v", got[1].Payload)
		}
	})
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDrop: dropping a missing collection, or a collection by one of its
// aliases (Qdrant does not resolve aliases there), is ErrNoCollection and
// drops nothing.
func TestDrop(t *testing.T) {
	qdranttest.Each(t, func(t *testing.T, kind string) {
		s, b := openBackend(t, kind)
		ctx := context.Background()
		if err := s.DropCollection(ctx, b.Name("nope")); !errors.Is(err, pipeline.ErrNoCollection) {
			t.Fatalf("DropCollection(nope) = %v, want ErrNoCollection", err)
		}
		if err := s.EnsureCollection(ctx, b.Name("c"), 2); err != nil {
			t.Fatal(err)
		}
		if err := s.SetAlias(ctx, b.Name("al"), b.Name("c")); err != nil {
			t.Fatal(err)
		}
		if err := s.DropCollection(ctx, b.Name("al")); !errors.Is(err, pipeline.ErrNoCollection) {
			t.Fatalf("DropCollection(alias) = %v, want ErrNoCollection", err)
		}
		if got, err := s.ResolveAlias(ctx, b.Name("al")); err != nil || got != b.Name("c") {
			t.Fatalf("ResolveAlias after dropping by alias = %q, %v; want the collection kept", got, err)
		}
		if err := s.DropCollection(ctx, b.Name("c")); err != nil {
			t.Fatal(err)
		}
		if err := s.DropCollection(ctx, b.Name("c")); !errors.Is(err, pipeline.ErrNoCollection) {
			t.Fatalf("second DropCollection = %v, want ErrNoCollection", err)
		}
	})
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
	qdranttest.Each(t, func(t *testing.T, kind string) {
		var addr, caFile string
		if kind == qdranttest.KindFake {
			tlsCfg, ca := selfSigned(t)
			srv := qdranttest.Start(t, qdranttest.WithTLS(tlsCfg), qdranttest.WithAPIKey("secret"))
			addr, caFile = srv.Addr(), ca
		} else {
			r := qdranttest.StartReal(t, "secret", true)
			addr, caFile = r.Addr, r.CAFile
		}
		ctx := context.Background()
		connect := func(key, ca string) *qdrant.Store {
			cfg := qdrant.DefaultConfig()
			cfg.Addr = addr
			cfg = fast(cfg)
			cfg.TLS, cfg.CAFile, cfg.APIKey = true, ca, key
			s, err := qdrant.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		if err := connect("secret", caFile).EnsureCollection(ctx, "c", 2); err != nil {
			t.Fatalf("with TLS and the right key: %v", err)
		}
		if v, err := connect("secret", caFile).Ping(ctx); err != nil || v != qdranttest.Version {
			t.Fatalf("Ping with TLS = %q, %v", v, err)
		}
		for _, key := range []string{"wrong", ""} {
			err := connect(key, caFile).EnsureCollection(ctx, "c", 2)
			if err == nil || qdrant.Retryable(err) || !strings.Contains(err.Error(), "Unauthenticated") {
				t.Fatalf("key %q: err = %v, want a permanent Unauthenticated", key, err)
			}
			t.Log(err)
		}
		// Without the CA the handshake fails (Unavailable, retried, then
		// given up).
		s := connect("secret", "")
		if _, err := s.Count(ctx, "c"); err == nil {
			t.Fatal("Count without trusting the server's certificate: want an error")
		}
	})
}

// retryLog signals on retried when the store logs its first retry.
type retryLog struct{ retried chan struct{} }

func (h retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h retryLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "retrying") {
		select {
		case h.retried <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h retryLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h retryLog) WithGroup(string) slog.Handler      { return h }

// TestRealServerCrash: on a real server killed with SIGKILL, what Upsert
// confirmed survives (the VectorStore durability contract), and a call made
// while the server is down retries until it is back.
func TestRealServerCrash(t *testing.T) {
	t.Log("qdrant=real (a server of its own, killed and restarted)")
	r := qdranttest.StartReal(t, "secret", false)
	cfg := qdrant.DefaultConfig()
	cfg.Addr, cfg.APIKey = r.Addr, r.APIKey
	cfg.Timeout = 2 * time.Second
	cfg.Retry = qdrant.Retry{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, MaxAttempts: 100}
	h := retryLog{retried: make(chan struct{}, 1)}
	s, err := qdrant.New(cfg, qdrant.WithLogger(slog.New(h)),
		// Reconnect quickly once the server is back (gRPC's default
		// backoff starts at 1 s).
		qdrant.WithDialOptions(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, "c", 3); err != nil {
		t.Fatal(err)
	}
	var pts []pipeline.Point
	for i := range 60 {
		pts = append(pts, pipeline.Point{ID: fmt.Sprint("p", i), Vector: vec(1, float32(i), 2), Payload: pipeline.Payload{pipeline.PayloadBrand: "b"}})
	}
	if err := s.Upsert(ctx, "c", pts[:50]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "c", []string{"p0"}); err != nil {
		t.Fatal(err)
	}
	r.Kill(t)

	done := make(chan error, 1)
	go func() { done <- s.Upsert(ctx, "c", pts[50:]) }()
	select {
	case <-h.retried: // it failed while the server was down
	case err := <-done:
		t.Fatalf("Upsert with the server down = %v, want it to retry until the restart", err)
	}
	t0 := time.Now()
	r.Restart(t)
	if err := <-done; err != nil {
		t.Fatalf("Upsert across the restart: %v", err)
	}
	t.Logf("the retried Upsert finished %v after the restart began", time.Since(t0).Round(time.Millisecond))
	if n, err := s.Count(ctx, "c"); err != nil || n != 59 {
		t.Fatalf("Count after kill -9 and restart = %d, %v; want 59 (50 - 1 deleted + 10)", n, err)
	}
	got, err := s.Get(ctx, "c", []string{"p0", "p1", "p49"})
	if err != nil || len(got) != 2 || got[0].ID != "p1" || got[1].Payload[pipeline.PayloadBrand] != "b" {
		t.Fatalf("Get after the crash = %+v, %v; want p1 and p49 with their payloads, not the deleted p0", got, err)
	}
}

func TestNewBadCAFile(t *testing.T) {
	cfg := qdrant.DefaultConfig()
	cfg.TLS, cfg.CAFile = true, filepath.Join(t.TempDir(), "missing.pem")
	if _, err := qdrant.New(cfg); err == nil || !strings.Contains(err.Error(), "qdrant.ca_file") {
		t.Fatalf("New with a missing CA file = %v, want a qdrant.ca_file error", err)
	}
}
