package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// NewBar returns an mpb progress bar (bytes, rate, ETA) written to w (a TTY).
// mpb writes to os.Stdout unless told otherwise, so w is always passed
// explicitly: stdout carries data. When w is not a terminal mpb renders
// nothing, so pick NewSummary for that case.
func NewBar(w io.Writer) Reporter {
	return newBar(w)
}

// bar is a Reporter drawing one mpb bar per Begin/End pair.
type bar struct {
	w     io.Writer
	extra []mpb.ContainerOption // tests force rendering to a non-TTY buffer

	mu sync.Mutex
	p  *mpb.Progress
	b  atomic.Pointer[mpb.Bar]
}

func newBar(w io.Writer, extra ...mpb.ContainerOption) *bar {
	return &bar{w: w, extra: extra}
}

// termWidth is the width of w when it is a terminal, else 80.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return min(width, 120)
		}
	}
	return 80
}

func (r *bar) Begin(name string, total, done int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishLocked(nil) // a Begin without End: close the old bar first

	opts := append([]mpb.ContainerOption{
		mpb.WithOutput(r.w),
		mpb.WithWidth(termWidth(r.w)),
		mpb.WithRefreshRate(150 * time.Millisecond),
	}, r.extra...)
	p := mpb.New(opts...)

	start := time.Now()
	rate := func(s decor.Statistics) float64 {
		secs := time.Since(start).Seconds()
		if secs <= 0 {
			return 0
		}
		return float64(s.Current-done) / secs
	}
	speed := decor.Any(func(s decor.Statistics) string {
		return fmt.Sprintf("% .1f", decor.FmtAsSpeed(decor.SizeB1024(int64(rate(s)))))
	}, decor.WCSyncSpace)

	var b *mpb.Bar
	if total < 0 {
		b = p.New(0, mpb.SpinnerStyle(),
			mpb.PrependDecorators(
				decor.Name(name, decor.WCSyncSpaceR),
				decor.Current(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
			),
			mpb.AppendDecorators(speed, decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)),
		)
	} else {
		eta := decor.Any(func(s decor.Statistics) string {
			v := rate(s)
			if v <= 0 || s.Current >= s.Total {
				return "ETA -"
			}
			left := time.Duration(float64(s.Total-s.Current) / v * float64(time.Second))
			return "ETA " + left.Round(time.Second).String()
		}, decor.WCSyncSpace)
		b = p.New(total, mpb.BarStyle(),
			mpb.PrependDecorators(
				decor.Name(name, decor.WCSyncSpaceR),
				decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			),
			mpb.AppendDecorators(
				decor.Percentage(decor.WCSyncSpace),
				speed,
				decor.OnComplete(eta, ""),
			),
		)
	}
	if done > 0 {
		b.SetCurrent(done)
	}
	r.p = p
	r.b.Store(b)
}

func (r *bar) Add(n int64) {
	if b := r.b.Load(); b != nil {
		b.IncrInt64(n)
	}
}

func (r *bar) Retry(err error, wait time.Duration) {
	r.mu.Lock()
	p := r.p
	r.mu.Unlock()
	line := fmt.Sprintf("retrying in %s: %v\n", FormatDuration(wait), err)
	if p != nil {
		// Printed above the bar; fails harmlessly once the container is done.
		if _, werr := p.Write([]byte(line)); werr == nil {
			return
		}
	}
	_, _ = io.WriteString(r.w, line)
}

func (r *bar) End(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishLocked(err)
}

// finishLocked completes (err == nil) or aborts the bar and waits until mpb
// has flushed its last frame and stopped its goroutines.
func (r *bar) finishLocked(err error) {
	b := r.b.Swap(nil)
	if b == nil || r.p == nil {
		return
	}
	if err != nil {
		b.Abort(false)
	} else {
		b.SetTotal(-1, true) // complete at the current value
	}
	r.p.Wait()
	r.p = nil
}
