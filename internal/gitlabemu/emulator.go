// Package gitlabemu is a GitLab emulator for tests, demos and benchmarks: the
// REST v4 jobs and job-artifacts endpoints as real GitLab serves them (no
// totals on the jobs list, 302 to a signed URL on a second "object storage"
// listener, Range only where GitLab honours it, GitLab's exact error bodies,
// 429 with Retry-After), with a request log and fault injection.
//
// Behaviour follows the GitLab API reference (shared/reference/gitlab-api.md).
// Known simplifications:
//   - every valid token may read every project; anonymous callers see only
//     public ones; web routes never accept tokens (no sessions exist);
//   - ref routes pick the newest successful job of that name on the ref
//     (creation time, then id), not "the job in the latest successful
//     pipeline", so GitLab's issue-349316 404 is not reproduced;
//   - artifact sizes in job JSON are exact, so listing a job materialises its
//     archive on first use;
//   - with TreeAPI off, ".../artifacts/tree" is the single file "tree" (a
//     plain-text 404 unless such an entry exists), as on GitLab < 18.8;
//   - the ref raw route does not sniff content types (same as by-id route);
//   - no 301 for renamed projects, no OAuth, no scopes (403 never happens).
package gitlabemu

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server.
type Options struct {
	Host string // listen address of the API listener; default "127.0.0.1"
	// StorageHost is the listen address of the object-storage listener;
	// default Host. Pass e.g. "127.0.0.2" to make the redirect cross hostname.
	StorageHost string
	// Listen and StorageListen, when set, are full "host:port" listen
	// addresses that override Host/StorageHost (port 0 = random).
	Listen        string
	StorageListen string
	// Dir holds materialised artifact archives; default a temp dir removed by Close.
	Dir string
	// DisableObjectStorage makes whole-archive endpoints answer 200 themselves
	// (local storage / proxy_download) instead of 302 to object storage.
	DisableObjectStorage bool
	SignedURLTTL         time.Duration // validity of signed URLs; default 10m
	TreeAPI              bool          // serve GET .../artifacts/tree (GitLab 18.8+)
	// JobsPerMinute caps GET /projects/:id/jobs per token per minute
	// (GitLab's jobs_index application limit); 0 = unlimited.
	JobsPerMinute int
	Now           func() time.Time
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
// of deterministic pseudo-random content (see GeneratedContent).
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
	// Expired means the artifacts were erased: archive endpoints answer 404
	// and the JSON "artifacts" array lists only the trace (no artifacts_file).
	Expired bool
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
	PathPrefix string // match on URL path prefix, escaped or decoded ("" = any)
	Count      int    // how many matching requests it affects (default 1)
	Status     int    // answer this status (e.g. 500, 502, 429) instead of serving
	RetryAfter int    // with 429: Retry-After seconds (default 1)
	CutAfter   int64  // serve normally but drop the connection after this many body bytes (when Status == 0)
}

// Listener names used in Request.Listener and Fault.Listener.
const (
	ListenerAPI     = "api"
	ListenerStorage = "storage"
)

type tokenRec struct {
	kind    string
	expired bool
}

type projectRec struct {
	Project
	jobs []*jobRec // in insertion order
}

type jobRec struct {
	Job
	project *projectRec
}

type rateWindow struct {
	start time.Time
	count int
}

// Server is a running emulator.
type Server struct {
	opts   Options
	secret []byte

	mu         sync.Mutex
	projects   []*projectRec
	jobs       map[int64]*jobRec
	tokens     map[string]tokenRec
	nextProj   int64
	nextJob    int64
	nextPipe   int64
	objectKeys map[string]int64 // storage object key -> job id
	jobKeys    map[int64]string
	requests   []*Request
	faults     []*Fault
	rate       map[string]*rateWindow

	throttle atomic.Int64

	archMu   sync.Mutex
	archives map[int64]*archive

	apiLn, stLn   net.Listener
	apiSrv, stSrv *http.Server
	apiURL, stURL string
	dir           string
	removeDir     bool
	closeOnce     sync.Once
}

