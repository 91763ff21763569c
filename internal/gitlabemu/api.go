package gitlabemu

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// GitLab's exact error bodies (reference §2.2).
var (
	errUnauthorized    = apiError{http.StatusUnauthorized, `{"message":"401 Unauthorized"}`}
	errTokenExpired    = apiError{http.StatusUnauthorized, `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`}
	errProjectNotFound = apiError{http.StatusNotFound, `{"message":"404 Project Not Found"}`}
	errRecordNotFound  = apiError{http.StatusNotFound, `{"message":"404 Not found"}`}
	errNotFound        = apiError{http.StatusNotFound, `{"message":"404 Not Found"}`}
	errNoRoute         = apiError{http.StatusNotFound, `{"error":"404 Not Found"}`}
	errBadRequest      = apiError{http.StatusBadRequest, `{"message":"400 Bad request"}`}
	errBadScope        = apiError{http.StatusBadRequest, `{"message":"Scope contains invalid value(s)"}`}
	errPerPageZero     = apiError{http.StatusBadRequest, `{"error":"per_page does not have a valid value"}`}
	errKeysetOrder     = apiError{http.StatusMethodNotAllowed, `{"error":"Keyset pagination is not yet available for this type of request"}`}
	errMethod          = apiError{http.StatusMethodNotAllowed, `{"error":"405 Not Allowed"}`}
	errInternal        = apiError{http.StatusInternalServerError, `{"message":"500 Internal Server Error"}`}
	errRateLimited     = apiError{http.StatusTooManyRequests, `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}`}
)

// apiError is a status with a literal JSON body.
type apiError struct {
	status int
	body   string
}

func (e apiError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(e.body))
}

func paramInvalid(name string) apiError {
	return apiError{http.StatusBadRequest, `{"error":"` + name + ` is invalid"}`}
}

// writeJSON encodes v as the response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		errInternal.write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// caller is who made an API request.
type caller struct {
	token string // "" = anonymous
	kind  string
}

func (c caller) anonymous() bool { return c.token == "" }

// authenticate resolves the request's credentials. Job tokens are looked at
// only where GitLab allows them (artifact routes); elsewhere they are ignored
// and the caller is anonymous, as in GitLab.
func (s *Server) authenticate(r *http.Request, allowJobToken bool) (caller, *apiError) {
	q := r.URL.Query()
	tok, kind := "", ""
	switch {
	case r.Header.Get("Private-Token") != "":
		tok, kind = r.Header.Get("Private-Token"), PersonalToken
	case q.Get("private_token") != "":
		tok, kind = q.Get("private_token"), PersonalToken
	case q.Get("access_token") != "":
		tok, kind = q.Get("access_token"), PersonalToken
	case strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		tok, kind = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), PersonalToken
	case allowJobToken && r.Header.Get("Job-Token") != "":
		tok, kind = r.Header.Get("Job-Token"), JobToken
	case allowJobToken && q.Get("job_token") != "":
		tok, kind = q.Get("job_token"), JobToken
	default:
		return caller{}, nil
	}
	s.mu.Lock()
	rec, ok := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case !ok || rec.kind != kind:
		return caller{}, &errUnauthorized
	case rec.expired && kind == PersonalToken:
		return caller{}, &errTokenExpired
	case rec.expired:
		return caller{}, &errUnauthorized
	}
	return caller{token: tok, kind: kind}, nil
}

// access authenticates the request (job tokens only where allowJobToken),
// refuses anonymous callers when needUser (GitLab's authenticate!), and finds
// the project :id names when id != "". On failure it writes GitLab's error
// answer and returns ok == false.
func (s *Server) access(w http.ResponseWriter, r *http.Request, id string, allowJobToken, needUser bool) (caller, *projectRec, bool) {
	c, aerr := s.authenticate(r, allowJobToken)
	if aerr == nil && needUser && c.anonymous() {
		aerr = &errUnauthorized
	}
	if aerr != nil {
		aerr.write(w)
		return c, nil, false
	}
	if id == "" {
		return c, nil, true
	}
	p, aerr := s.findProject(id, c)
	if aerr != nil {
		aerr.write(w)
		return c, nil, false
	}
	return c, p, true
}

