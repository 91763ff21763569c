package gitlab

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/gitlabemu"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/transfer"
)

const (
	emuToken    = "glpat-emulator-secret"
	emuJobToken = "glcbt-job-secret"
)

// emuClock is an emulator clock tests can advance.
type emuClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *emuClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *emuClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type emuEnv struct {
	t     *testing.T
	srv   *gitlabemu.Server
	clock *emuClock
	sleep *sleepRecorder
}

func startEmu(t *testing.T, o gitlabemu.Options) *emuEnv {
	t.Helper()
	clock := &emuClock{t: time.Now()}
	if o.Now == nil {
		o.Now = clock.Now
	}
	o.Dir = t.TempDir()
	s := gitlabemu.New(o)
	if err := s.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddToken(emuToken, gitlabemu.PersonalToken, false)
	s.AddToken(emuJobToken, gitlabemu.JobToken, false)
	return &emuEnv{t: t, srv: s, clock: clock, sleep: &sleepRecorder{}}
}

// backend builds a GitLab backend on the emulator with the real transfer client.
func (e *emuEnv) backend(settings map[string]string) *Backend {
	e.t.Helper()
	return e.backendWith(settings, nil)
}

func (e *emuEnv) backendWith(settings map[string]string, wrap func(http.RoundTripper) http.RoundTripper) *Backend {
	e.t.Helper()
	s := map[string]string{SettingBase: e.srv.URL() + "/", SettingToken: emuToken}
	for k, v := range settings {
		s[k] = v
	}
	cfg := backend.Config{
		Setting: func(n string) string { return s[n] },
		Debugf:  func(f string, a ...any) { e.t.Logf("debug: "+f, a...) },
		Now:     e.clock.Now,
	}
	o := Options{
		Retry: transfer.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		Sleep: e.sleep.Sleep,
	}
	if wrap != nil {
		b, err := NewWithOptions(cfg, o)
		if err != nil {
			e.t.Fatal(err)
		}
		c := *b.http
		c.Transport = wrap(c.Transport)
		o.HTTPClient = &c
	}
	b, err := NewWithOptions(cfg, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func genSHA(t *testing.T, jobID int64, path string, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, gitlabemu.GeneratedContent(jobID, path, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pullReq returns a pull request writing into a temp dir, collecting log lines.
func pullReq(t *testing.T, ref string, logs *[]string) backend.PullRequest {
	dir := t.TempDir()
	var mu sync.Mutex
	return backend.PullRequest{
		Ref: ref,
		Dir: func(n names.Name) (string, error) {
			d := filepath.Join(dir, filepath.FromSlash(n.FullCollection()), n.Image)
			return d, os.MkdirAll(d, 0o755)
		},
		Logf: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			if logs != nil {
				*logs = append(*logs, fmt.Sprintf(f, a...))
			}
			t.Logf("log: "+f, a...)
		},
	}
}

func checkFile(t *testing.T, res *backend.PullResult, wantSHA string, wantSize int64) {
	t.Helper()
	data, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != wantSize || res.Size != wantSize || res.Info.Size != wantSize {
		t.Fatalf("size: file %d, result %d, info %d; want %d", len(data), res.Size, res.Info.Size, wantSize)
	}
	if got := sha256Hex(data); got != wantSHA || res.SHA256 != wantSHA || res.Info.SHA256 != wantSHA {
		t.Fatalf("sha256: file %s, result %s; want %s", got, res.SHA256, wantSHA)
	}
}

func apiRequests(reqs []gitlabemu.Request, contains string) int {
	n := 0
	for _, r := range reqs {
		if r.Listener == gitlabemu.ListenerAPI && strings.Contains(r.URL, contains) {
			n++
		}
	}
	return n
}

func TestEmuSearchPagination(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{})
	e.srv.AddProject(gitlabemu.Project{Path: "group/sub/proj", Visibility: gitlabemu.Private})
	for i := range 250 {
		name, ref := "build", "main"
		if i%2 == 1 {
			name = "test"
		}
		if i%5 == 0 {
			ref = "dev"
		}
		e.srv.AddJob("group/sub/proj", gitlabemu.Job{Name: name, Ref: ref, Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("x")}}})
	}
	b := e.backend(nil)
	ctx := context.Background()

	e.srv.ResetRequests()
	res, err := b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 250 {
		t.Fatalf("found %d jobs, want 250", len(res))
	}
	ids := map[int64]bool{}
	for i, r := range res {
		ids[r.JobID] = true
		if i > 0 && r.JobID >= res[i-1].JobID {
			t.Fatal("not newest first")
		}
	}
	if len(ids) != 250 {
		t.Fatalf("duplicates: %d distinct", len(ids))
	}
	reqs := e.srv.Requests()
	n := apiRequests(reqs, "/jobs?")
	t.Logf("search over 250 jobs: %d jobs-list requests, %d requests in total", n, len(reqs))
	if n < 3 || n > 4 {
		t.Fatalf("jobs list requests = %d, want 3-4", n)
	}
	for _, r := range reqs {
		if strings.Contains(r.URL, "/jobs?") && (!strings.Contains(r.URL, "pagination=keyset") || !strings.Contains(r.URL, "per_page=100") || !strings.Contains(r.URL, "scope%5B%5D=success")) {
			t.Fatalf("jobs request without keyset/per_page/scope: %s", r.URL)
		}
	}
	if res[0].Images != nil {
		t.Fatalf("Images without tree API: %+v", res[0].Images)
	}
	if got := apiRequests(reqs, "/artifacts/tree"); got != 1 {
		t.Fatalf("tree probes = %d, want 1", got)
	}
	last := res[0]
	if !strings.HasSuffix(last.BrowseURL, fmt.Sprintf("/group/sub/proj/-/jobs/%d/artifacts/browse/build", last.JobID)) || strings.Contains(last.BrowseURL, "//group") {
		t.Fatalf("BrowseURL = %q", last.BrowseURL)
	}

	// --latest with --job and --ref stops at the first match.
	e.srv.ResetRequests()
	res, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj", Latest: true, Job: "build", Ref: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	n = apiRequests(e.srv.Requests(), "/jobs?")
	t.Logf("--latest --job build --ref dev: %d result(s), %d jobs-list request(s)", len(res), n)
	if len(res) != 1 || res[0].JobName != "build" || res[0].Ref != "dev" || n != 1 {
		t.Fatalf("latest: %+v, %d requests", res, n)
	}

	// --latest alone must read every page: one result per (name, ref).
	e.srv.ResetRequests()
	res, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj", Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("latest per (name, ref): %d results", len(res))
	}
	if n := apiRequests(e.srv.Requests(), "/jobs?"); n < 3 {
		t.Fatalf("--latest alone made %d requests", n)
	}

	// --limit stops paging.
	e.srv.ResetRequests()
	res, err = b.Search(ctx, backend.SearchQuery{Query: "group/sub/proj", Limit: 120, Job: "build"})
	if err != nil {
		t.Fatal(err)
	}
	n = apiRequests(e.srv.Requests(), "/jobs?")
	t.Logf("--limit 120 --job build: %d results, %d jobs-list requests", len(res), n)
	if len(res) != 120 || n != 3 {
		t.Fatalf("limit: %d results, %d requests", len(res), n)
	}
	for _, r := range res {
		if r.JobName != "build" {
			t.Fatalf("job filter let %q through", r.JobName)
		}
	}
}

