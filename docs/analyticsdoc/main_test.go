// Package analyticsdoc_test runs every analyst query of docs/analytics.md
// against a real ClickHouse server (Debian's 18.16), against the current
// ClickHouse engine in process (PyPI's chdb-core, ClickHouse 26.9;
// scripts/chdb.sh), and against DuckDB over the embedded store as
// `streamrec sql` runs them (each query's DuckDB variant where the guide
// gives one), and checks each answer against the same number computed in Go
// from the dataset it inserted. Each test names its backend in a subtest:
// e.g. backend=clickhouse-18.16, backend=chdb-26.9, backend=duckdb-v1.5.
package analyticsdoc_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
)

// TestMain stops the server chtest starts, then checks that no goroutine
// (the driver's pool among them) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(chtest.Wrap(m)) }
