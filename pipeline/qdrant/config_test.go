package qdrant_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/streamrec/streamrec/pipeline/qdrant"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*qdrant.Config)
		want []string // substrings of the error; none means valid
	}{
		{"default", func(*qdrant.Config) {}, nil},
		{"tls with ca", func(c *qdrant.Config) { c.TLS, c.CAFile = true, "/etc/ca.pem" }, nil},
		{"no port", func(c *qdrant.Config) { c.Addr = "qdrant" }, []string{"q.addr"}},
		{"bad port", func(c *qdrant.Config) { c.Addr = "qdrant:grpc" }, []string{"q.addr: port"}},
		{"no host", func(c *qdrant.Config) { c.Addr = ":6334" }, []string{"q.addr"}},
		{"ca without tls", func(c *qdrant.Config) { c.CAFile = "/etc/ca.pem" }, []string{"q.ca_file needs q.tls"}},
		{"batch", func(c *qdrant.Config) { c.BatchSize = 0 }, []string{"q.batch_size must be > 0"}},
		{"timeout", func(c *qdrant.Config) { c.Timeout = 0 }, []string{"q.timeout must be > 0"}},
		{"retry initial", func(c *qdrant.Config) { c.Retry.Initial = 0 }, []string{"q.retry.initial must be > 0"}},
		{"retry max", func(c *qdrant.Config) { c.Retry.Max = time.Millisecond }, []string{"q.retry.max must be >= q.retry.initial"}},
		{"retry attempts", func(c *qdrant.Config) { c.Retry.MaxAttempts = 0 }, []string{"q.retry.max_attempts must be >= 1"}},
		{"all at once", func(c *qdrant.Config) { c.BatchSize, c.Timeout = -1, -1 }, []string{"q.batch_size", "q.timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := qdrant.DefaultConfig()
			tc.mod(&c)
			err := c.Validate("q")
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
addr: qdrant:6334
api_key: k
tls: true
ca_file: /ca.pem
batch_size: 64
timeout: 3s
retry: {initial: 50ms, max: 2s, max_attempts: 7}
`
	c := qdrant.DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	want := qdrant.Config{Addr: "qdrant:6334", APIKey: "k", TLS: true, CAFile: "/ca.pem", BatchSize: 64, Timeout: 3 * time.Second,
		Retry: qdrant.Retry{Initial: 50 * time.Millisecond, Max: 2 * time.Second, MaxAttempts: 7}}
	if c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.Validate("qdrant"); err != nil {
		t.Fatal(err)
	}
}
