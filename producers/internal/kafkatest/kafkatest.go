// Package kafkatest runs an in-process Kafka cluster (kfake) for the
// producers' tests and reads topics back from it.
package kafkatest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline/kafka"
	kt "github.com/streamrec/streamrec/pipeline/kafka/kafkatest"
	"github.com/streamrec/streamrec/schemas"
)

// Cluster starts a one-broker cluster with the clickstream and catalog topics
// (three partitions each) and a client of it, both closed when t ends.
func Cluster(t testing.TB, opts ...kgo.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, schemas.TopicClickstream, schemas.TopicCatalog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

// Records returns every record in topic now, read with a client of its own.
func Records(t testing.TB, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	return kt.Records(t, kafka.Config{Brokers: c.ListenAddrs()}, topic)
}
