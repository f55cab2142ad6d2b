// Package config loads streamrec's configuration: built-in defaults, then an
// optional YAML file, then STREAMREC_* environment variables, then
// validation. Every error names the key at fault.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/consumers/clickstream"
	"github.com/streamrec/streamrec/consumers/cooccur"
	"github.com/streamrec/streamrec/consumers/popularity"
	"github.com/streamrec/streamrec/consumers/profiles"
	"github.com/streamrec/streamrec/consumers/serving"
	"github.com/streamrec/streamrec/internal/health"
	"github.com/streamrec/streamrec/pipeline/broker"
	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/embed"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/pipeline/onnx"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/pipeline/qdrant"
	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// Config is the whole configuration of a streamrec process.
type Config struct {
	Log     Log            `yaml:"log"`
	Kafka   kafka.Config   `yaml:"kafka"`
	Broker  Broker         `yaml:"broker"`
	Topics  Topics         `yaml:"topics"`
	Limits  schemas.Limits `yaml:"limits"`
	Metrics Metrics        `yaml:"metrics"`
	// Health configures readiness (/readyz): how dependencies are probed
	// and when a partition counts as stalled.
	Health health.Config `yaml:"health"`
	// Clickstream and Catalog configure the consumer groups of those kinds.
	// Their topics come from the topics section.
	Clickstream Clickstream `yaml:"clickstream"`
	Catalog     Catalog     `yaml:"catalog"`
	// Serving configures the consumer of recommendation requests.
	Serving Serving `yaml:"serving"`
	// Profiles configures the real-time user profiles the clickstream
	// consumer keeps (when embed.enabled).
	Profiles profiles.Config `yaml:"profiles"`
	// Popularity configures the cold-start popularity the serving consumer
	// keeps.
	Popularity popularity.Config `yaml:"popularity"`
	// CoOccurrence configures the item co-occurrence the serving consumer
	// learns from the clickstream (for_user's collaborative signal).
	CoOccurrence cooccur.Config `yaml:"cooccurrence"`
	// VectorStore says where item and user vectors live.
	VectorStore VectorStore `yaml:"vectorstore"`
	// Analytics says where analysts' rows (events, items, recommendations)
	// go: local Parquet files or the ClickHouse server.
	Analytics Analytics `yaml:"analytics"`
	// ClickHouse is the analytics database's connection (analytics.backend
	// clickhouse, `streamrec migrate`).
	ClickHouse clickhouse.Config `yaml:"clickhouse"`
	Producer   producers.Config  `yaml:"producer"`
	// Embed configures the embedding model and its micro-batcher.
	Embed   Embed        `yaml:"embed"`
	Produce synth.Config `yaml:"produce"`
	// ReportInterval is how often consumers log what they consumed.
	ReportInterval time.Duration `yaml:"report_interval"`
}

// Clickstream configures the clickstream consumer: its consumer group and
// the data-quality guards (dedup window, per-user rate limit).
type Clickstream struct {
	consumers.Config `yaml:",inline"`
	Quality          clickstream.QualityConfig `yaml:"quality"`
}

// Serving configures the serving consumer: its consumer group on
// topics.requests and how it answers.
type Serving struct {
	consumers.Config `yaml:",inline"`
	Server           serving.Config `yaml:",inline"`
}

// Catalog configures the catalog consumer: its consumer group and how an
// item becomes the text that is embedded.
type Catalog struct {
	consumers.Config `yaml:",inline"`
	Text             catalog.TextConfig `yaml:"text"`
}

// Analytics selects and configures the analytics store.
type Analytics struct {
	// Backend is local (Parquet files in dir, queried with `streamrec sql`),
	// clickhouse (the server of the clickhouse section; its schema is
	// migrated at start) or none (events are validated and counted only).
	Backend string `yaml:"backend"`
	// Dir is the local store's folder.
	Dir        string                     `yaml:"dir"`
	Local      parquetstore.Config        `yaml:"local"`
	ClickHouse clickhouse.AnalyticsConfig `yaml:"clickhouse"`
}

// VectorStore selects and configures the vector store.
type VectorStore struct {
	// Backend is local (embedded, in data_dir) or qdrant.
	Backend string `yaml:"backend"`
	// DataDir is the local store's folder.
	DataDir string            `yaml:"data_dir"`
	Local   localstore.Config `yaml:"local"`
	Qdrant  qdrant.Config     `yaml:"qdrant"`
}

