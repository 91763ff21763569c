// Package gitlabemu is a GitLab emulator for tests, demos and benchmarks: the
// REST v4 jobs and job-artifacts endpoints as real GitLab serves them (no
// totals on the jobs list, 302 to a signed URL on a second "object storage"
// listener, Range only where GitLab honours it, GitLab's exact error bodies,
// 429 with Retry-After), with a request log and fault injection.
package gitlabemu

import (
	"net/http"
	"time"
)

// Options configures a Server.
type Options struct {
	Host string // listen address for both listeners; default "127.0.0.1"
	// Dir holds materialised artifact archives; default a temp dir removed by Close.
	Dir string
	// DirectDownload false makes whole-archive endpoints answer 200 themselves
	// (local storage / proxy_download) instead of 302 to object storage.
	DisableObjectStorage bool
	SignedURLTTL         time.Duration // validity of signed URLs; default 10m
	TreeAPI              bool          // serve GET .../artifacts/tree (GitLab 18.8+)
	Now                  func() time.Time
}

// Visibility of a project.
type Visibility string

// Visibilities.
const (
	Public  Visibility = "public"
	Private Visibility = "private"
)

// Project is a GitLab project.
type Project struct {
	ID            int64  // 0 = assigned
	Path          string // full path with namespace, nested groups allowed: "group/sub/proj"
	Visibility    Visibility
	DefaultBranch string // default "main"
}

// Artifact is one file inside a job's artifacts archive. Exactly one content
// source is used: Data, else File (a path on disk, streamed), else Size bytes
// of deterministic pseudo-random content.
type Artifact struct {
	Path   string // path inside the archive, e.g. "build/Singularity.sif"
	Data   []byte
	File   string
	Size   int64
	Method uint16 // zip.Store (0, default) or zip.Deflate (8)
}

// Job is a CI job.
type Job struct {
	ID         int64 // 0 = assigned (increasing)
	Name       string
	Stage      string // default "build"
	Ref        string // default the project's default branch
	Status     string // default "success"
	PipelineID int64  // 0 = assigned
	CreatedAt  time.Time
	FinishedAt time.Time
	Artifacts  []Artifact
	Expired    bool // artifacts erased: archive endpoints 404, "artifacts" empty in JSON
}

// Token kinds.
const (
	PersonalToken = "personal" // PRIVATE-TOKEN header, ?private_token=, or Authorization: Bearer
	JobToken      = "job"      // JOB-TOKEN header or ?job_token= (artifacts endpoints only)
)

// Request is one recorded request.
type Request struct {
	Time     time.Time
	Listener string // "api" or "storage"
	Host     string // the Host the request was sent to
	Method   string
	URL      string // path and query as received
	Header   http.Header
	Status   int
}

// Fault is an injected failure. It applies to the next Count matching requests.
type Fault struct {
	Listener   string // "api", "storage" or "" for both
	PathPrefix string // match on URL path prefix ("" = any)
	Count      int    // how many matching requests it affects (default 1)
	Status     int    // answer this status (e.g. 500, 502, 429) instead of serving
	RetryAfter int    // with 429: Retry-After seconds
	CutAfter   int64  // serve normally but drop the connection after this many body bytes (when Status == 0)
}

// Server is a running emulator.
type Server struct{}

// New creates a server; call Start.
func New(o Options) *Server { panic("unimplemented") }

// Start starts both listeners on loopback ports.
func (s *Server) Start() error { panic("unimplemented") }

// Close stops listeners and removes temporary files.
func (s *Server) Close() error { panic("unimplemented") }

// URL is the GitLab base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { panic("unimplemented") }

// StorageURL is the object-storage base URL (a different host:port).
func (s *Server) StorageURL() string { panic("unimplemented") }

// AddToken registers a token of kind (PersonalToken or JobToken). Expired tokens answer GitLab's invalid_token body.
func (s *Server) AddToken(token, kind string, expired bool) { panic("unimplemented") }

// AddProject adds a project and returns it with its ID set.
func (s *Server) AddProject(p Project) Project { panic("unimplemented") }

// AddJob adds a job to the project with that path and returns it with IDs set.
func (s *Server) AddJob(projectPath string, j Job) Job { panic("unimplemented") }

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request { panic("unimplemented") }

// ResetRequests clears the request log.
func (s *Server) ResetRequests() { panic("unimplemented") }

// InjectFault queues a fault.
func (s *Server) InjectFault(f Fault) { panic("unimplemented") }

// SetThrottle caps each storage connection at bytesPerSecond (0 = unlimited).
func (s *Server) SetThrottle(bytesPerSecond int64) { panic("unimplemented") }

// ArchiveURL returns the signed object-storage URL of a job's archive (for curl in benchmarks).
func (s *Server) ArchiveURL(jobID int64) (string, error) { panic("unimplemented") }
