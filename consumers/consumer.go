// Package consumers is the Kafka runtime every streamrec consumer kind runs
// on: a consumer group with one worker per partition, micro-batches handed to
// a pipeline.Sink, offsets committed only after the sink confirms, bounded
// per-partition buffers that pause fetching, retries with backoff for
// transient sink errors, a dead-letter topic for records that can never
// succeed, and a two-phase graceful shutdown.
//
// Delivery is at least once: a record's offset is committed only after the
// sink (and, for rejected records, the dead-letter topic) has confirmed it.
// After a crash or a rebalance the uncommitted tail is delivered again, so
// sinks must be idempotent.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/internal/health"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/schemas"
)

// Config configures one consumer group.
type Config struct {
	// Group is the consumer group id.
	Group string `yaml:"group"`
	// Topics are the topics consumed. Consumer kinds set them from the
	// config's topics section, so they are not a key of their own.
	Topics []string `yaml:"-"`
	// Batch says when a micro-batch is handed to the sink.
	Batch pipeline.BatchPolicy `yaml:"batch"`
	// MaxBufferedRecords and MaxBufferedBytes bound each partition's buffer
	// of fetched, not yet processed records. When either is reached, the
	// partition's fetching pauses until the buffer is below half of both.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	MaxBufferedBytes   int `yaml:"max_buffered_bytes"`
	// MaxPollRecords caps the records taken from the client per poll.
	MaxPollRecords int `yaml:"max_poll_records"`
	// MaxInFlight is how many batches of one partition may be in the sink
	// at once. 1 keeps a partition's batches strictly one after another
	// (what order-sensitive sinks, such as profile updates, need). More
	// lets a sink whose confirmation waits (a group commit) work on the next
	// batch meanwhile; offsets are still committed in order, each only once
	// its batch and every earlier one are confirmed.
	MaxInFlight int `yaml:"max_in_flight"`
	// FetchMaxBytes caps one fetch response, and so the client's own buffer.
	FetchMaxBytes int32 `yaml:"fetch_max_bytes"`
	// FetchMaxWait is how long the broker may hold a fetch waiting for
	// data. Short keeps resumed partitions from waiting behind an idle
	// long poll.
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// StartOffset is where a group without committed offsets starts:
	// "earliest" or "latest".
	StartOffset string `yaml:"start_offset"`
	// CommitInterval is how often confirmed offsets are committed. Offsets
	// are also committed on revoke and on shutdown.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// ShutdownTimeout bounds the soft stop: draining buffered records through
	// the sink. Past it, in-flight sink calls are cancelled and their records
	// left uncommitted, to be delivered again.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Retry is the backoff for transient sink and dead-letter errors.
	Retry Retry `yaml:"retry"`
	// DLQPartitions is the partition count of dead-letter topics created by
	// the consumer.
	DLQPartitions int32 `yaml:"dlq_partitions"`
}

// Retry is an exponential backoff with full jitter.
type Retry struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
	// MaxAttempts is how many times a batch is tried before it is
	// dead-lettered; 0 retries transient errors until they pass (the sink
	// is down, not the data bad), pausing the partition meanwhile.
	MaxAttempts int `yaml:"max_attempts"`
}

// DefaultConfig is a config for group consuming topics.
func DefaultConfig(group string, topics ...string) Config {
	return Config{
		Group:              group,
		Topics:             topics,
		Batch:              pipeline.DefaultBatchPolicy(),
		MaxBufferedRecords: 10_000,
		MaxBufferedBytes:   16 << 20,
		MaxPollRecords:     10_000,
		MaxInFlight:        1,
		FetchMaxBytes:      16 << 20,
		FetchMaxWait:       500 * time.Millisecond,
		StartOffset:        "earliest",
		CommitInterval:     time.Second,
		ShutdownTimeout:    10 * time.Second,
		Retry:              Retry{Initial: 100 * time.Millisecond, Max: 10 * time.Second},
		DLQPartitions:      1,
	}
}

