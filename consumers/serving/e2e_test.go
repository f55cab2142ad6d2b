package serving

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/producers/reco"
	"github.com/streamrec/streamrec/schemas"
)

// TestEndToEnd runs the sink in the consumer runtime and asks through the
// reco client library, over Kafka both ways.
func TestEndToEnd(t *testing.T) {
	f := newFixture(t, nil)
	f.profile("u1", []pipeline.Touch{{ItemID: "l1", Type: schemas.EventPurchase}})
	kc := kafka.Config{Brokers: f.brokers}
	ctx := context.Background()

	// The fixture's cluster holds only the reply topic: make the request topic.
	admin, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	err = kafka.EnsureTopics(ctx, admin, kafka.Topic{Name: schemas.TopicRecoRequests, Partitions: 2})
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}

	cfg := consumers.DefaultConfig("serving-test", schemas.TopicRecoRequests)
	cfg.Batch = pipeline.BatchPolicy{MaxRecords: 50, MaxBytes: 1 << 20, MaxWait: time.Millisecond}
	cfg.FetchMaxWait = 20 * time.Millisecond
	c, err := consumers.New(kc, cfg, f.srv.Sink(), consumers.WithClientOpts(kgo.SessionTimeout(6*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()

	cl, err := reco.New(ctx, kc, reco.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The first request waits for the group to form.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	reply, err := cl.Recommend(rctx, schemas.RecoRequest{Kind: schemas.KindForUser, UserID: "u1", K: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Items) != 2 || reply.ModelVersion != collName {
		t.Fatalf("reply = %+v", reply)
	}
	for _, it := range reply.Items {
		if it.ItemID == "l1" || it.Reason != "similar to Acme Laptop Pro, which you bought" {
			t.Errorf("item %+v: want items other than the one bought, explained by it", it)
		}
	}
	_, err = cl.Recommend(rctx, schemas.RecoRequest{Kind: schemas.KindSimilarItems, ItemID: "nope", K: 2})
	if !errors.Is(err, reco.ErrReply) || err.Error() != "reco: error reply: unknown item nope" {
		t.Errorf("Recommend unknown item: %v", err)
	}
}
