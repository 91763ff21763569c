package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/names"
)

type fixture struct {
	store *Store
	cat   *catalog.Catalog
	base  string // temp dir holding root, db and sources
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	cat, err := catalog.Open(context.Background(), filepath.Join(base, "sregistry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	s, err := New(filepath.Join(base, "shub"), cat)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) }
	if err := os.MkdirAll(filepath.Join(base, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, cat: cat, base: base}
}

// src writes a source file and returns its path and sha256.
func (f *fixture) src(t *testing.T, name, content string) (string, string) {
	t.Helper()
	p := filepath.Join(f.base, "src", name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return p, hex.EncodeToString(sum[:])
}

func (f *fixture) rows(t *testing.T) []catalog.Container {
	t.Helper()
	all, err := f.cat.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func mustParse(t *testing.T, s string) names.Name {
	t.Helper()
	n, err := names.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// files lists the regular files under dir (relative, sorted).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestPathFor(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, in, version, want string
	}{
		{"gitlab job form", "122059246,singularityhub/gitlab-ci", "abc", "122059246,singularityhub/gitlab-ci/latest@abc.sif"},
		{"nested group", "group/sub/proj:dev", "", "group/sub/proj/dev.sif"},
		{"registry", "localhost:5000/foo", "v1", "localhost:5000/library/foo/latest@v1.sif"},
		{"default collection", "ubuntu", "", "library/ubuntu/latest.sif"},
		{"registry and nested", "docker.io/a/b/c:t", "", "docker.io/a/b/c/t.sif"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustParse(t, tt.in)
			if tt.version != "" {
				n = n.WithVersion(tt.version)
			}
			got, err := f.store.PathFor(n)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(f.store.Root, filepath.FromSlash(tt.want)); got != want {
				t.Errorf("PathFor(%s) = %s, want %s", tt.in, got, want)
			}
			if fi, err := os.Stat(filepath.Dir(got)); err != nil || !fi.IsDir() {
				t.Errorf("directory not created: %v", err)
			}
		})
	}
}

func TestEscapesRejectedBeforeDisk(t *testing.T) {
	f := newFixture(t)
	srcPath, _ := f.src(t, "img.sif", "data")
	tests := []struct {
		name string
		n    names.Name
		want error
	}{
		{"dot dot collection", names.Name{Collection: "../x", Image: "i", Tag: "t"}, ErrOutsideRoot},
		{"deep escape", names.Name{Collection: "../../../etc", Image: "i", Tag: "t"}, ErrOutsideRoot},
		{"dot dot image", names.Name{Collection: "c", Image: "..", Tag: "t"}, names.ErrInvalid},
		{"absolute collection", names.Name{Collection: "/etc", Image: "i", Tag: "t"}, names.ErrInvalid},
		{"NUL", names.Name{Collection: "c", Image: "a\x00b", Tag: "t"}, names.ErrInvalid},
		{"tag with path", names.Name{Collection: "c", Image: "i", Tag: "../../t"}, names.ErrInvalid},
		{"version with path", names.Name{Collection: "c", Image: "i", Tag: "t", Version: "../../v"}, names.ErrInvalid},
		{"registry dot dot", names.Name{Registry: "..", Collection: "c", Image: "i", Tag: "t"}, ErrOutsideRoot},
		{"empty", names.Name{}, names.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.store.PathFor(tt.n); !errors.Is(err, tt.want) {
				t.Errorf("PathFor: %v, want %v", err, tt.want)
			}
			if _, _, err := f.store.Add(context.Background(), srcPath, tt.n, AddOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("Add: %v, want %v", err, tt.want)
			}
			if !exists(srcPath) {
				t.Fatal("source removed")
			}
			if exists(f.store.Root) {
				t.Errorf("storage root created for an invalid name: %v", files(t, f.store.Root))
			}
			entries, _ := os.ReadDir(f.base)
			for _, e := range entries {
				if n := e.Name(); n != "src" && !strings.HasPrefix(n, "sregistry.db") {
					t.Errorf("unexpected %s next to the root", n)
				}
			}
		})
	}
	for _, s := range []string{"../x", "/etc/passwd", "a/\x00b", `a\..\b`} {
		if _, err := names.Parse(s); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestSymlinkEscapeRefused(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(f.store.Root, "inner", "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.store.Root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.store.Root, "inner"), filepath.Join(f.store.Root, "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.store.Root, "inner", "real", "img")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"collection links outside", "evil/img", false},
		{"nested under an outside link", "evil/sub/img", false},
		{"image dir links outside", "inner/real/img", false},
		{"link inside the root", "alias/other", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.store.Dir(mustParse(t, tt.in))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrOutsideRoot) {
				t.Fatalf("Dir(%s) = %v, want ErrOutsideRoot", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q does not name %s", err, tt.in)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("created %v outside the root", entries)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name     string
		uri      string
		content  string
		opts     AddOptions
		wantFile string // relative to root; %s is the sha
		srcKept  bool
	}{
		{"copy", "me/hello:one", "hello", AddOptions{Copy: true}, "me/hello/one@%s.sif", true},
		{"move", "me/hello:two", "hello2", AddOptions{}, "me/hello/two@%s.sif", false},
		{"nested group", "group/sub/proj", "proj", AddOptions{Copy: true, Client: "gitlab"}, "group/sub/proj/latest@%s.sif", true},
		{"job form", "122059246,singularityhub/gitlab-ci", "ci", AddOptions{}, "122059246,singularityhub/gitlab-ci/latest@%s.sif", false},
		{"user version", "me/v:t@MyVer", "v", AddOptions{}, "me/v/t@myver.sif", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			src, sum := f.src(t, "in.simg", tt.content)
			n := mustParse(t, tt.uri)
			ct, isNew, err := f.store.Add(context.Background(), src, n, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			version := sum
			if n.Version != "" {
				version = n.Version
			}
			want := filepath.Join(f.store.Root, filepath.FromSlash(strings.ReplaceAll(tt.wantFile, "%s", sum)))
			if !isNew || ct.Image != want || ct.Version != version {
				t.Errorf("row = %+v new=%v, want image %s version %s", ct, isNew, want, version)
			}
			if b, err := os.ReadFile(want); err != nil || string(b) != tt.content {
				t.Errorf("stored file: %q, %v", b, err)
			}
			if fi, err := os.Stat(want); err == nil && !tt.srcKept && fi.Mode().Perm() != 0o600 {
				// A moved file keeps the user's mode (it is the same inode).
				t.Errorf("moved file mode %v", fi.Mode())
			}
			if exists(src) != tt.srcKept {
				t.Errorf("source exists = %v, want %v", exists(src), tt.srcKept)
			}
			if got := files(t, f.store.Root); len(got) != 1 {
				t.Errorf("files in storage: %v (temp files left?)", got)
			}
			wantClient := tt.opts.Client
			if wantClient == "" {
				wantClient = DefaultClient
			}
			if ct.Client != wantClient || ct.URL != n.URL() || ct.URI != n.WithVersion(version).URI() || ct.Collection != n.FullCollection() {
				t.Errorf("row fields = %+v", ct)
			}
			var m map[string]any
			if err := json.Unmarshal(ct.Metrics, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"collection", "image", "original", "registry", "storage", "tag", "type", "uri", "url", "version"} {
				if _, ok := m[k]; !ok {
					t.Errorf("metrics lack %q: %s", k, ct.Metrics)
				}
			}
			if m["version"] != version || m["storage"] != ct.URI+".sif" || m["type"] != "container" {
				t.Errorf("metrics = %s", ct.Metrics)
			}
		})
	}
}

func TestAddAgainUpdates(t *testing.T) {
	f := newFixture(t)
	n := mustParse(t, "me/hello")
	src, _ := f.src(t, "a.sif", "same")
	first, _, err := f.store.Add(context.Background(), src, n, AddOptions{Copy: true, Metrics: map[string]any{"label": "x"}, Pull: map[string]any{"job_id": 5}})
	if err != nil {
		t.Fatal(err)
	}
	again, isNew, err := f.store.Add(context.Background(), src, n, AddOptions{Copy: true})
	if err != nil {
		t.Fatal(err)
	}
	if isNew || again.ID != first.ID {
		t.Errorf("re-adding identical content created row %d (new=%v)", again.ID, isNew)
	}
	if string(again.Pull) != `{"job_id":5}` || !strings.Contains(string(again.Metrics), `"label":"x"`) {
		t.Errorf("pull/metrics lost on update: %s %s", again.Pull, again.Metrics)
	}
	// Adding the stored file itself keeps it.
	self, _, err := f.store.Add(context.Background(), first.Image, n, AddOptions{})
	if err != nil || self.ID != first.ID || !exists(first.Image) {
		t.Errorf("adding the stored file: %+v, %v, exists=%v", self, err, exists(first.Image))
	}
	if got := files(t, f.store.Root); len(got) != 1 {
		t.Errorf("files: %v", got)
	}
}

func TestAddBadSource(t *testing.T) {
	f := newFixture(t)
	n := mustParse(t, "me/x")
	tests := []struct {
		name, src, want string
	}{
		{"missing", filepath.Join(f.base, "nope.sif"), "cannot find"},
		{"directory", f.base, "not a regular file"},
		{"dangling link", filepath.Join(f.base, "dangling"), "cannot find"},
	}
	os.Symlink(filepath.Join(f.base, "gone"), filepath.Join(f.base, "dangling"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.store.Add(context.Background(), tt.src, n, AddOptions{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Add(%s) = %v, want %q", tt.src, err, tt.want)
			}
		})
	}
	if len(f.rows(t)) != 0 {
		t.Error("rows written")
	}
}

func TestAddSymlinkMoveCopiesAndRemovesLink(t *testing.T) {
	f := newFixture(t)
	target, sum := f.src(t, "target.sif", "linked")
	link := filepath.Join(f.base, "link.sif")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	ct, _, err := f.store.Add(context.Background(), link, mustParse(t, "me/l"), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ct.Version != sum || exists(link) || !exists(target) {
		t.Errorf("version %s, link exists %v, target exists %v", ct.Version, exists(link), exists(target))
	}
	if fi, err := os.Lstat(ct.Image); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("stored file %v, %v", fi, err)
	}
}

func TestAddFailuresLeaveNoTrace(t *testing.T) {
	t.Run("catalog closed", func(t *testing.T) {
		f := newFixture(t)
		src, _ := f.src(t, "a.sif", "content")
		f.cat.Close()
		for _, copyMode := range []bool{true, false} {
			if _, _, err := f.store.Add(context.Background(), src, mustParse(t, "me/a"), AddOptions{Copy: copyMode}); err == nil {
				t.Fatal("Add succeeded with a closed catalog")
			}
			if got := files(t, f.store.Root); len(got) != 0 {
				t.Errorf("copy=%v: files left in storage: %v", copyMode, got)
			}
			if b, err := os.ReadFile(src); err != nil || string(b) != "content" {
				t.Errorf("copy=%v: source damaged: %q %v", copyMode, b, err)
			}
		}
	})
	t.Run("existing file used by a row is kept", func(t *testing.T) {
		f := newFixture(t)
		src, _ := f.src(t, "a.sif", "content")
		ct, _, err := f.store.Add(context.Background(), src, mustParse(t, "me/a"), AddOptions{Copy: true})
		if err != nil {
			t.Fatal(err)
		}
		f.cat.Close()
		if _, _, err := f.store.Add(context.Background(), src, mustParse(t, "me/a"), AddOptions{Copy: true}); err == nil {
			t.Fatal("Add succeeded with a closed catalog")
		}
		if !exists(ct.Image) {
			t.Error("the file of an existing row was removed")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := newFixture(t)
		src, _ := f.src(t, "a.sif", "content")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := f.store.Add(ctx, src, mustParse(t, "me/a"), AddOptions{Copy: true}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Add = %v, want context.Canceled", err)
		}
		if got := files(t, f.store.Root); len(got) != 0 {
			t.Errorf("files left: %v", got)
		}
		if len(f.rows(t)) != 0 || !exists(src) {
			t.Error("row written or source removed")
		}
	})
}

func writeTemp(t *testing.T, dir, content string) string {
	t.Helper()
	tmp, err := os.CreateTemp(dir, ".latest.download-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.WriteString(content)
	tmp.Close()
	return tmp.Name()
}

func TestAdopt(t *testing.T) {
	f := newFixture(t)
	n := mustParse(t, "group/sub/proj")
	dir, err := f.store.Dir(n)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("pulled"))
	sha := hex.EncodeToString(sum[:])

	tmp := writeTemp(t, dir, "pulled")
	ct, isNew, err := f.store.Adopt(context.Background(), tmp, n, strings.ToUpper(sha), AddOptions{Client: "gitlab", Pull: map[string]any{"job_id": 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !isNew || ct.Image != filepath.Join(dir, "latest@"+sha+".sif") || exists(tmp) || string(ct.Pull) != `{"job_id":3}` {
		t.Errorf("Adopt = %+v new=%v tmp exists=%v", ct, isNew, exists(tmp))
	}

	t.Run("outside Dir refused and left alone", func(t *testing.T) {
		other := writeTemp(t, f.base, "x")
		if _, _, err := f.store.Adopt(context.Background(), other, n, sha, AddOptions{}); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Adopt outside = %v", err)
		}
		if !exists(other) {
			t.Error("a file outside the storage directory was removed")
		}
	})
	t.Run("bad sha removes tmp", func(t *testing.T) {
		bad := writeTemp(t, dir, "x")
		if _, _, err := f.store.Adopt(context.Background(), bad, n, "../../x", AddOptions{}); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Adopt bad sha = %v", err)
		}
		if exists(bad) {
			t.Error("tmp left behind")
		}
	})
	t.Run("catalog failure removes tmp and no row", func(t *testing.T) {
		f2 := newFixture(t)
		dir2, _ := f2.store.Dir(n)
		tmp2 := writeTemp(t, dir2, "pulled")
		f2.cat.Close()
		if _, _, err := f2.store.Adopt(context.Background(), tmp2, n, sha, AddOptions{}); err == nil {
			t.Fatal("Adopt succeeded with a closed catalog")
		}
		if got := files(t, f2.store.Root); len(got) != 0 {
			t.Errorf("files left: %v", got)
		}
	})
}

func TestConcurrentAdopt(t *testing.T) {
	f := newFixture(t)
	n := mustParse(t, "122059246,group/proj")
	dir, err := f.store.Dir(n)
	if err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("image-bytes", 10000)
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		tmp := writeTemp(t, dir, content)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker has its own catalog handle, like separate processes.
			cat, err := catalog.Open(context.Background(), f.cat.Path())
			if err != nil {
				errs[i] = err
				return
			}
			defer cat.Close()
			s, _ := New(f.store.Root, cat)
			_, _, errs[i] = s.Adopt(context.Background(), tmp, n, sha, AddOptions{Client: "gitlab"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if got := files(t, f.store.Root); len(got) != 1 || got[0] != "122059246,group/proj/latest@"+sha+".sif" {
		t.Errorf("files = %v, want exactly one", got)
	}
	if rows := f.rows(t); len(rows) != 1 {
		t.Errorf("%d rows, want 1", len(rows))
	}
}

func (f *fixture) add(t *testing.T, uri, content string) catalog.Container {
	t.Helper()
	src, _ := f.src(t, "add.sif", content)
	ct, _, err := f.store.Add(context.Background(), src, mustParse(t, uri), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fixture, ct catalog.Container) catalog.Container
		missing bool
		kept    bool
	}{
		{"file removed", nil, false, false},
		{"file already gone", func(t *testing.T, f *fixture, ct catalog.Container) catalog.Container {
			os.Remove(ct.Image)
			return ct
		}, true, false},
		{"no image path", func(t *testing.T, f *fixture, ct catalog.Container) catalog.Container {
			f.cat.SetImage(context.Background(), ct.ID, "")
			ct.Image = ""
			return ct
		}, true, false},
		{"moved outside the root", func(t *testing.T, f *fixture, ct catalog.Container) catalog.Container {
			p, err := f.store.Move(context.Background(), ct, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ct.Image = p
			return ct
		}, false, false},
		{"file shared with another row", func(t *testing.T, f *fixture, ct catalog.Container) catalog.Container {
			other := f.add(t, "me/other", "other")
			f.cat.SetImage(context.Background(), other.ID, ct.Image)
			return ct
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ct := f.add(t, "me/rm", "remove me")
			if tt.prepare != nil {
				ct = tt.prepare(t, f, ct)
			}
			res, err := f.store.Remove(context.Background(), ct)
			if err != nil {
				t.Fatal(err)
			}
			if res.FileMissing != tt.missing || res.Kept != tt.kept || res.Path != ct.Image {
				t.Errorf("Remove = %+v, want missing=%v kept=%v", res, tt.missing, tt.kept)
			}
			if ct.Image != "" && exists(ct.Image) != tt.kept {
				t.Errorf("file exists = %v", exists(ct.Image))
			}
			if _, err := f.cat.Get(context.Background(), catalog.Query{Name: "rm"}); !errors.Is(err, catalog.ErrNotFound) {
				t.Errorf("row still there: %v", err)
			}
		})
	}
	t.Run("unknown row", func(t *testing.T) {
		f := newFixture(t)
		ct := f.add(t, "me/rm", "x")
		f.cat.Delete(context.Background(), ct.ID)
		if _, err := f.store.Remove(context.Background(), ct); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Remove of a deleted row = %v", err)
		}
		if !exists(ct.Image) {
			t.Error("file removed although the row was not found")
		}
	})
}

func TestMove(t *testing.T) {
	tests := []struct {
		name    string
		dest    func(f *fixture, ct catalog.Container) string
		wantErr string
		want    func(f *fixture, ct catalog.Container) string
	}{
		{"into a directory", func(f *fixture, ct catalog.Container) string { return f.base },
			"", func(f *fixture, ct catalog.Container) string { return filepath.Join(f.base, filepath.Base(ct.Image)) }},
		{"to a file path", func(f *fixture, ct catalog.Container) string { return filepath.Join(f.base, "mine.sif") },
			"", func(f *fixture, ct catalog.Container) string { return filepath.Join(f.base, "mine.sif") }},
		{"same path", func(f *fixture, ct catalog.Container) string { return ct.Image }, "is already the name.", nil},
		{"same directory", func(f *fixture, ct catalog.Container) string { return filepath.Dir(ct.Image) }, "is already the name.", nil},
		{"missing parent", func(f *fixture, ct catalog.Container) string { return filepath.Join(f.base, "no", "x.sif") },
			"does not exist. Ensure exists first.", nil},
		{"existing file", func(f *fixture, ct catalog.Container) string {
			p := filepath.Join(f.base, "taken.sif")
			os.WriteFile(p, []byte("other"), 0o644)
			return p
		}, "already exists", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ct := f.add(t, "me/mv", "move me")
			got, err := f.store.Move(context.Background(), ct, tt.dest(f, ct))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Move = %v, want %q", err, tt.wantErr)
				}
				if !exists(ct.Image) {
					t.Error("file moved despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(f, ct); got != want {
				t.Errorf("Move = %s, want %s", got, want)
			}
			row, _ := f.cat.Get(context.Background(), catalog.Query{Name: "mv"})
			if row.Image != got || exists(ct.Image) || !exists(got) {
				t.Errorf("row image %s, old exists %v, new exists %v", row.Image, exists(ct.Image), exists(got))
			}
		})
	}
}

func TestMoveCrossDevice(t *testing.T) {
	f := newFixture(t)
	ct := f.add(t, "me/mv", "across")
	calls := 0
	rename = func(a, b string) error {
		calls++
		if calls == 1 {
			return &os.LinkError{Op: "rename", Old: a, New: b, Err: syscall.EXDEV}
		}
		return os.Rename(a, b)
	}
	t.Cleanup(func() { rename = os.Rename })
	dest := filepath.Join(f.base, "far.sif")
	got, err := f.store.Move(context.Background(), ct, dest)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(got); err != nil || string(b) != "across" || exists(ct.Image) {
		t.Errorf("cross-device move: %q %v, source exists %v", b, err, exists(ct.Image))
	}
	if entries, _ := filepath.Glob(filepath.Join(f.base, ".*sregistry-tmp*")); len(entries) != 0 {
		t.Errorf("temp files left: %v", entries)
	}
}

func TestMoveRollback(t *testing.T) {
	f := newFixture(t)
	ct := f.add(t, "me/mv", "roll back")
	f.cat.Close()
	dest := filepath.Join(f.base, "elsewhere.sif")
	if _, err := f.store.Move(context.Background(), ct, dest); err == nil || !strings.Contains(err.Error(), "moved back") {
		t.Fatalf("Move with a closed catalog = %v", err)
	}
	if !exists(ct.Image) || exists(dest) {
		t.Errorf("file not moved back: src %v dest %v", exists(ct.Image), exists(dest))
	}
}

func TestRename(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		f := newFixture(t)
		ct := f.add(t, "old/img", "rename me")
		got, err := f.store.Rename(context.Background(), ct, mustParse(t, "new/sub/renamed:v2"))
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(f.store.Root, "new", "sub", "renamed", "v2@"+ct.Version+".sif")
		if got != want || exists(ct.Image) || !exists(got) {
			t.Errorf("Rename = %s, want %s (old exists %v)", got, want, exists(ct.Image))
		}
		row, err := f.cat.Get(context.Background(), catalog.Query{Collection: "new/sub", Name: "renamed", Tag: "v2"})
		if err != nil || row.Image != got || row.Version != ct.Version || row.URI != "new/sub/renamed:v2@"+ct.Version {
			t.Errorf("row = %+v, %v", row, err)
		}
	})
	t.Run("destination exists", func(t *testing.T) {
		f := newFixture(t)
		a := f.add(t, "me/a", "same")
		f.add(t, "me/b", "same")
		if _, err := f.store.Rename(context.Background(), a, mustParse(t, "me/b")); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("Rename onto an existing file = %v", err)
		}
		if !exists(a.Image) {
			t.Error("source moved")
		}
	})
	t.Run("same name", func(t *testing.T) {
		f := newFixture(t)
		a := f.add(t, "me/a", "x")
		if _, err := f.store.Rename(context.Background(), a, mustParse(t, "me/a")); err == nil || !strings.Contains(err.Error(), "is already the name.") {
			t.Errorf("Rename to itself = %v", err)
		}
	})
	t.Run("catalog conflict rolls back", func(t *testing.T) {
		f := newFixture(t)
		a := f.add(t, "me/a", "same")
		b := f.add(t, "me/b", "same")
		os.Remove(b.Image) // the row remains, its file is gone: the file move succeeds, the row update fails
		_, err := f.store.Rename(context.Background(), a, mustParse(t, "me/b"))
		if !errors.Is(err, catalog.ErrExists) || !strings.Contains(err.Error(), "moved back") {
			t.Fatalf("Rename = %v, want ErrExists and a roll back", err)
		}
		if !exists(a.Image) || exists(b.Image) {
			t.Errorf("file not moved back: a %v b %v", exists(a.Image), exists(b.Image))
		}
	})
	t.Run("closed catalog rolls back", func(t *testing.T) {
		f := newFixture(t)
		a := f.add(t, "me/a", "x")
		f.cat.Close()
		if _, err := f.store.Rename(context.Background(), a, mustParse(t, "other/z")); err == nil {
			t.Fatal("Rename succeeded with a closed catalog")
		}
		if !exists(a.Image) {
			t.Error("file not moved back")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		f := newFixture(t)
		a := f.add(t, "me/a", "x")
		os.Remove(a.Image)
		if _, err := f.store.Rename(context.Background(), a, mustParse(t, "other/z")); err == nil || !strings.Contains(err.Error(), "pull") {
			t.Errorf("Rename of a missing file = %v", err)
		}
	})
	t.Run("invalid new name", func(t *testing.T) {
		f := newFixture(t)
		a := f.add(t, "me/a", "x")
		if _, err := f.store.Rename(context.Background(), a, names.Name{Collection: "../..", Image: "x", Tag: "t"}); err == nil {
			t.Error("Rename to an escaping name succeeded")
		}
	})
}
