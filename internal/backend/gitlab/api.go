package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Retry defaults, matching transfer.RetryPolicy's documented defaults.
const (
	defaultMaxAttempts   = 6
	defaultBaseDelay     = 500 * time.Millisecond
	defaultMaxDelay      = 30 * time.Second
	maxRetryAfter        = 5 * time.Minute
	jobsPerPage          = 100
	maxPages             = 100000 // loop guard against a server that never ends pagination
	treeWorkers          = 4
	errBodyExcerptLength = 200
)

// APIError is a GitLab API answer that is not a success, turned into an
// actionable message. Unwrap gives the underlying client error.
type APIError struct {
	Status int    // HTTP status; 0 for network errors
	Msg    string // user-facing message (never contains the token)
	Err    error
}

func (e *APIError) Error() string { return e.Msg }
func (e *APIError) Unwrap() error { return e.Err }

// statusOf returns the HTTP status of an API error (0 if none).
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// gitlabBody is GitLab's error body: {"message": ...} or {"error": ..., "error_description": ...}.
type gitlabBody struct {
	Message          any    `json:"message"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func parseGitlabBody(b []byte) gitlabBody {
	var gb gitlabBody
	_ = json.Unmarshal(b, &gb)
	return gb
}

// text is the most informative string of the body.
func (gb gitlabBody) text() string {
	switch {
	case gb.ErrorDescription != "":
		return gb.ErrorDescription
	case gb.Error != "":
		return gb.Error
	}
	switch m := gb.Message.(type) {
	case string:
		return m
	case map[string]any:
		if e, ok := m["error"].(string); ok {
			return e
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	return ""
}

// retryPolicy returns the effective retry policy.
func (b *Backend) retryPolicy() (attempts int, base, max time.Duration) {
	attempts, base, max = b.opts.Retry.MaxAttempts, b.opts.Retry.BaseDelay, b.opts.Retry.MaxDelay
	if attempts <= 0 {
		attempts = defaultMaxAttempts
	}
	if base <= 0 {
		base = defaultBaseDelay
	}
	if max <= 0 {
		max = defaultMaxDelay
	}
	return attempts, base, max
}

// backoff is the wait before retry number attempt (1-based): exponential
// with jitter, or the server's Retry-After (capped at 5 minutes) for 429/503.
func (b *Backend) backoff(attempt int, h http.Header) time.Duration {
	if d, ok := retryAfter(h, b.cfg.Now()); ok {
		return d
	}
	_, base, max := b.retryPolicy()
	d := base << min(attempt-1, 30)
	if d <= 0 || d > max {
		d = max
	}
	// Jitter in [d/2, d].
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// retryAfter parses Retry-After (seconds or HTTP date), capped at 5 minutes.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), maxRetryAfter), true
}

// sleep waits d or until ctx is done.
func (b *Backend) sleep(ctx context.Context, d time.Duration) error {
	if b.opts.Sleep != nil {
		return b.opts.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryable reports whether an answer (status, 0 for a transport error) is
// worth retrying: 429, 5xx except 501, and dropped/refused connections.
func retryable(status int) bool {
	return status == 0 || status == http.StatusTooManyRequests ||
		(status >= 500 && status != http.StatusNotImplemented)
}

// apiCall runs a client-go call with bounded retries. All calls are GETs,
// so retrying transport errors is safe.
func (b *Backend) apiCall(ctx context.Context, what string, call func(...gl.RequestOptionFunc) (*gl.Response, error)) (*gl.Response, error) {
	var resp *gl.Response
	err := b.withRetries(ctx, what, func() (int, http.Header, error) {
		var err error
		resp, err = call(gl.WithContext(ctx))
		if resp != nil && resp.Response != nil {
			return resp.StatusCode, resp.Header, err
		}
		return 0, nil, err
	})
	return resp, err
}

// withRetries runs once until it succeeds, fails for good, or the attempts
// run out. 5xx, 429 and failed connections (status 0) are retried after
// b.backoff (which honours Retry-After); long waits are announced so that a
// rate-limited request does not look like a hang.
func (b *Backend) withRetries(ctx context.Context, what string, once func() (status int, h http.Header, err error)) error {
	attempts, _, _ := b.retryPolicy()
	for attempt := 1; ; attempt++ {
		status, h, err := once()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(status) || attempt >= attempts {
			return err
		}
		wait := b.backoff(attempt, h)
		b.cfg.Debugf("gitlab: %s: %s; retry %d/%d in %s", what, describeStatus(status), attempt, attempts-1, wait)
		if wait >= time.Second && b.cfg.Infof != nil {
			b.cfg.Infof("GitLab answered %s to %s; retrying in %s (%d/%d)", describeStatus(status), what, wait.Round(time.Second), attempt, attempts-1)
		}
		if err := b.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func describeStatus(status int) string {
	if status == 0 {
		return "connection failed"
	}
	return fmt.Sprintf("HTTP %d", status)
}

// apiErr turns a failed API call into an actionable *APIError. notFound is
// the message for a 404.
func (b *Backend) apiErr(err error, resp *gl.Response, notFound string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	status := 0
	var body []byte
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) {
		body = er.Body
		if er.Response != nil {
			status = er.Response.StatusCode
		}
	}
	if errors.Is(err, gl.ErrNotFound) {
		status = http.StatusNotFound
	}
	return b.statusErr(status, body, notFound, err)
}

// statusErr builds the message for an HTTP status and GitLab error body.
func (b *Backend) statusErr(status int, body []byte, notFound string, err error) error {
	gb := parseGitlabBody(body)
	var msg string
	switch status {
	case 0:
		msg = fmt.Sprintf("could not reach GitLab at %s: %v (check %s and your network or proxy)", b.base.Host, redactErr(err), SettingBase)
	case http.StatusUnauthorized:
		switch {
		case gb.Error == "invalid_token" || gb.ErrorDescription != "":
			msg = fmt.Sprintf("GitLab rejected the token (401 Unauthorized: %s): create a new token and set %s", gb.text(), SettingToken)
		case b.token == "":
			msg = fmt.Sprintf("GitLab requires authentication (401 Unauthorized): set %s or run `sregistry backend add gitlab token <token>`", SettingToken)
		case b.tokenType == TokenJob:
			msg = fmt.Sprintf("GitLab rejected the job token (401 Unauthorized): job tokens (CI_JOB_TOKEN) can only download artifacts, not list jobs or read projects; use a personal or project access token with read_api scope in %s", SettingToken)
		default:
			msg = fmt.Sprintf("GitLab rejected the token (401 Unauthorized): check %s", SettingToken)
		}
	case http.StatusForbidden:
		if gb.Error == "insufficient_scope" {
			msg = fmt.Sprintf("the token lacks a required scope (403 Forbidden: %s): use a token with the read_api scope in %s", gb.text(), SettingToken)
		} else {
			msg = fmt.Sprintf("GitLab refused access (403 Forbidden%s): the token's user needs at least Reporter access (or the artifacts are restricted by artifacts:access)", suffix(gb.text()))
		}
	case http.StatusNotFound:
		msg = notFound
	case http.StatusTooManyRequests:
		msg = "GitLab is rate-limiting requests (429 Too Many Requests) and retries did not help: wait a minute and try again"
	case http.StatusOK:
		// A 200 that is not API JSON: a sign-in page, a proxy's page, or a
		// base URL that is not the GitLab root.
		msg = fmt.Sprintf("the answer from %s is not GitLab API JSON (HTTP 200): check that %s is the GitLab root URL (e.g. https://gitlab.example.org) and not a page behind a sign-in or proxy", b.baseStr, SettingBase)
	default:
		msg = fmt.Sprintf("GitLab answered HTTP %d%s: try again later or check %s", status, suffix(gb.text()), b.baseStr)
	}
	return &APIError{Status: status, Msg: msg, Err: err}
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > errBodyExcerptLength {
		s = s[:errBodyExcerptLength] + "..."
	}
	return ": " + s
}

// redactErr drops query strings from URLs in a transport error (signed URLs
// carry signatures; our API URLs never carry the token).
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr == nil {
			u.RawQuery = ""
			return fmt.Sprintf("%s %s: %v", ue.Op, u.Redacted(), ue.Err)
		}
		return ue.Err.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// projectNotFound is the 404 message for a project.
func (b *Backend) projectNotFound(project string) string {
	hint := "check the path (group/subgroup/project)"
	if b.token == "" {
		hint = fmt.Sprintf("private projects need a token: set %s", SettingToken)
	}
	return fmt.Sprintf("project %s not found on %s (or not visible with this token): %s", project, b.baseStr, hint)
}

// getProject looks a project up by path or numeric id.
func (b *Backend) getProject(ctx context.Context, project string) (*gl.Project, error) {
	var p *gl.Project
	resp, err := b.apiCall(ctx, "get project", func(o ...gl.RequestOptionFunc) (*gl.Response, error) {
		var (
			r *gl.Response
			e error
		)
		p, r, e = b.api.Projects.GetProject(project, nil, o...)
		return r, e
	})
	if err != nil {
		return nil, b.apiErr(err, resp, b.projectNotFound(project))
	}
	return p, nil
}

// getJob fetches one job.
func (b *Backend) getJob(ctx context.Context, project string, jobID int64) (*gl.Job, error) {
	var j *gl.Job
	resp, err := b.apiCall(ctx, "get job", func(o ...gl.RequestOptionFunc) (*gl.Response, error) {
		var (
			r *gl.Response
			e error
		)
		j, r, e = b.api.Jobs.GetJob(project, jobID, o...)
		return r, e
	})
	if err != nil {
		return nil, b.apiErr(err, resp, fmt.Sprintf("job %d not found in project %s on %s (or the project is not visible with this token): check the job id with `sregistry search gitlab://%s`", jobID, project, b.baseStr, project))
	}
	return j, nil
}

