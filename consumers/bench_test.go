package consumers

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/internal/benchmem"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/broker/brokertest"
	"github.com/streamrec/streamrec/pipeline/kafka"
)

// The runtime benchmarks run against a kfake broker in a child process, so
// the reported memory is the consumer's (and the paced input producer's).
// Run them with -benchtime=1x: each sub-benchmark is one timed scenario
// (make bench).

const benchValue = `{"event_id":"0f8fad5b-d9cb-469f-a165-70867728950e","type":"view","user_id":"user-00042","item_id":"item-000123","timestamp":"2026-11-28T03:00:00Z","context":{"device":"mobile"}}`

// benchProduce writes n records in parallel batches, at most rate records/s
// (0: as fast as possible), and closes done when all are acknowledged.
func benchProduce(b *testing.B, kc kafka.Config, n, rate, size int, done chan<- struct{}) {
	pad := strings.Repeat("x", max(0, size-len(benchValue)))
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(done)
		defer cl.Close()
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			if rate > 0 && i%100 == 0 {
				if ahead := time.Duration(float64(i)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead) // pacing the input, not waiting for a condition
				}
			}
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: strconv.AppendInt(nil, int64(i), 10), Value: []byte(benchValue + pad)},
				func(_ *kgo.Record, err error) {
					if err != nil {
						panic(err)
					}
					wg.Done()
				})
		}
		wg.Wait()
	}()
}

// sampler records the peak of a value polled every few milliseconds.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Int64
}

func sample(every time.Duration, f func() int64) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v := f(); v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *sampler) finish() int64 { close(s.stop); <-s.done; return s.peak.Load() }

func heapInuse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// BenchmarkRuntime measures the consumer runtime: throughput into a no-op
// sink, and memory under a sink 10x slower than the input, with the
// per-partition buffer bounded (fetching pauses) and, for comparison,
// effectively unbounded.
func BenchmarkRuntime(b *testing.B) {
	b.Run("noop-sink", func(b *testing.B) {
		const n = 300_000
		kc := brokertest.Start(b, topic, 6)
		done := make(chan struct{})
		benchProduce(b, kc, n, 0, len(benchValue), done)
		<-done
		for i := range b.N {
			runScenario(b, kc, fmt.Sprintf("noop-%d", i), n, DefaultConfig("", topic), 0)
		}
	})

	// Input: 1 KiB records at 20,000/s for 2 s. The sink, shared by all
	// partitions, takes 1/2,000 s per record: 10x slower than the input.
	const (
		inRate   = 20_000
		n        = 2 * inRate
		sinkRate = inRate / 10
	)
	slow := func(b *testing.B, name string, cfg Config) {
		kc := brokertest.Start(b, topic, 3)
		done := make(chan struct{})
		benchProduce(b, kc, n, inRate, 1024, done)
		runScenario(b, kc, name, n, cfg, sinkRate)
		<-done
	}
	b.Run("slow-sink-10x/bounded-buffer", func(b *testing.B) {
		cfg := DefaultConfig("", topic)
		cfg.MaxBufferedRecords = 1000
		cfg.MaxPollRecords = 500
		cfg.FetchMaxBytes = 256 << 10
		slow(b, "bounded", cfg)
	})
	b.Run("slow-sink-10x/unbounded-buffer", func(b *testing.B) {
		cfg := DefaultConfig("", topic)
		cfg.MaxBufferedRecords = 10_000_000
		cfg.MaxBufferedBytes = 1 << 40
		cfg.MaxPollRecords = 500
		cfg.FetchMaxBytes = 256 << 10
		slow(b, "unbounded", cfg)
	})
}

// runScenario consumes n records with cfg into a sink that handles
// sinkRate records/s (0: no-op), and reports throughput, peaks and losses.
func runScenario(b *testing.B, kc kafka.Config, group string, n int, cfg Config, sinkRate int) {
	b.Helper()
	cfg.Group = "bench-" + group
	cfg.Batch = pipeline.BatchPolicy{MaxRecords: 500, MaxBytes: 4 << 20, MaxWait: 5 * time.Millisecond}
	var (
		slowMu sync.Mutex
		mu     sync.Mutex
		seen   = make(map[int64]struct{}, n)
		count  atomic.Int64
		all    = make(chan struct{})
	)
	sink := pipeline.SinkFunc(func(_ context.Context, batch []pipeline.Record) (pipeline.Result, error) {
		if sinkRate > 0 {
			// The simulated slow sink: one store for all partitions, busy
			// len(batch)/sinkRate seconds per batch.
			slowMu.Lock()
			time.Sleep(time.Duration(len(batch)) * time.Second / time.Duration(sinkRate))
			slowMu.Unlock()
		}
		mu.Lock()
		for _, r := range batch {
			i, _ := strconv.ParseInt(string(r.Key), 10, 64)
			seen[i] = struct{}{}
		}
		mu.Unlock()
		if count.Add(int64(len(batch))) >= int64(n) {
			select {
			case <-all:
			default:
				close(all)
			}
		}
		return pipeline.Result{}, nil
	})
	m := NewMetrics(nil)
	c, err := New(kc, cfg, sink, WithMetrics(m))
	if err != nil {
		b.Fatal(err)
	}
	benchmem.ResetPeak()
	heap := sample(5*time.Millisecond, heapInuse)
	buffered := sample(5*time.Millisecond, func() int64 {
		return int64(testutil.ToFloat64(m.buffered.WithLabelValues(cfg.Group, topic)))
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d records in 5 minutes", count.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	lost := n - len(seen)
	mu.Unlock()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	b.ReportMetric(benchmem.PeakMiB(), "peak-rss-MiB")
	b.ReportMetric(float64(heap.finish())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(buffered.finish()), "peak-buffered-records")
	b.ReportMetric(testutil.ToFloat64(m.pauses.WithLabelValues(cfg.Group, topic)), "pauses")
	b.ReportMetric(float64(lost), "lost")
	if lost != 0 {
		b.Errorf("%d records lost", lost)
	}
}
