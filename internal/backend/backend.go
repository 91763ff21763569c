// Package backend defines what an image source (GitLab first) offers, and a
// registry of backends keyed by URI scheme.
package backend

import (
	"context"
	"time"

	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/progress"
)

// Backend is an image source.
type Backend interface {
	// Name is the client name stored in the catalog ("gitlab").
	Name() string
	// Search lists what can be pulled. An auth, not-found or network problem is an error.
	Search(ctx context.Context, q SearchQuery) ([]SearchResult, error)
	// Pull resolves ref and downloads the image into a verified file in the
	// directory chosen by req.Dir. The caller moves the file into place and calls Release.
	Pull(ctx context.Context, req PullRequest) (*PullResult, error)
}

// SearchQuery is a search request.
type SearchQuery struct {
	Query  string // e.g. "group/sub/project" (scheme already removed)
	Job    string // only jobs with this name ("" = all)
	Ref    string // only jobs on this branch/tag ("" = all)
	Latest bool   // only the newest job per (job name, ref)
	Limit  int    // at most this many results (0 = no limit)
}

// SearchResult is one successful job with artifacts.
type SearchResult struct {
	Project      string    `json:"project"`
	JobID        int64     `json:"job_id"`
	JobName      string    `json:"job_name"`
	Ref          string    `json:"ref"`
	FinishedAt   time.Time `json:"finished_at"`
	ArtifactSize int64     `json:"artifact_size"`
	BrowseURL    string    `json:"browse_url"`
	PullRef      string    `json:"pull"`             // the string to give to pull, e.g. "123,group/project"
	Images       []Image   `json:"images,omitempty"` // nil when the server cannot list archives
}

// Image is an image file inside a job's artifacts.
type Image struct {
	Path string `json:"path"`
	Tag  string `json:"tag"`
	Size int64  `json:"size"`
}

// PullRequest is a pull request.
type PullRequest struct {
	Ref      string // the pull string without scheme: "123,group/proj[,job]" or "group/proj[:tag][@ref]"
	Artifact string // explicit artifact path inside the archive ("" = by tag)
	Job      string // job name override ("" = SREGISTRY_GITLAB_JOB)
	// Dir returns (creating it) the directory the downloaded file must be written
	// in, given the resolved name; the final file will be renamed within it.
	Dir         func(n names.Name) (string, error)
	Connections int
	Progress    progress.Reporter
	// Logf prints user-facing progress messages (stderr).
	Logf func(format string, args ...any)
	// Check, when set, is called once the job and artifact are resolved and
	// before anything is downloaded; a non-nil error aborts the pull and is
	// returned unchanged (e.g. "image exists, use --force").
	Check func(n names.Name, info PullInfo) error
}

// PullInfo is the metadata recorded in the catalog for a pull (no secrets).
type PullInfo struct {
	Backend      string    `json:"backend"`
	Base         string    `json:"base"`
	Project      string    `json:"project"`
	ProjectID    int64     `json:"project_id,omitempty"`
	JobID        int64     `json:"job_id"`
	JobName      string    `json:"job_name"`
	Ref          string    `json:"ref,omitempty"`
	ArtifactPath string    `json:"artifact_path"`
	SourceURL    string    `json:"source_url"` // API URL, no token, no signature
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	PulledAt     time.Time `json:"pulled_at"`
}

// PullResult is a downloaded, verified image file.
type PullResult struct {
	Name    names.Name // catalog name: collection/image:tag (Version empty)
	Path    string     // the complete file inside the Dir chosen for Name
	Size    int64
	SHA256  string
	Info    PullInfo
	Release func() // drops resume locks; call after moving or removing Path
}
