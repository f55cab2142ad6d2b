// Package kafkatest gives tests a Kafka cluster, the way franz-go's own CI
// runs its suite against kfake and against a real cluster.
//
// By default Cluster starts a fresh in-process kfake cluster per test. With
// STREAMREC_TEST_KAFKA=host:port (make test starts Apache Kafka with
// scripts/kafka.sh and runs the Kafka-facing packages a second time), it
// returns that broker instead, emptied for the test: every topic and
// consumer group left on it is deleted first, then the test's topics are
// created. Tests on a real broker therefore run one package at a time and
// one test at a time (go test -p 1, no t.Parallel), which make test does.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline/kafka"
)

// Environment variables naming a real broker (scripts/kafka.sh with).
const (
	// EnvBrokers names a real broker the tests use instead of kfake.
	EnvBrokers = "STREAMREC_TEST_KAFKA"
	// EnvSecure names the secure.env file of its SASL_SSL listener
	// (KAFKA_SECURE=1 scripts/kafka.sh): TLS with a throwaway CA and SCRAM
	// logins.
	EnvSecure = "STREAMREC_TEST_KAFKA_SECURE"
)

// Secure returns a config for the real broker's SASL_SSL listener with
// mechanism (SCRAM-SHA-256 or SCRAM-SHA-512) and its CA, when the broker
// has one.
func Secure(tb testing.TB, mechanism string) (kafka.Config, bool) {
	tb.Helper()
	path := os.Getenv(EnvSecure)
	if path == "" {
		return kafka.Config{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%s: %v", EnvSecure, err)
	}
	v := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			v[k] = val
		}
	}
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{v["KAFKA_SECURE_ADDR"]}
	kc.SASL = kafka.SASL{Mechanism: mechanism, User: v["KAFKA_SCRAM_USER"], Password: v["KAFKA_SCRAM_PASSWORD"]}
	kc.TLS = kafka.TLS{Enabled: true, CAFile: v["KAFKA_CA_FILE"]}
	if err := kc.Validate("kafka"); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return kc, true
}

// Real reports whether tests run against a real broker.
func Real() bool { return os.Getenv(EnvBrokers) != "" }

// Backend names the cluster tests run against, for their output.
func Backend() string {
	if Real() && os.Getenv(EnvSecure) != "" {
		return "kafka " + os.Getenv(EnvBrokers) + " (and its SASL_SSL listener)"
	}
	if Real() {
		return "kafka " + os.Getenv(EnvBrokers)
	}
	return "kfake"
}

// Cluster returns a cluster holding topics, each with partitions
// partitions and no records, and no consumer groups.
func Cluster(tb testing.TB, partitions int32, topics ...string) kafka.Config {
	tb.Helper()
	if !Real() {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...), kfake.AllowAutoTopicCreation())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.Close)
		return kafka.Config{Brokers: c.ListenAddrs()}
	}
	kc := kafka.Config{Brokers: strings.Split(os.Getenv(EnvBrokers), ",")}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := empty(ctx, adm); err != nil {
		tb.Fatalf("emptying %s: %v", Backend(), err)
	}
	for _, t := range topics {
		if err := create(ctx, adm, t, partitions); err != nil {
			tb.Fatalf("%s: %v", Backend(), err)
		}
	}
	return kc
}

// empty deletes every consumer group and every topic but Kafka's own.
func empty(ctx context.Context, adm *kadm.Client) error {
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if gs := groups.Groups(); len(gs) > 0 {
		// A group whose members are still leaving is not empty yet.
		for {
			resp, err := adm.DeleteGroups(ctx, gs...)
			if err != nil {
				return fmt.Errorf("delete groups: %w", err)
			}
			var left []string
			for g, r := range resp {
				if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
					left = append(left, g)
				}
			}
			if len(left) == 0 {
				break
			}
			if err := wait(ctx); err != nil {
				return fmt.Errorf("groups %v not deletable: %w", left, err)
			}
			gs = left
		}
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	if names := topics.Names(); len(names) > 0 {
		if _, err := adm.DeleteTopics(ctx, names...); err != nil {
			return fmt.Errorf("delete topics %v: %w", names, err)
		}
	}
	return nil
}

// create creates topic, waiting while a deleted topic of that name is still
// being removed.
func create(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	for {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		if err := wait(ctx); err != nil {
			return fmt.Errorf("topic %s still being deleted: %w", topic, err)
		}
	}
}

func wait(ctx context.Context) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WaitGroupStable waits until group is stable with members members.
func WaitGroupStable(ctx context.Context, kc kafka.Config, group string, members int) error {
	opts, err := kc.Opts(nil)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := gs[group]; ok && g.Err == nil && g.State == "Stable" && len(g.Members) == members {
				return nil
			}
		}
		if err := wait(ctx); err != nil {
			return fmt.Errorf("group %s not stable with %d members: %w", group, members, err)
		}
	}
}

// Records reads every record topic holds now, up to each partition's end
// offset, with a client of its own (kc's options: SASL and TLS too).
func Records(tb testing.TB, kc kafka.Config, topic string) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts, err := kc.Opts(nil)
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		tb.Fatalf("end offsets of %s: %v", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("reading %s: partitions %v not read to their end", topic, left)
		}
		fs.EachError(func(t string, p int32, err error) { tb.Errorf("fetch %s/%d: %v", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset < end {
				out = append(out, r)
				if r.Offset+1 >= end {
					delete(left, r.Partition)
				}
			}
		})
	}
	return out
}
