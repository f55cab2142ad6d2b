// Package app wires streamrec's components from a config and runs them under
// one root context: the embedded broker, the topics, the consumer kinds and
// the metrics listener. cmd/streamrec only parses flags and calls in here.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/consumers/clickstream"
	"github.com/streamrec/streamrec/consumers/cooccur"
	"github.com/streamrec/streamrec/consumers/popularity"
	"github.com/streamrec/streamrec/consumers/profiles"
	"github.com/streamrec/streamrec/consumers/serving"
	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/internal/health"
	"github.com/streamrec/streamrec/internal/telemetry"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/broker"
	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/embed"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/pipeline/onnx"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/pipeline/qdrant"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// Kind names a consumer kind.
type Kind string

// Consumer kinds.
const (
	KindClickstream Kind = "clickstream"
	KindCatalog     Kind = "catalog"
	KindServing     Kind = "serving"
)

// Options says what a Run starts.
type Options struct {
	// Broker starts the embedded broker (when the config enables it) and
	// points the clients at it.
	Broker bool
	// Kinds are the consumer kinds to run.
	Kinds []Kind
	// Embedder loads the embedding model and runs its micro-batcher (when
	// the config enables it).
	Embedder bool
	// Banner, if not nil, gets the how-to-send-events text once ready.
	Banner io.Writer
	// Job, if not nil, runs once everything is started; Run stops
	// everything when it returns and returns its error (`streamrec eval`).
	Job func(ctx context.Context, env JobEnv) error
	// Demo, if not nil, runs the MovieLens demo once everything is started
	// (`streamrec run --demo`, which `make run` uses).
	Demo *Demo
	// Ready, if not nil, is called with the broker address once everything
	// is started (tests use it).
	Ready func(brokerAddr string)
}

// JobEnv is what an Options.Job gets.
type JobEnv struct {
	// Config is the config in use (kafka.brokers point at the embedded
	// broker when it runs).
	Config config.Config
	// Store is the process's vector store; nil without embed.enabled.
	Store pipeline.VectorStore
	// Followed returns how many clickstream events naming an item the
	// serving consumer's follower (popularity, co-occurrence) has taken in:
	// applied, or dropped as duplicates or rate-limited, as the clickstream
	// consumer drops them; always 0 without the serving kind.
	Followed func() int64
}