// Validate reports the first invalid field, named under prefix (for example
// "clickstream.consumer").
func (c Config) Validate(prefix string) error {
	switch {
	case c.Group == "":
		return fmt.Errorf("%s.group must not be empty", prefix)
	case len(c.Topics) == 0:
		return fmt.Errorf("%s.topics must not be empty", prefix)
	case c.MaxBufferedRecords <= 0:
		return fmt.Errorf("%s.max_buffered_records must be > 0", prefix)
	case c.MaxBufferedBytes <= 0:
		return fmt.Errorf("%s.max_buffered_bytes must be > 0", prefix)
	case c.MaxPollRecords <= 0:
		return fmt.Errorf("%s.max_poll_records must be > 0", prefix)
	case c.MaxInFlight <= 0:
		return fmt.Errorf("%s.max_in_flight must be > 0", prefix)
	case c.FetchMaxBytes <= 0:
		return fmt.Errorf("%s.fetch_max_bytes must be > 0", prefix)
	case c.FetchMaxWait < 10*time.Millisecond:
		return fmt.Errorf("%s.fetch_max_wait must be >= 10ms", prefix)
	case c.StartOffset != "earliest" && c.StartOffset != "latest":
		return fmt.Errorf("%s.start_offset: %q is not earliest or latest", prefix, c.StartOffset)
	case c.CommitInterval < 100*time.Millisecond:
		return fmt.Errorf("%s.commit_interval must be >= 100ms", prefix)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("%s.shutdown_timeout must be > 0", prefix)
	case c.Retry.Initial <= 0:
		return fmt.Errorf("%s.retry.initial must be > 0", prefix)
	case c.Retry.Max < c.Retry.Initial:
		return fmt.Errorf("%s.retry.max must be >= %s.retry.initial", prefix, prefix)
	case c.Retry.MaxAttempts < 0:
		return fmt.Errorf("%s.retry.max_attempts must be >= 0", prefix)
	case c.DLQPartitions <= 0:
		return fmt.Errorf("%s.dlq_partitions must be > 0", prefix)
	}
	for i, t := range c.Topics {
		if t == "" {
			return fmt.Errorf("%s.topics[%d] must not be empty", prefix, i)
		}
	}
	return c.Batch.Validate(prefix + ".batch")
}

// Option configures a Consumer.
type Option func(*Consumer)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Consumer) { c.log = l } }

// WithMetrics sets the metrics the consumer reports to (see NewMetrics).
func WithMetrics(m *Metrics) Option { return func(c *Consumer) { c.metrics = m } }

// WithClientOpts adds franz-go client options (tests use it to shorten
// timeouts).
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(c *Consumer) { c.extraOpts = append(c.extraOpts, opts...) }
}

// Consumer runs one consumer group into one sink.
type Consumer struct {
	cfg       Config
	sink      pipeline.Sink
	log       *slog.Logger
	metrics   *Metrics
	extraOpts []kgo.Opt
	kc        kafka.Config
	cl        *kgo.Client
	// dlq produces dead letters, its batches bounded by the dead-letter
	// topics' max.message.bytes (dlqMax), read from the cluster in Run and
	// again when a dead letter is refused as too large.
	dlq       *kgo.Client
	dlqMax    atomic.Int32
	dlqTopics []string

	// hardCtx is cancelled at the hard-stop deadline; sink and dead-letter
	// calls run under it.
	hardCtx    context.Context
	hardCancel context.CancelFunc

	mu      sync.Mutex
	workers map[partitionKey]*worker
	closing bool // set by shutdown: assignments no longer start workers
	wg      sync.WaitGroup
}

type partitionKey struct {
	topic     string
	partition int32
}

