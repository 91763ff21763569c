package gitlabemu

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestAuthOutcomes(t *testing.T) {
	s := start(t, Options{})
	s.AddToken("expired", PersonalToken, false)
	s.AddToken("expired", PersonalToken, true)
	s.AddToken("cijob", JobToken, false)
	s.AddProject(Project{Path: "pub/proj", Visibility: Public})
	s.AddProject(Project{Path: "priv/proj", Visibility: Private})
	pubJob := s.AddJob("pub/proj", Job{Artifacts: []Artifact{{Path: "a.txt", Data: []byte("a")}}})
	privJob := s.AddJob("priv/proj", Job{Artifacts: []Artifact{{Path: "a.txt", Data: []byte("a")}}})

	const (
		unauth   = `{"message":"401 Unauthorized"}`
		expired  = `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`
		notFound = `{"message":"404 Project Not Found"}`
	)
	api := s.URL() + "/api/v4/projects/"
	tests := []struct {
		name   string
		url    string
		hdr    []string
		status int
		body   string // "" = do not check
	}{
		{"public project anonymous", api + "pub%2Fproj", nil, 200, ""},
		{"private project anonymous", api + "priv%2Fproj", nil, 404, notFound},
		{"private project by id anonymous", api + "2", nil, 404, notFound},
		{"private project token", api + "priv%2Fproj", []string{"PRIVATE-TOKEN", testToken}, 200, ""},
		{"private project bearer", api + "priv%2Fproj", []string{"Authorization", "Bearer " + testToken}, 200, ""},
		{"private project query token", api + "priv%2Fproj?private_token=" + testToken, nil, 200, ""},
		{"unknown token", api + "pub%2Fproj", []string{"PRIVATE-TOKEN", "nope"}, 401, unauth},
		{"expired token", api + "pub%2Fproj", []string{"PRIVATE-TOKEN", "expired"}, 401, expired},
		{"job token ignored on project", api + "priv%2Fproj", []string{"JOB-TOKEN", "cijob"}, 404, notFound},
		{"missing project", api + "no%2Fsuch", []string{"PRIVATE-TOKEN", testToken}, 404, notFound},
		{"jobs anonymous public", api + "pub%2Fproj/jobs", nil, 401, unauth},
		{"jobs anonymous missing project", api + "no%2Fsuch/jobs", nil, 401, unauth},
		{"jobs job token", api + "pub%2Fproj/jobs", []string{"JOB-TOKEN", "cijob"}, 401, unauth},
		{"jobs expired token", api + "pub%2Fproj/jobs", []string{"PRIVATE-TOKEN", "expired"}, 401, expired},
		{"jobs token", api + "priv%2Fproj/jobs", []string{"PRIVATE-TOKEN", testToken}, 200, ""},
		{"job anonymous", fmt.Sprintf("%spub%%2Fproj/jobs/%d", api, pubJob.ID), nil, 401, unauth},
		{"artifact public anonymous", fmt.Sprintf("%spub%%2Fproj/jobs/%d/artifacts/a.txt", api, pubJob.ID), nil, 200, "a"},
		{"artifact private anonymous", fmt.Sprintf("%spriv%%2Fproj/jobs/%d/artifacts/a.txt", api, privJob.ID), nil, 404, notFound},
		{"artifact private job token", fmt.Sprintf("%spriv%%2Fproj/jobs/%d/artifacts/a.txt", api, privJob.ID), []string{"JOB-TOKEN", "cijob"}, 200, "a"},
		{"artifact private job_token query", fmt.Sprintf("%spriv%%2Fproj/jobs/%d/artifacts/a.txt?job_token=cijob", api, privJob.ID), nil, 200, "a"},
		{"artifact bad job token", fmt.Sprintf("%spriv%%2Fproj/jobs/%d/artifacts/a.txt", api, privJob.ID), []string{"JOB-TOKEN", "bad"}, 401, unauth},
		{"artifact job token as PAT", fmt.Sprintf("%spriv%%2Fproj/jobs/%d/artifacts/a.txt", api, privJob.ID), []string{"PRIVATE-TOKEN", "cijob"}, 401, unauth},
		{"job in other project", fmt.Sprintf("%spub%%2Fproj/jobs/%d", api, privJob.ID), []string{"PRIVATE-TOKEN", testToken}, 404, `{"message":"404 Not found"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, tc.url, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && string(r.body) != tc.body {
				t.Errorf("body %s, want %s", r.body, tc.body)
			}
		})
	}
}

func TestProjectAddressing(t *testing.T) {
	s := start(t, Options{})
	s.AddProject(Project{Path: "group/sub/my.proj", DefaultBranch: "develop"})
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"encoded", "/api/v4/projects/group%2Fsub%2Fmy.proj", 200, ""},
		{"encoded dot", "/api/v4/projects/group%2Fsub%2Fmy%2Eproj", 200, ""},
		{"lower-case escapes", "/api/v4/projects/group%2fsub%2fmy.proj", 200, ""},
		{"numeric", "/api/v4/projects/1", 200, ""},
		{"unencoded", "/api/v4/projects/group/sub/my.proj", 404, `{"error":"404 Not Found"}`},
		{"unknown route", "/api/v4/nothing", 404, `{"error":"404 Not Found"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s.URL()+tc.path)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && string(r.body) != tc.body {
				t.Errorf("body %s, want %s", r.body, tc.body)
			}
			if tc.status == 200 {
				p := decodeJSON[map[string]any](t, r.body)
				if p["path_with_namespace"] != "group/sub/my.proj" || p["path"] != "my.proj" || p["default_branch"] != "develop" ||
					p["visibility"] != "public" || p["web_url"] != s.URL()+"/group/sub/my.proj" || p["id"] != 1.0 {
					t.Errorf("project JSON %v", p)
				}
			}
		})
	}
}

