package gitlabemu

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var linkRE = regexp.MustCompile(`<([^>]+)>; rel="([a-z]+)"`)

func links(h http.Header) map[string]string {
	out := map[string]string{}
	for _, m := range linkRE.FindAllStringSubmatch(h.Get("Link"), -1) {
		out[m[2]] = m[1]
	}
	return out
}

type jobLite struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// withJobs starts a server with n jobs; every 5th failed.
func withJobs(t *testing.T, n int, o Options) *Server {
	s := start(t, o)
	s.AddProject(Project{Path: testProject})
	for i := range n {
		st := "success"
		if i%5 == 4 {
			st = "failed"
		}
		s.AddJob(testProject, Job{Name: fmt.Sprintf("job%d", i), Status: st})
	}
	return s
}

func assertNoTotals(t *testing.T, h http.Header) {
	t.Helper()
	for _, k := range []string{"X-Total", "X-Total-Pages"} {
		if _, ok := h[k]; ok {
			t.Errorf("header %s present: jobs list must not send totals", k)
		}
	}
	if _, ok := links(h)["last"]; ok {
		t.Errorf("Link has rel=last: %s", h.Get("Link"))
	}
}

func TestJobsOffsetPagination(t *testing.T) {
	s := withJobs(t, 250, Options{})
	first := s.URL() + "/api/v4/projects/" + encProject + "/jobs?per_page=100"
	for _, mode := range []string{"X-Next-Page", "Link"} {
		t.Run(mode, func(t *testing.T) {
			var ids []int64
			u := first
			pages := 0
			for u != "" {
				r := get(t, u, "PRIVATE-TOKEN", testToken)
				if r.status != 200 {
					t.Fatalf("GET %s: %d %s", u, r.status, r.body)
				}
				assertNoTotals(t, r.header)
				for _, k := range []string{"X-Next-Page", "X-Prev-Page", "X-Page", "X-Per-Page"} {
					if _, ok := r.header[k]; !ok {
						t.Errorf("page %d: header %s missing (must be present, maybe empty)", pages+1, k)
					}
				}
				for _, j := range decodeJSON[[]jobLite](t, r.body) {
					ids = append(ids, j.ID)
				}
				pages++
				if pages > 10 {
					t.Fatal("pagination does not terminate")
				}
				if mode == "Link" {
					u = links(r.header)["next"]
				} else if np := r.header.Get("X-Next-Page"); np != "" {
					u = first + "&page=" + np
				} else {
					u = ""
				}
			}
			if pages != 3 || len(ids) != 250 {
				t.Fatalf("pages=%d ids=%d, want 3 and 250", pages, len(ids))
			}
			if !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) {
				t.Error("ids not sorted descending")
			}
			if len(slices.Compact(slices.Clone(ids))) != 250 {
				t.Error("duplicate ids")
			}
		})
	}
}

func TestJobsOffsetHeaders(t *testing.T) {
	s := withJobs(t, 50, Options{})
	base := s.URL() + "/api/v4/projects/" + encProject + "/jobs"
	tests := []struct {
		name, query          string
		page, per, next, prv string
		n                    int
		rels                 []string
	}{
		{"default", "", "1", "20", "2", "", 20, []string{"next", "first"}},
		{"middle keeps params", "?page=2&per_page=20&scope[]=success", "2", "20", "", "1", 20, []string{"prev", "first"}},
		{"middle", "?page=2&per_page=10", "2", "10", "3", "1", 10, []string{"prev", "next", "first"}},
		{"last exact", "?page=5&per_page=10", "5", "10", "", "4", 10, []string{"prev", "first"}},
		{"beyond end", "?page=9&per_page=10", "9", "10", "", "", 0, []string{"first"}},
		{"capped", "?per_page=500", "1", "100", "", "", 50, []string{"first"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, base+tc.query, "PRIVATE-TOKEN", testToken)
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			got := []string{r.header.Get("X-Page"), r.header.Get("X-Per-Page"), r.header.Get("X-Next-Page"), r.header.Get("X-Prev-Page")}
			want := []string{tc.page, tc.per, tc.next, tc.prv}
			if !slices.Equal(got, want) {
				t.Errorf("X-Page/Per/Next/Prev = %q, want %q", got, want)
			}
			if n := len(decodeJSON[[]jobLite](t, r.body)); n != tc.n {
				t.Errorf("%d jobs, want %d", n, tc.n)
			}
			l := links(r.header)
			var rels []string
			for _, rel := range []string{"prev", "next", "first"} {
				if u, ok := l[rel]; ok {
					rels = append(rels, rel)
					if !strings.HasPrefix(u, s.URL()+"/api/v4/projects/"+encProject+"/jobs?") {
						t.Errorf("rel=%s URL %q not absolute with encoded path", rel, u)
					}
					if strings.Contains(tc.query, "scope") && !strings.Contains(u, "scope%5B%5D=success") {
						t.Errorf("rel=%s URL %q lost the scope param", rel, u)
					}
				}
			}
			if !slices.Equal(rels, tc.rels) {
				t.Errorf("rels %v, want %v (Link %s)", rels, tc.rels, r.header.Get("Link"))
			}
			assertNoTotals(t, r.header)
		})
	}
}

