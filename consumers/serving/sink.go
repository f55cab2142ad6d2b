package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Sink returns the sink for the consumer runtime on reco.requests.v1.
//
// Write decodes each request and handles up to Config.Concurrency of them
// at once; each reply is produced as soon as it is ready, and Write returns
// only after Kafka acknowledged every reply and Analytics stored every row,
// so offsets are committed only for requests that were answered and logged.
//
//   - A request whose reply-to header is missing or names a topic the
//     server may not write to (Config.ReplyTopics) is rejected
//     (dead-lettered) with the reason; nothing is produced for it.
//   - A record that does not decode gets an error reply with the decoder's
//     reason on its (allowed) reply topic.
//   - A reply the reply topic can never take (the topic does not exist,
//     is invalid or forbidden, the reply is too large) rejects its request.
//   - Other produce failures, and transient Analytics failures, fail the
//     batch for the runtime to retry. The retry does not answer again the
//     requests whose replies were already acknowledged: it only logs their
//     rows. A Permanent Analytics error is logged and the rows dropped:
//     the replies are served, and a retry cannot store them.
//
// Latency, in the analytics rows and the latency histogram, runs from the
// request record's timestamp (the requester's send time: it includes the
// time the request waited in Kafka and in the batch) to the reply being
// ready; when the timestamp is unset or ahead of this host's clock, from
// when Write received the batch. A request without a deadline gets
// DefaultDeadline from that same start.
func (s *Server) Sink() pipeline.Sink { return pipeline.SinkFunc(s.write) }

// job is one request record that gets a reply.
type job struct {
	i       int // index in the batch
	rec     *pipeline.Record
	replyTo string
	req     schemas.RecoRequest
	decErr  error // the decoder's; the reply carries it
	start   time.Time

	// Set by handle.
	row     *pipeline.ServedRecommendation // nil: not logged
	sent    bool                           // the reply was acknowledged
	sendErr error
}

