package gitlabemu

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

const (
	testToken   = "glpat-test"
	testProject = "group/sub/proj"
	encProject  = "group%2Fsub%2Fproj"
)

// testClock is an injectable clock tests can advance.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start runs a real Server on loopback with a personal token registered.
func start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s := New(o)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddToken(testToken, PersonalToken, false)
	return s
}

// noFollow is a client that returns redirects unfollowed.
var noFollow = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// result is a fully read response.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error // error while reading the body
}

// do sends a request with headers ("K", "V", ...) and reads the whole body.
func do(t testing.TB, c *http.Client, method, url string, kv ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: rerr}
}

func get(t testing.TB, url string, kv ...string) result {
	t.Helper()
	return do(t, noFollow, http.MethodGet, url, kv...)
}

func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