// New creates a server; call Start.
func New(o Options) *Server {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.StorageHost == "" {
		o.StorageHost = o.Host
	}
	if o.SignedURLTTL <= 0 {
		o.SignedURLTTL = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails on supported platforms
	return &Server{
		opts:       o,
		secret:     secret,
		jobs:       map[int64]*jobRec{},
		tokens:     map[string]tokenRec{},
		nextProj:   1,
		nextJob:    1001,
		nextPipe:   501,
		objectKeys: map[string]int64{},
		jobKeys:    map[int64]string{},
		rate:       map[string]*rateWindow{},
		archives:   map[int64]*archive{},
	}
}

func (s *Server) now() time.Time { return s.opts.Now() }

// Start starts both listeners on loopback ports.
func (s *Server) Start() error {
	if s.apiLn != nil {
		return errors.New("gitlabemu: already started")
	}
	if s.opts.Dir == "" {
		d, err := os.MkdirTemp("", "gitlabemu-")
		if err != nil {
			return fmt.Errorf("gitlabemu: temp dir: %w", err)
		}
		s.dir, s.removeDir = d, true
	} else {
		if err := os.MkdirAll(s.opts.Dir, 0o755); err != nil {
			return fmt.Errorf("gitlabemu: archive dir: %w", err)
		}
		s.dir = s.opts.Dir
	}
	apiAddr := s.opts.Listen
	if apiAddr == "" {
		apiAddr = net.JoinHostPort(s.opts.Host, "0")
	}
	stAddr := s.opts.StorageListen
	if stAddr == "" {
		stAddr = net.JoinHostPort(s.opts.StorageHost, "0")
	}
	apiLn, err := net.Listen("tcp", apiAddr)
	if err != nil {
		s.cleanupDir()
		return fmt.Errorf("gitlabemu: api listener: %w", err)
	}
	stLn, err := net.Listen("tcp", stAddr)
	if err != nil {
		_ = apiLn.Close()
		s.cleanupDir()
		return fmt.Errorf("gitlabemu: storage listener: %w", err)
	}
	s.apiLn, s.stLn = apiLn, stLn
	s.apiURL = "http://" + apiLn.Addr().String()
	s.stURL = "http://" + stLn.Addr().String()
	s.apiSrv = &http.Server{Handler: s.wrap(ListenerAPI, http.HandlerFunc(s.serveAPIListener)), ReadHeaderTimeout: 30 * time.Second}
	s.stSrv = &http.Server{Handler: s.wrap(ListenerStorage, http.HandlerFunc(s.serveStorage)), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = s.apiSrv.Serve(apiLn) }()
	go func() { _ = s.stSrv.Serve(stLn) }()
	return nil
}

func (s *Server) cleanupDir() {
	if s.removeDir && s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// Close stops listeners and removes temporary files.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.apiSrv != nil {
			err = errors.Join(s.apiSrv.Close(), s.stSrv.Close())
		}
		s.cleanupDir()
	})
	return err
}

// URL is the GitLab base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.apiURL }

// StorageURL is the object-storage base URL (a different host:port).
func (s *Server) StorageURL() string { return s.stURL }

// AddToken registers a token of kind (PersonalToken or JobToken). An expired
// personal token answers GitLab's invalid_token body; an expired job token
// (its job finished) answers 401 Unauthorized like GitLab.
func (s *Server) AddToken(token, kind string, expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = tokenRec{kind: kind, expired: expired}
}

// AddProject adds a project and returns it with its ID set. Adding a path
// that exists replaces its settings (jobs are kept).
func (s *Server) AddProject(p Project) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addProjectLocked(p).Project
}

