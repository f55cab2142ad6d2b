package app

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/schemas"
)

// TestHostileInput: issue 12, findings 1 and 2, on the whole pipeline.
// Poison records of 1.02 MB (accepted by the broker, refused by every
// decoder) on each of the three input topics must not wedge their
// partitions; requests whose reply-to names the pipeline's own topics, a
// dead-letter topic or an unknown topic must not write there (or create it).
func TestHostileInput(t *testing.T) {
	cfg, addr := startShop(t)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerBatchMaxBytes(2<<20), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const replies = "reco.replies.hardening"
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, replies); err != nil {
		t.Fatal(err)
	}
	produce := func(r *kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d bytes to %s: %v", len(r.Value), r.Topic, err)
		}
	}
	// Random bytes: compression cannot shrink the record below the limits.
	poison := make([]byte, 1_020_000)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(poison)
	reqHeaders := func(corr string) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: schemas.HeaderReplyTo, Value: []byte(replies)}, {Key: schemas.HeaderCorrelationID, Value: []byte(corr)}}
	}

	t.Run("poison records", func(t *testing.T) {
		now := time.Now().UTC()
		after := func(v any) []byte { b, _ := json.Marshal(v); return b }
		start := time.Now()
		// Each poison record is followed, on the same partition (same
		// key), by a valid one.
		produce(&kgo.Record{Topic: cfg.Topics.Clickstream.Name, Key: []byte("u1"), Value: poison})
		produce(&kgo.Record{Topic: cfg.Topics.Clickstream.Name, Key: []byte("u1"), Value: after(schemas.ClickEvent{
			EventID: "after-poison", Type: schemas.EventView, UserID: "u1", ItemID: "tea-3", Timestamp: now})})
		produce(&kgo.Record{Topic: cfg.Topics.Catalog.Name, Key: []byte("new-1"), Value: poison})
		produce(&kgo.Record{Topic: cfg.Topics.Catalog.Name, Key: []byte("new-1"), Value: after(schemas.CatalogChange{
			Op: schemas.OpUpsert, ItemID: "new-1", Title: "Oolong tea, roasted, 250g", CategoryPath: []string{"Grocery", "Tea"},
			Brand: "Leafy", Price: 9, Currency: "USD", InStock: true, UpdatedAt: now})})
		produce(&kgo.Record{Topic: cfg.Topics.Requests.Name, Key: []byte("r-poison"), Value: poison, Headers: reqHeaders("c-poison")})
		produce(&kgo.Record{Topic: cfg.Topics.Requests.Name, Key: []byte("r-poison"), Headers: reqHeaders("c-after"),
			Value: after(schemas.RecoRequest{RequestID: "r-after", Kind: schemas.KindSimilarItems, ItemID: "tea-1", K: 2})})

		for _, g := range []struct{ group, topic string }{
			{cfg.Clickstream.Group, cfg.Topics.Clickstream.Name},
			{cfg.Catalog.Group, cfg.Topics.Catalog.Name},
			{cfg.Serving.Group, cfg.Topics.Requests.Name},
		} {
			waitCommitted(t, addr, g.group, g.topic)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("the records after the poison ones took %s, want seconds", took)
		}
		// The valid request after the poison one was answered; the poison
		// one got an error reply naming the size.
		got := readReplies(t, addr, replies)
		if r := got["c-after"]; r.RequestID != "r-after" || r.Error != "" || len(r.Items) != 2 {
			t.Errorf("reply to the request after the poison one: %+v", r)
		}
		if r := got["c-poison"]; !strings.Contains(r.Error, "exceeds max") {
			t.Errorf("reply to the poison request: %+v", r)
		}
		// The new item after the poison catalog record is indexed.
		r, err := Recommend(ctx, cfg, testLog(), schemas.RecoRequest{Kind: schemas.KindSimilarItems, ItemID: "new-1", K: 1}, 20*time.Second)
		if err != nil || len(r.Items) != 1 {
			t.Errorf("similar_items to the item after the poison record: %+v, %v", r, err)
		}
		// Each poison record has its dead letter.
		for _, topic := range []string{cfg.Topics.Clickstream.Name, cfg.Topics.Catalog.Name} {
			letters := dlq(t, addr, topic)
			found := false
			for _, d := range letters {
				if strings.Contains(d.headers[schemas.HeaderError], "exceeds max") && bytes.HasPrefix(poison, d.value) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s%s has no dead letter of the poison record (%d letters)", topic, schemas.DLQSuffix, len(letters))
			}
		}
	})

	t.Run("reply-to attacks", func(t *testing.T) {
		guarded := []string{cfg.Topics.Catalog.Name, cfg.Topics.Clickstream.Name, cfg.Topics.Clickstream.Name + schemas.DLQSuffix}
		before := ends(t, adm, guarded...)
		requestsBefore := total(ends(t, adm, cfg.Topics.Requests.Name))
		attacks := []string{cfg.Topics.Catalog.Name, cfg.Topics.Clickstream.Name, cfg.Topics.Clickstream.Name + schemas.DLQSuffix,
			cfg.Topics.Requests.Name, cfg.Topics.Requests.Name + schemas.DLQSuffix, "anything.new"}
		dlqBefore := len(dlq(t, addr, cfg.Topics.Requests.Name))
		for i, to := range attacks {
			// The correlation id is an existing item's id: the reply would
			// land under that item's key in the compacted catalog.
			produce(&kgo.Record{Topic: cfg.Topics.Requests.Name, Key: []byte(fmt.Sprint("attack-", i)),
				Headers: []kgo.RecordHeader{{Key: schemas.HeaderReplyTo, Value: []byte(to)}, {Key: schemas.HeaderCorrelationID, Value: []byte("hp-1")}},
				Value:   must(json.Marshal(schemas.RecoRequest{RequestID: fmt.Sprint("attack-", i), Kind: schemas.KindForUser, UserID: "u1", K: 2}))})
		}
		waitCommitted(t, addr, cfg.Serving.Group, cfg.Topics.Requests.Name)
		if after := ends(t, adm, guarded...); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("end offsets of %v moved: %v -> %v", guarded, before, after)
		}
		// The requests topic holds the attacks and nothing else; its
		// dead-letter topic, their dead letters only (below).
		if n := total(ends(t, adm, cfg.Topics.Requests.Name)) - requestsBefore; n != int64(len(attacks)) {
			t.Errorf("%d records added to %s, want the %d attacks only", n, cfg.Topics.Requests.Name, len(attacks))
		}
		topics, err := adm.ListTopics(ctx, "anything.new")
		if err != nil {
			t.Fatal(err)
		}
		if topics.Has("anything.new") {
			t.Error("a reply created topic anything.new")
		}
		letters := dlq(t, addr, cfg.Topics.Requests.Name)[dlqBefore:]
		if len(letters) != len(attacks) {
			t.Fatalf("%d dead letters for %d attacks", len(letters), len(attacks))
		}
		for _, d := range letters {
			if !strings.Contains(d.headers[schemas.HeaderError], "reply-to topic refused") {
				t.Errorf("dead letter reason %q", d.headers[schemas.HeaderError])
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// ends returns the end offsets of topics, by topic and partition.
func ends(t *testing.T, adm *kadm.Client, topics ...string) map[string]map[int32]int64 {
	t.Helper()
	es, err := adm.ListEndOffsets(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32]int64{}
	es.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// total sums the end offsets of every partition.
func total(es map[string]map[int32]int64) int64 {
	var n int64
	for _, ps := range es {
		for _, o := range ps {
			n += o
		}
	}
	return n
}

type letter struct {
	value   []byte
	headers map[string]string
}

// dlq reads topic's dead-letter topic to its end.
func dlq(t *testing.T, addr, topic string) []letter {
	t.Helper()
	var out []letter
	for _, r := range readAll(t, addr, topic+schemas.DLQSuffix) {
		l := letter{value: r.Value, headers: map[string]string{}}
		for _, h := range r.Headers {
			l.headers[h.Key] = string(h.Value)
		}
		out = append(out, l)
	}
	return out
}

// readReplies reads the replies on topic by correlation id.
func readReplies(t *testing.T, addr, topic string) map[string]schemas.RecoReply {
	t.Helper()
	out := map[string]schemas.RecoReply{}
	for _, r := range readAll(t, addr, topic) {
		var reply schemas.RecoReply
		if err := json.Unmarshal(r.Value, &reply); err != nil {
			t.Fatalf("reply %q: %v", r.Value, err)
		}
		for _, h := range r.Headers {
			if h.Key == schemas.HeaderCorrelationID {
				out[string(h.Value)] = reply
			}
		}
	}
	return out
}
