// Package transfer downloads remote objects to disk: streamed, hashed while
// written, verified, resumable with Range, parallel where the server honours
// Range, retried with backoff, and with credentials kept on their own host.
package transfer

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/sregistry/sregistry/internal/progress"
)

// ClientOptions configures NewClient.
type ClientOptions struct {
	// AuthHost is the host[:port] (as in URL.Host) that may receive the credential; requests
	// to any other host, including redirect targets, never carry it.
	AuthHost   string
	AuthScheme string // "https" or "http": the credential is only sent over this scheme
	AuthHeader string // e.g. "PRIVATE-TOKEN", "JOB-TOKEN" or "Authorization"
	AuthValue  string // e.g. the token, or "Bearer <token>"

	InsecureSkipVerify bool          // SREGISTRY_HTTPS_NOVERIFY
	ConnectTimeout     time.Duration // dial + TLS handshake; default 30s
	IdleTimeout        time.Duration // max time without reading a byte (headers or body); default 60s
	MaxRedirects       int           // default 10
	UserAgent          string
	// SensitiveHeaders are extra request headers dropped on a cross-host redirect,
	// besides PRIVATE-TOKEN, JOB-TOKEN, DEPLOY-TOKEN, Authorization, Cookie and AuthHeader.
	SensitiveHeaders []string
}

// RetryPolicy controls retries of 5xx, 429 and dropped connections.
type RetryPolicy struct {
	MaxAttempts int           // total attempts per request/chunk; default 6
	BaseDelay   time.Duration // first backoff; default 500ms, doubled each time with jitter
	MaxDelay    time.Duration // cap; default 30s (Retry-After is honoured up to 5 min)
}

// Downloader performs downloads with a shared client and policy.
type Downloader struct {
	Client *http.Client
	Retry  RetryPolicy
	// Sleep waits d or until ctx is done; nil means a real timer. Tests inject a fast one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Debugf, when set, receives debug lines. URLs are logged without query strings.
	Debugf func(format string, args ...any)
}

// Remote names an object reachable by GET on URL (following redirects). Header
// holds extra headers; never credentials (the client's transport adds those).
type Remote struct {
	URL    string
	Header http.Header
}

// Object is an opened remote object: its size and whether byte ranges work.
// It remembers the final (e.g. signed object-storage) URL and re-resolves it
// through Remote.URL when it has expired (401/403/400 from the storage host).
type Object struct {
	d      *Downloader
	remote Remote
	size   int64
	ranges bool
	ctx    context.Context // Open's context, used by ReadAt

	mu    sync.Mutex
	final string     // current final URL (may be a signed URL: never log it whole)
	cache blockCache // ReadAt blocks
}

// FetchOptions describes what to fetch and where.
type FetchOptions struct {
	Offset int64  // first byte of the object to fetch
	Length int64  // bytes to fetch; < 0 means to the end of the object
	Dir    string // destination directory: the file is written inside it
	// Key identifies the content for resume across runs ("" disables resume): the
	// partial file is Dir/.sregistry-<hash(Key)>.partial, guarded by an flock; when
	// another process holds the lock a private temp file is used instead.
	Key         string
	Connections int   // parallel ranged connections (>=1); used only when ranges work
	ChunkSize   int64 // bytes per ranged request; default 16 MiB
	Progress    progress.Reporter
	// ExpectedSize, when >= 0, must equal the fetched size.
	ExpectedSize int64
	// Name labels the transfer for Progress; default: the last element of the URL path.
	Name string
}

// Result is a complete, fsynced file holding exactly the requested bytes.
type Result struct {
	Path        string // temp/partial file inside Dir; the caller renames or removes it
	Size        int64
	SHA256      string // hex
	CRC32       uint32 // IEEE, to check zip entries
	Resumed     bool   // bytes from an earlier run were reused
	Connections int    // connections actually used
	release     func()
	readBack    int64 // bytes hashed by reading the file back (tests, benchmarks)
}

// Release drops the resume lock (if any). Call it after renaming or removing Path.
func (r *Result) Release() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// HTTPError is a non-success HTTP answer.
type HTTPError struct {
	Status  int
	URL     string // without query string
	Message string // GitLab's "message"/"error" body field when JSON, else a short body excerpt

	storage    bool          // answered by a redirect target (object storage), not the first host
	retryAfter time.Duration // Retry-After / RateLimit-Reset of a 429/503, 0 if none
}
