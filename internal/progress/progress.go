// Package progress draws the progress bars of streamrec's long jobs
// (producing traffic, seeding a catalog, re-embedding), all alike.
package progress

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// New returns a bar of max steps on w, counting in unit, redrawn at most
// every 100 ms; invisible if w is nil.
func New(w io.Writer, max int64, desc, unit string) *progressbar.ProgressBar {
	if w == nil {
		return progressbar.NewOptions64(max, progressbar.OptionSetVisibility(false))
	}
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
	)
}