// jobPager lists a project's successful jobs newest first, with keyset
// pagination (falling back to offset pagination where the server refuses
// keyset), never relying on X-Total.
type jobPager struct {
	b       *Backend
	project string // path or numeric id (escaped by client-go)

	started  bool
	done     bool
	keyset   bool
	nextLink string
	page     int64
	pages    int
	Requests int // API requests made (for debug output and tests)
}

func (b *Backend) newJobPager(project string) *jobPager {
	return &jobPager{b: b, project: project, keyset: true}
}

func (p *jobPager) options() *gl.ListJobsOptions {
	scope := []gl.BuildStateValue{gl.Success}
	o := &gl.ListJobsOptions{Scope: &scope}
	o.PerPage = jobsPerPage
	if p.keyset {
		o.Pagination = "keyset"
		o.OrderBy = "id"
		o.Sort = "desc"
	} else {
		o.Page = p.page
	}
	return o
}

// Next returns the next page of jobs; nil, nil when there are no more.
func (p *jobPager) Next(ctx context.Context) ([]*gl.Job, error) {
	if p.done {
		return nil, nil
	}
	if p.pages >= maxPages {
		p.done = true
		return nil, nil
	}
	first := !p.started
	p.started = true
	if !p.keyset && p.page == 0 {
		p.page = 1
	}
	jobs, resp, err := p.list(ctx)
	if err != nil && first && p.keyset {
		if s := p.b.statusAfter(err, resp); s == http.StatusMethodNotAllowed || s == http.StatusBadRequest {
			p.b.cfg.Debugf("gitlab: keyset pagination refused (HTTP %d); falling back to offset pagination", s)
			p.keyset, p.page = false, 1
			jobs, resp, err = p.list(ctx)
		}
	}
	if err != nil {
		p.done = true
		return nil, p.b.apiErr(err, resp, p.b.projectNotFound(p.project))
	}
	p.pages++
	p.advance(resp, len(jobs))
	return jobs, nil
}

