// Package reco is the client library for services that ask streamrec for
// recommendations over Kafka: Recommend sends a request to reco.requests.v1
// with reply-to and correlation-id headers and waits for the reply on the
// client's own reply topic.
//
// A Client owns one reply topic (created if missing) and reads it from the
// offset its end had when the client started, without a consumer group, so
// any number of clients, each with its own topic, can run side by side.
//
// Without a configured reply topic a client names its own,
// reco.replies.<host>.<random> (schemas.ReplyTopicPrefix, which serving
// allows as reply topics by default), and Close deletes it, so short-lived
// clients such as `streamrec recommend` leave no topics behind. A process
// that dies without Close leaves its topic; delete such leftovers by the
// prefix. A configured reply topic is never deleted.
package reco

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/schemas"
)

// Config configures a Client.
type Config struct {
	// RequestTopic is where requests go.
	RequestTopic string `yaml:"request_topic"`
	// ReplyTopic is this client's reply topic, created if missing and kept
	// on Close. Empty: the client creates reco.replies.<host>.<random> and
	// deletes it on Close. Use one topic per client process: a client reads
	// every reply on it. Serving answers only on reply topics it allows
	// (by default those starting with reco.replies.).
	ReplyTopic string `yaml:"reply_topic"`
	// Timeout bounds a Recommend whose ctx has no deadline.
	Timeout time.Duration `yaml:"timeout"`
	// Limits validate requests before they are sent.
	Limits schemas.Limits `yaml:"-"`
}

// DefaultConfig sends to reco.requests.v1 and waits 2 s at most.
func DefaultConfig() Config {
	return Config{RequestTopic: schemas.TopicRecoRequests, Timeout: 2 * time.Second, Limits: schemas.DefaultLimits()}
}

// Validate reports every invalid field, named under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.RequestTopic == "" {
		errs = append(errs, fmt.Errorf("%s.request_topic must be set", prefix))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("%s.timeout must be > 0", prefix))
	}
	return errors.Join(errs...)
}

// Errors Recommend returns.
var (
	// ErrTimeout: no reply came before the deadline.
	ErrTimeout = errors.New("reco: no reply before the deadline")
	// ErrReply: the server answered with an error (the reply's error field).
	ErrReply = errors.New("reco: error reply")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("reco: client closed")
)

// Client sends requests and matches their replies by correlation id. Safe
// for concurrent use.
type Client struct {
	cfg Config
	cl  *kgo.Client
	log *slog.Logger
	// ownTopic: the client named its reply topic, so Close deletes it.
	ownTopic bool

	mu      sync.Mutex
	pending map[string]chan *kgo.Record
	closed  bool

	cancel context.CancelFunc
	done   chan struct{}
}

// New connects, creates the reply topic if needed and starts reading it.
func New(ctx context.Context, kc kafka.Config, cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate("reco"); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	own := cfg.ReplyTopic == ""
	if own {
		host, _ := os.Hostname()
		cfg.ReplyTopic = schemas.ReplyTopicPrefix + sanitize(host) + "." + randomID(4)
	}
	opts, err := kc.Opts(log)
	if err != nil {
		return nil, err
	}
	// Requests leave at once: a request is latency-bound, not throughput-bound.
	admin, err := kgo.NewClient(append(opts, kgo.ProducerLinger(0))...)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(ctx, admin, kafka.Topic{Name: cfg.ReplyTopic, Partitions: 1}); err != nil {
		return nil, err
	}
	// fail deletes the reply topic this client created for itself.
	fail := func(err error) (*Client, error) {
		if own {
			deleteTopic(admin, cfg.ReplyTopic, log)
		}
		return nil, err
	}
	// Start at the reply topic's current end, resolved now: a reply to a
	// request sent after New returns is at or after it.
	// A topic just created is not known to every broker at once (Apache
	// Kafka answers UNKNOWN_TOPIC_OR_PARTITION for a moment): wait for it,
	// for up to 10 s.
	ends, err := endOffsets(ctx, kadm.NewClient(admin), cfg.ReplyTopic, 10*time.Second)
	if err != nil {
		return fail(fmt.Errorf("reco: reply topic %s end offsets: %w", cfg.ReplyTopic, err))
	}
	start := map[string]map[int32]kgo.Offset{cfg.ReplyTopic: {}}
	ends.Each(func(o kadm.ListedOffset) { start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset) })

	cl, err := kgo.NewClient(append(opts, kgo.ProducerLinger(0), kgo.ConsumePartitions(start),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, cl: cl, log: log, ownTopic: own, pending: map[string]chan *kgo.Record{}, cancel: cancel, done: make(chan struct{})}
	go c.read(runCtx)
	return c, nil
}

// ReplyTopic is the topic this client reads replies from.
func (c *Client) ReplyTopic() string { return c.cfg.ReplyTopic }

