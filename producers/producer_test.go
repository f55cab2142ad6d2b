package producers_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/internal/kafkatest"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func newProducer(t *testing.T, cl *kgo.Client, cfg producers.Config, opts ...producers.Option) *producers.Producer {
	t.Helper()
	p, err := producers.New(cl, cfg, append(opts, producers.WithClock(func() time.Time { return now }))...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func click(user string) schemas.ClickEvent {
	return schemas.ClickEvent{
		EventID: "0b7e4c1e-7d0c-4f5e-9a43-2f7f3c1d0001", Type: schemas.EventAddToCart, UserID: user,
		SessionID: "sess-1", ItemID: "item-000007", Price: 24.99, Quantity: 2, Timestamp: now,
		Context: schemas.EventContext{Device: "mobile", Locale: "zh-CN", Page: "product"},
	}
}

func item(id string) schemas.CatalogChange {
	return schemas.CatalogChange{
		Op: schemas.OpUpsert, ItemID: id, Title: "Sonora 无线降噪耳机 Pro", Description: "Wireless headphones.",
		CategoryPath: []string{"Electronics", "Audio", "Headphones"}, Brand: "Sonora", Price: 129.99,
		Currency: "USD", InStock: true, Attributes: map[string]string{"color": "黑色"}, UpdatedAt: now,
	}
}

// decodeAs decodes a record's value into a new T.
func decodeAs[T any](t *testing.T, r *kgo.Record) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("decode %s: %v", r.Value, err)
	}
	return v
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*producers.Config)
		want   string // "" for valid
	}{
		{"default", func(*producers.Config) {}, ""},
		{"no clickstream topic", func(c *producers.Config) { c.ClickstreamTopic = "" }, "producer.clickstream_topic must not be empty"},
		{"no catalog topic", func(c *producers.Config) { c.CatalogTopic = "" }, "producer.catalog_topic must not be empty"},
		{"no errors kept", func(c *producers.Config) { c.MaxErrors = 0 }, "producer.max_errors must be > 0"},
		{"bad limits", func(c *producers.Config) { c.Limits.MaxBytes = 0 }, "producer.limits: max_bytes must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := producers.DefaultConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if got := ""; err != nil {
				got = err.Error()
				if got != tc.want {
					t.Fatalf("Validate() = %q, want %q", got, tc.want)
				}
			} else if tc.want != "" {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
		})
	}
}

func TestSendValid(t *testing.T) {
	c, cl := kafkatest.Cluster(t)
	p := newProducer(t, cl, producers.DefaultConfig())
	ctx := t.Context()

	ev, it := click("user-00042"), item("item-000007")
	results := make(chan error, 2)
	done := func(err error) { results <- err }
	if err := p.SendClick(ctx, ev, done); err != nil {
		t.Fatal(err)
	}
	if err := p.SendCatalog(ctx, it, done); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("done(%v), want done(nil)", err)
		}
	}
	if got, want := p.Stats(), (producers.Stats{Sent: 2, Delivered: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}

	clicks := kafkatest.Records(t, c, schemas.TopicClickstream)
	if len(clicks) != 1 || string(clicks[0].Key) != ev.UserID {
		t.Fatalf("clickstream has %d records, want 1 keyed %s", len(clicks), ev.UserID)
	}
	if got := decodeAs[schemas.ClickEvent](t, clicks[0]); !reflect.DeepEqual(got, ev) {
		t.Errorf("clickstream record decodes to %+v, want %+v", got, ev)
	}
	items := kafkatest.Records(t, c, schemas.TopicCatalog)
	if len(items) != 1 || string(items[0].Key) != it.ItemID {
		t.Fatalf("catalog has %d records, want 1 keyed %s", len(items), it.ItemID)
	}
	if got := decodeAs[schemas.CatalogChange](t, items[0]); !reflect.DeepEqual(got, it) {
		t.Errorf("catalog record decodes to %+v, want %+v", got, it)
	}
}

