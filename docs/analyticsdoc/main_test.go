// Package analyticsdoc_test runs every analyst query of docs/analytics.md
// against a real ClickHouse server, and against DuckDB over the embedded
// store as `streamrec sql` runs them (each query's DuckDB variant where the
// guide gives one), and checks each answer against the same number computed
// in Go from the dataset it inserted.
package analyticsdoc_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
)

// TestMain stops the server chtest starts, then checks that no goroutine
// (the driver's pool among them) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(chtest.Wrap(m)) }