// findProject resolves :id (numeric or URL-encoded full path) for the caller;
// private projects are invisible to anonymous callers.
func (s *Server) findProject(idSeg string, c caller) (*projectRec, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *projectRec
	if n, err := strconv.ParseInt(idSeg, 10, 64); err == nil {
		p = s.projectByIDLocked(n)
	} else if dec, err := url.PathUnescape(idSeg); err == nil {
		p = s.projectByPathLocked(dec)
	}
	if p == nil || (p.Visibility != Public && c.anonymous()) {
		return nil, &errProjectNotFound
	}
	return p, nil
}

// serveAPIListener splits the API listener between REST v4 and web routes.
func (s *Server) serveAPIListener(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(raw, "/api/v4/")
	if !ok {
		if raw == "/api/v4" || strings.HasPrefix(raw, "/api/") {
			errNoRoute.write(w)
			return
		}
		s.serveWeb(w, r)
		return
	}
	h := s.route(strings.Split(rest, "/"))
	if h == nil {
		errNoRoute.write(w)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		errMethod.write(w)
		return
	}
	h(w, r)
}

// route maps the escaped path segments after /api/v4/ to a handler, or nil
// for an unknown route. Because it splits the raw path, an unencoded project
// path ("projects/group/proj") matches nothing, as in GitLab.
//
// With TreeAPI off, ".../artifacts/tree" is the single file "tree" (what a
// pre-18.8 GitLab does), which answers a plain-text 404 unless such a file exists.
func (s *Server) route(seg []string) http.HandlerFunc {
	switch {
	case len(seg) == 1 && seg[0] == "version":
		return s.handleVersion
	case len(seg) == 1 && seg[0] == "user":
		return s.handleUser
	case len(seg) < 2 || seg[0] != "projects" || seg[1] == "":
		return nil
	}
	id, rest := seg[1], seg[2:]
	switch {
	case len(rest) == 0:
		return func(w http.ResponseWriter, r *http.Request) { s.handleProject(w, r, id) }
	case rest[0] != "jobs":
		return nil
	case len(rest) == 1:
		return func(w http.ResponseWriter, r *http.Request) { s.handleJobs(w, r, id) }
	case rest[1] == "artifacts":
		return s.routeRef(id, rest[2:])
	}
	jobSeg := rest[1]
	var handler func(w http.ResponseWriter, r *http.Request, j *jobRec)
	switch {
	case len(rest) == 2:
		handler = s.handleJob
	case rest[2] != "artifacts":
		return nil
	case len(rest) == 3 || (len(rest) == 4 && rest[3] == ""):
		handler = s.handleArchive
	case s.opts.TreeAPI && len(rest) == 4 && rest[3] == "tree":
		handler = s.handleTree
	default:
		fileSegs := rest[3:]
		handler = func(w http.ResponseWriter, r *http.Request, j *jobRec) { s.handleFile(w, r, j, fileSegs) }
	}
	return func(w http.ResponseWriter, r *http.Request) {
		// Everything under jobs.rb needs a user; job_artifacts.rb allows
		// anonymous GETs on public projects and job tokens.
		isJobs := len(rest) == 2
		_, p, ok := s.access(w, r, id, !isJobs, isJobs)
		if !ok {
			return
		}
		jid, err := strconv.ParseInt(jobSeg, 10, 64)
		if err != nil {
			paramInvalid("job_id").write(w)
			return
		}
		j := s.jobIn(p, jid)
		if j == nil {
			errRecordNotFound.write(w)
			return
		}
		handler(w, r, j)
	}
}