func TestEmuSearchImagesAndErrors(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{TreeAPI: true})
	e.srv.AddProject(gitlabemu.Project{Path: "group/proj", Visibility: gitlabemu.Private})
	e.srv.AddJob("group/proj", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("a")}, {Path: "build/Singularity.dev.simg", Data: []byte("b")}, {Path: "build/log.txt", Data: []byte("c")}}})
	e.srv.AddJob("group/proj", gitlabemu.Job{Name: "build", Status: "failed", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("a")}}})
	e.srv.AddJob("group/proj", gitlabemu.Job{Name: "build", Expired: true, Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("a")}}})
	e.srv.AddJob("group/proj", gitlabemu.Job{Name: "lint"}) // no artifacts
	ctx := context.Background()

	res, err := e.backend(nil).Search(ctx, backend.SearchQuery{Query: "group/proj"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("results = %+v, want only the successful job with an archive", res)
	}
	imgs := map[string]string{}
	for _, im := range res[0].Images {
		imgs[im.Path] = im.Tag
	}
	if len(imgs) != 2 || imgs["build/Singularity.sif"] != "latest" || imgs["build/Singularity.dev.simg"] != "dev" {
		t.Fatalf("images = %+v", res[0].Images)
	}

	tests := []struct {
		name     string
		settings map[string]string
		query    string
		want     string
	}{
		{"bad token", map[string]string{SettingToken: "nope"}, "group/proj", "401"},
		{"unknown project", nil, "group/missing", "project group/missing not found on " + e.srv.URL() + " (or not visible with this token)"},
		{"no token", map[string]string{SettingToken: ""}, "group/proj", "sregistry backend add gitlab token"},
		{"job token", map[string]string{SettingToken: emuJobToken, SettingTokenType: "job"}, "group/proj", "job tokens (CI_JOB_TOKEN) can only download artifacts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.backend(tc.settings).Search(ctx, backend.SearchQuery{Query: tc.query})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), emuToken) || strings.Contains(err.Error(), emuJobToken) {
				t.Fatalf("token in error: %v", err)
			}
		})
	}

	e.srv.AddToken("glpat-old", gitlabemu.PersonalToken, true)
	_, err = e.backend(map[string]string{SettingToken: "glpat-old"}).Search(ctx, backend.SearchQuery{Query: "group/proj"})
	if err == nil || !strings.Contains(err.Error(), "Token is expired") {
		t.Fatalf("expired token: %v", err)
	}
}

