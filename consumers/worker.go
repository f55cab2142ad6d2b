package consumers

import (
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline"
)

// worker owns one partition: it buffers the partition's fetched records,
// cuts them into batches by the batch policy, writes each batch to the sink
// and marks its offsets for commit once confirmed.
//
// The poll goroutine pushes; the worker goroutine takes. Both hold mu while
// they change the buffer and the paused state, so pause and resume of the
// partition's fetching are ordered with the buffer they describe.
type worker struct {
	c      *Consumer
	key    partitionKey
	labels []string // group, topic

	mu       sync.Mutex
	queue    []*kgo.Record
	bytes    int
	firstAt  time.Time // when the oldest buffered record arrived
	paused   bool
	draining bool
	// inflight counts the records taken for the sink and not yet done;
	// since is when the partition last made progress, or when records
	// started waiting after it was idle (health: a stalled partition).
	inflight int
	since    time.Time

	wake     chan struct{} // capacity 1: something changed under mu
	stop     chan struct{} // closed on revoke, loss or hard stop
	stopOnce sync.Once
	done     chan struct{} // closed when run returns

	recs []pipeline.Record // reused conversion buffer
}

func newWorker(c *Consumer, key partitionKey) *worker {
	return &worker{
		c:      c,
		key:    key,
		labels: []string{c.cfg.Group, key.topic},
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		since:  time.Now(),
	}
}

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// push appends records to the buffer and pauses the partition's fetching
// when the buffer is full. The buffer can exceed its bound by at most one
// poll's records for the partition.
func (w *worker) push(rs []*kgo.Record) {
	w.mu.Lock()
	if len(w.queue) == 0 {
		w.firstAt = time.Now()
		if w.inflight == 0 {
			w.since = w.firstAt
		}
	}
	w.queue = append(w.queue, rs...)
	for _, r := range rs {
		w.bytes += len(r.Value) + len(r.Key)
	}
	cfg := &w.c.cfg
	if !w.paused && (len(w.queue) >= cfg.MaxBufferedRecords || w.bytes >= cfg.MaxBufferedBytes) {
		w.paused = true
		w.c.cl.PauseFetchPartitions(map[string][]int32{w.key.topic: {w.key.partition}})
		w.c.metrics.paused.WithLabelValues(w.labels...).Inc()
		w.c.metrics.pauses.WithLabelValues(w.labels...).Inc()
	}
	w.c.metrics.buffered.WithLabelValues(w.labels...).Add(float64(len(rs)))
	w.mu.Unlock()
	w.signal()
}

// take removes the next batch from the buffer and resumes fetching when the
// buffer has fallen below half its bounds. mu must be held.
func (w *worker) take() []*kgo.Record {
	pol := w.c.cfg.Batch
	n, size := 0, 0
	for n < len(w.queue) && n < pol.MaxRecords {
		sz := len(w.queue[n].Value) + len(w.queue[n].Key)
		if n > 0 && size+sz > pol.MaxBytes {
			break
		}
		size += sz
		n++
	}
	batch := w.queue[:n:n]
	w.queue = w.queue[n:]
	w.bytes -= size
	w.inflight += n
	if len(w.queue) == 0 {
		w.queue = nil // let the old backing array go
	}
	cfg := &w.c.cfg
	if w.paused && len(w.queue) <= cfg.MaxBufferedRecords/2 && w.bytes <= cfg.MaxBufferedBytes/2 {
		w.paused = false
		w.c.cl.ResumeFetchPartitions(map[string][]int32{w.key.topic: {w.key.partition}})
		w.c.metrics.paused.WithLabelValues(w.labels...).Dec()
	}
	w.c.metrics.buffered.WithLabelValues(w.labels...).Sub(float64(n))
	return batch
}

// startDrain asks the worker to process everything buffered and then exit.
func (w *worker) startDrain() {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	w.signal()
}

// stopNow asks the worker to exit after its in-flight sink call, abandoning
// its buffer (those records are not committed and will be delivered again).
func (w *worker) stopNow() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *worker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *worker) run() {
	part := strconv.Itoa(int(w.key.partition))
	w.c.metrics.progress.WithLabelValues(w.c.cfg.Group, w.key.topic, part).Set(float64(time.Now().UnixNano()) / 1e9)
	defer func() {
		// The partition is another member's now: no stale series to alert on.
		w.c.metrics.progress.DeleteLabelValues(w.c.cfg.Group, w.key.topic, part)
		w.mu.Lock()
		w.c.metrics.buffered.WithLabelValues(w.labels...).Sub(float64(len(w.queue)))
		if w.paused {
			w.c.metrics.paused.WithLabelValues(w.labels...).Dec()
		}
		w.queue = nil
		w.mu.Unlock()
		close(w.done)
	}()
	if w.c.cfg.MaxInFlight > 1 {
		w.runPipelined(w.c.cfg.MaxInFlight)
		return
	}
	for {
		batch, ok := w.next()
		if !ok || !w.process(batch) {
			return
		}
	}
}

