package clickstream_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
)

// TestMain serves the benchmark's broker when asked to (see
// serveBenchBroker); otherwise it runs the tests, stops the ClickHouse
// server chtest may have started and checks for leaked goroutines.
func TestMain(m *testing.M) {
	if os.Getenv(benchBrokerEnv) != "" {
		serveBenchBroker()
		return
	}
	goleak.VerifyTestMain(chtest.Wrap(m))
}
