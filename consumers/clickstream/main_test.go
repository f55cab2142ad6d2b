package clickstream_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/broker/brokertest"
	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
)

// TestMain serves the benchmark's broker when asked to (see
// brokertest.Serve); otherwise it runs the tests, stops the ClickHouse
// server chtest may have started and checks for leaked goroutines.
func TestMain(m *testing.M) {
	if brokertest.Serve() {
		return
	}
	goleak.VerifyTestMain(chtest.Wrap(m))
}