func TestJobsKeyset(t *testing.T) {
	s := withJobs(t, 250, Options{})
	u := s.URL() + "/api/v4/projects/" + encProject + "/jobs?pagination=keyset&per_page=100&order_by=id&sort=desc"
	var ids []int64
	pages := 0
	for u != "" {
		r := get(t, u, "PRIVATE-TOKEN", testToken)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", u, r.status, r.body)
		}
		assertNoTotals(t, r.header)
		for _, j := range decodeJSON[[]jobLite](t, r.body) {
			ids = append(ids, j.ID)
		}
		pages++
		if pages > 10 {
			t.Fatal("keyset pagination does not terminate")
		}
		u = links(r.header)["next"]
		if u != "" {
			pu, _ := url.Parse(u)
			if pu.Query().Get("cursor") == "" || pu.Query().Get("pagination") != "keyset" {
				t.Errorf("next link %q lacks cursor or keyset params", u)
			}
		} else if r.header.Get("Link") != "" {
			t.Errorf("last page has a Link header: %s", r.header.Get("Link"))
		}
	}
	if pages != 3 || len(ids) != 250 || len(slices.Compact(slices.Clone(ids))) != 250 {
		t.Fatalf("pages=%d ids=%d", pages, len(ids))
	}
	if !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) {
		t.Error("ids not sorted descending")
	}

	bad := []struct{ name, query, want string }{
		{"asc", "pagination=keyset&order_by=id&sort=asc", `{"error":"Keyset pagination is not yet available for this type of request"}`},
		{"order created_at", "pagination=keyset&order_by=created_at&sort=desc", `{"error":"Keyset pagination is not yet available for this type of request"}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s.URL()+"/api/v4/projects/"+encProject+"/jobs?"+tc.query, "PRIVATE-TOKEN", testToken)
			if r.status != http.StatusMethodNotAllowed || string(r.body) != tc.want {
				t.Errorf("got %d %s, want 405 %s", r.status, r.body, tc.want)
			}
		})
	}
	if r := get(t, s.URL()+"/api/v4/projects/"+encProject+"/jobs?pagination=keyset&order_by=id&sort=desc"); r.status != 401 {
		t.Errorf("anonymous keyset: %d, want 401", r.status)
	}
}

func TestJobsScopeAndParams(t *testing.T) {
	s := withJobs(t, 10, Options{}) // 2 failed, 8 success
	base := s.URL() + "/api/v4/projects/" + encProject + "/jobs?"
	tests := []struct {
		name, query string
		status      int
		n           int
		body        string
	}{
		{"scope single", "scope=success", 200, 8, ""},
		{"scope array", "scope[]=failed", 200, 2, ""},
		{"scope array two", "scope[]=failed&scope[]=success", 200, 10, ""},
		{"scope none matching", "scope[]=running", 200, 0, ""},
		{"scope invalid", "scope[]=bogus", 400, 0, `{"message":"Scope contains invalid value(s)"}`},
		{"scope one invalid", "scope[]=success&scope[]=succeeded", 400, 0, `{"message":"Scope contains invalid value(s)"}`},
		{"per_page zero", "per_page=0", 400, 0, `{"error":"per_page does not have a valid value"}`},
		{"per_page text", "per_page=x", 400, 0, `{"error":"per_page is invalid"}`},
		{"page text", "page=x", 400, 0, `{"error":"page is invalid"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, base+tc.query, "PRIVATE-TOKEN", testToken)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && string(r.body) != tc.body {
				t.Errorf("body %s, want %s", r.body, tc.body)
			}
			if tc.status == 200 {
				if n := len(decodeJSON[[]jobLite](t, r.body)); n != tc.n {
					t.Errorf("%d jobs, want %d", n, tc.n)
				}
			}
		})
	}
}

