// Package embed is the micro-batcher every embedding caller shares: it
// tokenizes each text in its caller's goroutine, queues it, and lets one
// goroutine cut the queue into batches by a policy {max items, max tokens,
// max wait}, sorted and bucketed by token length so little compute goes to
// padding, for one model session to run.
//
// Under load batches grow by themselves: while the model runs a batch, the
// next one fills. A lone request waits at most MaxWait.
package embed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamrec/streamrec/pipeline"
)

// Encoder is a model the batcher drives. The batcher owns the calls to Run:
// one at a time, from one goroutine.
type Encoder interface {
	// Tokenize appends the model's input ids for text (special tokens,
	// prefix for kind and truncation included) to dst. It is called
	// concurrently.
	Tokenize(dst []int32, kind pipeline.TextKind, text string) []int32
	// Run embeds a batch of token id sequences and returns one unit
	// vector per sequence. Sequences may differ in length; Run pads.
	Run(ctx context.Context, batch [][]int32) ([][]float32, error)
	Dim() int
	ModelVersion() string
}

// Policy says how requests become batches.
type Policy struct {
	// MaxItems is the most texts in one model run.
	MaxItems int `yaml:"max_items"`
	// MaxTokens is the most padded tokens (items × longest) in one run.
	MaxTokens int `yaml:"max_tokens"`
	// MaxWait is the longest a text waits for company before its batch is
	// run anyway.
	MaxWait time.Duration `yaml:"max_wait"`
	// QueueSize bounds the texts waiting; a full queue blocks callers.
	QueueSize int `yaml:"queue_size"`
	// MaxPadding is the largest share of padding tokens a bucket may have
	// before the sorted batch is cut into another bucket; 1 disables
	// bucketing (one run per batch).
	MaxPadding float64 `yaml:"max_padding"`
}

// DefaultPolicy suits a CPU: batches of up to 64 texts or 8,192 tokens.
func DefaultPolicy() Policy {
	return Policy{MaxItems: 64, MaxTokens: 8192, MaxWait: 5 * time.Millisecond, QueueSize: 4096, MaxPadding: 0.2}
}

// Validate reports the first invalid field, named under prefix ("embed.batch").
func (p Policy) Validate(prefix string) error {
	switch {
	case p.MaxItems <= 0:
		return fmt.Errorf("%s.max_items must be > 0", prefix)
	case p.MaxTokens <= 0:
		return fmt.Errorf("%s.max_tokens must be > 0", prefix)
	case p.MaxWait < 0:
		return fmt.Errorf("%s.max_wait must be >= 0", prefix)
	case p.QueueSize <= 0:
		return fmt.Errorf("%s.queue_size must be > 0", prefix)
	case p.MaxPadding <= 0 || p.MaxPadding > 1:
		return fmt.Errorf("%s.max_padding must be in (0, 1]", prefix)
	}
	return nil
}

// ErrClosed is returned by Embed once the batcher has stopped.
var ErrClosed = errors.New("embed: batcher stopped")

// item is one text waiting for its vector.
type item struct {
	ctx      context.Context
	ids      []int32
	enqueued time.Time
	out      chan<- result // buffered per call: sends never block
	index    int
}

type result struct {
	index int
	vec   []float32
	err   error
}

// Batcher is a pipeline.Embedder that micro-batches for an Encoder. Run
// must be running for Embed to make progress. Safe for concurrent use.
type Batcher struct {
	enc     Encoder
	pol     Policy
	queue   chan *item
	done    chan struct{} // closed when Run returns
	metrics *metrics
	now     func() time.Time
}

var _ pipeline.Embedder = (*Batcher)(nil)

// New returns a batcher for enc. reg may be nil.
func New(enc Encoder, pol Policy, reg prometheus.Registerer) (*Batcher, error) {
	if err := pol.Validate("embed.batch"); err != nil {
		return nil, err
	}
	return &Batcher{
		enc:     enc,
		pol:     pol,
		queue:   make(chan *item, pol.QueueSize),
		done:    make(chan struct{}),
		metrics: newMetrics(reg),
		now:     time.Now,
	}, nil
}