func (s *Server) write(ctx context.Context, batch []pipeline.Record) (pipeline.Result, error) {
	received := time.Now()
	prev := s.pending.take(batch)
	outs := make([]*outcome, len(batch))
	jobs := make([]*job, 0, len(batch))
	valid := false
	for i := range batch {
		rec := &batch[i]
		if o, ok := prev[partitionOf(rec)][rec.Offset]; ok {
			outs[i] = &o
			continue
		}
		req, err := schemas.DecodeRequest(rec.Value, received, s.cfg.Limits)
		replyTo, _ := rec.HeaderValue(schemas.HeaderReplyTo)
		var refused error
		if len(replyTo) == 0 {
			refused = ErrNoReplyTo
		} else {
			refused = s.replyTo.check(string(replyTo))
		}
		if refused != nil {
			kind := kindInvalid
			if err == nil {
				kind = string(req.Kind)
			}
			s.metrics.requests.WithLabelValues(kind, resultRejected).Inc()
			if err != nil {
				refused = fmt.Errorf("%w; the request is also invalid: %w", refused, err)
			}
			outs[i] = &outcome{reject: refused}
			continue
		}
		start := received
		if ts := rec.Timestamp; !ts.IsZero() && !ts.After(received) {
			start = ts
		}
		valid = valid || err == nil
		jobs = append(jobs, &job{i: i, rec: rec, replyTo: string(replyTo), req: req, decErr: err, start: start})
	}

	var (
		coll    string
		collErr error
	)
	if valid {
		coll, collErr = s.resolve(ctx)
	}
	var handlers, acks sync.WaitGroup
	sem := make(chan struct{}, s.cfg.Concurrency)
	for _, j := range jobs {
		sem <- struct{}{}
		handlers.Go(func() {
			defer func() { <-sem }()
			s.handle(ctx, j, coll, collErr, &acks)
		})
	}
	handlers.Wait()
	acks.Wait()

	var errs []error
	for _, j := range jobs {
		switch {
		case j.sent:
			outs[j.i] = &outcome{row: j.row}
		case j.sendErr != nil && replyRejected(j.sendErr):
			s.log.Warn("reply cannot be delivered; rejecting the request", "reply_to", j.replyTo, "request_id", j.req.RequestID, "err", j.sendErr)
			outs[j.i] = &outcome{reject: fmt.Errorf("reply to %s: %w", j.replyTo, j.sendErr)}
		case j.sendErr != nil:
			errs = append(errs, fmt.Errorf("reply to %s: %w", j.replyTo, j.sendErr))
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		s.pending.keep(batch, outs)
		return pipeline.Result{}, fmt.Errorf("serving: %d of %d replies not delivered: %w", countNil(outs), len(batch), errors.Join(errs...))
	}

	var rows []pipeline.ServedRecommendation
	var res pipeline.Result
	for i, o := range outs {
		switch {
		case o.reject != nil:
			res.Reject(batch[i], o.reject)
		case o.row != nil:
			rows = append(rows, *o.row)
		}
	}
	if s.deps.Analytics != nil && len(rows) > 0 {
		if err := s.deps.Analytics.InsertRecommendations(ctx, rows); err != nil {
			if !pipeline.IsPermanent(err) {
				s.pending.keep(batch, outs)
				return pipeline.Result{}, fmt.Errorf("serving: log %d replies: %w", len(rows), err)
			}
			s.log.Error("served replies cannot be logged; dropping their rows", "rows", len(rows), "err", err)
		}
	}
	return res, nil
}

func countNil(outs []*outcome) int {
	n := 0
	for _, o := range outs {
		if o == nil {
			n++
		}
	}
	return n
}

// handle answers one job and produces its reply; acks counts the reply
// until Kafka acknowledges it. Nothing is produced once ctx is done (the
// batch will be retried).
func (s *Server) handle(ctx context.Context, j *job, coll string, collErr error, acks *sync.WaitGroup) {
	var (
		reply schemas.RecoReply
		row   pipeline.ServedRecommendation
	)
	if j.decErr != nil {
		reply, row = s.badRequest(j)
	} else {
		reply, row = s.serve(ctx, j.req, coll, collErr, j.start)
	}
	if ctx.Err() != nil {
		return
	}
	if row.Kind != "" {
		j.row = &row
	}
	value, err := json.Marshal(reply)
	if err != nil {
		j.sendErr = fmt.Errorf("encode reply: %w", err)
		return
	}
	// Copied: the request record's buffers are the runtime's.
	corr, hasCorr := j.rec.HeaderValue(schemas.HeaderCorrelationID)
	corr = bytes.Clone(corr)
	key := corr
	if len(key) == 0 {
		key = []byte(reply.RequestID)
	}
	out := &kgo.Record{Topic: j.replyTo, Key: key, Value: value}
	if hasCorr {
		out.Headers = []kgo.RecordHeader{{Key: schemas.HeaderCorrelationID, Value: corr}}
	}
	acks.Add(1)
	s.deps.Replies.Produce(ctx, out, func(_ *kgo.Record, err error) {
		j.sent, j.sendErr = err == nil, err
		acks.Done()
	})
}

// badRequest is the error reply to a record that did not decode, and its
// analytics row. What can be read of the request (request_id, kind, ids)
// is kept; the row is logged only when the request_id and kind were
// readable (the recommendations table keys on request_id and knows only
// the three kinds).
func (s *Server) badRequest(j *job) (schemas.RecoReply, pipeline.ServedRecommendation) {
	lim := s.cfg.Limits
	var w struct {
		RequestID any `json:"request_id"`
		Kind      any `json:"kind"`
		UserID    any `json:"user_id"`
		ItemID    any `json:"item_id"`
		Query     any `json:"query"`
	}
	_ = json.Unmarshal(j.rec.Value, &w) // best effort
	str := func(v any, limit int) string {
		if s, ok := v.(string); ok && len(s) <= limit && utf8.ValidString(s) && strings.TrimSpace(s) != "" {
			return s
		}
		return ""
	}
	req := schemas.RecoRequest{
		RequestID: str(w.RequestID, lim.MaxIDLen),
		UserID:    str(w.UserID, lim.MaxIDLen),
		ItemID:    str(w.ItemID, lim.MaxIDLen),
		Query:     str(w.Query, lim.MaxTextLen),
	}
	switch k := schemas.RecoKind(str(w.Kind, lim.MaxNameLen)); k {
	case schemas.KindForUser, schemas.KindSimilarItems, schemas.KindSearch:
		req.Kind = k
	}
	logged := req.RequestID != "" && req.Kind != ""
	if req.RequestID == "" {
		corr, _ := j.rec.HeaderValue(schemas.HeaderCorrelationID)
		req.RequestID = str(string(corr), lim.MaxIDLen)
	}
	if req.RequestID == "" {
		req.RequestID = fmt.Sprintf("%s-%d-%d", j.rec.Topic, j.rec.Partition, j.rec.Offset)
	}
	reply := schemas.RecoReply{RequestID: req.RequestID, Items: []schemas.ReplyItem{}, Error: clip(j.decErr.Error(), lim.MaxTextLen)}
	ready := time.Now()
	s.count(kindInvalid, reply, ready.Sub(j.start))
	if !logged {
		return reply, pipeline.ServedRecommendation{}
	}
	return reply, row(req, reply, ready.Sub(j.start), ready)
}

// replyRejected reports whether a produce error means the reply topic can
// never take the reply, so the request is rejected rather than retried.
// This is the one place that decides it.
func replyRejected(err error) bool {
	for _, e := range []error{kerr.UnknownTopicOrPartition, kerr.UnknownTopicID, kerr.InvalidTopicException,
		kerr.TopicAuthorizationFailed, kerr.MessageTooLarge, kerr.RecordListTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// partitionKey names a partition of a request topic.
type partitionKey struct {
	topic     string
	partition int32
}

func partitionOf(rec *pipeline.Record) partitionKey { return partitionKey{rec.Topic, rec.Partition} }

// outcome is what became of a request record that needs no more work: its
// reply was acknowledged (row: its analytics row, nil if not logged), or it
// was rejected.
type outcome struct {
	row    *pipeline.ServedRecommendation
	reject error
}

// pendingOutcomes keeps the outcomes of a failed Write, by partition and
// offset, for the runtime's retry of the same batch: a request answered
// once is not answered again, and its row is not lost. A Write takes only
// its own offsets' entries (batches of one partition may be in flight
// together); entries of a batch that is never retried (dead-lettered for
// good) stay until the process ends.
type pendingOutcomes struct {
	mu sync.Mutex
	m  map[partitionKey]map[int64]outcome
}

// take removes and returns the kept outcomes of the batch's partitions.
func (p *pendingOutcomes) take(batch []pipeline.Record) map[partitionKey]map[int64]outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[partitionKey]map[int64]outcome
	for i := range batch {
		k := partitionOf(&batch[i])
		o, ok := p.m[k][batch[i].Offset]
		if !ok {
			continue
		}
		if out == nil {
			out = map[partitionKey]map[int64]outcome{}
		}
		if out[k] == nil {
			out[k] = map[int64]outcome{}
		}
		out[k][batch[i].Offset] = o
		// Only this batch's offsets: with serving.max_in_flight > 1 other
		// batches of the partition may be retrying at the same time.
		delete(p.m[k], batch[i].Offset)
		if len(p.m[k]) == 0 {
			delete(p.m, k)
		}
	}
	return out
}

// keep stores the batch's finished outcomes (outs[i] for batch[i]; nil: not
// finished).
func (p *pendingOutcomes) keep(batch []pipeline.Record, outs []*outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range outs {
		if o == nil {
			continue
		}
		k := partitionOf(&batch[i])
		if p.m[k] == nil {
			p.m[k] = map[int64]outcome{}
		}
		p.m[k][batch[i].Offset] = *o
	}
}
