package gitlabemu

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// wrap records every request in the log, then either answers an injected
// fault or runs next (with a connection-cutting writer for CutAfter faults).
func (s *Server) wrap(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &Request{
			Time:     s.now(),
			Listener: listener,
			Host:     r.Host,
			Method:   r.Method,
			URL:      r.URL.RequestURI(),
			Header:   r.Header.Clone(),
		}
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, s: s, rec: rec}
		defer sw.finish()

		f := s.takeFault(listener, r)
		switch {
		case f == nil:
			next.ServeHTTP(sw, r)
		case f.Status != 0:
			s.writeFault(sw, listener, f)
		default:
			next.ServeHTTP(&cutWriter{ResponseWriter: sw, left: f.CutAfter}, r)
		}
	})
}

// takeFault pops one use of the first queued fault matching the request.
func (s *Server) takeFault(listener string, r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Listener != "" && f.Listener != listener {
			continue
		}
		if f.PathPrefix != "" && !strings.HasPrefix(r.URL.EscapedPath(), f.PathPrefix) && !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

// writeFault answers an injected status: 429 like Rack::Attack (plain text
// "Retry later" with Retry-After), others as GitLab JSON on the API listener
// and S3 XML on the storage listener.
func (s *Server) writeFault(w http.ResponseWriter, listener string, f *Fault) {
	if f.Status == http.StatusTooManyRequests {
		ra := f.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte("Retry later\n"))
		return
	}
	if listener == ListenerStorage {
		code, msg := "InternalError", "We encountered an internal error. Please try again."
		if f.Status == http.StatusServiceUnavailable {
			code, msg = "SlowDown", "Please reduce your request rate."
		}
		writeS3Error(w, f.Status, code, msg, "")
		return
	}
	writeJSON(w, f.Status, map[string]string{"message": fmt.Sprintf("%d %s", f.Status, http.StatusText(f.Status))})
}

// statusWriter records the final status into the log entry as soon as the
// header is written, so the log is complete by the time a client sees the
// response.
type statusWriter struct {
	http.ResponseWriter
	s     *Server
	rec   *Request
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.setStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.setStatus(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) setStatus(code int) {
	w.wrote = true
	w.s.mu.Lock()
	w.rec.Status = code
	w.s.mu.Unlock()
}

func (w *statusWriter) finish() {
	if !w.wrote {
		w.setStatus(http.StatusOK)
	}
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var errCut = errors.New("gitlabemu: connection cut by injected fault")

// cutWriter passes through left body bytes, then flushes what was written
// and closes the TCP connection without finishing the response.
type cutWriter struct {
	http.ResponseWriter
	left int64
	cut  bool
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if w.cut {
		return 0, errCut
	}
	n := 0
	if int64(len(p)) <= w.left {
		n, err := w.ResponseWriter.Write(p)
		w.left -= int64(n)
		return n, err
	}
	if w.left > 0 {
		var err error
		n, err = w.ResponseWriter.Write(p[:w.left])
		w.left -= int64(n)
		if err != nil {
			return n, err
		}
	}
	w.doCut()
	return n, errCut
}

func (w *cutWriter) doCut() {
	w.cut = true
	rc := http.NewResponseController(w.ResponseWriter)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// throttleWriter caps the body rate at rate bytes/s: it writes in small
// chunks and sleeps until the wall clock catches up with the bytes sent.
type throttleWriter struct {
	http.ResponseWriter
	rate    int64
	start   time.Time
	written int64
}

func newThrottleWriter(w http.ResponseWriter, rate int64) *throttleWriter {
	return &throttleWriter{ResponseWriter: w, rate: rate, start: time.Now()}
}

func (w *throttleWriter) Write(p []byte) (int, error) {
	chunk := min(int64(64<<10), max(w.rate/20, 1024))
	total := 0
	for len(p) > 0 {
		c := min(int64(len(p)), chunk)
		n, err := w.ResponseWriter.Write(p[:c])
		total += n
		w.written += int64(n)
		if err != nil {
			return total, err
		}
		p = p[c:]
		due := w.start.Add(time.Duration(float64(w.written) / float64(w.rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return total, nil
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *throttleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
