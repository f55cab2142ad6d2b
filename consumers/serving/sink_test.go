package serving

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

func TestSink(t *testing.T) {
	f := newFixture(t, nil)
	f.profile("u1", []pipeline.Touch{{ItemID: "c1", Type: schemas.EventView}})
	to := func(corr string) []string {
		return []string{schemas.HeaderReplyTo, replyTopic, schemas.HeaderCorrelationID, corr}
	}
	past := time.Now().Add(-time.Second).UTC()
	batch := []pipeline.Record{
		request(t, 10, schemas.RecoRequest{RequestID: "warm", Kind: schemas.KindForUser, UserID: "u1", K: 3}, to("c-warm")...),
		request(t, 11, schemas.RecoRequest{RequestID: "cold", Kind: schemas.KindForUser, UserID: "nobody", K: 2}, to("c-cold")...),
		request(t, 12, schemas.RecoRequest{RequestID: "similar", Kind: schemas.KindSimilarItems, ItemID: "c1", K: 2}, to("c-similar")...),
		request(t, 13, schemas.RecoRequest{RequestID: "search", Kind: schemas.KindSearch, Query: "laptop", K: 2}, to("c-search")...),
		request(t, 14, schemas.RecoRequest{RequestID: "unknown", Kind: schemas.KindSimilarItems, ItemID: "nope", K: 2}, to("c-unknown")...),
		request(t, 15, `{"request_id": "broken", "kind": "for_`, to("c-malformed")...),
		request(t, 16, `{"request_id": "bigk", "kind": "search", "query": "tea", "k": 5000}`, to("c-bigk")...),
		request(t, 17, schemas.RecoRequest{RequestID: "late", Kind: schemas.KindSearch, Query: "coffee", K: 2, Deadline: &past}, to("c-late")...),
		request(t, 18, `not json`),
		request(t, 19, schemas.RecoRequest{RequestID: "noreply", Kind: schemas.KindSearch, Query: "coffee", K: 2}),
		request(t, 20, `]`, to("c-garbage")...),
	}
	res, err := f.srv.Sink().Write(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}

	// Without reply-to: rejected, for the runtime to dead-letter.
	if len(res.Rejected) != 2 {
		t.Fatalf("rejected %d records, want 2: %+v", len(res.Rejected), res.Rejected)
	}
	if r := res.Rejected[0]; r.Record.Offset != 18 || !errors.Is(r.Err, schemas.ErrInvalid) {
		t.Errorf("rejected %d for %v, want offset 18 for a decode error", r.Record.Offset, r.Err)
	}
	if r := res.Rejected[1]; r.Record.Offset != 19 || !errors.Is(r.Err, ErrNoReplyTo) {
		t.Errorf("rejected %d for %v, want offset 19 for ErrNoReplyTo", r.Record.Offset, r.Err)
	}

	// Write returned after the replies were acknowledged: they are all there.
	if n := f.replyCount(t, replyTopic); n != 9 {
		t.Errorf("%d replies in %s, want 9", n, replyTopic)
	}
	replies := f.readReplies(t, replyTopic, 9)
	for _, tc := range []struct {
		corr, requestID, err string
		items                int
		fallback             bool
	}{
		{"c-warm", "warm", "", 3, false},
		{"c-cold", "cold", "", 2, true},
		{"c-similar", "similar", "", 2, false},
		{"c-search", "search", "", 2, false},
		{"c-unknown", "unknown", "unknown item nope", 0, false},
		// What can be read of a malformed request is kept; when the
		// request_id cannot be read, the correlation id stands in.
		{"c-malformed", "broken", "malformed JSON at offset 38: ", 0, false},
		{"c-garbage", "c-garbage", "malformed JSON at offset 0: ", 0, false},
		{"c-bigk", "bigk", "request.k: 5000 out of range 1..1000", 0, false},
		{"c-late", "late", "deadline exceeded", 0, false},
	} {
		got, ok := replies[tc.corr]
		if !ok {
			t.Errorf("no reply with correlation-id %s", tc.corr)
			continue
		}
		r := got.reply
		if r.RequestID != tc.requestID || !strings.HasPrefix(r.Error, tc.err) || (tc.err == "") != (r.Error == "") ||
			len(r.Items) != tc.items || r.Fallback != tc.fallback {
			t.Errorf("reply %s = %+v, want request_id %s, error %q, %d items, fallback %v", tc.corr, r, tc.requestID, tc.err, tc.items, tc.fallback)
		}
		if tc.items > 0 && (r.ModelVersion != collName || r.Items[0].Reason == "") {
			t.Errorf("reply %s = %+v, want model_version %s and reasons", tc.corr, r, collName)
		}
	}

	// Every reply with a readable request_id and kind is logged.
	rows := f.an.byRequest()
	if len(rows) != 7 {
		t.Errorf("%d analytics rows, want 7 (all replies but the two without a readable kind): %v", len(rows), rows)
	}
	if r := rows["warm"]; r.Kind != schemas.KindForUser || r.UserID != "u1" || len(r.Items) != 3 || len(r.Scores) != 3 ||
		r.ModelVersion != collName || r.Fallback || r.Error != "" || r.Latency <= 0 || r.ServedAt.IsZero() {
		t.Errorf("row of warm = %+v", r)
	}
	if r := rows["cold"]; !r.Fallback || len(r.Items) != 2 {
		t.Errorf("row of cold = %+v", r)
	}
	if r := rows["similar"]; r.Kind != schemas.KindSimilarItems || r.ItemID != "c1" {
		t.Errorf("row of similar = %+v", r)
	}
	if r := rows["search"]; r.Kind != schemas.KindSearch || r.Query != "laptop" {
		t.Errorf("row of search = %+v", r)
	}
	if r := rows["bigk"]; r.Kind != schemas.KindSearch || r.Query != "tea" || !strings.HasPrefix(r.Error, "request.k:") {
		t.Errorf("row of bigk = %+v", r)
	}
	if r := rows["late"]; r.Error != "deadline exceeded" || len(r.Items) != 0 {
		t.Errorf("row of late = %+v", r)
	}

	for _, tc := range []struct {
		kind, result string
		want         float64
	}{
		{"for_user", "ok", 2},
		{"similar_items", "ok", 1},
		{"similar_items", "error", 1},
		{"search", "ok", 1},
		{"search", "error", 1},
		{"search", "rejected", 1},
		{"invalid", "error", 3},
		{"invalid", "rejected", 1},
	} {
		if got := testutil.ToFloat64(f.srv.metrics.requests.WithLabelValues(tc.kind, tc.result)); got != tc.want {
			t.Errorf("streamrec_serving_requests_total{kind=%s,result=%s} = %v, want %v", tc.kind, tc.result, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(f.srv.metrics.fallback); got != 1 {
		t.Errorf("streamrec_serving_fallback_total = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(f.reg, "streamrec_serving_latency_seconds"); n != 4 {
		t.Errorf("latency histogram has %d kinds, want 4 (three kinds and invalid)", n)
	}
}

// A batch whose analytics insert fails is retried by the runtime; the retry
// logs the rows without answering the requests again.
func TestSinkRetryDoesNotAnswerTwice(t *testing.T) {
	f := newFixture(t, nil)
	batch := []pipeline.Record{
		request(t, 5, schemas.RecoRequest{RequestID: "r1", Kind: schemas.KindSearch, Query: "coffee", K: 2},
			schemas.HeaderReplyTo, replyTopic, schemas.HeaderCorrelationID, "c1"),
		request(t, 6, `{}`),
	}
	f.an.fail = errTransient
	if _, err := f.srv.Sink().Write(context.Background(), batch); !errors.Is(err, errTransient) || pipeline.IsPermanent(err) {
		t.Fatalf("Write = %v, want the transient analytics error", err)
	}
	res, err := f.srv.Sink().Write(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Record.Offset != 6 {
		t.Errorf("retry rejected %+v, want offset 6", res.Rejected)
	}
	if n := f.replyCount(t, replyTopic); n != 1 {
		t.Errorf("%d replies, want 1: the retry must not answer again", n)
	}
	if rows := f.an.byRequest(); len(rows) != 1 || rows["r1"].Error != "" || len(rows["r1"].Items) != 2 {
		t.Errorf("rows %+v, want r1's answer", rows)
	}
	if got := testutil.ToFloat64(f.srv.metrics.requests.WithLabelValues("search", "ok")); got != 1 {
		t.Errorf("search ok counted %v times, want 1", got)
	}
	// The kept outcomes are gone: a later batch at the same offsets is new.
	if len(f.srv.pending.m) != 0 {
		t.Errorf("pending outcomes left: %v", f.srv.pending.m)
	}
}

func TestSinkPermanentAnalyticsErrorDropsRows(t *testing.T) {
	f := newFixture(t, nil)
	f.an.fail = pipeline.Permanent(errors.New("bad row"))
	batch := []pipeline.Record{request(t, 1, schemas.RecoRequest{RequestID: "r1", Kind: schemas.KindSearch, Query: "coffee", K: 2},
		schemas.HeaderReplyTo, replyTopic)}
	res, err := f.srv.Sink().Write(context.Background(), batch)
	if err != nil || len(res.Rejected) != 0 {
		t.Fatalf("Write = %+v, %v; want the replies confirmed", res, err)
	}
	if n := f.replyCount(t, replyTopic); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
}

func TestSinkUnknownReplyTopicRejects(t *testing.T) {
	f := newFixture(t, nil)
	batch := []pipeline.Record{request(t, 1, schemas.RecoRequest{RequestID: "r1", Kind: schemas.KindSearch, Query: "coffee", K: 2},
		schemas.HeaderReplyTo, "reco.replies.gone")}
	res, err := f.srv.Sink().Write(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("rejected %+v, want the request for its unknown reply topic", res.Rejected)
	}
	if rows := f.an.byRequest(); len(rows) != 0 {
		t.Errorf("rows %v for a reply never delivered", rows)
	}
}

func TestSinkCancelled(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	batch := []pipeline.Record{request(t, 1, schemas.RecoRequest{RequestID: "r1", Kind: schemas.KindSearch, Query: "coffee", K: 2},
		schemas.HeaderReplyTo, replyTopic)}
	if _, err := f.srv.Sink().Write(ctx, batch); !errors.Is(err, context.Canceled) {
		t.Errorf("Write = %v, want context.Canceled (the batch stays uncommitted)", err)
	}
	if n := f.replyCount(t, replyTopic); n != 0 {
		t.Errorf("%d replies sent under a cancelled context", n)
	}
}

func TestNewRequiresDeps(t *testing.T) {
	f := newFixture(t, nil)
	full := f.srv.deps
	for _, tc := range []struct {
		name   string
		change func(*Deps)
	}{
		{"store", func(d *Deps) { d.Store = nil }},
		{"profiles", func(d *Deps) { d.Profiles = nil }},
		{"popularity", func(d *Deps) { d.Popularity = nil }},
		{"replies", func(d *Deps) { d.Replies = nil }},
	} {
		d := full
		tc.change(&d)
		if _, err := New(d, DefaultConfig(), nil, nil); err == nil {
			t.Errorf("New without %s: no error", tc.name)
		}
	}
	d := full
	d.ItemsAlias, d.Embedder, d.Analytics = "", nil, nil
	s, err := New(d, DefaultConfig(), nil, nil)
	if err != nil || s.deps.ItemsAlias != "items" {
		t.Errorf("New with optional deps left out: %v, alias %q", err, s.deps.ItemsAlias)
	}
}

// A reply-to naming the pipeline's own topics, a dead-letter topic, a
// Kafka-internal topic or anything outside serving.reply_topics is refused:
// the request is rejected (dead-lettered) with the reason and nothing is
// written to that topic, even when it exists. Issue 12, finding 1: a reply
// into the compacted catalog under an item's key replaced the item.
func TestSinkRefusesReplyTopics(t *testing.T) {
	const catalogTopic = schemas.TopicCatalog
	f := newFixture(t, func(c *Config) {
		c.ReplyTopics = []string{"reco.replies.*", "shop.*"} // even a pattern that covers them
		c.Reserved = []string{catalogTopic, schemas.TopicClickstream, schemas.TopicRecoRequests}
	})
	adm := kadm.NewClient(f.replies)
	for _, topic := range []string{catalogTopic, catalogTopic + schemas.DLQSuffix, "shop.other", "__consumer_offsets_x"} {
		if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	req := func(offset int64, replyTo string) pipeline.Record {
		return request(t, offset, schemas.RecoRequest{RequestID: "r", Kind: schemas.KindSimilarItems, ItemID: "c1", K: 2},
			schemas.HeaderReplyTo, replyTo, schemas.HeaderCorrelationID, "c1")
	}
	for _, tc := range []struct {
		name, replyTo, reason string
	}{
		{"catalog", catalogTopic, "one of the pipeline's own topics"},
		{"clickstream", schemas.TopicClickstream, "one of the pipeline's own topics"},
		{"requests", schemas.TopicRecoRequests, "one of the pipeline's own topics"},
		{"dead letters", catalogTopic + schemas.DLQSuffix, "a dead-letter topic"},
		{"dead letters of a reply topic", "reco.replies.x" + schemas.DLQSuffix, "a dead-letter topic"},
		{"kafka internal", "__consumer_offsets", "Kafka-internal"},
		{"not allowed", "anything.new", "matches none of serving.reply_topics"},
		{"invalid name", "a/b", "not a valid topic name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.srv.Sink().Write(context.Background(), []pipeline.Record{req(1, tc.replyTo)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, ErrReplyTopicRefused) ||
				!strings.Contains(res.Rejected[0].Err.Error(), tc.reason) {
				t.Fatalf("rejected %+v, want the request refused for %q", res.Rejected, tc.reason)
			}
		})
	}
	// Nothing reached the existing topics; an allowed one gets its reply.
	for _, topic := range []string{catalogTopic, catalogTopic + schemas.DLQSuffix} {
		if n := f.replyCount(t, topic); n != 0 {
			t.Errorf("%d records written to %s, want 0", n, topic)
		}
	}
	res, err := f.srv.Sink().Write(context.Background(), []pipeline.Record{req(2, "shop.other")})
	if err != nil || len(res.Rejected) != 0 {
		t.Fatalf("allowed reply topic: %+v, %v", res, err)
	}
	if n := f.replyCount(t, "shop.other"); n != 1 {
		t.Errorf("%d replies in shop.other, want 1", n)
	}
	if got := testutil.ToFloat64(f.srv.metrics.requests.WithLabelValues("similar_items", "rejected")); got != 8 {
		t.Errorf("rejected requests counted %v, want 8", got)
	}
}

// A reply topic that does not exist is never created by the reply: the
// request is dead-lettered, and the topic still does not exist.
func TestSinkDoesNotCreateReplyTopics(t *testing.T) {
	f := newFixture(t, nil)
	const topic = "reco.replies.never-created"
	res, err := f.srv.Sink().Write(context.Background(), []pipeline.Record{request(t, 1,
		schemas.RecoRequest{RequestID: "r1", Kind: schemas.KindSearch, Query: "coffee", K: 2}, schemas.HeaderReplyTo, topic)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 {
		t.Fatalf("rejected %+v, want the request", res.Rejected)
	}
	topics, err := kadm.NewClient(f.replies).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(topic) {
		t.Errorf("topic %s was created by the reply", topic)
	}
}

func TestReplyTopicsValidate(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		want     string
	}{
		{nil, "serving.reply_topics must not be empty"},
		{[]string{""}, "serving.reply_topics[0] must not be empty"},
		{[]string{"ok.*", "bad["}, "serving.reply_topics[1]"},
	} {
		c := DefaultConfig()
		c.ReplyTopics = tc.patterns
		if err := c.Validate("serving"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %v, want %q", tc.patterns, err, tc.want)
		}
	}
	if err := DefaultConfig().Validate("serving"); err != nil {
		t.Errorf("default config: %v", err)
	}
}
