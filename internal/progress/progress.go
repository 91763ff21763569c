// Package progress reports transfer progress. Transfers report to a Reporter;
// the CLI picks the renderer (TTY bar, one summary line, or nothing).
package progress

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Reporter receives transfer events. Add may be called from several goroutines.
type Reporter interface {
	// Begin announces a transfer of total bytes (-1 if unknown), done of which are already present (resume).
	Begin(name string, total, done int64)
	// Add records n more bytes transferred. n is negative when a transfer
	// that cannot resume restarts from zero and discards what it had.
	Add(n int64)
	// Retry announces a retry after err, waiting wait before it.
	Retry(err error, wait time.Duration)
	// End finishes the transfer; err is nil on success.
	End(err error)
}

// Discard returns a Reporter that ignores everything.
func Discard() Reporter { return discard{} }

type discard struct{}

func (discard) Begin(string, int64, int64) {}
func (discard) Add(int64)                  {}
func (discard) Retry(error, time.Duration) {}
func (discard) End(error)                  {}

// NewSummary returns a Reporter that prints one line to w when the transfer
// ends ("Downloaded 1.2 GiB in 3.4s (350.0 MiB/s)") and one line per retry.
// It prints nothing when the transfer fails: the caller reports errors. The
// size and rate count the bytes moved by this run, not bytes reused from an
// earlier one. now is the clock (nil means time.Now).
func NewSummary(w io.Writer, now func() time.Time) Reporter {
	if now == nil {
		now = time.Now
	}
	return &summary{w: w, now: now}
}

type summary struct {
	w     io.Writer
	now   func() time.Time
	bytes atomic.Int64

	mu    sync.Mutex
	start time.Time
	ended bool
}

func (s *summary) Begin(_ string, _, _ int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = s.now()
	s.ended = false
	s.bytes.Store(0)
}

func (s *summary) Add(n int64) { s.bytes.Add(n) }

func (s *summary) Retry(err error, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "retrying in %s: %v\n", FormatDuration(wait), err)
}

func (s *summary) End(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || err != nil {
		s.ended = true
		return
	}
	s.ended = true
	if s.start.IsZero() {
		s.start = s.now()
	}
	d := s.now().Sub(s.start)
	n := s.bytes.Load()
	secs := max(d, time.Millisecond).Seconds()
	fmt.Fprintf(s.w, "Downloaded %s in %s (%s/s)\n", FormatBytes(n), FormatDuration(d), FormatBytes(int64(float64(n)/secs)))
}

// FormatBytes renders n as "512 B", "1.5 KiB", "12.0 MiB", "1.2 GiB" (binary
// units, one decimal).
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for (v >= unit || v <= -unit) && i < len(units)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// FormatDuration renders d rounded for humans: "340ms", "3.4s", "1m2.3s".
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
