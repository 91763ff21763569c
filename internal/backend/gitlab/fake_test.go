package gitlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
)

// tokenTransport adds PRIVATE-TOKEN for one host only (a stand-in for the
// transfer client in tests that must not depend on it).
type tokenTransport struct {
	host, token string
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.token != "" && r.URL.Host == t.host {
		r = r.Clone(r.Context())
		r.Header.Set("PRIVATE-TOKEN", t.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// sleepRecorder is an instant Options.Sleep that records the waits.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func newBackendErr(t *testing.T, base string, settings map[string]string) (*Backend, error) {
	t.Helper()
	if settings == nil {
		settings = map[string]string{}
	}
	if base != "" {
		settings[SettingBase] = base
	}
	host := ""
	if u, err := url.Parse(settings[SettingBase]); err == nil {
		host = u.Host
	}
	cfg := backend.Config{
		Setting: func(n string) string { return settings[n] },
		Debugf:  func(f string, a ...any) { t.Logf("debug: "+f, a...) },
	}
	return NewWithOptions(cfg, Options{
		HTTPClient: &http.Client{Transport: tokenTransport{host: host, token: settings[SettingToken]}},
		Sleep:      (&sleepRecorder{}).Sleep,
	})
}

func newTestBackend(t *testing.T, base string, settings map[string]string) *Backend {
	t.Helper()
	b, err := newBackendErr(t, base, settings)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeJob is a job of the fake GitLab.
type fakeJob struct {
	ID      int64
	Name    string
	Ref     string
	Archive bool
}

// fakeGitLab serves GET /api/v4/projects/:id/jobs with keyset or offset
// pagination like GitLab (no totals), plus injected answers.
type fakeGitLab struct {
	mu           sync.Mutex
	token        string
	project      string // path
	projectID    int64
	jobs         []fakeJob // newest (highest id) first
	refuseKeyset bool
	inject       []injected // answered before serving, in order
	requests     []string
}

type injected struct {
	status     int
	retryAfter string
	body       string
}

func (f *fakeGitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL.RequestURI())
	w.Header().Set("Content-Type", "application/json")
	if len(f.inject) > 0 {
		in := f.inject[0]
		f.inject = f.inject[1:]
		if in.retryAfter != "" {
			w.Header().Set("Retry-After", in.retryAfter)
		}
		w.WriteHeader(in.status)
		fmt.Fprint(w, in.body)
		return
	}
	if r.Header.Get("PRIVATE-TOKEN") != f.token {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"401 Unauthorized"}`)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v4/projects/")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"404 Not Found"}`)
		return
	}
	id, tail, _ := strings.Cut(rest, "/")
	id, _ = url.PathUnescape(id)
	if id != f.project && id != strconv.FormatInt(f.projectID, 10) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"404 Project Not Found"}`)
		return
	}
	if tail == "" {
		json.NewEncoder(w).Encode(map[string]any{"id": f.projectID, "path_with_namespace": f.project})
		return
	}
	if tail != "jobs" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"404 Not Found"}`)
		return
	}
	q := r.URL.Query()
	if q.Get("scope[]") != "success" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"message":"missing scope"}`)
		return
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 || per > 100 {
		per = 20
	}
	self := "http://" + r.Host + r.URL.Path
	var page []fakeJob
	if q.Get("pagination") == "keyset" {
		if f.refuseKeyset {
			w.WriteHeader(http.StatusMethodNotAllowed)
			fmt.Fprint(w, `{"error":"Keyset pagination is not yet available for this type of request"}`)
			return
		}
		start := 0
		if c := q.Get("cursor"); c != "" {
			after, _ := strconv.ParseInt(c, 10, 64)
			for start < len(f.jobs) && f.jobs[start].ID >= after {
				start++
			}
		}
		end := min(start+per, len(f.jobs))
		page = f.jobs[start:end]
		if end < len(f.jobs) {
			nq := url.Values{"pagination": {"keyset"}, "per_page": {strconv.Itoa(per)}, "order_by": {"id"}, "sort": {"desc"}, "scope[]": {"success"}, "cursor": {strconv.FormatInt(page[len(page)-1].ID, 10)}}
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, self, nq.Encode()))
		}
	} else {
		p, _ := strconv.Atoi(q.Get("page"))
		if p <= 0 {
			p = 1
		}
		start := min((p-1)*per, len(f.jobs))
		end := min(start+per, len(f.jobs))
		page = f.jobs[start:end]
		w.Header().Set("X-Page", strconv.Itoa(p))
		next := ""
		if end < len(f.jobs) {
			next = strconv.Itoa(p + 1)
		}
		w.Header().Set("X-Next-Page", next)
	}
	out := make([]map[string]any, 0, len(page))
	for _, j := range page {
		arts := []map[string]any{{"file_type": "trace", "filename": "job.log", "size": 10, "file_format": "raw"}}
		if j.Archive {
			arts = append(arts, map[string]any{"file_type": "archive", "filename": "custom.zip", "size": 1000 + j.ID, "file_format": "zip"})
		}
		out = append(out, map[string]any{
			"id": j.ID, "name": j.Name, "ref": j.Ref, "status": "success",
			"finished_at": "2025-01-02T03:04:05.000Z", "artifacts": arts,
		})
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeGitLab) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// startFake starts a fake GitLab with n jobs (ids n..1), alternating names
// build/test and refs main/dev; every third job has no archive.
func startFake(t *testing.T, n int) (*fakeGitLab, *httptest.Server) {
	t.Helper()
	f := &fakeGitLab{token: "secret-token", project: "group/sub/proj", projectID: 77}
	for i := n; i >= 1; i-- {
		name := "build"
		if i%2 == 0 {
			name = "test"
		}
		ref := "main"
		if i%4 >= 2 {
			ref = "dev"
		}
		f.jobs = append(f.jobs, fakeJob{ID: int64(i), Name: name, Ref: ref, Archive: i%3 != 0})
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}