func (p *jobPager) list(ctx context.Context) ([]*gl.Job, *gl.Response, error) {
	var jobs []*gl.Job
	opts := p.options()
	link := p.nextLink
	resp, err := p.b.apiCall(ctx, "list jobs", func(o ...gl.RequestOptionFunc) (*gl.Response, error) {
		p.Requests++
		if p.keyset && link != "" {
			o = append(o, gl.WithKeysetPaginationParameters(link))
		}
		var (
			r *gl.Response
			e error
		)
		jobs, r, e = p.b.api.Jobs.ListProjectJobs(p.project, opts, o...)
		return r, e
	})
	return jobs, resp, err
}

// statusAfter returns the HTTP status of a failed client-go call.
func (b *Backend) statusAfter(err error, resp *gl.Response) int {
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	if resp != nil && resp.Response != nil {
		return resp.StatusCode
	}
	return 0
}

// advance computes the next page from the Link header (rel="next") or,
// for offset pagination, X-Next-Page.
func (p *jobPager) advance(resp *gl.Response, n int) {
	if n == 0 || resp == nil {
		p.done = true
		return
	}
	if p.keyset {
		if resp.NextLink == "" || resp.NextLink == p.nextLink {
			p.done = true
			return
		}
		p.nextLink = resp.NextLink
		return
	}
	next := resp.NextPage
	if next == 0 && resp.NextLink != "" {
		if u, err := url.Parse(resp.NextLink); err == nil {
			next, _ = strconv.ParseInt(u.Query().Get("page"), 10, 64)
		}
	}
	if next <= p.page {
		p.done = true
		return
	}
	p.page = next
}

// archiveOf returns the job's archive artifact (file_type "archive"; the
// file name varies with artifacts:name), or nil.
func archiveOf(j *gl.Job) *gl.JobArtifact {
	for i := range j.Artifacts {
		if j.Artifacts[i].FileType == "archive" {
			return &j.Artifacts[i]
		}
	}
	return nil
}