// New builds a consumer for cfg that reads through the cluster kc and writes
// into sink. It connects lazily; Run starts consuming.
func New(kc kafka.Config, cfg Config, sink pipeline.Sink, opts ...Option) (*Consumer, error) {
	if err := cfg.Validate("consumer"); err != nil {
		return nil, err
	}
	c := &Consumer{cfg: cfg, sink: sink, kc: kc, workers: make(map[partitionKey]*worker)}
	for _, o := range opts {
		o(c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("group", cfg.Group)
	if c.metrics == nil {
		c.metrics = NewMetrics(nil)
	}
	c.hardCtx, c.hardCancel = context.WithCancel(context.Background())

	base, err := kc.Opts(c.log)
	if err != nil {
		c.hardCancel()
		return nil, err
	}
	start := kgo.NewOffset().AtStart()
	if cfg.StartOffset == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	kopts := append(base,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(cfg.CommitInterval),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	kopts = append(kopts, kc.GroupOpts()...)
	kopts = append(kopts, c.extraOpts...)
	if c.cl, err = kgo.NewClient(kopts...); err != nil {
		c.hardCancel()
		return nil, fmt.Errorf("kafka client for group %s: %w", cfg.Group, err)
	}
	return c, nil
}

// Run consumes until ctx is done, then shuts down in two phases: it stops
// fetching, drains buffered records through the sink (up to
// ShutdownTimeout, then cancels what is in flight), commits what the sink
// confirmed and leaves the group (a static member, kafka.Config.InstanceID,
// does not: its partitions wait for the same id to rejoin within the
// session timeout). It returns nil after a clean shutdown.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.hardCancel()
	dlqs := make([]kafka.Topic, 0, len(c.cfg.Topics))
	for _, t := range c.cfg.Topics {
		dlqs = append(dlqs, kafka.Topic{Name: t + schemas.DLQSuffix, Partitions: c.cfg.DLQPartitions})
	}
	if err := kafka.EnsureTopics(ctx, c.cl, dlqs...); err != nil && ctx.Err() == nil {
		c.cl.Close()
		return fmt.Errorf("group %s: %w", c.cfg.Group, err)
	}
	if err := c.startDLQ(ctx, dlqs); err != nil {
		c.cl.Close()
		return fmt.Errorf("group %s: %w", c.cfg.Group, err)
	}
	defer c.dlq.Close() // after shutdown: draining workers still dead-letter
	c.log.Info("consumer started", "topics", c.cfg.Topics, "dlq_max_message_bytes", c.dlqMax.Load())

	for {
		fetches := c.cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			c.metrics.fetchErrors.WithLabelValues(topic).Inc()
			c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		fetches.EachPartition(c.dispatch)
		c.cl.AllowRebalance()
		if ctx.Err() != nil {
			break
		}
	}
	return c.shutdown()
}

// shutdown is the two-phase stop. Phase one (soft): stop fetching and let
// every worker drain its buffer through the sink. Phase two (hard, at
// ShutdownTimeout): cancel in-flight sink calls; their records stay
// uncommitted. Then commit what was confirmed and leave the group.
func (c *Consumer) shutdown() error {
	start := time.Now()
	c.cl.PauseFetchTopics(c.cfg.Topics...)
	hard := time.AfterFunc(c.cfg.ShutdownTimeout, func() {
		c.log.Warn("shutdown timeout reached; cancelling in-flight batches", "timeout", c.cfg.ShutdownTimeout)
		c.hardCancel()
	})
	c.mu.Lock()
	c.closing = true
	for _, w := range c.workers {
		w.startDrain()
	}
	c.mu.Unlock()
	c.wg.Wait()
	hard.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	err := c.cl.CommitMarkedOffsets(ctx)
	if err != nil {
		err = fmt.Errorf("group %s: final commit: %w", c.cfg.Group, err)
	}
	c.cl.Close() // leaves the group, unless a static member
	c.log.Info("consumer stopped", "drain", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// dispatch hands one partition's polled records to its worker. It runs on
// the poll goroutine, between a poll and AllowRebalance, so no rebalance
// callback runs concurrently.
func (c *Consumer) dispatch(p kgo.FetchTopicPartition) {
	if len(p.Records) == 0 {
		return
	}
	key := partitionKey{p.Topic, p.Partition}
	c.mu.Lock()
	w := c.workers[key]
	c.mu.Unlock()
	if w == nil {
		// Assignment always precedes fetching; a missing worker is a bug.
		c.log.Error("records for a partition with no worker; dropping without commit", "topic", p.Topic, "partition", p.Partition, "records", len(p.Records))
		return
	}
	w.push(p.Records)
}

func (c *Consumer) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		// A rebalance during shutdown: fetching is paused and the group is
		// being left, so these partitions are not consumed here.
		return
	}
	for topic, parts := range assigned {
		for _, p := range parts {
			key := partitionKey{topic, p}
			if _, ok := c.workers[key]; ok {
				continue
			}
			w := newWorker(c, key)
			c.workers[key] = w
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				w.run()
			}()
		}
	}
	c.metrics.assigned.WithLabelValues(c.cfg.Group).Set(float64(len(c.workers)))
	c.log.Info("partitions assigned", "partitions", assigned)
}

// revoked stops the workers of revoked partitions (each finishes its
// in-flight batch, abandoning what is only buffered) and commits what they
// confirmed, before the partitions move to another member.
func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	c.stopWorkers(revoked)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		c.log.Warn("commit on revoke failed; uncommitted records will be delivered again", "err", err)
	}
	if len(revoked) > 0 {
		c.log.Info("partitions revoked", "partitions", revoked)
	}
}

