// Package chtest gives tests a real ClickHouse server: the one named by
// STREAMREC_CLICKHOUSE_ADDR, or else one that it starts once per test binary
// with scripts/clickhouse.sh in a throwaway folder, and a fresh database per
// test.
//
// A test package that uses it wraps its tests in TestMain, so that the server
// it started is stopped when the tests end:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(chtest.Wrap(m)) }
//
// or, without goleak, os.Exit(chtest.Wrap(m).Run()).
//
// Without STREAMREC_CLICKHOUSE_ADDR and without clickhouse-server installed
// (scripts/clickhouse.sh install), tests that need the server skip; with
// STREAMREC_REQUIRE_CLICKHOUSE=1 they fail instead.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline/clickhouse"
)

// Environment variables read by Addr.
const (
	EnvAddr    = "STREAMREC_CLICKHOUSE_ADDR"
	EnvRequire = "STREAMREC_REQUIRE_CLICKHOUSE"
)

// server is the one server a test binary starts. It is package state
// because a test binary has one lifetime that Wrap owns; nothing else
// touches it.
var server struct {
	once    sync.Once
	wrapped bool
	script  string
	dir     string
	addr    string
	skip    string // why tests skip, when no server can be had
	err     error
}

// M is a test binary's tests wrapped by Wrap; its Run has the signature
// goleak.VerifyTestMain expects.
type M struct{ m *testing.M }

// Wrap lets Addr start a server, and makes Run stop it (and remove its
// folder) after the tests.
func Wrap(m *testing.M) M {
	server.wrapped = true
	return M{m}
}

// Run runs the tests, then stops the server Addr started, if any.
func (w M) Run() int {
	code := w.m.Run()
	if server.dir != "" {
		if err := stop(server.script, server.dir); err != nil {
			fmt.Fprintf(os.Stderr, "chtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		os.RemoveAll(server.dir)
	}
	return code
}

// Addr returns host:port of a ClickHouse native-protocol listener, or skips
// the test (fails it under STREAMREC_REQUIRE_CLICKHOUSE=1) when there is none.
func Addr(tb testing.TB) string {
	tb.Helper()
	if addr := os.Getenv(EnvAddr); addr != "" {
		return addr
	}
	if !server.wrapped {
		tb.Fatal("chtest: wrap the tests in TestMain: goleak.VerifyTestMain(chtest.Wrap(m))")
	}
	server.once.Do(startServer)
	switch {
	case server.err != nil:
		tb.Fatalf("chtest: %v", server.err)
	case server.skip != "":
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("chtest: %s, and %s=1", server.skip, EnvRequire)
		}
		tb.Skipf("chtest: %s (set %s or run scripts/clickhouse.sh install)", server.skip, EnvAddr)
	}
	return server.addr
}

// NewDatabase creates an empty database test_<random> on the server of Addr
// and returns a connection config for it; the database is dropped when the
// test ends.
func NewDatabase(tb testing.TB) clickhouse.Config {
	tb.Helper()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = Addr(tb)

	var b [6]byte
	rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := clickhouse.Open(ctx, cfg, nil)
	if err != nil {
		tb.Fatalf("chtest: %v", err)
	}
	if err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("chtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			tb.Errorf("chtest: drop database %s: %v", name, err)
		}
	})
	cfg.Database = name
	return cfg
}

func startServer() {
	if !installed() {
		server.skip = "clickhouse-server is not installed"
		return
	}
	script, err := findScript()
	if err != nil {
		server.err = err
		return
	}
	dir, err := os.MkdirTemp("", "streamrec-clickhouse-")
	if err != nil {
		server.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "start", dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		stop(script, dir)
		os.RemoveAll(dir)
		server.err = fmt.Errorf("%s start: %v: %s", script, err, strings.TrimSpace(stderr.String()))
		return
	}
	server.script, server.dir, server.addr = script, dir, strings.TrimSpace(string(out))
}

// installed reports whether clickhouse-server is on PATH or where Debian
// puts it (/usr/sbin, often not on a non-root PATH).
func installed() bool {
	if _, err := exec.LookPath("clickhouse-server"); err == nil {
		return true
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

func stop(script, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, "stop", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s stop %s: %v: %s", script, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// findScript finds scripts/clickhouse.sh in the module root above the
// working directory (go test runs in the package's folder).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			script := filepath.Join(dir, "scripts", "clickhouse.sh")
			if _, err := os.Stat(script); err != nil {
				return "", fmt.Errorf("module root %s has no scripts/clickhouse.sh: %w", dir, err)
			}
			return script, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