// read delivers each reply to the Recommend waiting for its correlation id;
// replies nobody waits for (late, or for another client) are dropped.
func (c *Client) read(ctx context.Context) {
	defer close(c.done)
	for {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			c.log.Warn("reading replies", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			var id string
			for _, h := range r.Headers {
				if h.Key == schemas.HeaderCorrelationID {
					id = string(h.Value)
				}
			}
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		})
	}
}

// replyGrace is how long after a request's deadline its client still waits
// for the reply: the server's error reply "deadline exceeded" is sent at the
// deadline and has to travel.
const replyGrace = time.Second

// Recommend sends req and returns its reply. An empty request_id is filled
// in; a request without a deadline gets ctx's (or the configured timeout),
// clipped to limits.max_deadline, so the server does not answer after the
// caller stopped waiting; the caller waits no longer than the request's
// deadline and a second for the reply to travel. A reply
// with an error is returned together with an error wrapping ErrReply.
func (c *Client) Recommend(ctx context.Context, req schemas.RecoRequest) (schemas.RecoReply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	if req.RequestID == "" {
		req.RequestID = randomID(16)
	}
	if req.Deadline == nil {
		d, _ := ctx.Deadline()
		if max := c.cfg.Limits.MaxDeadline; max > 0 && time.Until(d) > max {
			d = time.Now().Add(max)
		}
		d = d.UTC()
		req.Deadline = &d
	}
	// The server answers by the request's deadline or not at all (an error
	// reply at the deadline): waiting longer than it and a reply's transit
	// is waiting for nothing.
	if d, ok := ctx.Deadline(); !ok || req.Deadline.Add(replyGrace).Before(d) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline.Add(replyGrace))
		defer cancel()
	}
	if err := req.Validate(time.Now(), c.cfg.Limits); err != nil {
		return schemas.RecoReply{}, err
	}
	value, err := json.Marshal(req)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	corr := randomID(16)
	ch := make(chan *kgo.Record, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return schemas.RecoReply{}, ErrClosed
	}
	c.pending[corr] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, corr)
		c.mu.Unlock()
	}()

	key := req.UserID
	if key == "" {
		key = req.RequestID
	}
	rec := &kgo.Record{Topic: c.cfg.RequestTopic, Key: []byte(key), Value: value, Headers: []kgo.RecordHeader{
		{Key: schemas.HeaderReplyTo, Value: []byte(c.cfg.ReplyTopic)},
		{Key: schemas.HeaderCorrelationID, Value: []byte(corr)},
	}}
	if err := c.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if errors.Is(err, kgo.ErrClientClosed) {
			return schemas.RecoReply{}, ErrClosed
		}
		if ctx.Err() != nil {
			return schemas.RecoReply{}, fmt.Errorf("%w: sending request %s: %v", ErrTimeout, req.RequestID, err)
		}
		return schemas.RecoReply{}, fmt.Errorf("reco: sending request %s: %w", req.RequestID, err)
	}
	select {
	case r := <-ch:
		reply, err := schemas.DecodeReply(r.Value, c.cfg.Limits)
		if err != nil {
			return schemas.RecoReply{}, fmt.Errorf("reco: reply to %s: %w", req.RequestID, err)
		}
		if reply.Error != "" {
			return reply, fmt.Errorf("%w: %s", ErrReply, reply.Error)
		}
		return reply, nil
	case <-ctx.Done():
		return schemas.RecoReply{}, fmt.Errorf("%w (request %s): %v", ErrTimeout, req.RequestID, ctx.Err())
	case <-c.done:
		return schemas.RecoReply{}, ErrClosed
	}
}

// Close stops reading replies; waiting Recommends return ErrClosed. A reply
// topic the client named itself is deleted, waiting at most
// deleteTimeout; a failure is logged, not returned, and leaves the topic.
// A configured reply topic stays.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
	if c.ownTopic {
		c.cl.PauseFetchTopics(c.cfg.ReplyTopic) // no fetches of a topic being deleted
		deleteTopic(c.cl, c.cfg.ReplyTopic, c.log)
	}
	c.cl.Close()
}

// deleteTimeout bounds the deletion of a client's own reply topic: Close
// must not hang on an unreachable cluster.
const deleteTimeout = 5 * time.Second

// deleteTopic deletes topic with cl, logging a failure.
func deleteTopic(cl *kgo.Client, topic string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		log.Warn("deleting the reply topic; delete it by hand", "topic", topic, "err", err)
		return
	}
	log.Debug("deleted the reply topic", "topic", topic)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sanitize keeps the characters Kafka allows in topic names.
func sanitize(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			out[i] = '_'
		}
	}
	if len(out) == 0 {
		return "client"
	}
	return string(out)
}

// endOffsets lists topic's end offsets, asking again while the topic is not
// known yet, for up to wait.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string, wait time.Duration) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(wait)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) || time.Now().After(deadline) {
			return ends, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
