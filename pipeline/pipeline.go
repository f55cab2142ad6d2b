// Package pipeline holds streamrec's domain types and the narrow interfaces
// through which the stream runtime reaches the outside world: the sinks that
// consume batches of records. Backends live in sibling packages and state
// their contract against these interfaces.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Record is one Kafka record handed to a Sink. Value and Key alias the
// runtime's buffers and must not be retained after Write returns unless
// copied.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// HeaderValue returns the value of the first header named key, and whether
// there was one.
func (r *Record) HeaderValue(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Sink consumes batches of records of one partition, in offset order.
//
// Contract:
//   - Write blocks until the batch is durable in the sink, or fails. When it
//     returns nil, every record of the batch is either stored or has been
//     rejected into result.Rejected; the runtime then commits the batch's
//     offsets.
//   - A returned error means nothing of the batch may be assumed stored. If
//     the error is Permanent, the runtime dead-letters the whole batch;
//     otherwise it retries the same batch with backoff.
//   - Records a sink can never process (bad input) are returned in
//     Result.Rejected with their reason instead of failing the batch; the
//     runtime writes them to the dead-letter topic before committing.
//   - Write must be idempotent: after a crash a batch may be delivered again.
//   - Write is called by one goroutine per partition, so a Sink must be safe
//     for concurrent use across partitions. With the runtime's
//     max_in_flight > 1, batches of one partition are also written
//     concurrently and may be confirmed out of order (offsets are still
//     committed in order); only order-insensitive sinks may allow that.
type Sink interface {
	Write(ctx context.Context, batch []Record) (Result, error)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, batch []Record) (Result, error)

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, batch []Record) (Result, error) { return f(ctx, batch) }

// Result is what a Sink reports for a batch it accepted.
type Result struct {
	// Rejected holds the records that can never succeed, each with why.
	Rejected []Rejection
}

// Rejection is a record a sink refused for good, and the reason.
type Rejection struct {
	Record Record
	Err    error
}

// Reject appends a rejection of rec for err.
func (r *Result) Reject(rec Record, err error) {
	r.Rejected = append(r.Rejected, Rejection{Record: rec, Err: err})
}

// errPermanent marks errors that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked
// Permanent. This is the one place that decides whether a sink error is
// retried.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// BatchPolicy says when a batch is full: at MaxRecords records, MaxBytes
// bytes of values, or MaxWait after its first record, whichever comes first.
type BatchPolicy struct {
	MaxRecords int           `yaml:"max_records"`
	MaxBytes   int           `yaml:"max_bytes"`
	MaxWait    time.Duration `yaml:"max_wait"`
}

// DefaultBatchPolicy is a policy suited to sinks with per-call overhead.
func DefaultBatchPolicy() BatchPolicy {
	return BatchPolicy{MaxRecords: 1000, MaxBytes: 4 << 20, MaxWait: 50 * time.Millisecond}
}

// Validate reports the first invalid field, named under prefix (for example
// "consumer.batch").
func (p BatchPolicy) Validate(prefix string) error {
	switch {
	case p.MaxRecords <= 0:
		return fmt.Errorf("%s.max_records must be > 0", prefix)
	case p.MaxBytes <= 0:
		return fmt.Errorf("%s.max_bytes must be > 0", prefix)
	case p.MaxWait < 0:
		return fmt.Errorf("%s.max_wait must be >= 0", prefix)
	}
	return nil
}