// archiveJob adds a project and a job whose archive mixes all content sources.
func archiveJob(t *testing.T, s *Server, vis Visibility) Job {
	t.Helper()
	src := t.TempDir() + "/src.bin"
	if err := os.WriteFile(src, bytes.Repeat([]byte("file-source "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	s.AddProject(Project{Path: testProject, Visibility: vis})
	return s.AddJob(testProject, Job{Name: "build", Artifacts: []Artifact{
		{Path: "build/Singularity.sif", Size: 3<<20 + 17},
		{Path: "build/notes.txt", Data: []byte("hello notes"), Method: zip.Deflate},
		{Path: "build/deep/dir/src.bin", File: src, Method: zip.Deflate},
	}})
}

func TestArchiveRedirectToStorage(t *testing.T) {
	clock := &testClock{t: time.Now().UTC()}
	s := start(t, Options{StorageHost: "127.0.0.2", Now: clock.Now})
	j := archiveJob(t, s, Private)
	api := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, j.ID)

	r := get(t, api, "PRIVATE-TOKEN", testToken)
	if r.status != http.StatusFound {
		t.Fatalf("archive: %d %s", r.status, r.body)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Hostname() != "127.0.0.2" || !strings.HasPrefix(loc.Path, "/gitlab-artifacts/") ||
		loc.Query().Get("X-Amz-Expires") != "600" || loc.Query().Get("X-Amz-Signature") == "" || loc.Query().Get("X-Amz-Date") == "" {
		t.Fatalf("Location %s", loc)
	}
	zipPath, err := s.ArchivePath(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(zipPath)

	// HEAD is redirected too.
	if h := do(t, noFollow, http.MethodHead, api, "PRIVATE-TOKEN", testToken); h.status != http.StatusFound {
		t.Errorf("HEAD: %d", h.status)
	}
	full := get(t, loc.String())
	if full.status != 200 || !bytes.Equal(full.body, want) || full.header.Get("Content-Type") != "application/zip" ||
		full.header.Get("Accept-Ranges") != "bytes" || full.header.Get("ETag") == "" {
		t.Fatalf("storage GET: %d %v (len %d want %d)", full.status, full.header, len(full.body), len(want))
	}
	part := get(t, loc.String(), "Range", "bytes=100-")
	if part.status != http.StatusPartialContent || !bytes.Equal(part.body, want[100:]) ||
		part.header.Get("Content-Range") != fmt.Sprintf("bytes 100-%d/%d", len(want)-1, len(want)) {
		t.Fatalf("Range: %d %s", part.status, part.header.Get("Content-Range"))
	}
	if r := get(t, loc.String(), "Range", fmt.Sprintf("bytes=%d-", len(want)+10)); r.status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: %d", r.status)
	}
	ifr := get(t, loc.String(), "Range", "bytes=0-9", "If-Range", full.header.Get("ETag"))
	if ifr.status != http.StatusPartialContent {
		t.Errorf("If-Range with matching ETag: %d", ifr.status)
	}

	t.Run("Authorization header rejected", func(t *testing.T) {
		r := get(t, loc.String(), "Authorization", "Bearer "+testToken)
		if r.status != 400 || !strings.Contains(string(r.body), "<Code>InvalidArgument</Code><Message>Only one auth mechanism allowed") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("tampered signature", func(t *testing.T) {
		q := loc.Query()
		q.Set("X-Amz-Signature", strings.Repeat("0", 64))
		bad := *loc
		bad.RawQuery = q.Encode()
		r := get(t, bad.String())
		if r.status != 403 || !strings.Contains(string(r.body), "<Code>SignatureDoesNotMatch</Code>") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("no signature", func(t *testing.T) {
		bare := *loc
		bare.RawQuery = ""
		if r := get(t, bare.String()); r.status != 403 || !strings.Contains(string(r.body), "<Code>AccessDenied</Code>") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("expired", func(t *testing.T) {
		clock.Advance(11 * time.Minute)
		r := get(t, loc.String(), "Range", "bytes=100-")
		if r.status != 403 || !strings.HasPrefix(string(r.body), `<?xml version="1.0" encoding="UTF-8"?>`) ||
			!strings.Contains(string(r.body), "<Code>AccessDenied</Code><Message>Request has expired</Message>") {
			t.Errorf("%d %s", r.status, r.body)
		}
		if r.header.Get("Content-Type") != "application/xml" {
			t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
		}
		// A fresh redirect works again.
		r2 := get(t, api, "PRIVATE-TOKEN", testToken)
		if f := get(t, r2.header.Get("Location"), "Range", "bytes=100-"); f.status != 206 {
			t.Errorf("fresh URL: %d", f.status)
		}
	})
	t.Run("ArchiveURL", func(t *testing.T) {
		u, err := s.ArchiveURL(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r := get(t, u); r.status != 200 || !bytes.Equal(r.body, want) {
			t.Errorf("%d", r.status)
		}
		if _, err := s.ArchiveURL(424242); err == nil {
			t.Error("ArchiveURL of unknown job: no error")
		}
	})
}

func TestArchiveDirect(t *testing.T) {
	s := start(t, Options{DisableObjectStorage: true})
	j := archiveJob(t, s, Public)
	zipPath, _ := s.ArchivePath(j.ID)
	want, _ := os.ReadFile(zipPath)
	api := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, j.ID)
	r := get(t, api)
	if r.status != 200 || !bytes.Equal(r.body, want) {
		t.Fatalf("direct: %d len %d", r.status, len(r.body))
	}
	for k, v := range map[string]string{
		"Content-Type":        "application/octet-stream",
		"Content-Disposition": `attachment; filename="artifacts.zip"; filename*=UTF-8''artifacts.zip`,
		"Accept-Ranges":       "bytes",
	} {
		if r.header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.header.Get(k), v)
		}
	}
	p := get(t, api, "Range", "bytes=10-19")
	if p.status != 206 || !bytes.Equal(p.body, want[10:20]) {
		t.Errorf("range: %d", p.status)
	}
	if q := get(t, api, "Range", "bytes=999999999-"); q.status != 416 {
		t.Errorf("416: %d", q.status)
	}
	if h := do(t, noFollow, http.MethodHead, api); h.status != 200 || h.header.Get("Content-Length") != fmt.Sprint(len(want)) || len(h.body) != 0 {
		t.Errorf("HEAD: %d %v", h.status, h.header)
	}
}

func TestRefRoutes(t *testing.T) {
	s := start(t, Options{DisableObjectStorage: true})
	s.AddProject(Project{Path: testProject})
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(name, ref, status string, minute int, data string) Job {
		return s.AddJob(testProject, Job{Name: name, Ref: ref, Status: status, CreatedAt: base.Add(time.Duration(minute) * time.Minute),
			Artifacts: []Artifact{{Path: "out.txt", Data: []byte(data)}}})
	}
	add("build", "main", "success", 1, "old")
	add("build", "main", "success", 5, "newest")
	add("build", "main", "success", 3, "added later, created earlier")
	add("build", "main", "failed", 9, "failed")
	add("build", "feature/x", "success", 2, "feature")
	add("other", "main", "success", 10, "other")

	api := s.URL() + "/api/v4/projects/" + encProject + "/jobs/artifacts/"
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"raw latest", "main/raw/out.txt?job=build", 200, "newest"},
		{"raw encoded ref", "feature%2Fx/raw/out.txt?job=build", 200, "feature"},
		{"raw unencoded ref", "feature/x/raw/out.txt?job=build", 200, "feature"},
		{"raw other job", "main/raw/out.txt?job=other", 200, "other"},
		{"raw unknown job", "main/raw/out.txt?job=nope", 404, `{"message":"404 Not found"}`},
		{"raw unknown ref", "dev/raw/out.txt?job=build", 404, `{"message":"404 Not found"}`},
		{"raw missing entry", "main/raw/nope.txt?job=build", 404, "404 page not found\n"},
		{"download unknown job", "main/download?job=nope", 404, `{"message":"404 Not found"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, api+tc.path, "PRIVATE-TOKEN", testToken)
			if r.status != tc.status || string(r.body) != tc.body {
				t.Errorf("got %d %q, want %d %q", r.status, r.body, tc.status, tc.body)
			}
		})
	}
	r := get(t, api+"main/download?job=build")
	zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
	if r.status != 200 || err != nil {
		t.Fatalf("download: %d %v", r.status, err)
	}
	rc, _ := zr.File[0].Open()
	if got := readAll(t, rc); string(got) != "newest" {
		t.Errorf("download picked %q", got)
	}
}

func TestSingleFile(t *testing.T) {
	s := start(t, Options{})
	j := archiveJob(t, s, Public)
	ex := s.AddJob(testProject, Job{Expired: true, Artifacts: []Artifact{{Path: "a", Data: []byte("a")}}})
	noArt := s.AddJob(testProject, Job{})
	base := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts/", s.URL(), encProject, j.ID)
	sif := readAll(t, GeneratedContent(j.ID, "build/Singularity.sif", 3<<20+17))

	r := get(t, base+"build/Singularity.sif", "Range", "bytes=100-199")
	if r.status != 200 || !bytes.Equal(r.body, sif) {
		t.Fatalf("sif: %d len %d", r.status, len(r.body))
	}
	for k, v := range map[string]string{
		"Content-Length":      fmt.Sprint(len(sif)),
		"Content-Type":        "application/octet-stream",
		"Content-Disposition": `attachment; filename="Singularity.sif"`,
		"Accept-Ranges":       "",
		"Content-Range":       "",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	tests := []struct {
		name, url string
		status    int
		body      string
		ctype     string
	}{
		{"deflated text", base + "build/notes.txt", 200, "hello notes", "text/plain; charset=utf-8"},
		{"encoded segments", base + "build/%6Eotes.txt", 200, "hello notes", ""},
		{"file source", base + "build/deep/dir/src.bin", 200, strings.Repeat("file-source ", 1000), ""},
		{"missing entry", base + "build/nope.sif", 404, "404 page not found\n", "text/plain; charset=utf-8"},
		{"directory", base + "build", 404, "404 page not found\n", ""},
		{"NUL byte", base + "build/a%00b", 400, `{"message":"400 Bad request"}`, "application/json"},
		{"invalid UTF-8", base + "build/%FF", 400, `{"message":"400 Bad request"}`, ""},
		{"expired", fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts/a", s.URL(), encProject, ex.ID), 404, `{"message":"404 Not Found"}`, ""},
		{"expired archive", fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, ex.ID), 404, `{"message":"404 Not Found"}`, ""},
		{"no artifacts", fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, noArt.ID), 404, `{"message":"404 Not Found"}`, ""},
		{"tree off is a file", base + "tree", 404, "404 page not found\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, tc.url)
			if r.status != tc.status || string(r.body) != tc.body {
				t.Errorf("got %d %.80q, want %d %.80q", r.status, r.body, tc.status, tc.body)
			}
			if tc.ctype != "" && r.header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", r.header.Get("Content-Type"), tc.ctype)
			}
		})
	}
}

func TestTreeAPI(t *testing.T) {
	s := start(t, Options{TreeAPI: true})
	j := archiveJob(t, s, Public)
	u := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts/tree", s.URL(), encProject, j.ID)
	type entry struct {
		Name, Path, Type, Mode string
		Size                   *int64
	}
	tests := []struct {
		name, query string
		status      int
		paths       []string
	}{
		{"root", "", 200, []string{"build/"}},
		{"dir", "?path=build", 200, []string{"build/Singularity.sif", "build/notes.txt", "build/deep/"}},
		{"recursive", "?path=build/&recursive=true", 200, []string{"build/Singularity.sif", "build/notes.txt", "build/deep/", "build/deep/dir/", "build/deep/dir/src.bin"}},
		{"paginated", "?recursive=true&per_page=2&page=2", 200, []string{"build/notes.txt", "build/deep/"}},
		{"missing", "?path=nope", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, u+tc.query)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.status != 200 {
				return
			}
			var paths []string
			for _, e := range decodeJSON[[]entry](t, r.body) {
				paths = append(paths, e.Path)
				isDir := strings.HasSuffix(e.Path, "/")
				if isDir != (e.Type == "directory") || isDir != (e.Size == nil) || (isDir && e.Mode != "040755") || (!isDir && e.Mode != "100644") {
					t.Errorf("entry %+v inconsistent", e)
				}
			}
			if strings.Join(paths, ",") != strings.Join(tc.paths, ",") {
				t.Errorf("paths %v, want %v", paths, tc.paths)
			}
		})
	}
}

func TestZipValidity(t *testing.T) {
	s := start(t, Options{})
	j := archiveJob(t, s, Public)
	p, err := s.ArchivePath(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := map[string]uint16{
		"build/": zip.Store, "build/Singularity.sif": zip.Store, "build/notes.txt": zip.Deflate,
		"build/deep/": zip.Store, "build/deep/dir/": zip.Store, "build/deep/dir/src.bin": zip.Deflate,
	}
	if len(zr.File) != len(want) {
		t.Errorf("%d entries, want %d", len(zr.File), len(want))
	}
	for _, f := range zr.File {
		m, ok := want[f.Name]
		if !ok || f.Method != m {
			t.Errorf("entry %s method %d", f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc) // archive/zip verifies the CRC at EOF
		rc.Close()
		if err != nil || uint64(n) != f.UncompressedSize64 {
			t.Errorf("%s: %d bytes, %v", f.Name, n, err)
		}
	}
}

func TestGeneratedContentDeterministic(t *testing.T) {
	a := readAll(t, GeneratedContent(7, "build/x.sif", 1<<20))
	b := readAll(t, GeneratedContent(7, "build/x.sif", 1<<20))
	c := readAll(t, GeneratedContent(8, "build/x.sif", 1<<20))
	if len(a) != 1<<20 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("content not deterministic per (job, path)")
	}
	// Two independent servers produce the same entry for the same job id.
	var got [2][]byte
	for i := range got {
		s := start(t, Options{})
		s.AddJob(testProject, Job{ID: 7, Artifacts: []Artifact{{Path: "build/x.sif", Size: 1 << 20}}})
		got[i] = get(t, s.URL()+"/api/v4/projects/"+encProject+"/jobs/7/artifacts/build/x.sif").body
	}
	if !bytes.Equal(got[0], a) || !bytes.Equal(got[1], a) {
		t.Error("served content differs from GeneratedContent")
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	s := start(t, Options{DisableObjectStorage: true})
	j := s.AddJob(testProject, Job{Artifacts: []Artifact{{Path: "x.bin", Size: 4 << 20}}})
	u := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, j.ID)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			resp, err := http.Get(u)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				_, err = zip.NewReader(bytes.NewReader(b), int64(len(b)))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if m, _ := os.ReadDir(s.dir); len(m) != 1 {
		t.Errorf("%d files in archive dir, want 1", len(m))
	}
}

func TestWebRoutes(t *testing.T) {
	s := start(t, Options{})
	j := archiveJob(t, s, Public)
	s.AddProject(Project{Path: "secret/proj", Visibility: Private})
	pj := s.AddJob("secret/proj", Job{Artifacts: []Artifact{{Path: "build/x.txt", Data: []byte("x")}}})
	pubRaw := fmt.Sprintf("%s/%s/-/jobs/%d/artifacts/raw/build/notes.txt?inline=false", s.URL(), testProject, j.ID)
	privRaw := fmt.Sprintf("%s/secret/proj/-/jobs/%d/artifacts/raw/build/x.txt?inline=false", s.URL(), pj.ID)

	if r := get(t, pubRaw); r.status != 200 || string(r.body) != "hello notes" {
		t.Errorf("public raw: %d %q", r.status, r.body)
	}
	for _, hdr := range [][]string{nil, {"PRIVATE-TOKEN", testToken}} {
		r := get(t, privRaw, hdr...)
		if r.status != 302 || r.header.Get("Location") != s.URL()+"/users/sign_in" {
			t.Errorf("private raw (%v): %d Location %q", hdr, r.status, r.header.Get("Location"))
		}
		// Following the redirect yields an HTML 200: the trap clients must detect.
		f := do(t, http.DefaultClient, http.MethodGet, privRaw, hdr...)
		if f.status != 200 || !strings.HasPrefix(string(f.body), "<!DOCTYPE html>") || !strings.Contains(string(f.body), "Sign in · GitLab") {
			t.Errorf("followed: %d %.60q", f.status, f.body)
		}
	}
	browse := get(t, fmt.Sprintf("%s/%s/-/jobs/%d/artifacts/browse/build", s.URL(), testProject, j.ID))
	if browse.status != 200 || !strings.Contains(string(browse.body), "Singularity.sif") {
		t.Errorf("browse: %d %s", browse.status, browse.body)
	}
	if r := get(t, fmt.Sprintf("%s/%s/-/jobs/%d/artifacts/browse/nope", s.URL(), testProject, j.ID)); r.status != 404 {
		t.Errorf("browse missing: %d", r.status)
	}
	if r := get(t, fmt.Sprintf("%s/%s/-/jobs/%d/artifacts/raw/build/nope", s.URL(), testProject, j.ID)); r.status != 404 {
		t.Errorf("raw missing: %d", r.status)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, Options{DisableObjectStorage: false})
	j := archiveJob(t, s, Public)
	api := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, j.ID)

	s.InjectFault(Fault{Listener: ListenerAPI, PathPrefix: "/api/v4/projects/group/sub/proj/jobs", Status: 500, Count: 2})
	for range 2 {
		if r := get(t, api); r.status != 500 || string(r.body) != `{"message":"500 Internal Server Error"}` {
			t.Errorf("500 fault: %d %s", r.status, r.body)
		}
	}
	if r := get(t, api); r.status != 302 {
		t.Errorf("after fault: %d", r.status)
	}

	s.InjectFault(Fault{Status: 429, RetryAfter: 7})
	if r := get(t, api); r.status != 429 || r.header.Get("Retry-After") != "7" || string(r.body) != "Retry later\n" {
		t.Errorf("429 fault: %d %q %q", r.status, r.header.Get("Retry-After"), r.body)
	}

	s.InjectFault(Fault{Listener: ListenerStorage, Status: 503})
	loc := get(t, api).header.Get("Location")
	if r := get(t, loc); r.status != 503 || !strings.Contains(string(r.body), "<Code>SlowDown</Code>") {
		t.Errorf("storage 503: %d %s", r.status, r.body)
	}

	s.InjectFault(Fault{Listener: ListenerStorage, CutAfter: 1000})
	r := get(t, loc)
	if r.status != 200 || !errors.Is(r.err, io.ErrUnexpectedEOF) || len(r.body) != 1000 {
		t.Errorf("cut: status %d err %v got %d bytes", r.status, r.err, len(r.body))
	}
	// The single-file route can be cut too, and the next request is fine.
	s.InjectFault(Fault{PathPrefix: "/api/v4/projects/" + encProject + "/jobs/", CutAfter: 100 << 10})
	r = get(t, api+"/build/Singularity.sif")
	if !errors.Is(r.err, io.ErrUnexpectedEOF) || len(r.body) != 100<<10 {
		t.Errorf("cut single file: err %v got %d", r.err, len(r.body))
	}
	if r := get(t, api+"/build/Singularity.sif"); r.err != nil || len(r.body) != 3<<20+17 {
		t.Errorf("after cut: %v %d", r.err, len(r.body))
	}
}

func TestThrottle(t *testing.T) {
	s := start(t, Options{})
	j := s.AddJob(testProject, Job{Artifacts: []Artifact{{Path: "x.bin", Size: 1 << 20}}})
	u, err := s.ArchiveURL(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	_ = get(t, u) // materialise first so only the transfer is timed
	s.SetThrottle(4 << 20)
	begin := time.Now()
	r := get(t, u)
	took := time.Since(begin)
	t.Logf("1 MiB at 4 MiB/s took %v", took)
	if r.status != 200 || len(r.body) < 1<<20 {
		t.Fatalf("%d %d", r.status, len(r.body))
	}
	if took < 150*time.Millisecond || took > 3*time.Second {
		t.Errorf("throttled transfer took %v, want about 250ms", took)
	}
	s.SetThrottle(0)
	begin = time.Now()
	get(t, u)
	if d := time.Since(begin); d > time.Second {
		t.Errorf("unthrottled transfer took %v", d)
	}
}

func TestRequestLog(t *testing.T) {
	s := start(t, Options{StorageHost: "127.0.0.2"})
	j := archiveJob(t, s, Public)
	api := fmt.Sprintf("%s/api/v4/projects/%s/jobs/%d/artifacts", s.URL(), encProject, j.ID)
	s.ResetRequests()
	// Go's default client forwards custom headers (PRIVATE-TOKEN) cross-host
	// and drops Authorization: the log must show exactly that.
	r := do(t, http.DefaultClient, http.MethodGet, api, "PRIVATE-TOKEN", testToken, "Authorization", "Bearer other", "Range", "bytes=0-9")
	if r.status != 206 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	log := s.Requests()
	if len(log) != 2 {
		t.Fatalf("%d requests logged, want 2", len(log))
	}
	a, st := log[0], log[1]
	if a.Listener != ListenerAPI || a.Status != 302 || a.Header.Get("Authorization") == "" || !strings.Contains(a.URL, encProject) ||
		a.Host != strings.TrimPrefix(s.URL(), "http://") || a.Method != "GET" {
		t.Errorf("api entry %+v", a)
	}
	if st.Listener != ListenerStorage || st.Status != 206 || st.Header.Get("Private-Token") != testToken || st.Header.Get("Authorization") != "" ||
		st.Header.Get("Range") != "bytes=0-9" || !strings.HasPrefix(st.Host, "127.0.0.2:") {
		t.Errorf("storage entry %+v", st)
	}
	s.ResetRequests()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d entries after reset", n)
	}
}
