package gitlab

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestChooseArtifact(t *testing.T) {
	latest := []string{"build/Singularity.sif", "build/Singularity.simg"}
	dev := []string{"build/Singularity.dev.sif", "build/Singularity.dev.simg", "build/dev.sif", "build/dev.simg"}
	tests := []struct {
		name      string
		available []string
		explicit  string
		cands     []string
		latest    bool
		want      choice
		ok        bool
	}{
		{"sif preferred", []string{"build/Singularity.simg", "build/Singularity.sif"}, "", latest, true, choice{Path: "build/Singularity.sif"}, true},
		{"simg only", []string{"build/Singularity.simg", "README"}, "", latest, true, choice{Path: "build/Singularity.simg"}, true},
		{"zip names with ./", []string{"./build/Singularity.sif"}, "", latest, true, choice{Path: "build/Singularity.sif"}, true},
		{"tag candidates", []string{"build/dev.simg", "build/Singularity.sif"}, "", dev, false, choice{Path: "build/dev.simg"}, true},
		{"tag missing, no fallback for non-latest", []string{"build/other.sif"}, "", dev, false, choice{}, false},
		{"only image in folder for latest", []string{"build/my-image.sif", "other/x.sif"}, "", latest, true, choice{Path: "build/my-image.sif", Only: true}, true},
		{"two images in folder: ambiguous", []string{"build/a.sif", "build/b.sif"}, "", latest, true, choice{}, false},
		{"nothing", nil, "", latest, true, choice{}, false},
		{"tag matches a mixed-case file", []string{"build/Singularity.Dev.sif"}, "", dev, false, choice{Path: "build/Singularity.Dev.sif"}, true},
		{"exact case wins", []string{"build/Singularity.Dev.sif", "build/Singularity.dev.sif"}, "", dev, false, choice{Path: "build/Singularity.dev.sif"}, true},
		{"ambiguous case-insensitive match", []string{"build/Singularity.Dev.sif", "build/Singularity.DEV.sif"}, "", dev, false, choice{}, false},
		{"explicit present", []string{"out/x.sif"}, "out/x.sif", latest, true, choice{Path: "out/x.sif"}, true},
		{"explicit with leading slash", []string{"out/x.sif"}, "/out/x.sif", latest, true, choice{Path: "out/x.sif"}, true},
		{"explicit absent", []string{"build/Singularity.sif"}, "out/x.sif", latest, true, choice{Path: "out/x.sif"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := chooseArtifact(tc.available, tc.explicit, tc.cands, "build", tc.latest)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("chooseArtifact = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestImagesIn(t *testing.T) {
	got := imagesIn([]string{"b/z.simg", "a.txt", "./b/a.SIF", "b/z.simg"})
	want := []string{"b/a.SIF", "b/z.simg"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("imagesIn = %v, want %v", got, want)
	}
}

func TestNotFoundErr(t *testing.T) {
	err := notFoundErr(5, "g/p", []string{"build/Singularity.sif"}, []string{"build/x.sif"}, true)
	for _, s := range []string{"job 5", "build/Singularity.sif", "build/x.sif", "--artifact"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if err := notFoundErr(5, "g/p", []string{"a"}, nil, false); !strings.Contains(err.Error(), "18.8") {
		t.Errorf("unknown listing: %q", err)
	}
}

func TestClassify404(t *testing.T) {
	tests := map[string]int{
		"404 Not Found":         gone404,
		"404 Not found":         job404,
		"404 Project Not Found": project404,
		"404 Build Not Found":   gone404,
		"404 page not found":    entry404,
		"404 page not found\n":  entry404,
		"":                      entry404,
		"404 File Not Found":    entry404,
	}
	for in, want := range tests {
		if got := classify404(in); got != want {
			t.Errorf("classify404(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{"0", 0, true},
		{"100000", 5 * time.Minute, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		got, ok := retryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNextPageURL(t *testing.T) {
	cur := "http://127.0.0.1:1/api/v4/projects/1/jobs/2/artifacts/tree?recursive=true&per_page=100"
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"none", http.Header{}, ""},
		{"empty next page", http.Header{"X-Next-Page": {""}}, ""},
		{"x-next-page", http.Header{"X-Next-Page": {"3"}}, "http://127.0.0.1:1/api/v4/projects/1/jobs/2/artifacts/tree?page=3&per_page=100&recursive=true"},
		{"link on another host keeps ours", http.Header{"Link": {`<https://gitlab.example.com/api/v4/x?page=2&per_page=100>; rel="prev", <https://gitlab.example.com/api/v4/x?cursor=abc&per_page=100>; rel="next"`}},
			"http://127.0.0.1:1/api/v4/projects/1/jobs/2/artifacts/tree?cursor=abc&per_page=100"},
	}
	for _, tc := range tests {
		if got := nextPageURL(cur, tc.h); got != tc.want {
			t.Errorf("%s: nextPageURL = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseBase(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://gitlab.com/", "https://gitlab.com", true},
		{"https://gitlab.com", "https://gitlab.com", true},
		{"http://127.0.0.1:8080//", "http://127.0.0.1:8080", true},
		{"https://example.org/gitlab/", "https://example.org/gitlab", true},
		{"gitlab.com", "", false},
		{"ftp://gitlab.com", "", false},
		{"https://user:pw@gitlab.com", "", false},
		{"https://gitlab.com/?private_token=x", "", false},
	}
	for _, tc := range tests {
		u, err := parseBase(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseBase(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && u.String() != tc.want {
			t.Errorf("parseBase(%q) = %q, want %q", tc.in, u, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && !strings.Contains(tc.in, "pw@") {
			t.Errorf("unexpected")
		}
	}
}

func TestSearchResultURLs(t *testing.T) {
	b := newTestBackend(t, "http://127.0.0.1:9/", map[string]string{SettingFolder: "out"})
	r := b.searchResult("group/sub/proj", 42, "build", "main", nil, 10)
	if want := "http://127.0.0.1:9/group/sub/proj/-/jobs/42/artifacts/browse/out"; r.BrowseURL != want {
		t.Errorf("BrowseURL = %q, want %q", r.BrowseURL, want)
	}
	if r.PullRef != "42,group/sub/proj" {
		t.Errorf("PullRef = %q", r.PullRef)
	}
	r = b.searchResult("group/proj", 43, "test", "main", nil, 10)
	if r.PullRef != "43,group/proj,test" {
		t.Errorf("PullRef = %q", r.PullRef)
	}
}

func TestEscapeArtifactPath(t *testing.T) {
	if got := escapeArtifactPath("build dir/Singularity #1.sif"); got != "build%20dir/Singularity%20%231.sif" {
		t.Fatalf("escapeArtifactPath = %q", got)
	}
}

func TestInflate(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("singularity image "), 10000)
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	fw.Write(data)
	fw.Close()
	src := filepath.Join(dir, "c")
	if err := os.WriteFile(src, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := inflate(src, dir, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// More data than declared is refused, and leaves nothing behind.
	before, _ := os.ReadDir(dir)
	if _, err := inflate(src, dir, int64(len(data))-1); err == nil {
		t.Fatal("inflate beyond the declared size succeeded")
	}
	if after, _ := os.ReadDir(dir); len(after) != len(before) {
		t.Fatalf("inflate left files: %v -> %v", before, after)
	}
	sum := sha256.Sum256(data)
	if got.Size != int64(len(data)) || got.SHA256 != hex.EncodeToString(sum[:]) || got.CRC32 != crc32.ChecksumIEEE(data) {
		t.Fatalf("inflate = %+v", got)
	}
	// Corrupt input leaves no temp file behind.
	if err := os.WriteFile(src, []byte("not deflate at all \xff\xff\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ = os.ReadDir(dir)
	if _, err := inflate(src, dir, 1<<20); err == nil {
		t.Fatal("inflate of garbage succeeded")
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Fatalf("inflate left files: %v -> %v", before, after)
	}
}

func TestZipEntries(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.Create("build/")
	w, _ := zw.Create("./build/Singularity.sif")
	w.Write([]byte("x"))
	zw.Close()
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	m, paths := zipEntries(zr)
	if len(paths) != 1 || paths[0] != "build/Singularity.sif" || m["build/Singularity.sif"] == nil {
		t.Fatalf("zipEntries = %v", paths)
	}
}

func TestNewSettings(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]string
		wantErr  string
	}{
		{"defaults", nil, ""},
		{"bad base", map[string]string{SettingBase: "gitlab.com"}, "not an http(s) URL"},
		{"bad token type", map[string]string{SettingTokenType: "deploy"}, "unknown SREGISTRY_GITLAB_TOKEN_TYPE"},
		{"bad connections", map[string]string{SettingConnections: "zero"}, "SREGISTRY_GITLAB_CONNECTIONS"},
		{"job token", map[string]string{SettingTokenType: "job", SettingToken: "t"}, ""},
		{"bearer", map[string]string{SettingTokenType: "Bearer", SettingToken: "t"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newBackendErr(t, "", tc.settings)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	b := newTestBackend(t, "", nil)
	if b.baseStr != DefaultBase || b.job != DefaultJob || b.folder != DefaultFolder || b.connections != DefaultConnections || b.apiBase != "https://gitlab.com/api/v4" {
		t.Fatalf("defaults: %+v", b)
	}
}
