package gitlab

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errMalformed keeps the original sregistry-cli wording so that users and
// scripts recognise it.
var errMalformed = errors.New("Malformed image string! Please provide: job_id,collection (or) job_id,collection,job_name")

// pullRef is a parsed pull string.
type pullRef struct {
	// JobID is set by the "<job_id>,<collection>[,<job_name>]" form; 0 for
	// the "group/proj[:tag][@ref]" form, which means "the latest successful
	// job named JobName on GitRef".
	JobID   int64
	Project string // full project path, nested groups kept, no leading/trailing '/'
	Tag     string // "" when the string had no explicit ":tag"
	JobName string // "" when not given
	GitRef  string // branch or tag after '@' ("" = any ref); only in the path form
}

// parsePullRef parses the pull string (URI scheme already removed).
//
// Accepted forms:
//
//	<job_id>,<project>[:tag]              e.g. 123,group/sub/proj:dev
//	<job_id>,<project>[:tag],<job_name>   e.g. 123,group/proj,build
//	<project>[:tag][@ref]                 e.g. group/proj:dev@main
//
// In the last form '@' introduces a git ref (branch or tag), not a version.
func parsePullRef(s string) (pullRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return pullRef{}, fmt.Errorf("empty pull string: %w", errMalformed)
	}
	if strings.Contains(s, ",") {
		return parseJobIDRef(s)
	}
	var r pullRef
	left := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		left, r.GitRef = s[:i], s[i+1:]
		if r.GitRef == "" {
			return pullRef{}, fmt.Errorf("%q: empty ref after '@' (give a branch or tag, e.g. group/proj@main): %w", s, errMalformed)
		}
		if strings.ContainsAny(r.GitRef, " \t\n:") || strings.Contains(r.GitRef, "..") {
			return pullRef{}, fmt.Errorf("%q: %q is not a valid git ref: %w", s, r.GitRef, errMalformed)
		}
	}
	project, tag, err := splitProjectTag(left)
	if err != nil {
		return pullRef{}, fmt.Errorf("%q: %v: %w", s, err, errMalformed)
	}
	if !strings.Contains(project, "/") {
		return pullRef{}, fmt.Errorf("%q: a GitLab project is <group>/<project>: %w", s, errMalformed)
	}
	r.Project, r.Tag = project, tag
	return r, nil
}

// parseJobIDRef parses the original "<job_id>,<collection>[,<job_name>]" form.
func parseJobIDRef(s string) (pullRef, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 && len(parts) != 3 {
		return pullRef{}, fmt.Errorf("%q has %d comma-separated parts: %w", s, len(parts), errMalformed)
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
		if parts[i] == "" {
			return pullRef{}, fmt.Errorf("%q has an empty part: %w", s, errMalformed)
		}
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || id <= 0 {
		return pullRef{}, fmt.Errorf("%q: job id %q is not a positive number: %w", s, parts[0], errMalformed)
	}
	if strings.Contains(parts[1], "@") {
		return pullRef{}, fmt.Errorf("%q: a ref (@...) cannot be combined with a job id: %w", s, errMalformed)
	}
	project, tag, err := splitProjectTag(parts[1])
	if err != nil {
		return pullRef{}, fmt.Errorf("%q: %v: %w", s, err, errMalformed)
	}
	r := pullRef{JobID: id, Project: project, Tag: tag}
	if len(parts) == 3 {
		if strings.ContainsAny(parts[2], "/:@") {
			return pullRef{}, fmt.Errorf("%q: %q is not a job name: %w", s, parts[2], errMalformed)
		}
		r.JobName = parts[2]
	}
	return r, nil
}

// splitProjectTag splits "group/sub/proj[:tag]" and validates the path.
// A numeric project id is accepted as the path.
func splitProjectTag(s string) (project, tag string, err error) {
	project = s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		project, tag = s[:i], s[i+1:]
		if tag == "" {
			return "", "", errors.New("empty tag after ':'")
		}
		if strings.ContainsAny(tag, ":/@ \t") {
			return "", "", fmt.Errorf("%q is not a valid tag", tag)
		}
	}
	project = strings.Trim(project, "/")
	if err := validProjectPath(project); err != nil {
		return "", "", err
	}
	return project, tag, nil
}

// validProjectPath checks a project path (or numeric id) before it is put in
// a URL: no empty, "." or ".." segments and no whitespace or control bytes.
func validProjectPath(p string) error {
	if p == "" {
		return errors.New("empty project path")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("project path %q has an empty or relative segment", p)
		}
	}
	for _, c := range p {
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return fmt.Errorf("project path %q contains %q", p, c)
		}
	}
	return nil
}
