package clickhouse_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
)

// TestMain stops the server chtest starts, then checks that no goroutine
// (the driver's pool among them) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(chtest.Wrap(m)) }
