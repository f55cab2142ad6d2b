package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/kafka/kafkatest"
)

// TestSecureBroker: SASL/SCRAM over TLS end to end against Apache Kafka's
// SASL_SSL listener (make test's Kafka pass: KAFKA_SECURE=1 scripts/kafka.sh
// with). The options streamrec builds from kafka.sasl.* and kafka.tls.*
// create topics, produce and consume with either SCRAM mechanism; a wrong
// password, a client without TLS and one that does not trust the CA are
// refused.
func TestSecureBroker(t *testing.T) {
	if _, ok := kafkatest.Secure(t, "SCRAM-SHA-512"); !ok {
		t.Skipf("no SASL_SSL broker (%s); make test runs this against Apache Kafka", kafkatest.EnvSecure)
	}
	kafkatest.Cluster(t, 1) // empties the broker
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			kc, _ := kafkatest.Secure(t, mech)
			topic := "secure." + strings.ToLower(mech)
			cl := secureClient(t, kc, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: topic, Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("over " + mech)}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			var got []string
			for len(got) == 0 && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
			}
			if len(got) != 1 || got[0] != "over "+mech {
				t.Errorf("consumed %q", got)
			}
		})
	}
	good, _ := kafkatest.Secure(t, "SCRAM-SHA-512")
	for _, tc := range []struct {
		name string
		mod  func(*kafka.Config)
		want string
	}{
		{"wrong password", func(c *kafka.Config) { c.SASL.Password = "not-it" }, "SASL"},
		{"no TLS", func(c *kafka.Config) { c.TLS = kafka.TLS{} }, ""},
		{"CA not trusted", func(c *kafka.Config) { c.TLS.CAFile = "" }, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := good
			tc.mod(&kc)
			cl := secureClient(t, kc, kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := kadm.NewClient(cl).ListTopics(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ListTopics = %v, want a refusal mentioning %q", err, tc.want)
			}
		})
	}
}

func secureClient(t *testing.T, kc kafka.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := kc.Opts(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