// Embed configures the embedding engine.
type Embed struct {
	// Enabled loads the model in `streamrec run`.
	Enabled bool         `yaml:"enabled"`
	ONNX    onnx.Config  `yaml:"onnx"`
	Batch   embed.Policy `yaml:"batch"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Broker configures the embedded broker.
type Broker struct {
	// Embedded starts the in-process broker in `streamrec run` and points
	// kafka.brokers at it. Set it false to use external brokers.
	Embedded      bool `yaml:"embedded"`
	broker.Config `yaml:",inline"`
}

// Topics names the pipeline's topics and how they are created when missing.
type Topics struct {
	Clickstream kafka.Topic `yaml:"clickstream"`
	Catalog     kafka.Topic `yaml:"catalog"`
	Requests    kafka.Topic `yaml:"requests"`
}

// All lists the topics.
func (t Topics) All() []kafka.Topic { return []kafka.Topic{t.Clickstream, t.Catalog, t.Requests} }

// Metrics configures the /metrics, /healthz and /readyz listener.
type Metrics struct {
	// Addr is host:port; empty disables the listener.
	Addr string `yaml:"addr"`
}

// Default returns the built-in configuration: everything embedded on this
// machine.
func Default() Config {
	p := producers.DefaultConfig()
	return Config{
		Log:    Log{Level: "info", Format: "text"},
		Kafka:  kafka.DefaultConfig(),
		Broker: Broker{Embedded: true, Config: broker.DefaultConfig()},
		Topics: Topics{
			Clickstream: kafka.Topic{Name: schemas.TopicClickstream, Partitions: 6},
			Catalog:     kafka.Topic{Name: schemas.TopicCatalog, Partitions: 3, Compact: true},
			Requests:    kafka.Topic{Name: schemas.TopicRecoRequests, Partitions: 3},
		},
		Limits:         schemas.DefaultLimits(),
		Metrics:        Metrics{Addr: "127.0.0.1:9464"},
		Health:         health.DefaultConfig(),
		Clickstream:    Clickstream{Config: clickstreamConsumer(), Quality: clickstream.DefaultQualityConfig()},
		Serving:        Serving{Config: servingConsumer(), Server: serving.DefaultConfig()},
		Profiles:       profiles.DefaultConfig(),
		Popularity:     popularity.DefaultConfig(),
		CoOccurrence:   cooccur.DefaultConfig(),
		Catalog:        Catalog{Config: consumers.DefaultConfig("streamrec-catalog"), Text: catalog.DefaultTextConfig()},
		Analytics:      Analytics{Backend: "local", Dir: "data/analytics", Local: parquetstore.DefaultConfig(), ClickHouse: clickhouse.DefaultAnalyticsConfig()},
		ClickHouse:     clickhouse.DefaultConfig(),
		VectorStore:    VectorStore{Backend: "local", DataDir: "data/vectors", Local: localstore.DefaultConfig(), Qdrant: qdrant.DefaultConfig()},
		Producer:       p,
		Embed:          Embed{Enabled: true, ONNX: onnx.DefaultConfig(), Batch: embed.DefaultPolicy()},
		Produce:        synth.DefaultConfig(),
		ReportInterval: 5 * time.Second,
	}
}

// clickstreamConsumer is the runtime's default with bigger batches: the
// analytics store confirms a batch only once it is written (group commit
// across partitions), so each partition's throughput is its batch size per
// flush (BenchmarkIngest: 1,000 gave 25k events/s into ClickHouse, 5,000
// gives 150k+).
func clickstreamConsumer() consumers.Config {
	c := consumers.DefaultConfig("streamrec-clickstream")
	c.Batch.MaxRecords = 5000
	return c
}

// servingConsumer is the runtime's default tuned for latency: a request is
// handed to the server as soon as it is fetched.
func servingConsumer() consumers.Config {
	c := consumers.DefaultConfig("streamrec-serving")
	c.Batch.MaxRecords = 256
	c.Batch.MaxWait = 0
	c.FetchMaxWait = 100 * time.Millisecond
	// While a batch waits for its analytics rows to be confirmed (a group
	// commit of up to analytics.*.batch.max_wait), the next requests are
	// already answered (BenchmarkServing: for_user p99 56 ms -> see
	// docs/performance.md).
	c.MaxInFlight = 8
	return c
}

// Load builds the configuration from the defaults, the YAML file at path
// (if not empty) and the environment, and validates it.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	cfg.Derive()
	return cfg, cfg.Validate()
}

func decodeYAML(data []byte, cfg *Config) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		return err
	}
	if err := checkKeys(&doc, reflect.TypeFor[Config](), ""); err != nil {
		return err
	}
	return doc.Decode(cfg)
}

// Derive fills the fields that follow from others (the consumers' topics,
// the limits each component validates with). Load calls it; call it again
// after changing topics or limits in code.
func (c *Config) Derive() {
	c.Clickstream.Topics = []string{c.Topics.Clickstream.Name}
	c.Catalog.Topics = []string{c.Topics.Catalog.Name}
	c.Serving.Topics = []string{c.Topics.Requests.Name}
	c.Serving.Server.Limits = c.Limits
	c.Serving.Server.Reserved = nil
	for _, t := range c.Topics.All() {
		c.Serving.Server.Reserved = append(c.Serving.Server.Reserved, t.Name)
	}
	c.Producer.ClickstreamTopic = c.Topics.Clickstream.Name
	c.Producer.CatalogTopic = c.Topics.Catalog.Name
	c.Producer.Limits = c.Limits
}

// Validate reports every invalid key.
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add(fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add(fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	add(c.Kafka.Validate("kafka"))
	add(c.Health.Validate("health"))
	add(c.Broker.Validate("broker"))
	for _, t := range []struct {
		key string
		t   kafka.Topic
	}{{"topics.clickstream", c.Topics.Clickstream}, {"topics.catalog", c.Topics.Catalog}, {"topics.requests", c.Topics.Requests}} {
		if t.t.Name == "" {
			add(fmt.Errorf("%s.name must not be empty", t.key))
		}
		if t.t.Partitions <= 0 {
			add(fmt.Errorf("%s.partitions must be > 0", t.key))
		}
	}
	if err := c.Limits.Validate(); err != nil {
		add(fmt.Errorf("limits: %w", err))
	}
	add(c.Clickstream.Validate("clickstream"))
	// Profiles and the quality guards need a partition's batches in order,
	// and the catalog's newest-wins check reads what earlier batches wrote.
	for _, k := range []struct {
		key string
		n   int
	}{{"clickstream", c.Clickstream.MaxInFlight}, {"catalog", c.Catalog.MaxInFlight}} {
		if k.n != 1 {
			add(fmt.Errorf("%s.max_in_flight must be 1 (its sink is order-sensitive)", k.key))
		}
	}
	add(c.Clickstream.Quality.Validate("clickstream.quality"))
	add(c.Catalog.Config.Validate("catalog"))
	add(c.Serving.Config.Validate("serving"))
	add(c.Serving.Server.Validate("serving"))
	add(c.Profiles.Validate("profiles"))
	add(c.Popularity.Validate("popularity"))
	add(c.CoOccurrence.Validate("cooccurrence"))
	add(c.Catalog.Text.Validate("catalog.text"))
	switch c.VectorStore.Backend {
	case "local":
		if c.VectorStore.DataDir == "" {
			add(errors.New("vectorstore.data_dir must not be empty for the local backend"))
		}
		add(c.VectorStore.Local.Validate("vectorstore.local"))
	case "qdrant":
		add(c.VectorStore.Qdrant.Validate("vectorstore.qdrant"))
	default:
		add(fmt.Errorf("vectorstore.backend: %q is not local or qdrant", c.VectorStore.Backend))
	}
	add(c.Producer.Validate())
	switch c.Analytics.Backend {
	case "local":
		if c.Analytics.Dir == "" {
			add(errors.New("analytics.dir must not be empty for the local backend"))
		}
		add(c.Analytics.Local.Validate("analytics.local"))
	case "clickhouse":
		add(c.Analytics.ClickHouse.Validate("analytics.clickhouse"))
	case "none":
	default:
		add(fmt.Errorf("analytics.backend: %q is not local, clickhouse or none", c.Analytics.Backend))
	}
	add(c.ClickHouse.Validate("clickhouse"))
	add(c.Embed.ONNX.Validate("embed.onnx"))
	add(c.Embed.Batch.Validate("embed.batch"))
	add(c.Produce.Validate())
	if c.ReportInterval <= 0 {
		add(errors.New("report_interval must be > 0"))
	}
	return errors.Join(errs...)
}

// Logger builds the process logger from c.Log, writing to w.
func (c Config) Logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
