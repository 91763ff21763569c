package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "glpat-SECRET"

// testData returns n deterministic pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sums(b []byte) (string, uint32) {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), crc32.ChecksumIEEE(b)
}

// patternReader is an io.ReadSeeker over size computed bytes, so tests can
// serve hundreds of MiB without holding them in memory.
type patternReader struct {
	block []byte
	size  int64
	pos   int64
}

func newPattern(size int64) *patternReader {
	return &patternReader{block: testData(1<<20+13, 7), size: size}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.pos >= p.size {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.size-p.pos)]
	n := 0
	for n < len(b) {
		off := (p.pos + int64(n)) % int64(len(p.block))
		n += copy(b[n:], p.block[off:])
	}
	p.pos += int64(n)
	return n, nil
}

func (p *patternReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		p.pos = off
	case io.SeekCurrent:
		p.pos += off
	case io.SeekEnd:
		p.pos = p.size + off
	}
	return p.pos, nil
}

// listenOn starts an httptest server on ip (e.g. "127.0.0.2" to be a different host).
func listenOn(t testing.TB, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// reqLog records what a test server saw.
type reqLog struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (l *reqLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Clone(context.Background()))
}

func (l *reqLog) ranges() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs {
		out = append(out, r.Header.Get("Range"))
	}
	return out
}

func (l *reqLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// assertNoSecrets fails if any recorded request carried credentials or a Referer.
func (l *reqLog) assertNoSecrets(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.reqs {
		for _, h := range []string{"Private-Token", "Job-Token", "Authorization", "Cookie", "Referer"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("storage request %s got %s: %q", r.URL.Path, h, v)
			}
		}
	}
}

// cutWriter aborts the response after limit body bytes, like a dropped connection.
type cutWriter struct {
	http.ResponseWriter
	limit int64
	n     int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.limit {
		k := c.limit - c.n
		_, _ = c.ResponseWriter.Write(p[:k])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	c.n += int64(len(p))
	return c.ResponseWriter.Write(p)
}

// storage emulates S3 behind signed URLs: "?sig=ok&exp=<unix>"; past exp it
// answers 403 like an expired presigned URL. It honours Range via ServeContent.
type storage struct {
	srv     *httptest.Server
	log     reqLog
	now     func() time.Time
	content func() io.ReadSeeker
	size    int64
	// fault, when set, may return a byte limit after which the response is cut (-1: none).
	fault func(r *http.Request, n int) int64
	calls atomic.Int64
	// ignoreRange makes it answer 200 with the whole object (like GitLab's single-file endpoint).
	ignoreRange bool
}

func newStorage(t testing.TB, ip string, data []byte) *storage {
	s := &storage{now: time.Now, size: int64(len(data))}
	s.content = func() io.ReadSeeker { return bytes.NewReader(data) }
	s.srv = listenOn(t, ip, http.HandlerFunc(s.serve))
	return s
}

func (s *storage) serve(w http.ResponseWriter, r *http.Request) {
	n := int(s.calls.Add(1))
	s.log.add(r)
	if q := r.URL.Query(); q.Get("sig") != "" {
		exp, _ := strconv.ParseInt(q.Get("exp"), 10, 64)
		if q.Get("sig") != "ok" || s.now().Unix() > exp {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
			return
		}
	}
	var ww http.ResponseWriter = w
	if s.fault != nil {
		if limit := s.fault(r, n); limit >= 0 {
			ww = &cutWriter{ResponseWriter: w, limit: limit}
		}
	}
	if s.ignoreRange {
		ww.Header().Set("Content-Length", strconv.FormatInt(s.size, 10))
		ww.WriteHeader(http.StatusOK)
		_, _ = io.Copy(ww, s.content())
		return
	}
	http.ServeContent(ww, r, "artifacts.zip", time.Time{}, s.content())
}

// api emulates GitLab's artifact endpoint: it checks PRIVATE-TOKEN and
// 302s to the storage with a URL signed for 10 minutes.
type api struct {
	srv   *httptest.Server
	log   reqLog
	calls atomic.Int64
	// status, when set, answers the n-th call (1-based) with a status and body instead.
	status func(n int) (int, http.Header, string)
}

func newAPI(t testing.TB, st *storage) *api {
	a := &api{}
	a.srv = listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(a.calls.Add(1))
		a.log.add(r)
		if r.Header.Get("Private-Token") != testToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"401 Unauthorized"}`)
			return
		}
		if a.status != nil {
			if code, h, body := a.status(n); code != 0 {
				for k, v := range h {
					w.Header()[k] = v
				}
				w.WriteHeader(code)
				fmt.Fprint(w, body)
				return
			}
		}
		exp := st.now().Add(10 * time.Minute).Unix()
		http.Redirect(w, r, fmt.Sprintf("%s/bucket/artifacts.zip?sig=ok&exp=%d&X-Amz-Signature=deadbeef", st.srv.URL, exp), http.StatusFound)
	}))
	return a
}

func (a *api) url() string { return a.srv.URL + "/api/v4/projects/1/jobs/2/artifacts" }

// testDownloader returns a Downloader whose client sends the token to the
// API host only, and whose Sleep records waits instead of sleeping.
func testDownloader(t testing.TB, apiURL string) (*Downloader, *sleepLog) {
	host := strings.TrimPrefix(apiURL, "http://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	sl := &sleepLog{}
	d := &Downloader{
		Client: NewClient(ClientOptions{
			AuthHost: host, AuthScheme: "http", AuthHeader: "PRIVATE-TOKEN", AuthValue: testToken,
			IdleTimeout: 10 * time.Second,
		}),
		Retry: RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		Sleep: sl.sleep,
	}
	return d, sl
}

type sleepLog struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepLog) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepLog) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// recorder is a progress.Reporter that records events.
type recorder struct {
	mu      sync.Mutex
	total   int64
	done    int64
	added   atomic.Int64
	retries int
	ended   bool
	endErr  error
}

func (r *recorder) Begin(_ string, total, done int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total, r.done = total, done
}
func (r *recorder) Add(n int64) { r.added.Add(n) }
func (r *recorder) Retry(error, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries++
}
func (r *recorder) End(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended, r.endErr = true, err
}