// Run starts what opts asks for and runs it until ctx is done, then stops
// it: consumers drain and commit first, the broker closes last.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) error {
	reg := telemetry.NewRegistry()
	var b *broker.Broker
	if opts.Broker && cfg.Broker.Embedded {
		var err error
		if b, err = broker.Start(cfg.Broker.Config, log); err != nil {
			return err
		}
		// The broker outlives the consumers: they commit on the way out.
		defer b.Close()
		cfg.Kafka.Brokers = []string{b.Addr()}
	}
	admin, err := newClient(cfg.Kafka, log)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := ensureTopics(ctx, admin, cfg); err != nil {
		return err
	}
	// Readiness: Kafka, each store this process writes, each partition.
	checker, err := health.New(cfg.Health, log.With("component", "health"), reg)
	if err != nil {
		return err
	}
	checker.Add("kafka", func(ctx context.Context) error {
		if err := admin.Ping(ctx); err != nil {
			return fmt.Errorf("kafka brokers %v unreachable: %w", cfg.Kafka.Brokers, err)
		}
		return nil
	})

	// The embedder and the vector store outlive the consumers: a draining
	// consumer still embeds and writes. Deferred calls stop them after the
	// consumers have stopped (g.Wait below).
	if !cfg.Embed.Enabled && slices.Contains(opts.Kinds, KindServing) {
		log.Warn("embed.enabled is false: not starting the serving consumer (it needs item vectors)")
		opts.Kinds = slices.DeleteFunc(slices.Clone(opts.Kinds), func(k Kind) bool { return k == KindServing })
	}
	var emb *embed.Batcher
	if cfg.Embed.Enabled && (opts.Embedder || len(opts.Kinds) > 0) {
		_, batcher, stop, err := startEmbedder(cfg, log, reg)
		if err != nil {
			return err
		}
		defer stop()
		emb = batcher
	}
	// One vector store for every kind in this process: items (catalog),
	// users (clickstream's profiles), both read by serving.
	var store pipeline.VectorStore
	if emb != nil && len(opts.Kinds) > 0 {
		s, closeStore, err := openStore(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer closeStore()
		if _, err := catalog.EnsureItems(ctx, s, emb); err != nil {
			return err
		}
		store = s
		checker.Add("vectorstore."+cfg.VectorStore.Backend, storeProbe(s, cfg.VectorStore.DataDir))
	}

	// The analytics store too: Close flushes what draining consumers wrote.
	var an pipeline.Analytics
	if len(opts.Kinds) > 0 && cfg.Analytics.Backend != "none" {
		a, probe, err := openAnalytics(ctx, cfg, log, reg)
		if err != nil {
			return err
		}
		checker.Add("analytics."+cfg.Analytics.Backend, probe)
		defer func() {
			if err := a.Close(); err != nil {
				log.Error("closing the analytics store", "err", err)
			}
		}()
		an = a
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	// fail stops what was started before returning err, so nothing runs on
	// against the stores the deferred calls then close.
	fail := func(err error) error {
		cancel()
		_ = g.Wait()
		return err
	}
	metrics := consumers.NewMetrics(reg)
	var followed atomic.Int64
	var kinds []string
	for _, k := range opts.Kinds {
		var (
			ccfg  consumers.Config
			sink  pipeline.Sink
			tally *consumers.Tally
		)
		switch k {
		case KindClickstream:
			ccfg, tally = cfg.Clickstream.Config, clickstream.NewTally(reg)
			quality, err := clickstream.NewQuality(cfg.Clickstream.Quality, reg)
			if err != nil {
				return fail(err)
			}
			co := clickstream.Options{Limits: cfg.Limits, Tally: tally, Quality: quality, Analytics: an}
			if store != nil {
				up, err := profiles.NewUpdater(ctx, store, catalog.ItemsAlias, emb.Dim(), cfg.Profiles, log, reg)
				if err != nil {
					return fail(err)
				}
				log.Info("user profiles", "collection", up.Collection(), "items", up.ItemsCollection())
				co.Then = up.Handle
			}
			sink = clickstream.NewSink(co)
		case KindServing:
			ccfg = cfg.Serving.Config
			srv, closeReplies, err := startServing(gctx, g, cfg, log, reg, store, emb, an, &followed)
			if err != nil {
				return fail(err)
			}
			// Closed when Run returns: after the consumer's last replies.
			defer closeReplies()
			sink = srv.Sink()
		case KindCatalog:
			ccfg, tally = cfg.Catalog.Config, catalog.NewTally(reg)
			if store == nil {
				log.Warn("embed.enabled is false: the catalog consumer validates changes but indexes nothing")
				s := catalog.NewSink(cfg.Limits, nil, tally)
				if an != nil {
					s.Handle = catalog.RecordItems(s.Handle, an)
				}
				sink = s
				break
			}
			ix, err := catalog.NewIndexer(ctx, emb, store, cfg.Catalog.Text, tally)
			if err != nil {
				return fail(err)
			}
			log.Info("catalog indexing", "collection", ix.CollectionName(), "alias", catalog.ItemsAlias, "backend", cfg.VectorStore.Backend)
			s := catalog.NewIndexingSink(cfg.Limits, nil, ix)
			if an != nil {
				s.Handle = catalog.RecordItems(s.Handle, an)
			}
			sink = s
		default:
			return fail(fmt.Errorf("unknown consumer kind %q", k))
		}
		c, err := consumers.New(cfg.Kafka, ccfg, sink, consumers.WithLogger(log.With("kind", string(k))), consumers.WithMetrics(metrics))
		if err != nil {
			return fail(fmt.Errorf("%s consumer: %w", k, err))
		}
		g.Go(func() error { return c.Run(gctx) })
		checker.Watch(c)
		if tally != nil {
			g.Go(func() error { return tally.Run(gctx, cfg.ReportInterval, log.With("kind", string(k))) })
		}
		kinds = append(kinds, string(k))
	}
	g.Go(func() error { return checker.Run(gctx) })
	if cfg.Metrics.Addr != "" {
		srv, err := telemetry.Listen(cfg.Metrics.Addr, reg, checker.Ready, log)
		if err != nil {
			return fail(err)
		}
		g.Go(func() error { return srv.Run(gctx) })
	}
	checker.Started()
	log.Info("streamrec running", "brokers", cfg.Kafka.Brokers, "consumers", kinds)
	if opts.Banner != nil {
		printBanner(opts.Banner, cfg, b != nil)
	}
	if opts.Ready != nil {
		opts.Ready(cfg.Kafka.Brokers[0])
	}
	if opts.Job != nil {
		g.Go(func() error {
			if err := opts.Job(gctx, JobEnv{Config: cfg, Store: store, Followed: followed.Load}); err != nil {
				return err
			}
			return errJobDone
		})
	}
	if opts.Demo != nil {
		if store == nil || !slices.Contains(opts.Kinds, KindServing) {
			log.Warn("the demo needs embed.enabled and the serving consumer; skipping it")
		} else {
			g.Go(func() error {
				if err := runDemo(gctx, JobEnv{Config: cfg, Store: store, Followed: followed.Load}, log, *opts.Demo); err != nil && gctx.Err() == nil {
					log.Error("demo stopped", "err", err)
				}
				return nil
			})
		}
	}
	if len(kinds) == 0 {
		// A broker-only run: keep serving until asked to stop.
		g.Go(func() error { <-gctx.Done(); return nil })
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errJobDone) {
		return err
	}
	return nil
}

// openStore opens the configured vector store; the returned func closes it.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (pipeline.VectorStore, func(), error) {
	switch cfg.VectorStore.Backend {
	case "qdrant":
		s, err := qdrant.New(cfg.VectorStore.Qdrant, qdrant.WithLogger(log))
		if err != nil {
			return nil, nil, err
		}
		if _, err := s.Ping(ctx); err != nil {
			s.Close()
			return nil, nil, fmt.Errorf("vectorstore.qdrant.addr %s: %w", cfg.VectorStore.Qdrant.Addr, err)
		}
		return s, func() { s.Close() }, nil
	default:
		s, err := localstore.Open(cfg.VectorStore.DataDir, localstore.WithConfig(cfg.VectorStore.Local), localstore.WithLogger(log))
		if err != nil {
			return nil, nil, fmt.Errorf("vectorstore.data_dir %s: %w", cfg.VectorStore.DataDir, err)
		}
		return s, func() { s.Close() }, nil
	}
}

