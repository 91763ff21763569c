package progress

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"
)

// fakeClock returns a now func that advances by step on each call.
func fakeClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		cur := t
		t = t.Add(step)
		return cur
	}
}

func TestSummary(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		step  time.Duration
		adds  []int64
		retry bool
		err   error
		want  string
	}{
		{
			name: "gib",
			step: 3400 * time.Millisecond,
			adds: []int64{1 << 30, 1 << 29},
			want: "Downloaded 1.5 GiB in 3.4s (451.8 MiB/s)\n",
		},
		{
			name: "small",
			step: 250 * time.Millisecond,
			adds: []int64{100},
			want: "Downloaded 100 B in 250ms (400 B/s)\n",
		},
		{
			name:  "retry then success",
			step:  2 * time.Second,
			adds:  []int64{10 << 20, -10 << 20, 20 << 20},
			retry: true,
			want:  "retrying in 1.5s: connection reset\nDownloaded 20.0 MiB in 2s (10.0 MiB/s)\n",
		},
		{
			name: "error prints nothing",
			step: time.Second,
			adds: []int64{5},
			err:  errors.New("boom"),
			want: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := NewSummary(&buf, fakeClock(t0, tc.step))
			r.Begin("x.sif", 1<<31, 0)
			for _, n := range tc.adds {
				r.Add(n)
			}
			if tc.retry {
				r.Retry(errors.New("connection reset"), 1500*time.Millisecond)
			}
			r.End(tc.err)
			r.End(tc.err) // idempotent
			if got := buf.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{350 << 20, "350.0 MiB"},
		{1288490189, "1.2 GiB"},
		{5 << 40, "5.0 TiB"},
	}
	for _, tc := range tests {
		if got := FormatBytes(tc.n); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestDiscard(t *testing.T) {
	r := Discard()
	r.Begin("x", 10, 0)
	r.Add(5)
	r.Retry(errors.New("x"), time.Second)
	r.End(nil)
}

// captureStdout redirects os.Stdout to a pipe while fn runs and returns what was written.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = wr
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(rd)
		done <- string(b)
	}()
	defer func() {
		os.Stdout = old
	}()
	fn()
	os.Stdout = old
	_ = wr.Close()
	out := <-done
	_ = rd.Close()
	return out
}

func TestBar(t *testing.T) {
	tests := []struct {
		name       string
		total      int64
		done       int64
		err        error
		fromOther  bool
		wantOutput bool
	}{
		{name: "known total success", total: 1 << 20, wantOutput: true},
		{name: "resume", total: 1 << 20, done: 1 << 19, wantOutput: true},
		{name: "unknown total", total: -1, wantOutput: true},
		{name: "error aborts", total: 1 << 20, err: errors.New("cut"), wantOutput: true},
		{name: "end from another goroutine", total: 1 << 20, fromOther: true, wantOutput: true},
		{name: "unknown total error from other goroutine", total: -1, err: errors.New("cut"), fromOther: true, wantOutput: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			out := captureStdout(t, func() {
				// Force rendering although buf is not a TTY, as on a terminal.
				r := newBar(&buf, mpb.WithAutoRefresh())
				r.Begin("img.sif", tc.total, tc.done)
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for range 16 {
							r.Add(4 << 10)
						}
					})
				}
				wg.Wait()
				r.Retry(errors.New("reset"), time.Second)
				end := func() { r.End(tc.err) }
				finished := make(chan struct{})
				if tc.fromOther {
					go func() { end(); close(finished) }()
				} else {
					end()
					close(finished)
				}
				select {
				case <-finished:
				case <-time.After(10 * time.Second):
					t.Fatal("End did not return")
				}
				r.Add(1) // after End: ignored, no panic
				r.End(nil)
			})
			if out != "" {
				t.Errorf("bar wrote %q to stdout", out)
			}
			if tc.wantOutput && buf.Len() == 0 {
				t.Error("bar wrote nothing to its writer")
			}
			if !strings.Contains(buf.String(), "img.sif") {
				t.Errorf("output lacks the name: %q", buf.String())
			}
		})
	}
}

func TestNewBarNonTTYWritesNothingToStdout(t *testing.T) {
	var buf bytes.Buffer
	out := captureStdout(t, func() {
		r := NewBar(&buf)
		r.Begin("a", 10, 0)
		r.Add(10)
		r.End(nil)
	})
	if out != "" {
		t.Errorf("stdout got %q", out)
	}
}