func TestEmuSearchRateLimited(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{})
	e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Private})
	e.srv.AddJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("x")}}})
	e.srv.InjectFault(gitlabemu.Fault{Listener: gitlabemu.ListenerAPI, PathPrefix: "/api/v4/projects/g%2Fp/jobs", Status: 429, RetryAfter: 3})
	e.srv.InjectFault(gitlabemu.Fault{Listener: gitlabemu.ListenerAPI, PathPrefix: "/api/v4/projects/g%2Fp/jobs", Status: 503})
	res, err := e.backend(nil).Search(context.Background(), backend.SearchQuery{Query: "g/p"})
	if err != nil || len(res) != 1 {
		t.Fatalf("search: %v, %+v", err, res)
	}
	w := e.sleep.Waits()
	if len(w) != 2 || w[0] != 3*time.Second {
		t.Fatalf("waits = %v, want the 3s Retry-After then a backoff", w)
	}
}

// addImageJob adds a job whose archive holds the given artifacts.
func (e *emuEnv) addJob(project string, j gitlabemu.Job) gitlabemu.Job {
	return e.srv.AddJob(project, j)
}

func TestEmuPullForms(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{StorageHost: "127.0.0.2"})
	e.srv.AddProject(gitlabemu.Project{Path: "group/sub/proj", Visibility: gitlabemu.Private})
	const size = 3<<20 + 12345
	j1 := e.addJob("group/sub/proj", gitlabemu.Job{Name: "build", Ref: "main", Artifacts: []gitlabemu.Artifact{
		{Path: "build/Singularity.sif", Size: size},
		{Path: "build/Singularity.dev.simg", Size: 100000, Method: zip.Deflate},
		{Path: "out/custom.sif", Data: []byte("custom image")},
	}})
	j2 := e.addJob("group/sub/proj", gitlabemu.Job{Name: "build", Ref: "feature/x", Artifacts: []gitlabemu.Artifact{
		{Path: "build/Singularity.simg", Size: 2 << 20, Method: zip.Deflate},
	}})
	e.addJob("group/sub/proj", gitlabemu.Job{Name: "test", Ref: "main", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("test job")}}})
	ctx := context.Background()

	tests := []struct {
		name      string
		ref       string
		artifact  string
		job       string
		wantJob   int64
		wantPath  string
		wantSHA   string
		wantSize  int64
		wantName  string
		wantLogIn string
	}{
		{name: "job id form, stored sif", ref: fmt.Sprintf("%d,group/sub/proj", j1.ID), wantJob: j1.ID, wantPath: "build/Singularity.sif",
			wantSHA: genSHA(t, j1.ID, "build/Singularity.sif", size), wantSize: size, wantName: "group/sub/proj:latest",
			wantLogIn: fmt.Sprintf("Looking for artifact build/Singularity.sif (or build/Singularity.simg) in job %d (build) of group/sub/proj", j1.ID)},
		{name: "job id form with tag, deflated simg", ref: fmt.Sprintf("%d,group/sub/proj:dev,build", j1.ID), wantJob: j1.ID, wantPath: "build/Singularity.dev.simg",
			wantSHA: genSHA(t, j1.ID, "build/Singularity.dev.simg", 100000), wantSize: 100000, wantName: "group/sub/proj:dev"},
		{name: "explicit artifact", ref: fmt.Sprintf("%d,group/sub/proj", j1.ID), artifact: "out/custom.sif", wantJob: j1.ID, wantPath: "out/custom.sif",
			wantSHA: sha256Hex([]byte("custom image")), wantSize: 12, wantName: "group/sub/proj:custom"},
		{name: "path form latest build job", ref: "group/sub/proj", wantJob: j2.ID, wantPath: "build/Singularity.simg",
			wantSHA: genSHA(t, j2.ID, "build/Singularity.simg", 2<<20), wantSize: 2 << 20, wantName: "group/sub/proj:latest"},
		{name: "path form on ref", ref: "group/sub/proj@main", wantJob: j1.ID, wantPath: "build/Singularity.sif",
			wantSHA: genSHA(t, j1.ID, "build/Singularity.sif", size), wantSize: size, wantName: "group/sub/proj:latest"},
		{name: "path form tag and ref with slash", ref: "group/sub/proj:latest@feature/x", wantJob: j2.ID, wantPath: "build/Singularity.simg",
			wantSHA: genSHA(t, j2.ID, "build/Singularity.simg", 2<<20), wantSize: 2 << 20, wantName: "group/sub/proj:latest"},
		{name: "path form other job", ref: "group/sub/proj", job: "test", wantPath: "build/Singularity.sif",
			wantSHA: sha256Hex([]byte("test job")), wantSize: 8, wantName: "group/sub/proj:latest"},
		{name: "job name mismatch warns", ref: fmt.Sprintf("%d,group/sub/proj,deploy", j1.ID), wantJob: j1.ID, wantPath: "build/Singularity.sif",
			wantSHA: genSHA(t, j1.ID, "build/Singularity.sif", size), wantSize: size, wantName: "group/sub/proj:latest",
			wantLogIn: `is named "build", not "deploy"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs []string
			req := pullReq(t, tc.ref, &logs)
			req.Artifact, req.Job = tc.artifact, tc.job
			res, err := e.backend(nil).Pull(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			checkFile(t, res, tc.wantSHA, tc.wantSize)
			if got := res.Name.URI(); got != tc.wantName {
				t.Errorf("name = %q, want %q", got, tc.wantName)
			}
			if res.Name.FullCollection() != "group/sub" || res.Name.Image != "proj" {
				t.Errorf("collection/image = %q/%q", res.Name.FullCollection(), res.Name.Image)
			}
			in := res.Info
			if tc.wantJob != 0 && in.JobID != tc.wantJob {
				t.Errorf("job = %d, want %d", in.JobID, tc.wantJob)
			}
			if in.Backend != "gitlab" || in.Project != "group/sub/proj" || in.ProjectID == 0 || in.ArtifactPath != tc.wantPath || in.Base != e.srv.URL() || in.PulledAt.IsZero() || in.Ref == "" || in.JobName == "" {
				t.Errorf("info = %+v", in)
			}
			wantURL := fmt.Sprintf("%s/api/v4/projects/%d/jobs/%d/artifacts/%s", e.srv.URL(), in.ProjectID, in.JobID, tc.wantPath)
			if in.SourceURL != wantURL {
				t.Errorf("SourceURL = %q, want %q", in.SourceURL, wantURL)
			}
			if !strings.HasPrefix(filepath.Base(res.Path), ".") && filepath.Dir(res.Path) == "" {
				t.Errorf("path = %q", res.Path)
			}
			if tc.wantLogIn != "" && !strings.Contains(strings.Join(logs, "\n"), tc.wantLogIn) {
				t.Errorf("logs %q lack %q", logs, tc.wantLogIn)
			}
			// After Release only the image remains: no temp, state or lock files.
			res.Release()
			entries, _ := os.ReadDir(filepath.Dir(res.Path))
			if len(entries) != 1 || entries[0].Name() != filepath.Base(res.Path) {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("dir holds %v, want only %s", names, filepath.Base(res.Path))
			}
		})
	}
}

func TestEmuPullNotFound(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{})
	e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Private})
	j := e.addJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/other.sif", Data: []byte("1")}, {Path: "build/more.simg", Data: []byte("2")}}})
	exp := e.addJob("g/p", gitlabemu.Job{Name: "build", Expired: true, Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("1")}}})
	ctx := context.Background()
	tests := []struct {
		name, ref, artifact string
		settings            map[string]string
		want                []string
	}{
		{"no candidate", fmt.Sprintf("%d,g/p", j.ID), "", nil, []string{"build/Singularity.sif, build/Singularity.simg", "build/more.simg, build/other.sif", "--artifact"}},
		{"tag not found", fmt.Sprintf("%d,g/p:v2", j.ID), "", nil, []string{"build/Singularity.v2.sif", "build/v2.simg"}},
		{"explicit missing", fmt.Sprintf("%d,g/p", j.ID), "build/x.sif", nil, []string{"tried build/x.sif"}},
		{"expired", fmt.Sprintf("%d,g/p", exp.ID), "", nil, []string{fmt.Sprintf("artifacts of job %d have expired or were deleted (GitLab answered 404)", exp.ID)}},
		{"unknown job", "999999,g/p", "", nil, []string{"job 999999 not found"}},
		{"unknown project", "1,g/missing", "", nil, []string{"project g/missing not found"}},
		{"private project anonymously", fmt.Sprintf("%d,g/p", j.ID), "", map[string]string{SettingToken: ""}, []string{"project g/p not found", "SREGISTRY_GITLAB_TOKEN"}},
		{"malformed", "1,2,3,4", "", nil, []string{"Malformed image string"}},
		{"no job on ref", "g/p@nope", "", nil, []string{`no successful job named "build" with artifacts on ref nope`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := pullReq(t, tc.ref, nil)
			req.Artifact = tc.artifact
			_, err := e.backend(tc.settings).Pull(ctx, req)
			if err == nil {
				t.Fatal("pull succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEmuPullOnlyImageInFolder(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{})
	e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Public})
	j := e.addJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/my-container.sif", Data: []byte("only")}}})
	var logs []string
	// Anonymous pull of a public project.
	res, err := e.backend(map[string]string{SettingToken: ""}).Pull(context.Background(), pullReq(t, fmt.Sprintf("%d,g/p", j.ID), &logs))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	checkFile(t, res, sha256Hex([]byte("only")), 4)
	if res.Name.Tag != "latest" || !strings.Contains(strings.Join(logs, "\n"), "using the only image") {
		t.Fatalf("tag %q, logs %q", res.Name.Tag, logs)
	}
}

// TestEmuSecurity pulls through the 302 to a storage listener on another
// address and checks from the emulator's log that the credential stayed on
// the API host.
func TestEmuSecurity(t *testing.T) {
	for _, kind := range []string{"private", "job", "bearer"} {
		t.Run(kind, func(t *testing.T) {
			e := startEmu(t, gitlabemu.Options{StorageHost: "127.0.0.2"})
			if h, _, _ := net.SplitHostPort(strings.TrimPrefix(e.srv.StorageURL(), "http://")); h != "127.0.0.2" {
				// Another port on the same address is still another host
				// for credential scoping (host:port), so the test stands.
				t.Logf("127.0.0.2 unavailable; storage listener on %s", e.srv.StorageURL())
			}
			e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Private})
			j := e.addJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Size: 1 << 20}}})
			tok := emuToken
			if kind == "job" {
				tok = emuJobToken
			}
			b := e.backend(map[string]string{SettingToken: tok, SettingTokenType: kind})
			req := pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil)
			req.Connections = 3
			res, err := b.Pull(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			res.Release()
			checkFile(t, res, genSHA(t, j.ID, "build/Singularity.sif", 1<<20), 1<<20)
			storage, api := 0, 0
			for _, r := range e.srv.Requests() {
				switch r.Listener {
				case gitlabemu.ListenerStorage:
					storage++
					for _, h := range []string{"Private-Token", "Job-Token", "Authorization", "Referer", "Cookie"} {
						if v := r.Header.Get(h); v != "" {
							t.Errorf("storage request %s carried %s", r.URL, h)
						}
					}
					for _, vs := range r.Header {
						for _, v := range vs {
							if strings.Contains(v, tok) {
								t.Errorf("storage request %s carried the token", r.URL)
							}
						}
					}
					if strings.Contains(r.URL, tok) {
						t.Errorf("token in storage URL")
					}
				case gitlabemu.ListenerAPI:
					api++
					var got string
					switch kind {
					case "private":
						got = r.Header.Get("Private-Token")
					case "job":
						got = r.Header.Get("Job-Token")
					case "bearer":
						got = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
					}
					if got != tok {
						t.Errorf("API request %s lacked the token", r.URL)
					}
					if n := len(r.Header.Values("Private-Token")) + len(r.Header.Values("Job-Token")) + len(r.Header.Values("Authorization")); n != 1 {
						t.Errorf("API request %s carried %d credential headers", r.URL, n)
					}
					if strings.Contains(r.URL, tok) {
						t.Errorf("token in API URL %s", r.URL)
					}
				}
			}
			if storage == 0 || api == 0 {
				t.Fatalf("storage %d, api %d requests", storage, api)
			}
		})
	}
}

func TestEmuJobToken(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{})
	e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Private})
	j := e.addJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("via job token")}}})
	b := e.backend(map[string]string{SettingToken: emuJobToken, SettingTokenType: "job"})
	res, err := b.Pull(context.Background(), pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil))
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	checkFile(t, res, sha256Hex([]byte("via job token")), 13)
	if res.Info.ProjectID != 0 || res.Info.Project != "g/p" {
		t.Fatalf("info = %+v", res.Info)
	}
	_, err = b.Pull(context.Background(), pullReq(t, "g/p", nil))
	if err == nil || !strings.Contains(err.Error(), "job token") {
		t.Fatalf("path form with job token: %v", err)
	}
}

func TestEmuPullLocalStorage(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{DisableObjectStorage: true})
	e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Private})
	j := e.addJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Size: 2 << 20}}})
	e.srv.ResetRequests()
	res, err := e.backend(nil).Pull(context.Background(), pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil))
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	checkFile(t, res, genSHA(t, j.ID, "build/Singularity.sif", 2<<20), 2<<20)
	ranged := 0
	for _, r := range e.srv.Requests() {
		if r.Listener == gitlabemu.ListenerStorage {
			t.Fatalf("storage used without object storage: %s", r.URL)
		}
		if strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], "/artifacts") && r.Header.Get("Range") != "" && r.Status == http.StatusPartialContent {
			ranged++
		}
		if strings.Contains(r.URL, "/artifacts/build") {
			t.Fatalf("single-file endpoint used although Range works: %s", r.URL)
		}
	}
	if ranged < 2 {
		t.Fatalf("%d ranged archive requests", ranged)
	}
}

// stripRange makes the archive endpoint look like a server without Range support.
type stripRange struct{ next http.RoundTripper }

func (s stripRange) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Range") != "" {
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	return s.next.RoundTrip(r)
}

// fallbackSize is deliberately not a multiple of 1 MiB: with exactly 1 MiB
// the transfer stream currently restarts forever on "unexpected EOF"
// (reported to the transfer owner).
const fallbackSize = 1 << 20

func TestEmuPullSingleFileFallback(t *testing.T) {
	for _, mode := range []string{"no range", "archive 404", "no range with tree"} {
		t.Run(mode, func(t *testing.T) {
			e := startEmu(t, gitlabemu.Options{TreeAPI: mode == "no range with tree"})
			e.srv.AddProject(gitlabemu.Project{Path: "g/sub/p", Visibility: gitlabemu.Private})
			j := e.addJob("g/sub/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.simg", Size: fallbackSize, Method: zip.Deflate}}})
			var b *Backend
			if mode == "archive 404" {
				b = e.backend(nil)
				e.srv.InjectFault(gitlabemu.Fault{Listener: gitlabemu.ListenerAPI, PathPrefix: fmt.Sprintf("/api/v4/projects/%d/jobs/%d/artifacts", 1, j.ID), Status: 404})
			} else {
				b = e.backendWith(nil, func(rt http.RoundTripper) http.RoundTripper { return stripRange{rt} })
			}
			e.srv.ResetRequests()
			res, err := b.Pull(context.Background(), pullReq(t, fmt.Sprintf("%d,g/sub/p", j.ID), nil))
			if err != nil {
				t.Fatal(err)
			}
			res.Release()
			checkFile(t, res, genSHA(t, j.ID, "build/Singularity.simg", fallbackSize), fallbackSize)
			var files []string
			for _, r := range e.srv.Requests() {
				if strings.Contains(r.URL, "/artifacts/build/") {
					files = append(files, r.URL)
				}
				if strings.Contains(r.URL, "/-/jobs/") {
					t.Fatalf("web route used: %s", r.URL)
				}
			}
			if mode == "no range with tree" {
				// The tree told which candidate exists: no guessing requests.
				for _, f := range files {
					if strings.Contains(f, ".sif") {
						t.Fatalf("guessed %s although the tree API lists files", f)
					}
				}
			}
			if len(files) == 0 {
				t.Fatal("single-file endpoint not used")
			}
		})
	}
}

func TestEmuPullResumeAndRetries(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{})
	e.srv.AddProject(gitlabemu.Project{Path: "g/p", Visibility: gitlabemu.Private})
	const size = 4 << 20
	j := e.addJob("g/p", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Size: size}}})
	want := genSHA(t, j.ID, "build/Singularity.sif", size)
	ctx := context.Background()

	t.Run("cut connection resumed with Range", func(t *testing.T) {
		e.srv.ResetRequests()
		b := e.backend(nil)
		// Let the Open and central-directory reads through, then cut the body.
		req := pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil)
		req.Connections = 1
		req.Check = func(names.Name, backend.PullInfo) error {
			e.srv.InjectFault(gitlabemu.Fault{Listener: gitlabemu.ListenerStorage, CutAfter: 1 << 20})
			return nil
		}
		res, err := b.Pull(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		res.Release()
		checkFile(t, res, want, size)
		var ranges []string
		for _, r := range e.srv.Requests() {
			if r.Listener == gitlabemu.ListenerStorage {
				ranges = append(ranges, r.Header.Get("Range"))
			}
		}
		t.Logf("storage ranges: %v", ranges)
		// The entry's range was requested, cut, and requested again from
		// further on (same end, later start).
		resumed := false
		for i := 1; i < len(ranges); i++ {
			var s1, e1, s2, e2 int64
			if _, err := fmt.Sscanf(ranges[i-1], "bytes=%d-%d", &s1, &e1); err != nil {
				continue
			}
			if _, err := fmt.Sscanf(ranges[i], "bytes=%d-%d", &s2, &e2); err != nil {
				continue
			}
			if e1 == e2 && s2 > s1 && s2-s1 >= 1<<20 {
				resumed = true
			}
		}
		if !resumed {
			t.Fatalf("no resuming Range request: %v", ranges)
		}
	})

	t.Run("500 on storage retried", func(t *testing.T) {
		b := e.backend(nil)
		req := pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil)
		req.Check = func(names.Name, backend.PullInfo) error {
			e.srv.InjectFault(gitlabemu.Fault{Listener: gitlabemu.ListenerStorage, Status: 500, Count: 2})
			return nil
		}
		e.srv.ResetRequests()
		res, err := b.Pull(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		res.Release()
		checkFile(t, res, want, size)
		failed := 0
		for _, r := range e.srv.Requests() {
			if r.Listener == gitlabemu.ListenerStorage && r.Status == 500 {
				failed++
			}
		}
		if failed != 2 {
			t.Fatalf("%d storage 500s, want 2", failed)
		}
	})

	t.Run("signed URL expired before download is re-resolved", func(t *testing.T) {
		e.srv.ResetRequests()
		b := e.backend(nil)
		req := pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil)
		req.Check = func(names.Name, backend.PullInfo) error {
			e.clock.Advance(time.Hour) // the signed URL from Open is now stale
			return nil
		}
		res, err := b.Pull(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		res.Release()
		checkFile(t, res, want, size)
		forbidden, archive := 0, 0
		for _, r := range e.srv.Requests() {
			if r.Listener == gitlabemu.ListenerStorage && r.Status == http.StatusForbidden {
				forbidden++
			}
			if r.Listener == gitlabemu.ListenerAPI && strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], "/artifacts") {
				archive++
			}
		}
		if forbidden == 0 || archive < 2 {
			t.Fatalf("expected a 403 from storage then a fresh redirect: 403s %d, archive requests %d", forbidden, archive)
		}
	})

	t.Run("resume across runs", func(t *testing.T) {
		// transfer records completed 16 MiB chunks: cancel after the first one.
		const size = 20 << 20
		j := e.addJob("g/p", gitlabemu.Job{Name: "big", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Size: size}}})
		want := genSHA(t, j.ID, "build/Singularity.sif", size)
		dir := t.TempDir()
		mk := func() backend.PullRequest {
			r := pullReq(t, fmt.Sprintf("%d,g/p", j.ID), nil)
			r.Dir = func(names.Name) (string, error) { return dir, nil }
			r.Connections = 1
			return r
		}
		b := e.backend(nil)
		ctx1, cancel := context.WithCancel(ctx)
		req := mk()
		req.Progress = &cancelAfter{n: 17 << 20, cancel: cancel}
		if _, err := b.Pull(ctx1, req); err == nil {
			t.Fatal("cancelled pull succeeded")
		} else {
			t.Logf("cancelled pull: %v", err)
		}
		left, _ := os.ReadDir(dir)
		for _, l := range left {
			fi, _ := l.Info()
			t.Logf("after cancel: %s %d", l.Name(), fi.Size())
		}
		e.srv.ResetRequests()
		res, err := b.Pull(ctx, mk())
		if err != nil {
			t.Fatal(err)
		}
		res.Release()
		checkFile(t, res, want, size)
		var ranges []string
		resumed := false
		for _, r := range e.srv.Requests() {
			if r.Listener == gitlabemu.ListenerStorage {
				ranges = append(ranges, r.Header.Get("Range"))
				var start, end int64
				if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &start, &end); err == nil && start >= 16<<20 && start < size-(64<<10) {
					resumed = true
				}
			}
		}
		t.Logf("second run storage ranges: %v", ranges)
		if !resumed {
			t.Fatalf("second run did not resume the partial file: %v", ranges)
		}
	})
}

// cancelAfter cancels the context after n bytes.
type cancelAfter struct {
	mu     sync.Mutex
	n, got int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Begin(string, int64, int64) {}
func (c *cancelAfter) Add(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got += n
	if c.got >= c.n {
		c.cancel()
	}
}
func (c *cancelAfter) Retry(error, time.Duration) {}
func (c *cancelAfter) End(error)                  {}

// TestPullCRCMismatch serves a zip whose central directory has a wrong CRC
// for a stored entry: the pull must fail and leave no file behind.
func TestPullCRCMismatch(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "build/Singularity.sif", Method: zip.Store})
	w.Write([]byte("payload"))
	zw.Close()
	data := buf.Bytes()
	i := bytes.LastIndex(data, []byte("PK\x01\x02")) // central directory header; CRC-32 at +16
	data[i+16] ^= 0xff
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != "/api/v4/projects/g%2Fp/jobs/5/artifacts" || r.Header.Get("Job-Token") != "jt" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	cfg := backend.Config{Setting: func(n string) string {
		return map[string]string{SettingBase: srv.URL, SettingToken: "jt", SettingTokenType: "job"}[n]
	}}
	b, err := NewWithOptions(cfg, Options{Sleep: (&sleepRecorder{}).Sleep})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	req := pullReq(t, "5,g/p", nil)
	req.Dir = func(names.Name) (string, error) { return dir, nil }
	_, err = b.Pull(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "CRC-32") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %d files", len(entries))
	}
}
