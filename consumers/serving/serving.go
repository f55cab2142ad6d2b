// Package serving is the consumer kind for reco.requests.v1: it answers each
// recommendation request on the topic named by the request's reply-to
// header, with the request's correlation-id header, and logs every reply it
// served to analytics.
//
// Three kinds of request are answered from the items collection of the
// vector store (behind an alias, so a re-embedded catalog swaps in at once):
//
//   - for_user: the user's profile vector is searched against the items,
//     and the items other users chose together with the user's latest ones
//     (co-occurrence, Deps.CoOccurrence) join them; both lists are blended
//     by Config.CollaborativeWeight. What the request lists and what the
//     user recently touched or bought is excluded. Each item's reason names
//     the user's item it co-occurs with most ("often chosen with ...") when
//     co-occurrence weighs more in its score, else the recent touch it is
//     most similar to. A cold user (neither a profile vector nor
//     co-occurring items) is answered from popularity, filtered through the
//     items' payloads, with fallback set.
//   - similar_items: the item's own vector, excluding the item.
//   - search: the query embedded as a pipeline.Query text.
//
// Candidates (k times Config.Candidates) are re-ranked by maximal marginal
// relevance so that near-duplicates do not fill a reply. A reply's scores are
// the items' cosine similarity to the query vector (popularity scores for a
// fallback; the blended score, within 0..1, for a for_user reply that
// co-occurrence joined); the order is the served order, which MMR may make differ from
// the order of the scores.
//
// Bad requests get an error reply carrying the decoder's reason when they
// name a reply topic, and are dead-lettered otherwise. A request whose
// deadline passes before its answer is ready gets the error reply "deadline
// exceeded" instead of a late answer.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/consumers/cooccur"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// Config configures the serving consumer (the serving section; the consumer
// group is configured beside it).
type Config struct {
	// Limits validate requests; their MaxK bounds k (a larger k is a bad
	// request), so serving has no k limit of its own. Set from the
	// configuration's limits section.
	Limits schemas.Limits `yaml:"-"`
	// Candidates is how many candidates per requested item are fetched
	// for the diversity re-rank: k*Candidates.
	Candidates int `yaml:"candidates"`
	// MMRLambda weighs relevance against diversity in the re-rank:
	// lambda*relevance - (1-lambda)*similarity to the items already picked.
	// 1 disables the re-rank (and fetches only k candidates).
	MMRLambda float64 `yaml:"mmr_lambda"`
	// Concurrency is how many requests of one batch are handled at once.
	Concurrency int `yaml:"concurrency"`
	// DefaultDeadline is the deadline of a request that carries none,
	// counted from the request record's timestamp.
	DefaultDeadline time.Duration `yaml:"default_deadline"`
	// ReasonsFrom is how many of a user's most recent touches the
	// explanations of a for_user reply consider; 0 gives no such reasons.
	ReasonsFrom int `yaml:"reasons_from"`
	// CollaborativeWeight blends co-occurrence into for_user (when the
	// server has a co-occurrence tracker): over the candidates of both
	// signals, score = w·cf/max(cf) + (1-w)·cos/max(cos), cf the item's
	// co-occurrence with the user's recent items and cos its cosine to the
	// profile vector. 0 ranks by the profile vector alone. Items nobody
	// has touched yet (cold items) compete on cos only, so at a high weight
	// they reach the top only when co-occurrence offers few candidates.
	CollaborativeWeight float64 `yaml:"collaborative_weight"`
	// ReplyTopics are the topics a request's reply-to may name, as
	// path.Match patterns ("reco.replies.*", "checkout-replies"). A request
	// naming any other topic is dead-lettered with the reason, and so is one
	// naming a Reserved topic, a dead-letter topic (*.dlq) or a
	// Kafka-internal one (__*), whatever the patterns say. Replies never
	// create topics: a reply topic must exist (reco clients create theirs).
	ReplyTopics []string `yaml:"reply_topics"`
	// Reserved are topics never written to as reply topics: the pipeline's
	// own (set from the topics section).
	Reserved []string `yaml:"-"`
}

// DefaultConfig fetches 4 candidates per item, re-ranks with lambda 0.7,
// handles 16 requests of a batch at once, gives a request without a deadline
// 2 s, explains from the 10 latest touches and weighs co-occurrence 0.9
// (docs/evaluation.md).
func DefaultConfig() Config {
	return Config{
		Limits:              schemas.DefaultLimits(),
		Candidates:          4,
		MMRLambda:           0.7,
		Concurrency:         16,
		DefaultDeadline:     2 * time.Second,
		ReasonsFrom:         10,
		CollaborativeWeight: 0.9,
		ReplyTopics:         DefaultReplyTopics(),
	}
}

// Validate reports the first invalid field, named under prefix ("serving").
// Limits are validated with the limits section.
func (c Config) Validate(prefix string) error {
	switch {
	case c.Candidates < 1:
		return fmt.Errorf("%s.candidates must be >= 1", prefix)
	case !(c.MMRLambda >= 0 && c.MMRLambda <= 1): // NaN fails too
		return fmt.Errorf("%s.mmr_lambda must be within 0..1", prefix)
	case c.Concurrency < 1:
		return fmt.Errorf("%s.concurrency must be >= 1", prefix)
	case c.DefaultDeadline <= 0:
		return fmt.Errorf("%s.default_deadline must be > 0", prefix)
	case c.ReasonsFrom < 0:
		return fmt.Errorf("%s.reasons_from must be >= 0", prefix)
	case !(c.CollaborativeWeight >= 0 && c.CollaborativeWeight <= 1):
		return fmt.Errorf("%s.collaborative_weight must be within 0..1", prefix)
	case c.Limits.MaxK <= 0:
		return fmt.Errorf("limits.max_k must be > 0")
	}
	return validateReplyTopics(prefix, c.ReplyTopics)
}

