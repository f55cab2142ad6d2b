package broker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRecordsAndOffsetsSurviveRestart: what was produced and the group's
// committed offsets are still there after the broker restarts on the same
// data directory.
func TestRecordsAndOffsetsSurviveRestart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	ctx := context.Background()

	b, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 2, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()

	b2, err := Start(cfg, nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer b2.Close()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b2.Addr()), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	var got []string
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(got) < 3 && pctx.Err() == nil {
		cl2.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("after restart read %v, want a,b,c", got)
	}
	fetched, err := kadm.NewClient(cl2).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("t", 0); !ok || o.At != 2 {
		t.Fatalf("committed offset after restart = %+v (found %v), want 2", o, ok)
	}
}

func TestPortInUseIsClear(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = ""
	b, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	port := b.Addr()[strings.LastIndex(b.Addr(), ":")+1:]
	cfg2 := cfg
	if cfg2.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(cfg2, nil); err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Fatalf("second broker on the same port: err = %v, want 'is in use'", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"port", func(c *Config) { c.Port = 70000 }, "broker.port: 70000 out of range 0..65535"},
		{"partitions", func(c *Config) { c.DefaultPartitions = 0 }, "broker.default_partitions must be > 0"},
		{"message size", func(c *Config) { c.MaxMessageBytes = -1 }, "broker.max_message_bytes must be > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			if err := c.Validate("broker"); err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
