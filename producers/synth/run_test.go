package synth_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/internal/kafkatest"
	"github.com/streamrec/streamrec/producers/synth"
	"github.com/streamrec/streamrec/schemas"
)

// runConfig is a small run: 200 items, 50 users, no catalog.
func runConfig() synth.Config {
	cfg := synth.DefaultConfig()
	cfg.Items, cfg.Users, cfg.SendCatalog = 200, 50, false
	return cfg
}

func newProducer(t *testing.T, cl *kgo.Client) *producers.Producer {
	t.Helper()
	p, err := producers.New(cl, producers.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkTopic reads topic back and checks that it holds want records, each
// keyed by the id its decoded value carries.
func checkTopic[T any](t *testing.T, c *kfake.Cluster, topic string, want int64, key func(T) string) {
	t.Helper()
	recs := kafkatest.Records(t, c, topic)
	if int64(len(recs)) != want {
		t.Fatalf("%s has %d records, want %d", topic, len(recs), want)
	}
	for _, r := range recs {
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("decode %s: %v", r.Value, err)
		}
		if string(r.Key) != key(v) {
			t.Fatalf("%s record keyed %q holds %s", topic, r.Key, r.Value)
		}
	}
}

func clickKey(ev schemas.ClickEvent) string   { return ev.UserID }
func itemKey(it schemas.CatalogChange) string { return it.ItemID }
func countRecords(rep synth.Report) int64     { return int64(rep.CatalogItems + rep.EventsSent()) }

func TestRunEvents(t *testing.T) {
	c, cl := kafkatest.Cluster(t)
	cfg := runConfig()
	cfg.SendCatalog, cfg.Rate, cfg.Duration, cfg.Events = true, 20000, 0, 500
	var bar bytes.Buffer

	rep, err := synth.Run(t.Context(), newProducer(t, cl), cfg, &bar)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.CatalogItems != 200 || rep.EventsSent() != 500 || rep.Sent != 700 || rep.Delivered != 700 || rep.Failed != 0 {
		t.Fatalf("report %+v, want 200 items and 500 events delivered", rep)
	}
	checkTopic(t, c, schemas.TopicCatalog, 200, itemKey)
	checkTopic(t, c, schemas.TopicClickstream, 500, clickKey)
	for _, want := range []string{"catalog", "200/200", "events", "500/500"} {
		if !strings.Contains(bar.String(), want) {
			t.Errorf("progress %q lacks %q", bar.String(), want)
		}
	}
}

func TestRunDuration(t *testing.T) {
	c, cl := kafkatest.Cluster(t)
	cfg := runConfig()
	cfg.Rate, cfg.Duration = 2000, 250*time.Millisecond

	rep, err := synth.Run(t.Context(), newProducer(t, cl), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	// 500 events are due; a loaded machine may fall behind, never ahead.
	if n := rep.EventsSent(); n < 200 || n > 520 || rep.Rate > 2100 {
		t.Errorf("%d events at %.0f/s in 250ms, want about 500 at 2000/s", n, rep.Rate)
	}
	if rep.Delivered != countRecords(rep) || rep.Failed != 0 {
		t.Errorf("report %+v: not all delivered", rep)
	}
	checkTopic(t, c, schemas.TopicClickstream, rep.Delivered, clickKey)
}

func TestRunCancelDrains(t *testing.T) {
	c, cl := kafkatest.Cluster(t)
	cfg := runConfig()
	cfg.Rate, cfg.Duration = 1000, time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()

	rep, err := synth.Run(ctx, newProducer(t, cl), cfg, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run() = %v, want the context's error", err)
	}
	if rep.EventsSent() == 0 || rep.Delivered != countRecords(rep) || rep.Failed != 0 {
		t.Errorf("report %+v: want what was sent delivered", rep)
	}
	checkTopic(t, c, schemas.TopicClickstream, rep.Delivered, clickKey)
}

func TestRunDeliveryErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *kerr.Error
		drain time.Duration
		want  string
	}{
		{"rejected", kerr.InvalidRecord, time.Minute, kerr.InvalidRecord.Message},
		{"drain timeout", kerr.NotEnoughReplicas, 100 * time.Millisecond, "produce.drain_timeout (100ms) passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cl := kafkatest.Cluster(t)
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: schemas.TopicClickstream, Err: tc.fault, Count: -1})
			cfg := runConfig()
			cfg.Rate, cfg.Duration, cfg.Events, cfg.DrainTimeout = 10000, 0, 50, tc.drain

			rep, err := synth.Run(t.Context(), newProducer(t, cl), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run() = %v, want %q", err, tc.want)
			}
			if rep.Sent != 50 || rep.Delivered != 0 {
				t.Errorf("report %+v, want 50 sent and none delivered", rep)
			}
		})
	}
}

func TestRunInvalidConfig(t *testing.T) {
	_, cl := kafkatest.Cluster(t)
	cfg := runConfig()
	cfg.Rate = 0
	if _, err := synth.Run(t.Context(), newProducer(t, cl), cfg, nil); err == nil || err.Error() != "produce.rate must be > 0" {
		t.Errorf("Run() = %v, want the bad key", err)
	}
}
