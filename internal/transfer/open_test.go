package transfer

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	data := testData(100_000, 1)
	tests := []struct {
		name        string
		ignoreRange bool
		empty       bool
		apiStatus   func(n int) (int, http.Header, string)
		wantSize    int64
		wantRanges  bool
		wantErr     int // HTTP status expected in the error
		wantMsg     string
		wantWaits   []time.Duration // exact waits (Retry-After), else only wantRetries is checked
		wantRetries int
		wantCalls   int64
	}{
		{name: "ranged storage", wantSize: 100_000, wantRanges: true, wantCalls: 1},
		{name: "range ignored", ignoreRange: true, wantSize: 100_000, wantCalls: 1},
		// Go's ServeContent answers 200 for an empty object (S3 answers 416: see TestOpen416).
		{name: "empty object", empty: true, wantSize: 0, wantCalls: 1},
		{
			name: "404 is permanent",
			apiStatus: func(int) (int, http.Header, string) {
				return 404, http.Header{"Content-Type": {"application/json"}}, `{"message":"404 Project Not Found"}`
			},
			wantErr: 404, wantMsg: "404 Project Not Found", wantCalls: 1,
		},
		{
			name: "500 then success",
			apiStatus: func(n int) (int, http.Header, string) {
				if n == 1 {
					return 500, nil, "oops"
				}
				return 0, nil, ""
			},
			wantSize: 100_000, wantRanges: true, wantCalls: 2, wantRetries: 1,
		},
		{
			name: "429 honours Retry-After",
			apiStatus: func(n int) (int, http.Header, string) {
				if n == 1 {
					return 429, http.Header{"Retry-After": {"1"}}, "Retry later"
				}
				return 0, nil, ""
			},
			wantSize: 100_000, wantRanges: true, wantCalls: 2, wantWaits: []time.Duration{time.Second},
		},
		{
			name: "429 rate limit JSON gives up after attempts",
			apiStatus: func(int) (int, http.Header, string) {
				return 429, http.Header{"Retry-After": {"2"}}, `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}`
			},
			wantErr: 429, wantMsg: "requested too many times", wantCalls: 4,
			wantWaits: []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second},
		},
		{
			name: "expired token",
			apiStatus: func(int) (int, http.Header, string) {
				return 401, nil, `{"error":"invalid_token","error_description":"Token is expired."}`
			},
			wantErr: 401, wantMsg: "invalid_token: Token is expired.", wantCalls: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			content := data
			if tc.empty {
				content = nil
			}
			st := newStorage(t, "127.0.0.2", content)
			st.ignoreRange = tc.ignoreRange
			a := newAPI(t, st)
			a.status = tc.apiStatus
			d, sl := testDownloader(t, a.srv.URL)
			var debug strings.Builder
			d.Debugf = func(format string, args ...any) { fmt.Fprintf(&debug, format+"\n", args...) }

			o, err := d.Open(context.Background(), Remote{URL: a.url()})
			if got := a.calls.Load(); got != tc.wantCalls {
				t.Errorf("API calls = %d, want %d", got, tc.wantCalls)
			}
			if w := sl.get(); tc.wantWaits != nil && fmt.Sprint(w) != fmt.Sprint(tc.wantWaits) {
				t.Errorf("waits = %v, want %v", w, tc.wantWaits)
			} else if tc.wantWaits == nil && len(w) != tc.wantRetries {
				t.Errorf("waits = %v, want %d", w, tc.wantRetries)
			}
			if strings.Contains(debug.String(), "sig=") || strings.Contains(debug.String(), "Signature") {
				t.Errorf("debug output leaks the signed URL:\n%s", debug.String())
			}
			st.log.assertNoSecrets(t)
			if tc.wantErr != 0 {
				if StatusOf(err) != tc.wantErr {
					t.Fatalf("err = %v, want status %d", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("err %q lacks %q", err, tc.wantMsg)
				}
				if tc.wantErr != 429 && !IsPermanent(err) {
					t.Errorf("%v should be permanent", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Size() != tc.wantSize || o.RangeSupported() != tc.wantRanges {
				t.Errorf("size %d ranges %v, want %d %v", o.Size(), o.RangeSupported(), tc.wantSize, tc.wantRanges)
			}
			if !strings.HasPrefix(o.URL(), st.srv.URL) || strings.Contains(o.URL(), "?") {
				t.Errorf("URL() = %q", o.URL())
			}
		})
	}
}

func TestOpen416(t *testing.T) {
	srv := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes */0")
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
	}))
	d, _ := testDownloader(t, srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: srv.URL + "/empty"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != 0 || !o.RangeSupported() {
		t.Errorf("size %d ranges %v", o.Size(), o.RangeSupported())
	}
	res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: t.TempDir(), ExpectedSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if res.Size != 0 || res.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("result %+v", res)
	}
}

func TestHTTPErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *HTTPError
		want string
	}{
		{"gitlab", &HTTPError{Status: 404, URL: "https://gitlab.example.com/api/v4/projects/1/jobs/2/artifacts", Message: "404 Project Not Found"},
			"GitLab answered 404 Not Found for https://gitlab.example.com/api/v4/projects/1/jobs/2/artifacts: 404 Project Not Found"},
		{"storage", &HTTPError{Status: 403, URL: "https://s3.example.com/b/o", Message: "Request has expired", storage: true},
			"object storage answered 403 Forbidden for https://s3.example.com/b/o: Request has expired"},
		{"no message", &HTTPError{Status: 502, URL: "https://x/y"}, "GitLab answered 502 Bad Gateway for https://x/y"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name, ctype, body, want string
	}{
		{"message string", "application/json", `{"message":"404 Not found"}`, "404 Not found"},
		{"message object error", "application/json", `{"message":{"error":"slow down"}}`, "slow down"},
		{"validation map", "application/json", `{"message":{"scope":["is invalid"],"name":["too long","bad"]}}`, "name too long, bad; scope is invalid"},
		{"error only", "application/json", `{"error":"404 Not Found"}`, "404 Not Found"},
		{"error and description", "application/json", `{"error":"insufficient_scope","error_description":"needs api"}`, "insufficient_scope: needs api"},
		{"plain text", "text/plain", "Retry later\n", "Retry later"},
		{"html title", "text/html", "<html><head><title>Sign in · GitLab</title></head><body>x</body></html>", "Sign in · GitLab"},
		{"html no title", "text/html", "<html><body><h1>Bad   Gateway</h1><script>var x=1;</script></body></html>", "Bad Gateway"},
		{"s3 xml", "application/xml", "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", "AccessDenied Request has expired"},
		{"empty", "", "", ""},
		{"long", "text/plain", strings.Repeat("é", 300), strings.Repeat("é", 100) + "…"},
	}
	for _, tc := range tests {
		if got := errorMessage(tc.ctype, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{"date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"capped", http.Header{"Retry-After": {"3600"}}, 5 * time.Minute},
		{"past date", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"ratelimit reset", http.Header{"Ratelimit-Reset": {fmt.Sprint(now.Add(7 * time.Second).Unix())}}, 7 * time.Second},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"none", http.Header{}, 0},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.h, now); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	for n, max := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		max *= time.Millisecond
		for range 20 {
			if got := p.backoff(n + 1); got < max/2 || got > max {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", n+1, got, max/2, max)
			}
		}
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&HTTPError{Status: 404}, true},
		{&HTTPError{Status: 403}, true},
		{&HTTPError{Status: 408}, false},
		{&HTTPError{Status: 429}, false},
		{&HTTPError{Status: 503}, false},
		{fmt.Errorf("x: %w", &HTTPError{Status: 401}), true},
		{io.ErrUnexpectedEOF, false},
		{context.Canceled, true},
		{permanent(errors.New("bad")), true},
		{nil, false},
	}
	for _, tc := range tests {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestReadAtZip lists a remote zip with archive/zip through ReadAt and checks
// that it takes only a handful of requests.
func TestReadAtZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := map[string][]byte{}
	for i := range 40 {
		name := fmt.Sprintf("build/dir%d/file%d.txt", i%5, i)
		body := testData(3000+i*101, uint64(i))
		files[name] = body
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		_, _ = w.Write(body)
	}
	big := testData(2<<20, 99)
	files["build/Singularity.sif"] = big
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "build/Singularity.sif", Method: zip.Store})
	_, _ = w.Write(big)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	st := newStorage(t, "127.0.0.2", buf.Bytes())
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(o, o.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(files) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(files))
	}
	if n := st.calls.Load(); n > 6 {
		t.Errorf("listing took %d storage requests, want <= 6 (ranges %v)", n, st.log.ranges())
	}
	// Read one small entry through the cache and check its content.
	for _, zf := range zr.File {
		if zf.Name == "build/dir1/file6.txt" {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || !bytes.Equal(got, files[zf.Name]) {
				t.Fatalf("entry content mismatch (err %v)", err)
			}
		}
	}
	// A large direct read.
	off, _ := zr.File[len(zr.File)-1].DataOffset()
	p := make([]byte, len(big))
	if _, err := o.ReadAt(p, off); err != nil || !bytes.Equal(p, big) {
		t.Fatalf("large ReadAt: err %v, equal %v", err, bytes.Equal(p, big))
	}
	// Reading past the end.
	n, err := o.ReadAt(make([]byte, 10), o.Size()-4)
	if n != 4 || err != io.EOF {
		t.Errorf("ReadAt at end: n=%d err=%v", n, err)
	}
	st.log.assertNoSecrets(t)
}

// TestReadAtReResolvesExpiredURL: the signed URL expires between reads; the
// next read goes back through the API once and succeeds.
func TestReadAtReResolvesExpiredURL(t *testing.T) {
	data := testData(300_000, 3)
	st := newStorage(t, "127.0.0.2", data)
	clock := time.Now()
	st.now = func() time.Time { return clock }
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(11 * time.Minute) // single goroutine: no race
	p := make([]byte, 1000)
	if _, err := o.ReadAt(p, 200_000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, data[200_000:201_000]) {
		t.Error("content mismatch")
	}
	if got := a.calls.Load(); got != 2 {
		t.Errorf("API calls = %d, want 2 (open + re-resolve)", got)
	}
}

func TestReadAtRangeIgnored(t *testing.T) {
	st := newStorage(t, "127.0.0.2", testData(1000, 1))
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	st.ignoreRange = true // the storage starts ignoring Range after Open
	_, err = o.ReadAt(make([]byte, 10), 500)
	if !errors.Is(err, ErrRangeIgnored) {
		t.Fatalf("err = %v, want ErrRangeIgnored", err)
	}
}