// lost stops the workers of lost partitions; nothing can be committed.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.stopWorkers(lost)
	c.log.Warn("partitions lost", "partitions", lost)
}

func (c *Consumer) stopWorkers(parts map[string][]int32) {
	var stopped []*worker
	c.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			key := partitionKey{topic, p}
			if w, ok := c.workers[key]; ok {
				w.stopNow()
				stopped = append(stopped, w)
				delete(c.workers, key)
			}
		}
	}
	c.metrics.assigned.WithLabelValues(c.cfg.Group).Set(float64(len(c.workers)))
	c.mu.Unlock()
	for _, w := range stopped {
		<-w.done
	}
}

// Stalled returns the partitions of this member whose records have waited
// longer than after without a batch being confirmed (health.Staller).
func (c *Consumer) Stalled(after time.Duration) []health.Stall {
	c.mu.Lock()
	ws := make([]*worker, 0, len(c.workers))
	for _, w := range c.workers {
		ws = append(ws, w)
	}
	c.mu.Unlock()
	var out []health.Stall
	now := time.Now()
	for _, w := range ws {
		if n, since := w.stalled(); n > 0 && now.Sub(since) > after {
			out = append(out, health.Stall{Group: c.cfg.Group, Topic: w.key.topic, Partition: w.key.partition, Since: since, Waiting: n})
		}
	}
	return out
}

// backoff returns the wait before retry attempt n (1-based): full jitter
// over an exponential bound.
func (r Retry) backoff(n int) time.Duration {
	d := r.Initial << min(n-1, 30)
	if d <= 0 || d > r.Max {
		d = r.Max
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// Metrics are the runtime's Prometheus metrics, shared by all consumers of a
// process and labelled by group and topic.
type Metrics struct {
	records     *prometheus.CounterVec
	batches     *prometheus.CounterVec
	sinkSeconds *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	buffered    *prometheus.GaugeVec
	paused      *prometheus.GaugeVec
	pauses      *prometheus.CounterVec
	assigned    *prometheus.GaugeVec
	fetchErrors *prometheus.CounterVec
	truncated   *prometheus.CounterVec
	progress    *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_consumer_records_total",
			Help: "Records processed, by result: ok (sink confirmed), dlq (dead-lettered).",
		}, []string{"group", "topic", "result"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_consumer_batches_total",
			Help: "Sink write attempts, by result.",
		}, []string{"group", "topic", "result"}),
		sinkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "streamrec_consumer_sink_seconds",
			Help:    "Time the sink took to confirm a batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"group", "topic"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_consumer_retries_total",
			Help: "Batches retried after a transient error.",
		}, []string{"group", "topic"}),
		buffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_consumer_buffered_records",
			Help: "Records fetched and not yet handed to the sink.",
		}, []string{"group", "topic"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_consumer_paused_partitions",
			Help: "Partitions whose fetching is paused because their buffer is full.",
		}, []string{"group", "topic"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_consumer_pauses_total",
			Help: "Times a partition's fetching was paused for backpressure.",
		}, []string{"group", "topic"}),
		assigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_consumer_assigned_partitions",
			Help: "Partitions assigned to this member.",
		}, []string{"group"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_consumer_fetch_errors_total",
			Help: "Fetch errors reported by the client.",
		}, []string{"topic"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_consumer_dlq_truncated_total",
			Help: "Dead letters written truncated (value prefix, original-size and original-sha256 headers) because the whole record exceeds the dead-letter topic's max.message.bytes.",
		}, []string{"group", "topic"}),
		progress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_consumer_last_progress_timestamp_seconds",
			Help: "When a partition's latest batch was confirmed by the sink and marked for commit, or it was assigned to this member (Unix seconds); with records waiting, time() minus this is how long the partition has been stuck. Deleted when the partition leaves the member.",
		}, []string{"group", "topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.batches, m.sinkSeconds, m.retries, m.buffered, m.paused, m.pauses, m.assigned, m.fetchErrors, m.truncated, m.progress)
	}
	return m
}
