package parquetstore

import (
	"fmt"
	"time"

	"github.com/streamrec/streamrec/pipeline"
)

// Config configures the embedded analytics store. The zero value is not
// valid; start from DefaultConfig.
type Config struct {
	// Batch says when a table's pending rows are written as one part file:
	// at MaxRecords rows, MaxBytes (estimated) bytes, or MaxWait after the
	// first pending row. A part never holds more than MaxRecords rows.
	Batch pipeline.BatchPolicy `yaml:"batch"`
	// CompactParts is the most part files a day of a table keeps: when a
	// flush leaves more, the table merges its newest parts (see the package
	// documentation). 0 disables compaction.
	CompactParts int `yaml:"compact_parts"`
	// QueueSize bounds the Insert calls waiting for a table's writer; a full
	// queue blocks callers.
	QueueSize int `yaml:"queue_size"`
}

// DefaultConfig writes a part per 100,000 rows, 32 MiB or second, keeps at
// most 16 parts a day per table and queues up to 256 Insert calls per table.
func DefaultConfig() Config {
	return Config{
		Batch:        pipeline.BatchPolicy{MaxRecords: 100_000, MaxBytes: 32 << 20, MaxWait: 50 * time.Millisecond},
		CompactParts: 16,
		QueueSize:    256,
	}
}

// Validate reports the first invalid field, named under prefix
// ("analytics.local").
func (c Config) Validate(prefix string) error {
	if err := c.Batch.Validate(prefix + ".batch"); err != nil {
		return err
	}
	switch {
	case c.CompactParts < 0:
		return fmt.Errorf("%s.compact_parts must be >= 0", prefix)
	case c.QueueSize <= 0:
		return fmt.Errorf("%s.queue_size must be > 0", prefix)
	}
	return nil
}