func (s *Server) addProjectLocked(p Project) *projectRec {
	p.Path = strings.Trim(p.Path, "/")
	if p.Visibility == "" {
		p.Visibility = Public
	}
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	if old := s.projectByPathLocked(p.Path); old != nil {
		id := old.ID
		old.Project = p
		old.ID = id
		return old
	}
	if p.ID == 0 {
		p.ID = s.nextProj
	}
	if p.ID >= s.nextProj {
		s.nextProj = p.ID + 1
	}
	rec := &projectRec{Project: p}
	s.projects = append(s.projects, rec)
	return rec
}

func (s *Server) projectByPathLocked(path string) *projectRec {
	for _, p := range s.projects {
		if strings.EqualFold(p.Path, path) {
			return p
		}
	}
	return nil
}

func (s *Server) projectByIDLocked(id int64) *projectRec {
	for _, p := range s.projects {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// AddJob adds a job to the project with that path and returns it with IDs
// and defaults set. An unknown project path is created as a public project.
// A job whose ID already exists replaces the old one.
func (s *Server) AddJob(projectPath string, j Job) Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPathLocked(strings.Trim(projectPath, "/"))
	if p == nil {
		p = s.addProjectLocked(Project{Path: projectPath})
	}
	if j.ID == 0 {
		j.ID = s.nextJob
	}
	if j.ID >= s.nextJob {
		s.nextJob = j.ID + 1
	}
	if j.PipelineID == 0 {
		j.PipelineID = s.nextPipe
	}
	if j.PipelineID >= s.nextPipe {
		s.nextPipe = j.PipelineID + 1
	}
	if j.Name == "" {
		j.Name = "build"
	}
	if j.Stage == "" {
		j.Stage = "build"
	}
	if j.Ref == "" {
		j.Ref = p.DefaultBranch
	}
	if j.Status == "" {
		j.Status = "success"
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = s.now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	}
	if j.FinishedAt.IsZero() && finishedStatus(j.Status) {
		j.FinishedAt = j.CreatedAt.Add(2 * time.Minute)
	}
	j.Artifacts = append([]Artifact(nil), j.Artifacts...)
	rec := &jobRec{Job: j, project: p}
	if old, ok := s.jobs[j.ID]; ok {
		op := old.project
		for i, oj := range op.jobs {
			if oj.ID == j.ID {
				op.jobs = append(op.jobs[:i:i], op.jobs[i+1:]...)
				break
			}
		}
		s.dropArchive(j.ID)
	}
	s.jobs[j.ID] = rec
	p.jobs = append(p.jobs, rec)
	return j
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// ResetRequests clears the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// InjectFault queues a fault.
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// SetThrottle caps each storage connection at bytesPerSecond (0 = unlimited).
func (s *Server) SetThrottle(bytesPerSecond int64) { s.throttle.Store(max(bytesPerSecond, 0)) }

// ArchiveURL returns the signed object-storage URL of a job's archive (for curl in benchmarks).
func (s *Server) ArchiveURL(jobID int64) (string, error) {
	if _, err := s.jobWithArchive(jobID); err != nil {
		return "", err
	}
	return s.signedURL(jobID), nil
}

// jobWithArchive returns the job, or an error when it is unknown or has no
// artifacts archive.
func (s *Server) jobWithArchive(jobID int64) (*jobRec, error) {
	s.mu.Lock()
	j, ok := s.jobs[jobID]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("gitlabemu: job %d not found", jobID)
	}
	if !hasArchive(&j.Job) {
		return nil, fmt.Errorf("gitlabemu: job %d has no artifacts archive", jobID)
	}
	return j, nil
}

// ArchivePath materialises a job's archive (if not done yet) and returns the
// path of the zip file on disk.
func (s *Server) ArchivePath(jobID int64) (string, error) {
	j, err := s.jobWithArchive(jobID)
	if err != nil {
		return "", err
	}
	a, err := s.archiveFor(j)
	if err != nil {
		return "", err
	}
	return a.path, nil
}

func hasArchive(j *Job) bool { return len(j.Artifacts) > 0 && !j.Expired }

func finishedStatus(st string) bool {
	switch st {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
