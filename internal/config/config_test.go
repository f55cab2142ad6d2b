package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if _, err := Load("", nil); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		env     []string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "file sets nested keys and durations",
			file: "kafka:\n  brokers: [a:9092, b:9092]\nclickstream:\n  batch:\n    max_wait: 250ms\n",
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Kafka.Brokers, ",") != "a:9092,b:9092" {
					t.Errorf("brokers = %v", c.Kafka.Brokers)
				}
				if c.Clickstream.Batch.MaxWait != 250*time.Millisecond {
					t.Errorf("max_wait = %v", c.Clickstream.Batch.MaxWait)
				}
			},
		},
		{
			name: "environment overrides file",
			file: "kafka:\n  brokers: [a:9092]\n",
			env:  []string{"STREAMREC_KAFKA_BROKERS=x:1,y:2", "STREAMREC_BROKER_EMBEDDED=false", "STREAMREC_CATALOG_RETRY_MAX=30s", "HOME=/root"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Kafka.Brokers, ",") != "x:1,y:2" {
					t.Errorf("brokers = %v", c.Kafka.Brokers)
				}
				if c.Broker.Embedded {
					t.Error("broker.embedded still true")
				}
				if c.Catalog.Retry.Max != 30*time.Second {
					t.Errorf("catalog.retry.max = %v", c.Catalog.Retry.Max)
				}
			},
		},
		{
			name: "inline broker keys",
			env:  []string{"STREAMREC_BROKER_DATA_DIR=/tmp/x", "STREAMREC_BROKER_PORT=19092"},
			check: func(t *testing.T, c Config) {
				if c.Broker.DataDir != "/tmp/x" || c.Broker.Port != 19092 {
					t.Errorf("broker = %+v", c.Broker)
				}
			},
		},
		{
			name: "derived topics follow topic names",
			file: "topics:\n  clickstream:\n    name: my.clicks\n    partitions: 2\n",
			check: func(t *testing.T, c Config) {
				if c.Clickstream.Topics[0] != "my.clicks" || c.Producer.ClickstreamTopic != "my.clicks" {
					t.Errorf("derived topics: %v %v", c.Clickstream.Topics, c.Producer.ClickstreamTopic)
				}
			},
		},
		{name: "unknown file key names its path and line", file: "kafka:\n  brokers: [a:1]\n  borkers: [b:2]\n", wantErr: "line 3: unknown config key kafka.borkers"},
		{name: "unknown top-level key", file: "kafak: {}\n", wantErr: "unknown config key kafak (known under the top level:"},
		{
			name:  "STREAMREC_CONFIG names the file, not a key",
			env:   []string{"STREAMREC_CONFIG=/etc/streamrec.yaml"},
			check: func(t *testing.T, c Config) {},
		},
		{name: "unknown environment variable", env: []string{"STREAMREC_KAFKA_BORKERS=a:1"}, wantErr: "STREAMREC_KAFKA_BORKERS names no config key"},
		{name: "bad environment value", env: []string{"STREAMREC_CLICKSTREAM_MAX_POLL_RECORDS=lots"}, wantErr: `STREAMREC_CLICKSTREAM_MAX_POLL_RECORDS (config key clickstream.max_poll_records): "lots" is not an integer`},
		{name: "bad duration", env: []string{"STREAMREC_REPORT_INTERVAL=soon"}, wantErr: `"soon" is not a duration`},
		{name: "validation names the key", env: []string{"STREAMREC_CLICKSTREAM_BATCH_MAX_RECORDS=0"}, wantErr: "clickstream.batch.max_records must be > 0"},
		{name: "bad log level", file: "log:\n  level: loud\n", wantErr: `log.level: "loud" is not debug, info, warn or error`},
		{name: "bad broker address", env: []string{"STREAMREC_KAFKA_BROKERS=localhost"}, wantErr: `kafka.brokers[0]: "localhost" is not host:port`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "streamrec.yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(path, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestKeysCoverEnvironment(t *testing.T) {
	keys := Default().Keys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Env] {
			t.Errorf("two keys share environment variable %s", k.Env)
		}
		seen[k.Env] = true
	}
	for _, want := range []string{"STREAMREC_KAFKA_BROKERS", "STREAMREC_BROKER_DATA_DIR", "STREAMREC_CLICKSTREAM_BATCH_MAX_WAIT", "STREAMREC_KAFKA_SASL_PASSWORD", "STREAMREC_PRODUCE_RATE"} {
		if !seen[want] {
			t.Errorf("no key for %s", want)
		}
	}
}