// Deps are what the server reads from and writes to.
type Deps struct {
	// Store holds the items collection (required).
	Store pipeline.VectorStore
	// ItemsAlias names the items collection in Store ("": catalog.ItemsAlias).
	ItemsAlias string
	// Profiles gives users' vectors and recent items (required).
	Profiles pipeline.Profiles
	// Popularity answers cold users (required).
	Popularity pipeline.Popularity
	// CoOccurrence, if not nil, adds the collaborative signal to for_user
	// (Config.CollaborativeWeight).
	CoOccurrence *cooccur.Tracker
	// Embedder embeds search queries; nil answers search requests with an
	// error reply.
	Embedder pipeline.Embedder
	// Analytics receives a row per reply served; nil: replies are not
	// logged.
	Analytics pipeline.Analytics
	// Replies produces the replies (required). Build it with
	// kgo.ProducerLinger(0): a reply is latency-bound, and the default
	// linger delays each by 10 ms. A reply topic that does not exist holds
	// its batch for the client's kgo.UnknownTopicRetries before the request
	// is rejected; a small value keeps a vanished requester from stalling
	// the partition.
	Replies *kgo.Client
}

// Errors whose text is a reply's error.
var (
	// ErrDeadline: the request's deadline passed before its answer was
	// ready.
	ErrDeadline = errors.New("deadline exceeded")
	// ErrUnknownItem: a similar_items request named an item the items
	// collection does not hold.
	ErrUnknownItem = errors.New("unknown item")
	// ErrNoSearch: a search request reached a server without an embedder.
	ErrNoSearch = errors.New("search is not available")
	// ErrNoReplyTo rejects (dead-letters) a request without a reply-to
	// header: it cannot be answered.
	ErrNoReplyTo = errors.New("serving: no reply-to header")
)

// Server answers recommendation requests. Safe for concurrent use.
type Server struct {
	deps    Deps
	cfg     Config
	log     *slog.Logger
	metrics metrics
	pending pendingOutcomes
	replyTo replyPolicy
}

// New checks cfg and deps and builds a server; reg may be nil (metrics not
// registered), log may be nil (discarded).
func New(deps Deps, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate("serving"); err != nil {
		return nil, err
	}
	switch {
	case deps.Store == nil:
		return nil, errors.New("serving: Deps.Store is required")
	case deps.Profiles == nil:
		return nil, errors.New("serving: Deps.Profiles is required")
	case deps.Popularity == nil:
		return nil, errors.New("serving: Deps.Popularity is required")
	case deps.Replies == nil:
		return nil, errors.New("serving: Deps.Replies is required")
	}
	if deps.ItemsAlias == "" {
		deps.ItemsAlias = catalog.ItemsAlias
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := newMetrics()
	if reg != nil {
		if err := m.register(reg); err != nil {
			return nil, fmt.Errorf("serving metrics: %w", err)
		}
	}
	return &Server{deps: deps, cfg: cfg, log: log, metrics: m, pending: pendingOutcomes{m: map[partitionKey]map[int64]outcome{}},
		replyTo: newReplyPolicy(cfg.ReplyTopics, cfg.Reserved)}, nil
}

// Handle answers one decoded, valid request now: the deadline (the
// request's, else DefaultDeadline from now) bounds the work, and a reply not
// ready by then is the error reply "deadline exceeded". Failures are error
// replies, never a Go error. Handle counts the request in the metrics but
// neither sends the reply nor logs it to analytics; the Sink does both.
func (s *Server) Handle(ctx context.Context, req schemas.RecoRequest) schemas.RecoReply {
	coll, err := s.resolve(ctx)
	reply, _ := s.serve(ctx, req, coll, err, time.Now())
	return reply
}

// resolve returns the collection the items alias points at now, waiting
// DefaultDeadline at most. The sink resolves once per batch, so every
// request of a batch reads one collection even while a re-embedding moves
// the alias.
func (s *Server) resolve(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DefaultDeadline)
	defer cancel()
	coll, err := s.deps.Store.ResolveAlias(ctx, s.deps.ItemsAlias)
	if err != nil {
		return "", fmt.Errorf("items collection %s: %w", s.deps.ItemsAlias, err)
	}
	return coll, nil
}

// Result label values of streamrec_serving_requests_total.
const (
	resultOK       = "ok"       // a reply with items
	resultError    = "error"    // an error reply
	resultRejected = "rejected" // dead-lettered: no reply-to header, or one refused
)

// kindInvalid labels requests that did not decode.
const kindInvalid = "invalid"

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	fallback prometheus.Counter
}

func newMetrics() metrics {
	return metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_serving_requests_total",
			Help: "Recommendation requests by kind (invalid: did not decode) and result: ok, error (an error reply), rejected (no reply-to, or a refused one; dead-lettered).",
		}, []string{"kind", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "streamrec_serving_latency_seconds",
			Help:    "Time from the request record's timestamp (or from handling start, when it is unset or ahead of this host's clock) to the reply being ready.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"kind"}),
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamrec_serving_fallback_total",
			Help: "Replies answered from popularity because the user was cold.",
		}),
	}
}

func (m metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.fallback} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
