package gitlab

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
)

func countJobsRequests(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.Contains(r, "/jobs?") {
			n++
		}
	}
	return n
}

func TestSearchFake(t *testing.T) {
	tests := []struct {
		name       string
		q          backend.SearchQuery
		keysetOff  bool
		wantIDs    []int64 // nil = don't check ids, check count
		wantCount  int
		wantJobReq int
	}{
		// 250 jobs, 1/3 without archive -> 167 with archive; 3 keyset pages.
		{name: "all pages keyset", q: backend.SearchQuery{Query: "group/sub/proj"}, wantCount: 167, wantJobReq: 3},
		{name: "all pages offset fallback", q: backend.SearchQuery{Query: "/group/sub/proj/"}, keysetOff: true, wantCount: 167, wantJobReq: 4},
		{name: "limit stops early", q: backend.SearchQuery{Query: "group/sub/proj", Limit: 5}, wantIDs: []int64{250, 248, 247, 245, 244}, wantJobReq: 1},
		{name: "latest per name and ref", q: backend.SearchQuery{Query: "group/sub/proj", Latest: true}, wantIDs: []int64{250, 248, 247, 245}, wantJobReq: 3},
		{name: "latest job and ref stops at first match", q: backend.SearchQuery{Query: "group/sub/proj", Latest: true, Job: "build", Ref: "dev"}, wantIDs: []int64{247}, wantJobReq: 1},
		{name: "job filter", q: backend.SearchQuery{Query: "group/sub/proj", Job: "build", Ref: "main", Limit: 3}, wantIDs: []int64{245, 241, 233}, wantJobReq: 1},
		{name: "numeric project id", q: backend.SearchQuery{Query: "77", Limit: 1}, wantIDs: []int64{250}, wantJobReq: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := startFake(t, 250)
			f.refuseKeyset = tc.keysetOff
			b := newTestBackend(t, srv.URL, map[string]string{SettingToken: "secret-token"})
			res, err := b.Search(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantIDs != nil {
				var ids []int64
				for _, r := range res {
					ids = append(ids, r.JobID)
				}
				if len(ids) != len(tc.wantIDs) {
					t.Fatalf("ids = %v, want %v", ids, tc.wantIDs)
				}
				for i := range ids {
					if ids[i] != tc.wantIDs[i] {
						t.Fatalf("ids = %v, want %v", ids, tc.wantIDs)
					}
				}
			} else if len(res) != tc.wantCount {
				t.Fatalf("got %d results, want %d", len(res), tc.wantCount)
			}
			for i := 1; i < len(res); i++ {
				if res[i].JobID >= res[i-1].JobID {
					t.Fatalf("results not newest first at %d", i)
				}
			}
			reqs := f.Requests()
			if got := countJobsRequests(reqs); got != tc.wantJobReq {
				t.Fatalf("jobs requests = %d, want %d: %v", got, tc.wantJobReq, reqs)
			}
			if len(res) > 0 {
				r := res[0]
				if r.Project != "group/sub/proj" || r.ArtifactSize != 1000+r.JobID || r.FinishedAt.IsZero() || r.Images != nil {
					t.Fatalf("result = %+v", r)
				}
			}
		})
	}
}

func TestSearchErrors(t *testing.T) {
	f, srv := startFake(t, 3)
	ctx := context.Background()

	for _, q := range []string{"", "*", " / "} {
		b := newTestBackend(t, srv.URL, map[string]string{SettingToken: "secret-token"})
		_, err := b.Search(ctx, backend.SearchQuery{Query: q})
		if err == nil || !strings.Contains(err.Error(), "You must include a collection query, <group>/<project>") {
			t.Errorf("query %q: err = %v", q, err)
		}
	}

	b := newTestBackend(t, srv.URL, nil)
	_, err := b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj"})
	if err == nil || !strings.Contains(err.Error(), "SREGISTRY_GITLAB_TOKEN") || !strings.Contains(err.Error(), "sregistry backend add gitlab token") {
		t.Errorf("no token: err = %v", err)
	}

	b = newTestBackend(t, srv.URL, map[string]string{SettingToken: "wrong-token"})
	_, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj"})
	if err == nil || !strings.Contains(err.Error(), "GitLab rejected the token (401 Unauthorized): check SREGISTRY_GITLAB_TOKEN") {
		t.Errorf("bad token: err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("token leaked in %q", err)
	}
	if statusOf(err) != http.StatusUnauthorized {
		t.Errorf("statusOf = %d", statusOf(err))
	}

	f.inject = []injected{{status: 401, body: `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`}}
	b = newTestBackend(t, srv.URL, map[string]string{SettingToken: "secret-token"})
	_, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj"})
	if err == nil || !strings.Contains(err.Error(), "Token is expired") {
		t.Errorf("expired token: err = %v", err)
	}

	_, err = b.Search(ctx, backend.SearchQuery{Query: "group/nope"})
	if err == nil || !strings.Contains(err.Error(), "project group/nope not found on "+srv.URL+" (or not visible with this token)") {
		t.Errorf("unknown project: err = %v", err)
	}

	f.inject = []injected{{status: 403, body: `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api read_api"}`}}
	_, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj"})
	if err == nil || !strings.Contains(err.Error(), "read_api") {
		t.Errorf("scope: err = %v", err)
	}
}

func TestSearchNetworkError(t *testing.T) {
	_, srv := startFake(t, 1)
	base := srv.URL
	srv.Close()
	rec := &sleepRecorder{}
	b := newTestBackend(t, base, map[string]string{SettingToken: "secret-token"})
	b.opts.Sleep = rec.Sleep
	b.opts.Retry.MaxAttempts = 3
	_, err := b.Search(context.Background(), backend.SearchQuery{Query: "group/sub/proj"})
	host := strings.TrimPrefix(base, "http://")
	if err == nil || !strings.Contains(err.Error(), "could not reach GitLab at "+host) {
		t.Fatalf("err = %v", err)
	}
	if len(rec.Waits()) != 2 {
		t.Fatalf("waits = %v, want 2 retries", rec.Waits())
	}
}

func TestSearchRetries(t *testing.T) {
	f, srv := startFake(t, 150)
	rec := &sleepRecorder{}
	b := newTestBackend(t, srv.URL, map[string]string{SettingToken: "secret-token"})
	b.opts.Sleep = rec.Sleep
	f.inject = []injected{
		{status: 429, retryAfter: "7", body: `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}`},
		{status: 502, body: "bad gateway"},
	}
	res, err := b.Search(context.Background(), backend.SearchQuery{Query: "group/sub/proj"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 100 {
		t.Fatalf("got %d results", len(res))
	}
	w := rec.Waits()
	if len(w) != 2 || w[0] != 7*time.Second || w[1] <= 0 || w[1] > 2*defaultBaseDelay {
		t.Fatalf("waits = %v, want [7s, <=1s]", w)
	}

	// Bounded: a server that always answers 500 fails after MaxAttempts.
	b.opts.Retry.MaxAttempts = 4
	rec2 := &sleepRecorder{}
	b.opts.Sleep = rec2.Sleep
	for range 10 {
		f.inject = append(f.inject, injected{status: 500, body: `{"message":"500 Internal Server Error"}`})
	}
	_, err = b.Search(context.Background(), backend.SearchQuery{Query: "group/sub/proj"})
	if err == nil || statusOf(err) != 500 || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v", err)
	}
	if len(rec2.Waits()) != 3 {
		t.Fatalf("waits = %v, want 3", rec2.Waits())
	}

	// A cancelled context stops the waits.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}
