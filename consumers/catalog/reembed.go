package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	pbar "github.com/streamrec/streamrec/internal/progress"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// ReembedReport is what a re-embedding did.
type ReembedReport struct {
	Collection string
	Records    int64 // catalog records read in this run
	Resumed    int64 // records done by an earlier, interrupted run
	Elapsed    time.Duration
	AliasMoved bool
}

// String summarises the report for the command line.
func (r ReembedReport) String() string {
	rate := float64(r.Records) / max(r.Elapsed.Seconds(), 1e-9)
	s := fmt.Sprintf("re-embedded %d catalog records into %s in %s (%.0f records/s)", r.Records, r.Collection, r.Elapsed.Round(time.Millisecond), rate)
	if r.Resumed > 0 {
		s += fmt.Sprintf(", resuming after %d done earlier", r.Resumed)
	}
	if r.AliasMoved {
		s += "; alias " + ItemsAlias + " -> " + r.Collection
	}
	return s
}

// Reembed reads the catalog topic from the beginning up to its end offsets
// at the start, indexes every change with ix (whose embedder is the new
// model, so it writes the new model's collection; a tombstone deletes its
// item, invalid records are skipped) and then points the items alias at
// that collection.
//
// It is resumable: progress is committed as the offsets of the consumer
// group "streamrec-reembed-<collection>" after each indexed batch, so a rerun
// after an interruption continues where it stopped. A progress bar with
// throughput is drawn on progress (nil: none).
func Reembed(ctx context.Context, cl *kgo.Client, topic string, lim schemas.Limits, ix *Indexer, batch int, progress io.Writer) (ReembedReport, error) {
	rep := ReembedReport{Collection: ix.CollectionName()}
	start := time.Now()
	adm := kadm.NewClient(cl)
	group := "streamrec-reembed-" + ix.CollectionName()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return rep, fmt.Errorf("reembed: end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return rep, fmt.Errorf("reembed: end offsets of %s: %w", topic, err)
	}
	done, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		done, err = kadm.OffsetResponses{}, nil // a first run: no progress yet
	}
	if err != nil {
		return rep, fmt.Errorf("reembed: progress of %s: %w", group, err)
	}
	from := map[string]map[int32]kgo.Offset{topic: {}}
	var total int64
	ends.Each(func(e kadm.ListedOffset) {
		at := int64(0)
		if o, ok := done.Lookup(topic, e.Partition); ok && o.At >= 0 {
			at = o.At
		}
		rep.Resumed += at
		if e.Offset > at {
			total += e.Offset - at
			from[topic][e.Partition] = kgo.NewOffset().At(at)
		}
	})
	bar := pbar.New(progress, total, "re-embedding", "items")
	if total > 0 {
		if err := consumePartitions(ctx, cl, adm, group, topic, from, ends, lim, ix, batch, func(n int) {
			rep.Records += int64(n)
			_ = bar.Add(n)
		}); err != nil {
			rep.Elapsed = time.Since(start)
			return rep, err
		}
	}
	_ = bar.Finish() // ends the line (progress.New)
	if err := ix.store.SetAlias(ctx, ItemsAlias, ix.CollectionName()); err != nil {
		rep.Elapsed = time.Since(start)
		return rep, fmt.Errorf("reembed: move alias %s: %w", ItemsAlias, err)
	}
	rep.AliasMoved = true
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// consumePartitions reads each partition from its offset in from to its end
// in ends, indexing batches and committing progress after each.
func consumePartitions(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group, topic string, from map[string]map[int32]kgo.Offset,
	ends kadm.ListedOffsets, lim schemas.Limits, ix *Indexer, batch int, advanced func(int)) error {
	cl.AddConsumePartitions(from)
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: keys(from[topic])})
	remaining := len(from[topic])
	reached := map[int32]bool{}
	sink := NewIndexingSink(lim, nil, ix)
	for remaining > 0 {
		fetches := cl.PollRecords(ctx, batch)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(_ string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err)) })
		if ferr != nil {
			return fmt.Errorf("reembed: fetch %s: %w", topic, ferr)
		}
		var recs []pipeline.Record
		commit := kadm.Offsets{}
		fetches.EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(topic, r.Partition)
			if r.Offset >= end.Offset || reached[r.Partition] {
				return // written after the re-embedding started: the live consumer's job
			}
			// The timestamp is a tombstone's updated_at (NewIndexingSink).
			recs = append(recs, pipeline.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
			commit.Add(kadm.Offset{Topic: topic, Partition: r.Partition, At: r.Offset + 1, LeaderEpoch: -1})
			if r.Offset+1 >= end.Offset {
				reached[r.Partition] = true
				remaining--
			}
		})
		if len(recs) == 0 {
			continue
		}
		// Invalid records were dead-lettered by the live consumer already;
		// here they are skipped. A tombstone is a delete, which leaves no
		// point of its item in the new collection.
		if _, err := sink.Write(ctx, recs); err != nil {
			return fmt.Errorf("reembed: %w", err)
		}
		if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
			return fmt.Errorf("reembed: commit progress: %w", err)
		}
		advanced(len(recs))
	}
	return nil
}

func keys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
