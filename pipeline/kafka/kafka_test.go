package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "kafka.brokers must not be empty"},
		{"no port", func(c *Config) { c.Brokers = []string{"kafka"} }, `kafka.brokers[0]: "kafka" is not host:port`},
		{"sasl ok", func(c *Config) { c.SASL = SASL{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"} }, ""},
		{"sasl unknown", func(c *Config) { c.SASL.Mechanism = "GSSAPI" }, `kafka.sasl.mechanism: unknown "GSSAPI" (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`},
		{"sasl no user", func(c *Config) { c.SASL.Mechanism = "PLAIN" }, "kafka.sasl.user must be set when kafka.sasl.mechanism is"},
		{"tls half pair", func(c *Config) { c.TLS.CertFile = "c.pem" }, "kafka.tls.cert_file and kafka.tls.key_file must be set together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate("kafka")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOptsTLSFileErrorsNameKey(t *testing.T) {
	c := DefaultConfig()
	c.TLS = TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := c.Opts(nil); err == nil || err.Error()[:16] != "kafka.tls.ca_fil" {
		t.Fatalf("Opts() = %v, want an error naming kafka.tls.ca_file", err)
	}
}

func TestEnsureTopics(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	topics := []Topic{{Name: "events", Partitions: 4}, {Name: "catalog", Partitions: 2, Compact: true}}
	for range 2 { // the second call finds them existing: not an error
		if err := EnsureTopics(ctx, cl, topics...); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, "events", "catalog")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range topics {
		if got := len(details[want.Name].Partitions); got != int(want.Partitions) {
			t.Errorf("%s has %d partitions, want %d", want.Name, got, want.Partitions)
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "catalog", "events")
	if err != nil {
		t.Fatal(err)
	}
	policy := map[string]string{}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy[rc.Name] = *c.Value
			}
		}
	}
	if policy["catalog"] != "compact" {
		t.Errorf("catalog cleanup.policy = %q, want compact", policy["catalog"])
	}
	if policy["events"] == "compact" {
		t.Errorf("events is compacted; only the catalog should be")
	}
}
