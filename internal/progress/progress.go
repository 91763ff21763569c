// Package progress reports transfer progress. Transfers report to a Reporter;
// the CLI picks the renderer (TTY bar, one summary line, or nothing).
package progress

import (
	"io"
	"time"
)

// Reporter receives transfer events. Add may be called from several goroutines.
type Reporter interface {
	// Begin announces a transfer of total bytes (-1 if unknown), done of which are already present (resume).
	Begin(name string, total, done int64)
	// Add records n more bytes transferred.
	Add(n int64)
	// Retry announces a retry after err, waiting wait before it.
	Retry(err error, wait time.Duration)
	// End finishes the transfer; err is nil on success.
	End(err error)
}

// Discard returns a Reporter that ignores everything.
func Discard() Reporter { panic("unimplemented") }

// NewBar returns an mpb progress bar (bytes, rate, ETA) written to w (a TTY).
func NewBar(w io.Writer) Reporter { panic("unimplemented") }

// NewSummary returns a Reporter that prints one line to w when the transfer
// ends ("Downloaded 1.2 GiB in 3.4s (350 MiB/s)") and one line per retry.
func NewSummary(w io.Writer, now func() time.Time) Reporter { panic("unimplemented") }
