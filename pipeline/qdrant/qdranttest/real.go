package qdranttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Environment variables read by RealServer.
const (
	// EnvAddr names a running Qdrant (gRPC host:port) that RealServer
	// returns instead of starting one; tests keep to collections of their
	// own namespace on it, so test binaries can share it.
	EnvAddr = "STREAMREC_QDRANT_ADDR"
	// EnvAPIKey is the api-key of the server of EnvAddr, if it needs one.
	EnvAPIKey = "STREAMREC_QDRANT_API_KEY"
	// EnvRequire=1 fails tests that need a real server when none can be
	// had, instead of skipping them.
	EnvRequire = "STREAMREC_REQUIRE_QDRANT"
)

// noBinary is scripts/qdrant.sh's exit status when it has no binary.
const noBinary = 3

// Real is a real Qdrant server.
type Real struct {
	// Addr is its gRPC endpoint, host:port.
	Addr string
	// APIKey is the api-key it requires; empty when it needs none (or, for
	// EnvAddr without EnvAPIKey, when the tests were not told).
	APIKey string
	// CAFile is the PEM file of the CA that signed its certificate when it
	// serves TLS (StartReal with TLS), else empty.
	CAFile string
	// Version is what its health check reports.
	Version string

	script, dir string // set when this package started it
}

// shared is the one server a test binary starts. It is package state
// because a test binary has one lifetime that Wrap owns; nothing else
// touches it.
var shared struct {
	once    sync.Once
	wrapped bool
	real    Real
	skip    string // why tests skip, when no server can be had
	err     error
}

// M is a test binary's tests wrapped by Wrap; its Run has the signature
// goleak.VerifyTestMain expects.
type M struct{ m *testing.M }

// Wrap lets RealServer start the binary's server, and makes Run stop it (and
// remove its folder) after the tests:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(qdranttest.Wrap(m)) }
func Wrap(m *testing.M) M {
	shared.wrapped = true
	return M{m}
}

// Run runs the tests, then stops the server RealServer started, if any.
func (w M) Run() int {
	code := w.m.Run()
	if shared.real.dir != "" {
		if err := shared.real.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "qdranttest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		os.RemoveAll(shared.real.dir)
	}
	return code
}

// RealServer returns the test binary's real Qdrant server: the one of
// STREAMREC_QDRANT_ADDR, or else one it starts on first use with
// scripts/qdrant.sh (its binary from QDRANT_BIN or the repository's cache,
// requiring a random api-key) and that Wrap's Run stops. Without a binary it
// skips the test, or fails it under STREAMREC_REQUIRE_QDRANT=1.
//
// The server is shared by the binary's tests: give each test its own
// collections with Namespace.
func RealServer(tb testing.TB) Real {
	tb.Helper()
	if addr := os.Getenv(EnvAddr); addr != "" {
		return Real{Addr: addr, APIKey: os.Getenv(EnvAPIKey)}
	}
	if !shared.wrapped {
		tb.Fatal("qdranttest: wrap the tests in TestMain: goleak.VerifyTestMain(qdranttest.Wrap(m))")
	}
	shared.once.Do(func() {
		key := randomHex(16)
		shared.real, shared.skip, shared.err = start(key, false)
	})
	switch {
	case shared.err != nil:
		tb.Fatalf("qdranttest: %v", shared.err)
	case shared.skip != "":
		skip(tb, shared.skip)
	}
	return shared.real
}

// StartReal starts a real server of the test's own (scripts/qdrant.sh
// start), serving TLS with a throwaway CA (Real.CAFile) when tls is set and
// requiring apiKey when it is not empty, and stops it when the test ends.
// It skips like RealServer. Use it for what the shared server cannot give:
// TLS, or a server the test stops and restarts.
func StartReal(tb testing.TB, apiKey string, tls bool) *Real {
	tb.Helper()
	r, why, err := start(apiKey, tls)
	if err != nil {
		tb.Fatalf("qdranttest: %v", err)
	}
	if why != "" {
		skip(tb, why)
	}
	tb.Cleanup(func() {
		if err := r.stop(); err != nil {
			tb.Errorf("qdranttest: %v", err)
		}
		os.RemoveAll(r.dir)
	})
	return &r
}

// Stop stops a server of StartReal (SIGTERM, then waits for it to exit).
func (r *Real) Stop(tb testing.TB) {
	tb.Helper()
	if r.dir == "" {
		tb.Fatal("qdranttest: Stop needs a server of StartReal")
	}
	if err := r.stop(); err != nil {
		tb.Fatalf("qdranttest: %v", err)
	}
}

// Kill kills a server of StartReal with SIGKILL, as a crash would, and
// waits until it has exited.
func (r *Real) Kill(tb testing.TB) {
	tb.Helper()
	if r.dir == "" {
		tb.Fatal("qdranttest: Kill needs a server of StartReal")
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "pid"))
	if err != nil {
		tb.Fatalf("qdranttest: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatalf("qdranttest: pid file: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatalf("qdranttest: kill -9 %d: %v", pid, err)
	}
	// The server is not our child (the script started it in its own
	// session), so poll until it is gone.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			tb.Fatalf("qdranttest: pid %d still there 10 s after kill -9", pid)
		}
		<-tick.C
	}
	os.Remove(filepath.Join(r.dir, "pid"))
}

// Restart starts a stopped server of StartReal again, with its data, ports
// and settings.
func (r *Real) Restart(tb testing.TB) {
	tb.Helper()
	if r.dir == "" {
		tb.Fatal("qdranttest: Restart needs a server of StartReal")
	}
	if _, err := script(r.script, "restart", r.dir, nil); err != nil {
		tb.Fatalf("qdranttest: %v", err)
	}
}

