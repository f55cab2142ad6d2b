package clickstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/consumers/clickstream"
	"github.com/streamrec/streamrec/internal/benchmem"
	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/broker/brokertest"
	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/parquetstore"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// The ingest benchmark runs the clickstream consumer from a kfake broker (in
// a child process, so the reported memory is the consumer's) into each
// analytics backend, one after the other in one run, over the same events.
// Run with -benchtime=1x (make bench).

const benchTopic = schemas.TopicClickstream

// produceTraffic writes n synthetic events (the generator's own duplicates
// included), keyed by user, stamped over the 10 minutes before now, and
// returns how many distinct event ids it wrote.
func produceTraffic(b *testing.B, kc kafka.Config, n int) int {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000), kgo.DefaultProduceTopic(benchTopic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	cfg := synth.DefaultConfig()
	cfg.Users = 20_000
	cfg.DuplicateFraction = 0.01
	now := time.Now()
	tr := synth.NewTraffic(synth.NewCatalog(cfg, now.Add(-time.Hour)), cfg)
	start, step := now.Add(-10*time.Minute), 10*time.Minute/time.Duration(n)
	ids := make(map[string]struct{}, n)
	errc := make(chan error, 1)
	for i := range n {
		ev, _ := tr.Next(start.Add(time.Duration(i) * step))
		ids[ev.EventID] = struct{}{}
		v, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(ev.UserID), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	return len(ids)
}

// defaults is what `streamrec run` uses, STREAMREC_* variables included:
// the benchmark measures the configuration users get.
var defaults = func() config.Config {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STREAMREC_REQUIRE_") && !strings.HasPrefix(kv, "STREAMREC_BENCH_") {
			env = append(env, kv)
		}
	}
	c, err := config.Load("", env)
	if err != nil {
		panic(err)
	}
	return c
}()

// BenchmarkIngest: clickstream events/s from Kafka through validation,
// dedup and the rate guard into each analytics backend (none: the consumer
// and the guards alone), with the process's peak RSS and the dedup window's
// memory.
func BenchmarkIngest(b *testing.B) {
	const n = 500_000
	kc := brokertest.Start(b, benchTopic, 6)
	distinct := produceTraffic(b, kc, n)
	b.Logf("produced %d events, %d distinct event ids", n, distinct)

	backends := []struct {
		name string
		open func(b *testing.B) (pipeline.Analytics, func() int)
	}{
		{"none", func(*testing.B) (pipeline.Analytics, func() int) { return nil, nil }},
		{"parquet", func(b *testing.B) (pipeline.Analytics, func() int) {
			s, err := parquetstore.Open(b.TempDir(), defaults.Analytics.Local, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			return s, nil
		}},
		{"clickhouse", func(b *testing.B) (pipeline.Analytics, func() int) {
			ctx := context.Background()
			cfg := chtest.NewDatabase(b)
			conn, err := clickhouse.Open(ctx, cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { conn.Close() })
			if _, err := clickhouse.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
				b.Fatal(err)
			}
			a, err := clickhouse.NewAnalytics(conn, defaults.Analytics.ClickHouse, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			return a, func() int {
				var got uint64
				if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events").Scan(&got); err != nil {
					b.Fatal(err)
				}
				return int(got)
			}
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			for i := range b.N {
				an, stored := be.open(b)
				ingest(b, kc, fmt.Sprintf("bench-ingest-%s-%d", be.name, i), n, distinct, an, stored)
			}
		})
	}
}

func ingest(b *testing.B, kc kafka.Config, group string, n, distinct int, an pipeline.Analytics, stored func() int) {
	b.Helper()
	reg := prometheus.NewRegistry()
	q, err := clickstream.NewQuality(defaults.Clickstream.Quality, reg)
	if err != nil {
		b.Fatal(err)
	}
	tally := clickstream.NewTally(nil)
	sink := clickstream.NewSink(clickstream.Options{Limits: schemas.DefaultLimits(), Tally: tally, Quality: q, Analytics: an})
	cfg := defaults.Clickstream.Config
	cfg.Group, cfg.Topics = group, []string{benchTopic}
	c, err := consumers.New(kc, cfg, sink)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	benchmem.ResetPeak()
	b.ResetTimer()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	// Done when every distinct event is confirmed by the sink (durable in
	// the backend); offsets are committed within commit_interval after.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for int(tally.Total()) < distinct {
		select {
		case err := <-errc:
			b.Fatalf("consumer stopped: %v", err)
		case <-tick.C:
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d events stored after 5 minutes", tally.Total(), distinct)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	if an != nil {
		if err := an.Close(); err != nil {
			b.Fatal(err)
		}
	}
	kept := int(tally.Total())
	dups := n - kept
	if stored != nil {
		if got := stored(); got != distinct {
			b.Errorf("backend holds %d distinct events, want %d", got, distinct)
		}
	}
	if kept != distinct {
		b.Errorf("kept %d events, want the %d distinct ones (none rate-limited in this traffic)", kept, distinct)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(benchmem.PeakMiB(), "peak-rss-MiB")
	b.ReportMetric(float64(dups), "duplicates-dropped")
	b.ReportMetric(float64(q.WindowBytes())/float64(defaults.Clickstream.Quality.DedupWindow), "dedup-bytes/id")
}