func TestSendInvalid(t *testing.T) {
	c, cl := kafkatest.Cluster(t)
	cfg := producers.DefaultConfig()
	cfg.Limits.MaxBytes = 300
	p := newProducer(t, cl, cfg)
	ctx := t.Context()

	noUser := click("")
	future := click("user-00001")
	future.Timestamp = now.Add(time.Hour)
	noItem := item("")
	big := item("item-000001")
	big.Description = strings.Repeat("Long text. ", 40)
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	for _, tc := range []struct {
		name    string
		send    func() error
		invalid bool
	}{
		{"click without user", func() error { return p.SendClick(ctx, noUser, nil) }, true},
		{"click from the future", func() error { return p.SendClick(ctx, future, nil) }, true},
		{"item without id", func() error { return p.SendCatalog(ctx, noItem, nil) }, true},
		{"item over max_bytes", func() error { return p.SendCatalog(ctx, big, nil) }, true},
		{"cancelled context", func() error { return p.SendClick(canceled, click("user-00002"), nil) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.send()
			if err == nil || errors.Is(err, schemas.ErrInvalid) != tc.invalid {
				t.Fatalf("send = %v, want an error (wrapping ErrInvalid: %v)", err, tc.invalid)
			}
		})
	}
	if err := p.SendClick(ctx, click("user-00003"), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Stats(), (producers.Stats{Rejected: 4, Sent: 1, Delivered: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if recs := kafkatest.Records(t, c, schemas.TopicClickstream); len(recs) != 1 || string(recs[0].Key) != "user-00003" {
		t.Errorf("clickstream has %d records, want only the valid one", len(recs))
	}
	if recs := kafkatest.Records(t, c, schemas.TopicCatalog); len(recs) != 0 {
		t.Errorf("catalog has %d records, want none", len(recs))
	}
}

func TestDeliveryErrors(t *testing.T) {
	c, cl := kafkatest.Cluster(t, kgo.RecordRetries(1))
	cfg := producers.DefaultConfig()
	cfg.MaxErrors = 2
	var log bytes.Buffer
	p := newProducer(t, cl, cfg, producers.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	ctx := t.Context()
	// Every produce to the catalog fails; the clickstream is untouched.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: schemas.TopicCatalog, Err: kerr.InvalidRecord, Count: -1})

	results := make(chan error, 5)
	for i := range 5 {
		if err := p.SendCatalog(ctx, item(fmtItem(i)), func(err error) { results <- err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SendClick(ctx, click("user-00001"), nil); err != nil {
		t.Fatal(err)
	}
	err := p.Flush(ctx)
	if !errors.Is(err, kerr.InvalidRecord) || !strings.Contains(err.Error(), "3 more delivery errors") {
		t.Fatalf("Flush() = %v, want InvalidRecord twice and 3 more", err)
	}
	for range 5 {
		if err := <-results; !errors.Is(err, kerr.InvalidRecord) {
			t.Errorf("done(%v), want InvalidRecord", err)
		}
	}
	if n := strings.Count(log.String(), "record not delivered"); n != 2 {
		t.Errorf("%d delivery errors logged, want the 2 reported in full:\n%s", n, log.String())
	}
	if got, want := p.Stats(), (producers.Stats{Sent: 6, Delivered: 1, Failed: 5}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if err := p.Flush(ctx); err != nil {
		t.Errorf("second Flush() = %v, want nil: errors are reported once", err)
	}
}

func TestNew(t *testing.T) {
	if _, err := producers.New(nil, producers.DefaultConfig()); err == nil {
		t.Error("New(nil client) = nil error")
	}
	_, cl := kafkatest.Cluster(t)
	cfg := producers.DefaultConfig()
	cfg.CatalogTopic = ""
	if _, err := producers.New(cl, cfg); err == nil || !strings.Contains(err.Error(), "producer.catalog_topic") {
		t.Errorf("New(bad config) = %v, want the bad key", err)
	}
}

func fmtItem(i int) string { return "item-00000" + string(rune('0'+i)) }
