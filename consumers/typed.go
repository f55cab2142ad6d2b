package consumers

import (
	"context"

	"github.com/streamrec/streamrec/pipeline"
)

// Event is a decoded record value together with the record it came from.
type Event[T any] struct {
	Value  T
	Record pipeline.Record
}

// Typed is a Sink for one contract: it decodes and validates every record
// with Decode (or DecodeRecord), rejects the records that fail (the runtime
// dead-letters them with the decoder's reason) and hands the valid events of
// the batch, in offset order, to Handle.
//
// Handle's error has the meaning of Sink.Write's: nil means the events are
// durable in whatever Handle writes to; a Permanent error dead-letters the
// batch; any other error retries it. Handle may reject single events into
// the result it is given.
type Typed[T any] struct {
	// Decode decodes a record's value.
	Decode func(data []byte) (T, error)
	// DecodeRecord, when set, is used instead of Decode, for contracts whose
	// records mean more than their value: on a compacted topic, a tombstone
	// (no value) deletes what its key names, as of its timestamp.
	DecodeRecord func(rec pipeline.Record) (T, error)
	Handle       func(ctx context.Context, events []Event[T], res *pipeline.Result) error
}

// Write implements pipeline.Sink.
func (s Typed[T]) Write(ctx context.Context, batch []pipeline.Record) (pipeline.Result, error) {
	var res pipeline.Result
	events := make([]Event[T], 0, len(batch))
	for _, rec := range batch {
		var v T
		var err error
		if s.DecodeRecord != nil {
			v, err = s.DecodeRecord(rec)
		} else {
			v, err = s.Decode(rec.Value)
		}
		if err != nil {
			res.Reject(rec, err)
			continue
		}
		events = append(events, Event[T]{Value: v, Record: rec})
	}
	if len(events) == 0 {
		return res, nil
	}
	err := s.Handle(ctx, events, &res)
	return res, err
}

// Counting is a Typed sink whose handler counts every valid event in tally
// under label(event). Consumer kinds start from it and add handlers that
// write to their stores.
func Counting[T any](decode func(data []byte) (T, error), label func(T) string, tally *Tally) Typed[T] {
	return Typed[T]{
		Decode: decode,
		Handle: func(_ context.Context, evs []Event[T], _ *pipeline.Result) error {
			for _, ev := range evs {
				tally.Add(label(ev.Value), 1)
			}
			return nil
		},
	}
}
