// Package producers is streamrec's Go producer SDK for shops: it validates
// clickstream events and catalog changes against the v1 contracts in schemas,
// encodes them as JSON and produces them asynchronously through a franz-go
// client, keyed so that one user's events (and one item's changes) stay on one
// partition.
//
// The synthetic traffic generator that drives `streamrec produce` lives in
// the synth subpackage.
package producers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/schemas"
)

// Config configures a Producer. It is the "producer" section of the
// configuration file.
type Config struct {
	// ClickstreamTopic receives ClickEvents, keyed by user_id. In a
	// streamrec process it follows topics.clickstream.name.
	ClickstreamTopic string `yaml:"-"`
	// CatalogTopic receives CatalogChanges, keyed by item_id. In a
	// streamrec process it follows topics.catalog.name.
	CatalogTopic string `yaml:"-"`
	// Limits bound what SendClick and SendCatalog accept. In a streamrec
	// process they are the top-level limits section.
	Limits schemas.Limits `yaml:"-"`
	// MaxErrors is how many delivery errors Flush reports in full; the rest
	// are only counted.
	MaxErrors int `yaml:"max_errors"`
}

// DefaultConfig returns the v1 topics, schemas.DefaultLimits and ten
// reported delivery errors per Flush.
func DefaultConfig() Config {
	return Config{
		ClickstreamTopic: schemas.TopicClickstream,
		CatalogTopic:     schemas.TopicCatalog,
		Limits:           schemas.DefaultLimits(),
		MaxErrors:        10,
	}
}

// Validate reports the first bad key of c.
func (c Config) Validate() error {
	switch {
	case c.ClickstreamTopic == "":
		return errors.New("producer.clickstream_topic must not be empty")
	case c.CatalogTopic == "":
		return errors.New("producer.catalog_topic must not be empty")
	case c.MaxErrors <= 0:
		return errors.New("producer.max_errors must be > 0")
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("producer.limits: %w", err)
	}
	return nil
}

// Option changes how New builds a Producer.
type Option func(*Producer)

// WithClock sets the clock that validation measures timestamps against
// (time.Now by default).
func WithClock(now func() time.Time) Option { return func(p *Producer) { p.now = now } }

// WithLogger sets the logger that warns of the delivery errors Flush reports
// in full. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(p *Producer) { p.log = l } }

// Stats counts a Producer's records since New.
type Stats struct {
	// Rejected records failed validation (or encoding) and were not sent.
	Rejected int64
	// Sent records were handed to the client.
	Sent int64
	// Delivered records were acknowledged by the broker.
	Delivered int64
	// Failed records could not be delivered.
	Failed int64
}

// InFlight is the number of sent records whose delivery is not yet known.
func (s Stats) InFlight() int64 { return s.Sent - s.Delivered - s.Failed }

// Producer sends validated events and catalog changes through a kgo.Client.
// It is safe for concurrent use.
//
// Send methods are asynchronous. A record that fails validation is rejected
// synchronously with an error wrapping schemas.ErrInvalid, and nothing is
// sent. A valid record is handed to the client, and its done callback (when
// not nil) is later called once with the delivery result: nil means the
// broker acknowledged the record as the client's acks setting asks
// (kgo.AllISRAcks, the default, means every in-sync replica has it). done runs
// on the client's promise goroutine, serially with every other callback of
// that client: it must be quick and must not block, produce or flush.
//
// Every delivery error is also kept for the next Flush, which waits until
// the client has nothing buffered.
type Producer struct {
	cl  *kgo.Client
	cfg Config
	now func() time.Time
	log *slog.Logger

	rejected, sent, delivered, failed atomic.Int64

	mu      sync.Mutex
	errs    []error // first cfg.MaxErrors delivery errors since the last Flush
	dropped int     // delivery errors since the last Flush beyond errs
}

// New returns a Producer that sends through cl. The caller builds cl (brokers,
// acks, linger, compression, delivery timeout) and closes it after the last
// Flush.
func New(cl *kgo.Client, cfg Config, opts ...Option) (*Producer, error) {
	if cl == nil {
		return nil, errors.New("producers: nil kgo.Client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Producer{cl: cl, cfg: cfg, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// SendClick validates ev (and, once encoded, its size against
// Limits.MaxBytes) and produces it to the clickstream topic keyed by its
// user_id. It blocks only while the client's buffer is full
// (kgo.MaxBufferedRecords), until there is room or ctx is done; ctx also
// bounds the record's delivery (see kgo.Client.Produce).
func (p *Producer) SendClick(ctx context.Context, ev schemas.ClickEvent, done func(error)) error {
	return p.send(ctx, p.cfg.ClickstreamTopic, ev.UserID, &ev, done)
}

// SendCatalog validates c and produces it to the catalog topic keyed by its
// item_id, like SendClick.
func (p *Producer) SendCatalog(ctx context.Context, c schemas.CatalogChange, done func(error)) error {
	return p.send(ctx, p.cfg.CatalogTopic, c.ItemID, &c, done)
}

// record is a contract type that Send methods accept.
type record interface {
	Validate(now time.Time, lim schemas.Limits) error
}

// send validates and encodes v and produces it asynchronously; the promise
// counts the result, keeps an error for Flush and calls done.
func (p *Producer) send(ctx context.Context, topic, key string, v record, done func(error)) error {
	err := v.Validate(p.now(), p.cfg.Limits)
	var val []byte
	if err == nil {
		if val, err = json.Marshal(v); err == nil && len(val) > p.cfg.Limits.MaxBytes {
			err = &schemas.FieldError{Field: "record", Reason: fmt.Sprintf("%d bytes exceeds max_bytes %d", len(val), p.cfg.Limits.MaxBytes)}
		}
	}
	if err != nil {
		p.rejected.Add(1)
		return fmt.Errorf("producers: reject record for %s key %q: %w", topic, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("producers: send to %s: %w", topic, err)
	}
	p.sent.Add(1)
	p.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: val}, func(_ *kgo.Record, err error) {
		if err == nil {
			p.delivered.Add(1)
		} else {
			p.failed.Add(1)
			err = fmt.Errorf("producers: deliver to %s key %q: %w", topic, key, err)
			p.keep(err)
		}
		if done != nil {
			done(err)
		}
	})
	return nil
}

// keep records a delivery error for Flush, logging the ones it keeps in full.
func (p *Producer) keep(err error) {
	p.mu.Lock()
	full := len(p.errs) >= p.cfg.MaxErrors
	if full {
		p.dropped++
	} else {
		p.errs = append(p.errs, err)
	}
	p.mu.Unlock()
	if !full {
		p.log.Warn("record not delivered", "err", err)
	}
}

// Flush waits until the client has no buffered records (those of this
// Producer and any other user of the same client) or ctx is done, then
// returns the delivery errors seen since the previous Flush joined with
// errors.Join: the first Config.MaxErrors in full, then a count of the rest.
// It returns ctx's error if ctx ends first; the delivery errors then wait for
// the next Flush.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("producers: flush with %d records in flight: %w", p.Stats().InFlight(), err)
	}
	p.mu.Lock()
	errs, dropped := p.errs, p.dropped
	p.errs, p.dropped = nil, 0
	p.mu.Unlock()
	if dropped > 0 {
		errs = append(errs, fmt.Errorf("producers: %d more delivery errors", dropped))
	}
	return errors.Join(errs...)
}

// Stats returns the Producer's counts so far.
func (p *Producer) Stats() Stats {
	return Stats{
		Rejected:  p.rejected.Load(),
		Sent:      p.sent.Load(),
		Delivered: p.delivered.Load(),
		Failed:    p.failed.Load(),
	}
}
