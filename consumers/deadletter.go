package consumers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/schemas"
)

// Dead letters can always be written. A dead letter is the rejected record
// with its headers plus error and source-* headers (whole); one that would
// not fit the dead-letter topic's max.message.bytes, or that the broker
// refuses as too large, is written truncated (a prefix of the value,
// original-size and original-sha256 headers), and if even that is refused,
// bare (no value, no original headers). Nothing of a dead letter is retried
// in a form the broker refused as too large, so a big record never wedges
// its partition.

// dlqForm is how much of a record its dead letter carries.
type dlqForm int

const (
	dlqWhole dlqForm = iota
	dlqTruncated
	dlqBare
)

// Bounds of a truncated dead letter: about 26 KiB at most.
const (
	// dlqPrefixBytes is how much of a truncated record's value is kept.
	dlqPrefixBytes = 16 << 10
	// dlqHeaderBytes bounds the original headers a truncated dead letter
	// keeps (each at most 1 KiB).
	dlqHeaderBytes = 4 << 10
	// dlqOverhead is reserved per record for the batch and record framing.
	dlqOverhead = 1 << 10
	// dlqMaxReason bounds the error header (1 KiB in a bare dead letter).
	dlqMaxReason = 4 << 10
	// maxDLQBatch is franz-go's ceiling for ProducerBatchMaxBytes.
	maxDLQBatch = 100 << 20
)

// startDLQ builds the dead-letter producer. Its batch limit is the
// dead-letter topics' max.message.bytes, read from the cluster (Kafka's
// default when it cannot be read), so the client does not refuse a batch
// the brokers would take.
func (c *Consumer) startDLQ(ctx context.Context, dlqs []kafka.Topic) error {
	c.dlqTopics = make([]string, len(dlqs))
	for i, t := range dlqs {
		c.dlqTopics[i] = t.Name
	}
	limit := c.readDLQLimit(ctx)
	base, err := c.kc.Opts(c.log)
	if err != nil {
		return err
	}
	// Dead letters are few; send them at once.
	c.dlq, err = kgo.NewClient(append(base, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(limit))...)
	if err != nil {
		return fmt.Errorf("dead-letter producer: %w", err)
	}
	return nil
}

// readDLQLimit reads the dead-letter topics' max.message.bytes (within
// franz-go's bounds), stores it in dlqMax and returns it; when it cannot be
// read it keeps what it had, or Kafka's default.
func (c *Consumer) readDLQLimit(ctx context.Context) int32 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	limit, err := kafka.MaxMessageBytes(ctx, c.cl, c.dlqTopics...)
	if err != nil {
		limit = c.dlqMax.Load()
		if limit == 0 {
			limit = kafka.DefaultMaxMessageBytes
		}
		c.log.Warn("dead-letter topics' max.message.bytes unreadable; assuming a limit", "limit", limit, "err", err)
	}
	limit = min(max(limit, 1<<10), maxDLQBatch)
	c.dlqMax.Store(limit)
	return limit
}