// errJobDone ends a Run whose Job finished.
var errJobDone = errors.New("job done")

// startServing builds the serving consumer's server: profiles from store,
// popularity from a clickstream follower it starts in g, a reply producer
// that sends at once and never creates topics.
func startServing(ctx context.Context, g *errgroup.Group, cfg config.Config, log *slog.Logger, reg prometheus.Registerer,
	store pipeline.VectorStore, emb pipeline.Embedder, an pipeline.Analytics, followed *atomic.Int64) (*serving.Server, func(), error) {
	tracker, err := popularity.NewTracker(cfg.Popularity)
	if err != nil {
		return nil, nil, err
	}
	co, err := cooccur.NewTracker(cfg.CoOccurrence, reg)
	if err != nil {
		return nil, nil, err
	}
	// The follower keeps what the clickstream consumer keeps: its own
	// guards from the same config (their metrics unregistered: the
	// clickstream consumer's count the topic's duplicates and bots).
	quality, err := clickstream.NewQuality(cfg.Clickstream.Quality, nil)
	if err != nil {
		return nil, nil, err
	}
	g.Go(func() error {
		// One follower feeds both, from the longer lookback: popularity's
		// decay makes the older events count next to nothing.
		judged := 0 // events naming an item, kept or dropped; owned by Follow's goroutine
		keep := func(evs []schemas.ClickEvent) []schemas.ClickEvent {
			for _, ev := range evs {
				if ev.ItemID != "" {
					judged++
				}
			}
			return quality.Filter(evs)
		}
		observe := func(evs []schemas.ClickEvent) {
			for _, ev := range evs {
				co.Observe(ev.UserID, ev.ItemID)
			}
			followed.Add(int64(judged)) // after they are applied; dropped ones count as taken in
			judged = 0
		}
		lookback := max(cfg.Popularity.Lookback, cfg.CoOccurrence.Lookback)
		return popularity.Follow(ctx, cfg.Kafka, cfg.Topics.Clickstream.Name, lookback, store, catalog.ItemsAlias, tracker, cfg.Limits, keep, log.With("kind", "popularity"), observe)
	})
	kopts, err := cfg.Kafka.Opts(log)
	if err != nil {
		return nil, nil, err
	}
	// Never AllowAutoTopicCreation: a reply-to naming a missing topic is
	// rejected (dead-lettered), not a way to create topics.
	replies, err := kgo.NewClient(append(kopts, kgo.ProducerLinger(0), kgo.UnknownTopicRetries(1))...)
	if err != nil {
		return nil, nil, err
	}
	srv, err := serving.New(serving.Deps{
		Store: store, ItemsAlias: catalog.ItemsAlias, Profiles: profiles.NewReader(store), Popularity: tracker, CoOccurrence: co,
		Embedder: emb, Analytics: an, Replies: replies,
	}, cfg.Serving.Server, log.With("kind", "serving"), reg)
	if err != nil {
		replies.Close()
		return nil, nil, err
	}
	return srv, replies.Close, nil
}