func TestJobsRateLimit(t *testing.T) {
	clock := &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := withJobs(t, 3, Options{JobsPerMinute: 2, Now: clock.Now})
	u := s.URL() + "/api/v4/projects/" + encProject + "/jobs"
	for i := range 2 {
		if r := get(t, u, "PRIVATE-TOKEN", testToken); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := get(t, u, "PRIVATE-TOKEN", testToken)
	if r.status != 429 || string(r.body) != `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}` {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	for _, k := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-ResetTime"} {
		if r.header.Get(k) == "" {
			t.Errorf("429 lacks %s", k)
		}
	}
	if r.header.Get("Retry-After") != "60" || r.header.Get("RateLimit-Limit") != "2" {
		t.Errorf("Retry-After %q RateLimit-Limit %q", r.header.Get("Retry-After"), r.header.Get("RateLimit-Limit"))
	}
	clock.Advance(61 * time.Second)
	if r := get(t, u, "PRIVATE-TOKEN", testToken); r.status != 200 {
		t.Errorf("after window: %d", r.status)
	}
}

func TestJobJSON(t *testing.T) {
	s := start(t, Options{})
	s.AddProject(Project{Path: testProject})
	j := s.AddJob(testProject, Job{Name: "build", Artifacts: []Artifact{{Path: "build/a.sif", Data: []byte("hello")}}})
	ex := s.AddJob(testProject, Job{Name: "build", Expired: true, Artifacts: []Artifact{{Path: "build/a.sif", Data: []byte("x")}}})
	none := s.AddJob(testProject, Job{Name: "lint", Status: "failed"})
	type jobFull struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		Stage     string `json:"stage"`
		Status    string `json:"status"`
		Ref       string `json:"ref"`
		Tag       *bool  `json:"tag"`
		CreatedAt string `json:"created_at"`
		WebURL    string `json:"web_url"`
		Pipeline  struct {
			ID        int64  `json:"id"`
			ProjectID int64  `json:"project_id"`
			Ref       string `json:"ref"`
			SHA       string `json:"sha"`
		} `json:"pipeline"`
		Artifacts []struct {
			FileType   string `json:"file_type"`
			Size       int64  `json:"size"`
			Filename   string `json:"filename"`
			FileFormat string `json:"file_format"`
		} `json:"artifacts"`
		ArtifactsFile *struct {
			Filename string `json:"filename"`
			Size     int64  `json:"size"`
		} `json:"artifacts_file"`
	}
	fetch := func(id int64) (jobFull, result) {
		r := get(t, fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d", s.URL(), encProject, id), "PRIVATE-TOKEN", testToken)
		if r.status != 200 {
			t.Fatalf("job %d: %d %s", id, r.status, r.body)
		}
		return decodeJSON[jobFull](t, r.body), r
	}
	got, _ := fetch(j.ID)
	zipPath, err := s.ArchivePath(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	zipSize := fileSize(t, zipPath)
	if got.Name != "build" || got.Stage != "build" || got.Status != "success" || got.Ref != "main" || got.Tag == nil || *got.Tag {
		t.Errorf("basic fields wrong: %+v", got)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(got.CreatedAt) {
		t.Errorf("created_at %q not ISO-8601 with ms", got.CreatedAt)
	}
	if want := fmt.Sprintf("%s/%s/-/jobs/%d", s.URL(), testProject, j.ID); got.WebURL != want {
		t.Errorf("web_url %q, want %q", got.WebURL, want)
	}
	if got.Pipeline.ID != j.PipelineID || got.Pipeline.ProjectID != 1 {
		t.Errorf("pipeline %+v", got.Pipeline)
	}
	if len(got.Artifacts) != 3 || got.Artifacts[0].FileType != "archive" || got.Artifacts[0].Size != zipSize ||
		got.Artifacts[0].Filename != "artifacts.zip" || got.Artifacts[0].FileFormat != "zip" ||
		got.Artifacts[1].FileType != "metadata" || got.Artifacts[2].FileType != "trace" {
		t.Errorf("artifacts %+v (zip size %d)", got.Artifacts, zipSize)
	}
	if got.ArtifactsFile == nil || got.ArtifactsFile.Size != zipSize || got.ArtifactsFile.Filename != "artifacts.zip" {
		t.Errorf("artifacts_file %+v", got.ArtifactsFile)
	}
	for _, id := range []int64{ex.ID, none.ID} {
		g, r := fetch(id)
		if len(g.Artifacts) != 1 || g.Artifacts[0].FileType != "trace" || g.ArtifactsFile != nil || strings.Contains(string(r.body), "artifacts_file") {
			t.Errorf("job %d: artifacts %+v artifacts_file %+v", id, g.Artifacts, g.ArtifactsFile)
		}
	}
	r := get(t, fmt.Sprintf("%s/api/v4/projects/%s/jobs/999999", s.URL(), encProject), "PRIVATE-TOKEN", testToken)
	if r.status != 404 || string(r.body) != `{"message":"404 Not found"}` {
		t.Errorf("absent job: %d %s", r.status, r.body)
	}
	r = get(t, fmt.Sprintf("%s/api/v4/projects/%s/jobs/abc", s.URL(), encProject), "PRIVATE-TOKEN", testToken)
	if r.status != 400 || string(r.body) != `{"error":"job_id is invalid"}` {
		t.Errorf("non-numeric job: %d %s", r.status, r.body)
	}
}