// runPipelined writes up to n batches to the sink at once. Each batch's
// goroutine waits for the previous batch's outcome before marking its own
// offsets, so marks (and commits) stay in offset order, and a batch whose
// predecessor was not confirmed is not marked either. It returns once every
// batch it started has finished.
func (w *worker) runPipelined(n int) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	prev := make(chan bool, 1)
	prev <- true
	for {
		batch, ok := w.next()
		if !ok {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-w.stop:
			return
		}
		mine := make(chan bool, 1)
		wg.Add(1)
		go func(before <-chan bool) {
			defer wg.Done()
			defer func() { <-sem }()
			ok := w.write(batch, nil)
			ok = <-before && ok
			if ok {
				w.c.cl.MarkCommitRecords(batch[len(batch)-1])
				w.progressed(batch)
			} else {
				w.stopNow() // a gap: nothing after it may be marked
			}
			mine <- ok
		}(prev)
		prev = mine
	}
}

// next waits for a batch: one that is full by count or bytes, or whose
// oldest record has waited MaxWait, or anything buffered while draining.
// It returns false when the worker must exit.
func (w *worker) next() ([]*kgo.Record, bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	pol := w.c.cfg.Batch
	for {
		if w.stopped() {
			return nil, false
		}
		w.mu.Lock()
		n := len(w.queue)
		var wait time.Duration
		if n > 0 {
			wait = time.Until(w.firstAt.Add(pol.MaxWait))
			if n >= pol.MaxRecords || w.bytes >= pol.MaxBytes || w.draining || wait <= 0 {
				batch := w.take()
				w.firstAt = time.Now()
				w.mu.Unlock()
				return batch, true
			}
		} else if w.draining {
			w.mu.Unlock()
			return nil, false
		}
		w.mu.Unlock()

		var expired <-chan time.Time
		if n > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-w.wake:
		case <-expired:
		case <-w.stop:
			return nil, false
		}
	}
}

// process writes batch to the sink, retrying transient errors, sends
// rejected records to the dead-letter topic, and marks the batch's offsets
// for commit. It returns false if the worker was stopped before the batch
// was confirmed; the batch is then left uncommitted.
func (w *worker) process(batch []*kgo.Record) bool {
	if !w.write(batch, w.recs[:0]) {
		return false
	}
	w.c.cl.MarkCommitRecords(batch[len(batch)-1])
	w.progressed(batch)
	return true
}

// progressed records that batch was confirmed and marked for commit.
func (w *worker) progressed(batch []*kgo.Record) {
	now := time.Now()
	w.mu.Lock()
	w.inflight -= len(batch)
	w.since = now
	w.mu.Unlock()
	w.c.metrics.progress.WithLabelValues(w.c.cfg.Group, w.key.topic, strconv.Itoa(int(w.key.partition))).Set(float64(now.UnixNano()) / 1e9)
}

// stalled returns how many records wait and since when the partition made
// no progress, if records wait.
func (w *worker) stalled() (waiting int, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) + w.inflight, w.since
}

// write is process without the mark: it converts batch into recs (a
// buffer to reuse, or nil), writes it and dead-letters the rejections.
func (w *worker) write(batch []*kgo.Record, recs []pipeline.Record) bool {
	for _, r := range batch {
		rec := pipeline.Record{
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
		}
		if len(r.Headers) > 0 {
			rec.Headers = make([]pipeline.Header, len(r.Headers))
			for i, h := range r.Headers {
				rec.Headers[i] = pipeline.Header{Key: h.Key, Value: h.Value}
			}
		}
		recs = append(recs, rec)
	}
	if cap(recs) > cap(w.recs) && w.c.cfg.MaxInFlight == 1 {
		w.recs = recs
	}

	c := w.c
	m := c.metrics
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := c.sink.Write(c.hardCtx, recs)
		m.sinkSeconds.WithLabelValues(w.labels...).Observe(time.Since(start).Seconds())
		if err == nil {
			m.batches.WithLabelValues(c.cfg.Group, w.key.topic, "ok").Inc()
			if !w.deadLetter(res.Rejected) {
				return false
			}
			m.records.WithLabelValues(c.cfg.Group, w.key.topic, "ok").Add(float64(len(recs) - len(res.Rejected)))
			break
		}
		m.batches.WithLabelValues(c.cfg.Group, w.key.topic, "error").Inc()
		if c.hardCtx.Err() != nil {
			return false
		}
		if pipeline.IsPermanent(err) || (c.cfg.Retry.MaxAttempts > 0 && attempt >= c.cfg.Retry.MaxAttempts) {
			c.log.Error("batch failed for good; dead-lettering it", "topic", w.key.topic, "partition", w.key.partition,
				"first_offset", recs[0].Offset, "records", len(recs), "attempts", attempt, "err", err)
			rej := make([]pipeline.Rejection, len(recs))
			for i, r := range recs {
				rej[i] = pipeline.Rejection{Record: r, Err: err}
			}
			if !w.deadLetter(rej) {
				return false
			}
			break
		}
		m.retries.WithLabelValues(w.labels...).Inc()
		wait := c.cfg.Retry.backoff(attempt)
		c.log.Warn("sink failed; retrying", "topic", w.key.topic, "partition", w.key.partition,
			"records", len(recs), "attempt", attempt, "backoff", wait, "err", err)
		if !w.sleep(wait) {
			return false
		}
	}
	return true
}

// sleep waits d unless the worker is stopped or hard-cancelled first.
func (w *worker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stop:
		return false
	case <-w.c.hardCtx.Done():
		return false
	}
}