// openAnalytics opens the configured analytics store and returns it with
// its health probe. For ClickHouse it applies the embedded migrations first
// (idempotent), so a fresh server works at once.
func openAnalytics(ctx context.Context, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (pipeline.Analytics, func(context.Context) error, error) {
	switch cfg.Analytics.Backend {
	case "clickhouse":
		conn, err := clickhouse.Open(ctx, cfg.ClickHouse, log)
		if err != nil {
			return nil, nil, err
		}
		applied, err := clickhouse.Migrate(ctx, conn, schemas.ClickHouseMigrations())
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("clickhouse migrations: %w", err)
		}
		if len(applied) > 0 {
			log.Info("clickhouse migrations applied", "migrations", applied)
		}
		a, err := clickhouse.NewAnalytics(conn, cfg.Analytics.ClickHouse, log, reg)
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		log.Info("analytics to ClickHouse", "addr", cfg.ClickHouse.Addr, "database", cfg.ClickHouse.Database)
		probe := func(ctx context.Context) error {
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("clickhouse %s: %w", cfg.ClickHouse.Addr, err)
			}
			return nil
		}
		return closeBoth{a, conn.Close}, probe, nil
	default:
		s, err := parquetstore.Open(cfg.Analytics.Dir, cfg.Analytics.Local, log, reg)
		if err != nil {
			return nil, nil, fmt.Errorf("analytics.dir %s: %w", cfg.Analytics.Dir, err)
		}
		log.Info("analytics to local Parquet files (query them with `streamrec sql`)", "dir", cfg.Analytics.Dir)
		return s, dirProbe(cfg.Analytics.Dir), nil
	}
}

