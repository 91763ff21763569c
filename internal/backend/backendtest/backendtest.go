// Package backendtest is a contract test suite every backend.Backend must
// pass: run it against an emulator in unit tests and against a real server
// when credentials are available.
package backendtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/names"
)

// Fixture describes what the server under test holds.
type Fixture struct {
	// Project is a searchable collection that has at least one pullable job.
	Project string
	// JobID, when non-zero, must appear in the search results and is pulled.
	JobID int64
	// PullRef, when set, is pulled instead of the first search result's PullRef.
	PullRef string
	// Artifact is passed as PullRequest.Artifact ("" = by tag).
	Artifact string
	// SHA256, when set, is the expected hex sha256 of the pulled file.
	SHA256 string
	// MissingProject is a collection that does not exist (default
	// Project + "-does-not-exist-<time>").
	MissingProject string
	// Timeout bounds each operation (default 5 minutes).
	Timeout time.Duration
}

// RunContract runs the generic backend checks as subtests of t.
func RunContract(t *testing.T, b backend.Backend, f Fixture) {
	t.Helper()
	if f.Timeout <= 0 {
		f.Timeout = 5 * time.Minute
	}
	if f.MissingProject == "" {
		f.MissingProject = f.Project + "-does-not-exist-" + time.Now().Format("20060102150405")
	}
	if b.Name() == "" {
		t.Fatal("Name() is empty")
	}
	var found []backend.SearchResult

	t.Run("search finds the fixture", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
		defer cancel()
		res, err := b.Search(ctx, backend.SearchQuery{Query: f.Project})
		if err != nil {
			t.Fatalf("Search(%q): %v", f.Project, err)
		}
		if len(res) == 0 {
			t.Fatalf("Search(%q) found nothing", f.Project)
		}
		for i, r := range res {
			if r.PullRef == "" || r.JobID == 0 || r.BrowseURL == "" {
				t.Errorf("result %d lacks pull string, job id or browse URL: %+v", i, r)
			}
			if i > 0 && r.JobID > res[i-1].JobID {
				t.Errorf("results not newest first at %d", i)
			}
		}
		if f.JobID != 0 {
			ok := false
			for _, r := range res {
				ok = ok || r.JobID == f.JobID
			}
			if !ok {
				t.Fatalf("job %d not in the %d search results", f.JobID, len(res))
			}
		}
		found = res

		limited, err := b.Search(ctx, backend.SearchQuery{Query: f.Project, Limit: 1})
		if err != nil || len(limited) != 1 {
			t.Fatalf("Search with Limit 1: %d results, %v", len(limited), err)
		}
	})

	t.Run("pull returns a verified file", func(t *testing.T) {
		ref := f.PullRef
		if ref == "" && f.JobID != 0 {
			for _, r := range found {
				if r.JobID == f.JobID {
					ref = r.PullRef
				}
			}
		}
		if ref == "" && len(found) > 0 {
			ref = found[0].PullRef
		}
		if ref == "" {
			t.Skip("nothing to pull (search failed)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
		defer cancel()
		root := t.TempDir()
		var dirName names.Name
		res, err := b.Pull(ctx, backend.PullRequest{
			Ref:      ref,
			Artifact: f.Artifact,
			Dir: func(n names.Name) (string, error) {
				dirName = n
				d := filepath.Join(root, filepath.FromSlash(n.FullCollection()), n.Image)
				return d, os.MkdirAll(d, 0o755)
			},
			Logf: t.Logf,
		})
		if err != nil {
			t.Fatalf("Pull(%q): %v", ref, err)
		}
		defer res.Release()
		if res.Name.URI() != dirName.URI() {
			t.Errorf("result name %q differs from the Dir name %q", res.Name.URI(), dirName.URI())
		}
		if res.Name.Image == "" || res.Name.Tag == "" || res.Name.Version != "" {
			t.Errorf("bad catalog name %+v", res.Name)
		}
		if !strings.HasPrefix(res.Path, root+string(filepath.Separator)) {
			t.Errorf("file %s is not inside the Dir", res.Path)
		}
		sum, size := fileSHA(t, res.Path)
		if sum != res.SHA256 || size != res.Size {
			t.Fatalf("file sha256 %s (%d bytes), result says %s (%d bytes)", sum, size, res.SHA256, res.Size)
		}
		if f.SHA256 != "" && sum != f.SHA256 {
			t.Fatalf("sha256 %s, want %s", sum, f.SHA256)
		}
		in := res.Info
		if in.Backend != b.Name() || in.SHA256 != sum || in.Size != size || in.ArtifactPath == "" || in.SourceURL == "" || in.PulledAt.IsZero() {
			t.Errorf("incomplete pull info: %+v", in)
		}
		if strings.Contains(in.SourceURL, "token") || strings.Contains(in.SourceURL, "?") {
			t.Errorf("source URL carries a query: %s", in.SourceURL)
		}
	})

	t.Run("search of a missing project fails", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
		defer cancel()
		res, err := b.Search(ctx, backend.SearchQuery{Query: f.MissingProject})
		if err == nil {
			t.Fatalf("Search(%q) = %d results, want an error", f.MissingProject, len(res))
		}
	})
}

func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}
