package qdranttest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline/qdrant/qdranttest"
)

// TestMain stops the real Qdrant that qdranttest starts, then checks that no
// goroutine outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(qdranttest.Wrap(m)) }
