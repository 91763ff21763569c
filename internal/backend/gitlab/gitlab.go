// Package gitlab is the GitLab backend: it searches a project's successful CI
// jobs for artifact archives and pulls Singularity/Apptainer images out of
// them through the REST API (never the session-only web routes), with the
// credential kept on the GitLab host, ranged and resumable downloads of the
// one zip entry that holds the image, and integrity checks (zip CRC-32, size,
// sha256).
//
// JSON endpoints (projects, jobs list, job detail) go through the official
// client-go library; artifact bodies never do (client-go buffers whole files
// in memory) and go through internal/transfer instead.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/transfer"
)

// Setting names read through backend.Config.Setting.
const (
	SettingToken       = "SREGISTRY_GITLAB_TOKEN"
	SettingTokenType   = "SREGISTRY_GITLAB_TOKEN_TYPE"
	SettingBase        = "SREGISTRY_GITLAB_BASE"
	SettingJob         = "SREGISTRY_GITLAB_JOB"
	SettingFolder      = "SREGISTRY_GITLAB_FOLDER"
	SettingConnections = "SREGISTRY_GITLAB_CONNECTIONS"
)

// Defaults of the settings above (the original sregistry-cli's code values,
// without the trailing slash of its base URL).
const (
	DefaultBase        = "https://gitlab.com"
	DefaultJob         = "build"
	DefaultFolder      = "build"
	DefaultConnections = 4
)

// Token types accepted in SREGISTRY_GITLAB_TOKEN_TYPE.
const (
	TokenPrivate = "private" // PRIVATE-TOKEN header: personal, project or group access token
	TokenJob     = "job"     // JOB-TOKEN header: CI_JOB_TOKEN, artifacts endpoints only
	TokenBearer  = "bearer"  // Authorization: Bearer: OAuth token
)

// Name is the backend (and URI scheme) name.
const Name = "gitlab"

// Options are test and tuning hooks for NewWithOptions. The zero value means
// production behaviour.
type Options struct {
	// Retry bounds the retries of API calls (429, 5xx, dropped connections)
	// and of downloads; zero fields take transfer's defaults.
	Retry transfer.RetryPolicy
	// Sleep waits d or until ctx is done; nil means a real timer. Tests pass
	// an instant one (and may record the waits).
	Sleep func(ctx context.Context, d time.Duration) error
	// HTTPClient replaces the client built with transfer.NewClient (tests only:
	// it must keep credentials on the GitLab host itself).
	HTTPClient *http.Client
}

// Backend is the GitLab backend. It is safe for concurrent use.
type Backend struct {
	cfg         backend.Config
	opts        Options
	base        *url.URL // web base, no trailing slash
	baseStr     string
	apiBase     string // baseStr + "/api/v4"
	token       string // never printed
	tokenType   string
	job         string
	folder      string
	connections int

	http *http.Client
	api  *gl.Client
	dl   *transfer.Downloader
}

var _ backend.Backend = (*Backend)(nil)

// New builds the GitLab backend from the settings in cfg.
func New(cfg backend.Config) (backend.Backend, error) {
	return NewWithOptions(cfg, Options{})
}

