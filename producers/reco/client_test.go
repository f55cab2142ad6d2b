package reco_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/kafka/kafkatest"
	"github.com/streamrec/streamrec/producers/reco"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster returns kfake, or the real broker of STREAMREC_TEST_KAFKA
// (kafkatest), with the requests topic.
func cluster(t *testing.T) kafka.Config {
	t.Helper()
	t.Logf("kafka: %s", kafkatest.Backend())
	return kafkatest.Cluster(t, 3, schemas.TopicRecoRequests)
}

// respond answers every request the way the serving consumer does: a reply
// on the reply-to topic with the correlation-id header. Requests for user
// "bad" get an error reply; requests for user "silent" get none.
func respond(t *testing.T, kc kafka.Config) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.ConsumeTopics(schemas.TopicRecoRequests),
		kgo.ProducerLinger(0), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var req schemas.RecoRequest
				if err := json.Unmarshal(r.Value, &req); err != nil {
					return
				}
				if req.UserID == "silent" {
					return
				}
				reply := schemas.RecoReply{RequestID: req.RequestID, Items: []schemas.ReplyItem{{ItemID: "for-" + req.UserID, Score: 1}}}
				if req.UserID == "bad" {
					reply = schemas.RecoReply{RequestID: req.RequestID, Items: []schemas.ReplyItem{}, Error: "unknown thing"}
				}
				v, _ := json.Marshal(reply)
				out := &kgo.Record{Value: v}
				for _, h := range r.Headers {
					switch h.Key {
					case schemas.HeaderReplyTo:
						out.Topic = string(h.Value)
					case schemas.HeaderCorrelationID:
						out.Headers = append(out.Headers, h)
					}
				}
				cl.Produce(ctx, out, nil)
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
}

func newClient(t *testing.T, kc kafka.Config, cfg reco.Config) *reco.Client {
	t.Helper()
	c, err := reco.New(context.Background(), kc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func forUser(u string) schemas.RecoRequest {
	return schemas.RecoRequest{Kind: schemas.KindForUser, UserID: u, K: 5}
}

// TestConcurrentRequests: many goroutines share one client; each gets the
// reply to its own request.
func TestConcurrentRequests(t *testing.T) {
	kc := cluster(t)
	respond(t, kc)
	c := newClient(t, kc, reco.DefaultConfig())
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := fmt.Sprint("u", i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req := forUser(u)
			req.RequestID = fmt.Sprint("r", i)
			reply, err := c.Recommend(ctx, req)
			switch {
			case err != nil:
				errs <- err
			case reply.RequestID != req.RequestID || len(reply.Items) != 1 || reply.Items[0].ItemID != "for-"+u:
				errs <- fmt.Errorf("request %s got %+v", req.RequestID, reply)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrorReply(t *testing.T) {
	kc := cluster(t)
	respond(t, kc)
	c := newClient(t, kc, reco.DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reply, err := c.Recommend(ctx, forUser("bad"))
	if !errors.Is(err, reco.ErrReply) || reply.Error != "unknown thing" {
		t.Fatalf("got %+v, %v; want the error reply", reply, err)
	}
}

func TestTimeout(t *testing.T) {
	kc := cluster(t)
	respond(t, kc)
	cfg := reco.DefaultConfig()
	cfg.Timeout = 300 * time.Millisecond
	c := newClient(t, kc, cfg)
	start := time.Now()
	_, err := c.Recommend(context.Background(), forUser("silent"))
	if !errors.Is(err, reco.ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v, timeout 300ms", d)
	}
}

// TestTimeoutAtClippedDeadline: a deadline clipped to limits.max_deadline
// also ends the wait (plus a second's grace for the reply), not the much
// longer timeout.
func TestTimeoutAtClippedDeadline(t *testing.T) {
	kc := cluster(t)
	respond(t, kc)
	cfg := reco.DefaultConfig()
	cfg.Timeout = 2 * time.Minute
	cfg.Limits.MaxDeadline = 200 * time.Millisecond
	c := newClient(t, kc, cfg)
	start := time.Now()
	_, err := c.Recommend(context.Background(), forUser("silent"))
	if !errors.Is(err, reco.ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("returned after %v: waited for the 2 min timeout, not the 200ms deadline", d)
	}
}

// TestInvalidRequest: a request the server would reject is refused before
// it is sent, with the field named.
func TestInvalidRequest(t *testing.T) {
	kc := cluster(t)
	c := newClient(t, kc, reco.DefaultConfig())
	_, err := c.Recommend(context.Background(), schemas.RecoRequest{Kind: schemas.KindSimilarItems, K: 5})
	if !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("err %v, want schemas.ErrInvalid", err)
	}
}

func TestClosed(t *testing.T) {
	kc := cluster(t)
	c, err := reco.New(context.Background(), kc, reco.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Recommend(context.Background(), forUser("u")); !errors.Is(err, reco.ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}

// TestReplyTopicLifetime: Close deletes a reply topic the client named
// itself (under schemas.ReplyTopicPrefix) and keeps a configured one.
func TestReplyTopicLifetime(t *testing.T) {
	kc := cluster(t)
	respond(t, kc)
	// exists lists the topics with a client of its own: a client's
	// metadata answers may be cached.
	exists := func(topic string) bool {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		topics, err := kadm.NewClient(cl).ListTopics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return topics.Has(topic)
	}
	cases := []struct {
		name       string
		replyTopic string // configured; "" = the client names its own
		wantKept   bool
	}{
		{"generated topic is deleted", "", false},
		{"configured topic is kept", "reco.replies.fixed", true},
		{"configured topic outside the prefix is kept", "my.replies", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := reco.DefaultConfig()
			cfg.ReplyTopic = tc.replyTopic
			c, err := reco.New(context.Background(), kc, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			topic := c.ReplyTopic()
			if tc.replyTopic == "" && !strings.HasPrefix(topic, schemas.ReplyTopicPrefix) {
				t.Errorf("generated reply topic %q lacks the prefix %q", topic, schemas.ReplyTopicPrefix)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := c.Recommend(ctx, forUser("u")); err != nil {
				t.Fatal(err)
			}
			if !exists(topic) {
				t.Fatalf("reply topic %s missing while the client is open", topic)
			}
			c.Close()
			c.Close() // a second Close does nothing
			if got := exists(topic); got != tc.wantKept {
				t.Fatalf("after Close, reply topic %s exists = %v, want %v", topic, got, tc.wantKept)
			}
		})
	}
}
