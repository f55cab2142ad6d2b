package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "streamrec_test_things_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	var unready atomic.Bool
	ready := func() (bool, string) {
		if unready.Load() {
			return false, "kafka: down for 3s: broker unreachable\n"
		}
		return true, "kafka: ok\n"
	}
	srv, err := Listen("127.0.0.1:0", reg, ready, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	base := "http://" + srv.Addr()

	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "streamrec_test_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d:\n%.300s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != "kafka: ok\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	unready.Store(true)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "broker unreachable") {
		t.Errorf("/readyz unready = %d %q", code, body)
	}
	// Liveness does not depend on dependencies.
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