// routeRef handles jobs/artifacts/:ref_name/download and
// jobs/artifacts/:ref_name/raw/*artifact_path. ref_name matches /.+/, so an
// unencoded slash in the ref is accepted like GitLab does.
func (s *Server) routeRef(id string, seg []string) http.HandlerFunc {
	var refSegs, fileSegs []string
	download := false
	switch {
	case len(seg) >= 2 && seg[len(seg)-1] == "download":
		refSegs, download = seg[:len(seg)-1], true
	default:
		for i := 1; i < len(seg)-1; i++ {
			if seg[i] == "raw" {
				refSegs, fileSegs = seg[:i], seg[i+1:]
				break
			}
		}
		if refSegs == nil {
			return nil
		}
	}
	ref, ok := decodeSegments(refSegs)
	if !ok || ref == "" {
		return nil
	}
	return func(w http.ResponseWriter, r *http.Request) {
		_, p, ok := s.access(w, r, id, true, false)
		if !ok {
			return
		}
		name := r.URL.Query().Get("job")
		if name == "" {
			apiError{http.StatusBadRequest, `{"error":"job is missing"}`}.write(w)
			return
		}
		j := s.latestSuccessful(p, ref, name)
		if j == nil {
			errRecordNotFound.write(w)
			return
		}
		if download {
			s.handleArchive(w, r, j)
			return
		}
		s.handleFile(w, r, j, fileSegs)
	}
}

// decodeSegments percent-decodes each segment and joins them with "/".
func decodeSegments(seg []string) (string, bool) {
	out := make([]string, len(seg))
	for i, sg := range seg {
		d, err := url.PathUnescape(sg)
		if err != nil {
			return "", false
		}
		out[i] = d
	}
	return strings.Join(out, "/"), true
}

func (s *Server) jobIn(p *projectRec, id int64) *jobRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil || j.project != p {
		return nil
	}
	return j
}

// latestSuccessful picks the newest successful job of that name on ref,
// newest by creation time then id (GitLab: latest successful pipeline).
func (s *Server) latestSuccessful(p *projectRec, ref, name string) *jobRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *jobRec
	for _, j := range p.jobs {
		if j.Ref != ref || j.Name != name || j.Status != "success" {
			continue
		}
		if best == nil || j.CreatedAt.After(best.CreatedAt) || (j.CreatedAt.Equal(best.CreatedAt) && j.ID > best.ID) {
			best = j
		}
	}
	return best
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.access(w, r, "", false, true); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": "18.8.0-ee", "revision": "emulator", "enterprise": true})
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.access(w, r, "", false, true); !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.userJSON())
}

func (s *Server) userJSON() map[string]any {
	return map[string]any{"id": 1, "username": "emulator", "name": "GitLab Emulator", "state": "active",
		"avatar_url": nil, "web_url": s.apiURL + "/emulator"}
}

func (s *Server) handleProject(w http.ResponseWriter, r *http.Request, id string) {
	_, p, ok := s.access(w, r, id, false, false)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.projectJSON(p))
}

func (s *Server) projectJSON(p *projectRec) map[string]any {
	name := p.Path[strings.LastIndex(p.Path, "/")+1:]
	ns := ""
	if i := strings.LastIndex(p.Path, "/"); i >= 0 {
		ns = p.Path[:i]
	}
	nsName := ns[strings.LastIndex(ns, "/")+1:]
	return map[string]any{
		"id":                  p.ID,
		"description":         "",
		"name":                name,
		"name_with_namespace": strings.ReplaceAll(p.Path, "/", " / "),
		"path":                name,
		"path_with_namespace": p.Path,
		"created_at":          fmtTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)),
		"default_branch":      p.DefaultBranch,
		"visibility":          string(p.Visibility),
		"web_url":             s.apiURL + "/" + p.Path,
		"http_url_to_repo":    s.apiURL + "/" + p.Path + ".git",
		"ssh_url_to_repo":     "git@" + strings.TrimPrefix(s.apiURL, "http://") + ":" + p.Path + ".git",
		"readme_url":          nil,
		"archived":            false,
		"jobs_enabled":        true,
		"namespace": map[string]any{
			"id": p.ID + 100000, "name": nsName, "path": nsName, "kind": "group", "full_path": ns,
			"web_url": s.apiURL + "/groups/" + ns,
		},
	}
}

