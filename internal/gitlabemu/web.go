package gitlabemu

import (
	"html"
	"net/http"
	"path"
	"strconv"
	"strings"
)

const signInPage = `<!DOCTYPE html>
<html class="gl-light" lang="en">
<head>
<meta charset="utf-8">
<title>Sign in · GitLab</title>
</head>
<body class="login-page">
<main>
<h1>GitLab Community Edition</h1>
<form class="gl-show-field-errors" action="/users/sign_in" accept-charset="UTF-8" method="post">
<label for="user_login">Username or primary email</label><input type="text" name="user[login]" id="user_login">
<label for="user_password">Password</label><input type="password" name="user[password]" id="user_password">
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`

const notFoundPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Not Found · GitLab</title>
</head>
<body>
<h1>404</h1>
<h3>Page not found</h3>
<p>The page could not be found or you don't have permission to view it.</p>
</body>
</html>
`

func writeHTML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// serveWeb handles the session-authenticated web routes. Every web request is
// anonymous: GitLab does not accept API tokens here, so private projects and
// unknown routes redirect to the sign-in page.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/users/sign_in" {
		writeHTML(w, http.StatusOK, signInPage)
		return
	}
	signIn := func() {
		w.Header().Set("Cache-Control", "no-cache")
		http.Redirect(w, r, s.apiURL+"/users/sign_in", http.StatusFound)
	}
	projPath, rest, ok := strings.Cut(r.URL.Path, "/-/jobs/")
	if !ok {
		signIn()
		return
	}
	s.mu.Lock()
	p := s.projectByPathLocked(strings.Trim(projPath, "/"))
	s.mu.Unlock()
	if p == nil || p.Visibility != Public {
		signIn()
		return
	}
	idStr, rest, _ := strings.Cut(rest, "/")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		writeHTML(w, http.StatusNotFound, notFoundPage)
		return
	}
	j := s.jobIn(p, id)
	if j == nil || !hasArchive(&j.Job) {
		writeHTML(w, http.StatusNotFound, notFoundPage)
		return
	}
	action, sub, _ := strings.Cut(strings.TrimPrefix(rest, "artifacts/"), "/")
	switch {
	case !strings.HasPrefix(rest, "artifacts/") && rest != "artifacts":
		writeHTML(w, http.StatusNotFound, notFoundPage)
	case action == "raw" && sub != "":
		if !validArtifactPath(sub) {
			writeHTML(w, http.StatusBadRequest, notFoundPage)
			return
		}
		s.serveEntry(w, r, j, sub)
	case action == "browse":
		s.browse(w, j, sub)
	case action == "download" && sub == "":
		s.handleArchive(w, r, j)
	default:
		writeHTML(w, http.StatusNotFound, notFoundPage)
	}
}

// browse renders the artifacts browser page for one directory.
func (s *Server) browse(w http.ResponseWriter, j *jobRec, dir string) {
	a, err := s.archiveFor(j)
	if err != nil {
		writeHTML(w, http.StatusInternalServerError, notFoundPage)
		return
	}
	dir = strings.Trim(dir, "/")
	if dir != "" {
		dir += "/"
	}
	entries, ok := a.children(dir, false)
	if !ok {
		writeHTML(w, http.StatusNotFound, notFoundPage)
		return
	}
	base := s.apiURL + "/" + j.project.Path + "/-/jobs/" + strconv.FormatInt(j.ID, 10) + "/artifacts/"
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Artifacts · ")
	b.WriteString(html.EscapeString(j.project.Path))
	b.WriteString(" · GitLab</title>\n</head>\n<body>\n<h1>Artifacts</h1>\n<ul class=\"tree-table\">\n")
	for _, e := range entries {
		name := path.Base(strings.TrimSuffix(e.Path, "/"))
		href := base + "raw/" + e.Path
		if e.Dir {
			href, name = base+"browse/"+strings.TrimSuffix(e.Path, "/"), name+"/"
		}
		b.WriteString(`<li><a href="` + html.EscapeString(href) + `">` + html.EscapeString(name) + "</a>")
		if !e.Dir {
			b.WriteString(" <span class=\"size\">" + strconv.FormatUint(e.Size, 10) + "</span>")
		}
		b.WriteString("</li>\n")
	}
	b.WriteString("</ul>\n</body>\n</html>\n")
	writeHTML(w, http.StatusOK, b.String())
}