// NewWithOptions is New with test and tuning hooks.
func NewWithOptions(cfg backend.Config, o Options) (*Backend, error) {
	if cfg.Setting == nil {
		cfg.Setting = func(string) string { return "" }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Debugf == nil {
		cfg.Debugf = func(string, ...any) {}
	}
	setting := func(name, def string) string {
		if v := strings.TrimSpace(cfg.Setting(name)); v != "" {
			return v
		}
		return def
	}
	b := &Backend{cfg: cfg, opts: o}

	base, err := parseBase(setting(SettingBase, DefaultBase))
	if err != nil {
		return nil, err
	}
	b.base = base
	b.baseStr = base.String()
	b.apiBase = b.baseStr + "/api/v4"

	b.token = strings.TrimSpace(cfg.Setting(SettingToken))
	b.tokenType = strings.ToLower(setting(SettingTokenType, TokenPrivate))
	header, value := "", ""
	switch b.tokenType {
	case TokenPrivate, "personal", "private-token":
		b.tokenType = TokenPrivate
		header, value = "PRIVATE-TOKEN", b.token
	case TokenJob, "job-token", "ci_job_token":
		b.tokenType = TokenJob
		header, value = "JOB-TOKEN", b.token
	case TokenBearer, "oauth":
		b.tokenType = TokenBearer
		header, value = "Authorization", "Bearer "+b.token
	default:
		return nil, fmt.Errorf("unknown %s %q: use %q (personal/project/group access token, the default), %q (CI job token) or %q (OAuth token)",
			SettingTokenType, b.tokenType, TokenPrivate, TokenJob, TokenBearer)
	}
	if b.token == "" {
		header, value = "", ""
	}

	b.job = setting(SettingJob, DefaultJob)
	b.folder = strings.Trim(setting(SettingFolder, DefaultFolder), "/")
	b.connections = DefaultConnections
	if v := setting(SettingConnections, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("%s=%q is not a number of connections between 1 and 64: fix or unset it", SettingConnections, v)
		}
		b.connections = n
	}

	if o.HTTPClient != nil {
		b.http = o.HTTPClient
	} else {
		b.http = transfer.NewClient(transfer.ClientOptions{
			AuthHost:           base.Host,
			AuthScheme:         base.Scheme,
			AuthHeader:         header,
			AuthValue:          value,
			InsecureSkipVerify: cfg.HTTPSNoVerify,
			UserAgent:          "sregistry",
		})
	}
	b.dl = &transfer.Downloader{Client: b.http, Retry: o.Retry, Sleep: o.Sleep, Debugf: cfg.Debugf}

	// client-go must not add its own credential header: the transfer client
	// adds it, and only for the GitLab host. Its retries are disabled in favour
	// of apiCall's bounded, Retry-After-aware loop with an injectable sleep.
	// The client is copied so that client-go can never alter the shared one.
	apiHTTP := *b.http
	b.api, err = gl.NewAuthSourceClient(gl.Unauthenticated{},
		gl.WithBaseURL(b.apiBase),
		gl.WithHTTPClient(&apiHTTP),
		gl.WithoutRetries(),
		gl.WithCustomLimiter(noLimiter{}),
	)
	if err != nil {
		return nil, fmt.Errorf("set up the GitLab API client for %s: %w", b.baseStr, err)
	}
	b.api.UserAgent = "sregistry"
	cfg.Debugf("gitlab: base %s, api %s, job %q, folder %q, token type %s, token set: %t",
		b.baseStr, b.apiBase, b.job, b.folder, b.tokenType, b.token != "")
	return b, nil
}

// Name returns "gitlab".
func (b *Backend) Name() string { return Name }

// parseBase validates SREGISTRY_GITLAB_BASE and trims trailing slashes (the
// original kept one and produced "//" in every URL).
func parseBase(s string) (*url.URL, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q is not an http(s) URL: set it to your GitLab address, e.g. https://gitlab.example.com", SettingBase, s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%s=%q must not contain credentials, a query or a fragment: set it to the bare GitLab address", SettingBase, s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// noLimiter disables client-go's client-side rate limiter (derived from
// RateLimit-Limit headers): 429 answers are handled by apiCall instead.
type noLimiter struct{}

func (noLimiter) Wait(context.Context) error { return nil }

// logf returns req.Logf or a no-op.
func logf(f func(string, ...any)) func(string, ...any) {
	if f == nil {
		return func(string, ...any) {}
	}
	return f
}

// escapeProject escapes a project path or id for use as the :id path segment.
func escapeProject(p string) string { return gl.PathEscape(p) }

// joinPath joins path segments under the web base, escaping each segment.
func (b *Backend) webURL(segments ...string) string {
	var sb strings.Builder
	sb.WriteString(b.baseStr)
	for _, s := range segments {
		for _, part := range strings.Split(s, "/") {
			if part == "" {
				continue
			}
			sb.WriteByte('/')
			sb.WriteString(url.PathEscape(part))
		}
	}
	return sb.String()
}

// escapeArtifactPath escapes each segment of an artifact path, keeping '/'.
func escapeArtifactPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// errNoToken is returned by operations that need a credential when none is set.
var errNoToken = errors.New("no GitLab token: set SREGISTRY_GITLAB_TOKEN or run `sregistry backend add gitlab token <token>`")