// handleJob answers GET /projects/:id/jobs/:job_id.
func (s *Server) handleJob(w http.ResponseWriter, _ *http.Request, j *jobRec) {
	v, err := s.jobJSON(j)
	if err != nil {
		errInternal.write(w)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// handleArchive answers the whole-archive routes: 302 to a signed storage
// URL, or (DisableObjectStorage) 200 with http.ServeContent semantics.
func (s *Server) handleArchive(w http.ResponseWriter, r *http.Request, j *jobRec) {
	if !hasArchive(&j.Job) {
		errNotFound.write(w)
		return
	}
	if !s.opts.DisableObjectStorage {
		w.Header().Set("Cache-Control", "no-cache")
		http.Redirect(w, r, s.signedURL(j.ID), http.StatusFound)
		return
	}
	a, err := s.archiveFor(j)
	if err != nil {
		errInternal.write(w)
		return
	}
	f, err := os.Open(a.path)
	if err != nil {
		errInternal.write(w)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="artifacts.zip"; filename*=UTF-8''artifacts.zip`)
	h.Set("Content-Transfer-Encoding", "binary")
	http.ServeContent(w, r, "", a.modTime, f)
}

// validArtifactPath is Gitlab::Ci::Build::Artifacts::Path#valid?.
func validArtifactPath(p string) bool {
	return utf8.ValidString(p) && !strings.ContainsRune(p, 0)
}

// handleFile answers the single-file routes the way Workhorse does: 200,
// whole entry streamed, Range ignored, Content-Length = uncompressed size.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request, j *jobRec, fileSegs []string) {
	if !hasArchive(&j.Job) {
		errNotFound.write(w)
		return
	}
	name, ok := decodeSegments(fileSegs)
	if !ok || !validArtifactPath(name) {
		errBadRequest.write(w)
		return
	}
	s.serveEntry(w, r, j, name)
}

// serveEntry streams one archive entry (shared by API and web raw routes).
func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request, j *jobRec, name string) {
	a, err := s.archiveFor(j)
	if err != nil {
		errInternal.write(w)
		return
	}
	e, ok := a.entry(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	rc, zc, err := a.openEntry(e)
	if err != nil {
		errInternal.write(w)
		return
	}
	defer zc.Close()
	defer rc.Close()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatUint(e.Size, 10))
	h.Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(path.Base(name), `"`, `\"`)+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if rerr != nil {
			return // io.EOF, or a corrupt entry: the short body tells the client
		}
	}
}

// treeEntryJSON is one element of GET .../artifacts/tree.
type treeEntryJSON struct {
	Name string  `json:"name"`
	Path string  `json:"path"`
	Type string  `json:"type"`
	Size *uint64 `json:"size,omitempty"`
	Mode string  `json:"mode"`
}

// handleTree answers GET /projects/:id/jobs/:job_id/artifacts/tree (18.8+).
func (s *Server) handleTree(w http.ResponseWriter, r *http.Request, j *jobRec) {
	if !hasArchive(&j.Job) {
		errNotFound.write(w)
		return
	}
	q := r.URL.Query()
	pg, aerr := parsePage(q)
	if aerr != nil {
		aerr.write(w)
		return
	}
	a, err := s.archiveFor(j)
	if err != nil {
		errInternal.write(w)
		return
	}
	dir := strings.Trim(q.Get("path"), "/")
	if dir != "" {
		dir += "/"
	}
	recursive := q.Get("recursive") == "true"
	entries, ok := a.children(dir, recursive)
	if !ok {
		apiError{http.StatusNotFound, `{"message":"404 Path Not Found"}`}.write(w)
		return
	}
	out := make([]treeEntryJSON, 0, len(entries))
	for _, e := range entries {
		base := path.Base(strings.TrimSuffix(e.Path, "/"))
		te := treeEntryJSON{Name: base, Path: e.Path, Type: "file", Mode: "100644"}
		if e.Dir {
			te.Type, te.Mode = "directory", "040755"
		} else {
			sz := e.Size
			te.Size = &sz
		}
		out = append(out, te)
	}
	page := pageSlice(out, pg)
	s.setOffsetHeaders(w, r, pg, len(page) > 0, pg.offset()+pg.perPage < len(out))
	writeJSON(w, http.StatusOK, page)
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func fmtTimePtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := fmtTime(t)
	return &s
}