// Dim is the encoder's vector length.
func (b *Batcher) Dim() int { return b.enc.Dim() }

// ModelVersion is the encoder's model version.
func (b *Batcher) ModelVersion() string { return b.enc.ModelVersion() }

// Embed tokenizes texts, queues them and waits for their vectors. A text
// whose ctx ends before its batch runs is dropped from the batch.
func (b *Batcher) Embed(ctx context.Context, kind pipeline.TextKind, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	out := make(chan result, len(texts))
	for i, t := range texts {
		it := &item{ctx: ctx, ids: b.enc.Tokenize(nil, kind, t), out: out, index: i}
		it.enqueued = b.now()
		select {
		case b.queue <- it:
			b.metrics.queueDepth.Inc()
		case <-ctx.Done():
			return nil, fmt.Errorf("embed %d texts: queued %d: %w", len(texts), i, ctx.Err())
		case <-b.done:
			return nil, ErrClosed
		}
	}
	vecs := make([][]float32, len(texts))
	for range texts {
		select {
		case r := <-out:
			if r.err != nil {
				return nil, fmt.Errorf("embed %d texts: %w", len(texts), r.err)
			}
			vecs[r.index] = r.vec
		case <-ctx.Done():
			return nil, fmt.Errorf("embed %d texts: %w", len(texts), ctx.Err())
		case <-b.done:
			return nil, ErrClosed
		}
	}
	return vecs, nil
}

// Run collects queued texts into batches and runs them until ctx is done.
// Texts still queued then get ErrClosed.
func (b *Batcher) Run(ctx context.Context) error {
	defer close(b.done)
	batches := make(chan []*item) // unbuffered: a send succeeds only when the runner is idle
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for batch := range batches {
			b.runBatch(ctx, batch)
		}
	}()
	defer wg.Wait()
	defer close(batches)

	var (
		pending []*item
		maxLen  int
		timer   = time.NewTimer(time.Hour)
		due     <-chan time.Time
	)
	timer.Stop()
	defer timer.Stop()
	full := func() bool {
		return len(pending) >= b.pol.MaxItems || len(pending)*maxLen >= b.pol.MaxTokens
	}
	for {
		// Offer the pending batch to the runner once it is full or its
		// oldest text has waited MaxWait; accept more texts while it is
		// not full.
		var send chan []*item
		if len(pending) > 0 && (full() || due == nil) {
			send = batches
		}
		var in chan *item
		if !full() {
			in = b.queue
		}
		select {
		case <-ctx.Done():
			b.fail(pending, ErrClosed)
			b.drainQueue()
			return nil
		case it := <-in:
			if len(pending) == 0 {
				timer.Reset(max(0, b.pol.MaxWait-b.now().Sub(it.enqueued)))
				due = timer.C
			}
			// A text that alone exceeds the token budget still runs, alone.
			if len(pending) > 0 && (len(pending)+1)*max(maxLen, len(it.ids)) > b.pol.MaxTokens {
				select {
				case batches <- pending:
					b.metrics.queueDepth.Sub(float64(len(pending)))
				case <-ctx.Done():
					b.fail(pending, ErrClosed)
					b.fail([]*item{it}, ErrClosed)
					b.drainQueue()
					return nil
				}
				pending, maxLen = nil, 0
				timer.Reset(max(0, b.pol.MaxWait-b.now().Sub(it.enqueued)))
				due = timer.C
			}
			pending = append(pending, it)
			maxLen = max(maxLen, len(it.ids))
		case <-due:
			due = nil
		case send <- pending:
			b.metrics.queueDepth.Sub(float64(len(pending)))
			pending, maxLen, due = nil, 0, nil
			timer.Stop()
		}
	}
}

// fail delivers err to every waiting item.
func (b *Batcher) fail(items []*item, err error) {
	b.metrics.queueDepth.Sub(float64(len(items)))
	for _, it := range items {
		it.out <- result{index: it.index, err: err}
	}
}