// dlqRecord builds rec's dead letter for err in form, or a smaller form if
// that one would not fit limit bytes; it returns the form built.
func dlqRecord(rec pipeline.Record, err error, limit int, form dlqForm) (*kgo.Record, dlqForm) {
	reason := err.Error()
	maxReason := dlqMaxReason
	if form == dlqBare {
		maxReason = 1 << 10
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	source := []kgo.RecordHeader{
		{Key: schemas.HeaderError, Value: []byte(reason)},
		{Key: schemas.HeaderSourceTopic, Value: []byte(rec.Topic)},
		{Key: schemas.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		{Key: schemas.HeaderSourceOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
	}
	topic := rec.Topic + schemas.DLQSuffix
	if form == dlqWhole {
		size := dlqOverhead + len(rec.Key) + len(rec.Value)
		headers := make([]kgo.RecordHeader, 0, len(rec.Headers)+len(source))
		for _, h := range rec.Headers {
			size += len(h.Key) + len(h.Value) + 16
			headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		for _, h := range source {
			size += len(h.Key) + len(h.Value) + 16
		}
		if size <= limit {
			return &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Headers: append(headers, source...)}, dlqWhole
		}
		form = dlqTruncated
	}
	sum := sha256.Sum256(rec.Value)
	headers := make([]kgo.RecordHeader, 0, 8)
	key, value := rec.Key, rec.Value
	if form == dlqTruncated {
		budget := dlqHeaderBytes
		for _, h := range rec.Headers {
			if n := len(h.Key) + len(h.Value); n <= budget && n <= 1<<10 {
				headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
				budget -= n
			}
		}
		key, value = clipBytes(key, 1<<10), clipBytes(value, dlqPrefixBytes)
	} else {
		key, value = clipBytes(key, 256), nil
	}
	headers = append(headers, source...)
	headers = append(headers,
		kgo.RecordHeader{Key: schemas.HeaderOriginalSize, Value: strconv.AppendInt(nil, int64(len(rec.Value)), 10)},
		kgo.RecordHeader{Key: schemas.HeaderOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
	)
	if form == dlqTruncated && dlqOverhead+len(key)+len(value)+dlqHeaderBytes+dlqMaxReason+256 > limit {
		return dlqRecord(rec, err, limit, dlqBare)
	}
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers}, form
}

func clipBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// letter is one dead letter on its way.
type letter struct {
	rej  pipeline.Rejection
	rec  *kgo.Record
	form dlqForm
}

// deadLetter writes rejected records to their topic's dead-letter topic and
// waits for the broker to acknowledge them, retrying transient errors with
// backoff until it does or the worker is stopped (then it returns false).
// A dead letter refused as too large is sent again alone (the broker
// refuses a whole batch for one large record), then in a smaller form.
func (w *worker) deadLetter(rej []pipeline.Rejection) bool {
	if len(rej) == 0 {
		return true
	}
	c := w.c
	limit := int(c.dlqMax.Load())
	pending := make([]*letter, len(rej))
	for i, r := range rej {
		l := &letter{rej: r}
		l.rec, l.form = dlqRecord(r.Record, r.Err, limit, dlqWhole)
		if l.form != dlqWhole {
			w.truncated(r.Record, "larger than the dead-letter topic's max.message.bytes")
		}
		pending[i] = l
	}
	alone := false
	for attempt := 1; ; attempt++ {
		var (
			failed   []*letter
			firstErr error
			tooLarge bool
		)
		send := func(ls []*letter) {
			recs := make([]*kgo.Record, len(ls))
			of := make(map[*kgo.Record]*letter, len(ls))
			for i, l := range ls {
				recs[i], of[l.rec] = l.rec, l
			}
			// Results come in completion order: match them by record.
			for _, res := range c.dlq.ProduceSync(c.hardCtx, recs...) {
				if res.Err == nil {
					continue
				}
				l := of[res.Record]
				failed = append(failed, l)
				switch {
				case !kafka.IsTooLarge(res.Err):
					firstErr = cmpErr(firstErr, res.Err)
				case len(ls) > 1:
					tooLarge = true // which one is too large is not known: each goes alone next
				case l.form == dlqBare:
					firstErr = cmpErr(firstErr, fmt.Errorf("even a bare dead letter is too large: %w", res.Err))
				default:
					tooLarge = true
					l.rec, l.form = dlqRecord(l.rej.Record, l.rej.Err, limit, l.form+1)
					w.truncated(l.rej.Record, res.Err.Error())
				}
			}
		}
		if alone {
			for _, l := range pending {
				send([]*letter{l})
			}
		} else {
			send(pending)
		}
		c.metrics.records.WithLabelValues(c.cfg.Group, w.key.topic, "dlq").Add(float64(len(pending) - len(failed)))
		if len(failed) == 0 {
			c.log.Debug("dead-lettered records", "topic", w.key.topic, "records", len(rej), "first_reason", rej[0].Err)
			return true
		}
		if c.hardCtx.Err() != nil {
			return false
		}
		pending = failed
		if tooLarge {
			// The topic's limit may have shrunk since it was read.
			alone = true
			limit = int(c.readDLQLimit(c.hardCtx))
			for _, l := range pending {
				if l.form == dlqWhole {
					if l.rec, l.form = dlqRecord(l.rej.Record, l.rej.Err, limit, dlqWhole); l.form != dlqWhole {
						w.truncated(l.rej.Record, "larger than the dead-letter topic's max.message.bytes")
					}
				}
			}
		}
		if firstErr == nil {
			continue // only refusals as too large: resend at once, smaller or alone
		}
		wait := c.cfg.Retry.backoff(attempt)
		c.log.Warn("dead-letter produce failed; retrying", "topic", pending[0].rec.Topic, "records", len(pending), "attempt", attempt, "err", firstErr)
		if !w.sleep(wait) {
			return false
		}
	}
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// truncated counts and logs a dead letter written truncated or bare.
func (w *worker) truncated(rec pipeline.Record, why string) {
	w.c.metrics.truncated.WithLabelValues(w.labels...).Inc()
	w.c.log.Warn("dead letter written truncated", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset,
		"bytes", len(rec.Value), "why", why)
}