// storeProbe is the vector store's health probe: Qdrant's health check, or
// for the local store a read of the items alias (it fails once the store is
// closed) and a new file in its folder (it fails when the folder is gone,
// read-only or full of inodes).
func storeProbe(s pipeline.VectorStore, dir string) func(context.Context) error {
	if q, ok := s.(*qdrant.Store); ok {
		return func(ctx context.Context) error { _, err := q.Ping(ctx); return err }
	}
	writable := dirProbe(dir)
	return func(ctx context.Context) error {
		if _, err := s.ResolveAlias(ctx, catalog.ItemsAlias); err != nil {
			return err
		}
		return writable(ctx)
	}
}

// dirProbe checks that a local store's folder takes a new file.
func dirProbe(dir string) func(context.Context) error {
	return func(context.Context) error {
		f, err := os.CreateTemp(dir, ".health-*")
		if err != nil {
			return fmt.Errorf("local store %s not writable: %w", dir, err)
		}
		name := f.Name()
		return errors.Join(f.Close(), os.Remove(name))
	}
}

// closeBoth is an Analytics whose Close also closes what it runs on.
type closeBoth struct {
	pipeline.Analytics
	after func() error
}

func (c closeBoth) Close() error { return errors.Join(c.Analytics.Close(), c.after()) }

// startEmbedder loads the model and runs the micro-batcher every caller
// shares, on its own context: stop ends the batcher and then closes the
// model, so callers stop it only after everything that embeds has stopped.
func startEmbedder(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*onnx.Model, *embed.Batcher, func(), error) {
	model, err := onnx.Open(cfg.Embed.ONNX, log)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := embed.New(model, cfg.Embed.Batch, reg)
	if err != nil {
		model.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stop := func() {
		cancel()
		<-done
		model.Close()
	}
	return model, b, stop, nil
}

// Similarity embeds texts as kind and returns their pairwise cosine
// similarities, for `streamrec embed`.
func Similarity(ctx context.Context, cfg config.Config, log *slog.Logger, kind pipeline.TextKind, texts []string) ([][]float64, error) {
	model, b, stop, err := startEmbedder(cfg, log, nil)
	if err != nil {
		return nil, err
	}
	defer stop()
	start := time.Now()
	vecs, err := b.Embed(ctx, kind, texts)
	if err != nil {
		return nil, err
	}
	log.Info("embedded", "texts", len(texts), "model", model.ModelVersion(), "provider", model.Provider(), "took", time.Since(start).Round(time.Microsecond))
	sim := make([][]float64, len(vecs))
	for i := range vecs {
		sim[i] = make([]float64, len(vecs))
		for j := range vecs {
			var d float64
			for k := range vecs[i] {
				d += float64(vecs[i][k]) * float64(vecs[j][k])
			}
			sim[i][j] = d
		}
	}
	return sim, nil
}

// Reembed re-embeds the whole catalog topic with the configured model into
// its collection, then points the items alias there (catalog.Reembed). Run
// it with the new model's config while the catalog consumer keeps serving
// the old one; then restart the consumer with the new config.
func Reembed(ctx context.Context, cfg config.Config, log *slog.Logger, progress io.Writer) (catalog.ReembedReport, error) {
	_, b, stop, err := startEmbedder(cfg, log, nil)
	if err != nil {
		return catalog.ReembedReport{}, err
	}
	defer stop()
	store, closeStore, err := openStore(ctx, cfg, log)
	if err != nil {
		return catalog.ReembedReport{}, err
	}
	defer closeStore()
	tally := catalog.NewTally(nil)
	ix, err := catalog.NewIndexer(ctx, b, store, cfg.Catalog.Text, tally)
	if err != nil {
		return catalog.ReembedReport{}, err
	}
	cl, err := newClient(cfg.Kafka, log)
	if err != nil {
		return catalog.ReembedReport{}, err
	}
	defer cl.Close()
	return catalog.Reembed(ctx, cl, cfg.Topics.Catalog.Name, cfg.Limits, ix, cfg.Embed.Batch.MaxItems*4, progress)
}

// Migrate applies the ClickHouse migrations (schemas/clickhouse) that the
// configured database has not had yet and returns their names.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger) ([]string, error) {
	conn, err := clickhouse.Open(ctx, cfg.ClickHouse, log)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return clickhouse.Migrate(ctx, conn, schemas.ClickHouseMigrations())
}

