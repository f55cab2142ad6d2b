package qdranttest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Version is the Qdrant version the fake reports in HealthCheck.
const Version = "1.17.1"

// Full gRPC method names, for FailNext and Calls.
const (
	MethodHealthCheck           = "/qdrant.Qdrant/HealthCheck"
	MethodCreateCollection      = "/qdrant.Collections/Create"
	MethodGetCollection         = "/qdrant.Collections/Get"
	MethodListCollections       = "/qdrant.Collections/List"
	MethodCollectionExists      = "/qdrant.Collections/CollectionExists"
	MethodDeleteCollection      = "/qdrant.Collections/Delete"
	MethodUpdateAliases         = "/qdrant.Collections/UpdateAliases"
	MethodListAliases           = "/qdrant.Collections/ListAliases"
	MethodListCollectionAliases = "/qdrant.Collections/ListCollectionAliases"
	MethodUpsert                = "/qdrant.Points/Upsert"
	MethodDeletePoints          = "/qdrant.Points/Delete"
	MethodGetPoints             = "/qdrant.Points/Get"
	MethodQuery                 = "/qdrant.Points/Query"
	MethodCount                 = "/qdrant.Points/Count"
	MethodCreateFieldIndex      = "/qdrant.Points/CreateFieldIndex"
)

// Option configures a Server.
type Option func(*Server)

// WithAPIKey makes the server require the "api-key" metadata header, as
// Qdrant does when service.api_key is set.
func WithAPIKey(key string) Option { return func(s *Server) { s.apiKey = key } }

// WithTLS makes the server serve TLS with cfg.
func WithTLS(cfg *tls.Config) Option { return func(s *Server) { s.tls = cfg } }

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	apiKey string
	tls    *tls.Config
	st     *state
	grpc   *grpc.Server

	mu     sync.Mutex
	faults map[string][]codes.Code
	calls  map[string]int
	lis    net.Listener
	done   chan struct{}
}

// New returns a server with no collections. Call Serve to start it, or use
// Start in tests.
func New(opts ...Option) *Server {
	s := &Server{
		st:     newState(),
		faults: map[string][]codes.Code{},
		calls:  map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	sopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.intercept),
		// The client pings every 10 s even without streams; Qdrant (tonic)
		// accepts that, grpc-go's default policy would close the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	}
	if s.tls != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	s.grpc = grpc.NewServer(sopts...)
	qdrant.RegisterQdrantServer(s.grpc, &qdrantService{})
	qdrant.RegisterCollectionsServer(s.grpc, &collectionsService{st: s.st})
	qdrant.RegisterPointsServer(s.grpc, &pointsService{st: s.st})
	return s
}

// Serve serves gRPC on lis until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	s.lis = lis
	s.mu.Unlock()
	err := s.grpc.Serve(lis)
	if err == grpc.ErrServerStopped {
		return nil
	}
	return err
}

// Stop closes the listener and all connections at once.
func (s *Server) Stop() { s.grpc.Stop() }

// Addr is the listener's address (host:port) once Serve has been called.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// Start listens on a free loopback port, serves in a goroutine, and stops the
// server and waits for that goroutine when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("qdranttest: listen: %v", err)
	}
	s := New(opts...)
	s.mu.Lock()
	s.lis = lis
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("qdranttest: serve: %v", err)
		}
	})
	return s
}

// FailNext makes the next n calls of method (a full name such as
// MethodUpsert) fail with code before reaching the handler.
func (s *Server) FailNext(method string, code codes.Code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], code)
	}
}

// Calls returns how many calls of method (a full name such as MethodUpsert)
// the server has received, failed ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// intercept counts calls, checks the API key and injects faults.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls[info.FullMethod]++
	var fault codes.Code
	if q := s.faults[info.FullMethod]; len(q) > 0 {
		fault, s.faults[info.FullMethod] = q[0], q[1:]
	}
	s.mu.Unlock()
	if s.apiKey != "" && info.FullMethod != MethodHealthCheck {
		md, _ := metadata.FromIncomingContext(ctx)
		keys := md.Get("api-key")
		for _, a := range md.Get("authorization") {
			if k, ok := strings.CutPrefix(a, "Bearer "); ok {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return nil, status.Error(codes.Unauthenticated, "Must provide an API key or an Authorization bearer token")
		}
		if keys[0] != s.apiKey {
			return nil, status.Error(codes.Unauthenticated, "Invalid API key or JWT")
		}
	}
	if fault != codes.OK {
		return nil, status.Errorf(fault, "qdranttest: injected fault on %s", info.FullMethod)
	}
	return handler(ctx, req)
}

// qdrantService implements the Qdrant service (health check).
type qdrantService struct {
	qdrant.UnimplementedQdrantServer
}

// HealthCheck reports the fake's title and version.
func (*qdrantService) HealthCheck(context.Context, *qdrant.HealthCheckRequest) (*qdrant.HealthCheckReply, error) {
	commit := "qdranttest"
	return &qdrant.HealthCheckReply{Title: "qdrant - vector search engine", Version: Version, Commit: &commit}, nil
}

// errNoCollection is Qdrant's error for a missing collection.
func errNoCollection(name string) error {
	return status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", name)
}

// errWrongInput is Qdrant's InvalidArgument error.
func errWrongInput(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, "Wrong input: "+fmt.Sprintf(format, args...))
}