func skip(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("qdranttest: %s, and %s=1", why, EnvRequire)
	}
	tb.Skipf("qdranttest: %s (set %s, or QDRANT_BIN, or run scripts/qdrant.sh install)", why, EnvAddr)
}

// start runs scripts/qdrant.sh start in a new temporary folder. A missing
// binary is a reason to skip, not an error.
func start(apiKey string, tls bool) (r Real, skip string, err error) {
	path, err := findScript()
	if err != nil {
		return Real{}, "", err
	}
	dir, err := os.MkdirTemp("", "streamrec-qdrant-")
	if err != nil {
		return Real{}, "", err
	}
	env := []string{"QDRANT_API_KEY=" + apiKey, "QDRANT_TLS="}
	if tls {
		env[1] = "QDRANT_TLS=1"
	}
	t0 := time.Now()
	addr, err := script(path, "start", dir, env)
	if err != nil {
		os.RemoveAll(dir)
		if ee := (*exitError)(nil); errors.As(err, &ee) && ee.code == noBinary {
			return Real{}, ee.stderr, nil
		}
		return Real{}, "", err
	}
	r = Real{Addr: addr, APIKey: apiKey, script: path, dir: dir}
	if tls {
		r.CAFile = filepath.Join(dir, "tls", "ca.pem")
	}
	r.Version, err = healthCheck(r)
	if err != nil {
		r.stop()
		os.RemoveAll(dir)
		return Real{}, "", fmt.Errorf("qdrant at %s: %w", addr, err)
	}
	fmt.Fprintf(os.Stderr, "qdranttest: started Qdrant %s at %s in %v\n", r.Version, addr, time.Since(t0).Round(time.Millisecond))
	return r, "", nil
}

func (r Real) stop() error {
	_, err := script(r.script, "stop", r.dir, nil)
	return err
}

// exitError is a script's non-zero exit with its stderr.
type exitError struct {
	code   int
	stderr string
	err    error
}

func (e *exitError) Error() string { return fmt.Sprintf("%v: %s", e.err, e.stderr) }
func (e *exitError) Unwrap() error { return e.err }

// script runs scripts/qdrant.sh CMD DIR and returns its stdout, trimmed.
func script(path, cmd, dir string, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, path, cmd, dir)
	c.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		e := &exitError{code: -1, stderr: strings.TrimSpace(stderr.String()), err: fmt.Errorf("%s %s %s: %w", path, cmd, dir, err)}
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			e.code = ee.ExitCode()
		}
		return "", e
	}
	return strings.TrimSpace(string(out)), nil
}

// findScript finds scripts/qdrant.sh in the module root above the working
// directory (go test runs in the package's folder).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			path := filepath.Join(dir, "scripts", "qdrant.sh")
			if _, err := os.Stat(path); err != nil {
				return "", fmt.Errorf("module root %s has no scripts/qdrant.sh: %w", dir, err)
			}
			return path, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Client returns a go-client for r; the caller closes it.
func (r Real) Client() (*qdrant.Client, error) {
	host, port, err := splitAddr(r.Addr)
	if err != nil {
		return nil, err
	}
	cfg := &qdrant.Config{Host: host, Port: port, SkipCompatibilityCheck: true}
	if r.APIKey != "" {
		// Sent by an interceptor rather than Config.APIKey, which warns on
		// the default logger about plaintext on every client.
		cfg.GrpcOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, "api-key", r.APIKey), method, req, reply, cc, opts...)
			})}
	}
	if r.CAFile != "" {
		tc, err := tlsConfig(r.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.UseTLS, cfg.TLSConfig = true, tc
	}
	return qdrant.NewClient(cfg)
}

func healthCheck(r Real) (string, error) {
	c, err := r.Client()
	if err != nil {
		return "", err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := c.HealthCheck(ctx)
	if err != nil {
		return "", err
	}
	return h.GetVersion(), nil
}

// Namespace returns a prefix ("t<12 hex digits>_") for the names of the
// collections and aliases of one test on r, and deletes every collection
// and alias under it when the test ends.
func (r Real) Namespace(tb testing.TB) string {
	tb.Helper()
	prefix := "t" + randomHex(6) + "_"
	tb.Cleanup(func() {
		if err := r.dropNamespace(prefix); err != nil {
			tb.Errorf("qdranttest: dropping namespace %s on %s: %v", prefix, r.Addr, err)
		}
	})
	return prefix
}

// dropNamespace deletes the aliases and collections whose names start with
// prefix.
func (r Real) dropNamespace(prefix string) error {
	c, err := r.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	aliases, err := c.ListAliases(ctx)
	if err != nil {
		return err
	}
	var ops []*qdrant.AliasOperations
	for _, a := range aliases {
		if strings.HasPrefix(a.GetAliasName(), prefix) {
			ops = append(ops, qdrant.NewAliasDelete(a.GetAliasName()))
		}
	}
	if len(ops) > 0 {
		if err := c.UpdateAliases(ctx, ops); err != nil {
			return err
		}
	}
	names, err := c.ListCollections(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			if _, err := c.GetCollectionsClient().Delete(ctx, &qdrant.DeleteCollection{CollectionName: n}); err != nil {
				errs = append(errs, fmt.Errorf("delete collection %s: %w", n, err))
			}
		}
	}
	return errors.Join(errs...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