func (b *Batcher) drainQueue() {
	for {
		select {
		case it := <-b.queue:
			b.fail([]*item{it}, ErrClosed)
		default:
			return
		}
	}
}

// runBatch drops items whose callers gave up, sorts the rest by length,
// cuts them into buckets with little padding and runs each bucket.
func (b *Batcher) runBatch(ctx context.Context, batch []*item) {
	start := b.now()
	live := batch[:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.out <- result{index: it.index, err: err}
			b.metrics.dropped.Inc()
			continue
		}
		b.metrics.wait.Observe(start.Sub(it.enqueued).Seconds())
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	b.metrics.batchSize.Observe(float64(len(live)))
	slices.SortStableFunc(live, func(x, y *item) int { return len(x.ids) - len(y.ids) })
	for _, bucket := range Buckets(lengths(live), b.pol.MaxPadding) {
		b.runBucket(ctx, live[bucket[0]:bucket[1]])
	}
}

func lengths(items []*item) []int {
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = len(it.ids)
	}
	return out
}

func (b *Batcher) runBucket(ctx context.Context, items []*item) {
	seqs := make([][]int32, len(items))
	real, longest := 0, 0
	for i, it := range items {
		seqs[i] = it.ids
		real += len(it.ids)
		longest = max(longest, len(it.ids))
	}
	b.metrics.padding.Observe(1 - float64(real)/float64(len(items)*longest))
	start := b.now()
	vecs, err := b.enc.Run(ctx, seqs)
	b.metrics.model.Observe(b.now().Sub(start).Seconds())
	if err == nil && len(vecs) != len(items) {
		err = fmt.Errorf("encoder returned %d vectors for %d texts", len(vecs), len(items))
	}
	res := "ok"
	if err != nil {
		res = "error"
	}
	b.metrics.items.WithLabelValues(res).Add(float64(len(items)))
	for i, it := range items {
		r := result{index: it.index, err: err}
		if err == nil {
			r.vec = vecs[i]
		}
		it.out <- r
	}
}

// Buckets cuts sorted sequence lengths into consecutive [start, end) ranges
// so that no range spends more than maxPadding of its padded tokens
// (count × longest) on padding. Every range holds at least one sequence.
func Buckets(sorted []int, maxPadding float64) [][2]int {
	var out [][2]int
	start, real := 0, 0
	for i, n := range sorted {
		// Would adding sequence i (the longest so far) pad too much?
		if i > start {
			padded := (i - start + 1) * n
			if 1-float64(real+n)/float64(padded) > maxPadding {
				out = append(out, [2]int{start, i})
				start, real = i, 0
			}
		}
		real += n
	}
	if start < len(sorted) {
		out = append(out, [2]int{start, len(sorted)})
	}
	return out
}

type metrics struct {
	batchSize  prometheus.Histogram
	padding    prometheus.Histogram
	wait       prometheus.Histogram
	model      prometheus.Histogram
	queueDepth prometheus.Gauge
	items      *prometheus.CounterVec
	dropped    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamrec_embed_batch_size", Help: "Texts per batch handed to the model (before bucketing).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		padding: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamrec_embed_padding_ratio", Help: "Share of padding tokens in each model run.",
			Buckets: prometheus.LinearBuckets(0, 0.1, 11),
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamrec_embed_wait_seconds", Help: "Latency the batcher adds: from a text's enqueue to its batch starting.",
			// Fine buckets (25% apart, 100µs to 0.75s) so p50/p99 can be
			// read off them.
			Buckets: prometheus.ExponentialBuckets(0.0001, 1.25, 40),
		}),
		model: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamrec_embed_model_seconds", Help: "Time of one model run.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamrec_embed_queue_depth", Help: "Texts waiting for a model run: queued, or collected into the next batch.",
		}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_embed_texts_total", Help: "Texts embedded, by result.",
		}, []string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamrec_embed_dropped_total", Help: "Texts dropped because their caller gave up before their batch ran.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batchSize, m.padding, m.wait, m.model, m.queueDepth, m.items, m.dropped)
	}
	return m
}