// httpStatusError is a non-2xx answer to a raw API request.
type httpStatusError struct {
	Status int
	Body   []byte
	URL    string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d%s", e.URL, e.Status, suffix(parseGitlabBody(e.Body).text()))
}

// getJSON GETs an API URL with the transfer client (credential added by its
// transport for the GitLab host only), retrying like apiCall, and decodes
// the JSON answer into v. Non-2xx answers are *httpStatusError.
func (b *Backend) getJSON(ctx context.Context, what, u string, v any) (http.Header, error) {
	var h http.Header
	err := b.withRetries(ctx, what, func() (int, http.Header, error) {
		var status int
		var err error
		h, status, err = b.getJSONOnce(ctx, u, v)
		return status, h, err
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (b *Backend) getJSONOnce(ctx context.Context, u string, v any) (http.Header, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, -1, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.Header, resp.StatusCode, &httpStatusError{Status: resp.StatusCode, Body: body, URL: stripQuery(u)}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return resp.Header, -1, fmt.Errorf("decode %s: %w: %v", stripQuery(u), errNotJSON, err)
	}
	return resp.Header, resp.StatusCode, nil
}

func stripQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// treeEntry is one entry of GET /projects/:id/jobs/:job_id/artifacts/tree (GitLab 18.8+).
type treeEntry struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// errNotJSON means a 2xx answer was not the expected JSON.
var errNotJSON = errors.New("answer is not the expected JSON")

// errNoTreeAPI means the server has no artifacts tree route (GitLab < 18.8).
var errNoTreeAPI = errors.New("the GitLab server cannot list artifact files (needs GitLab 18.8+)")

// listTree lists all files of a job's artifacts. It returns errNoTreeAPI when
// the route does not exist (404 {"error":"404 Not Found"}, GitLab's answer
// for unknown routes), as opposed to a missing job or expired artifacts
// (404 {"message":...}).
func (b *Backend) listTree(ctx context.Context, projectID string, jobID int64) ([]treeEntry, error) {
	next := fmt.Sprintf("%s/projects/%s/jobs/%d/artifacts/tree?recursive=true&per_page=100", b.apiBase, escapeProject(projectID), jobID)
	var all []treeEntry
	seen := map[string]bool{}
	for pages := 0; next != "" && pages < maxPages; pages++ {
		var entries []treeEntry
		h, err := b.getJSON(ctx, "list artifact files", next, &entries)
		if err != nil {
			var he *httpStatusError
			if errors.As(err, &he) && he.Status == http.StatusNotFound && parseGitlabBody(he.Body).Message == nil {
				// Not GitLab's {"message": ...} for a missing job or expired
				// artifacts: either the unknown-route answer
				// {"error":"404 Not Found"} or, before 18.8, Workhorse's plain
				// 404 for a file named "tree" (the single-file route matches).
				return nil, errNoTreeAPI
			}
			if errors.Is(err, errNotJSON) {
				return nil, errNoTreeAPI // a 200 for an artifact file literally named "tree"
			}
			return nil, err
		}
		seen[next] = true
		for _, e := range entries {
			if e.Type == "file" || (e.Type == "" && !strings.HasSuffix(e.Path, "/")) {
				all = append(all, e)
			}
		}
		if len(entries) == 0 {
			break
		}
		next = nextPageURL(next, h)
		if seen[next] {
			break
		}
	}
	return all, nil
}

// nextPageURL follows Link rel="next", else X-Next-Page, keeping our own
// host (GitLab builds Link URLs from its configured external URL).
func nextPageURL(cur string, h http.Header) string {
	cu, err := url.Parse(cur)
	if err != nil {
		return ""
	}
	if link := linkNext(h.Get("Link")); link != "" {
		if lu, err := url.Parse(link); err == nil {
			cu.RawQuery = lu.RawQuery
			return cu.String()
		}
	}
	if np := strings.TrimSpace(h.Get("X-Next-Page")); np != "" {
		q := cu.Query()
		q.Set("page", np)
		cu.RawQuery = q.Encode()
		return cu.String()
	}
	return ""
}

// linkNext extracts the rel="next" target of a Link header.
func linkNext(link string) string {
	for _, part := range strings.Split(link, ",") {
		segs := strings.Split(part, ";")
		if len(segs) < 2 {
			continue
		}
		for _, p := range segs[1:] {
			p = strings.TrimSpace(p)
			if strings.EqualFold(p, `rel="next"`) || strings.EqualFold(p, "rel=next") {
				return strings.Trim(strings.TrimSpace(segs[0]), "<>")
			}
		}
	}
	return ""
}