// CenterCorpus is the reference corpus for the model's centring vector:
// the titles and descriptions of the synthetic catalog with a fixed seed,
// half English and half Chinese (producers/synth), so neither language is
// left in its own cone.
func CenterCorpus(items int) ([]string, string) {
	cfg := synth.DefaultConfig()
	cfg.Seed, cfg.Items, cfg.ChineseFraction = 1, items, 0.5
	cat := synth.NewCatalog(cfg, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	out := make([]string, 0, 2*items)
	for _, it := range cat.Items {
		out = append(out, it.Title, it.Description)
	}
	return out, fmt.Sprintf("synthetic catalog, seed 1, %d items, half Chinese: titles and descriptions", items)
}

// WriteCenter computes the model's centring vector (embed.onnx.center)
// from CenterCorpus and writes it into the model folder.
func WriteCenter(ctx context.Context, cfg config.Config, items int) (string, error) {
	corpus, describe := CenterCorpus(items)
	return onnx.WriteCenter(ctx, cfg.Embed.ONNX, corpus, describe)
}

func ensureTopics(ctx context.Context, cl *kgo.Client, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, cfg.Topics.All()...); err != nil {
		return fmt.Errorf("brokers %v: %w", cfg.Kafka.Brokers, err)
	}
	return nil
}

func newClient(kc kafka.Config, log *slog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := kc.Opts(log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Produce sends synthetic traffic (catalog, then clickstream) to the
// configured brokers, drawing a progress bar on progress.
func Produce(ctx context.Context, cfg config.Config, log *slog.Logger, progress io.Writer) (synth.Report, error) {
	p, cl, err := newProducer(cfg, log)
	if err != nil {
		return synth.Report{}, err
	}
	defer cl.Close()
	if err := ensureTopics(ctx, cl, cfg); err != nil {
		return synth.Report{}, err
	}
	return synth.Run(ctx, p, cfg.Produce, progress)
}

var banner = template.Must(template.New("banner").Parse(`
streamrec is running{{if .Embedded}} with an embedded Kafka broker on {{.Addr}} (data in {{.DataDir}}){{else}} against {{.Addr}}{{end}}.

  Send synthetic traffic (catalog + clickstream, with a progress bar):
    go run ./cmd/streamrec produce --rate 2000 --duration 10s

  Send one event by hand with kcat (key = user id):
    echo 'u-1|{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"item-000001","timestamp":"'$(date -u +%Y-%m-%dT%H:%M:%SZ)'"}' \
      | kcat -P -b {{.Addr}} -t {{.Clickstream}} -K '|'

  Read what is there, and the dead letters of bad records:
    kcat -C -b {{.Addr}} -t {{.Clickstream}} -o beginning -e
    kcat -C -b {{.Addr}} -t {{.Clickstream}}.dlq -o beginning -e -f 'headers: %h\n%s\n'

  Topics: {{.Clickstream}}, {{.Catalog}} (compacted), {{.Requests}}
{{- if .Metrics}}
  Metrics: http://{{.Metrics}}/metrics   Readiness: http://{{.Metrics}}/readyz{{end}}
  Stop with Ctrl-C: consumers drain, commit and leave the group.

`))

func printBanner(w io.Writer, cfg config.Config, embedded bool) {
	_ = banner.Execute(w, map[string]any{
		"Embedded":    embedded,
		"Addr":        strings.Join(cfg.Kafka.Brokers, ","),
		"DataDir":     cfg.Broker.DataDir,
		"Clickstream": cfg.Topics.Clickstream.Name,
		"Catalog":     cfg.Topics.Catalog.Name,
		"Requests":    cfg.Topics.Requests.Name,
		"Metrics":     cfg.Metrics.Addr,
	})
}
